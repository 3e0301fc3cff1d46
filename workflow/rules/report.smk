rule report:
    input:
        pooled=[result_path(f"{name}/pooled.json") for name in ANALYSES],
        analyses=all_analysis_outputs(),
        sheets=input_sheets(),
        published=published_sheet(),
    output:
        summary=overview_result(result_path("summary.csv"), "summary", "summary table"),
        reproduction=overview_result(
            result_path("reproduction.csv"), "reproduction", "published vs reproduced"
        ),
        report=overview_result(result_path("report.html"), "html_report", "HTML report"),
    log:
        "logs/report.log",
    conda:
        "../envs/metarepro.yaml"
    resources:
        mem_mb=4000,
        runtime=20,
    params:
        analyses=ANALYSES,
        config=config["analyses"],
        configfiles=workflow.configfiles,
        repo=workflow.basedir,
        labels=config.get("defaults", {}).get("labels", {}),
        formats=FIGURE_FORMATS,
    message:
        f"summary table, published vs reproduced, HTML report of {len(ANALYSES)} analyses"
    script:
        "../scripts/report.py"
