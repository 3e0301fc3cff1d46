rule diagnostics:
    input:
        sheet=analysis_sheet,
        effects="results/{analysis}/effects.csv",
    output:
        leave1out="results/{analysis}/leave1out.csv",
        influence="results/{analysis}/influence.csv",
        cumulative="results/{analysis}/cumulative.csv",
        figures=expand(
            "results/{{analysis}}/{figure}.{fmt}",
            figure=["leave1out", "cumulative", "baujat"],
            fmt=FOREST_FORMATS,
        ),
    params:
        settings=analysis_config,
    log:
        "logs/diagnostics/{analysis}.log",
    conda:
        "../envs/metarepro.yaml"
    script:
        "../scripts/diagnostics.py"


rule publication_bias:
    input:
        sheet=analysis_sheet,
        effects="results/{analysis}/effects.csv",
    output:
        bias="results/{analysis}/bias.json",
        funnel=expand("results/{{analysis}}/funnel.{fmt}", fmt=FOREST_FORMATS),
    params:
        settings=analysis_config,
    log:
        "logs/publication_bias/{analysis}.log",
    conda:
        "../envs/metarepro.yaml"
    script:
        "../scripts/publication_bias.py"


rule subgroups:
    input:
        sheet=analysis_sheet,
        effects="results/{analysis}/effects.csv",
    output:
        "results/{analysis}/subgroups.csv",
    params:
        settings=analysis_config,
    log:
        "logs/subgroups/{analysis}.log",
    conda:
        "../envs/metarepro.yaml"
    script:
        "../scripts/subgroups.py"


rule metareg:
    input:
        sheet=analysis_sheet,
        effects="results/{analysis}/effects.csv",
    output:
        "results/{analysis}/metareg.csv",
    params:
        settings=analysis_config,
    log:
        "logs/metareg/{analysis}.log",
    conda:
        "../envs/metarepro.yaml"
    script:
        "../scripts/metareg.py"


rule moderator_figure:
    input:
        sheet=analysis_sheet,
        effects="results/{analysis}/effects.csv",
    output:
        expand("results/{{analysis}}/{{kind}}_{{column}}.{fmt}", fmt=FOREST_FORMATS),
    wildcard_constraints:
        kind="forest_subgroups|bubble",
    params:
        settings=analysis_config,
    log:
        "logs/moderator_figure/{analysis}_{kind}_{column}.log",
    conda:
        "../envs/metarepro.yaml"
    script:
        "../scripts/moderator_figure.py"
