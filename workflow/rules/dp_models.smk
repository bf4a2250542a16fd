# DP models (epsilon x seed): noise calibration, training, training-set curvature, one table.


rule calibrate_noise:
    input:
        config=RESOLVED_CONFIG,
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


rule train_dp_model:
    input:
        config=RESOLVED_CONFIG,
        noise=f"{RESULTS}/noise/dp_models.json",
    output:
        model=f"{RESULTS}/dp/eps{{eps}}/seed{{seed}}/model.pt",
        metrics=f"{RESULTS}/dp/eps{{eps}}/seed{{seed}}/metrics.json",
    params:
        out_dir=subpath(output.model, parent=True),
        resume=f"{RESULTS}/resume/dp_eps{{eps}}_seed{{seed}}",
    log:
        f"{LOGS}/train_dp_model/eps{{eps}}_seed{{seed}}.log",
    benchmark:
        f"{BENCH}/train_dp_model/eps{{eps}}_seed{{seed}}.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=4000,
        runtime=by_attempt(120),
        gpu=GPU,
        gpu_mem_mb=gpu_mem_mb("train_dp_model"),
    shell:
        "python -m memcurv train-dp --config {input.config} --epsilon {wildcards.eps} --seed {wildcards.seed}"
        " --noise {input.noise} --out-dir {params.out_dir} --resume {params.resume} --threads {threads} > {log} 2>&1"


rule dp_model_curvature:
    input:
        config=RESOLVED_CONFIG,
        model=f"{RESULTS}/dp/eps{{eps}}/seed{{seed}}/model.pt",
    output:
        f"{RESULTS}/dp/eps{{eps}}/seed{{seed}}/curvature.npz",
    log:
        f"{LOGS}/dp_model_curvature/eps{{eps}}_seed{{seed}}.log",
    benchmark:
        f"{BENCH}/dp_model_curvature/eps{{eps}}_seed{{seed}}.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=4000,
        runtime=by_attempt(60),
        gpu=GPU,
        gpu_mem_mb=gpu_mem_mb("dp_model_curvature"),
    shell:
        "python -m memcurv curvature --config {input.config} --checkpoint {input.model} --out {output}"
        " --threads {threads} > {log} 2>&1"


rule dp_models_table:
    input:
        config=RESOLVED_CONFIG,
        metrics=dp_metrics(),
        curvature=dp_curvatures(),
    output:
        table_file(catalogue.DP_MODELS),
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
        "python -m memcurv dp-table --config {input.config} --metrics {input.metrics}"
        " --curvature {input.curvature} --out {output} > {log} 2>&1"
