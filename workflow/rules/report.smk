rule summary:
    input:
        pooled=expand("results/{analysis}/pooled.json", analysis=ANALYSES),
    output:
        "results/summary.csv",
    params:
        analyses=ANALYSES,
    log:
        "logs/summary.log",
    conda:
        "../envs/metarepro.yaml"
    script:
        "../scripts/summary.py"


rule reproduction:
    input:
        published=published_sheet(),
        pooled=expand("results/{analysis}/pooled.json", analysis=ANALYSES),
    output:
        "results/reproduction.csv",
    params:
        analyses=ANALYSES,
        compare=comparisons(),
    log:
        "logs/reproduction.log",
    conda:
        "../envs/metarepro.yaml"
    script:
        "../scripts/reproduction.py"


rule report:
    input:
        summary="results/summary.csv",
        reproduction="results/reproduction.csv",
        pooled=expand("results/{analysis}/pooled.json", analysis=ANALYSES),
        effects=expand("results/{analysis}/effects.csv", analysis=ANALYSES),
        estimators=expand("results/{analysis}/estimators.csv", analysis=ANALYSES),
        forest=expand("results/{analysis}/forest.svg", analysis=ANALYSES),
        extras=sensitivity_outputs(),
        sheets=input_sheets(),
    output:
        "results/report.html",
    params:
        analyses=ANALYSES,
        config=config["analyses"],
        configfiles=workflow.configfiles,
        repo=workflow.basedir,
        labels=config.get("defaults", {}).get("labels", {}),
    log:
        "logs/report.log",
    conda:
        "../envs/metarepro.yaml"
    script:
        "../scripts/report.py"
