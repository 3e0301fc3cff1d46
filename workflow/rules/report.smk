rule summary:
    input:
        pooled=expand(result_path("{analysis}/pooled.json"), analysis=ANALYSES),
    output:
        overview_result(result_path("summary.csv"), "summary", "summary table"),
    log:
        "logs/summary.log",
    conda:
        "../envs/metarepro.yaml"
    params:
        analyses=ANALYSES,
    message:
        f"summary table of {len(ANALYSES)} analyses"
    script:
        "../scripts/summary.py"


rule reproduction:
    input:
        published=published_sheet(),
        pooled=expand(result_path("{analysis}/pooled.json"), analysis=ANALYSES),
    output:
        overview_result(
            result_path("reproduction.csv"), "reproduction", "published vs reproduced"
        ),
    log:
        "logs/reproduction.log",
    conda:
        "../envs/metarepro.yaml"
    params:
        analyses=ANALYSES,
        compare=comparisons(),
    message:
        "published vs reproduced"
    script:
        "../scripts/reproduction.py"


rule report:
    input:
        summary=result_path("summary.csv"),
        reproduction=result_path("reproduction.csv"),
        pooled=expand(result_path("{analysis}/pooled.json"), analysis=ANALYSES),
        effects=expand(result_path("{analysis}/effects.csv"), analysis=ANALYSES),
        estimators=expand(result_path("{analysis}/estimators.csv"), analysis=ANALYSES),
        forest=expand(result_path("{analysis}/forest.svg"), analysis=ANALYSES),
        extras=sensitivity_outputs(),
        sheets=input_sheets(),
    output:
        overview_result(result_path("report.html"), "html_report", "HTML report"),
    log:
        "logs/report.log",
    conda:
        "../envs/metarepro.yaml"
    params:
        analyses=ANALYSES,
        config=config["analyses"],
        configfiles=workflow.configfiles,
        repo=workflow.basedir,
        labels=config.get("defaults", {}).get("labels", {}),
    message:
        "HTML report"
    script:
        "../scripts/report.py"
