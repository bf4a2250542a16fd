# Empirical DP audit (beyond the paper): canaries drawn into a seeded half of the models, DP models at each
# epsilon and a non-private negative control, and the empirical epsilon lower bounds (memcurv.jobs.audit).
# The noise of the audit's epsilons comes from calibrate_noise (experiment "audit").

rule audit_canaries:
    input:
        config=ancient(RESOLVED_CONFIG),
        settings=settings_file("audit-canaries"),
    output:
        f"{RESULTS}/audit/canaries.npz",
    log:
        f"{LOGS}/audit_canaries.log",
    benchmark:
        f"{BENCH}/audit_canaries.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m memcurv audit-canaries --config {input.config} --out {output} > {log} 2>&1"


rule train_audit_models:
    input:
        config=ancient(RESOLVED_CONFIG),
        settings=settings_file("train-audit"),
        canaries=f"{RESULTS}/audit/canaries.npz",
        noise=audit_noise,
    output:
        f"{RESULTS}/audit/{{arm}}/shard{{shard}}.npz",
    params:
        noise=audit_noise_option,
        resume=f"{RESULTS}/resume/audit_{{arm}}_shard{{shard}}",
    log:
        f"{LOGS}/train_audit_models/{{arm}}_shard{{shard}}.log",
    benchmark:
        f"{BENCH}/train_audit_models/{{arm}}_shard{{shard}}.tsv"
    wildcard_constraints:
        arm=r"eps[0-9.e+-]+|nonprivate",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=4000,
        runtime=120,
        gpu=GPU,
        gpu_mem_mb=gpu_mem_mb("train_dp_subset_models"),  # DP training; curvature of the canaries only
    shell:
        "python -m memcurv train-audit --config {input.config} --arm {wildcards.arm} --canaries {input.canaries}"
        " {params.noise} --shard {wildcards.shard} --out {output} --resume {params.resume} --threads {threads}"
        " > {log} 2>&1"


rule audit_table:
    input:
        config=ancient(RESOLVED_CONFIG),
        settings=settings_file("audit-table"),
        canaries=f"{RESULTS}/audit/canaries.npz",
        shards=audit_shards(),
    output:
        bounds=table_file(catalogue.AUDIT),
        canaries=table_file(catalogue.AUDIT_CANARIES),
    log:
        f"{LOGS}/audit_table.log",
    benchmark:
        f"{BENCH}/audit_table.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m memcurv audit-table --config {input.config} --canaries {input.canaries} --shards {input.shards}"
        " --out {output.bounds} --canaries-out {output.canaries} > {log} 2>&1"
