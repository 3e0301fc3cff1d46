"""The row rules of an analysis, each named once here with its threshold, its message and what it does to a row
(documented, with their thresholds, in data/raw/README.md).

:data:`REGISTRY` holds every rule as a :class:`Rule`: it **excludes** a row (``reason`` of effects.csv: numbers
that contradict each other or that no data could produce), **flags** it (``flags``: a pre-specified quality rule; a
flag never excludes a row from the primary fit, the pipeline refits without flagged rows as a sensitivity analysis)
or only **notes** it (``checks``: an extraction check). :mod:`metarepro.pipeline.analysis` applies them all.

Each rule's check is a pure function over the arrays of one analysis's rows and returns one text per row: empty,
or the rule's message with the numbers that tripped it (a flag starts with the rule's name). :func:`flag_rows`
runs the flags and returns a :class:`QualityFlags`.

Flags (:data:`RULES`): ``low_dispersion``, ``likely_sem`` / ``inconsistent_test``, ``extreme_effect``,
``implausible_value``, ``eligibility_unclear``, ``not_double_checked``, ``overlap``.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import pandas as pd

from metarepro.inputs.sheet import LINE
from metarepro.stats import conversions as cv
from metarepro.stats import effects as es

LOW_CV = 0.10  # SD/mean at or below this: an SEM printed as an SD?
TEST_FACTOR = 2.0  # recomputed and reported t disagree when their ratio is outside [1/2, 2]
G_LIMIT = 2.0  # |g| above this is an extreme effect
SEM_PROOF = 1.25  # a reading agrees with the reported t when their ratio is in [1/1.25, 1.25] = [0.8, 1.25]
SEM_PROOF_COLUMN = "_sem_proof"  # the sheet column run_analysis fills with sem_proof over the whole sheet
VALUE_ROBUST_Z = 3.5  # a control mean this many robust SDs (1.4826 MAD, log10 scale) from the others' median
VALUE_MIN_ROWS = 5  # control means needed before the value rule says anything
SMD_LIMIT = 3  # |SMD| above this is noted: rare in this field, common after an SEM-as-SD error
CV_SEM_SUSPECT = 0.10  # SD/mean below this in a marker concentration suggests an SEM reported as SD
CV_SKEWED = 1.0  # SD > mean for a positive quantity: the distribution is clearly right-skewed

EXCLUDE, FLAG, NOTE = "exclude", "flag", "note"


@dataclass(frozen=True)
class Rule:
    """One row rule: ``name``, ``action`` (:data:`EXCLUDE`: the row is not pooled, the message is its ``reason``;
    :data:`FLAG`: pooled, listed in ``flags`` and left out of the sensitivity fit "without flagged rows"; :data:`NOTE`:
    pooled, listed in ``checks`` only), ``message`` (a template: ``{threshold}`` and the numbers the check found) and
    ``threshold`` (None for a rule without one)."""

    name: str
    action: str
    message: str
    threshold: float | None = None

    def say(self, **numbers) -> str:
        """The message with ``numbers`` filled in; a flag's starts with the rule's name."""
        text = self.message.format(**{"threshold": self.threshold, **numbers})
        return f"{self.name}: {text}" if self.action == FLAG else text


REGISTRY = (
    Rule("contradictory_numbers", EXCLUDE, "contradictory numbers ({numbers}): check the source and the cells"),
    Rule("impossible_numbers", EXCLUDE, "arithmetically impossible ({numbers}): check the source and the cells"),
    Rule("subgroup_result", EXCLUDE, "{numbers}"),
    Rule("low_dispersion", FLAG, "{hits} (≤ {threshold:g}: an SEM printed as SD?)", LOW_CV),
    Rule("likely_sem", FLAG, "t from means/SDs {t_sd} vs {given}, {t_sem} if the dispersions are SEMs", TEST_FACTOR),
    Rule("inconsistent_test", FLAG, "t from means/SDs {t_sd} vs {given} (beyond a factor {threshold:g})", TEST_FACTOR),
    Rule("extreme_effect", FLAG, "g = {g:.2f} (|g| > {threshold:g})", G_LIMIT),
    Rule("implausible_value", FLAG, "control mean {mean} {unit} is {ratio:.3g}× the median of {count} control means "
         "({median} {median_unit}; robust z {z:.1f})", VALUE_ROBUST_Z),
    Rule("eligibility_unclear", FLAG, "{comment}"),
    Rule("not_double_checked", FLAG, "verification '{verification}'"),
    Rule("overlap", FLAG, "{others}"),
    Rule("sem_as_sd", NOTE, "SD < {threshold:g}×mean: an SEM reported as SD?", CV_SEM_SUSPECT),
    Rule("skewed_sd", NOTE, "SD > mean: skewed data, prefer ROM or log-scale analyses", CV_SKEWED),
    Rule("skewed_quartiles", NOTE, "quartiles/range show marked skew (conv.fivenum test)"),
    Rule("identical_numbers", NOTE, "identical numbers in line(s) {lines}"),
    Rule("unverified", NOTE, "not double-checked"),
    Rule("unclear_eligibility", NOTE, "eligibility unclear to the second extractor"),
    Rule("large_smd", NOTE, "|SMD| > {threshold:g}: check SD vs SEM and units", SMD_LIMIT),
)  # fmt: skip
RULEBOOK = {rule.name: rule for rule in REGISTRY}
RULES = tuple(rule.name for rule in REGISTRY if rule.action == FLAG)  # the flags, in the order flag_rows lists them


@dataclass(frozen=True)
class QualityFlags:
    """Flags per row, in rule order: ``columns`` holds the message of each rule that flags some row ("" where it does
    not flag the row; a message's own ";" already a ","), for ``k`` rows."""

    columns: tuple[np.ndarray, ...]
    k: int

    @property
    def items(self) -> tuple[tuple[str, ...], ...]:
        """A tuple of texts per row."""
        if not self.columns:
            return ((),) * self.k
        return tuple(tuple(x for x in row if x) for row in zip(*self.columns, strict=True))

    @property
    def flagged(self) -> np.ndarray:
        return self._count > 0

    @property
    def text(self) -> np.ndarray:
        """Each row's flags joined with "; " (joined only where a row has two or more: at 10⁶ rows most have one at
        most)."""
        out, count = _empty(self.k), self._count
        for column in self.columns:
            one = (column != "") & (count == 1)
            out[one] = column[one]
        for i in np.flatnonzero(count > 1).tolist():
            out[i] = "; ".join(column[i] for column in self.columns if column[i])
        return out

    @property
    def _count(self) -> np.ndarray:
        return sum((column != "" for column in self.columns), np.zeros(self.k, dtype=np.int64))


def _f(x):
    return np.asarray(x, dtype=float)


def _empty(k):
    return np.full(k, "", dtype=object)


def _g(x):
    return f"{x:.3g}"


def _column(rows: pd.DataFrame, name: str) -> np.ndarray:
    """A numeric column of the rows, all NaN when the sheet has none."""
    return rows[name].to_numpy(dtype=float) if name in rows else np.full(len(rows), np.nan)


def _text(rows: pd.DataFrame, name: str) -> np.ndarray:
    """A text column of the rows, stripped, "" for empty cells and when the sheet has none."""
    if name not in rows:
        return _empty(len(rows))
    texts = np.asarray(rows[name].fillna("").astype(str), dtype=object).tolist()
    return np.array([text.strip() for text in texts], dtype=object)  # pandas' .str.strip(), ~3x faster


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
    for i in np.flatnonzero(np.logical_or.reduce([low for *_, low in parts])).tolist():
        hits = [f"{name} SD/mean {_g(sd[i])}/{_g(mean[i])} = {ratio[i]:.3f}" for name, mean, sd, ratio, low in parts
                if low[i]]  # fmt: skip
        out[i] = RULEBOOK["low_dispersion"].say(hits=", ".join(hits), threshold=limit)
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
    n1, n2 = _column(rows, "n_cases"), _column(rows, "n_controls")
    text = _text(rows, "direction")
    sign = np.select([text == "cases_higher", text == "cases_lower"], [1.0, -1.0], np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        candidates = (
            ("t", _column(rows, "t")),
            ("F", sign * np.sqrt(_column(rows, "F"))),
            ("d", _column(rows, "d") / np.sqrt(1 / n1 + 1 / n2)),
            ("p", cv.t_from_p(_column(rows, "p"), sign, n1, n2)),
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
        rule = RULEBOOK["likely_sem" if sem[i] else "inconsistent_test"]
        out[i] = rule.say(t_sd=_g(t_sd[i]), given=given, t_sem=_g(t_sem[i]), threshold=factor)
    return out


def _source_key(rows: pd.DataFrame) -> np.ndarray:
    """The publication a row comes from (``pmid``, else ``doi``, else ``source_url``), "" when none is given."""
    key = np.full(len(rows), "", dtype=object)
    for name in ("source_url", "doi", "pmid"):  # the last given wins: pmid over doi over url
        if name in rows:
            text = rows[name].fillna("").astype(str).str.strip().str.lower().to_numpy()
            key = np.where(text != "", name + ":" + text, key)
    return key


def sem_proof(rows: pd.DataFrame, factor=TEST_FACTOR, close=SEM_PROOF) -> np.ndarray:
    """Per row, the evidence that its printed ``sd_*`` cells are SEMs, or "" (data/raw/README.md, "Dispersions
    proven to be SEMs").

    A row's reported t (:func:`reported_t`) proves SEMs when the t recomputed with the cells read as SEMs is within
    the ratio ``close`` of it and the t with them read as SDs is beyond ``factor``; SDs in the mirror case. A proof
    covers every row of the same source (:func:`_source_key`) that prints SDs, unless a row of it proves SDs."""
    k = len(rows)
    n1, m1, sd1, n2, m2, sd2 = (_column(rows, c) for c in ("n_cases", "mean_cases", "sd_cases", "n_controls",
                                                           "mean_controls", "sd_controls"))  # fmt: skip
    t_rep, source = reported_t(rows)
    t_sd = two_sample_t(n1, m1, sd1, n2, m2, sd2)
    with np.errstate(invalid="ignore", over="ignore"):
        t_sem = two_sample_t(n1, m1, sd1 * np.sqrt(n1), n2, m2, sd2 * np.sqrt(n2))

    def ratio_in(t, limit):
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = t / t_rep
        return np.isfinite(ratio) & (ratio >= 1 / limit) & (ratio <= limit)

    sem = ratio_in(t_sem, close) & ~ratio_in(t_sd, factor)
    sd = ratio_in(t_sd, close) & ~ratio_in(t_sem, factor)
    lines = rows[LINE].to_numpy() if LINE in rows else np.arange(1, k + 1)
    evidence = {i: f"line {lines[i]}: the reported {source[i]} gives t {_g(t_rep[i])}; as SEMs {_g(t_sem[i])}, "
                   f"as SDs {_g(t_sd[i])}" for i in np.flatnonzero(sem)}  # fmt: skip
    printed = np.isfinite(sd1) & np.isfinite(sd2)
    out = _empty(k)
    for i in np.flatnonzero(sem & printed):
        out[i] = evidence[i]
    keys = _source_key(rows)
    for key in set(keys[sem]) - set(keys[sd]) - {""}:  # one way of printing ± per source, when its proofs agree
        members = np.flatnonzero(keys == key)
        proof = evidence[next(i for i in members if sem[i])]
        for i in members:
            if printed[i] and not out[i] and not sd[i]:
                out[i] = proof
    for i in np.flatnonzero((out != "") & np.isin(keys, list(set(keys[sem]) & set(keys[sd]) - {""}))):
        out[i] = ""  # the source proves both readings somewhere: leave its rows to the flags
    return out


def extreme_effect(g, limit=G_LIMIT):
    g = _f(g)
    out = _empty(len(g))
    hit = np.isfinite(g) & (np.abs(g) > limit)
    out[hit] = [RULEBOOK["extreme_effect"].say(g=x, threshold=limit) for x in g[hit]]
    return out


def implausible_value(mean_controls, units, robust_z=VALUE_ROBUST_Z, min_rows=VALUE_MIN_ROWS):
    """Control means far from the other controls' (log10 scale, median and 1.4826·MAD), in pg/mL.

    The threshold is the modified z-score cut-off of Iglewicz & Hoaglin (1993); the scale is the controls' own
    spread, so the rule says nothing when that spread is 0. A sheet that states no unit at all is taken as one unit;
    otherwise rows whose unit cannot be converted to a mass concentration are left out (and never flagged).
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
    if not spread > 0:
        return out
    hit = use & (z > robust_z)
    unit = "pg/mL" if np.any(scale != 1) else str(units[0]).strip()
    for i in np.flatnonzero(hit):
        out[i] = RULEBOOK["implausible_value"].say(
            mean=_g(mean[i]), unit=units[i], ratio=10 ** (value[i] - centre), count=use.sum(), median=_g(10**centre),
            median_unit=unit, z=z[i], threshold=robust_z).replace("  ", " ")  # fmt: skip
    return out


def rounding_allowance(value) -> float:
    """Half a unit of the last decimal a number shows: as written when given as text ("1.0": 0.05), else in its
    shortest form (0.005 for 13.05; 0.5 for 75). A cell printed 13.10 but read as the number 13.1 gets the larger
    allowance 0.05: never too small."""
    text = value.strip() if isinstance(value, str) else np.format_float_positional(float(value), trim="-")
    decimals = len(text.split(".")[1]) if "." in text else 0
    return 0.5 * 10.0**-decimals


def _subgroup_numbers(text, column):
    """The numbers of one subgroup cell (separated by spaces or ';'), or a reason it cannot be read."""
    tokens = [x for x in re.split(r"[\s;]+", str(text).strip()) if x]
    numbers = []
    for token in tokens:  # the tokens' decimals set the rounding allowance: keep them with the numbers
        try:
            numbers.append(float(token))
        except ValueError:
            return None, (f"{column} '{text}' is not a list of numbers: write the subgroups' values as printed, "
                          "separated by spaces or ';', with '.' as the decimal mark")  # fmt: skip
    if any(not np.isfinite(x) for x in numbers):
        return None, f"{column} '{text}' holds a number that is not finite: write the values as printed"
    return (numbers, max((rounding_allowance(x) for x in tokens), default=0.0)), ""


def subgroup_sd_bound(n, mean, subgroup_means, subgroup_n=None, allowance=None):
    """The least SD a group of ``n`` with overall ``mean`` can have, given its subgroups' means (and sizes).

    Law of total variance: (n − 1)·SD² = Σ (n_j − 1)·SD_j² + Σ n_j (m_j − m̄)², so SD ≥ √(Σ n_j (m_j − m̄)² / (n − 1)),
    with m̄ = Σ n_j m_j / n. Printed numbers are rounded; the bound is lowered by what rounding can explain:
    with sizes, by u·√(n/(n − 1)) (u: half a unit of the means' last digit); without sizes it is the minimum over
    every split of n whose mean is ``mean`` (± its rounding): n/(n − 1)·(m − a)(b − m), a ≤ m ≤ b the subgroup means
    adjacent to m, each moved towards m by u (data/raw/README.md, "Numbers that no data could produce").
    ``allowance``: the means' u (by default from the numbers' shortest form). Returns (bound, m̄ or nan); the bound
    is nan when ``mean`` lies outside the subgroup means (no split gives it).
    """
    means = np.asarray(subgroup_means, dtype=float)
    u = max(rounding_allowance(x) for x in means) if allowance is None else allowance
    if subgroup_n is not None:
        sizes = np.asarray(subgroup_n, dtype=float)
        centre = float(np.sum(sizes * means) / n)
        between = float(np.sum(sizes * (means - centre) ** 2))
        return max(np.sqrt(between / (n - 1)) - u * np.sqrt(n / (n - 1)), 0.0), centre
    u_mean = rounding_allowance(mean)
    if np.any(np.abs(means - mean) <= u + u_mean):
        return 0.0, np.nan
    least = np.inf
    for m in (mean - u_mean, mean + u_mean):
        below, above = means[means <= m], means[means >= m]
        if not len(below) or not len(above):
            return np.nan, np.nan  # the mean lies outside its subgroups' range: reported by the caller
        a, b = below.max() + u, above.min() - u
        least = min(least, max(m - a, 0.0) * max(b - m, 0.0))
    return float(np.sqrt(n / (n - 1) * least)), np.nan


def impossible_numbers(rows: pd.DataFrame, groups=("cases", "controls")) -> np.ndarray:
    """Per row, the numbers that no data could produce, or "" (data/raw/README.md, "Numbers that no data could
    produce"): an SD below the bound its subgroup means set (:func:`subgroup_sd_bound`), subgroup sizes that do not
    sum to the group or whose weighted mean is not the group's, a group mean outside its subgroups' range, ``n`` ≠
    ``n_cases + n_controls``, a ``vi`` or ``sei`` of 0; or a subgroup cell that cannot be read."""
    k = len(rows)
    found = defaultdict(list)  # row -> its problems (most rows have none: no list per row)
    for group in groups:
        n, mean, sd = _column(rows, f"n_{group}"), _column(rows, f"mean_{group}"), _column(rows, f"sd_{group}")
        means_text, sizes_text = _text(rows, f"subgroup_means_{group}"), _text(rows, f"subgroup_n_{group}")
        for i in np.flatnonzero((means_text != "") | (sizes_text != "")):
            found[i].extend(_subgroup_problems(group, n[i], mean[i], sd[i], means_text[i], sizes_text[i]))
    n_total, n1, n2 = _column(rows, "n"), _column(rows, "n_cases"), _column(rows, "n_controls")
    for i in np.flatnonzero(np.isfinite(n_total) & np.isfinite(n1 + n2) & (n_total != n1 + n2)):
        found[i].append(f"n {n_total[i]:g} ≠ n_cases + n_controls = {n1[i]:g} + {n2[i]:g}")
    for name in ("vi", "sei"):
        for i in np.flatnonzero(_column(rows, name) == 0):
            found[i].append(f"{name} is 0: a sampling variance cannot be")
    out = np.full(k, "", dtype=object)
    for i, problems in found.items():
        out[i] = "; ".join(problems)
    return out


GROUPS = ("cases", "controls")
# (lower, upper) cells of one row that must be ordered. A row whose own numbers contradict each other is wrong
# somewhere, so it is excluded with the reason rather than pooled. An estimate is checked against its CI only when
# the CI itself is in order (a reversed CI is the one problem to name then).
_CI_PAIRS = [("ci_low", "ci_high", "yi")] + [(f"ci_low_{g}", f"ci_high_{g}", f"mean_{g}") for g in GROUPS]
_ORDERED = [
    (low, high) for g in GROUPS for low, high in (
        (f"min_{g}", f"max_{g}"), (f"q1_{g}", f"q3_{g}"), (f"min_{g}", f"q1_{g}"), (f"q3_{g}", f"max_{g}"),
        (f"q1_{g}", f"median_{g}"), (f"median_{g}", f"q3_{g}"), (f"min_{g}", f"median_{g}"),
        (f"median_{g}", f"max_{g}"), (f"min_{g}", f"mean_{g}"), (f"mean_{g}", f"max_{g}"))
]  # fmt: skip


def contradictory_numbers(rows: pd.DataFrame) -> np.ndarray:
    """Per row, the reported numbers that cannot all be true (a reversed CI, an estimate outside its own CI, a
    median outside its quartiles, ...), or "": one of the cells named is mistyped or on another scale."""
    found = defaultdict(list)  # row -> its contradictions (most rows have none: no list per row)

    def check(low, high, where=True):
        lower, upper = _column(rows, low), _column(rows, high)
        for i in np.flatnonzero((lower > upper) & where):
            found[i].append(f"{low} {lower[i]:g} > {high} {upper[i]:g}")
        return lower > upper

    for low, high, estimate in _CI_PAIRS:
        reversed_ci = check(low, high)
        check(low, estimate, ~reversed_ci)
        check(estimate, high, ~reversed_ci)
    for low, high in _ORDERED:
        check(low, high)
    out = _empty(len(rows))
    for i, problems in found.items():
        out[i] = "; ".join(problems)
    return out


def identical_numbers(rows: pd.DataFrame, shown=5) -> np.ndarray:
    """Per row, the lines whose numbers repeat its own (a copy-paste or a twice-published sample), or "".

    One pass over the rows grouped by their numbers, so linear in the number of rows; a large group
    lists its first ``shown`` other lines.
    """
    out = _empty(len(rows))
    numbers = [c for c in ("mean_cases", "sd_cases", "mean_controls", "sd_controls", "median_cases", "yi") if c in rows]
    with np.errstate(over="ignore", invalid="ignore"):
        values = rows[numbers].to_numpy(dtype=float).round(12) + 0.0  # + 0.0 turns -0.0 into 0.0
    informative = np.flatnonzero(np.isfinite(values).sum(axis=1) >= 2)
    if not len(informative):
        return out
    # NaN == NaN inside a key: compare the bit patterns of the rounded values
    codes = pd.factorize(np.array([row.tobytes() for row in values[informative]], dtype=object))[0]
    repeated = np.flatnonzero(np.bincount(codes)[codes] >= 2)  # most rows repeat nothing: no group of one is built
    if not repeated.size:
        return out
    repeated = repeated[np.argsort(codes[repeated], kind="stable")]  # by group, in sheet order within one
    starts = np.flatnonzero(np.r_[True, codes[repeated][1:] != codes[repeated][:-1]])
    lines = rows[LINE].to_numpy()
    for members in np.split(repeated, starts[1:]):
        group = informative[members]
        for i in group:
            others = [str(lines[j]) for j in group[: shown + 1] if j != i][:shown]
            more = f" and {len(group) - 1 - shown} more" if len(group) - 1 > shown else ""
            out[i] = f"{', '.join(others)}{more}"
    return out


def subgroup_result(rows: pd.DataFrame) -> np.ndarray:
    """Per row, why a result of a subgroup of a trial is not its randomised comparison (an ``analysis_set`` starting
    with "subgroup", as data/raw/README.md defines it for the trial sheet), or "": pooling it as the trial would
    select patients after randomisation."""
    text = _text(rows, "analysis_set")
    out = _empty(len(rows))
    hits = np.char.startswith(text.astype(str), "subgroup")
    out[hits] = [f"analysis_set '{t}': a subgroup of the trial, not its randomised comparison" for t in text[hits]]
    return out


def exclusions(rows: pd.DataFrame) -> list[tuple[Rule, np.ndarray]]:
    """Each exclusion rule with its check's text per row, in the order they are tried (a row keeps the first)."""
    return [(RULEBOOK["contradictory_numbers"], contradictory_numbers(rows)),
            (RULEBOOK["impossible_numbers"], impossible_numbers(rows)),
            (RULEBOOK["subgroup_result"], subgroup_result(rows))]  # fmt: skip


def _subgroup_problems(group, n, mean, sd, means_text, sizes_text):
    means_column, sizes_column = f"subgroup_means_{group}", f"subgroup_n_{group}"
    parsed, problem = _subgroup_numbers(means_text, means_column)
    if problem:
        return [problem]
    means, u = parsed
    sizes = None
    if sizes_text:
        parsed, problem = _subgroup_numbers(sizes_text, sizes_column)
        if problem:
            return [problem]
        sizes = parsed[0]
        if any(x < 1 or x != np.floor(x) for x in sizes):
            return [f"{sizes_column} '{sizes_text}' must hold whole numbers ≥ 1 (the subgroups' sizes)"]
        if len(sizes) != len(means):
            return [f"{sizes_column} has {len(sizes)} sizes but {means_column} {len(means)} means: give one size "
                    "per mean, in the same order, or leave the sizes empty"]  # fmt: skip
    if len(means) < 2:
        return [f"{means_column} '{means_text}' needs the means of at least two subgroups that make up the group"]
    problems = []
    if sizes is not None and np.isfinite(n) and sum(sizes) != n:
        problems.append(f"{sizes_column} {' + '.join(f'{x:g}' for x in sizes)} = {sum(sizes):g} ≠ n_{group} {n:g}")
        return problems
    if not (np.isfinite(n) and np.isfinite(mean) and n >= 2):
        return problems  # nothing to check the subgroups against
    listed = ", ".join(f"{x:g}" for x in means)
    bound, centre = subgroup_sd_bound(n, mean, means, sizes, u)
    if sizes is not None:
        allowed = rounding_allowance(mean) + u
        if abs(centre - mean) > allowed:
            problems.append(f"mean_{group} {mean:g} ≠ {centre:.4g}, the mean of subgroup means {listed} weighted by "
                            f"their sizes")  # fmt: skip
    elif np.isnan(bound):
        problems.append(f"mean_{group} {mean:g} lies outside its subgroup means {listed}")
    if np.isfinite(sd) and np.isfinite(bound) and sd + rounding_allowance(sd) < bound:
        sizes_said = f" (sizes {sizes_text})" if sizes is not None else " (any sizes)"
        problems.append(f"sd_{group} {sd:g} < {bound:.3g}, the least SD that subgroup means {listed}{sizes_said} "
                        f"allow with mean_{group} {mean:g} and n_{group} {n:g}")  # fmt: skip
    return problems


def eligibility_unclear(eligibility, comment):
    eligibility, comment = np.asarray(eligibility, dtype=object), np.asarray(comment, dtype=object)
    out = _empty(len(eligibility))
    for i in np.flatnonzero(eligibility == "unclear"):
        out[i] = RULEBOOK["eligibility_unclear"].say(comment=comment[i] or "second extractor found eligibility unclear")
    return out


def not_double_checked(verification):
    verification = np.asarray(verification, dtype=object)
    out = _empty(len(verification))
    bad = (verification != "") & ~np.isin(verification, ("confirmed", "resolved"))
    out[bad] = [RULEBOOK["not_double_checked"].say(verification=v) for v in verification[bad]]
    return out


_FIRST_WORD = re.compile(r"([^\W\d_]+)")


def overlaps(study_id, study, pmid, doi, n1, n2, lines, shown=5):
    """Rows with another ``study_id`` but the same PMID/DOI, or the same group sizes and first author (rows without a
    study_id take no part).

    Rows are grouped by each key at once (pandas, hashed), so the check is linear in the number of rows; a row
    lists at most ``shown`` others per key: the first rows of its group that belong to another sample.
    """
    study_id = np.asarray(study_id, dtype=object)
    k = len(study_id)

    def text(values, lower=False):  # per cell in Python, only where there is text (PMIDs are mostly empty)
        texts = np.asarray(values, dtype=object).copy()
        missing = pd.isna(texts)  # None, NaN, pd.NA: no text (not "nan", which two rows would then share)
        texts[missing] = ""
        given = np.flatnonzero(~missing)
        given = given[texts[given] != ""]
        cells = [str(v).strip() for v in texts[given].tolist()]
        texts[given] = [t.lower() for t in cells] if lower else cells
        return texts

    def describe(j):
        return f"{lines[j]} ({study_id[j]})"

    # the first author is the first word of the study label ("Smith 2003" -> "smith")
    author = np.array([m[1] if (m := _FIRST_WORD.search(t)) else "" for t in text(study, True)], dtype=object)
    n1, n2 = _f(n1), _f(n2)
    sizes = np.isfinite(n1) & np.isfinite(n2)
    keys = {"PMID": (text(pmid),), "DOI": (text(doi, True),), "author": (author, n1, n2)}
    # a row without a study_id (the sheet reader refuses one; a notebook's rows may have it) is no sample to compare
    identified = ~pd.isna(study_id)
    valid = {"PMID": (keys["PMID"][0] != "") & identified, "DOI": (keys["DOI"][0] != "") & identified,
             "author": (author != "") & sizes & identified}  # fmt: skip
    parts, texts = [], []  # per key with overlaps: each row's text in ``texts`` (-1: no overlap by this key)
    for label, columns in keys.items():
        rows = np.flatnonzero(valid[label])
        if rows.size < 2:
            continue
        # one pass of hashing: each row's group (numbered by first appearance) and sample
        group = pd.DataFrame({c: column[rows] for c, column in enumerate(columns)}).groupby(
            list(range(len(columns))), sort=False).ngroup().to_numpy()  # fmt: skip
        sample = pd.factorize(study_id[rows])[0]
        size = np.bincount(group)
        ends = np.cumsum(size)
        by_group = np.argsort(group, kind="stable")  # by group, in sheet order within one
        sample_by_group = sample[by_group]
        several = np.minimum.reduceat(sample_by_group, ends - size) < np.maximum.reduceat(sample_by_group, ends - size)
        if not several.any():
            continue
        # a group whose rows are all of different samples has no (group, sample) pair twice
        pair = np.sort(group * (sample.max() + 1) + sample)
        repeated = np.zeros(size.size, dtype=bool)
        repeated[pair[1:][pair[1:] == pair[:-1]] // (sample.max() + 1)] = True
        in_order = rows[by_group]
        part = np.full(k, -1, dtype=np.int64)
        for g in np.flatnonzero(several).tolist():
            members = in_order[ends[g] - size[g] : ends[g]]
            first = members[0]  # every row of the group has the same key
            if label == "author":
                same = f"same first author and n {n1[first]:.0f}/{n2[first]:.0f} as"
            else:
                same = f"same {label} {columns[0][first]} as"
            _overlap_texts(members, not repeated[g], study_id, describe, same, shown, part, texts)
        parts.append(part)
    if not parts:
        return _empty(k)
    count = sum(part >= 0 for part in parts)
    # most rows of a group share one text: each message is made once ("" last: the rows without overlaps)
    messages = np.array([RULEBOOK["overlap"].say(others=t) for t in texts] + [""], dtype=object)
    which = np.full(k, -1, dtype=np.int64)
    for part in parts:
        one = (part >= 0) & (count == 1)
        which[one] = part[one]
    out = messages[which]
    for i in np.flatnonzero(count > 1).tolist():  # the keys' texts in order, each once
        others = dict.fromkeys(texts[part[i]] for part in parts if part[i] >= 0)
        out[i] = RULEBOOK["overlap"].say(others=", ".join(others))
    return out


def _overlap_texts(members, distinct, study_id, describe, same, shown, part, texts):
    """Into ``part``, for each row of one group (``members``: row numbers in sheet order), the index in ``texts`` (a
    list it appends to) of the text naming the first ``shown`` rows of the group from another sample: ``same`` (what
    they share) once, then "line 4 (B2017)" or "lines 4 (B2017), 9 (C)" (``describe``: the line and sample of a
    row). ``distinct``: each row is its own sample.

    Only a head of the group matters: the shortest one holding ``shown`` rows outside the sample most frequent in
    it (with distinct samples, ``shown`` + 1 rows). A sample in the head gets its own text, found within the head;
    every later sample, the head's first ``shown`` rows (made once, and set for those rows at once)."""

    def text(others):
        texts.append(f"{same} {'line' if len(others) == 1 else 'lines'} {', '.join(others)}")
        return len(texts) - 1

    if distinct:
        head = members[: shown + 1].tolist()
        items = [describe(j) for j in head]
        if members.size > len(head):
            part[members[len(head) :]] = text(items[:shown])
        for position, i in enumerate(head):
            part[i] = text((items[:position] + items[position + 1 :])[:shown])
        return
    rows, ids = members.tolist(), study_id[members].tolist()
    counts: dict = {}
    most = length = 0
    for length, sample in enumerate(ids, start=1):
        counts[sample] = counts.get(sample, 0) + 1
        most = max(most, counts[sample])
        if length - most >= shown:
            break
    head = list(zip(rows[:length], ids[:length], strict=True))
    own = {s: text([describe(j) for j, t in head if t != s][:shown]) for s in counts}
    rest = text([describe(j) for j, _ in head[:shown]]) if length < len(rows) else -1
    for i, sample in zip(rows, ids, strict=True):
        part[i] = own.get(sample, rest)


def hedges_g(n1, mean1, sd1, n2, mean2, sd2):
    """Hedges' g (metafor's exact correction) from group summaries, for the extreme-effect rule."""
    with np.errstate(invalid="ignore", divide="ignore"):
        d = (_f(mean1) - _f(mean2)) / es.pooled_sd(n1, sd1, n2, sd2)
        return es.smd_from_d(d, n1, n2)[0]


def flag_rows(rows: pd.DataFrame, cases, controls, g, sd_reported=None) -> QualityFlags:
    """All rules on one analysis's rows. ``cases``/``controls``: (n, mean, sd) arrays; ``g``: each row's g."""
    t_rep, source = reported_t(rows)
    columns = (
        low_dispersion(*cases, *controls),
        test_consistency(*cases, *controls, t_rep, source, sd_reported),
        extreme_effect(g),
        implausible_value(controls[1], _text(rows, "unit")),
        eligibility_unclear(_text(rows, "eligibility_second_pass"), _text(rows, "eligibility_comment")),
        not_double_checked(_text(rows, "verification")),
        overlaps(rows["study_id"].to_numpy(), _text(rows, "study"), _text(rows, "pmid"), _text(rows, "doi"), cases[0],
                 controls[0], rows[LINE].to_numpy()),
    )  # fmt: skip
    # items are joined with "; ", so an item's own semicolons (e.g. in a quoted comment) become commas; only the rules
    # that flag some row are kept (at 10^6 rows, most flag none)
    flagging = [cells for cells in (np.asarray(c, dtype=object) for c in columns) if (cells != "").any()]
    flagging = [np.array([x.replace(";", ",") for x in cells.tolist()], dtype=object)
                if ";" in "\x00".join(cells.tolist()) else cells for cells in flagging]  # fmt: skip
    return QualityFlags(tuple(flagging), len(rows))


def flagged_included(effects: pd.DataFrame) -> np.ndarray:
    """The pooled rows a rule here flagged (non-empty ``flags``): the rows the sensitivity fit "without flagged
    rows" leaves out and the headline counts. Soft checks (``checks``, e.g. "SD > mean") are not flags."""
    included = effects["included"].to_numpy(dtype=bool)
    if "flags" not in effects:
        return np.zeros(len(effects), dtype=bool)
    return included & (effects["flags"].astype(object).fillna("").astype(str).str.strip().to_numpy() != "")
