"""Steps of one analysis: its sheet -> effects, the pooled fit, every estimator, the forest plot.

Plain Python (no Snakemake), usable from a notebook:

    >>> from metarepro.jobs import run_analysis
    >>> result = run_analysis("data/raw/normand1999.csv", {"title": "LOS", "data": "...", "measure": "SMD"})
    >>> result.pooled["estimate"]  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from metarepro import quality
from metarepro.inputs.sheet import (
    LINE,
    SheetError,
    mapping_hint,
    order_key,
    select_rows,
    unrecognised_columns,
)
from metarepro.jobs.files import analysis_sheet, write_json, write_table
from metarepro.pipeline.analysis import (
    Settings,
    compute_effects,
    estimator_table,
    fit_analysis,
    pooled_ni,
    pooled_record,
)
from metarepro.pipeline.record import PooledRecord
from metarepro.quality import flagged_included
from metarepro.stats.rma import RmaResult, rma


@dataclass
class AnalysisResult:
    """One analysis in memory: its settings, the sheet's rows it selected (every column, as read, with the CSV
    ``line``), their effects (``effects.csv``), the primary fit's record (``pooled.json``) and the estimator table
    (``estimators.csv``); ``fit`` is the primary :class:`~metarepro.stats.rma.RmaResult` (None for a dependent
    analysis, whose model is an rma.mv or an aggregate) and ``sheet_sha256`` the sha256 of the bytes read."""

    settings: Settings
    effects: pd.DataFrame
    pooled: PooledRecord
    estimators: pd.DataFrame
    rows: pd.DataFrame | None = None
    fit: RmaResult | None = None
    sheet_sha256: str | None = None
    counts_fit: object = None  # a binary analysis's rma.mh/rma.peto/rma.glmm fit (pipeline.binary.CountsFit)


def run_analysis(sheet_path, analysis: dict, defaults: dict | None = None) -> AnalysisResult:
    """Read the sheet (once), select the analysis's rows, compute effects, fit the primary model and all
    estimators."""
    settings = Settings.from_config(analysis, defaults)
    sheet = analysis_sheet(sheet_path, analysis)
    # a printed test proves SEMs for every row of its source, also for rows of other analyses (markers)
    sheet[quality.SEM_PROOF_COLUMN] = quality.sem_proof(sheet)
    rows = select_rows(sheet, analysis.get("where"))
    effects = compute_effects(rows, settings)
    if not effects["included"].any():
        raise SheetError(_unusable(sheet_path, sheet, effects))
    fit = None
    if settings.dependence is None:
        fit = fit_analysis(effects, settings)
        primary = pooled_record(fit, settings, effects.attrs.get("unit"), pooled_ni(effects, settings))
        estimators = estimator_table(effects, settings, fitted=fit)
    else:
        from metarepro.jobs import dependence  # the multilevel machinery only for the analyses that use it

        primary = _dependent(sheet_path, dependence.fit_dependent, effects, settings)
        estimators = dependence.estimator_table(effects, settings)
    used = effects[effects["included"]]
    pooled = {
        **primary,
        "k_input": len(effects),
        "k_excluded": int((~effects["included"]).sum()),
        # participants in the pooled rows (NaN when a row gives no group sizes, e.g. a precomputed yi)
        "n_cases": used["n_cases"].sum(min_count=len(used)),
        "n_controls": used["n_controls"].sum(min_count=len(used)),
    }
    if settings.dependence is not None:  # rows of one cluster share people: count them once
        pooled["n_cases"], pooled["n_controls"] = dependence.participants(used, settings.dependence)
    pooled["study_years"] = study_years(rows, used)
    sensitivity = without_flagged(effects, settings)
    if sensitivity is not None:
        pooled["without_flagged"] = sensitivity
    counts_fit = None if fit is None or isinstance(fit, RmaResult) else fit
    return AnalysisResult(settings, effects, PooledRecord.from_dict(pooled), estimators,
                          rows.drop(columns=quality.SEM_PROOF_COLUMN), None if counts_fit else fit,
                          sheet.attrs.get("sha256"), counts_fit)  # fmt: skip


def study_years(rows: pd.DataFrame, used: pd.DataFrame) -> list:
    """The publication year of each pooled row, sorted, None where the sheet gives none (``2001a`` is 2001): what
    a comparison with a published meta-analysis needs to tell whether our studies could be its studies."""
    if "year" not in rows:
        return [None] * len(used)
    keys, _ = order_key(rows.set_index(LINE).loc[used["line"], "year"])
    years = sorted(int(key) for key in keys if key == key)  # NaN != NaN: no year
    return years + [None] * (len(keys) - len(years))


def _dependent(sheet_path, fit, effects, settings):
    """A dependent model's fit; data it cannot be fitted to (e.g. fewer clusters than coefficients) is bad input."""
    try:
        return fit(effects, settings)
    except ValueError as err:
        raise SheetError(f"{sheet_path}: the {settings.dependence.model} model cannot be fitted to the included "
                         f"rows: {err}") from None


def without_flagged(effects: pd.DataFrame, settings: Settings) -> dict | None:
    """The primary model refitted without the included rows that a quality rule flagged (``flags``).

    None when no included row is flagged. With every row flagged, only ``k = 0`` and the lines.
    """
    flagged = flagged_included(effects)
    if not flagged.any():
        return None
    keep = effects["included"].to_numpy(dtype=bool) & ~flagged
    excluded = [int(line) for line in effects.loc[flagged, "line"]]
    if not keep.any():
        return {"k": 0, "excluded_lines": excluded}
    if settings.dependence is not None:
        from metarepro.jobs.dependence import without_flagged as dependent_without_flagged

        return {**dependent_without_flagged(effects, settings, keep), "excluded_lines": excluded}
    if settings.fit != "rma":  # the same pooling of the tables or proportions left
        kept = effects.assign(included=keep)
        fit = fit_analysis(kept.copy(), settings)
        return {**pooled_record(fit, settings, None, pooled_ni(kept, settings)), "excluded_lines": excluded}
    fit = rma(effects.loc[keep, "yi"], effects.loc[keep, "vi"], settings.method, settings.test, settings.level)
    ni = pooled_ni(effects.assign(included=keep), settings)
    return {**pooled_record(fit, settings, effects.attrs.get("unit"), ni), "excluded_lines": excluded}


def _unusable(sheet_path, sheet, effects, shown=5) -> str:
    """Why no row of an analysis can be pooled: the first rows' reasons and the columns not read."""
    reasons = "; ".join(f"line {ln}: {r}" for ln, r in zip(effects["line"], effects["reason"][:shown], strict=False))
    more = f"; ... and {len(effects) - shown} more rows" if len(effects) > shown else ""
    message = f"{sheet_path}: no row of this analysis can be used (nothing was written). {reasons}{more}."
    other = unrecognised_columns(sheet)
    if other:
        listed = ", ".join(other[:12]) + (", ..." if len(other) > 12 else "")
        hint = mapping_hint(sheet)
        message += f" Columns metarepro does not read as inputs: {listed}" + (
            f"; to use them, map them in the analysis's config: {hint}." if hint else "."
        )
    return message


def forest_figure(rows: pd.DataFrame, config: dict, effects: pd.DataFrame, pooled: PooledRecord | dict):
    """The analysis forest plot, with each group's n and, where the sheet reports them, mean (SD); ``rows``: the
    sheet's rows of the analysis (:attr:`AnalysisResult.rows`)."""
    from metarepro.jobs.sensitivity import figure_labels
    from metarepro.present.plots import forest_plot  # plotting is imported only by the steps that draw

    summaries = [f"{stat}_{group}" for group in ("cases", "controls") for stat in ("mean", "sd")]
    analysis = config["analysis"]
    sheet = rows.rename(columns={LINE: "line"})
    columns = ["line", *[c for c in summaries if c in sheet]]
    rows = effects.merge(sheet[columns], on="line", how="left") if len(columns) > 1 else effects
    return forest_plot(rows, pooled, title=analysis.get("title", config.get("name", "")), labels=figure_labels(config))


def write_analysis(result: AnalysisResult, effects_path, pooled_path, estimators_path):
    write_table(result.effects, effects_path)
    write_json(result.pooled.to_dict(), pooled_path)
    write_table(result.estimators, estimators_path)
