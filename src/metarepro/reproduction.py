"""The reproduction table: our pooled results beside published ones.

A published sheet has one row per published pooled result (``PUBLISHED_COLUMNS``, plus optional
``unit`` and ``ci_level``); an analysis names
the ids it should be compared with (config ``compare_with``). For each pair the table gives both
estimates and CIs, k and n on both sides, the difference (ours − published), whether the CIs overlap,
and whether the two measures are on the same scale at all (a difference between an SMD and a raw
mean difference means nothing, so it is left empty).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .conversions import normalize_unit
from .sheet import SheetError

PUBLISHED_COLUMNS = (
    "id", "source", "doi", "marker", "measure", "estimate", "ci_low", "ci_high", "pval", "k",
    "n_cases", "n_controls", "i2", "model", "software", "note",
)  # fmt: skip
PUBLISHED_NUMERIC = ("estimate", "ci_low", "ci_high", "pval", "k", "n_cases", "n_controls", "i2", "ci_level")
# Published measure names by the scale they share with ours; d and g differ by Hedges' small-sample
# factor (< 2% for n > 40 per group), close enough to set side by side but noted.
SCALES = {"SMD": "standardized", "d": "standardized", "g": "standardized", "MD": "raw", "WMD": "raw"}


def read_published(path) -> pd.DataFrame:
    """Read and check a published-results sheet; numbers that are not numbers are errors with the line named."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in PUBLISHED_COLUMNS if c not in frame.columns]
    if missing:
        raise SheetError(f"{path}, line 1 (header): missing column(s) {', '.join(missing)}.")
    problems = []
    for column in [c for c in PUBLISHED_NUMERIC if c in frame.columns]:
        text = frame[column].str.strip()
        values = pd.to_numeric(text.where(text != ""), errors="coerce")
        for i in np.flatnonzero(values.isna() & (text != "")):
            problems.append(
                f"{path}, line {i + 2} (id {frame['id'][i]}), column '{column}': {frame[column][i]!r} is not a "
                "number; write bounds such as 'p < .00001' in 'note' and leave the cell empty."
            )
        frame[column] = values
    duplicated = frame["id"][frame["id"].duplicated()].tolist()
    if duplicated:
        problems.append(f"{path}: id(s) {', '.join(duplicated)} appear more than once; ids must be unique.")
    if problems:
        raise SheetError("\n  ".join([f"{len(problems)} problem(s) in {path}:", *problems]))
    return frame.set_index("id", drop=False)


def _scale(measure, unit=None):
    """'standardized', 'raw <unit>' or None (unknown): two results compare only on the same scale."""
    scale = SCALES.get(str(measure).strip())
    if scale == "raw":
        return f"raw {normalize_unit(unit)}" if unit else None
    return scale


def reproduction_table(ours: dict[str, dict], published: pd.DataFrame, compare: dict[str, list[str]]) -> pd.DataFrame:
    """One row per (analysis, published id). ``ours`` maps analysis name → its pooled.json record."""
    rows = []
    for analysis, ids in compare.items():
        mine = ours[analysis]
        for pid in ids:
            if pid not in published.index:
                raise SheetError(f"config: analysis {analysis} compares with '{pid}', which the published sheet lacks.")
            pub = published.loc[pid]
            ours_scale = _scale(mine["measure"], mine.get("unit"))
            same_scale = ours_scale is not None and ours_scale == _scale(pub["measure"], pub.get("unit", ""))
            overlap = mine["ci_low"] <= pub["ci_high"] and pub["ci_low"] <= mine["ci_high"]
            has_ci = np.isfinite(pub["ci_low"]) and np.isfinite(pub["ci_high"])
            rows.append(
                {
                    "analysis": analysis,
                    "published_id": pid,
                    "source": pub["source"],
                    "marker": pub["marker"],
                    "measure_ours": mine["measure"],
                    "measure_published": pub["measure"],
                    "same_scale": same_scale,
                    "estimate_ours": mine["estimate"],
                    "ci_low_ours": mine["ci_low"],
                    "ci_high_ours": mine["ci_high"],
                    "estimate_published": pub["estimate"],
                    "ci_low_published": pub["ci_low"],
                    "ci_high_published": pub["ci_high"],
                    "difference": mine["estimate"] - pub["estimate"] if same_scale else np.nan,
                    "ci_overlap": bool(overlap) if same_scale and has_ci else None,
                    "k_ours": mine["k"],
                    "k_published": pub["k"],
                    "n_cases_ours": mine.get("n_cases"),
                    "n_cases_published": pub["n_cases"],
                    "n_controls_ours": mine.get("n_controls"),
                    "n_controls_published": pub["n_controls"],
                    "method_ours": f"{mine['method']}/{mine['test']} ({mine.get('preset', 'metafor')})",
                    "model_published": pub["model"],
                }
            )
    return pd.DataFrame.from_records(rows)
