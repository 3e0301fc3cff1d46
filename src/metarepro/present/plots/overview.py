"""The report's overview figures: the atlas (one row per analysis) and published vs reproduced.

Both are forest plots (:func:`metarepro.present.plots.forest.draw_forest`) drawn from tables the report also prints:
:func:`atlas_rows` from the analyses' ``pooled.json`` records, :func:`reproduction_rows` from ``reproduction.csv``.
Analyses on different scales are never put on one axis: there is one figure per scale (SMD; ROM; ZCOR; MD per
unit; GEN).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from metarepro._core.dist import t_ppf
from metarepro.present.plots.forest import draw_forest, rows_table
from metarepro.present.plots.style import MEASURE_NAMES, axis_label, fmt
from metarepro.stats.effects import RATIO_MEASURES


def scale_key(record: dict) -> tuple[str, str]:
    measure = record.get("measure", "GEN")
    return measure, (record.get("unit") or "") if measure == "MD" else ""


def scale_heading(key: tuple[str, str]) -> str:
    measure, unit = key
    name = {"SMD": "Standardized mean differences (Hedges' g)", "ROM": "Ratios of means", "VR": "Variability ratios",
            "CVR": "Coefficient of variation ratios",
            "ZCOR": "Correlations", "MD": "Mean differences", "GEN": "Effect sizes", "OR": "Odds ratios",
            "RR": "Risk ratios", "RD": "Risk differences", "PETO": "Peto odds ratios",
            **dict.fromkeys(("PR", "PLN", "PLO", "PAS", "PFT"), "Proportions")}.get(measure, measure)  # fmt: skip
    return f"{name}, {unit}" if unit else name


def _i2_text(record) -> str:
    """I² as the atlas prints it; with one study there is no heterogeneity to describe ("–", not 0%)."""
    return "–" if record.get("k") == 1 else f"{fmt(record.get('i2'), 0)}%"


def _participants(record) -> str:
    n = [record.get("n_cases"), record.get("n_controls")]
    return "" if any(v is None or not np.isfinite(float(v)) for v in n) else f"{int(n[0] + n[1]):,}"


def atlas_rows(records: dict[str, dict], titles: dict[str, str]) -> dict[tuple, pd.DataFrame]:
    """One table of rows per scale: each analysis's pooled estimate (diamond), CI and prediction interval, k, N,
    I²; where a quality rule flagged pooled rows, the fit without them follows as its own row (a square)."""
    groups: dict[tuple, list] = {}
    for name, record in records.items():
        groups.setdefault(scale_key(record), []).append(name)
    out = {}
    for key, names in groups.items():
        parts = []
        for name in names:
            r = records[name]
            parts.append(rows_table(
                [titles.get(name, name) + _two_study_t(r)], r["estimate"], r["ci_low"], r["ci_high"],
                kind="summary", pi_low=_number(r.get("pi_low")), pi_high=_number(r.get("pi_high")), analysis=[name],
                k=[str(r["k"])], n=[_participants(r)], i2=[_i2_text(r)], faint=[two_study_t(r)],
            ))  # fmt: skip
            sens = r.get("without_flagged")
            if isinstance(sens, Mapping) and sens.get("k"):
                parts.append(rows_table(
                    ["without flagged rows" + _two_study_t(sens)], sens["estimate"], sens["ci_low"], sens["ci_high"],
                    analysis=[name], k=[str(sens["k"])], n=[_participants(sens)],
                    i2=[_i2_text(sens)], faint=[two_study_t(sens)],
                ))  # fmt: skip
        out[key] = pd.concat(parts, ignore_index=True)
    return out


def two_study_t(record) -> bool:
    """A pool of two rows with a t-based test (Knapp-Hartung; rma.mv's t): its CI rests on t with 1 df, whose
    critical value (12.71 at 95%) makes it about 6.5 times as wide as a z interval. The atlas draws such a row
    faint (hollow, grey interval; metarepro.present.plots.forest.FAINT_MARKER) and says why in its label and
    footer: its interval is wide by construction, not by what the two studies show, and drawn at full weight it
    dominated the figure (issue 20). Its numbers are printed in full."""
    return record.get("k") == 2 and record.get("test") in ("knha", "t")


def _two_study_t(record) -> str:
    return " (k = 2: t(1) interval)" if two_study_t(record) else ""


def _number(x):
    return np.nan if x is None else float(x)


ATLAS_FOOTER = ("Diamond: pooled estimate and CI (all eligible rows: the primary analysis); dotted: prediction "
                "interval;\nsquare: the same model without rows flagged by a quality rule.")
TWO_STUDY_FOOTER = ("\nHollow, grey interval: k = 2 with a t test (Knapp-Hartung): t with 1 df, critical value "
                    "{crit}, so the CI is wide by construction; drawn faint, printed in full.")


def atlas_plot(rows: pd.DataFrame, key: tuple[str, str], labels=None, level=95):
    """The atlas figure of one scale: a diamond per analysis, its prediction interval dotted; k = 2 t-test pools
    drawn faint (:func:`two_study_t`)."""
    measure, unit = key
    footer = ATLAS_FOOTER
    if "faint" in rows and rows["faint"].astype(bool).any():
        footer += TWO_STUDY_FOOTER.format(crit=fmt(t_ppf(0.5 + level / 200, 1)))
    return draw_forest(rows, measure=measure, level=level, labels=labels, title=scale_heading(key),
                       xlabel=axis_label(measure, labels, unit or None), columns=[("k", "k"), ("N", "n"), ("I²", "i2")],
                       estimate_header=f"{MEASURE_NAMES.get(measure, 'Estimate')} [{level:g}% CI]",
                       footer=footer, label_header="Analysis")  # fmt: skip


def reproduction_rows(table: pd.DataFrame, titles: dict[str, str]) -> dict[tuple, pd.DataFrame]:
    """Per scale of ours, a header per analysis, our estimate (diamond; and without flagged rows), then every
    published result it is compared with (square), labelled with its verdict and, when not 95%, its CI level.
    None is left out: a published result on another scale, or without a CI, is a labelled row without a
    drawing (or a square without whiskers). Ratios (reproduction.csv has them on the ratio scale) are drawn on the
    log axis of their forest plots."""
    if table is None or table.empty or "same_scale" not in table:
        return {}
    out: dict[tuple, list] = {}
    for analysis, pairs in table.groupby("analysis", sort=False):
        first = pairs.iloc[0]
        unit = first.get("unit_ours", "") if first.measure_ours == "MD" else ""
        key = (first.measure_ours, "" if pd.isna(unit) else str(unit or ""))
        same = pairs["same_scale"].astype(bool).to_numpy()
        if first.measure_ours in RATIO_MEASURES:
            pairs = pairs.copy()
            columns = [c for c in pairs if c.startswith(("estimate_", "ci_low_", "ci_high_"))]
            with np.errstate(invalid="ignore", divide="ignore"):
                pairs[columns] = np.log(pairs[columns].astype(float))
            first = pairs.iloc[0]
        labels = [_published_label(pair, scale) for pair, scale in zip(pairs.itertuples(), same, strict=True)]
        nan = np.full(len(pairs), np.nan)
        out.setdefault(key, []).append(
            pd.concat([
                rows_table([f"{first.marker}: {titles.get(analysis, analysis)}"], np.nan, np.nan, np.nan,
                           kind="header"),
                rows_table([f"ours (k = {int(first.k_ours)})"], first.estimate_ours, first.ci_low_ours,
                           first.ci_high_ours, kind="summary"),
                *([rows_table([f"ours without flagged rows (k = {int(first.k_without_flagged)})"],
                              first.estimate_without_flagged, first.ci_low_without_flagged,
                              first.ci_high_without_flagged, kind="summary")]
                  if pd.notna(getattr(first, "estimate_without_flagged", np.nan)) else []),
                rows_table(labels, np.where(same, pairs["estimate_published"], nan),
                           np.where(same, pairs["ci_low_published"], nan),
                           np.where(same, pairs["ci_high_published"], nan)),
            ], ignore_index=True)  # fmt: skip
        )
    return {key: pd.concat(parts, ignore_index=True) for key, parts in out.items()}


def _published_label(pair, same_scale: bool) -> str:
    level = getattr(pair, "ci_level_published", 95)
    level = f", {level:g}% CI" if pd.notna(level) and level != 95 else ""
    scale = "" if same_scale else f", {pair.measure_published}: another scale, not drawn"
    verdict = getattr(pair, "verdict", None)
    kind = " (update)" if getattr(pair, "comparison_type", None) == "update" else ""
    return f"published{level}{scale}: {pair.source}" + (f" — {verdict}{kind}" if isinstance(verdict, str) else "")


def reproduction_plot(rows: pd.DataFrame, key: tuple[str, str], labels=None, level=95):
    """``level``: our CIs' level; a published CI at another level says so in its label."""
    measure, unit = key
    footer = (f"Diamond: our pooled estimate; squares: published results, each labelled with its verdict. CIs "
              f"{level:g}% unless a label gives another level.")  # fmt: skip
    if measure == "SMD":
        footer += ("\nPublished d and our g are set side by side (they differ by Hedges' factor, < 2% for n > 40 "
                   "per group).")
    return draw_forest(rows, measure=measure, level=level, labels=labels,
                       title=f"Published vs reproduced: {scale_heading(key)}",
                       xlabel=axis_label(measure, labels, unit or None), label_header="Comparison",
                       estimate_header=f"{MEASURE_NAMES.get(measure, 'Estimate')} [CI]", footer=footer)  # fmt: skip
