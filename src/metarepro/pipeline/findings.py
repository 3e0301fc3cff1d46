"""What a reviewer reads first, from what the analyses already wrote: a summary-of-findings (SoF) row per
question with GRADE domain *suggestions*, one sensitivity summary per question, and interpretive sentences in
the manner of metafor's ``reporter()``. Pure functions: records in (``pooled.json``, ``bias.json`` as dicts;
``effects.csv``, ``estimators.csv``, ``leave1out.csv``, ``influence.csv`` as DataFrames), rows and sentences out.

GRADE domains are never rated here. Each domain gets a :class:`Suggestion` that a person confirms: whether
the numbers give a reason to consider rating the certainty down, the rule used and the numbers that tripped
it. Sources: the GRADE handbook (Schünemann, Brożek, Guyatt, Oxman, eds., 2013, §5.2), the GRADE guidelines
series in J Clin Epidemiol 2011 — 4 risk of bias (Guyatt et al., 64:407–415), 5 publication bias (64:1277–1282),
6 imprecision (64:1283–1293), 7 inconsistency (64:1294–1302) — and the Cochrane Handbook ch. 14 (Schünemann et
al., "Completing 'Summary of findings' tables and grading the certainty of the evidence", v6.4, 2023).

Estimates are shown on the reader's scale (ratios for log-ratio measures, r for ZCOR:
:func:`metarepro.stats.effects.transform_back`); the null there is 1 for ratios and 0 otherwise. Numbers are
printed with :func:`num` (2 decimals, "−" for minus) and :func:`p_text` (metafor's ``fpval``: 4 decimals,
"p < 0.0001"), so a test can read every number back from a sentence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from metarepro._core import dist
from metarepro.quality import flagged_included
from metarepro.stats.effects import RATIO_MEASURES, transform_back

# Rules (each names its source; tests check that each suggestion flips where its rule says)
I2_SUBSTANTIAL = 50.0  # Cochrane Handbook §10.10.2: 50–90% "may represent substantial heterogeneity"
EGGER_ALPHA = 0.10  # Egger et al. 1997 (BMJ 315:629); GRADE 5 (Guyatt 2011) and Handbook §13.3.5.4
BIAS_MIN_K = 10  # Cochrane Handbook §13.3.5.4: tests for funnel asymmetry only with at least 10 studies
ROB_WEIGHT_SHARE = 50.0  # GRADE 4 (Guyatt 2011): rate down when most of the information is from studies at risk
OIS_ALPHA = 0.05  # GRADE 6 (Guyatt 2011): OIS for α = 0.05 (two-sided) and power 0.80
OIS_POWER = 0.80
REPORTER_ALPHA = 0.05  # metafor reporter(): ranktest/regtest read at p <= 0.05, outliers Bonferroni at α = 0.05
SMD_MEASURES = ("SMD", "SMDH", "SMD1", "SMD1H")  # effects in SD units: σ = 1 in the OIS formula
VARIABILITY_MEASURES = ("VR", "CVR")  # how the groups' spread differs (questions)
MEASURE_WORDS = {"SMD": "standardized mean difference (Hedges' g)", "MD": "mean difference",
                 "ROM": "ratio of means", "VR": "variability ratio", "CVR": "coefficient of variation ratio",
                 "ZCOR": "correlation", "OR": "odds ratio", "RR": "risk ratio",
                 "RD": "risk difference", "PETO": "Peto odds ratio",
                 **dict.fromkeys(("PR", "PLN", "PLO", "PAS", "PFT"), "proportion")}  # fmt: skip


def num(x, digits=2) -> str:
    """A number as the sentences print it: fixed decimals, "−" for minus, "NA" when missing."""
    if x is None or not np.isfinite(float(x)):
        return "NA"
    return f"{float(x):.{digits}f}".replace("-", "−")


def p_text(p, digits=4) -> str:
    """metafor reporter's ``fpval``: "p < 0.0001" below 10^-digits, else "p = 0.0032"."""
    if p is None or not np.isfinite(float(p)):
        return "p = NA"
    return f"p < {10**-digits:.{digits}f}" if p < 10**-digits else f"p = {p:.{digits}f}"


def _finite(x) -> bool:
    try:
        return x is not None and bool(np.isfinite(float(x)))
    except (TypeError, ValueError):
        return False


def reader_scale(measure: str, x):
    """Analysis-scale value(s) on the reader's scale (ratio, r, proportion); unchanged for SMD, MD, RD, and for PFT,
    whose back-transformation needs the studies' sample sizes (pooled.json's ``*_prop`` hold it)."""
    if measure == "PFT":
        return np.asarray(x, dtype=float)
    back = transform_back(measure, np.asarray(x, dtype=float))
    return np.asarray(x, dtype=float) if back is None else back


def pooled_shown(pooled: dict, keys=("estimate", "ci_low", "ci_high")) -> np.ndarray:
    """Values of pooled.json on the reader's scale: :func:`reader_scale`, except for PFT, whose proportions are
    pooled.json's ``*_prop`` (back-transformed with the pooled rows' harmonic-mean n, metafor's transf.ipft.hm);
    a PFT record without them stays on the Freeman-Tukey scale."""
    measure = pooled.get("measure", "SMD")
    if measure == "PFT" and all(_finite(pooled.get(f"{key}_prop")) for key in keys):
        return np.array([float(pooled[f"{key}_prop"]) for key in keys])
    return np.asarray(reader_scale(measure, [pooled.get(key, np.nan) for key in keys]), dtype=float)


def analysis_scale(measure: str, x: float) -> float:
    """A reader-scale value (e.g. a decision threshold as a ratio 1.2 or an r 0.1) on the analysis scale."""
    if measure in RATIO_MEASURES:
        if x <= 0:
            raise ValueError(f"decision_threshold {x:g} for {measure} is a ratio and must be > 0")
        return math.log(x)
    if measure == "ZCOR":
        if not -1 < x < 1:
            raise ValueError(f"decision_threshold {x:g} for ZCOR is a correlation r and must be in (−1, 1)")
        return math.atanh(x)
    if transform_back(measure, np.zeros(1), ni=np.ones(1)) is not None:
        raise ValueError(f"decision_threshold is not supported for {measure}: give it for a comparison measure")
    return float(x)


def reader_null(measure: str) -> float:
    return 1.0 if measure in RATIO_MEASURES else 0.0


def direction(est, lo, hi, null=0.0) -> int:
    """+1 / −1 when the CI excludes the null above / below it, 0 when it includes it (or is missing)."""
    if not (_finite(lo) and _finite(hi)):
        return 0
    return 1 if lo > null else -1 if hi < null else 0


# Measure families whose words differ: a correlation has no groups (r of the marker with another variable); a
# generic effect (GEN: the sheet's own yi) has no known direction of meaning, so its words only name the measure.
CORRELATION_MEASURES = ("ZCOR", "COR")
GENERIC_MEASURES = ("GEN",)
# a proportion (PR, PLN, PLO, PAS, PFT) describes one group: no comparison, so no "higher/lower in" either group
PROPORTION_MEASURES = ("PR", "PLN", "PLO", "PAS", "PFT")


def conclusion_text(sign: int, labels: dict | None = None, measure: str = "SMD") -> str:
    """What the CI says in words: "higher in MDD" / "lower in MDD" for a two-group comparison, "positive" /
    "negative correlation" for ZCOR/COR (no groups), "effect above 0" / "below 0" for GEN, "CI includes no
    difference" (or "no correlation", "CI includes 0"); for a proportion (one group, nothing compared) "a
    proportion in one group (no comparison)", whatever its CI."""
    if measure in PROPORTION_MEASURES:
        return "a proportion in one group (no comparison)"
    if measure in CORRELATION_MEASURES:
        return {1: "positive correlation", -1: "negative correlation"}.get(sign, "CI includes no correlation")
    if measure in GENERIC_MEASURES:
        return {1: "effect above 0", -1: "effect below 0"}.get(sign, "CI includes 0")
    g = {"cases": "cases", "controls": "controls", **(labels or {})}
    if sign > 0:
        return f"higher in {g['cases']}"
    if sign < 0:
        return f"lower in {g['cases']}"
    return "CI includes no difference"


def estimate_text(measure: str, est, lo, hi) -> str:
    """ "1.17 [0.44, 1.90]" on the reader's scale."""
    e, a, b = reader_scale(measure, [est, lo, hi])
    return f"{num(e)} [{num(a)}, {num(b)}]"


# --------------------------------------------------------------------------------------------------------------
# GRADE domain suggestions


@dataclass(frozen=True)
class Suggestion:
    """One GRADE domain as the numbers suggest it; a person confirms or overrides it.

    ``concern``: True = the numbers suggest considering rating down (serious), False = they raise no concern,
    None = not assessable from the analysis. ``reason`` gives the rule and the numbers."""

    domain: str
    concern: bool | None
    reason: str

    @property
    def label(self) -> str:
        if self.concern is None:
            return "not assessable (to be judged by a person)"
        return ("suggestion: consider rating down (serious), to be confirmed" if self.concern
                else "suggestion: no serious concern, to be confirmed")  # fmt: skip


def inconsistency(pooled: dict) -> Suggestion:
    """GRADE 7 (Guyatt 2011) and Cochrane Handbook §10.10.2/§14.2: a concern when I² ≥ 50% (substantial) or
    when the prediction interval includes the null while the CI excludes it (true effects may lie on both
    sides). Not assessable with k < 2."""
    k = int(pooled.get("k") or 0)
    if k < 2:
        return Suggestion("inconsistency", None, f"k = {k}: heterogeneity cannot be estimated")
    i2, level = pooled.get("i2"), pooled.get("level", 95)
    ci = direction(pooled.get("estimate"), pooled.get("ci_low"), pooled.get("ci_high"))
    pi = direction(pooled.get("estimate"), pooled.get("pi_low"), pooled.get("pi_high"))
    measure = pooled.get("measure", "SMD")
    lo, hi = reader_scale(measure, [pooled.get("pi_low", np.nan), pooled.get("pi_high", np.nan)])
    high_i2 = _finite(i2) and i2 >= I2_SUBSTANTIAL
    pi_crosses = ci != 0 and pi == 0 and _finite(lo)
    reason = f"I² = {num(i2, 1)}% ({'≥' if high_i2 else '<'} {I2_SUBSTANTIAL:g}%)"
    if _finite(lo):
        where = "includes" if pi == 0 else "excludes"
        reason += (f"; {level:g}% prediction interval {num(lo)} to {num(hi)} {where} the null "
                   f"{num(reader_null(measure), 0)}")  # fmt: skip
        if pi_crosses:
            reason += " while the CI excludes it"
    return Suggestion("inconsistency", bool(high_i2 or pi_crosses), reason)


def optimal_information_size(measure: str, delta: float, sigma2: float | None = None, alpha=OIS_ALPHA,
                             power=OIS_POWER) -> float:  # fmt: skip
    """Total participants (both groups, 1:1) that one adequately powered trial needs to detect ``delta``
    (analysis scale) with a two-sided test at ``alpha`` and ``power`` (GRADE 6, Guyatt 2011: the OIS).

    Two groups: n per group = 2 (z₁₋α/₂ + z_power)² σ² / δ², total twice that; σ = 1 for SMD (δ in SD units),
    else ``sigma2``. ZCOR (δ = Fisher's z): n = ((z₁₋α/₂ + z_power) / δ)² + 3. Returns the unrounded total."""
    z = dist.norm_ppf(1 - alpha / 2) + dist.norm_ppf(power)
    if delta == 0 or not np.isfinite(delta):
        return math.inf
    if measure == "ZCOR":
        return (z / delta) ** 2 + 3
    if measure in SMD_MEASURES:
        sigma2 = 1.0
    if sigma2 is None or not np.isfinite(sigma2):
        raise ValueError(f"the OIS of a {measure} analysis needs the outcome's variance sigma2")
    return 2 * 2 * z**2 * sigma2 / delta**2


def outcome_variance(effects: pd.DataFrame) -> float:
    """σ² of one observation on the analysis scale, from the included rows: the median over rows of
    vi / (1/n₁ + 1/n₂) (a two-group effect's sampling variance is ≈ σ²(1/n₁ + 1/n₂); for ROM σ is the CV)."""
    rows = effects[effects["included"].astype(bool)]
    n1, n2, vi = (rows[c].to_numpy(dtype=float) for c in ("n_cases", "n_controls", "vi"))
    s2 = vi / (1 / n1 + 1 / n2)
    s2 = s2[np.isfinite(s2)]
    return float(np.median(s2)) if len(s2) else math.nan


def participants(pooled: dict, effects: pd.DataFrame | None = None) -> float:
    """Participants in the pooled rows: ``n_cases + n_controls`` of pooled.json (shared controls once), else
    the sum over the included rows of effects.csv."""
    if _finite(pooled.get("n_cases")) and _finite(pooled.get("n_controls")):
        return float(pooled["n_cases"]) + float(pooled["n_controls"])
    if effects is None:
        return math.nan
    rows = effects[effects["included"].astype(bool)]
    return float(rows["n_cases"].sum() + rows["n_controls"].sum())


def imprecision(pooled: dict, effects: pd.DataFrame | None = None, decision_threshold: float | None = None,
                alpha=OIS_ALPHA, power=OIS_POWER) -> Suggestion:  # fmt: skip
    """GRADE 6 (Guyatt 2011), Cochrane Handbook §14.2.2: a concern when the CI includes the null, when it
    includes the decision threshold (``decision_threshold``, reader's scale, e.g. a ratio 1.2: the CI spans
    decisions on both sides), or when the participants fall short of the optimal information size (OIS) for
    the threshold — or, without one, for the pooled estimate (said in the reason)."""
    measure, level = pooled.get("measure", "SMD"), pooled.get("level", 95)
    est, lo, hi = (pooled.get(x) for x in ("estimate", "ci_low", "ci_high"))
    if not (_finite(lo) and _finite(hi)):
        return Suggestion("imprecision", None, "no confidence interval")
    null = reader_null(measure)
    e, a, b = reader_scale(measure, [est, lo, hi])
    parts, concern = [], False
    crosses = direction(est, lo, hi) == 0
    concern |= crosses
    parts.append(f"{level:g}% CI {num(a)} to {num(b)} {'includes' if crosses else 'excludes'} the null {num(null, 0)}")
    if decision_threshold is not None:
        t = analysis_scale(measure, decision_threshold)
        spans = lo < t < hi
        concern |= spans
        parts.append(f"{'includes' if spans else 'excludes'} the decision threshold {decision_threshold:g}")
        delta, which = t, f"the decision threshold {decision_threshold:g}"
    else:
        delta, which = float(est), f"the pooled estimate {num(e)} (no decision_threshold set)"
    n = participants(pooled, effects)
    sigma2 = None
    if measure not in SMD_MEASURES and measure != "ZCOR":
        sigma2 = outcome_variance(effects) if effects is not None else math.nan
    try:
        ois = optimal_information_size(measure, delta, sigma2, alpha, power)
    except ValueError:
        ois = math.nan
    if _finite(ois) and _finite(n):
        short = n < ois
        concern |= short
        basis = ("σ = 1" if measure in SMD_MEASURES else "Fisher's z" if measure == "ZCOR"
                 else f"σ² = {num(sigma2, 4)}, median over rows of vi/(1/n₁ + 1/n₂)")  # fmt: skip
        parts.append(
            f"{int(n)} participants {'<' if short else '≥'} OIS {math.ceil(ois)} (one trial with "
            f"α = {alpha:g} two-sided, power {power:g}, to detect {which}; {basis})"
        )
    elif math.isinf(ois):
        parts.append(f"OIS not defined for {which}: an effect of zero")
    return Suggestion("imprecision", bool(concern), "; ".join(parts))


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _test_text(statistic: str | None, value, df) -> str:
    """ "t = 3.09, df = 18" or "z = 2.10" (metafor's regtest print)."""
    if statistic == "t" and _finite(df):
        return f"t = {num(value)}, df = {int(df)}"
    return f"z = {num(value)}"


def publication_bias(pooled: dict, bias: dict | None) -> Suggestion:
    """GRADE 5 (Guyatt 2011), Cochrane Handbook §13.3.5.4 and §14.2.2: a concern when Egger's regression test
    gives p < 0.10 with k ≥ 10, or when trim-and-fill (bias.json's estimator) changes the conclusion (the CI's
    side of the null). With k < 10 and no change by trim-and-fill: not assessable by tests."""
    if not bias:
        return Suggestion("publication bias", None, "no small-study analysis (bias.json) for this analysis")
    k = int(bias.get("k") or pooled.get("k") or 0)
    parts, concern = [], False
    egger_p = bias.get("egger_p")
    if k >= BIAS_MIN_K and _finite(egger_p):
        hit = egger_p < EGGER_ALPHA
        concern |= hit
        test = _test_text(bias.get("egger_statistic"), bias.get("egger_z"), bias.get("egger_df"))
        parts.append(f"Egger's test {test}, {p_text(egger_p)} ({'<' if hit else '≥'} {EGGER_ALPHA:g}, k = {k})")
    else:
        parts.append(f"k = {k} < {BIAS_MIN_K}: funnel tests have too little power")
    measure = pooled.get("measure", "SMD")
    k0 = bias.get("trimfill_k0")
    tf_changes = False
    if _finite(k0) and _finite(bias.get("trimfill_estimate")):
        before = direction(pooled.get("estimate"), pooled.get("ci_low"), pooled.get("ci_high"))
        after = direction(bias["trimfill_estimate"], bias.get("trimfill_ci_low"), bias.get("trimfill_ci_high"))
        tf_changes = int(k0) > 0 and before != after
        concern |= tf_changes
        text = estimate_text(measure, bias["trimfill_estimate"], bias.get("trimfill_ci_low"),
                             bias.get("trimfill_ci_high"))  # fmt: skip
        parts.append(
            f"trim-and-fill adds {_count(int(k0), 'study', 'studies')} ({bias.get('trimfill_side', '')} "
            f"side): {text}, {'changes' if tf_changes else 'does not change'} the conclusion"
        )
    if k < BIAS_MIN_K and not tf_changes:
        return Suggestion("publication bias", None, "; ".join(parts))
    return Suggestion("publication bias", bool(concern), "; ".join(parts))


def risk_of_bias(pooled: dict, effects: pd.DataFrame | None) -> Suggestion:
    """GRADE 4 (Guyatt 2011), Cochrane Handbook §14.2.2: a concern when the rows a pre-specified quality rule
    flagged (:func:`metarepro.quality.flagged_included`, the rows the fit "without flagged rows" leaves out)
    carry ≥ 50% of the weight ("most of the information"), or when leaving them out changes the conclusion."""
    if effects is None or "flags" not in effects or "weight" not in effects:
        return Suggestion("risk of bias", None, "no quality flags or weights for the pooled rows")
    included = effects["included"].astype(bool).to_numpy()
    flagged = flagged_included(effects)
    w = effects["weight"].to_numpy(dtype=float)
    share = float(np.nansum(w[flagged]) / np.nansum(w[included]) * 100)
    many = share >= ROB_WEIGHT_SHARE
    reason = (
        f"{int(flagged.sum())} of {int(included.sum())} pooled rows flagged by a quality rule carry "
        f"{num(share, 1)}% of the weight ({'≥' if many else '<'} {ROB_WEIGHT_SHARE:g}%)"
    )
    changes = False
    without = pooled.get("without_flagged")
    if isinstance(without, dict) and _finite(without.get("estimate")):
        before = direction(pooled.get("estimate"), pooled.get("ci_low"), pooled.get("ci_high"))
        after = direction(without["estimate"], without.get("ci_low"), without.get("ci_high"))
        changes = before != after
        reason += (
            f"; without them {estimate_text(pooled.get('measure', 'SMD'), without['estimate'], without['ci_low'], without['ci_high'])}"  # noqa: E501
            f", k = {without.get('k')}: {'changes' if changes else 'same'} conclusion"
        )
    return Suggestion("risk of bias", bool(many or changes), reason)


@dataclass(frozen=True)
class SofRow:
    """One row of a summary-of-findings table: the question's primary analysis on the reader's scale."""

    question: str
    analysis: str
    measure: str
    estimate: float
    ci_low: float
    ci_high: float
    level: float
    k: int
    participants: float
    suggestions: tuple[Suggestion, ...] = field(default_factory=tuple)

    def as_dict(self) -> dict:
        out = {"question": self.question, "analysis": self.analysis, "measure": self.measure,
               "estimate": self.estimate, "ci_low": self.ci_low, "ci_high": self.ci_high, "k": self.k,
               "participants": self.participants}  # fmt: skip
        for s in self.suggestions:
            key = s.domain.replace(" ", "_")
            out[key] = s.label
            out[f"{key}_reason"] = s.reason
        return out


def sof_row(question: str, analysis: str, pooled: dict, bias: dict | None = None,
            effects: pd.DataFrame | None = None, decision_threshold: float | None = None) -> SofRow:  # fmt: skip
    """The SoF row of one question from its primary analysis: estimate and CI on the reader's scale, k,
    participants and the four GRADE domain suggestions computed here (indirectness is not computable)."""
    measure = pooled.get("measure", "SMD")
    e, a, b = pooled_shown(pooled)
    return SofRow(question, analysis, measure, float(e), float(a), float(b), float(pooled.get("level", 95)),
                  int(pooled["k"]), participants(pooled, effects),
                  (risk_of_bias(pooled, effects), inconsistency(pooled),
                   imprecision(pooled, effects, decision_threshold), publication_bias(pooled, bias)))  # fmt: skip


def sof_table(rows: list[SofRow]) -> pd.DataFrame:
    """The SoF table: one row per question, each domain's suggestion label and its reason side by side."""
    return pd.DataFrame([r.as_dict() for r in rows])


# --------------------------------------------------------------------------------------------------------------
# Which analyses answer one question, and in which role


def _frozen(where) -> tuple:
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in (where or {}).items()))


def questions(analyses: dict, defaults: dict | None = None) -> dict[str, dict[str, str]]:
    """Group a config's analyses by question (same sheet and same ``where`` filter) and name each one's role:
    ``primary`` (the first in config order that is neither reported-only nor dependent), ``reported``
    (``exclude_converted``), ``multilevel`` (``dependence``), or its measure (another scale, e.g. ``MD``).
    Returns {question: {role: analysis name}}, the question named by its ``where`` values ("IL-6", see
    :func:`question_name`), else by its primary analysis's title. Variability ratios (VR, CVR) ask whether the
    groups' spread differs, not whether their means do: on the same rows they are a question of their own
    ("CRP, variability"), never a sensitivity analysis of the mean difference."""
    defaults = defaults or {}
    groups: dict[tuple, list[str]] = {}
    for name, a in analyses.items():
        variability = {**defaults, **a}.get("measure", "SMD") in VARIABILITY_MEASURES
        groups.setdefault((a.get("data"), _frozen(a.get("where")), variability), []).append(name)
    out = {}
    for (_, where, variability), names in groups.items():
        roles: dict[str, str] = {}
        for name in names:
            a = {**defaults, **analyses[name]}
            measure = a.get("measure", "SMD")
            if a.get("dependence"):
                role = "multilevel"
            elif a.get("exclude_converted"):
                role = "reported"
            elif "primary" not in roles:
                role, primary_measure = "primary", measure
            else:  # another scale, or the same scale with other settings (method, test, preset)
                role = measure if measure != primary_measure else f"settings: {name}"
            roles.setdefault(role, name)
        if "primary" in roles:
            named = question_name(where) or analyses[roles["primary"]].get("title", roles["primary"])
            out[f"{named}, variability" if variability else named] = roles
    return out


def question_name(where) -> str:
    """ "IL-6" for {marker: IL-6} (the values of ``marker``/``outcome``), other filters as "column: value",
    e.g. "IL-6, medication: drug-free/drug-naive"."""
    items = dict(where) if not isinstance(where, dict) else where
    text = lambda v: "/".join(str(x) for x in v) if isinstance(v, list | tuple) else str(v)  # noqa: E731
    main = [text(v) for k, v in items.items() if k in ("marker", "outcome")]
    rest = [f"{k}: {text(v)}" for k, v in items.items() if k not in ("marker", "outcome")]
    return ", ".join(main + rest)


# --------------------------------------------------------------------------------------------------------------
# Sensitivity summary


@dataclass(frozen=True)
class SensitivityRow:
    """One line of a question's sensitivity table (reader's scale). ``low``/``high`` are a range of estimates
    (estimators, leave-one-out) when ``kind == "range"``, else the CI."""

    label: str
    analysis: str
    measure: str
    k: int | None
    estimate: float
    low: float
    high: float
    kind: str  # "ci" or "range"
    conclusion: int | None  # +1 / −1 / 0 as :func:`direction`; None for ranges of point estimates
    note: str = ""

    def as_dict(self) -> dict:
        return {"label": self.label, "analysis": self.analysis, "measure": self.measure, "k": self.k,
                "estimate": self.estimate, "low": self.low, "high": self.high, "kind": self.kind,
                "conclusion": self.conclusion, "note": self.note}  # fmt: skip


def _fit_row(label, analysis, record, note="") -> SensitivityRow:
    m = record.get("measure", "SMD")
    e, a, b = reader_scale(m, [record.get("estimate", np.nan), record.get("ci_low", np.nan),
                               record.get("ci_high", np.nan)])  # fmt: skip
    return SensitivityRow(
        label,
        analysis,
        m,
        int(record.get("k") or 0),
        float(e),
        float(a),
        float(b),
        "ci",
        direction(record.get("estimate"), record.get("ci_low"), record.get("ci_high")),
        note,
    )


@dataclass
class AnalysisRecords:
    """What one analysis wrote (results/<name>/): pooled.json and bias.json as dicts, the CSVs as frames."""

    name: str
    pooled: dict
    bias: dict | None = None
    effects: pd.DataFrame | None = None
    estimators: pd.DataFrame | None = None
    leave1out: pd.DataFrame | None = None
    influence: pd.DataFrame | None = None


def sensitivity_rows(roles: dict[str, str], records: dict[str, AnalysisRecords]) -> list[SensitivityRow]:
    """One question's sensitivity table: primary; without flagged rows; reported-only; other scales (MD,
    ROM ...); the range over every τ² estimator (estimators.csv rows with the primary's test; none for k = 1, where
    every estimator gives the one study's estimate); the leave-one-out range; trim-and-fill; multilevel. Rows whose
    analysis was not run are left out."""
    primary = records[roles["primary"]]
    p = primary.pooled
    measure = p.get("measure", "SMD")
    settings = f"{p.get('measure')}, {p.get('method')}, test {p.get('test')}"
    if int(p["k"]) == 1:  # metafor's rma fits one study with test "z" (a warning says so) and no τ²
        settings = f"{p.get('measure')}, one study (no τ²), test z"
    rows = [_fit_row("primary", primary.name, p, settings)]
    without = p.get("without_flagged")
    if isinstance(without, dict) and _finite(without.get("estimate")):
        rows.append(
            _fit_row(
                "without flagged rows",
                primary.name,
                {**p, **without},
                f"leaves out the {without['k_flagged']} flagged lines (effects.csv, column flags)"
                if "k_flagged" in without
                else f"leaves out lines {', '.join(str(x) for x in without.get('excluded_lines', []))}",
            )
        )
    if "reported" in roles and roles["reported"] in records:
        rows.append(_fit_row("reported means and SDs only", roles["reported"], records[roles["reported"]].pooled))
    for role, name in roles.items():
        if role in ("primary", "reported", "multilevel") or name not in records:
            continue
        r = records[name].pooled
        kind = "other scale" if r.get("measure") != measure else "other settings"
        rows.append(_fit_row(f"{kind}: {r.get('measure')} ({r.get('method')}, {r.get('test')})", name, r))
    est = primary.estimators
    # k = 1: every estimator gives τ² = 0 and the study's own estimate, a "range" of one point that would count as
    # a sensitivity analysis agreeing with the primary (the sentence says why there is none instead)
    if est is not None and len(est) and int(p["k"]) > 1:
        same = est[est["test"] == p.get("test")] if "test" in est else est
        same = same[np.isfinite(same["estimate"].to_numpy(dtype=float))]
        if len(same):
            values = same["estimate"].to_numpy(dtype=float)
            lo_i, hi_i = int(np.argmin(values)), int(np.argmax(values))
            e, a, b = reader_scale(measure, [p["estimate"], values[lo_i], values[hi_i]])
            signs = {direction(r.estimate, r.ci_low, r.ci_high) for r in same.itertuples()}
            agree = len(signs) == 1
            rows.append(SensitivityRow(
                f"every τ² estimator ({len(same)}, test {p.get('test')})", primary.name, measure, int(p["k"]),
                float(e), float(a), float(b), "range", next(iter(signs)) if agree else None,
                f"lowest {same['method'].iloc[lo_i]}, highest {same['method'].iloc[hi_i]}; "
                f"{'same conclusion for every estimator' if agree else 'conclusions differ'}"))  # fmt: skip
    l1o = primary.leave1out
    # above the refit limit (metarepro._core.limits.REFIT_MAX_K) the table holds no refit: no range to show
    if l1o is not None and np.isfinite(l1o["estimate"].to_numpy(dtype=float)).any():
        values = l1o["estimate"].to_numpy(dtype=float)
        lo_i, hi_i = int(np.nanargmin(values)), int(np.nanargmax(values))
        e, a, b = reader_scale(measure, [p["estimate"], values[lo_i], values[hi_i]])
        signs = [direction(r.estimate, r.ci_low, r.ci_high) for r in l1o.itertuples()]
        main = direction(p["estimate"], p["ci_low"], p["ci_high"])
        changed = [str(s) for s, d in zip(l1o["study"], signs, strict=True) if d != main]
        rows.append(
            SensitivityRow(
                "leave-one-out",
                primary.name,
                measure,
                int(p["k"]) - 1,
                float(e),
                float(a),
                float(b),
                "range",
                main if not changed else None,
                f"lowest without {l1o['study'].iloc[lo_i]}, highest without {l1o['study'].iloc[hi_i]}; "
                + (
                    f"conclusion changes without: {'; '.join(changed)}"
                    if changed
                    else "no single row changes the conclusion"
                ),
            )
        )  # noqa: E501
    b = primary.bias
    if b and _finite(b.get("trimfill_estimate")):
        rows.append(_fit_row(f"trim-and-fill ({b.get('trimfill_estimator', '')}, {b.get('trimfill_side', '')} side)",
                             primary.name, {"measure": measure, "k": int(p["k"]) + int(b.get("trimfill_k0") or 0),
                                            "estimate": b["trimfill_estimate"], "ci_low": b.get("trimfill_ci_low"),
                                            "ci_high": b.get("trimfill_ci_high")},
                             f"{_count(int(b.get('trimfill_k0') or 0), 'study', 'studies')} filled"))  # fmt: skip
    if "multilevel" in roles and roles["multilevel"] in records:
        r = records[roles["multilevel"]].pooled
        rows.append(_fit_row("multilevel (every case subgroup)", roles["multilevel"], r,
                             (r.get("dependence") or {}).get("formula", "")))  # fmt: skip
    return rows


def sensitivity_table(rows: list[SensitivityRow]) -> pd.DataFrame:
    return pd.DataFrame([r.as_dict() for r in rows])


def sensitivity_sentence(question: str, rows: list[SensitivityRow], labels: dict | None = None) -> str:
    """One sentence: the primary conclusion and whether each sensitivity analysis keeps it, naming those that
    do not (ranges count as keeping it only when every fit in them does)."""
    main, others = rows[0], rows[1:]
    said = conclusion_text(main.conclusion, labels, main.measure)
    differ = [r.label for r in others if r.conclusion != main.conclusion]
    text = (
        f"{question}: the primary analysis ({main.note}) gives {num(main.estimate)} [{num(main.low)}, "
        f"{num(main.high)}], {said}"
    )
    if not others and main.k == 1:
        return text + "; with one study no sensitivity analysis applies (every τ² estimator gives its estimate)."
    if not others:
        return text + "; no sensitivity analysis was run."
    if not differ:
        return text + ("; the one sensitivity analysis reaches the same conclusion." if len(others) == 1 else
                       f"; all {len(others)} sensitivity analyses reach the same conclusion.")  # fmt: skip
    return text + (f"; {len(others) - len(differ)} of {len(others)} sensitivity analyses reach the same "
                   f"conclusion, not: {'; '.join(differ)}.")  # fmt: skip


# --------------------------------------------------------------------------------------------------------------
# reporter()-like sentences


def _studies(names) -> str:
    names = list(names)
    words = {1: "one study", 2: "two studies"}.get(len(names), "several studies")
    return f"{words} ({'; '.join(str(n) for n in names)})"


def influence_criteria(influence: pd.DataFrame, p: int = 1) -> pd.DataFrame:
    """metafor ``influence.rma.uni``'s criteria per study (its ``*`` column is any of them): |dffits| >
    3√(p/(k−p)), pchisq(cook.d, p) > 0.5, hat > 3p/k, |dfbetas| > 1 — plus reporter()'s rules: |rstudent| ≥
    the Bonferroni value qnorm(α/(2k)) (outlier) and cook.d > median + 6·IQR of the Cook's distances."""
    k = len(influence)
    dffits, cook = influence["dffits"].to_numpy(float), influence["cook_d"].to_numpy(float)
    hat, dfb = influence["hat"].to_numpy(float), influence["dfbetas"].to_numpy(float)
    rs = influence["rstudent"].to_numpy(float)
    columns = ("study", "dffits", "cook_d", "hat", "dfbetas", "outlier", "cook_spike")
    if k <= p:  # no influence diagnostics (one study: influence.csv has no rows), so no criterion
        return pd.DataFrame({c: influence[c] if c == "study" else pd.Series(dtype=bool) for c in columns})
    q1, q3 = np.nanpercentile(cook, [25, 75])  # R's IQR (type 7) = numpy's linear interpolation
    return pd.DataFrame({
        "study": influence["study"].to_numpy(),
        "dffits": np.abs(dffits) > 3 * math.sqrt(p / (k - p)),
        "cook_d": dist.chi2_cdf(cook, p) > 0.5,
        "hat": hat > 3 * p / k,
        "dfbetas": np.abs(dfb) > 1,
        "outlier": np.abs(rs) >= dist.norm_isf(REPORTER_ALPHA / (2 * k)),
        "cook_spike": cook > np.nanmedian(cook) + 6 * (q3 - q1),
    })  # fmt: skip


def reporter_sentences(pooled: dict, bias: dict | None = None, influence: pd.DataFrame | None = None,
                       effects: pd.DataFrame | None = None) -> list[str]:  # fmt: skip
    """Interpretive sentences in the wording and with the rules of metafor's ``reporter.rma.uni`` (R/reporter.rma.
    uni.r), on the reader's scale: the average outcome and its test; the Q-test, τ², I²; the prediction interval
    and whether it includes the null; studies with weight ≥ 3/k; outliers (|rstudent| above the Bonferroni value);
    influential studies by metafor's ``influence()`` criteria (naming the criterion) and by reporter's Cook's
    rule; funnel asymmetry by the rank correlation and the regression test (p ≤ 0.05 as reporter)."""
    m = pooled.get("measure", "SMD")
    level = pooled.get("level", 95)
    null = reader_null(m)
    k = int(pooled["k"])
    e, a, b = pooled_shown(pooled)
    what = MEASURE_WORDS.get(m, "outcome")
    df = pooled.get("df") if _finite(pooled.get("df")) else k - 1
    stat = "z" if pooled.get("test") == "z" or k == 1 else f"t({int(df)})"  # k = 1: metafor sets test = "z"
    one_group = m in PROPORTION_MEASURES  # a proportion has no "no difference" value to test against
    if one_group:  # metafor's test is of the transformed value against 0 (a logit of 0 is 50%): no question here
        out = [f"The estimated average {what} was {num(e)} ({level:g}% CI: {num(a)} to {num(b)}); a proportion has "
               f"no null value, so no test against one is reported."]  # fmt: skip
    else:
        out = [
            f"The estimated average {what} was {num(e)} ({level:g}% CI: {num(a)} to {num(b)}). Therefore, the "
            f"average outcome {'did not differ' if pooled['pval'] > 0.05 else 'differed'} significantly from "
            f"{num(null, 0)} ({stat} = {num(pooled['zval'])}, {p_text(pooled['pval'])})."
        ]
    if k > 1 and _finite(pooled.get("q")):
        qp = pooled["q_p"]
        head = ("According to the Q-test, there was no significant amount of heterogeneity in the true outcomes"
                if qp > 0.10 else
                "The Q-test for heterogeneity was not significant, but some heterogeneity may still be present in "
                "the true outcomes" if qp > 0.05 else
                "According to the Q-test, the true outcomes appear to be heterogeneous")  # fmt: skip
        random = _finite(pooled.get("tau2")) and pooled.get("method") not in ("EE", "FE", "CE")  # reporter: RE only
        tau2 = f", τ² = {num(pooled['tau2'], 4)}" if random else ""
        out.append(
            f"{head} (Q({int(pooled['q_df'])}) = {num(pooled['q'])}, {p_text(qp)}{tau2}, I² = {num(pooled['i2'])}%)."
        )
    if _finite(pooled.get("tau2")) and pooled["tau2"] > 0 and _finite(pooled.get("pi_low")):
        lo, hi = pooled_shown(pooled, ("pi_low", "pi_high"))
        text = f"A {level:g}% prediction interval for the true outcomes is given by {num(lo)} to {num(hi)}"
        # metafor's words for a difference ("positive"/"negative"); for a ratio, the side of 1; a proportion has none
        words = ("positive", "negative") if null == 0 else (f"above {num(null, 0)}", f"below {num(null, 0)}")
        if one_group:
            text += "."
        elif lo <= null <= hi:
            side, other = words if pooled["estimate"] > 0 else words[::-1]
            text += (
                f"; it includes {num(null, 0)}. Hence, although the average outcome is estimated to be {side}, "
                f"in some studies the true outcome may in fact be {other}."
            )
        else:
            text += (
                f"; it excludes {num(null, 0)}. Hence, even though there may be some heterogeneity, the true "
                f"outcomes of the studies are generally in the same direction as the estimated average outcome."
            )
        out.append(text)
    if effects is not None and "weight" in effects:
        rows = effects[effects["included"].astype(bool)]
        big = rows[rows["weight"].to_numpy(float) / 100 >= 3 / k]
        if len(big):
            names = _studies(big["study"])
            had = "had a relatively large weight" if len(big) == 1 else "had relatively large weights"
            out.append(
                f"{names[0].upper()}{names[1:]} {had} compared to the rest of the studies (weight ≥ 3/k = "
                f"{num(300 / k, 1)}%: {', '.join(num(w, 1) + '%' for w in big['weight'])})."
            )
    if influence is not None and len(influence) == k and k > 2:
        crit = influence_criteria(influence)
        z = dist.norm_isf(REPORTER_ALPHA / (2 * k))
        hits = crit.loc[crit["outlier"], "study"]
        out.append("An examination of the studentized residuals revealed that "
                   + (f"none of the studies had a value larger than ±{num(z)} and hence there was no indication of "
                      "outliers" if not len(hits) else
                      f"one study ({hits.iloc[0]}) had a value larger than ±{num(z)} and may be a potential outlier"
                      if len(hits) == 1 else
                      f"{_studies(hits)} had values larger than ±{num(z)} and may be potential outliers")
                   + " in the context of this model (Bonferroni, two-sided α = 0.05 over k studies).")  # fmt: skip
        rules = {
            "dffits": f"|DFFITS| > {num(3 * math.sqrt(1 / (k - 1)))}",
            "cook_d": "Cook's distance above the median of χ²₁ (0.45)",
            "hat": f"hat > 3/k = {num(3 / k, 3)}",
            "dfbetas": "|DFBETAS| > 1",
        }
        named = [f"{s} ({', '.join(r for c, r in rules.items() if row[c])})"
                 for s, row in zip(crit["study"], crit.to_dict("records"), strict=True)
                 if any(row[c] for c in rules)]  # fmt: skip
        out.append(
            "By metafor's influence() criteria, "
            + (
                f"{len(named)} {'study was' if len(named) == 1 else 'studies were'} influential: " + "; ".join(named)
                if named
                else "no study was influential"
            )
            + "."
        )
        spikes = crit.loc[crit["cook_spike"], "study"]
        out.append(
            "According to the Cook's distances (larger than the median plus six times the interquartile "
            f"range), {_studies(spikes) if len(spikes) else 'none of the studies'} could be considered to "
            "be overly influential."
        )
    if bias and _finite(bias.get("begg_p")) and _finite(bias.get("egger_p")):
        rp, gp = bias["begg_p"], bias["egger_p"]
        reg = f"regression test, {_test_text(bias.get('egger_statistic'), bias.get('egger_z'), bias.get('egger_df'))}"
        rank = f"rank correlation test, Kendall's τ = {num(bias.get('begg_tau'), 3)}"
        if rp > REPORTER_ALPHA and gp > REPORTER_ALPHA:
            out.append(
                f"Neither the rank correlation nor the regression test indicated any funnel plot asymmetry "
                f"({rank}, {p_text(rp)}; {reg}, {p_text(gp)})."
            )
        elif rp <= REPORTER_ALPHA and gp <= REPORTER_ALPHA:
            out.append(
                f"Both the rank correlation and the regression test indicated potential funnel plot "
                f"asymmetry ({rank}, {p_text(rp)}; {reg}, {p_text(gp)})."
            )
        elif gp <= REPORTER_ALPHA:
            out.append(
                f"The regression test indicated funnel plot asymmetry ({reg}, {p_text(gp)}) but not the "
                f"rank correlation test ({rank}, {p_text(rp)})."
            )
        else:
            out.append(
                f"The rank correlation test indicated funnel plot asymmetry ({rank}, {p_text(rp)}) but not "
                f"the regression test ({reg}, {p_text(gp)})."
            )
        if k < BIAS_MIN_K:
            out[-1] = out[-1][:-1] + f"; with k = {k} < {BIAS_MIN_K} both tests have low power."
    return out


# --------------------------------------------------------------------------------------------------------------
# Risk-of-bias / quality judgements per row (what the traffic-light figure draws)

ROB_PREFIX = "rob_"  # sheet columns rob_<domain> hold risk-of-bias judgements (RoB 2 / ROBINS / NOS domains)
ROB_LEVELS = {"low": "low", "some concerns": "some concerns", "moderate": "some concerns", "unclear": "no information",
              "no information": "no information", "high": "high", "serious": "high", "critical": "high"}  # fmt: skip
FLAGGED, NOT_FLAGGED = "flagged", "not flagged"


def flag_judgements(effects: pd.DataFrame, rules=None) -> pd.DataFrame:
    """Per pooled row (index: study label), per quality rule (columns: :data:`metarepro.quality.RULES`),
    "flagged" when the row's ``flags`` text holds a flag of that rule, else "not flagged"; the last column
    ``overall`` is "flagged" when any rule is (the rows the fit "without flagged rows" leaves out)."""
    from metarepro.quality import RULES

    rules = RULES if rules is None else rules
    rows = effects[effects["included"].astype(bool)]
    texts = rows["flags"].astype(object).fillna("").astype(str) if "flags" in rows else pd.Series("", rows.index)
    # each flag starts with its rule's name and a colon; flags are joined by "; " (QualityFlags.text)
    table = pd.DataFrame({rule: np.where(texts.str.contains(rf"(?:^|; ){rule}:", regex=True), FLAGGED, NOT_FLAGGED)
                          for rule in rules}, index=rows["study"].astype(str).to_numpy())  # fmt: skip
    table["overall"] = np.where(flagged_included(effects)[effects["included"].astype(bool).to_numpy()], FLAGGED,
                                NOT_FLAGGED)  # fmt: skip
    return table


def rob_judgements(sheet: pd.DataFrame, effects: pd.DataFrame, line="line") -> pd.DataFrame | None:
    """Per pooled row, the sheet's risk-of-bias columns (``rob_<domain>``: low / some concerns (moderate) / high
    (serious, critical) / no information (unclear), any case), matched to effects.csv by ``line``; None when the
    sheet has no such column. A value outside these words is an error naming the line and the column."""
    columns = [c for c in sheet.columns if str(c).startswith(ROB_PREFIX)]
    if not columns:
        return None
    rows = effects[effects["included"].astype(bool)]
    by_line = sheet.set_index(line)
    out = {}
    for col in columns:
        values = []
        for ln in rows["line"]:
            cell = by_line.at[ln, col]
            text = "" if pd.isna(cell) else str(cell).strip().lower()
            if text not in ROB_LEVELS and text:
                raise ValueError(
                    f"line {ln}, column {col}: '{cell}' is not a risk-of-bias judgement; write one of "
                    "low, some concerns, high, no information (or moderate, serious, critical, unclear)"
                )
            values.append(ROB_LEVELS.get(text, "no information"))
        out[col[len(ROB_PREFIX) :]] = values
    table = pd.DataFrame(out, index=rows["study"].astype(str).to_numpy())
    if "overall" not in table:
        order = ["low", "some concerns", "high"]  # RoB 2: the overall judgement is the worst domain
        worst = [max((v for v in r if v in order), key=order.index, default="no information")
                 for r in table.itertuples(index=False)]  # fmt: skip
        table["overall"] = worst
    return table
