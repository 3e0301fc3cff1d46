"""Run a whole config from Python, without Snakemake: the files the workflow's rules write, from the same steps.

    >>> from metarepro.steps.run import run_config
    >>> run_config("config/examples/passos2015_ptsd_il6.yaml")  # doctest: +SKIP
    PosixPath('results/report.html')

Each rule of ``workflow/rules/*.smk`` calls one file-level step of :mod:`metarepro.pipeline` or
:mod:`metarepro.sensitivity`; this module calls the same steps in the same order, one analysis after another
(Snakemake adds what a notebook does not need: parallel jobs, incremental reruns, logs, ``--report``).
Paths in the config are relative to the working directory, as for the workflow.
"""

from __future__ import annotations

from pathlib import Path

from ..config import ConfigError, check_config, format_errors, load_config
from ..sheet import SheetError

SCHEMA = Path(__file__).resolve().parents[3] / "workflow" / "schemas" / "config.schema.yaml"
FORMATS = ("svg", "png")


def read_checked_config(path) -> dict:
    """The config as the workflow reads it: strictly, checked whole, defaults filled; SheetError on problems."""
    try:
        config, key_lines = load_config([path])
    except ConfigError as err:
        raise SheetError(str(err)) from None
    if config is None:
        raise SheetError(f"{path}: a YTE template (__use_yte__) can only be run through Snakemake")
    if not SCHEMA.exists():
        raise SheetError(f"{SCHEMA} not found: run_config needs a metarepro checkout (pip install -e .)")
    problems = check_config(config, SCHEMA, key_lines)
    if problems:
        raise SheetError(format_errors(problems))
    return config


def _analysis(name: str, config: dict, folder: Path, formats) -> list[Path]:
    """One analysis: the outputs of rules pool, forest, diagnostics, publication_bias, subgroups, metareg and
    moderator_figure. Returns the files written besides the pooled tables (for the report)."""
    from ..plots import save_figure
    from ..sheet import numeric_columns
    from .files import read_effects, write_json
    from .pool import forest_figure, run_analysis, write_analysis
    from .sensitivity import (
        bubble,
        diagnostics,
        figure_labels,
        load_analysis,
        metaregression,
        publication_bias,
        subgroup_figure,
        subgroups,
    )

    analysis = config["analyses"][name]
    settings = {"name": name, "defaults": config.get("defaults", {}), "analysis": analysis}
    folder.mkdir(parents=True, exist_ok=True)
    sheet = analysis["data"]
    result = run_analysis(sheet, analysis, settings["defaults"])
    write_analysis(result, folder / "effects.csv", folder / "pooled.json", folder / "estimators.csv")

    def figure(fig, stem):
        save_figure(fig, [folder / f"{stem}.{fmt}" for fmt in formats])
        return [folder / f"{stem}.{fmt}" for fmt in formats]

    labels = figure_labels(settings)
    figure(forest_figure(sheet, settings, read_effects(folder / "effects.csv"), result.pooled), "forest")
    model, rows = load_analysis(sheet, folder / "effects.csv", settings)
    written = []
    diag = diagnostics(rows, model, order_column=analysis.get("cumulative_order", "year"), labels=labels)
    for table_name, table in diag.tables.items():
        table.to_csv(folder / f"{table_name}.csv", index=False)
        written.append(folder / f"{table_name}.csv")
    for stem, fig in diag.figures.items():
        written += figure(fig, stem)
    bias = publication_bias(rows, model, labels=labels)
    write_json(bias.record, folder / "bias.json")
    written += [folder / "bias.json", *figure(bias.figures["funnel"], "funnel")]
    if analysis.get("subgroups"):
        subgroups(rows, model, analysis["subgroups"]).to_csv(folder / "subgroups.csv", index=False)
        written.append(folder / "subgroups.csv")
        for column in analysis["subgroups"]:
            drawn = subgroup_figure(rows, model, column, analysis["title"], labels)
            written += figure(drawn, f"forest_subgroups_{column}")
    if analysis.get("moderators"):
        table = metaregression(rows, model, analysis["moderators"], analysis.get("permutations", 1000),
                               analysis.get("seed", 1))  # fmt: skip
        table.to_csv(folder / "metareg.csv", index=False)
        written.append(folder / "metareg.csv")
        for moderator in numeric_columns(sheet, analysis["moderators"], analysis.get("columns")):
            written += figure(bubble(rows, model, moderator, analysis["title"], labels), f"bubble_{moderator}")
    return written


def run_config(config_path, formats=FORMATS) -> Path:
    """Every analysis of a config, then summary.csv, reproduction.csv and report.html in its ``results``
    folder (default ``results``); returns the report's path. Bad input raises :class:`SheetError` with the
    message the workflow prints."""
    from .overview import build_report, reproduction, summary_table

    config = read_checked_config(config_path)
    out = Path(config.get("results", "results"))
    names = list(config["analyses"])
    extras = []
    for name in names:
        extras += _analysis(name, config, out / name, formats)
    pooled = [out / name / "pooled.json" for name in names]
    summary_table(names, pooled).to_csv(out / "summary.csv", index=False)
    compare = {n: a["compare_with"] for n, a in config["analyses"].items() if a.get("compare_with")}
    reproduction(config.get("published"), compare, names, pooled).to_csv(out / "reproduction.csv", index=False)
    kinds = (("pooled", "json"), ("effects", "csv"), ("estimators", "csv"), ("forest", "svg"))
    inputs = {kind: [out / n / f"{kind}.{ext}" for n in names] for kind, ext in kinds}
    inputs["extras"] = extras
    sheets = sorted({a["data"] for a in config["analyses"].values()})
    sheets += [config["published"]] if config.get("published") else []
    page = build_report(names, config["analyses"], inputs, reproduction_path=out / "reproduction.csv",
                        config_files=[config_path], sheets=sheets, repo_dir=SCHEMA.parents[2],
                        labels=config.get("defaults", {}).get("labels", {}))  # fmt: skip
    report = out / "report.html"
    report.write_text(page)
    return report
