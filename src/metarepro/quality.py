"""Pre-specified quality rules for extraction rows (documented, with their thresholds, in data/raw/README.md).

Each rule is a pure function over the arrays of one analysis's rows and returns one text per row: empty,
or a flag that starts with the rule's name and gives the numbers that tripped it. :func:`flag_rows`
runs them all and returns a :class:`QualityFlags`. A flag never excludes a row from the primary fit;
the pipeline refits without flagged rows as a sensitivity analysis.

Rules: ``low_dispersion``, ``likely_sem`` / ``inconsistent_test``, ``extreme_effect``,
``implausible_value``, ``eligibility_unclear``, ``not_double_checked``, ``overlap``.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import conversions as cv
from . import effects as es
from .sheet import LINE

LOW_CV = 0.10  # SD/mean at or below this: an SEM printed as an SD?
TEST_FACTOR = 2.0  # recomputed and reported t disagree when their ratio is outside [1/2, 2]
G_LIMIT = 2.0  # |g| above this is an extreme effect
VALUE_FACTOR = 10.0  # a control mean this far (as a ratio) from the other controls' median ...
VALUE_ROBUST_Z = 3.5  # ... and this many robust SDs (1.4826 MAD, log10 scale) away
VALUE_MIN_ROWS = 5  # control means needed before the value rule says anything
RULES = (
    "low_dispersion", "likely_sem", "inconsistent_test", "extreme_effect", "implausible_value",
    "eligibility_unclear", "not_double_checked", "overlap",
)  # fmt: skip


@dataclass(frozen=True)
class QualityFlags:
    """Flags per row (a tuple of texts per row, in rule order)."""

    items: tuple[tuple[str, ...], ...]

    @property
    def flagged(self) -> np.ndarray:
        return np.array([bool(row) for row in self.items], dtype=bool)

    @property
    def text(self) -> np.ndarray:
        return np.array(["; ".join(row) for row in self.items], dtype=object)


def _f(x):
    return np.asarray(x, dtype=float)


def _empty(k):
    return np.full(k, "", dtype=object)


def _g(x):
    return f"{x:.3g}"


def low_dispersion(n1, mean1, sd1, n2, mean2, sd2, limit=LOW_CV):
    """SD/mean ≤ ``limit`` in either group (positive means only)."""
    out = _empty(len(_f(mean1)))
    parts = []
    for name, mean, sd in (("cases", _f(mean1), _f(sd1)), ("controls", _f(mean2), _f(sd2))):
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = sd / mean
        # round so that 0.3/3.0 (= 0.09999999999999999 or 0.1000...02 in binary) counts as 0.10
        low = (mean > 0) & np.isfinite(ratio) & (np.round(ratio, 12) <= limit)
        parts.append((name, mean, sd, ratio, low))
    for i in range(len(out)):
        hits = [f"{name} SD/mean {_g(sd[i])}/{_g(mean[i])} = {ratio[i]:.3f}" for name, mean, sd, ratio, low in parts
                if low[i]]  # fmt: skip
        if hits:
            out[i] = f"low_dispersion: {', '.join(hits)} (≤ {limit:g}: an SEM printed as SD?)"
    return out


def two_sample_t(n1, mean1, sd1, n2, mean2, sd2):
    """Student's t (pooled SD, cases − controls)."""
    n1, n2 = _f(n1), _f(n2)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (_f(mean1) - _f(mean2)) / (es.pooled_sd(n1, sd1, n2, sd2) * np.sqrt(1 / n1 + 1 / n2))


def reported_t(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The t (cases − controls) a row's reported test implies, and which column it came from.

    In order: ``t``; ``F`` with ``direction`` (|t| = √F); ``d`` (t = d/√(1/n1 + 1/n2));
    exact ``p`` with ``direction``. A z statistic is not used (it often comes from a rank test).
    """
    k = len(rows)

    def col(name):
        return rows[name].to_numpy(dtype=float) if name in rows else np.full(k, np.nan)

    n1, n2 = col("n_cases"), col("n_controls")
    text = rows["direction"].fillna("").astype(str).str.strip().to_numpy() if "direction" in rows else _empty(k)
    sign = np.select([text == "cases_higher", text == "cases_lower"], [1.0, -1.0], np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        candidates = (
            ("t", col("t")),
            ("F", sign * np.sqrt(col("F"))),
            ("d", col("d") / np.sqrt(1 / n1 + 1 / n2)),
            ("p", cv.t_from_p(col("p"), sign, n1, n2)),
        )
    t, source = np.full(k, np.nan), _empty(k)
    for name, value in candidates:
        take = np.isnan(t) & np.isfinite(value)
        t[take], source[take] = value[take], name
    return t, source


def test_consistency(n1, mean1, sd1, n2, mean2, sd2, t_reported, source=None, sd_reported=None, factor=TEST_FACTOR):
    """``likely_sem`` / ``inconsistent_test``: does the reported test agree with the means and SDs?

    ``sd_reported`` marks rows whose SDs were printed as SDs (not converted from SEMs or CIs); only
    those are re-read as SEMs.
    """
    n1, n2, t_rep = _f(n1), _f(n2), _f(t_reported)
    k = len(t_rep)
    source = _empty(k) if source is None else np.asarray(source, dtype=object)
    sd_reported = np.ones(k, dtype=bool) if sd_reported is None else np.asarray(sd_reported, dtype=bool)
    t_sd = two_sample_t(n1, mean1, sd1, n2, mean2, sd2)
    t_sem = two_sample_t(n1, mean1, _f(sd1) * np.sqrt(n1), n2, mean2, _f(sd2) * np.sqrt(n2))

    def agree(t):
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = t / t_rep
        return (ratio >= 1 / factor) & (ratio <= factor)

    checkable = np.isfinite(t_sd) & np.isfinite(t_rep) & (t_rep != 0)
    bad = checkable & ~agree(t_sd)
    sem = bad & sd_reported & agree(t_sem)
    out = _empty(k)
    for i in np.flatnonzero(bad):
        given = f"reported {_g(t_rep[i])}" + (f" (from {source[i]})" if source[i] else "")
        if sem[i]:
            alt = f"{_g(t_sem[i])} if the dispersions are SEMs"
            out[i] = f"likely_sem: t from means/SDs {_g(t_sd[i])} vs {given}, {alt}"
        else:
            out[i] = f"inconsistent_test: t from means/SDs {_g(t_sd[i])} vs {given} (beyond a factor {factor:g})"
    return out


def extreme_effect(g, limit=G_LIMIT):
    g = _f(g)
    out = _empty(len(g))
    hit = np.isfinite(g) & (np.abs(g) > limit)
    out[hit] = [f"extreme_effect: g = {x:.2f} (|g| > {limit:g})" for x in g[hit]]
    return out


def implausible_value(mean_controls, units, factor=VALUE_FACTOR, robust_z=VALUE_ROBUST_Z, min_rows=VALUE_MIN_ROWS):
    """Control means far from the other controls' (log10 scale, median and 1.4826·MAD), in pg/mL.

    A sheet that states no unit at all is taken as one unit; otherwise rows whose unit cannot be
    converted to a mass concentration are left out of the comparison (and never flagged).
    """
    mean = _f(mean_controls)
    units = np.asarray(units, dtype=object)
    out = _empty(len(mean))
    if all(str(u).strip() == "" for u in units):
        scale = np.ones(len(mean))
    else:
        scale = np.array([cv.unit_factor(u, "pg/mL") if str(u).strip() else np.nan for u in units])
    with np.errstate(invalid="ignore", divide="ignore"):
        value = np.log10(mean * scale)
    use = np.isfinite(value) & (mean > 0)
    if use.sum() < min_rows:
        return out
    centre = np.median(value[use])
    spread = 1.4826 * np.median(np.abs(value[use] - centre))
    distance = np.abs(value - centre)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = distance / spread
    hit = use & (distance > np.log10(factor)) & (z > robust_z)
    unit = "pg/mL" if np.any(scale != 1) else str(units[0]).strip()
    for i in np.flatnonzero(hit):
        out[i] = (
            f"implausible_value: control mean {_g(mean[i])} {units[i]} is {10 ** (value[i] - centre):.3g}× the "
            f"median of {use.sum()} control means ({_g(10**centre)} {unit}; robust z {z[i]:.1f})"
        ).replace("  ", " ")
    return out


def eligibility_unclear(eligibility, comment):
    eligibility, comment = np.asarray(eligibility, dtype=object), np.asarray(comment, dtype=object)
    out = _empty(len(eligibility))
    for i in np.flatnonzero(eligibility == "unclear"):
        out[i] = "eligibility_unclear: " + (comment[i] or "second extractor found eligibility unclear")
    return out


def not_double_checked(verification):
    verification = np.asarray(verification, dtype=object)
    out = _empty(len(verification))
    bad = (verification != "") & ~np.isin(verification, ("confirmed", "resolved"))
    out[bad] = [f"not_double_checked: verification '{v}'" for v in verification[bad]]
    return out


def _first_author(study):
    words = re.findall(r"[^\W\d_]+", str(study).lower())
    return words[0] if words else ""


def overlaps(study_id, study, pmid, doi, n1, n2, lines, shown=5):
    """Rows with another ``study_id`` but the same PMID/DOI, or the same group sizes and first author.

    Rows are grouped by each key once (a dict of key -> rows), so the check is linear in the number of
    rows; a row lists at most ``shown`` others per key.
    """
    study_id = np.asarray(study_id, dtype=object)
    pmid = [str(x).strip() for x in pmid]
    doi = [str(x).strip().lower() for x in doi]
    author = [_first_author(s) for s in study]
    n1, n2 = _f(n1), _f(n2)
    k = len(study_id)
    keys = {
        "PMID": [(p,) if p else None for p in pmid],
        "DOI": [(d,) if d else None for d in doi],
        "author": [(a, n1[i], n2[i]) if a and np.isfinite(n1[i]) and np.isfinite(n2[i]) else None
                   for i, a in enumerate(author)],
    }  # fmt: skip
    reasons = [[] for _ in range(k)]
    for label, values in keys.items():
        groups: dict = {}
        for i, key in enumerate(values):
            if key is not None:
                groups.setdefault(key, []).append(i)
        for key, members in groups.items():
            if len({study_id[i] for i in members}) < 2:
                continue
            for i in members:
                others = itertools.islice((j for j in members if study_id[j] != study_id[i]), shown)
                for j in others:
                    if label == "author":
                        reasons[i].append(
                            f"same first author and n {n1[i]:.0f}/{n2[i]:.0f} as line {lines[j]} ({study_id[j]})"
                        )
                    else:
                        reasons[i].append(f"same {label} {key[0]} as line {lines[j]} ({study_id[j]})")
    out = _empty(k)
    for i in range(k):
        if reasons[i]:
            out[i] = "overlap: " + ", ".join(dict.fromkeys(reasons[i]))
    return out


def hedges_g(n1, mean1, sd1, n2, mean2, sd2):
    """Hedges' g (metafor's exact correction) from group summaries, for the extreme-effect rule."""
    with np.errstate(invalid="ignore", divide="ignore"):
        d = (_f(mean1) - _f(mean2)) / es.pooled_sd(n1, sd1, n2, sd2)
        return es.smd_from_d(d, n1, n2)[0]


def flag_rows(rows: pd.DataFrame, cases, controls, g, sd_reported=None) -> QualityFlags:
    """All rules on one analysis's rows. ``cases``/``controls``: (n, mean, sd) arrays; ``g``: each row's g."""
    k = len(rows)

    def text(name):
        return rows[name].fillna("").astype(str).str.strip().to_numpy() if name in rows else _empty(k)

    t_rep, source = reported_t(rows)
    columns = (
        low_dispersion(*cases, *controls),
        test_consistency(*cases, *controls, t_rep, source, sd_reported),
        extreme_effect(g),
        implausible_value(controls[1], text("unit")),
        eligibility_unclear(text("eligibility_second_pass"), text("eligibility_comment")),
        not_double_checked(text("verification")),
        overlaps(rows["study_id"].to_numpy(), text("study"), text("pmid"), text("doi"), cases[0], controls[0],
                 rows[LINE].to_numpy()),
    )  # fmt: skip
    # items are joined with "; ", so an item's own semicolons (e.g. in a quoted comment) become commas
    return QualityFlags(tuple(tuple(x.replace(";", ",") for x in row if x) for row in zip(*columns, strict=True)))


def flagged_included(effects: pd.DataFrame) -> np.ndarray:
    """The pooled rows a rule here flagged (non-empty ``flags``): the rows the sensitivity fit "without flagged
    rows" leaves out and the headline counts. Soft checks (``checks``, e.g. "SD > mean") are not flags."""
    included = effects["included"].to_numpy(dtype=bool)
    if "flags" not in effects:
        return np.zeros(len(effects), dtype=bool)
    return included & (effects["flags"].astype(object).fillna("").astype(str).str.strip().to_numpy() != "")
