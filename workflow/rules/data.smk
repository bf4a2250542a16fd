# The dataset, fetched once from the internet where the study asks for it (its module DOWNLOADS, and dataset.download:
# true), by a local job (common.smk's LOCAL_RULES) before any job reads it. Offline datasets have no such job.

if DATASET_READY:

    rule download_data:
        input:
            config=RESOLVED_CONFIG,
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
