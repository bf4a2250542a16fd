# One rule per figure; each reads only the tables it draws from.

for _figure in FIGURES:

    rule:
        name:
            f"figure_{_figure}"
        input:
            config=ancient(RESOLVED_CONFIG),
            settings=settings_file("figure"),
            tables=[table_file(name) for name in FIGURES[_figure].tables],
        output:
            pdf=f"figures/{STUDY}/{_figure}.pdf",
            png=report(f"figures/{STUDY}/{_figure}.png", caption=f"../report/{_figure}.rst", category="Figures"),
            csv=f"figures/{STUDY}/{_figure}.csv",
        params:
            figure=_figure,
        log:
            f"{LOGS}/figure/{_figure}.log",
        benchmark:
            f"{BENCH}/figure/{_figure}.tsv"
        conda:
            CONDA_ENV
        threads: 1
        resources:
            mem_mb=2000,
            runtime=10,
        shell:
            "python -m memcurv figure {params.figure} --config {input.config} --tables {input.tables}"
            " --out-pdf {output.pdf} --out-png {output.png} --out-csv {output.csv} > {log} 2>&1"
