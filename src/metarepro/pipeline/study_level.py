"""Study-level reproduction: each study's effect as a published meta-analysis printed it (its forest plot or
table) beside our effect for the same study, recomputed from the primary source.

This is the unit the reproducibility literature audits (Gøtzsche et al. 2007, JAMA 298:430; Maassen et al. 2020,
PLoS ONE; Lee et al. 2023, Psychol Med 53:2017): a study "agrees" when the two effects differ by less than the
verdict scale's threshold (``reproduction.STANDARDIZED_TOLERANCE`` on SMD-type scales, else
``RELATIVE_TOLERANCE`` of the published estimate; data/raw/README.md, "Verdicts"). Where they differ, the numbers
may point at a cause (an SE used as an SD, swapped arms, another sample size); these are *suggestions* read off
the numbers, never a finding.

Pure functions over DataFrames (the published sheet is read by :func:`metarepro.inputs.published.read_study_values`):
:func:`compare_studies` matches and compares, :func:`study_counts` and :func:`summary_sentence` summarise the table.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter

import numpy as np
import pandas as pd

from metarepro.pipeline.reproduction import RELATIVE_TOLERANCE, STANDARDIZED_TOLERANCE, _below, _standardized

STATUSES = ("agrees", "differs", "insufficient information", "missing study", "added study")
SIGN = "sign error or arms swapped"
SD_SE = "SD/SE confusion"
SAMPLE_SIZE = "sample size"
OTHER = "calculation or other"
# An SMD computed with SEMs in place of SDs is the right one times the ratio SD/SEM-pooled, which lies between
# sqrt(n) of the smaller and of the larger group (exactly, when both groups' dispersions were SEMs; Hedges' J is
# the same on both sides). The band is widened by this fraction for the rounding of printed values and for a
# sample size known on one side only; a ratio below 2 is not read as a sign of anything (n >= 4 per group).
SQRT_N_SLACK = 0.10
MIN_RATIO = 2.0

COLUMNS = ["study", "study_id_published", "study_id_ours", "matched_by", "line_published", "line_ours",
           "estimate_published", "ci_low_published", "ci_high_published", "n_cases_published", "n_controls_published",
           "estimate_ours", "ci_low_ours", "ci_high_ours", "n_cases_ours", "n_controls_ours", "difference",
           "difference_relative", "ratio", "status", "suggested_error", "note"]  # fmt: skip

_LETTERS = str.maketrans({"ł": "l", "Ł": "L", "ø": "o", "Ø": "O", "đ": "d", "Đ": "D", "ß": "ss", "æ": "ae", "œ": "oe"})


def author_year(label, year="") -> tuple[str, str] | None:
    """The key a study is matched by when the published sheet gives no study_id: the first author's surname
    (letters only, lower case, accents dropped: 'Stypuła 1996' -> 'stypula') and the year (the ``year`` cell, else
    the first 19xx/20xx in the label, with a letter such as 2001a kept). None when either cannot be read."""
    text = unicodedata.normalize("NFKD", str(label).translate(_LETTERS))
    text = "".join(c for c in text if not unicodedata.combining(c))
    author = re.match(r"\s*([^\W\d_]+(?:[-'’][^\W\d_]+)*)", text)
    found = re.search(r"(?<!\d)((?:19|20)\d\d[a-z]?)(?![\da-z])", str(year) or text) or \
        re.search(r"(?<!\d)((?:19|20)\d\d[a-z]?)(?![\da-z])", text)  # fmt: skip
    if not author or not found:
        return None
    return re.sub(r"[^a-z]", "", author.group(1).lower()), found.group(1)


def our_studies(effects: pd.DataFrame) -> pd.DataFrame:
    """One row per study_id of our ``effects`` table: its pooled row, else (no row of it pooled) its first row,
    which carries the reason it was not used."""
    included = effects["included"].astype(str).str.lower().isin(("true", "1"))
    frame = effects.assign(included=included, _order=~included)
    first = frame.sort_values(["_order"], kind="stable").drop_duplicates("study_id", keep="first")
    return first.sort_index().drop(columns="_order").reset_index(drop=True)


def match_studies(published: pd.DataFrame, ours: pd.DataFrame) -> list[tuple[int | None, int | None, str, str]]:
    """Pairs ``(published row, our row, matched_by, note)``: a published row with a study_id matches our row of
    that study_id only; one without matches by :func:`author_year` when exactly one of our studies has that key.
    Everything unmatched is listed on its own side with the reason; nothing is matched by a guess."""
    by_id = {str(sid): i for i, sid in enumerate(ours["study_id"])}
    by_key: dict[tuple, list[int]] = {}
    for i, label in enumerate(ours["study"]):
        key = author_year(label)
        if key:
            by_key.setdefault(key, []).append(i)
    pairs, taken = [], {}
    for p, row in published.iterrows():
        if row["study_id"]:
            i = by_id.get(row["study_id"])
            how, note = "study_id", "" if i is not None else f"study_id {row['study_id']!r} is not in our sheet"
        else:
            key = author_year(row["study"], row["year"])
            candidates = [i for i in by_key.get(key, [])] if key else []
            how, i = "author+year", candidates[0] if len(candidates) == 1 else None
            note = (f"no first author and year could be read from {row['study']!r}" if key is None
                    else f"no study of ours is {key[0]} {key[1]}" if not candidates
                    else f"{len(candidates)} of our studies are {key[0]} {key[1]} "
                         f"({', '.join(str(ours['study_id'][c]) for c in candidates)}): add study_id to the published "
                         "sheet" if len(candidates) > 1 else "")  # fmt: skip
        if i is not None and i in taken:
            note, i = f"our study {ours['study_id'][i]} is already matched to published line {taken[i]}", None
        if i is not None:
            taken[i] = row["line"]
        pairs.append((p, i, how if i is not None else "", note))
    pairs += [(None, i, "", "not in the published sheet") for i in range(len(ours)) if i not in taken]
    return pairs


def suggested_errors(published: float, ours: float, n_published=(), n_ours=()) -> list[str]:
    """What the numbers of a differing pair point at, in this order (every one that applies): opposite signs (a
    sign error, or cases and controls swapped); a ratio of the two near sqrt(n) (an SE used as an SD, see
    :data:`SQRT_N_SLACK`); group sizes that differ between the two sides; else a calculation or other error.
    ``n_published``, ``n_ours``: (n_cases, n_controls), NaN where unknown."""
    reasons = []
    if published * ours < 0:
        reasons.append(SIGN)
    sizes = [float(n) for n in (*n_published, *n_ours) if np.isfinite(n) and n >= 4]
    small, large = sorted([abs(published), abs(ours)])
    if sizes and small > 0:
        ratio = large / small
        low, high = math.sqrt(min(sizes)) * (1 - SQRT_N_SLACK), math.sqrt(max(sizes)) * (1 + SQRT_N_SLACK)
        if ratio >= MIN_RATIO and low <= ratio <= high:
            reasons.append(SD_SE)
    if any(np.isfinite(a) and np.isfinite(b) and a != b for a, b in zip(n_published, n_ours, strict=True)):
        reasons.append(SAMPLE_SIZE)
    return reasons or [OTHER]


def compare_studies(effects: pd.DataFrame, published: pd.DataFrame, measure: str) -> pd.DataFrame:
    """One row per study on either side (:data:`COLUMNS`), in the published sheet's order, then ours: both
    estimates, ``difference`` (ours − published), ``difference_relative`` (divided by |published|), ``ratio``
    (ours / published), ``status`` (one of :data:`STATUSES`) and ``suggested_error`` (for a differing pair, the
    suggestions of :func:`suggested_errors`; "missing study" / "added study" for a study on one side only).
    ``effects``: our effects.csv; ``published``: :func:`read_study_values`; ``measure``: the scale of both (an
    SMD-type measure is compared by the absolute threshold, any other by the relative one)."""
    ours = our_studies(effects)
    standardized = _standardized(measure)
    rows = []
    for p, i, how, note in match_studies(published, ours):
        pub = published.loc[p] if p is not None else None
        our = ours.loc[i] if i is not None else None
        row = dict.fromkeys(COLUMNS, np.nan) | {"matched_by": how, "note": note, "suggested_error": ""}
        row["study"] = pub["study"] or pub["study_id"] if pub is not None else our["study"]
        if pub is not None:
            row |= {"study_id_published": pub["study_id"], "line_published": pub["line"],
                    **{f"{c}_published": pub[c] for c in ("estimate", "ci_low", "ci_high", "n_cases", "n_controls")}}
        if our is not None:
            row |= {"study_id_ours": our["study_id"], "line_ours": our["line"], "estimate_ours": our["yi"],
                    "ci_low_ours": our["ci_low"], "ci_high_ours": our["ci_high"],
                    "n_cases_ours": our["n_cases"], "n_controls_ours": our["n_controls"]}  # fmt: skip
        rows.append(_judge(row, pub, our, standardized))
    return pd.DataFrame.from_records(rows, columns=COLUMNS)


def _judge(row: dict, pub, our, standardized: bool) -> dict:
    """``row`` with its status, the differences and the suggested error."""
    if pub is None:
        usable = bool(our["included"])
        return row | {"status": "added study" if usable else "insufficient information",
                      "suggested_error": "added study" if usable else "",
                      "note": "only in our sheet" + ("" if usable else f"; not usable: {our['reason']}")}  # fmt: skip
    if our is None:
        return row | {"status": "missing study", "suggested_error": "missing study"}
    if not bool(our["included"]) or not np.isfinite(row["estimate_ours"]):
        return row | {"status": "insufficient information", "note": f"ours not usable: {our['reason']}"}
    if not np.isfinite(row["estimate_published"]):
        return row | {"status": "insufficient information", "note": "the published sheet gives no estimate"}
    published, mine = row["estimate_published"], row["estimate_ours"]
    difference = mine - published
    relative = difference / abs(published) if published != 0 else np.nan
    within = (_below(abs(difference), STANDARDIZED_TOLERANCE) if standardized
              else _below(abs(relative), RELATIVE_TOLERANCE))  # fmt: skip
    row |= {"difference": difference, "difference_relative": relative,
            "ratio": mine / published if published != 0 else np.nan}  # fmt: skip
    if within:
        return row | {"status": "agrees"}
    n_published = (row["n_cases_published"], row["n_controls_published"])
    n_ours = (row["n_cases_ours"], row["n_controls_ours"])
    return row | {"status": "differs", "suggested_error": "; ".join(suggested_errors(published, mine, n_published,
                                                                                   n_ours))}  # fmt: skip


def study_counts(table: pd.DataFrame) -> dict:
    """Counts of a :func:`compare_studies` table: ``published`` (studies in the published sheet), ``compared``
    (both estimates known), one count per status, and ``suggestions`` ({suggested error: differing studies})."""
    status = table["status"].fillna("")
    published = int(table["line_published"].notna().sum())
    counts = {"published": published, "compared": int(status.isin(("agrees", "differs")).sum())}
    counts |= {name: int((status == name).sum()) for name in STATUSES}
    suggestions = Counter(s.strip() for text in table["suggested_error"][status == "differs"].fillna("")
                          for s in str(text).split(";") if s.strip())  # fmt: skip
    return counts | {"suggestions": dict(suggestions)}


def threshold_text(measure: str) -> str:
    """The agreement threshold in words."""
    if _standardized(measure):
        return f"within {STANDARDIZED_TOLERANCE:g} ({measure} units)"
    return f"within {RELATIVE_TOLERANCE:.0%} of the published estimate"


def summary_sentence(counts: dict, measure: str, published_name: str = "the published meta-analysis") -> str:
    """One sentence with the counts, e.g. '2 of 13 studies of Qin 2016 agree within 0.1 (SMD units); ...'."""
    parts = [f"{counts['agrees']} of {counts['published']} studies of {published_name} agree with ours "
             f"{threshold_text(measure)}"]
    if counts["differs"]:
        why = ", ".join(f"{name} {n}" for name, n in sorted(counts["suggestions"].items(), key=lambda kv: -kv[1]))
        parts.append(f"{counts['differs']} differ (suggested from the numbers: {why})")
    unusable = counts["insufficient information"]
    if unusable:
        parts.append(f"{unusable} could not be compared (no usable numbers on one side)")
    if counts["missing study"]:
        parts.append(f"{counts['missing study']} are not in our sheet")
    if counts["added study"]:
        parts.append(f"{counts['added study']} of ours are not in the published analysis")
    return "; ".join(parts) + "."
