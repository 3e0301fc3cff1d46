"""Whole jobs: every file of one analysis, and every file over all analyses; a whole config from Python.

The workflow runs :func:`analysis_job` for each analysis (one Python process per job of up to the config's
``analyses_per_job`` analyses: the statistics of an analysis take milliseconds, starting a process and drawing
take the time) and :func:`overview_job` once, and
:func:`run_config` calls the same two functions for a config without Snakemake:

    >>> from metarepro.jobs.run import run_config
    >>> run_config("config/examples/passos2015_ptsd_il6.yaml")  # doctest: +SKIP
    PosixPath('results/report.html')

Snakemake adds what a notebook does not need: parallel jobs, incremental reruns, logs, ``--report``.
Paths in the config are relative to the working directory, as for the workflow.
"""

from __future__ import annotations

from pathlib import Path

from metarepro.inputs.config import SCHEMA, analysis_option
from metarepro.inputs.sheet import SheetError
from metarepro.jobs.outputs import DIAGNOSTIC_TABLES, FORMATS, OVERVIEW_TABLES, analysis_figures, analysis_files

__all__ = ["FORMATS", "analysis_files", "analysis_job", "overview_job", "read_checked_config", "run_config"]


def analysis_job(sheet, config: dict, folder, formats=FORMATS) -> None:
    """Every table and figure of one analysis into ``folder``: effect sizes, the pooled fit and every estimator,
    leave-one-out, influence, cumulative, small-study tests, subgroups, meta-regression and their figures.

    ``config`` holds the analysis's ``name``, its config entry (``analysis``) and the config's ``defaults``.
    The files written are those of :func:`metarepro.jobs.outputs.analysis_files`. The analysis is one computation in
    memory: the sheet is read once, each distinct model fitted once (the rows' model is the primary fit, shared by
    every diagnostic), each file written once, and the report's section rendered from the objects (nothing written
    is read back).
    """
    from metarepro.jobs import sensitivity as steps
    from metarepro.jobs.files import as_json, check_sheet_unchanged, write_json, write_table
    from metarepro.jobs.overview import REPORT_TABLES, write_section
    from metarepro.jobs.pool import forest_figure, run_analysis, write_analysis
    from metarepro.present.metafor_script import SCRIPT_NAME, metafor_script, reads_effects, script_columns
    from metarepro.present.plots import save_figure
    from metarepro.present.report import AnalysisSection

    analysis, folder = config["analysis"], Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tables, svgs = {}, {}

    def table(frame, name):
        write_table(frame, folder / f"{name}.csv")
        tables[name] = frame

    def figure(drawn, stem):
        svgs[stem] = save_figure(drawn, [folder / f"{stem}.{fmt}" for fmt in formats])

    result = run_analysis(sheet, analysis, config["defaults"])  # the sheet's bytes, read once
    result.pooled.sheet_sha256 = result.sheet_sha256
    settings, effects, labels = result.settings, result.effects, steps.figure_labels(config)
    rows = steps.sensitivity_rows(result, analysis)
    values, unit, extra = steps.script_values(rows, analysis), result.pooled.get("unit"), None
    if reads_effects(rows, settings):  # above a size limit, metafor.R reads its values from columns of effects.csv
        extra = script_columns(config, effects, steps.analysis_rows(result), rows, values, settings, unit)
    write_analysis(result, folder / "effects.csv", folder / "pooled.json", folder / "estimators.csv",
                   effects_columns=extra)  # fmt: skip
    del extra  # written; the job keeps only the effects table itself
    figure(forest_figure(result.rows, config, effects, result.pooled), "forest")

    fit = steps.model_fit(rows, settings, result.fit)  # the primary fit, unless the rows are aggregated clusters
    diagnostics = steps.diagnostics(rows, settings, order_column=analysis_option(analysis, "cumulative_order"),
                                    labels=labels, fit=fit)  # fmt: skip
    for name in DIAGNOSTIC_TABLES:
        table(diagnostics.tables[name], name)
    for stem, drawn in diagnostics.figures.items():
        figure(drawn, stem)
    bias = steps.publication_bias(rows, settings, labels=labels, fit=fit,
                                  predictor=analysis_option(analysis, "regtest_predictor"))  # fmt: skip
    write_json(bias.record, folder / "bias.json")
    figure(bias.figures["funnel"], "funnel")
    title = analysis.get("title", config["name"])
    if analysis.get("subgroups"):
        fits = steps.subgroup_fits(rows, settings, analysis["subgroups"])
        table(steps.subgroups(rows, settings, analysis["subgroups"], fits), "subgroups")
        for column in analysis["subgroups"]:
            figure(steps.subgroup_figure(rows, settings, column, title, labels, fitted=fits[column]),
                   f"forest_subgroups_{column}")  # fmt: skip
    if analysis.get("moderators"):
        permutations, seed = analysis_option(analysis, "permutations"), analysis_option(analysis, "seed")
        model = steps.metareg_model(rows, settings, analysis["moderators"])
        table(steps.metaregression(rows, settings, analysis["moderators"], permutations, seed, model=model),
              "metareg")  # fmt: skip
        for moderator in analysis["moderators"]:
            figure(steps.bubble(rows, settings, moderator, title, labels, model=model), f"bubble_{moderator}")
    if analysis.get("compare_studies"):
        measure = settings.measure
        table(steps.study_level(effects, analysis["compare_studies"], measure), "study_level")
        figure(steps.study_level_figure(tables["study_level"], analysis["compare_studies"], measure, labels),
               "study_level")  # fmt: skip
    # the R metafor code behind these numbers (before the section, which links it)
    script = metafor_script(config["name"], config, effects, steps.analysis_rows(result), rows, bias.record,
                            values, folder=str(folder), unit=unit, settings=settings)  # fmt: skip
    (folder / SCRIPT_NAME).write_text(script)
    section = AnalysisSection(
        config["name"], title, as_json(result.pooled.to_dict()), effects, svgs.pop("forest"), config=analysis,
        estimators=result.estimators, bias=as_json(bias.record),
        tables={name: frame for name, frame in tables.items() if name in REPORT_TABLES},
        figures={stem: svgs[stem] for stem in analysis_figures(analysis) if stem in svgs},
        script=f"{config['name']}/{SCRIPT_NAME}",  # the page lies beside the analyses' folders
    )  # fmt: skip
    write_section(section, folder / "section.html")
    check_sheet_unchanged(sheet, result.sheet_sha256, f"while analysis {config['name']} ran")


def overview_job(names, analyses: dict, folders, out: dict, published=None, config_files=(), sheets=(), *,
                 labels=None, repo_dir=None, workers=1, data_note="", study_levels=(),
                 prisma=None) -> None:  # fmt: skip
    """The files over all analyses from their folders: ``out["summary"]`` (summary.csv), ``out["reproduction"]``
    (published vs reproduced, for analyses with ``compare_with``), ``out["report"]`` (the HTML page) and the
    page's tables that ``out`` names (:data:`metarepro.jobs.outputs.OVERVIEW_TABLES`: summary of findings,
    sensitivity summaries, PRISMA flow, study characteristics). ``prisma``: the config's ``prisma`` texts.
    ``workers``: processes that draw the overview figures (the report rule gives its threads)."""
    from metarepro.jobs.files import read_json, write_table
    from metarepro.jobs.outputs import REPORT_INPUTS
    from metarepro.jobs.overview import build_report, reproduction, summary_table
    from metarepro.pipeline.record import PooledRecord

    folders = [Path(folder) for folder in folders]
    inputs = {kind: [folder / file for folder in folders] for kind, file in REPORT_INPUTS.items()}
    # each record read once, for the summary, the reproduction table and the page
    records = [PooledRecord.from_dict(read_json(path)) for path in inputs["pooled"]]
    write_table(summary_table(names, records), out["summary"])
    compare = {name: analyses[name]["compare_with"] for name in names if analyses[name].get("compare_with")}
    write_table(reproduction(published, compare, names, records), out["reproduction"])
    page = build_report(names, analyses, inputs, reproduction_path=out["reproduction"], config_files=config_files,
                        sheets=sheets, repo_dir=repo_dir, labels=labels or {}, workers=workers,
                        data_note=data_note, study_levels=study_levels, records=records, prisma=prisma,
                        tables_out={kind: path for kind, path in out.items() if kind in OVERVIEW_TABLES})  # fmt: skip
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
    (default SVG only) unless ``formats`` is given. Bad input raises :class:`SheetError` with the message
    the workflow prints."""
    config = read_checked_config(config_path)
    formats = tuple(formats or config["figure_formats"])  # the config checked: the schema's defaults filled in
    out = Path(config["results"])
    analyses, defaults = config["analyses"], config["defaults"]
    for name, analysis in analyses.items():
        settings = {"name": name, "defaults": defaults, "analysis": analysis}
        analysis_job(analysis["data"], settings, out / name, formats)
    sheets = sorted({analysis["data"] for analysis in analyses.values()})
    sheets += [config["published"]] if config.get("published") else []
    files = {kind: out / f"{kind}.{ext}" for kind, ext in (("summary", "csv"), ("reproduction", "csv"),
                                                            ("report", "html"))}  # fmt: skip
    files |= {kind: out / file for kind, file in OVERVIEW_TABLES.items()}
    overview_job(list(analyses), analyses, [out / name for name in analyses], files, config.get("published"),
                 [config_path], sheets, labels=defaults.get("labels", {}), repo_dir=SCHEMA.parents[2],
                 data_note=config.get("data_note", ""), prisma=config.get("prisma"),
                 study_levels=[out / name / "study_level.csv" for name, a in analyses.items()
                               if a.get("compare_studies")])  # fmt: skip
    return files["report"]
