# Helpers shared by the rules: which analyses exist and what each one needs.

from metarepro.sheet import SheetError, numeric_columns


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


def input_sheets():
    """Every extraction sheet the analyses read (and the published-results sheet): hashed in the report."""
    sheets = sorted({analysis["data"] for analysis in config["analyses"].values()})
    return sheets + ([config["published"]] if config.get("published") else [])


def published_sheet():
    return config.get("published", [])


def comparisons():
    return {
        name: analysis["compare_with"]
        for name, analysis in config["analyses"].items()
        if analysis.get("compare_with")
    }


def numeric_moderators(name):
    """Moderators of an analysis whose given values are all numbers (they get bubble plots).

    Read from the sheet when the DAG is built; an unreadable sheet yields none here and is reported,
    with its line and column, by the pool rule.
    """
    analysis = config["analyses"][name]
    try:
        return numeric_columns(analysis["data"], analysis.get("moderators", []), analysis.get("columns"))
    except SheetError:
        return []


def sensitivity_outputs():
    outputs = []
    for name, analysis in config["analyses"].items():
        base = f"results/{name}"
        outputs += [
            f"{base}/{table}.csv" for table in ("leave1out", "influence", "cumulative")
        ]
        outputs += [f"{base}/bias.json"]
        figures = ["leave1out", "cumulative", "baujat", "funnel"]
        if analysis.get("subgroups"):
            outputs.append(f"{base}/subgroups.csv")
            figures += [f"forest_subgroups_{column}" for column in analysis["subgroups"]]
        if analysis.get("moderators"):
            outputs.append(f"{base}/metareg.csv")
            figures += [f"bubble_{m}" for m in numeric_moderators(name)]
        outputs += [f"{base}/{fig}.{fmt}" for fig in figures for fmt in FOREST_FORMATS]
    return outputs
