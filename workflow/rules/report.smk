rule report:
    input:
        # each analysis's section of the page (its own job renders it, with every table and figure), and what the
        # headline, the summary of findings and the overview figures read (jobs/outputs.py REPORT_INPUTS)
        **report_inputs(),
        sheets=input_sheets(),
        published=published_sheet(),
        # the study-level comparisons (config compare_studies): their counts open the reproduction section
        study_level=[
            result_path(f"{name}/study_level.csv")
            for name in ANALYSES
            if config["analyses"][name].get("compare_studies")
        ],
    output:
        # the page's tables (jobs/outputs.py OVERVIEW_TABLES): summary of findings, sensitivity summaries, the
        # PRISMA flow of rows and the study characteristics
        **{
            kind: overview_result(result_path(file), kind, file)
            for kind, file in OUTPUTS.OVERVIEW_TABLES.items()
        },
        summary=overview_result(result_path("summary.csv"), "summary", "summary table"),
        reproduction=overview_result(
            result_path("reproduction.csv"), "reproduction", "published vs reproduced"
        ),
        report=overview_result(result_path("report.html"), "html_report", "HTML report"),
    log:
        "logs/report.log",
    conda:
        "../envs/metarepro.yaml"
    # the last job, alone: two processes draw the overview figures
    threads: 2
    resources:
        mem_mb=4000,
        runtime=20,
    params:
        analyses=ANALYSES,
        config=config["analyses"],
        configfiles=workflow.configfiles,
        repo=workflow.basedir,
        labels=config["defaults"].get("labels", {}),
        data_note=config.get("data_note", ""),
        prisma=config.get("prisma", {}),
    message:
        f"summary table, published vs reproduced, HTML report of {len(ANALYSES)} analyses"
    script:
        "../scripts/report.py"
