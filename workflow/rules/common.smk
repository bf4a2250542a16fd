# Helpers shared by the rules: the resolved study config and the target lists it implies.
import os
import sys

import yaml

from memcurv import config as memcurv_config
from memcurv import tables as catalogue
from memcurv.config import EXPERIMENTS, format_epsilon, num_shards
from memcurv.data.datasets import spec as dataset_spec
from memcurv.data.loading import needs_download
from memcurv.figures import OUTPUTS as FIGURE_OUTPUTS
from memcurv.figures import study_figures
from memcurv.jobs import reads
from memcurv.jobs import resources as gpu_resources
from memcurv.jobs.archive import archived_tables
from memcurv.report.replication import tables as report_tables

try:
    CFG = memcurv_config.validate(config)
except memcurv_config.ConfigError as error:
    raise WorkflowError(str(error)) from None
for _warning in memcurv_config.warnings(CFG):
    print(f"memcurv: warning: {_warning}", file=sys.stderr)
# Snakemake's own `config` becomes the validated one, every default filled in and every defect switch resolved: the
# report's captions (workflow/report/*.rst) read it, and must say what the study ran, not what its file spelled out.
config.update(CFG.as_dict())

STUDY = CFG.study
RESULTS = f"results/{STUDY}"
LOGS = f"logs/{STUDY}"
BENCH = f"logs/{STUDY}/benchmarks"
TABLES = f"{RESULTS}/tables"


def table_file(table) -> str:
    """Where a study's table lives: a table of the catalogue (memcurv.tables, e.g. catalogue.EXAMPLES), or its file
    name, in TABLES."""
    return f"{TABLES}/{table if isinstance(table, str) else table.name}"


def submits_to_slurm() -> bool:
    """Whether this run submits its jobs to SLURM through workflow/profiles/slurm, which gives every job a
    partition (the executor itself is not known yet while the workflow is parsed)."""
    defaults = workflow.resource_settings.default_resources
    return defaults is not None and any(arg.startswith("slurm_partition=") for arg in defaults.args)


# On a cluster the machine that parses the workflow (a login node) has no GPU to see: there the user says where
# GPUs are. MEMCURV_SLURM_GPU_PARTITION (read by the profile too, which sends the GPU rules there) names the
# cluster's GPU partition; with it, `device: auto` asks each GPU rule's job for a GPU, and without it (a CPU-only
# cluster) the jobs run on CPUs. `device: cuda` needs it, and `device: cpu` refuses it (its jobs would sit in
# the GPU partition without a GPU), each with one line before any job is submitted.
SLURM = submits_to_slurm()
SLURM_GPU_PARTITION = os.environ.get("MEMCURV_SLURM_GPU_PARTITION", "").strip() if SLURM else ""


def study_gpus() -> int:
    """1 when the study's GPU rules run on a GPU (and so declare `gpu: 1`), else 0."""
    device = CFG.device
    if not SLURM:
        return 1 if gpu_resources.uses_gpu(device, GPU_MEMORY) else 0
    if device == "cuda" and not SLURM_GPU_PARTITION:
        raise WorkflowError("config key device = cuda on SLURM needs GPUs: set MEMCURV_SLURM_GPU_PARTITION to the"
                            " cluster's GPU partition (or use device: auto to run on CPUs)")
    if device == "cpu" and SLURM_GPU_PARTITION:
        raise WorkflowError("config key device = cpu, but MEMCURV_SLURM_GPU_PARTITION sends training jobs to GPU"
                            f" partition {SLURM_GPU_PARTITION}: use device: auto, or unset the variable")
    return 1 if SLURM_GPU_PARTITION else 0


GPU_MEMORY = gpu_resources.visible_gpu_memory_mb()  # MB of each GPU visible here (nvidia-smi); none without one
GPU = study_gpus()
GPU_MEM_CAP = None if SLURM else gpu_resources.gpu_memory_cap(GPU_MEMORY)  # cluster jobs get GPUs of their own
TRAIN_SIZE = memcurv_config.train_size(CFG.dataset) if GPU else None  # training sets are held on the GPU
CONDA_ENV = "../../environment.yml"  # jobs run in the active environment unless --sdm conda
AUDIT_EPS = [format_epsilon(e) for e in CFG.audit.epsilons]
AUDIT_ARMS = [f"eps{eps}" for eps in AUDIT_EPS] + ["nonprivate"]
# The chain subset models -> memorization -> top-k -> DP subset models is a study's longest path: when jobs
# wait for cores, its jobs go first, so the DP models fill the cores around it instead of delaying it.
MEMORIZATION_PRIORITY = 10
# The report reads only tables and is a small study's longest job after them: it starts first, the figures fill
# the other cores around it (the default study's last 30 seconds on 2 cores).
REPORT_PRIORITY = 20
DP_MODELS = len(CFG.dp_models.epsilons) * len(CFG.dp_models.seeds)
DP_SHARDS = range(num_shards(DP_MODELS, CFG.dp_models.models_per_job))  # over the epsilon x seed grid
SUBSET_SHARDS = range(num_shards(CFG.memorization.num_models, CFG.memorization.models_per_job))
AUDIT_SHARDS = range(num_shards(CFG.audit.num_models, CFG.audit.models_per_job))
MEM_MODELS = len(CFG.mem_vs_epsilon.epsilons) * CFG.mem_vs_epsilon.num_models
DP_SUBSET_SHARDS = range(num_shards(MEM_MODELS, CFG.mem_vs_epsilon.models_per_job))  # over the epsilon x model grid
CONTROL_SHARDS = range(num_shards(CFG.mem_vs_epsilon.num_models, CFG.mem_vs_epsilon.models_per_job))
# The figures this study draws and the tables each reads, and the tables the report reads: from their modules
# (memcurv.figures, memcurv.report.replication), so that a new figure needs only its module and its caption.
FIGURES = study_figures(CFG)
REPORT_TABLES = report_tables(CFG)
ARCHIVED_TABLES = archived_tables(CFG)  # the tables behind the report and figures, committed beside the report


# The resolved config every job reads, written by the rule resolved_config (workflow/rules/data.smk), never while the
# workflow is parsed: a dry run writes nothing, and a second invocation on the same study while one runs (Snakemake
# refuses it its lock) cannot change what the running jobs read. Its text is the rule's parameter, so a changed
# config rewrites it, and only then.
RESOLVED_CONFIG = f"{RESULTS}/config.yaml"
RESOLVED_TEXT = yaml.safe_dump(CFG.as_dict(), sort_keys=True)


# Every job reads the resolved config, but only some of its sections (memcurv.jobs.reads): its rule takes the file as
# an ancient input (rewritten on any change, its time alone reruns nothing) and, as a second input, the settings file
# of its verb: the sections its job reads, written by the rule job_settings (workflow/rules/data.smk) when they change,
# and only then. So a figure option reruns figures and the report, a claim threshold the report, a
# memorization-vs-epsilon setting its models and what reads them; nothing else. The report and the archive read it all.
def settings_file(verb: str) -> str:
    """The settings file of the jobs of `python -m memcurv <verb>` (`calibrate-<experiment>` for calibrate)."""
    return f"{RESULTS}/settings/{verb}.yaml"


def settings_text(name: str) -> str:
    """The settings a verb's jobs read (memcurv.jobs.reads), as the YAML text of their settings file."""
    verb, _, experiment = name.partition("-") if name.startswith("calibrate-") else (name, "", "")
    return yaml.safe_dump(reads.restrict(CFG, verb, experiment or None).as_dict(), sort_keys=True)


# A dataset from the internet (its module DOWNLOADS, and dataset.download: true) is fetched once by the local rule
# download_data (workflow/rules/data.smk), where there is internet, before any job reads it: compute nodes often
# have none, and jobs starting together would each download it. The rules that read the dataset first
# (calibrate_noise, subset_masks) take its record as input, and every other reader comes after them. `ancient`: a
# rerun of the download (a changed rule) does not make the study's results out of date. Offline datasets need no
# such job.
DATASET_READY = [ancient(f"{RESULTS}/data/download.json")] if needs_download(CFG.dataset) else []

# Light jobs run where Snakemake runs, not on the cluster: the download (it needs the internet), tables that
# read small files, figures and the report; and, unless the dataset is slow to decode (its module's
# SLOW_TO_DECODE, memcurv.data.datasets: thousands of JPEG files), noise calibration and subset masks, which only load
# the dataset to count it. The heavy tables (examples_table, reading every subset model's scores; extremes) and
# every training and scoring job are submitted.
LOCAL_RULES = ["resolved_config", "job_settings", *(["download_data"] if DATASET_READY else [])]
LOCAL_RULES += ["dp_models_table", "top_k", "mem_vs_epsilon_table", "report", "publish_report", "archive_tables",
                *(f"figure_{name}" for name in FIGURES)]
if not dataset_spec(CFG.dataset.name).slow_to_decode:
    LOCAL_RULES += ["calibrate_noise", "subset_masks"]
workflow.localrules(*LOCAL_RULES)  # what the `localrules:` directive does, from a list


def by_attempt(minutes: int):
    """A runtime (minutes) that grows with the attempt: a job retried after a timeout gets more time, and
    resumes from its last epoch checkpoint."""
    return lambda wildcards, attempt: minutes * attempt


# GPU memory: each GPU rule declares gpu_mem_mb (memcurv.jobs.resources), and a local run on a GPU machine starts
# GPU jobs together only while their sum fits the GPU, instead of every job at once (which ran out of memory).


def gpu_mem_mb(job: str, scores_curvature: bool = True) -> int:
    """GPU memory (MB) that a `job` (a rule name) declares; 0 off the GPU, else its estimate, at most the GPU's share
    (a job estimated above it runs alone; curvature and evaluation halve their batches if it still runs out)."""
    if not GPU:
        return 0
    need = gpu_resources.job_gpu_mem_mb(CFG, job, TRAIN_SIZE, scores_curvature=scores_curvature)
    return min(need, GPU_MEM_CAP or need)


def subset_shard_gpu_mem_mb(wildcards) -> int:
    """A subset-model shard scores curvature only if it holds one of the first memorization.curvature_models."""
    m = CFG.memorization
    scored = m.curvature_models is None or int(wildcards.shard) * m.models_per_job < m.curvature_models
    return gpu_mem_mb("train_subset_models", scored)


def pack_gpu_jobs() -> None:
    """Cap the GPU memory that local jobs claim together at what the GPU has (jobs run on torch's "cuda", the
    first visible GPU), unless the user set it (--resources gpu_mem_mb=N). Cluster jobs get GPUs of their own."""
    if GPU_MEM_CAP is None or not workflow.local_exec or "gpu_mem_mb" in workflow.global_resources:
        return
    workflow.register_resource("gpu_mem_mb", GPU_MEM_CAP)
    print(f"GPU jobs share one GPU of {GPU_MEMORY[0]} MB: they run together while their gpu_mem_mb sums to at most"
          f" {GPU_MEM_CAP} (set another cap with --resources gpu_mem_mb=N)", file=sys.stderr)


pack_gpu_jobs()


wildcard_constraints:
    eps=r"[0-9.e+-]+",
    shard=r"\d+",


def all_outputs() -> list[str]:
    """Every figure of the study, its replication report, and the tables behind them archived beside it; and the
    resolved config of the run, so that a fresh clone, whose committed figures and report exist but were not made
    here, runs the study (the report follows the resolved config) instead of finding nothing to do."""
    figures = expand("figures/{study}/{figure}.{ext}", study=STUDY, figure=list(FIGURES), ext=FIGURE_OUTPUTS)
    return [*figures, f"paper/{STUDY}.md", f"paper/{STUDY}/config.yaml", RESOLVED_CONFIG]


def experiment_epsilons(wildcards) -> str:
    """The target epsilons of an experiment (a config section, memcurv.config.EXPERIMENTS)."""
    return " ".join(format_epsilon(e) for e in getattr(CFG, wildcards.experiment).epsilons)


def dp_shards(file: str = "") -> list[str]:
    """The DP models' shard folders (or a file in each): models_per_job of the epsilon x seed grid in each."""
    folders = expand(f"{RESULTS}/dp/shard{{shard}}", shard=DP_SHARDS)
    return [os.path.join(folder, file) if file else folder for folder in folders]


def published_inputs() -> list[str]:
    """Published per-example scores (Feldman-Zhang's and their index map, C-scores), when the config names them."""
    m = CFG.memorization
    return [path for path in (m.published_scores, m.published_index_map, m.cscores) if path]


def subset_shards() -> list[str]:
    return expand(f"{RESULTS}/subsets/shard{{shard}}.npz", shard=SUBSET_SHARDS)


def dp_subset_shards() -> list[str]:
    """The shards of memorization vs epsilon: DP subset models at each epsilon, and the non-private control's."""
    control = CONTROL_SHARDS if CFG.mem_vs_epsilon.control else []
    return [*expand(f"{RESULTS}/mem_vs_epsilon/private/shard{{shard}}.npz", shard=DP_SUBSET_SHARDS),
            *expand(f"{RESULTS}/mem_vs_epsilon/nonprivate/shard{{shard}}.npz", shard=control)]


def audit_shards() -> list[str]:
    return expand(f"{RESULTS}/audit/{{arm}}/shard{{shard}}.npz", arm=AUDIT_ARMS, shard=AUDIT_SHARDS)


def audit_noise(wildcards) -> list[str]:
    """The calibration a DP arm trains with; the non-private control needs none."""
    return [] if wildcards.arm == "nonprivate" else [f"{RESULTS}/noise/audit.json"]


def audit_noise_option(wildcards, input) -> str:
    return f"--noise {input.noise}" if input.noise else ""
