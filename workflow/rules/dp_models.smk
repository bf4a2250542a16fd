# DP models (epsilon x seed): noise calibration, training and curvature in shards of the grid, one table.


rule calibrate_noise:
    input:
        config=ancient(RESOLVED_CONFIG),
        settings=f"{RESULTS}/settings/calibrate-{{experiment}}.yaml",
        data=DATASET_READY,
    output:
        f"{RESULTS}/noise/{{experiment}}.json",
    params:
        epsilons=experiment_epsilons,
    log:
        f"{LOGS}/calibrate_noise/{{experiment}}.log",
    benchmark:
        f"{BENCH}/calibrate_noise/{{experiment}}.tsv"
    wildcard_constraints:
        experiment="|".join(EXPERIMENTS),
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=by_attempt(30),
    shell:
        "python -m memcurv calibrate --config {input.config} --experiment {wildcards.experiment}"
        " --epsilons {params.epsilons} --out {output} --threads {threads} > {log} 2>&1"


rule train_dp_models:
    input:
        config=ancient(RESOLVED_CONFIG),
        settings=settings_file("train-dp"),
        noise=f"{RESULTS}/noise/dp_models.json",
    output:
        models=f"{RESULTS}/dp/shard{{shard}}/models.pt",
        metrics=f"{RESULTS}/dp/shard{{shard}}/metrics.json",
        curvature=f"{RESULTS}/dp/shard{{shard}}/curvature.npz",
    params:
        out_dir=subpath(output.models, parent=True),
        resume=f"{RESULTS}/resume/dp_shard{{shard}}",
    log:
        f"{LOGS}/train_dp_models/shard{{shard}}.log",
    benchmark:
        f"{BENCH}/train_dp_models/shard{{shard}}.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=4000,
        # 3 h a model, at most a day a job (a small study's job holds 20 models of seconds each): a job that runs out
        # of time is retried with twice as much and resumes from its last checkpoint
        runtime=by_attempt(min(24 * 60, 180 * min(CFG.dp_models.models_per_job, DP_MODELS))),
        gpu=GPU,
        gpu_mem_mb=gpu_mem_mb("train_dp_models"),
    shell:
        "python -m memcurv train-dp --config {input.config} --shard {wildcards.shard}"
        " --noise {input.noise} --out-dir {params.out_dir} --resume {params.resume} --threads {threads} > {log} 2>&1"


rule dp_models_table:
    input:
        config=ancient(RESOLVED_CONFIG),
        settings=settings_file("dp-table"),
        metrics=dp_shards("metrics.json"),
        curvature=dp_shards("curvature.npz"),
    output:
        table_file(catalogue.DP_MODELS),
    params:
        shards=dp_shards(),
    log:
        f"{LOGS}/dp_models_table.log",
    benchmark:
        f"{BENCH}/dp_models_table.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m memcurv dp-table --config {input.config} --shards {params.shards} --out {output} > {log} 2>&1"
