rule pool:
    input:
        sheet=analysis_sheet,
    output:
        effects="results/{analysis}/effects.csv",
        pooled="results/{analysis}/pooled.json",
        estimators="results/{analysis}/estimators.csv",
    params:
        settings=analysis_config,
    log:
        "logs/pool/{analysis}.log",
    conda:
        "../envs/metarepro.yaml"
    script:
        "../scripts/pool.py"


rule forest:
    input:
        sheet=analysis_sheet,
        effects="results/{analysis}/effects.csv",
        pooled="results/{analysis}/pooled.json",
    output:
        expand("results/{{analysis}}/forest.{fmt}", fmt=FOREST_FORMATS),
    params:
        settings=analysis_config,
    log:
        "logs/forest/{analysis}.log",
    conda:
        "../envs/metarepro.yaml"
    script:
        "../scripts/forest.py"
