"""One configured analysis: sheet rows → effect sizes (with every row accounted for) → fits.

:func:`compute_effects` gives one row per selected input row with ``included`` and ``reason``;
:func:`fit_analysis` pools the included rows with the primary method and test, and
:func:`estimator_table` refits them with every estimator and both tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from . import effects as es
from .rma import TESTS, RmaResult, rma, rma_batch
from .sheet import LINE, SUMMARY
from .tau2 import METHODS, Control

DEFAULTS = {"measure": "SMD", "method": "REML", "test": "z", "level": 95, "vtype": "LS"}

EFFECT_COLUMNS = (
    "line", "study_id", "study", "input", "yi", "vi", "sei", "ci_low", "ci_high", "weight", "included", "reason",
)  # fmt: skip


@dataclass(frozen=True)
class Settings:
    """The statistical choices of one analysis, with metafor's defaults."""

    measure: str = "SMD"
    method: str = "REML"
    test: str = "z"
    level: float = 95
    vtype: str = "LS"

    @classmethod
    def from_config(cls, analysis: dict, defaults: dict | None = None):
        merged = {**DEFAULTS, **(defaults or {}), **analysis}
        return cls(**{name: merged[name] for name in DEFAULTS})


def _present(frame, columns):
    return frame[list(columns)].notna().all(axis=1)


def _summary_effects(rows, settings):
    args = [rows[c].to_numpy() for c in SUMMARY]
    n1, m1, sd1, n2, m2, sd2 = args
    reason = np.full(len(rows), "", dtype=object)
    reason[(sd1 == 0) | (sd2 == 0)] = "an SD is 0, so the sampling variance is undefined; check the source"
    if settings.measure == "SMD":
        reason[(n1 + n2) <= 2] = "n_cases + n_controls must exceed 2 for an SMD"
        yi, vi = es.smd(*args, vtype=settings.vtype)
    elif settings.measure == "MD":
        yi, vi = es.md(*args)
    else:  # ROM
        reason[(m1 <= 0) | (m2 <= 0)] = "ROM needs both means > 0 (log ratio of means)"
        yi, vi = es.rom(*args)
    return yi, vi, reason


def _precomputed_effects(rows, settings):
    yi = rows["yi"].to_numpy()
    vi = rows["vi"].to_numpy().copy()
    form = np.full(len(rows), "yi+vi", dtype=object)
    use_sei = np.isnan(vi) & rows["sei"].notna().to_numpy()
    vi[use_sei] = rows["sei"].to_numpy()[use_sei] ** 2
    form[use_sei] = "yi+sei"
    use_ci = np.isnan(vi) & _present(rows, ("ci_low", "ci_high")).to_numpy()
    vi[use_ci] = es.vi_from_ci(rows["ci_low"].to_numpy()[use_ci], rows["ci_high"].to_numpy()[use_ci])
    form[use_ci] = "yi+ci"
    reason = np.full(len(rows), "", dtype=object)
    reason[np.isnan(vi)] = "yi is given without vi, sei or a 95% CI (ci_low, ci_high); add one"
    reason[vi == 0] = "the sampling variance (vi, sei or CI width) is 0; check the source"
    if "measure" in rows.columns:
        stated = rows["measure"].fillna("").astype(str).str.strip().to_numpy()
        wrong = (stated != "") & (stated != settings.measure)
        reason[wrong] = [f"yi is a {m}, but this analysis pools {settings.measure}" for m in stated[wrong]]
    return yi, vi, form, reason


def _correlation_effects(rows):
    r, n = rows["r"].to_numpy(), rows["n"].to_numpy()
    reason = np.full(len(rows), "", dtype=object)
    reason[np.abs(r) >= 1] = "r must lie strictly between -1 and 1"
    reason[n <= 3] = "ZCOR needs n > 3 (variance 1/(n - 3))"
    with np.errstate(invalid="ignore", divide="ignore"):
        yi, vi = es.zcor(r, n)
    return yi, vi, reason


def _needed_for(measure):
    if measure in ("SMD", "MD", "ROM"):
        return "the six group summaries (n, mean, sd of cases and controls) or a precomputed yi with vi/sei/CI"
    if measure == "ZCOR":
        return "r and n, or a precomputed yi with vi/sei/CI"
    return "a precomputed yi with vi, sei or a 95% CI"


def compute_effects(rows: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """Effect size and variance of every selected row, or the reason it cannot be used."""
    out = pd.DataFrame(
        {
            "line": rows[LINE].to_numpy(),
            "study_id": rows["study_id"].to_numpy(),
            "study": rows["study"].to_numpy(),
            "input": "",
            "yi": np.nan,
            "vi": np.nan,
            "reason": "",
        }
    )
    pending = np.ones(len(rows), dtype=bool)

    def assign(mask, yi, vi, form, reason):
        idx = np.flatnonzero(mask)
        out.loc[idx, ["yi", "vi"]] = np.column_stack([yi, vi])
        out.loc[idx, "input"] = form
        out.loc[idx, "reason"] = reason
        pending[idx] = False

    if settings.measure in ("SMD", "MD", "ROM"):
        mask = _present(rows, SUMMARY).to_numpy()
        if mask.any():
            yi, vi, reason = _summary_effects(rows[mask], settings)
            assign(mask, yi, vi, "summary", reason)
    if settings.measure == "ZCOR":
        mask = _present(rows, ("r", "n")).to_numpy()
        if mask.any():
            yi, vi, reason = _correlation_effects(rows[mask])
            assign(mask, yi, vi, "r+n", reason)
    mask = pending & rows["yi"].notna().to_numpy()
    if mask.any():
        yi, vi, form, reason = _precomputed_effects(rows[mask], settings)
        assign(mask, yi, vi, form, reason)
    out.loc[pending, "reason"] = f"incomplete: {settings.measure} needs {_needed_for(settings.measure)}"

    bad = (out["reason"] == "") & ~(np.isfinite(out["yi"]) & np.isfinite(out["vi"]) & (out["vi"] > 0))
    out.loc[bad, "reason"] = "the effect size or its variance is not finite; check the row's numbers"
    first_line = {}
    for i, (sid, ok) in enumerate(zip(out["study_id"], out["reason"] == "", strict=True)):
        if not ok:
            continue
        if sid in first_line:
            out.loc[i, "reason"] = (
                f"study_id {sid} already contributes line {first_line[sid]}; pool one row per independent sample "
                "(narrow 'where' or give distinct samples distinct study_ids)"
            )
        else:
            first_line[sid] = out.loc[i, "line"]

    out["included"] = out["reason"] == ""
    out.loc[~out["included"], ["yi", "vi"]] = np.nan
    out["sei"] = np.sqrt(out["vi"])
    crit = stats.norm.ppf(0.5 + settings.level / 200)
    out["ci_low"] = out["yi"] - crit * out["sei"]
    out["ci_high"] = out["yi"] + crit * out["sei"]
    out["weight"] = np.nan
    return out[list(EFFECT_COLUMNS)]


def fit_analysis(effects: pd.DataFrame, settings: Settings, control: Control | None = None) -> RmaResult:
    """Primary fit of the included rows; fills ``effects['weight']`` (percent) in place."""
    used = effects["included"].to_numpy()
    if not used.any():
        raise ValueError("no row of this analysis can be used; see the 'reason' column of effects.csv")
    fit = rma(effects.loc[used, "yi"], effects.loc[used, "vi"], settings.method, settings.test, settings.level, control)
    effects.loc[used, "weight"] = fit.weights
    return fit


def estimator_table(effects: pd.DataFrame, settings: Settings, control: Control | None = None) -> pd.DataFrame:
    """Every estimator × both tests on the same rows: how much does the choice matter?"""
    used = effects["included"].to_numpy()
    yi = effects.loc[used, "yi"].to_numpy()[None, :]
    vi = effects.loc[used, "vi"].to_numpy()[None, :]
    records = []
    for method in METHODS:
        for test in TESTS:
            records.append(pooled_record(rma_batch(yi, vi, method, test, settings.level, control)[0], settings))
    return pd.DataFrame.from_records(records)


def pooled_record(fit: RmaResult, settings: Settings) -> dict:
    """The fields of ``pooled.json``; back-transformed estimate and CIs for ROM (ratio) and ZCOR (r)."""
    record = fit.to_dict()
    record = {"k": record.pop("k"), "measure": settings.measure, "vtype": settings.vtype, **record}
    for name in ("estimate", "ci_low", "ci_high", "pi_low", "pi_high"):
        back = es.transform_back(settings.measure, record[name])
        if back is not None:
            record[f"{name}_{'ratio' if settings.measure == 'ROM' else 'r'}"] = float(back)
    return record
