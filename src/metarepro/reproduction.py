"""The reproduction table: our pooled results beside published ones.

A published sheet has one row per published pooled result (``PUBLISHED_COLUMNS``, plus optional
``unit`` and ``ci_level``); an analysis names
the ids it should be compared with (config ``compare_with``). For each pair the table gives both
estimates and CIs, k and n on both sides, the difference (ours − published), whether the CIs overlap,
and whether the two measures are on the same scale at all (a difference between an SMD and a raw
mean difference means nothing, so it is left empty).

Each pair gets a ``verdict`` with its ``verdict_reason``:

* ``reproduced``: our estimate, and each published CI bound and p-value, round to the published
  numbers at the published rounding (the most decimals printed among estimate and CI bounds; p at its own);
* ``consistent``: not that, but the CIs overlap (or, without a published CI, ours contains the published
  estimate);
* ``not reproduced``: neither;
* ``not comparable``: another scale, or another population (the published sheet's optional
  ``population_differs`` column says how).

The same verdict is given for the fit without flagged rows (``*_without_flagged`` columns; empty when
no included row of the analysis is flagged).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .conversions import normalize_unit
from .sheet import DECIMAL_COMMA, MISSING, SheetError, read_table

PUBLISHED_COLUMNS = (
    "id", "source", "doi", "marker", "measure", "estimate", "ci_low", "ci_high", "pval", "k",
    "n_cases", "n_controls", "i2", "model", "software", "note",
)  # fmt: skip
PUBLISHED_NUMERIC = ("estimate", "ci_low", "ci_high", "pval", "k", "n_cases", "n_controls", "i2", "ci_level")
VERDICTS = ("reproduced", "consistent", "not reproduced", "not comparable")
# Published measure names by the scale they share with ours; d and g differ by Hedges' small-sample
# factor (< 2% for n > 40 per group), close enough to set side by side but noted.
SCALES = {"SMD": "standardized", "d": "standardized", "g": "standardized", "MD": "raw", "WMD": "raw"}


def read_published(path) -> pd.DataFrame:
    """Read and check a published-results sheet; numbers that are not numbers are errors with the line named.

    Read as the extraction sheets are (:func:`metarepro.sheet.read_table`: encodings, delimiters, a decimal comma
    with ';', strict quotes), so it takes the same files and gives the same messages."""
    header, cells, lines, info = read_table(path)
    frame = pd.DataFrame(cells, columns=header, dtype=str)
    missing = [c for c in PUBLISHED_COLUMNS if c not in frame.columns]
    if missing:
        shown = ", ".join(header[:8]) + (", ..." if len(header) > 8 else "")
        raise SheetError(
            f"{path}, line {info['header_line']} (header): missing column(s) {', '.join(missing)}. Read with delimiter "
            f"{info['delimiter']!r}, the header has: {shown}. See data/raw/README.md for the published-results sheet."
        )
    if not len(frame):
        raise SheetError(f"{path}: the sheet has a header but no rows; add one row per published result.")
    problems = []
    for column in [c for c in PUBLISHED_NUMERIC if c in frame.columns]:
        text = frame[column].str.strip()
        if info["decimal_comma"]:
            text = text.where(~text.str.fullmatch(DECIMAL_COMMA), text.str.replace(",", ".", regex=False))
        given = ~text.str.lower().isin(MISSING)
        values = pd.to_numeric(text.where(given), errors="coerce")
        for i in np.flatnonzero(values.isna() & given):
            problems.append(
                f"{path}, line {lines[i]} (id {frame['id'][i]}), column '{column}': {frame[column][i]!r} is not a "
                "number; write bounds such as 'p < .00001' in 'note' and leave the cell empty."
            )
        if column in ("estimate", "ci_low", "ci_high", "pval"):
            frame[f"{column}_decimals"] = [_decimals(x) for x in text.where(given, "")]
        frame[column] = values
    duplicated = frame["id"][frame["id"].duplicated()].tolist()
    if duplicated:
        problems.append(f"{path}: id(s) {', '.join(duplicated)} appear more than once; ids must be unique.")
    if problems:
        raise SheetError("\n  ".join([f"{len(problems)} problem(s) in {path}:", *problems]))
    return frame.set_index("id", drop=False)


def _decimals(text):
    """Decimals printed in a number ('0.325' → 3, '1.2e-3' → None: not a plain rounding)."""
    text = str(text).strip()
    if not text or "e" in text.lower():
        return None
    return len(text.split(".")[1]) if "." in text else 0


def _decimals_of(pub, name):
    value = pub.get(f"{name}_decimals")
    return None if value is None or not np.isfinite(value) else int(value)


def _rounds_to(ours, published, decimals):
    ours = np.nan if ours is None else float(ours)
    return decimals is not None and np.isfinite(ours) and abs(round(ours, decimals) - published) < 1e-12


def _fmt(estimate, low, high):
    return f"{estimate:.3g} ({low:.3g} to {high:.3g})" if np.isfinite(low) and np.isfinite(high) else f"{estimate:.3g}"


def verdict(mine: dict, pub, same_scale: bool) -> tuple[str, str]:
    """(verdict, reason) for one of our fits (a pooled.json record) against one published result."""
    if not same_scale:
        return "not comparable", f"other scale: ours {mine['measure']}, published {pub['measure']}"
    population = str(pub.get("population_differs", "") or "").strip()
    if population:
        return "not comparable", f"other population: {population}"
    fields = [name for name in ("estimate", "ci_low", "ci_high") if np.isfinite(pub[name])]
    decimals = max((d for d in (_decimals_of(pub, name) for name in fields) if d is not None), default=None)
    matched = all(_rounds_to(mine[name], pub[name], decimals) for name in fields)
    if np.isfinite(pub.get("pval", np.nan)):
        matched &= _rounds_to(mine.get("pval", np.nan), pub["pval"], _decimals_of(pub, "pval"))
    theirs = _fmt(pub["estimate"], pub["ci_low"], pub["ci_high"])
    level = pub.get("ci_level", 95)
    level_note = f" (published CI at {level:g}%)" if np.isfinite(level) and level != 95 else ""
    ours = _fmt(mine["estimate"], mine["ci_low"], mine["ci_high"])
    if matched:
        return "reproduced", f"ours {ours} rounds to the published {theirs} at {decimals} decimals"
    if len(fields) == 3:
        overlap = mine["ci_low"] <= pub["ci_high"] and pub["ci_low"] <= mine["ci_high"]
        if overlap:
            return "consistent", f"CIs overlap: ours {ours}, published {theirs}{level_note}"
        return "not reproduced", f"CIs do not overlap: ours {ours}, published {theirs}{level_note}"
    if mine["ci_low"] <= pub["estimate"] <= mine["ci_high"]:
        return "consistent", f"our CI {ours} contains the published estimate {theirs} (no published CI)"
    return "not reproduced", f"our CI {ours} excludes the published estimate {theirs} (no published CI)"


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
                    **dict(zip(("verdict", "verdict_reason"), verdict(mine, pub, same_scale), strict=True)),
                    **_without_flagged_columns(mine, pub, same_scale),
                }
            )
    return pd.DataFrame.from_records(rows)


def _without_flagged_columns(mine, pub, same_scale):
    """The sensitivity fit without flagged rows beside the primary (empty when nothing was flagged)."""
    fit = mine.get("without_flagged")
    names = ("k", "estimate", "ci_low", "ci_high", "verdict", "verdict_reason")
    if not fit:
        return {f"{name}_without_flagged": None for name in names}
    found = verdict(fit, pub, same_scale) if fit.get("k") else (None, "every included row is flagged")
    values = (fit.get("k"), fit.get("estimate"), fit.get("ci_low"), fit.get("ci_high"), *found)
    return {f"{name}_without_flagged": value for name, value in zip(names, values, strict=True)}
