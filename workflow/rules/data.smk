# The resolved config of the study, the settings each verb's jobs read, and the dataset.


rule resolved_config:
    output:
        RESOLVED_CONFIG,
    params:
        text=RESOLVED_TEXT,
    log:
        f"{LOGS}/resolved_config.log",
    benchmark:
        f"{BENCH}/resolved_config.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    shell:  # the files the config names are checked before any job reads them (a failure removes the config)
        "printf '%s' {params.text:q} > {output} && python -m memcurv check-inputs --config {output} > {log} 2>&1"


rule job_settings:
    output:
        f"{RESULTS}/settings/{{verb}}.yaml",
    params:
        text=lambda wildcards: settings_text(wildcards.verb),
    log:
        f"{LOGS}/job_settings/{{verb}}.log",
    benchmark:
        f"{BENCH}/job_settings/{{verb}}.tsv"
    wildcard_constraints:
        verb=r"[a-z_-]+",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    shell:  # a record of what the verb's jobs read: they read the resolved config itself
        "printf '%s' {params.text:q} > {output} 2> {log}"


# The dataset, fetched once from the internet where the study asks for it (its module DOWNLOADS, and dataset.download:
# true), by a local job (common.smk's LOCAL_RULES) before any job reads it. Offline datasets have no such job.

if DATASET_READY:

    rule download_data:
        input:
            config=ancient(RESOLVED_CONFIG),
            settings=settings_file("download"),
        output:
            f"{RESULTS}/data/download.json",
        log:
            f"{LOGS}/download_data.log",
        benchmark:
            f"{BENCH}/download_data.tsv"
        conda:
            CONDA_ENV
        threads: 1
        resources:
            mem_mb=4000,
            runtime=60,
        shell:
            "python -m memcurv download --config {input.config} --out {output} > {log} 2>&1"
