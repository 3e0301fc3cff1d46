# Helpers shared by the rules: which analyses exist and what each one needs.

from metarepro.sheet import SheetError, numeric_columns


wildcard_constraints:
    analysis="[A-Za-z0-9_-]+",


ANALYSES = list(config["analyses"])
FOREST_FORMATS = ["svg", "png", "pdf"]


# Sheets are the user's files, relative to the working directory: local() keeps a module's `prefix` off them.
def analysis_sheet(wildcards):
    return local(config["analyses"][wildcards.analysis]["data"])


def analysis_config(wildcards):
    return {
        "name": wildcards.analysis,
        "defaults": config.get("defaults", {}),
        "analysis": config["analyses"][wildcards.analysis],
    }


def all_analysis_outputs():
    return expand(
        [
            result_path("{analysis}/effects.csv"),
            result_path("{analysis}/pooled.json"),
            result_path("{analysis}/estimators.csv"),
            result_path("{analysis}/forest.{fmt}"),
        ],
        analysis=ANALYSES,
        fmt=FOREST_FORMATS,
    )


def input_sheets():
    """Every extraction sheet the analyses read (and the published-results sheet): hashed in the report."""
    sheets = sorted({analysis["data"] for analysis in config["analyses"].values()})
    return [local(sheet) for sheet in sheets] + (
        [published_sheet()] if config.get("published") else []
    )


def published_sheet():
    return local(config["published"]) if config.get("published") else []


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
        return numeric_columns(
            analysis["data"], analysis.get("moderators", []), analysis.get("columns")
        )
    except SheetError:
        return []


def sensitivity_outputs():
    outputs = []
    for name, analysis in config["analyses"].items():
        base = result_path(name)
        outputs += [
            f"{base}/{table}.csv" for table in ("leave1out", "influence", "cumulative")
        ]
        outputs += [f"{base}/bias.json"]
        figures = ["leave1out", "cumulative", "baujat", "funnel"]
        if analysis.get("subgroups"):
            outputs.append(f"{base}/subgroups.csv")
            figures += [
                f"forest_subgroups_{column}" for column in analysis["subgroups"]
            ]
        if analysis.get("moderators"):
            outputs.append(f"{base}/metareg.csv")
            figures += [f"bubble_{m}" for m in numeric_moderators(name)]
        outputs += [f"{base}/{fig}.{fmt}" for fig in figures for fmt in FOREST_FORMATS]
    return outputs


# Every output lives under the config's `results` folder (default results/), so a researcher's run given its own
# folder never overwrites the default reproduction. Paths are relative, so a module `prefix` applies to them.
RESULTS = config.get("results", "results").rstrip("/")


def result_path(path):
    return f"{RESULTS}/{path}"


# `snakemake --report`: the tables over all analyses and the HTML page under "Overview", each analysis's
# tables and figures under "Per analysis" (one subcategory per analysis). Captions: workflow/report/.
def overview_result(path, caption, result):
    return report(
        path,
        caption=f"../report/{caption}.rst",
        category="Overview",
        labels={"result": result},
    )


def analysis_result(path, caption):
    return report(
        path,
        caption=f"../report/{caption}.rst",
        category="Per analysis",
        subcategory="{analysis}",
        labels={"analysis": "{analysis}", "result": path.rsplit("/", 1)[-1]},
    )


def figure_outputs(name, caption=None):
    """Every format of one per-analysis figure; only the SVG goes into the report (the same drawing)."""
    paths = [result_path(f"{{analysis}}/{name}.{fmt}") for fmt in FOREST_FORMATS]
    return [
        analysis_result(path, caption or name) if path.endswith(".svg") else path
        for path in paths
    ]


def run_summary():
    """The last lines of a run: where the report is, then k, estimate and CI per analysis (read with csv only)."""
    import csv
    from pathlib import Path

    summary, page = Path(result_path("summary.csv")), Path(result_path("report.html"))
    if not (summary.exists() and page.exists()):
        return ""
    lines = [f"Report: {page.resolve()}"]
    with summary.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    width = max(len(row["analysis"]) for row in rows)
    for row in rows:
        # ROM and ZCOR read best back-transformed (ratio of means, r), as the figures show them
        scale = next((s for s in ("_ratio", "_r") if row.get(f"estimate{s}")), "")
        values = [
            float(row[f"{field}{scale}"]) for field in ("estimate", "ci_low", "ci_high")
        ]
        label = {"_ratio": "ratio", "_r": "r"}.get(scale, row["measure"])
        lines.append(
            f"  {row['analysis']:<{width}}  k={row['k']:>3}  {label} {values[0]:.3f}"
            f" ({values[1]:.3f} to {values[2]:.3f})"
        )
    return "\n".join(lines)
