# The replication report of the study: every claim checked against the run's tables (figures are linked).
# It is written under results/ and then copied to paper/: Snakemake removes a job's outputs when it starts and
# when it fails, so a report job that fails (a damaged table, a bug) would otherwise take the last good report
# with it; the copy cannot fail halfway through a claim.


rule report:
    input:
        config=RESOLVED_CONFIG,  # the report and the archive read every setting
        tables=[table_file(name) for name in REPORT_TABLES],
    output:
        md=f"{RESULTS}/report/{STUDY}.md",
        json=f"{RESULTS}/report/{STUDY}.json",
    params:
        tables=lambda wildcards, input: os.path.dirname(input.tables[0]),
        figures=f"figures/{STUDY}",  # linked from the report, not read: the report is drawn from tables only
    log:
        f"{LOGS}/report.log",
    benchmark:
        f"{BENCH}/report.tsv"
    conda:
        CONDA_ENV
    threads: 1
    priority: REPORT_PRIORITY
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m memcurv report --config {input.config} --tables-dir {params.tables} --figures {params.figures}"
        " --out {output.md} > {log} 2>&1"


rule publish_report:
    input:
        md=f"{RESULTS}/report/{STUDY}.md",
        json=f"{RESULTS}/report/{STUDY}.json",
    output:
        md=f"paper/{STUDY}.md",
        json=f"paper/{STUDY}.json",
    log:
        f"{LOGS}/publish_report.log",
    benchmark:
        f"{BENCH}/publish_report.tsv"
    conda:
        CONDA_ENV
    threads: 1
    priority: REPORT_PRIORITY
    resources:
        mem_mb=100,
        runtime=5,
    shell:
        "(cp {input.md} {output.md} && cp {input.json} {output.json}) > {log} 2>&1"


rule archive_tables:
    input:
        config=RESOLVED_CONFIG,
        tables=[table_file(name) for name in ARCHIVED_TABLES],
    output:
        config=f"paper/{STUDY}/config.yaml",
        tables=[f"paper/{STUDY}/tables/{name}" for name in ARCHIVED_TABLES],
    params:
        out_dir=lambda wildcards, output: os.path.dirname(output.config),
    log:
        f"{LOGS}/archive_tables.log",
    benchmark:
        f"{BENCH}/archive_tables.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "python -m memcurv archive --config {input.config} --tables {input.tables} --out-dir {params.out_dir}"
        " > {log} 2>&1"
