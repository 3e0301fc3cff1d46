rule diagnostics:
    input:
        sheet=analysis_sheet,
        effects=result_path("{analysis}/effects.csv"),
    output:
        leave1out=analysis_result(
            result_path("{analysis}/leave1out.csv"), "diagnostics"
        ),
        influence=analysis_result(
            result_path("{analysis}/influence.csv"), "diagnostics"
        ),
        cumulative=analysis_result(
            result_path("{analysis}/cumulative.csv"), "diagnostics"
        ),
        figures=figure_outputs("leave1out")
        + figure_outputs("cumulative")
        + figure_outputs("baujat"),
    log:
        "logs/diagnostics/{analysis}.log",
    conda:
        "../envs/metarepro.yaml"
    params:
        settings=analysis_config,
    message:
        "{wildcards.analysis}: leave-one-out, influence, cumulative"
    script:
        "../scripts/diagnostics.py"


rule publication_bias:
    input:
        sheet=analysis_sheet,
        effects=result_path("{analysis}/effects.csv"),
    output:
        bias=analysis_result(result_path("{analysis}/bias.json"), "bias"),
        funnel=figure_outputs("funnel"),
    log:
        "logs/publication_bias/{analysis}.log",
    conda:
        "../envs/metarepro.yaml"
    params:
        settings=analysis_config,
    message:
        "{wildcards.analysis}: small-study effects, funnel plot"
    script:
        "../scripts/publication_bias.py"


rule subgroups:
    input:
        sheet=analysis_sheet,
        effects=result_path("{analysis}/effects.csv"),
    output:
        analysis_result(result_path("{analysis}/subgroups.csv"), "subgroups"),
    log:
        "logs/subgroups/{analysis}.log",
    conda:
        "../envs/metarepro.yaml"
    params:
        settings=analysis_config,
    message:
        "{wildcards.analysis}: subgroups"
    script:
        "../scripts/subgroups.py"


rule metareg:
    input:
        sheet=analysis_sheet,
        effects=result_path("{analysis}/effects.csv"),
    output:
        analysis_result(result_path("{analysis}/metareg.csv"), "metareg"),
    log:
        "logs/metareg/{analysis}.log",
    conda:
        "../envs/metarepro.yaml"
    params:
        settings=analysis_config,
    message:
        "{wildcards.analysis}: meta-regression"
    script:
        "../scripts/metareg.py"


rule moderator_figure:
    input:
        sheet=analysis_sheet,
        effects=result_path("{analysis}/effects.csv"),
    output:
        figure_outputs("{kind}_{column}", "moderator_figure"),
    log:
        "logs/moderator_figure/{analysis}_{kind}_{column}.log",
    wildcard_constraints:
        kind="forest_subgroups|bubble",
    conda:
        "../envs/metarepro.yaml"
    params:
        settings=analysis_config,
    message:
        "{wildcards.analysis}: {wildcards.kind} plot of {wildcards.column}"
    script:
        "../scripts/moderator_figure.py"
