"""The reproduction table: our pooled results beside published ones.

A published sheet has one row per published pooled result (:func:`metarepro.inputs.published.read_published`);
an analysis names
the ids it should be compared with (config ``compare_with``). For each pair the table gives both
estimates and CIs, k and n on both sides, the difference (ours − published), whether the CIs overlap,
and whether the two measures are on the same scale at all (a difference between an SMD and a raw
mean difference means nothing, so it is left empty).

Each pair gets a ``verdict`` with its ``verdict_reason`` (:func:`comparison`; the scale and its sources are in
``data/raw/README.md``, "Verdicts"): ``not comparable``, ``insufficient information``, ``reproduced`` (our numbers
round to the published ones at their precision), ``reproduced, approximately`` (SMD: estimate and CI bounds within
0.1; other scales: estimate and CI width within 10%), ``meaningfully different`` (direction, or only one CI
includes the null), ``discrepant, same conclusion``; with ``difference``, ``difference_relative``,
``ci_width_relative``, ``flag_5pct`` and the Altman-Bland test of the difference (``difference_z``,
``difference_p``). CIs are compared at the published level.

The same verdict is given for the fit without flagged rows (``*_without_flagged`` columns; empty when
no included row of the analysis is flagged).

Ratio measures (ROM, VR, CVR, OR, RR, ...: pooled on the log scale) are compared on the ratio scale papers print them
on: our estimate and CI back-transformed with exp (the table's ``*_ours`` and ``*_without_flagged`` columns are
ratios too), the null is 1, and the Altman-Bland test works on the logs (the scale the CIs are symmetric on).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from metarepro._core import dist
from metarepro.inputs.sheet import SheetError
from metarepro.stats.conversions import normalize_unit
from metarepro.stats.effects import RATIO_MEASURES

VERDICTS = ("not comparable", "insufficient information", "reproduced", "reproduced, approximately",
            "meaningfully different", "discrepant, same conclusion")  # in the order they are tried
# Published measure names by the scale they share with ours; d and g differ by Hedges' small-sample
# factor (< 2% for n > 40 per group), close enough to set side by side but noted.
SCALES = {"SMD": "standardized", "d": "standardized", "g": "standardized", "MD": "raw", "WMD": "raw",
          **{m: f"ratio {m}" for m in RATIO_MEASURES}}  # a ratio compares only with the same ratio


def _decimals_of(pub, name):
    value = pub.get(f"{name}_decimals")
    return None if value is None or not np.isfinite(value) else int(value)


def _rounds_to(ours, published, decimals):
    ours = np.nan if ours is None else float(ours)
    return decimals is not None and np.isfinite(ours) and abs(round(ours, decimals) - published) < 1e-12


def _fmt(estimate, low, high):
    return f"{estimate:.3g} ({low:.3g} to {high:.3g})" if np.isfinite(low) and np.isfinite(high) else f"{estimate:.3g}"


# The verdict scale (data/raw/README.md, "Verdicts"): thresholds of the reproducibility literature
STANDARDIZED_TOLERANCE = 0.1  # SMD units: Gøtzsche 2007, Tendal 2009, Lee 2023
RELATIVE_TOLERANCE = 0.10  # estimate and CI width, other scales: REPRISE (Nguyen 2025)
EARLY_FLAG = 0.05  # first-stage flag: López-Nicolás 2024
NULL = 0.0  # of a difference or a standardized difference; a ratio's null is 1 (see _is_ratio)
# the numbers beside each verdict (for the primary fit, and with the suffix _without_flagged for the sensitivity fit)
COMPARISON_NUMBERS = ("difference", "difference_relative", "ci_width_relative", "flag_5pct", "difference_z",
                      "difference_p")  # fmt: skip


def _below(value, limit) -> bool:
    """``value < limit`` for a difference of printed numbers: 0.5 − 0.4 is 0.1, not 0.0999999999999999778."""
    return bool(np.isfinite(value) and round(float(value), 12) < limit)


def _crit(level, mine=None):
    """The two-sided critical value of a CI at ``level`` percent: normal, or t as our fit's test uses it."""
    q = 0.5 + float(level) / 200
    if mine is None or mine.get("test", "z") == "z":
        return float(dist.norm_ppf(q))
    df = mine.get("df", mine["k"] - 1 if mine.get("test") == "knha" else np.nan)
    return float(dist.t_ppf(q, df)) if np.isfinite(df) and df > 0 else np.nan


def _our_ci(mine, level):
    """Our CI at the published level: as fitted when the levels agree, else estimate ± crit·se."""
    ours_level = mine.get("level", 95)
    if not np.isfinite(level) or abs(float(level) - float(ours_level)) < 1e-9:
        return mine["ci_low"], mine["ci_high"]
    crit = _crit(level, mine) * mine.get("se", np.nan)
    return mine["estimate"] - crit, mine["estimate"] + crit


def comparison(mine: dict, pub, same_scale: bool) -> dict:
    """One of our fits (a pooled.json record) beside one published result: the verdict (first that applies, see
    data/raw/README.md), its reason, and the differences behind it."""
    out = {"verdict": None, "verdict_reason": "", "difference": np.nan, "difference_relative": np.nan,
           "ci_width_relative": np.nan, "flag_5pct": None, "difference_z": np.nan, "difference_p": np.nan}  # fmt: skip

    def said(verdict, reason):
        return {**out, "verdict": verdict, "verdict_reason": reason}

    if not same_scale:
        return said("not comparable", f"other scale: ours {mine['measure']}, published {pub['measure']}")
    population = str(pub.get("population_differs", "") or "").strip()
    if population:
        return said("not comparable", f"other population: {population}")
    estimate_p, pval_p = pub["estimate"], pub.get("pval", np.nan)
    level = pub.get("ci_level", np.nan)
    level = 95.0 if not np.isfinite(level) else float(level)
    has_ci = bool(np.isfinite(pub["ci_low"]) and np.isfinite(pub["ci_high"]))
    if not np.isfinite(estimate_p):
        return said("insufficient information", "the published result has no estimate to compare with")
    estimate = mine.get("estimate", np.nan)
    low, high = _our_ci(mine, level) if np.isfinite(estimate) else (np.nan, np.nan)
    if not (np.isfinite(estimate) and np.isfinite(low) and np.isfinite(high)):
        return said("insufficient information", "our fit has no estimate or CI (no included study)")
    ratio = _is_ratio(mine["measure"])
    null = 1.0 if ratio else NULL
    log = np.log if ratio else (lambda x: x)  # the scale the CIs are symmetric on
    if ratio:
        estimate, low, high = np.exp([estimate, low, high])

    diff = estimate - estimate_p
    out["difference"] = diff
    out["difference_relative"] = diff / abs(estimate_p) if estimate_p != 0 else np.nan
    width_p = pub["ci_high"] - pub["ci_low"] if has_ci else np.nan
    if has_ci and width_p > 0:
        out["ci_width_relative"] = ((high - low) - width_p) / width_p
        with np.errstate(invalid="ignore", divide="ignore"):  # a ratio's CI bound of 0 or below has no log
            se_p = (log(pub["ci_high"]) - log(pub["ci_low"])) / (2 * _crit(level))  # Altman & Bland 2003
            out["difference_z"] = (log(estimate) - log(estimate_p)) / np.hypot(mine.get("se", np.nan), se_p)
        out["difference_p"] = float(2 * dist.norm_sf(abs(out["difference_z"])))
    relative = [abs(out[name]) for name in ("difference_relative", "ci_width_relative") if np.isfinite(out[name])]
    out["flag_5pct"] = any(round(r, 12) >= EARLY_FLAG for r in relative)

    ours = _fmt(estimate, low, high) + (f" at {level:g}%" if level != mine.get("level", 95) else "")
    theirs = _fmt(estimate_p, pub["ci_low"], pub["ci_high"]) + (f" ({level:g}% CI)" if has_ci and level != 95 else "")
    fields = ["estimate", *(("ci_low", "ci_high") if has_ci else ())]
    values = {"estimate": estimate, "ci_low": low, "ci_high": high}
    decimals = max((d for d in (_decimals_of(pub, name) for name in fields) if d is not None), default=None)
    matched = all(_rounds_to(values[name], pub[name], decimals) for name in fields)
    if np.isfinite(pval_p):
        matched &= _rounds_to(mine.get("pval", np.nan), pval_p, _decimals_of(pub, "pval"))
    if matched:
        return said("reproduced", f"ours {ours} rounds to the published {theirs} at {decimals} decimals")

    alpha = 1 - level / 100
    excludes_null = not (low <= null <= high)
    excludes_null_p = not (pub["ci_low"] <= null <= pub["ci_high"]) if has_ci else bool(pval_p < alpha)
    known = has_ci or np.isfinite(pval_p)  # without either, the published conclusion is unknown
    conclusion = ""
    if known and excludes_null != excludes_null_p:
        conclusion = "significance differs: " + ("ours excludes the null, the published does not" if excludes_null
                                                 else "the published excludes the null, ours does not")  # fmt: skip
    compared = "estimate" + (" and CI bounds" if has_ci else "")
    if _standardized(mine["measure"]):
        gaps = [abs(values[name] - pub[name]) for name in fields]
        within = all(_below(g, STANDARDIZED_TOLERANCE) for g in gaps)
        how = f"largest difference {max(gaps):.3f} ({compared}; threshold {STANDARDIZED_TOLERANCE:g})"
    else:
        gaps = [abs(out["difference_relative"])] + ([abs(out["ci_width_relative"])] if has_ci else [])
        within = all(_below(g, RELATIVE_TOLERANCE) for g in gaps)
        compared = "estimate" + (" and CI width" if has_ci else "")
        how = f"largest relative difference {max(gaps):.1%} ({compared}; threshold {RELATIVE_TOLERANCE:.0%})"
    both = f"ours {ours}, published {theirs}"
    if within:
        return said("reproduced, approximately", f"{how}: {both}" + (f"; {conclusion}" if conclusion else ""))
    flipped = np.sign(estimate - null) * np.sign(estimate_p - null) < 0
    if flipped or conclusion:
        why = "; ".join(part for part in ("the direction differs" if flipped else "", conclusion) if part)
        return said("meaningfully different", f"{why}: {both}")
    if not known:
        return said("insufficient information", f"{how}; the published result has no CI or p, so whether the "
                    f"conclusions agree cannot be told: {both}")  # fmt: skip
    return said("discrepant, same conclusion", f"{how}; same direction and significance: {both}")


def _is_ratio(measure) -> bool:
    return str(measure).strip() in RATIO_MEASURES


def _reader(mine: dict, name: str):
    """One of our pooled values as the table shows it: a ratio for ratio measures (exp of the log), else as is."""
    value = mine.get(name)
    return float(np.exp(value)) if value is not None and _is_ratio(mine.get("measure")) else value


def _standardized(measure) -> bool:
    return SCALES.get(str(measure).strip()) == "standardized"


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
            low, estimate, high = (_reader(mine, name) for name in ("ci_low", "estimate", "ci_high"))
            overlap = low <= pub["ci_high"] and pub["ci_low"] <= high
            has_ci = np.isfinite(pub["ci_low"]) and np.isfinite(pub["ci_high"])
            rows.append(
                {
                    "analysis": analysis,
                    "published_id": pid,
                    "source": pub["source"],
                    "marker": pub["marker"],
                    "measure_ours": mine["measure"],
                    "measure_published": pub["measure"],
                    "unit_ours": mine.get("unit"),
                    "ci_level_published": pub.get("ci_level", np.nan),
                    "same_scale": same_scale,
                    "estimate_ours": estimate,
                    "ci_low_ours": low,
                    "ci_high_ours": high,
                    "estimate_published": pub["estimate"],
                    "ci_low_published": pub["ci_low"],
                    "ci_high_published": pub["ci_high"],
                    "difference": estimate - pub["estimate"] if same_scale else np.nan,
                    "ci_overlap": bool(overlap) if same_scale and has_ci else None,
                    "k_ours": mine["k"],
                    "k_published": pub["k"],
                    "n_cases_ours": mine.get("n_cases"),
                    "n_cases_published": pub["n_cases"],
                    "n_controls_ours": mine.get("n_controls"),
                    "n_controls_published": pub["n_controls"],
                    "method_ours": f"{mine['method']}/{mine['test']} ({mine.get('preset', 'metafor')})",
                    "model_published": pub["model"],
                    **comparison(mine, pub, same_scale),
                    **study_set(mine, pub),
                    **_without_flagged_columns(mine, pub, same_scale),
                }
            )
            rows[-1]["verdict_reason"] += _study_set_note(rows[-1], mine)
    table = pd.DataFrame.from_records(rows)
    if "k_without_flagged" in table:  # a count, also where an analysis has no flagged row (empty, not 9.0 beside it)
        table["k_without_flagged"] = table["k_without_flagged"].astype("Int64")
    return table


def _study_set_note(row, mine) -> str:
    """What the study sets allow the verdict to mean, for the reason column."""
    if row["comparison_type"] == "update":
        pooled = sum(n for _, n in study_year_counts(mine))
        return (f"; an update, not a reproduction: {row['k_after_search']} of our {pooled} pooled "
                f"studies appeared after the published search ended ({row['search_end_published']})")
    if row["comparison_type"] == "reproduction":
        return f"; none of our pooled studies appeared after the published search ended ({row['search_end_published']})"
    if row["k_year_unknown"]:
        return (f"; {row['k_year_unknown']} of our pooled studies have no year, so whether our set could be the "
                "published one is not known")
    return ""


def _search_year(text) -> int | None:
    """The year of a published search end written ``2009``, ``2009-08`` or ``2009-08-31``; None when not given."""
    match = re.fullmatch(r"\s*(\d{4})(-\d{1,2}(-\d{1,2})?)?\s*", str(text or ""))
    return int(match[1]) if match else None


def study_year_counts(mine: dict) -> list | None:
    """[year, count] pairs of our pooled studies (None: no year), from the record's ``study_years`` or, for a large
    analysis, its ``study_year_counts``; None when the record has neither."""
    if mine.get("study_year_counts") is not None:
        return mine["study_year_counts"]
    years = mine.get("study_years")
    return None if years is None else [[y, 1] for y in years]


def study_set(mine: dict, pub) -> dict:
    """Whether our pooled studies could be the published meta-analysis's: how many appeared after the year its
    search ended (they cannot be in it), in that year (they may not be), or have no year, and so whether the pair
    is a ``reproduction`` (none postdates the search: our set could be the published one), an ``update`` (some
    do: a difference is at least partly new evidence, not a failed reproduction) or unknown (no search end given,
    or our studies' years are not known)."""
    search = str(pub.get("search_end", "") or "").strip()
    year = _search_year(search)
    counts = study_year_counts(mine)
    out = {"search_end_published": search or None, "k_after_search": None, "k_search_year": None,
           "k_year_unknown": None, "comparison_type": None}  # fmt: skip
    if year is None or counts is None:
        return out
    out.update(k_after_search=sum(n for y, n in counts if y is not None and y > year),
               k_search_year=sum(n for y, n in counts if y == year),
               k_year_unknown=sum(n for y, n in counts if y is None))  # fmt: skip
    if out["k_after_search"]:
        out["comparison_type"] = "update"
    elif not out["k_year_unknown"]:  # a study without a year might postdate the search
        out["comparison_type"] = "reproduction"
    return out


def _without_flagged_columns(mine, pub, same_scale):
    """The sensitivity fit without flagged rows beside the primary, with the same verdict and differences (empty when
    nothing was flagged)."""
    fit = mine.get("without_flagged")
    fields = ("verdict", "verdict_reason", *COMPARISON_NUMBERS)
    names = ("k", "estimate", "ci_low", "ci_high", *fields)
    if not fit:
        return {f"{name}_without_flagged": None for name in names}
    found = comparison(fit, pub, same_scale) if fit.get("k") else {"verdict_reason": "every included row is flagged"}
    shown = {**fit, "measure": mine.get("measure")}
    values = (fit.get("k"), *(_reader(shown, n) for n in ("estimate", "ci_low", "ci_high")),
              *(found.get(f) for f in fields))
    return {f"{name}_without_flagged": value for name, value in zip(names, values, strict=True)}
