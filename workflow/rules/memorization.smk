# Non-private subset models -> memorization and per-example curvature; the top-k under DP.


rule subset_masks:
    input:
        config=ancient(RESOLVED_CONFIG),
        settings=settings_file("masks"),
        data=DATASET_READY,
    output:
        f"{RESULTS}/subsets/masks.npz",
    log:
        f"{LOGS}/subset_masks.log",
    benchmark:
        f"{BENCH}/subset_masks.tsv"
    conda:
        CONDA_ENV
    threads: 1
    priority: MEMORIZATION_PRIORITY
    resources:
        mem_mb=2000,
        runtime=by_attempt(10),
    shell:
        "python -m memcurv masks --config {input.config} --out {output} > {log} 2>&1"


rule train_subset_models:
    input:
        config=ancient(RESOLVED_CONFIG),
        settings=settings_file("train-subsets"),
        masks=f"{RESULTS}/subsets/masks.npz",
    output:
        f"{RESULTS}/subsets/shard{{shard}}.npz",
    params:
        resume=f"{RESULTS}/resume/subsets_shard{{shard}}",
    log:
        f"{LOGS}/train_subset_models/shard{{shard}}.log",
    benchmark:
        f"{BENCH}/train_subset_models/shard{{shard}}.tsv"
    conda:
        CONDA_ENV
    threads: 1
    priority: MEMORIZATION_PRIORITY
    resources:
        mem_mb=4000,
        runtime=by_attempt(240),
        gpu=GPU,
        gpu_mem_mb=subset_shard_gpu_mem_mb,
    shell:
        "python -m memcurv train-subsets --config {input.config} --masks {input.masks} --shard {wildcards.shard}"
        " --out {output} --resume {params.resume} --threads {threads} > {log} 2>&1"


rule examples_table:
    input:
        config=ancient(RESOLVED_CONFIG),
        settings=settings_file("examples"),
        shards=subset_shards(),
        published=published_inputs(),
    output:
        examples=table_file(catalogue.EXAMPLES),
        models=table_file(catalogue.SUBSET_MODELS),
        scores=table_file(catalogue.SUBSET_SCORES),
    log:
        f"{LOGS}/examples_table.log",
    benchmark:
        f"{BENCH}/examples_table.tsv"
    conda:
        CONDA_ENV
    threads: 1
    priority: MEMORIZATION_PRIORITY
    resources:
        mem_mb=8000,
        runtime=by_attempt(20),
    shell:
        "python -m memcurv examples --config {input.config} --shards {input.shards} --out {output.examples}"
        " --models-out {output.models} --scores-out {output.scores} > {log} 2>&1"


rule top_k:
    input:
        config=ancient(RESOLVED_CONFIG),
        settings=settings_file("topk"),
        examples=table_file(catalogue.EXAMPLES),
    output:
        f"{RESULTS}/mem_vs_epsilon/topk.json",
    log:
        f"{LOGS}/top_k.log",
    benchmark:
        f"{BENCH}/top_k.tsv"
    conda:
        CONDA_ENV
    threads: 1
    priority: MEMORIZATION_PRIORITY
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m memcurv topk --config {input.config} --examples {input.examples} --out {output} > {log} 2>&1"


rule train_dp_subset_models:
    input:
        config=ancient(RESOLVED_CONFIG),
        settings=settings_file("train-dp-subsets"),
        noise=f"{RESULTS}/noise/mem_vs_epsilon.json",
        topk=f"{RESULTS}/mem_vs_epsilon/topk.json",
    output:
        f"{RESULTS}/mem_vs_epsilon/private/shard{{shard}}.npz",
    params:
        resume=f"{RESULTS}/resume/mem_private_shard{{shard}}",
    log:
        f"{LOGS}/train_dp_subset_models/shard{{shard}}.log",
    benchmark:
        f"{BENCH}/train_dp_subset_models/shard{{shard}}.tsv"
    conda:
        CONDA_ENV
    threads: 1
    priority: MEMORIZATION_PRIORITY
    resources:
        mem_mb=4000,
        runtime=by_attempt(240),
        gpu=GPU,
        gpu_mem_mb=gpu_mem_mb("train_dp_subset_models"),
    shell:
        "python -m memcurv train-dp-subsets --config {input.config} --noise {input.noise}"
        " --topk {input.topk} --shard {wildcards.shard} --out {output} --resume {params.resume}"
        " --threads {threads} > {log} 2>&1"


rule train_topk_control_models:
    input:
        config=ancient(RESOLVED_CONFIG),
        settings=settings_file("train-topk-control"),
        topk=f"{RESULTS}/mem_vs_epsilon/topk.json",
    output:
        f"{RESULTS}/mem_vs_epsilon/nonprivate/shard{{shard}}.npz",
    params:
        resume=f"{RESULTS}/resume/mem_nonprivate_shard{{shard}}",
    log:
        f"{LOGS}/train_topk_control_models/shard{{shard}}.log",
    benchmark:
        f"{BENCH}/train_topk_control_models/shard{{shard}}.tsv"
    conda:
        CONDA_ENV
    threads: 1
    priority: MEMORIZATION_PRIORITY
    resources:
        mem_mb=4000,
        runtime=by_attempt(240),
        gpu=GPU,
        gpu_mem_mb=gpu_mem_mb("train_topk_control_models"),
    shell:
        "python -m memcurv train-topk-control --config {input.config} --topk {input.topk} --shard {wildcards.shard}"
        " --out {output} --resume {params.resume} --threads {threads} > {log} 2>&1"


rule mem_vs_epsilon_table:
    input:
        config=ancient(RESOLVED_CONFIG),
        settings=settings_file("mem-eps-table"),
        examples=table_file(catalogue.EXAMPLES),
        shards=dp_subset_shards(),
    output:
        table=table_file(catalogue.MEM_VS_EPSILON),
        models=table_file(catalogue.MEM_VS_EPSILON_MODELS),
    log:
        f"{LOGS}/mem_vs_epsilon_table.log",
    benchmark:
        f"{BENCH}/mem_vs_epsilon_table.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m memcurv mem-eps-table --config {input.config} --examples {input.examples}"
        " --shards {input.shards} --out {output.table} --models-out {output.models} > {log} 2>&1"


rule extremes:
    input:
        config=ancient(RESOLVED_CONFIG),
        settings=settings_file("extremes"),
        examples=table_file(catalogue.EXAMPLES),
    output:
        table_file(catalogue.EXTREMES),
    log:
        f"{LOGS}/extremes.log",
    benchmark:
        f"{BENCH}/extremes.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=4000,
        runtime=by_attempt(10),
    shell:
        "python -m memcurv extremes --config {input.config} --examples {input.examples} --out {output} > {log} 2>&1"
