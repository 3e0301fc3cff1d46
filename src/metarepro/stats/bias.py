"""Small-study effects and publication bias: metafor's ``regtest``, ``ranktest``, ``trimfill`` and ``fsn``, plus
PET-PEESE and the Cochrane low-power caveat.

Defaults follow metafor 3.8-1 (shared/reference/metafor_internals.md §9): ``method="REML"``, ``test="z"``,
``level=95``; ``control=None`` means :class:`~metarepro.stats.tau2.Control` (tight convergence). The mixed-effects
Egger test and trim-and-fill's side choice need a meta-regression, :func:`metarepro.stats.metareg.rma_mods`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from metarepro._core import dist
from metarepro._core.batch import Batch, kernel
from metarepro._core.limits import BEGG_EXACT_MAX_K
from metarepro._core.printing import Printable
from metarepro._core.spellings import metafor_spellings
from metarepro.stats.rma import RmaResult, check_options, fit_tau2, rma
from metarepro.stats.tau2 import Control

PREDICTORS = ("sei", "vi", "ni", "ninv", "sqrtni", "sqrtninv")  # metafor regtest's; the n-based ones need ni
_LIMIT_PREDICTORS = ("sei", "vi", "ninv", "sqrtninv")  # the intercept is the estimate at se = 0 (n → ∞)
LOW_POWER_K = 10
LOW_POWER_NOTE = (
    "Tests for funnel plot asymmetry should be used only when there are at least 10 studies in the "
    "meta-analysis: with fewer studies the power of the tests is too low to distinguish chance from real "
    "asymmetry (Cochrane Handbook for Systematic Reviews of Interventions, section 13.3.5.4)."
)


def _as_1d(yi, vi, min_k):
    yi, vi = np.asarray(yi, dtype=float), np.asarray(vi, dtype=float)
    if yi.ndim != 1 or yi.shape != vi.shape:
        raise ValueError("yi and vi must be 1-D arrays of the same length")
    if not (np.isfinite(yi).all() and np.isfinite(vi).all()):
        raise ValueError("yi and vi must be finite; drop incomplete rows first")
    if np.any(vi <= 0):
        raise ValueError("every sampling variance vi must be > 0")
    if yi.size < min_k:
        raise ValueError(f"this test needs at least {min_k} studies, got {yi.size}")
    return yi, vi


def _model(yi, vi, method, test, level, control):
    """(yi, vi, fit or None, method, test, level, control): from a fit of :func:`~metarepro.stats.rma.rma`
    (metafor's way: the fit's data and settings), or from the arrays and settings as given."""
    if isinstance(yi, RmaResult):
        fit = yi
        return (*fit._data(), fit, fit.method, fit.test, fit.level, fit.control)
    return yi, vi, None, method, test, level, control


# The Handbook's caveat for 2×2 tables: the standard error of a log odds ratio depends on the log odds ratio itself
# (and on the event risk), so Egger's test of y on its SE can find asymmetry that is not there.
ODDS_RATIO_NOTE = (
    "With odds ratios, Egger's test and the funnel plot can show asymmetry that is not there: the standard error of a "
    "log odds ratio is correlated with the log odds ratio, so the tests are biased toward false positives, most when "
    "the odds ratio is large, events are few or the studies are of similar size. Harbord's test (2006) is not "
    "computed here; a regression on 1/n as in Peters' test (2006) is, with the config's regtest_predictor: ninv "
    "(Cochrane Handbook for Systematic Reviews of Interventions 5.1, section 10.4.3.1; Sterne et al. 2011, BMJ "
    "343:d4002)."
)


def odds_ratio_note(measure):
    """The Cochrane Handbook's caveat (:data:`ODDS_RATIO_NOTE`) for odds ratios (OR, PETO), else None."""
    return ODDS_RATIO_NOTE if measure in ("OR", "PETO") else None


def low_power_note(k, threshold=LOW_POWER_K):
    """The Cochrane Handbook (ch. 13.3.5.4) warning when k < ``threshold`` (default 10), else None."""
    return LOW_POWER_NOTE if k < threshold else None


# ---------------------------------------------------------------------------------------------------------
# Egger-type regression test
# ---------------------------------------------------------------------------------------------------------


@dataclass(repr=False)  # printing.Printable gives the metafor-like repr
class Regtest(Printable):
    """metafor ``regtest``: the test of the predictor's coefficient and the limit estimate (the intercept).

    ``zval``/``pval``: statistic and two-sided p of the predictor (a t statistic on ``dfs`` df for
    ``model="lm"`` and for ``test="knha"``; ``dfs`` is NaN for z tests). ``estimate``/``ci_low``/``ci_high``:
    the intercept (the effect of a study with se = 0, i.e. PET for ``predictor="sei"``, PEESE for ``"vi"``)
    and its CI. ``beta``/``se``: both coefficients. ``intercept_zval``/``intercept_pval``: the intercept's
    test (used by PET-PEESE). ``tau2``: residual τ² (NaN for ``lm``). ``fit``: the meta-regression
    (``model="rma"``) or None.
    """

    model: str
    predictor: str
    zval: float
    pval: float
    dfs: float
    estimate: float
    ci_low: float
    ci_high: float
    beta: np.ndarray
    se: np.ndarray
    intercept_zval: float
    intercept_pval: float
    tau2: float
    fit: object = None


def _egger_lm(yi, vi, x, predictor, level):
    """Classic Egger: R's ``lm(yi ~ x, weights = 1/vi)``, weighted least squares with an estimated dispersion.

    Closed form of the 2×2 normal equations, written with weighted-centred sums for accuracy:
    β₁ = Sxy/Sxx, β₀ = ȳ_w − β₁x̄_w, σ̂² = Σw·r²/(k−2), Var β₁ = σ̂²/Sxx, Var β₀ = σ̂²(1/Σw + x̄_w²/Sxx).
    """
    k = yi.size
    w = 1 / vi
    sw = w.sum()
    xbar, ybar = (w * x).sum() / sw, (w * yi).sum() / sw
    sxx = (w * (x - xbar) ** 2).sum()
    b1 = (w * (x - xbar) * (yi - ybar)).sum() / sxx
    b0 = ybar - b1 * xbar
    df = k - 2
    sigma2 = (w * (yi - b0 - b1 * x) ** 2).sum() / df
    se = np.sqrt(sigma2 * np.array([1 / sw + xbar**2 / sxx, 1 / sxx]))
    beta = np.array([b0, b1])
    tval = beta / se
    pval = 2 * dist.t_sf(np.abs(tval), df)
    crit = dist.t_ppf(0.5 + level / 200, df)
    return Regtest(
        "lm", predictor, tval[1], pval[1], float(df), b0, b0 - crit * se[0], b0 + crit * se[0],
        beta, se, tval[0], pval[0], np.nan, None,
    )  # fmt: skip


def regtest(yi, vi=None, model="rma", predictor="sei", method="REML", test="z", level=95,
            control: Control | None = None, ni=None) -> Regtest:  # fmt: skip
    """Egger's regression test for funnel-plot asymmetry (metafor ``regtest(rma(yi, vi, ...), model=...)``); ``yi``
    may be that fit itself (``regtest(fit)``, as metafor: its data, τ² method, test and level).

    ``model="rma"`` (metafor's default): the mixed-effects meta-regression yi ~ 1 + predictor with the
    model's τ² ``method`` and ``test``. ``model="lm"``: the classic test, weighted least squares with weights
    1/vi and a multiplicative dispersion, t test on k−2 df (what meta's ``metabias`` reports).
    ``predictor``: ``"sei"`` (√vi, default) or ``"vi"``; or, with the studies' sample sizes ``ni`` (for 2×2
    tables n1i + n2i, as escalc attaches them), ``"ni"``, ``"ninv"`` (1/ni), ``"sqrtni"`` or ``"sqrtninv"``, as
    metafor. ``model="lm", predictor="ninv"`` regresses yi on 1/n with weights 1/vi: the idea of Peters et al.'s
    (2006) test, whose weights differ (Peters weights by the binomial information of the pooled risk), so it is not
    that test exactly. The limit estimate (intercept) exists for sei, vi, ninv, sqrtninv (NaN for ni, sqrtni, as
    metafor gives none).
    """
    if model not in ("rma", "lm"):
        raise ValueError(f"model must be 'rma' or 'lm', not {model!r}")
    if predictor not in PREDICTORS:
        raise ValueError(f"predictor must be one of {PREDICTORS}, not {predictor!r}")
    yi, vi, _, method, test, level, control = _model(yi, vi, method, test, level, control)
    yi, vi = _as_1d(yi, vi, 3)
    if predictor in ("sei", "vi"):
        x = np.sqrt(vi) if predictor == "sei" else vi
    else:
        if ni is None:
            raise ValueError(f"predictor {predictor!r} needs the studies' sample sizes: give ni")
        n = np.asarray(ni, dtype=float).ravel()
        if n.shape != yi.shape or not (np.isfinite(n).all() and (n > 0).all()):
            raise ValueError(f"ni must hold one positive sample size per study ({yi.size}), got {n.size} values")
        x = {"ni": n, "ninv": 1 / n, "sqrtni": np.sqrt(n), "sqrtninv": 1 / np.sqrt(n)}[predictor]
    if np.ptp(x) == 0:
        same = "all vi equal" if predictor in ("sei", "vi") else f"all ni equal, predictor {predictor}"
        raise ValueError(f"the predictor is constant ({same}), so its coefficient is not estimable")
    if model == "lm":
        return _limit(_egger_lm(yi, vi, x, predictor, level))
    from metarepro.stats.metareg import rma_mods  # a separate module; imported late so the rest works without it

    fit = rma_mods(yi, vi, np.column_stack([np.ones_like(x), x]), method=method, test=test, level=level,
                   control=control)  # fmt: skip
    beta, se = np.asarray(fit.beta, dtype=float), np.asarray(fit.se, dtype=float)
    zval, pval = np.asarray(fit.zval, dtype=float), np.asarray(fit.pval, dtype=float)
    dfs = float(yi.size - 2) if test != "z" else np.nan
    return _limit(Regtest(
        "rma", predictor, zval[1], pval[1], dfs, beta[0], float(np.asarray(fit.ci_lb)[0]),
        float(np.asarray(fit.ci_ub)[0]), beta, se, zval[0], pval[0], float(fit.tau2), fit,
    ))  # fmt: skip


def _limit(result: Regtest) -> Regtest:
    """No limit estimate for the predictors ni and sqrtni (the intercept is a study of size 0), as metafor."""
    if result.predictor in _LIMIT_PREDICTORS:
        return result
    result.estimate = result.ci_low = result.ci_high = np.nan
    return result


@dataclass
class PetPeese:
    """PET, PEESE and the conditional choice between them.

    ``pet``: regtest with predictor sei; ``peese``: predictor vi. ``use_peese`` is True when PET's intercept
    differs from 0 at two-sided ``alpha`` (its p < alpha), the conditional rule of Stanley & Doucouliagos
    (2014) applied as a two-sided test; ``estimate``/``ci_low``/``ci_high`` are then PEESE's limit
    estimate, otherwise PET's.
    """

    pet: Regtest
    peese: Regtest
    use_peese: bool
    alpha: float
    estimate: float
    ci_low: float
    ci_high: float


def pet_peese(yi, vi, model="rma", method="REML", test="z", level=95, control: Control | None = None,
              alpha=0.05, pet: Regtest | None = None) -> PetPeese:  # fmt: skip
    """PET-PEESE: the limit estimates of Egger-type regressions on se (PET) and on the variance (PEESE).

    ``model``: ``"rma"`` (default, as regtest; the meta-regression with the model's τ² method and test)
    or ``"lm"`` (weighted least squares with multiplicative dispersion, Stanley & Doucouliagos's version).
    Rule: PEESE is used if PET's intercept test gives a **two-sided** p < ``alpha`` (default 0.05).
    ``pet``: PET when the caller has it (``regtest(yi, vi, model, "sei", method, test, level, control)``, the
    Egger test); else fitted here.
    """
    pet = regtest(yi, vi, model, "sei", method, test, level, control) if pet is None else pet
    peese = regtest(yi, vi, model, "vi", method, test, level, control)
    use_peese = bool(pet.intercept_pval < alpha)
    chosen = peese if use_peese else pet
    return PetPeese(pet, peese, use_peese, alpha, chosen.estimate, chosen.ci_low, chosen.ci_high)


# ---------------------------------------------------------------------------------------------------------
# Begg and Mazumdar rank correlation test
# ---------------------------------------------------------------------------------------------------------


@dataclass(repr=False)  # printing.Printable gives metafor's print.ranktest
class Ranktest(Printable):
    """metafor ``ranktest``: Kendall's τ between standardized effects and variances, and its two-sided p.

    ``exact``: whether the p value is from the exact null distribution (no ties) or the normal
    approximation with tie-corrected variance (R ``cor.test``, no continuity correction). ``method``: that
    choice in words, with its reason when the approximation is used.
    """

    tau: float
    pval: float
    exact: bool
    method: str = ""


def ranktest(yi, vi=None, exact=True, exact_max_k=BEGG_EXACT_MAX_K) -> Ranktest:
    """Begg & Mazumdar's test (metafor ``ranktest``): y*ᵢ = (yᵢ − θ̂_FE)/√(vᵢ − 1/Σw) against vᵢ; ``yi`` may be a
    fit of :func:`~metarepro.stats.rma.rma` (``ranktest(fit)``, as metafor: its data).

    As metafor 3.8-1 (which calls ``cor.test(..., exact = TRUE)``), the p value is exact when there are no
    ties; with ties R warns and uses the normal approximation, and so do we. The exact distribution costs
    O(k³) (1 s at k = 1,000, ~17 min at 10,000), so above ``exact_max_k`` studies (default
    :data:`metarepro._core.limits.BEGG_EXACT_MAX_K` = 170, where R's exact p becomes NA and so does metafor's) the
    normal approximation is used, as ``ranktest(..., exact = FALSE)``; ``exact=False`` asks for it at every k.
    ``method`` of the result says which.
    """
    yi, vi = _as_1d(*_model(yi, vi, None, None, None, None)[:2], 3)
    w = 1 / vi
    theta = (w * yi).sum() / w.sum()
    ystar = (yi - theta) / np.sqrt(vi - 1 / w.sum())
    ties = np.unique(ystar).size < ystar.size or np.unique(vi).size < vi.size
    too_large = yi.size > exact_max_k
    use_exact = bool(exact and not ties and not too_large)
    # scipy's tau-b and its asymptotic variance (with tie corrections) are R cor.test's formulas
    tau, pval = dist.kendalltau(ystar, vi, use_exact)
    if use_exact:
        method = "exact"
    else:
        why = ("asked for" if not exact else "ties" if ties else
               f"k = {yi.size} > {exact_max_k}: the exact distribution costs O(k³)")  # fmt: skip
        method = f"normal approximation ({why})"
    return Ranktest(float(tau), float(pval), use_exact, method)


# ---------------------------------------------------------------------------------------------------------
# Trim and fill
# ---------------------------------------------------------------------------------------------------------

ESTIMATORS = ("L0", "R0")


@dataclass(repr=False)
class Trimfill(Printable):
    """metafor ``trimfill``: the estimated number of missing studies and the fit to the filled data.

    ``k0``, ``se_k0`` (se of the estimator), ``p_k0`` (R0 only: the probability of k0 or more under H0,
    ½^(k0+1); NaN for L0), ``side`` ("left"/"right": where studies are missing), ``estimator``.
    ``yi``/``vi``: the observed studies in their original order followed by the k0 filled ones;
    ``fill`` marks the filled. ``fit``: the model fitted to ``yi``/``vi`` (the original fit when k0 = 0).
    ``iterations``: number of trim steps until k0 stopped changing.
    """

    estimator: str
    side: str
    k0: int
    se_k0: float
    p_k0: float
    yi: np.ndarray
    vi: np.ndarray
    fill: np.ndarray
    fit: RmaResult
    iterations: int


def _missing_side(yi, vi, method, control, fit=None):
    """metafor's rule: regress yi on √vi with the model's τ² method; a negative slope means studies are
    missing on the right (small studies show smaller effects), otherwise on the left. ``fit``: that regression,
    when the caller has it."""
    from metarepro.stats.metareg import rma_mods

    if fit is None:
        fit = rma_mods(yi, vi, np.column_stack([np.ones_like(yi), np.sqrt(vi)]), method=method, control=control)
    return "right" if np.asarray(fit.beta, dtype=float)[1] < 0 else "left"


@kernel(lambda centred, ranks: centred.size)
def _abs_ranks(centred, ranks):
    """Into ``ranks``, the rank (1 … k) of each |cᵢ|, ties by position, for ``centred`` in ascending order: the
    negative cᵢ read backwards and the others are two ascending runs, merged in one pass instead of sorted (trim
    and fill ranks 10⁶ studies at every step). Equal |cᵢ| of the negative run go in index order, before the others'
    (their indices are larger)."""
    k = centred.size
    m = 0
    while m < k and centred[m] < 0:
        m += 1
    rank, right, left = 1, m, m - 1
    while left >= 0:
        value = -centred[left]
        first = left  # the run of negatives equal to this one
        while first > 0 and -centred[first - 1] == value:
            first -= 1
        while right < k and centred[right] < value:
            ranks[right] = rank
            rank += 1
            right += 1
        for i in range(first, left + 1):
            ranks[i] = rank
            rank += 1
        left = first - 1
    while right < k:
        ranks[right] = rank
        rank += 1
        right += 1


def _k0_estimate(centred, estimator):
    """One trim step's estimate of k0 (unrounded) and its se, from the data centred at the current mean (in
    ascending order).

    Ranks of |cᵢ| break ties by position ("first", R's rank); cᵢ = 0 is neither positive nor negative.
    """
    k = centred.size
    ranks = np.empty(k)
    _abs_ranks(centred, ranks)
    if estimator == "R0":
        below = ranks[centred < 0]
        if below.size == 0:
            raise ValueError("R0: no study lies below the trimmed estimate, so the rightmost run is undefined")
        k0 = k - np.max(below) - 1
        return k0, np.sqrt(2 * max(0.0, k0) + 2)
    sr = ranks[centred > 0].sum()
    k0 = (4 * sr - k * (k + 1)) / (2 * k - 1)
    var_sr = (k * (k + 1) * (2 * k + 1) + 10 * k0**3 + 27 * k0**2 + 17 * k0 - 18 * k * k0**2 - 18 * k * k0
              + 6 * k**2 * k0) / 24  # fmt: skip
    return k0, 4 * np.sqrt(var_sr) / (2 * k - 1)


def trimfill(yi, vi=None, estimator="L0", side=None, method="REML", test="z", level=95, control: Control | None = None,
             maxiter=100, fit: RmaResult | None = None, side_fit=None) -> Trimfill:  # fmt: skip
    """Duval & Tweedie's trim and fill, as metafor ``trimfill.rma.uni`` (intercept-only model).

    ``side``: None (default) chooses as metafor (see ``_missing_side``). Working on the side where studies
    are missing as the right-hand side, the studies are sorted; from k0 = 0, the model (same τ² ``method``
    and ``control``) is fitted to the k − k0 smallest, all k are centred at its estimate, and k0 is
    re-estimated (``L0`` default, or ``R0``) and rounded half-to-even (R's ``round``), floored at 0, until it
    stops changing (at most ``maxiter`` steps, default 100, as metafor). The k0 most extreme studies are
    mirrored about the last trimmed estimate and the model is refitted to the k + k0 studies.

    ``yi`` may be the fit itself (``trimfill(fit)``, as metafor: its data and settings). ``test``/``level`` apply
    to the reported fit. Note that metafor 3.8-1 refits the filled data with its default ``test="z"`` whatever the
    model's test (it returns the original model when k0 = 0); to reproduce ``trimfill(rma(..., test="knha"))`` with
    k0 > 0, pass ``test="z"``.

    Fits the caller already has are not refitted: the model (``yi`` as a fit, or ``fit``, i.e. ``rma(yi, vi,
    method, test, level, control)``) is the result's fit when k0 = 0; ``side_fit``, the regression of yi on √vi
    with ``method`` (e.g. the Egger test's, ``regtest(yi, vi, method=method).fit``: the slope does not depend on
    test or level), gives the side when ``side`` is None.
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {ESTIMATORS}, not {estimator!r}")
    if side not in (None, "left", "right"):
        raise ValueError(f"side must be None, 'left' or 'right', not {side!r}")
    yi, vi, given, method, test, level, control = _model(yi, vi, method, test, level, control)
    yi, vi = _as_1d(yi, vi, 3)
    control = control or Control()
    method, level = metafor_spellings(method, level)
    check_options(method, test, level)
    if side is None:
        side = _missing_side(yi, vi, method, control, side_fit)
    flip = -1.0 if side == "right" else 1.0
    work = flip * yi
    idx = np.argsort(work, kind="stable")  # R's sort(): stable
    ys, vs = work[idx], vi[idx]
    k = yi.size
    k0, previous, iterations = 0, -1, 0
    while k0 != previous:
        previous = k0
        iterations += 1
        if iterations > maxiter:
            raise RuntimeError(f"trim and fill did not converge in {maxiter} iterations")
        # only the estimate is used (rma_batch's, without its tests, intervals and weights)
        beta = fit_tau2(Batch.of_checked(ys[None, : k - k0], vs[None, : k - k0]), method, control)[2].mu[0]
        raw, se_k0 = _k0_estimate(ys - beta, estimator)
        k0 = int(max(0, np.rint(raw)))  # np.rint rounds half to even, as R's round()
        se_k0 = max(0.0, float(se_k0))
    if k0 > 0:
        filled = flip * (2 * beta - ys[k - k0 :])
        y_all = np.concatenate([yi, filled])
        v_all = np.concatenate([vi, vs[k - k0 :]])
    else:
        y_all, v_all = yi.copy(), vi.copy()
    given = fit if fit is not None else given
    fit = given if k0 == 0 and given is not None else rma(y_all, v_all, method, test, level, control)
    p_k0 = 0.5 ** (k0 + 1) if estimator == "R0" else np.nan
    fill = np.r_[np.zeros(k, bool), np.ones(k0, bool)]
    return Trimfill(estimator, side, k0, se_k0, p_k0, y_all, v_all, fill, fit, iterations)


# ---------------------------------------------------------------------------------------------------------
# Fail-safe N
# ---------------------------------------------------------------------------------------------------------

FSN_TYPES = ("Rosenthal", "Orwin", "Rosenberg")


@dataclass(repr=False)  # printing.Printable gives metafor's print.fsn
class Fsn(Printable):
    """metafor ``fsn``: the number of null studies needed to bring the result to ``target``/non-significance.

    ``pval`` (Rosenthal: one-sided Stouffer p; Rosenberg: two-sided p of the equal-effects estimate; NaN
    for Orwin), ``meanes`` (Orwin: mean effect; Rosenberg: equal-effects estimate; NaN for Rosenthal),
    ``target`` (Orwin only).
    """

    type: str
    fsnum: float
    alpha: float
    pval: float
    meanes: float
    target: float


def fsn(yi, vi, type="Rosenthal", alpha=0.05, target=None, weighted=False) -> Fsn:  # noqa: A002 - metafor's name
    """Fail-safe N as metafor ``fsn(yi, vi, type=...)`` 3.8-1.

    * ``"Rosenthal"`` (default; Stouffer's method): zᵢ = yᵢ/√vᵢ, z̄ = |Σzᵢ|/√k,
      N = max(0, k(z̄/z₁₋α)² − k), α one-sided (default 0.05).
    * ``"Orwin"``: N = max(0, k(ȳ − target)/target) with ȳ the **unweighted** mean (``weighted=True``: the
      inverse-variance mean); target defaults to ȳ/2 and takes ȳ's sign; target 0 gives N = ∞.
    * ``"Rosenberg"``: N = max(0, k[(Σwy/z₁₋α/₂)² − Σw]/Σw), w = 1/v.

    N is rounded up unless within √ε of an integer (then rounded), as metafor.
    """
    if type not in FSN_TYPES:
        raise ValueError(f"type must be one of {FSN_TYPES}, not {type!r}")
    yi, vi = _as_1d(yi, vi, 1)
    k = yi.size
    pval = meanes = np.nan
    if type == "Rosenthal":
        z_avg = abs((yi / np.sqrt(vi)).sum() / np.sqrt(k))
        pval = dist.norm_sf(z_avg)
        fsnum = max(0.0, k * (z_avg / dist.norm_isf(alpha)) ** 2 - k)
        target = np.nan
    elif type == "Orwin":
        meanes = (yi / vi).sum() / (1 / vi).sum() if weighted else yi.mean()
        target = meanes / 2 if target is None else float(target)
        if target == 0:
            fsnum = np.inf
        else:
            if np.sign(target) != np.sign(meanes):
                target = -target
            fsnum = max(0.0, k * (meanes - target) / target)
    else:
        w = 1 / vi
        meanes = (w * yi).sum() / w.sum()
        pval = 2 * dist.norm_sf(abs(meanes * np.sqrt(w.sum())))
        excess = ((w * yi).sum() / dist.norm_isf(alpha / 2)) ** 2 - w.sum()
        fsnum = max(0.0, k * excess / w.sum())
        target = np.nan
    if np.isfinite(fsnum) and abs(fsnum - round(fsnum)) >= np.sqrt(np.finfo(float).eps):
        fsnum = float(np.ceil(fsnum))
    else:
        fsnum = float(np.rint(fsnum))
    return Fsn(type, fsnum, alpha, float(pval), float(meanes), float(target))


__all__ = [
    "LOW_POWER_NOTE", "Regtest", "PetPeese", "Ranktest", "Trimfill", "Fsn",
    "low_power_note", "regtest", "pet_peese", "ranktest", "trimfill", "fsn",
]  # fmt: skip
