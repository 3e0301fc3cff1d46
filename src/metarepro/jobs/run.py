"""Whole jobs: every file of one analysis, and every file over all analyses; a whole config from Python.

The workflow runs :func:`analysis_job` once per analysis and :func:`overview_job` once (one Python process
each: the statistics of an analysis take milliseconds, starting a process and drawing take the time), and
:func:`run_config` calls the same two functions for a config without Snakemake:

    >>> from metarepro.jobs.run import run_config
    >>> run_config("config/examples/passos2015_ptsd_il6.yaml")  # doctest: +SKIP
    PosixPath('results/report.html')

Snakemake adds what a notebook does not need: parallel jobs, incremental reruns, logs, ``--report``.
Paths in the config are relative to the working directory, as for the workflow.
"""

from __future__ import annotations

from pathlib import Path

from metarepro.inputs.sheet import SheetError
from metarepro.jobs.files import DIAGNOSTIC_TABLES

SCHEMA = Path(__file__).resolve().parents[3] / "workflow" / "schemas" / "config.schema.yaml"
FORMATS = ("svg", "png")


def analysis_files(analysis: dict, formats=FORMATS) -> list[str]:
    """The names of the files :func:`analysis_job` writes for ``analysis`` (its config entry), in its folder.

    The workflow declares the same list (``workflow/rules/common.smk``, which may not import metarepro);
    ``tests/test_workflow.py`` checks that the two agree.
    """
    tables = ["effects.csv", "pooled.json", "estimators.csv", *[f"{t}.csv" for t in DIAGNOSTIC_TABLES], "bias.json",
              "metafor.R", "section.html"]  # fmt: skip
    figures = ["forest", "leave1out", "cumulative", "baujat", "funnel"]
    if analysis.get("subgroups"):
        tables.append("subgroups.csv")
        figures += [f"forest_subgroups_{column}" for column in analysis["subgroups"]]
    if analysis.get("moderators"):
        tables.append("metareg.csv")
        figures += [f"bubble_{moderator}" for moderator in analysis["moderators"]]
    if analysis.get("compare_studies"):
        tables.append("study_level.csv")
        figures.append("study_level")
    return tables + [f"{figure}.{fmt}" for figure in figures for fmt in formats]


def analysis_job(sheet, config: dict, folder, formats=FORMATS) -> None:
    """Every table and figure of one analysis into ``folder``: effect sizes, the pooled fit and every estimator,
    leave-one-out, influence, cumulative, small-study tests, subgroups, meta-regression and their figures.

    ``config`` holds the analysis's ``name``, its config entry (``analysis``) and the config's ``defaults``.
    The files written are those of :func:`analysis_files`.
    """
    from metarepro.jobs import sensitivity as steps
    from metarepro.jobs.files import (
        analysis_sheet,
        check_sheet_unchanged,
        read_effects,
        read_table,
        write_json,
        write_table,
    )
    from metarepro.jobs.overview import write_section
    from metarepro.jobs.pool import forest_figure, run_analysis, write_analysis
    from metarepro.present.metafor_script import SCRIPT_NAME, metafor_script
    from metarepro.present.plots import save_figure

    analysis, folder = config["analysis"], Path(folder)
    folder.mkdir(parents=True, exist_ok=True)

    def table(frame, name):
        write_table(frame, folder / name)

    def figure(drawn, stem):
        save_figure(drawn, [folder / f"{stem}.{fmt}" for fmt in formats])

    # the bytes every step reads (a sheet is parsed once per file version); checked against the file at the end
    read_sha256 = analysis_sheet(sheet, analysis).attrs["sha256"]
    result = run_analysis(sheet, analysis, config["defaults"])
    result.pooled["sheet_sha256"] = read_sha256
    write_analysis(result, folder / "effects.csv", folder / "pooled.json", folder / "estimators.csv")
    effects = read_effects(folder / "effects.csv")  # each figure is drawn from the table written beside it
    figure(forest_figure(sheet, config, effects, result.pooled), "forest")

    labels = steps.figure_labels(config)
    model, rows = steps.sensitivity_rows(sheet, effects, config)
    diagnostics = steps.diagnostics(rows, model, order_column=analysis.get("cumulative_order", "year"), labels=labels)
    for name in DIAGNOSTIC_TABLES:
        table(diagnostics.tables[name], f"{name}.csv")
    for stem, drawn in diagnostics.figures.items():
        figure(drawn, stem)
    bias = steps.publication_bias(rows, model, labels=labels)
    write_json(bias.record, folder / "bias.json")
    figure(bias.figures["funnel"], "funnel")
    title = analysis.get("title", config["name"])
    if analysis.get("subgroups"):
        table(steps.subgroups(rows, model, analysis["subgroups"]), "subgroups.csv")
        for column in analysis["subgroups"]:
            figure(steps.subgroup_figure(rows, model, column, title, labels), f"forest_subgroups_{column}")
    if analysis.get("moderators"):
        permutations, seed = analysis.get("permutations", 1000), analysis.get("seed", 1)
        table(steps.metaregression(rows, model, analysis["moderators"], permutations, seed), "metareg.csv")
        for moderator in analysis["moderators"]:
            figure(steps.bubble(rows, model, moderator, title, labels), f"bubble_{moderator}")
    if analysis.get("compare_studies"):
        table(steps.study_level(effects, analysis["compare_studies"], result.pooled["measure"]), "study_level.csv")
        figure(steps.study_level_figure(read_table(folder / "study_level.csv"), analysis["compare_studies"],
                                        result.pooled["measure"], labels), "study_level")  # fmt: skip
    # the R metafor code behind these numbers, from the tables just written (before the section, which links it)
    script = metafor_script(config["name"], config, effects, steps.analysis_rows(sheet, analysis, effects), rows,
                            bias.record, steps.script_values(rows, analysis), folder=str(folder),
                            unit=result.pooled.get("unit"))  # fmt: skip
    (folder / SCRIPT_NAME).write_text(script)
    write_section(config["name"], analysis, folder, analysis_files(analysis, formats), folder / "section.html")
    check_sheet_unchanged(sheet, read_sha256, f"while analysis {config['name']} ran")


def overview_job(names, analyses: dict, folders, out: dict, published=None, config_files=(), sheets=(), *,
                 labels=None, repo_dir=None, workers=1, data_note="", study_levels=()) -> None:  # fmt: skip
    """The files over all analyses from their folders: ``out["summary"]`` (summary.csv), ``out["reproduction"]``
    (published vs reproduced, for analyses with ``compare_with``) and ``out["report"]`` (the HTML page).
    ``workers``: processes that draw the overview figures (the report rule gives its threads)."""
    from metarepro.jobs.files import write_table
    from metarepro.jobs.overview import REPORT_INPUTS, build_report, reproduction, summary_table

    folders = [Path(folder) for folder in folders]
    pooled = [folder / "pooled.json" for folder in folders]
    write_table(summary_table(names, pooled), out["summary"])
    compare = {name: analyses[name]["compare_with"] for name in names if analyses[name].get("compare_with")}
    write_table(reproduction(published, compare, names, pooled), out["reproduction"])
    inputs = {kind: [folder / file for folder in folders] for kind, file in REPORT_INPUTS.items()}
    page = build_report(names, analyses, inputs, reproduction_path=out["reproduction"], config_files=config_files,
                        sheets=sheets, repo_dir=repo_dir, labels=labels or {}, workers=workers,
                        data_note=data_note, study_levels=study_levels)  # fmt: skip
    Path(out["report"]).write_text(page)


def read_checked_config(path) -> dict:
    """The config as the workflow reads it: strictly, checked whole, defaults filled; SheetError on problems."""
    from metarepro.inputs.config import ConfigError, check_config, format_errors, load_config  # not needed by the jobs

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


def run_config(config_path, formats=None) -> Path:
    """Every analysis of a config, then summary.csv, reproduction.csv and report.html in its ``results``
    folder (default ``results``); returns the report's path. Figures in the config's ``figure_formats``
    (default SVG and PNG) unless ``formats`` is given. Bad input raises :class:`SheetError` with the message
    the workflow prints."""
    config = read_checked_config(config_path)
    formats = tuple(formats or config.get("figure_formats", FORMATS))
    out = Path(config.get("results", "results"))
    analyses, defaults = config["analyses"], config.get("defaults", {})
    for name, analysis in analyses.items():
        settings = {"name": name, "defaults": defaults, "analysis": analysis}
        analysis_job(analysis["data"], settings, out / name, formats)
    sheets = sorted({analysis["data"] for analysis in analyses.values()})
    sheets += [config["published"]] if config.get("published") else []
    files = {kind: out / f"{kind}.{ext}" for kind, ext in (("summary", "csv"), ("reproduction", "csv"),
                                                            ("report", "html"))}  # fmt: skip
    overview_job(list(analyses), analyses, [out / name for name in analyses], files, config.get("published"),
                 [config_path], sheets, labels=defaults.get("labels", {}), repo_dir=SCHEMA.parents[2],
                 data_note=config.get("data_note", ""),
                 study_levels=[out / name / "study_level.csv" for name, a in analyses.items()
                               if a.get("compare_studies")])  # fmt: skip
    return files["report"]
