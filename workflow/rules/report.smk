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
        forest=expand("results/{analysis}/forest.svg", analysis=ANALYSES),
        extras=sensitivity_outputs(),
    output:
        "results/report.html",
    params:
        analyses=ANALYSES,
        titles=[config["analyses"][name]["title"] for name in ANALYSES],
    log:
        "logs/report.log",
    conda:
        "../envs/metarepro.yaml"
    script:
        "../scripts/report.py"
