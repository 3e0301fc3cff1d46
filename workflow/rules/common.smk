# Helpers shared by the rules: which analyses exist and what each one needs.


wildcard_constraints:
    analysis="[A-Za-z0-9_-]+",


ANALYSES = list(config["analyses"])
FOREST_FORMATS = ["svg", "png", "pdf"]


def analysis_sheet(wildcards):
    return config["analyses"][wildcards.analysis]["data"]


def analysis_config(wildcards):
    return {
        "name": wildcards.analysis,
        "defaults": config.get("defaults", {}),
        "analysis": config["analyses"][wildcards.analysis],
    }


def all_analysis_outputs():
    return expand(
        [
            "results/{analysis}/effects.csv",
            "results/{analysis}/pooled.json",
            "results/{analysis}/estimators.csv",
            "results/{analysis}/forest.{fmt}",
        ],
        analysis=ANALYSES,
        fmt=FOREST_FORMATS,
    )


def published_sheet():
    return config.get("published", [])


def comparisons():
    return {
        name: analysis["compare_with"]
        for name, analysis in config["analyses"].items()
        if analysis.get("compare_with")
    }
