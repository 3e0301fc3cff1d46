"""One configured analysis: sheet rows → effect sizes (with every row accounted for) → fits.

:func:`compute_effects` gives one row per selected input row with ``included``, ``reason``, the
input form it came from (``input``), the conversion that made it (``conversion``) and extraction
``checks``; :func:`fit_analysis` pools the included rows with the primary method and test, and
:func:`estimator_table` refits them with every estimator and both tests.

Input forms, in order of preference for a row that fills several:

1. group summaries (per group: mean with SD; or mean with SEM; or a 95% CI of the mean; or a median
   with quartiles and/or range) — for SMD, MD, ROM, CVR, and VR (which needs no means);
2. for ZCOR: ``r`` and ``n``;
3. for SMD only: a t statistic, Cohen's ``d``, a ``z`` or one-df ``F`` with ``direction``, a two-sided
   p with ``direction``, or a point-biserial ``r`` (with both group sizes; with only ``n``, equal
   groups are assumed);
4. a precomputed ``yi`` with ``vi``, ``sei`` or a 95% CI (``ci_low, ci_high``), on the analysis scale.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, fields, replace

import numpy as np
import pandas as pd

from metarepro import quality
from metarepro._core import dist
from metarepro.inputs.config import resolve_settings, setting_defaults
from metarepro.inputs.sheet import LINE, SUMMARY
from metarepro.pipeline import binary
from metarepro.stats import conversions as cv
from metarepro.stats import effects as es
from metarepro.stats import effects_binary as eb
from metarepro.stats.effects_binary import BINARY_MEASURES, PROPORTION_MEASURES, TABLE_MEASURES
from metarepro.stats.rma import TESTS, RmaResult, rma, rma_batch_tests
from metarepro.stats.tau2 import METHODS, Control

DEFAULTS = setting_defaults()  # the schema's (metarepro.inputs.config: the one home of option knowledge)
EFFECT_COLUMNS = (
    "line", "study_id", "study", "n_cases", "n_controls", "input", "conversion", "yi", "vi", "sei", "ci_low",
    "ci_high", "weight", "included", "reason", "checks",
)  # fmt: skip
GROUPS = ("cases", "controls")
RULE = quality.RULEBOOK  # every row rule: what it excludes, flags or notes, with its threshold and message


# the group-summary measures whose log needs positive means, and what the log is of
LOG_OF_MEANS = {"ROM": "log ratio of means", "CVR": "log ratio of the coefficients of variation SD/mean"}

MODELS = ("multilevel", "multivariate", "aggregate")
# how the rows of a binary-outcome analysis are pooled (config ``fit``, metafor's functions) and the measures each
# takes, as metafor 3.8-1 allows them
FITS = {"rma": None, "rma.mh": ("OR", "RR", "RD"), "rma.peto": ("OR", "PETO"), "rma.glmm": ("OR", "PLO")}
GLMM_MODELS = ("UM.FS", "UM.RS", "CM.EL", "CM.AL")
MV_METHODS = ("REML", "ML")  # what metafor's rma.mv estimates


@dataclass(frozen=True)
class Dependence:
    """How the rows of one analysis depend on each other (config ``dependence`` and ``robust``).

    ``multilevel``: nested random intercepts, metafor's ``random = ~ 1 | levels[0]/levels[1]/.../effect`` (every
    row is its own innermost level); ``multivariate``: ``random = ~ inner | outer`` with ``struct``, fixed part
    ``~ 0 + inner`` (one estimate per inner level; ``primary`` names the one pooled.json leads with, default the
    level with the most effects); ``aggregate``: the rows of one ``cluster`` collapsed to one effect (metafor's
    ``aggregate.escalc``), then the analysis's usual rma. ``rho``: the correlation of the sampling errors of two
    rows of one cluster measured on the same participants; ``shared_controls``: the rows of one cluster are case
    groups compared with one control group (``case_group`` names the column that says which rows share their cases
    too, default: every row its own case group). ``robust``: CR1 or CR2 with the outermost level as cluster.
    """

    model: str
    levels: tuple = ("study_id",)
    inner: str | None = None
    struct: str = "CS"
    rho: float | None = None
    shared_controls: bool = False
    case_group: str | None = None
    primary: str | None = None
    dfs: str = "residual"
    robust: str | None = None

    @classmethod
    def from_config(cls, analysis: dict):
        spec = analysis.get("dependence")
        if not spec:
            return None
        spec = dict(spec)
        model = spec.pop("model")
        if model == "multivariate":
            levels = (spec.pop("outer", "study_id"),)
        elif model == "aggregate":
            levels = (spec.pop("cluster", "study_id"),)
        else:
            levels = tuple(spec.pop("levels", ("study_id",)))
        return cls(model=model, levels=levels, robust=analysis.get("robust"), **spec)

    @property
    def cluster(self) -> str:
        """The outermost level: the clusters of robust inference, of the forest plot and of aggregation."""
        return self.levels[0]

    @property
    def columns(self) -> tuple:
        """The sheet columns the model reads, each once."""
        return tuple(dict.fromkeys(c for c in (*self.levels, self.inner, self.case_group) if c))


@dataclass(frozen=True)
class Settings:
    """The statistical choices of one analysis, with the config schema's defaults (metafor's: SMD, REML, z, 95,
    LS, preset metafor; :func:`metarepro.inputs.config.setting_defaults`).

    ``preset: revman`` sets method DL and RevMan 5's SMD (approximate correction and variance),
    overriding ``method``/``vtype``; ``unit`` is the unit of an MD analysis (default: the most common
    convertible unit of its rows); ``exclude_converted`` keeps only reported means and SDs.

    Binary outcomes (OR, RR, RD, PETO from 2×2 tables; PR, PLN, PLO, PAS, PFT from proportions): ``fit`` is how
    the rows are pooled, metafor's function: ``rma`` (inverse variance, default), ``rma.mh`` (Mantel–Haenszel),
    ``rma.peto`` (Peto) or ``rma.glmm`` with its ``model`` (default UM.FS); ``add``, ``to``, ``drop00`` are the
    zero-cell handling, None for metafor's default of that function (escalc/rma: 1/2, "only0", False — add 0 for
    PAS and PFT; rma.mh and rma.peto: (1/2, 0), ("only0", "none"), (True, False); rma.glmm: 1/2, "only0", True).
    rma.mh and rma.peto are equal-effects models (``method`` "EE" in the record); rma.glmm estimates by ML (or EE).
    """

    measure: str = DEFAULTS["measure"]
    method: str = DEFAULTS["method"]
    test: str = DEFAULTS["test"]
    level: float = DEFAULTS["level"]
    vtype: str = DEFAULTS["vtype"]
    preset: str = DEFAULTS["preset"]
    unit: str | None = DEFAULTS["unit"]
    exclude_converted: bool = DEFAULTS["exclude_converted"]
    dependence: Dependence | None = None
    fit: str = "rma"
    model: str = "UM.FS"
    add: float | tuple | None = None
    to: str | tuple | None = None
    drop00: bool | tuple | None = None

    @classmethod
    def from_config(cls, analysis: dict, defaults: dict | None = None):
        """One config analysis's settings (:func:`metarepro.inputs.config.resolve_settings`: the schema's defaults,
        the config's ``defaults``, the analysis's own; metafor's spellings; the preset); a binary ``fit`` then sets
        its own method and test as metafor's function does (rma.mh, rma.peto: equal effects and z; rma.glmm: ML
        unless EE is asked for)."""
        merged = resolve_settings(analysis, defaults)
        chosen = {f.name: merged[f.name] for f in fields(cls) if f.name in merged and f.name != "dependence"}
        chosen.update({name: tuple(value) for name, value in chosen.items() if isinstance(value, list)})  # pairs
        settings = cls(**chosen, dependence=Dependence.from_config(analysis))
        if settings.fit in ("rma.mh", "rma.peto"):  # equal-effects models: no tau², a z test
            settings = replace(settings, method="EE", test="z")
        elif settings.fit == "rma.glmm":  # metafor's rma.glmm: ML unless EE is asked for (its test t is knha here)
            settings = replace(settings, method="EE" if analysis.get("method") in ("EE", "FE") else "ML")
        return settings

    @property
    def binary(self) -> bool:
        """Counts: a 2×2 table or a proportion per row."""
        return self.measure in BINARY_MEASURES

    def zero_cells(self) -> dict:
        """``add``, ``to``, ``drop00`` as the fit takes them (see the class): what the config gives, else metafor's
        default for the fit and measure."""
        if self.fit in ("rma.mh", "rma.peto"):
            default = {"add": (0.5, 0.0), "to": ("only0", "none"), "drop00": (True, False)}
            given = {"add": self.add, "to": self.to, "drop00": self.drop00}
            return {k: default[k] if v is None else eb.pair(v, default[k][1], k) for k, v in given.items()}
        add = (0.0 if self.measure in eb.NO_CORRECTION else 0.5) if self.add is None else self.add
        drop00 = (self.fit == "rma.glmm") if self.drop00 is None else self.drop00
        return {"add": add, "to": self.to or "only0", "drop00": drop00}


def _col(rows, name):
    return rows[name].to_numpy(dtype=float) if name in rows else np.full(len(rows), np.nan)


def _text(rows, name):
    return rows[name].fillna("").astype(str).str.strip().to_numpy() if name in rows else np.full(len(rows), "")


def _sem_proof(rows):
    """Per row, the evidence that its ``sd_*`` cells are SEMs, or "" (the column :func:`compute_effects` fills)."""
    return rows[quality.SEM_PROOF_COLUMN].fillna("").to_numpy(dtype=object)


def _group_summary(rows, group):
    """Mean and SD of one group from whatever the row reports, with the conversion used."""
    n = _col(rows, f"n_{group}")
    mean, sd = _col(rows, f"mean_{group}"), _col(rows, f"sd_{group}")
    conversion = np.full(len(rows), "", dtype=object)
    skewed = np.zeros(len(rows), dtype=bool)

    proof = _sem_proof(rows)
    proven = (proof != "") & np.isfinite(sd)
    sd = np.where(proven, cv.sd_from_sem(sd, n), sd)
    conversion[proven] = [f"SD cells read as SEMs (proven by {text})" for text in proof[proven]]

    # each conversion only where a row has no SD yet (at 10⁶ rows of means and SDs, none)
    sem = _col(rows, f"sem_{group}")
    use = np.isnan(sd) & np.isfinite(mean) & np.isfinite(sem)
    if use.any():
        sd = np.where(use, cv.sd_from_sem(sem, n), sd)
        conversion[use] = "SEM→SD"

    low, high = _col(rows, f"ci_low_{group}"), _col(rows, f"ci_high_{group}")
    use = np.isnan(sd) & np.isfinite(low) & np.isfinite(high)
    if use.any():
        sd = np.where(use, cv.sd_from_ci(low, high, n), sd)
        mean = np.where(use & np.isnan(mean), (low + high) / 2, mean)
        conversion[use] = "CI→SD"

    missing = np.isnan(sd) & np.isnan(mean)
    if missing.any():
        fivenum = [_col(rows, f"{stat}_{group}") for stat in ("median", "q1", "q3", "min", "max")]
        m5, s5, skew5 = cv.mean_sd_from_fivenum(n, *fivenum)
        use = missing & np.isfinite(m5) & np.isfinite(s5)
        mean, sd = np.where(use, m5, mean), np.where(use, s5, sd)
        conversion[use] = "median→mean,SD (Luo 2018; Wan 2014/Shi 2020)"
        skewed |= use & skew5
    return n, mean, sd, conversion, skewed


def _join(*labels):
    """Per row, its non-empty labels joined with "; " (each once); joined only where a row has one (most have none)."""
    joined = [""] * len(labels[0])
    for i in np.flatnonzero(np.logical_or.reduce([np.asarray(label) != "" for label in labels])):
        joined[i] = "; ".join(dict.fromkeys(label[i] for label in labels if label[i]))
    return np.array(joined)


class _Rows:
    """Accumulates, row by row, the first input form that applies."""

    def __init__(self, rows):
        self.n = len(rows)
        self.pending = np.ones(self.n, dtype=bool)
        self.yi = np.full(self.n, np.nan)
        self.vi = np.full(self.n, np.nan)
        self.form = np.full(self.n, "", dtype=object)
        self.conversion = np.full(self.n, "", dtype=object)
        self.reason = np.full(self.n, "", dtype=object)
        self.checks = defaultdict(list)  # row -> its checks (most rows have none)
        self.no_estimate = np.zeros(self.n, dtype=bool)  # pooled by its table (rma.mh, rma.peto), no yi of its own

    def take(self, mask, yi, vi, form, conversion="", reason=""):
        mask = mask & self.pending
        self.yi = np.where(mask, yi, self.yi)
        self.vi = np.where(mask, vi, self.vi)
        for target, value in ((self.form, form), (self.conversion, conversion), (self.reason, reason)):
            target[mask] = value[mask] if isinstance(value, np.ndarray) else value
        self.pending &= ~mask

    def flag(self, mask, text):
        """Note ``text`` (a :data:`~metarepro.quality.NOTE` rule's message) in the ``checks`` of the ``mask`` rows."""
        for i in np.flatnonzero(mask):
            self.checks[i].append(text)


def _summary_form(rows, settings, acc, summaries):
    (n1, m1, sd1, conv1, skew1), (n2, m2, sd2, conv2, skew2) = summaries
    have = np.isfinite(n1) & np.isfinite(n2) & np.isfinite(sd1) & np.isfinite(sd2)
    if settings.measure != "VR":  # lnVR compares the SDs alone
        have &= np.isfinite(m1) & np.isfinite(m2)
    reason = np.full(len(rows), "", dtype=object)
    reason[(sd1 == 0) | (sd2 == 0)] = "an SD is 0, so the sampling variance is undefined; check the source"
    for n, column in ((n1, "n_cases"), (n2, "n_controls")):
        reason[n < 2] = f"{column} is below 2: a group of one has no SD, so the row cannot be pooled; check the source"
    with np.errstate(over="ignore", invalid="ignore"):
        # squares of means and SDs enter every variance below; beyond float range g would come out 0
        overflow = ~np.isfinite(n1 * (np.nan_to_num(m1) ** 2 + sd1**2) + n2 * (np.nan_to_num(m2) ** 2 + sd2**2))
    reason[have & overflow] = "means or SDs too large to compute with (overflow); check the unit and decimal mark"
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        if settings.measure == "SMD":
            reason[(n1 + n2) <= 2] = "n_cases + n_controls must exceed 2 for an SMD"
            d = (m1 - m2) / es.pooled_sd(n1, sd1, n2, sd2)
            yi, vi = es.smd_from_d(d, n1, n2, settings.vtype)
        elif settings.measure == "MD":
            factor = _unit_factors(rows, settings, have, reason)
            yi, vi = es.md(n1, m1 * factor, sd1 * factor, n2, m2 * factor, sd2 * factor)
        else:  # ROM, CVR, VR: logs of ratios, as metafor's escalc computes them
            if settings.measure in LOG_OF_MEANS:
                why = LOG_OF_MEANS[settings.measure]
                reason[(m1 <= 0) | (m2 <= 0)] = f"{settings.measure} needs both means > 0 ({why})"
            yi, vi = es.escalc(settings.measure, n1i=n1, m1i=m1, sd1i=sd1, n2i=n2, m2i=m2, sd2i=sd2)
        low, high = RULE["sem_as_sd"].threshold, RULE["skewed_sd"].threshold
        cv_low = (sd1 / np.abs(m1) < low) | (sd2 / np.abs(m2) < low)
        cv_high = ((m1 > 0) & (sd1 > high * m1)) | ((m2 > 0) & (sd2 > high * m2))
    acc.take(have, yi, vi, "summary", _join(conv1, conv2), reason)
    acc.flag(have & cv_low, RULE["sem_as_sd"].say())
    acc.flag(have & cv_high, RULE["skewed_sd"].say())
    acc.flag(have & (skew1 | skew2), RULE["skewed_quartiles"].say())


def _unit_factors(rows, settings, have, reason):
    """Factors that put every row of an MD analysis into one unit; NaN (with a reason) where impossible.

    The analysis unit is ``settings.unit``, else the most common unit among the rows. A sheet that
    states no units at all is taken as one unit (nothing to convert).
    """
    units = np.array([cv.normalize_unit(u) for u in _text(rows, "unit")])
    stated = [u for u in units[have] if u]
    if settings.unit is None and not stated:
        rows.attrs["analysis_unit"] = None
        return np.ones(len(rows))
    target = cv.normalize_unit(settings.unit) if settings.unit else max(sorted(set(stated)), key=stated.count)
    spelled = {cv.normalize_unit(u): u for u in _text(rows, "unit")[::-1]}  # as the sheet writes it
    rows.attrs["analysis_unit"] = settings.unit or spelled.get(target, target)
    factor = np.array([1.0 if u == target else cv.unit_factor(u, target) for u in units])
    reason[units == ""] = f"no unit given; MD pools raw differences in {target}, so state the row's unit"
    bad = (units != "") & np.isnan(factor)
    reason[bad] = [f"unit '{u}' cannot be converted to {target}" for u in units[bad]]
    return factor


def _statistic_forms(rows, settings, acc):
    """g from a reported t, d, z or F (with a direction), p (with a direction) or point-biserial r: each form computed
    only where some pending row gives it (at 10⁶ rows of means and SDs, none does)."""
    n1, n2 = _col(rows, "n_cases"), _col(rows, "n_controls")
    have_groups = np.isfinite(n1) & np.isfinite(n2)
    t, d, p = _col(rows, "t"), _col(rows, "d"), _col(rows, "p")
    z, f, r, n = _col(rows, "z"), _col(rows, "F"), _col(rows, "r"), _col(rows, "n")
    if not acc.pending.any() or not np.isfinite(np.concatenate([t, d, p, z, f, r])).any():
        return
    acc.take(have_groups & np.isfinite(t), *es.smd_from_d(cv.d_from_t(t, n1, n2), n1, n2, settings.vtype), "t", "t→d")
    direction = _text(rows, "direction")
    sign = np.select([direction == "cases_higher", direction == "cases_lower"], [1.0, -1.0], np.nan)
    acc.take(have_groups & np.isfinite(d), *es.smd_from_d(d, n1, n2, settings.vtype), "d", "Cohen's d→g")
    for name, t, label in (("z", cv.t_from_z(z, sign), "z as t→d"), ("F", cv.t_from_f(f, sign), "√F as t→d")):
        use = have_groups & np.isfinite(_col(rows, name)) & np.isfinite(sign)
        acc.take(use, *es.smd_from_d(cv.d_from_t(t, n1, n2), n1, n2, settings.vtype), f"{name}+direction", label)
    with np.errstate(invalid="ignore"):
        d = cv.d_from_t(cv.t_from_p(p, sign, n1, n2), n1, n2)
    use = have_groups & np.isfinite(p) & np.isfinite(sign)
    acc.take(use, *es.smd_from_d(d, n1, n2, settings.vtype), "p+direction", "two-sided p→t→d")
    equal = ~have_groups & np.isfinite(n)
    n1r, n2r = np.where(equal, n / 2, n1), np.where(equal, n / 2, n2)
    with np.errstate(invalid="ignore", divide="ignore"):
        d = cv.d_from_point_biserial(r, n1r, n2r)
    label = np.where(equal, "point-biserial r→d (equal groups assumed)", "point-biserial r→d")
    use = np.isfinite(r) & np.isfinite(n1r) & np.isfinite(n2r)
    acc.take(use, *es.smd_from_d(d, n1r, n2r, settings.vtype), "r", label, np.where(np.abs(r) >= 1, "|r| ≥ 1", ""))


def _correlation_form(rows, acc):
    r, n = _col(rows, "r"), _col(rows, "n")
    reason = np.full(len(rows), "", dtype=object)
    reason[np.abs(r) >= 1] = "r must lie strictly between -1 and 1"
    reason[n <= 3] = "ZCOR needs n > 3 (variance 1/(n - 3))"
    with np.errstate(invalid="ignore", divide="ignore"):
        yi, vi = es.zcor(r, n)
    acc.take(np.isfinite(r) & np.isfinite(n), yi, vi, "r+n", "", reason)


def _precomputed_form(rows, settings, acc):
    yi, vi, sei = _col(rows, "yi"), _col(rows, "vi"), _col(rows, "sei")
    low, high = _col(rows, "ci_low"), _col(rows, "ci_high")
    form = np.where(np.isfinite(vi), "yi+vi", np.where(np.isfinite(sei), "yi+sei", "yi+ci"))
    vi = np.where(np.isfinite(vi), vi, np.where(np.isfinite(sei), sei**2, es.vi_from_ci(low, high)))
    reason = np.full(len(rows), "", dtype=object)
    reason[np.isnan(vi)] = "yi is given without vi, sei or a 95% CI (ci_low, ci_high); add one"
    reason[vi == 0] = "the sampling variance (vi, sei or CI width) is 0; check the source"
    stated = _text(rows, "measure")
    wrong = (stated != "") & (stated != settings.measure)
    reason[wrong] = [f"yi is a {m}, but this analysis pools {settings.measure}" for m in stated[wrong]]
    acc.take(np.isfinite(yi), yi, vi, form, "", reason)


def _needed_for(measure):
    if measure in ("MD", "ROM", "CVR"):
        return "both groups' n with mean and SD/SEM/CI (or median with IQR/range), or a precomputed yi"
    if measure == "VR":
        return "both groups' n with SD (or SEM/CI/IQR/range), or a precomputed yi"
    if measure == "SMD":
        return "both groups' n with mean and SD/SEM/CI (or median with IQR/range), t, d, z/F/p with direction, r, or yi"
    if measure == "ZCOR":
        return "r and n, or a precomputed yi with vi/sei/CI"
    if measure in TABLE_MEASURES:
        return "events_cases and events_controls with n_cases and n_controls (or nonevents_cases, nonevents_controls)"
    if measure in PROPORTION_MEASURES:
        return "events and n"
    return "a precomputed yi with vi, sei or a 95% CI"


def _explain_incomplete(rows, settings, acc):
    """The reason of a row that no input form could use, naming the empty cells or missing columns of
    the closest form (the group summaries when the row gives any of them)."""
    needed = f"{settings.measure} needs {_needed_for(settings.measure)}"
    aside = [name for name, theirs in (rows.attrs.get("mapping") or {}).items() if theirs is None]
    if aside:  # the forms those columns would give are not available: say so rather than ask for them
        needed += f"; the config sets aside this sheet's {', '.join(aside)} (columns: {{name: null}})"
    forms = {**dict.fromkeys(("SMD", "MD", "ROM", "CVR"), SUMMARY), "VR": ("n_cases", "sd_cases", "n_controls",
             "sd_controls"), "ZCOR": ("r", "n"), "GEN": ("yi",),
             **dict.fromkeys(TABLE_MEASURES, binary.TABLE_COLUMNS),
             **dict.fromkeys(PROPORTION_MEASURES, binary.PROPORTION_COLUMNS)}  # fmt: skip
    wanted = forms.get(settings.measure, ("yi",))
    given = rows.attrs.get("columns")
    absent = [c for c in wanted if given is not None and c not in given]
    filled = np.column_stack([np.isfinite(_col(rows, c)) for c in wanted])
    for i in np.flatnonzero(acc.pending):
        empty = [c for c, ok in zip(wanted, filled[i], strict=True) if not ok and c not in absent]
        parts = []
        if absent:
            parts.append(f"the sheet has no column {', '.join(absent)}")
        if empty and filled[i].any():
            parts.append(f"{', '.join(empty)} {'is' if len(empty) == 1 else 'are'} empty")
        acc.reason[i] = f"incomplete: {'; '.join(parts) + ' (' + needed + ')' if parts else needed}"


def _exclude(rows, acc):
    """Exclude the rows an exclusion rule of :mod:`metarepro.quality` trips (numbers that contradict each other or
    that no data could produce), naming the numbers; over any reason an input form gave, the first rule's kept."""
    excluded = np.zeros(len(rows), dtype=bool)
    for rule, found in quality.exclusions(rows):
        for i in np.flatnonzero((found != "") & ~excluded):
            acc.reason[i] = rule.say(numbers=found[i])
            acc.pending[i] = False
            excluded[i] = True


def compute_effects(rows: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """Effect size and variance of every selected row, or the reason it cannot be used."""
    if quality.SEM_PROOF_COLUMN not in rows:  # run_analysis proves over the whole sheet; a notebook's rows, here
        rows = rows.assign(**{quality.SEM_PROOF_COLUMN: quality.sem_proof(rows)})
    acc = _Rows(rows)
    summaries = tuple(_group_summary(rows, group) for group in GROUPS)  # read by the effect sizes and the rules
    if settings.measure in es.GROUP_MEASURES:
        _summary_form(rows, settings, acc, summaries)
    if settings.measure == "ZCOR":
        _correlation_form(rows, acc)
    if settings.binary:
        binary.count_form(rows, settings, acc)
    if settings.measure == "SMD":
        _statistic_forms(rows, settings, acc)
    _precomputed_form(rows, settings, acc)
    _explain_incomplete(rows, settings, acc)

    n1, n2 = _col(rows, "n_cases"), _col(rows, "n_controls")
    repeated = quality.identical_numbers(rows)
    for i in np.flatnonzero(repeated != ""):
        acc.checks[i].append(RULE["identical_numbers"].say(lines=repeated[i]))
    # the notes that repeat two flags in ``checks``, on the rows the flags' own checks trip
    acc.flag(quality.not_double_checked(_text(rows, "verification")) != "", RULE["unverified"].say())
    acc.flag(_text(rows, "eligibility_second_pass") == "unclear", RULE["unclear_eligibility"].say())
    if settings.measure == "SMD":
        acc.flag(np.abs(acc.yi) > RULE["large_smd"].threshold, RULE["large_smd"].say())

    _exclude(rows, acc)
    ok = acc.reason == ""
    bad = ok & ~(np.isfinite(acc.yi) & np.isfinite(acc.vi) & (acc.vi > 0)) & ~acc.no_estimate
    acc.reason[bad] = "the effect size or its variance is not finite; check the row's numbers"
    acc.flag(ok & acc.no_estimate, binary.NO_ESTIMATE)
    if settings.exclude_converted:
        converted = (acc.reason == "") & (acc.conversion != "")
        acc.reason[converted] = "converted row; this analysis uses reported means and SDs only"
    if settings.dependence is None:
        _exclude_repeated_samples(rows, acc)
    else:
        _explain_dependence(rows, settings.dependence, acc)

    out = pd.DataFrame(
        {
            "line": rows[LINE].to_numpy(),
            "study_id": rows["study_id"].to_numpy(),
            "study": rows["study"].to_numpy(),
            "n_cases": n1,
            "n_controls": n2,
            "input": acc.form,
            "conversion": acc.conversion,
            "yi": acc.yi,
            "vi": acc.vi,
            "reason": acc.reason,
            "checks": ["; ".join(acc.checks[i]) if i in acc.checks else "" for i in range(acc.n)],
        }
    )
    out["included"] = out["reason"] == ""
    out.loc[~out["included"], ["yi", "vi"]] = np.nan
    out["sei"] = np.sqrt(out["vi"])
    crit = dist.norm_ppf(0.5 + settings.level / 200)
    out["ci_low"] = out["yi"] - crit * out["sei"]
    out["ci_high"] = out["yi"] + crit * out["sei"]
    out["weight"] = np.nan
    out = out[list(EFFECT_COLUMNS)]
    if settings.dependence is not None:  # the grouping columns the model reads, for the forest plot and aggregation
        for column in settings.dependence.columns:
            if column not in out:
                out[column] = _text(rows, column)
    out["flags"] = _quality_flags(rows, settings, acc.yi, summaries)
    if settings.binary:  # the counts, for the forest plot's columns and the MH/Peto/GLMM fits
        for name, values in binary.count_columns(rows, settings).items():
            out[name] = values
    out.attrs["unit"] = rows.attrs.get("analysis_unit", settings.unit)
    return out


def _quality_flags(rows, settings, yi, summaries):
    """The pre-specified rules of :mod:`metarepro.quality` (data/raw/README.md); g as the row's SMD.
    ``summaries``: each group's :func:`_group_summary`."""
    (n1, m1, sd1, *_), (n2, m2, sd2, *_) = summaries
    g = yi if settings.measure == "SMD" else quality.hedges_g(n1, m1, sd1, n2, m2, sd2)
    reported = np.isfinite(_col(rows, "sd_cases")) & np.isfinite(_col(rows, "sd_controls")) & (_sem_proof(rows) == "")
    return quality.flag_rows(rows, (n1, m1, sd1), (n2, m2, sd2), g, reported).text


def _exclude_repeated_samples(rows, acc):
    free = np.flatnonzero(acc.reason == "")  # rows not excluded yet
    sids = pd.Series(rows["study_id"].to_numpy(dtype=object)[free])
    repeated = sids.duplicated().to_numpy()
    if not repeated.any():
        return
    first = sids.duplicated(keep=False).to_numpy() & ~repeated  # the first row of each repeated study_id
    sids = sids.to_numpy()
    first_line = dict(zip(sids[first], rows[LINE].to_numpy()[free][first], strict=True))
    for i, sid in zip(free[repeated], sids[repeated], strict=True):
        acc.reason[i] = (
            f"study_id {sid} already contributes line {first_line[sid]}; pool one row per independent sample "
            "(narrow 'where' or give distinct samples distinct study_ids)"
        )


def _explain_dependence(rows, dependence: Dependence, acc):
    """Rows a dependent model cannot place: an empty grouping cell, or no group sizes for shared controls."""
    for column in dependence.columns:
        empty = (_text(rows, column) == "") & (acc.reason == "")
        acc.reason[empty] = (f"'{column}' is empty, but the dependence model groups rows by it; fill it (each "
                             "independent sample its own value)")  # fmt: skip
    if dependence.shared_controls:
        sizes = np.isfinite(_col(rows, "n_cases")) & np.isfinite(_col(rows, "n_controls"))
        acc.reason[~sizes & (acc.reason == "")] = (
            "shared_controls needs n_cases and n_controls (the covariance of effects sharing a control group "
            "depends on the group sizes); add them or leave shared_controls out")  # fmt: skip


def fit_analysis(effects: pd.DataFrame, settings: Settings, control: Control | None = None):
    """Primary fit of the included rows; fills ``effects['weight']`` (percent) in place. An :class:`RmaResult`, or
    for ``fit`` rma.mh, rma.peto or rma.glmm a :class:`metarepro.pipeline.binary.CountsFit`."""
    used = effects["included"].to_numpy()
    if not used.any():
        raise ValueError("no row of this analysis can be used; see the 'reason' of each row")
    if settings.fit != "rma":
        fit = binary.fit_counts(effects, settings)
    else:
        fit = rma(effects.loc[used, "yi"], effects.loc[used, "vi"], settings.method, settings.test, settings.level,
                  control)  # fmt: skip
    effects.loc[used, "weight"] = fit.weights
    return fit


def with_estimate(effects: pd.DataFrame) -> np.ndarray:
    """The included rows that have a yi of their own (all of them, but for the double-zero tables an MH or Peto
    fit pools without one): the rows an inverse-variance refit, a funnel plot or a test can use."""
    return effects["included"].to_numpy(dtype=bool) & np.isfinite(effects["yi"].to_numpy(dtype=float))


def estimator_table(effects: pd.DataFrame, settings: Settings, control: Control | None = None,
                    fitted: RmaResult | None = None) -> pd.DataFrame:  # fmt: skip
    """Every estimator × both tests on the same rows: how much does the choice matter? Each estimator is fitted once,
    both tests derived from that fit (τ² does not depend on the test). ``fitted``: the primary fit of these rows
    (:func:`fit_analysis`, same ``control``), whose record is then the one of its method and test."""
    used = with_estimate(effects)
    yi = effects.loc[used, "yi"].to_numpy()[None, :]
    vi = effects.loc[used, "vi"].to_numpy()[None, :]
    records = []
    for method in METHODS:
        fits = rma_batch_tests(yi, vi, method, TESTS, settings.level, control)
        for test in TESTS:
            primary = isinstance(fitted, RmaResult) and (fitted.method, fitted.test) == (method, test)
            records.append(pooled_record(fitted if primary else fits[test][0], settings, effects.attrs.get("unit"),
                                         pooled_ni(effects, settings)))  # fmt: skip
    return pd.DataFrame.from_records(records)


def pooled_ni(effects, settings):
    """The sample sizes of the pooled rows, for the harmonic-mean back-transformation of PFT (else None)."""
    return effects.loc[with_estimate(effects), "n"].to_numpy(dtype=float) if settings.measure == "PFT" else None


# the suffix of the back-transformed fields of pooled.json per measure (metafor's transf: exp, tanh, ilogit, ...)
BACK_SUFFIX = {"ZCOR": "r", **dict.fromkeys(("ROM", "OR", "RR", "PETO", "VR", "CVR"), "ratio"),
               **dict.fromkeys(("PLN", "PLO", "PAS", "PFT"), "prop")}  # fmt: skip


def pooled_record(fit, settings: Settings, unit: str | None = None, ni=None) -> dict:
    """The fields of ``pooled.json``; back-transformed estimate and CIs for ratios (ROM, OR, RR, PETO: ``*_ratio``),
    ZCOR (r: ``*_r``) and transformed proportions (PLN, PLO, PAS, PFT: ``*_prop``; PFT with the harmonic mean of
    the rows' ``ni``, metafor's transf.ipft.hm)."""
    return pooled_fields(fit.to_dict(), settings, unit, ni)


def pooled_fields(record: dict, settings: Settings, unit: str | None = None, ni=None) -> dict:
    """:func:`pooled_record` from a fit's fields (``k``, ``estimate``, CIs, ...) in ``to_dict()`` form."""
    record = dict(record)
    record = {
        "k": record.pop("k"),
        "measure": settings.measure,
        "preset": settings.preset,
        "vtype": settings.vtype if settings.measure == "SMD" else None,
        "unit": unit if settings.measure == "MD" else None,
        **record,
    }
    if settings.binary:  # how the counts were pooled, with the zero-cell handling used
        record["fit"] = settings.fit + (f" ({settings.model})" if settings.fit == "rma.glmm" and
                                        settings.measure == "OR" else "")  # fmt: skip
        record["zero_cells"] = {k: list(v) if isinstance(v, tuple) else v for k, v in settings.zero_cells().items()}
    suffix = BACK_SUFFIX.get(settings.measure, "r")
    for name in ("estimate", "ci_low", "ci_high", "pi_low", "pi_high"):
        if settings.measure == "PFT" and ni is None:
            raise ValueError("PFT estimates are back-transformed with the studies' sample sizes: give ni")
        back = None if record[name] is None else es.transform_back(settings.measure, record[name], ni=ni)
        if back is not None:
            record[f"{name}_{suffix}"] = float(back)
    return record
