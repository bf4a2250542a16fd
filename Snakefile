# Replication of Ravikumar et al., ICML 2024: privacy, memorization and input curvature.
# `snakemake --cores all` runs the study of config/config.yaml; name a figure to build only it.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/dp_models.smk"
include: "workflow/rules/memorization.smk"
include: "workflow/rules/audit.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        all_outputs(),
    default_target: True
