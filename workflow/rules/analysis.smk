rule pool:
    input:
        sheet=analysis_sheet,
    output:
        effects=analysis_result(result_path("{analysis}/effects.csv"), "effects"),
        pooled=analysis_result(result_path("{analysis}/pooled.json"), "pooled"),
        estimators=analysis_result(
            result_path("{analysis}/estimators.csv"), "estimators"
        ),
    log:
        "logs/pool/{analysis}.log",
    conda:
        "../envs/metarepro.yaml"
    params:
        settings=analysis_config,
    message:
        "{wildcards.analysis}: effect sizes and pooled fits"
    script:
        "../scripts/pool.py"


rule forest:
    input:
        sheet=analysis_sheet,
        effects=result_path("{analysis}/effects.csv"),
        pooled=result_path("{analysis}/pooled.json"),
    output:
        figure_outputs("forest"),
    log:
        "logs/forest/{analysis}.log",
    conda:
        "../envs/metarepro.yaml"
    params:
        settings=analysis_config,
    message:
        "{wildcards.analysis}: forest plot"
    script:
        "../scripts/forest.py"
