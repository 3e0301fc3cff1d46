"""Estimators of the between-study variance τ² (metafor ``rma(method=...)``), vectorized over a batch.

Every estimate is truncated at 0 as metafor does (``tau2.min = 0``). Iterative estimators converge
tightly and report it: ``Tau2Estimate.converged`` and ``.iterations`` are part of the result.

Methods (metafor names and defaults, see shared/reference/metafor_internals.md §2):

* ``EE``   equal (common) effect: τ² = 0.
* ``DL``   DerSimonian–Laird: (Q_E − (k−1)) / tr P_FE.
* ``HE``   Hedges: sample variance of y (divisor k−1) minus the mean of v.
* ``HS``   Hunter–Schmidt: (Q_E − k) / Σw.
* ``SJ``   Sidik–Jonkman: τ₀²·Q(W(τ₀²))/(k−1), τ₀² = Σ(y−ȳ)²/k.
* ``PM``   Paule–Mandel: the root of Q(W(τ²)) = k−1 (0 if Q(W(0)) < k−1).
* ``ML``, ``REML``: metafor's Fisher scoring from the HE estimate floored at 0, then the nearest root
  of the (restricted) likelihood score equation by bracketed Newton steps, and metafor's check that
  the likelihood at τ² = 0 is not higher.
* ``EB``   empirical Bayes. Its estimating equation k/(k−1)·Q(W(τ²)) = k is, for the intercept-only
  model, the PM equation, so it is solved by the same bracketed root finder. metafor iterates Fisher
  scoring to the same point, but that iteration can oscillate (with variances 1e-4 and 10 it wanders
  chaotically for thousands of steps); the root finder cannot.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._batch import EPS, Batch, Weighted, at_tau2, solve_decreasing

METHODS = ("EE", "DL", "REML", "ML", "PM", "SJ", "HE", "HS", "EB")


@dataclass(frozen=True)
class Control:
    """Convergence settings. metafor's defaults are threshold=1e-5 and tol=ε^¼; ours are far tighter.

    ``tol``: every iterative solution (ML, REML, PM, EB and the Q-profile bounds) stops when its Newton
    or bisection step is ≤ tol·max(1, τ²).
    ``maxiter``: cap on those steps; a fit that hits it reports ``converged = False``.
    ``threshold``: an ML/REML estimate at or below it is not subject to the ll(0) check (metafor's rule).
    ``ll0_tol``: how much higher the likelihood at τ² = 0 must be before the estimate is set to 0
    (metafor ``tol``, used in its ll(0) check).
    """

    threshold: float = 1e-13
    tol: float = 1e-14
    maxiter: int = 10000
    ll0_tol: float = 1e-10


@dataclass(frozen=True)
class Tau2Estimate:
    tau2: np.ndarray
    converged: np.ndarray
    iterations: np.ndarray


def _fe(batch):
    return at_tau2(batch, np.zeros(batch.y.shape[0]))


def _he(batch):
    k = batch.k
    ybar = batch.y.sum(axis=-1) / k
    ss = (batch.mask * (batch.y - ybar[:, None]) ** 2).sum(axis=-1)
    return ss / (k - 1) - batch.v.sum(axis=-1, where=batch.mask) / k


def _dl(batch):
    fe = _fe(batch)
    return (fe.q - (batch.k - 1)) / fe.tr_p


def _hs(batch):
    fe = _fe(batch)
    return (fe.q - batch.k) / fe.s


def sj_start(batch):
    ybar = batch.y.sum(axis=-1) / batch.k
    return (batch.mask * (batch.y - ybar[:, None]) ** 2).sum(axis=-1) / batch.k


def _sj(batch):
    tau0 = sj_start(batch)
    return tau0 * at_tau2(batch, tau0).q / (batch.k - 1)


def q_of_tau2(batch):
    """Generalized Q(τ²) with its derivative −Σw²(y−μ)², for the root finders."""

    def fun(tau2):
        wt = at_tau2(batch, tau2)
        return wt.q, -wt.ypy2

    return fun


def upper_bracket(batch, target, start):
    """Double ``start`` until Q(W(τ²)) < target, so a root is always bracketed (metafor errors instead)."""
    fun = q_of_tau2(batch)
    hi = np.array(start, dtype=float)
    for _ in range(2000):
        above = (fun(hi)[0] > target) & np.isfinite(target)
        if not above.any():
            break
        hi = np.where(above, 2 * hi, hi)
    return hi


def _pm(batch, control):
    target = (batch.k - 1).astype(float)
    q0 = _fe(batch).q
    active = (q0 > target) & (batch.k > 1)
    hi = upper_bracket(batch, np.where(active, target, np.nan), np.full(target.shape, 100.0))
    root, converged, iters = solve_decreasing(
        q_of_tau2(batch), target, np.zeros_like(target), hi, active, control.tol, control.maxiter
    )
    return Tau2Estimate(np.where(active, root, 0.0), converged, iters)


def _likelihood_score(method, batch):
    """The ML or REML estimating equation f(τ²) = 0 with its exact derivative (for Newton steps).

    REML: f = yᵀP²y − tr P,  f′ = tr P² − 2yᵀP³y.   ML: f = yᵀP²y − Σw,  f′ = Σw² − 2yᵀP³y.
    These are the equations metafor's Fisher scoring solves (its update is f / expected information).
    """

    def fun(tau2):
        wt = at_tau2(batch, tau2)
        if method == "REML":
            return wt.ypy2 - wt.tr_p, wt.tr_p2 - 2 * wt.ypy3
        return wt.ypy2 - wt.s, wt.s2 - 2 * wt.ypy3

    return fun


def loglik(batch, tau2, reml):
    """(Restricted) log-likelihood of the intercept-only random-effects model (metafor's ``REMLf=TRUE``)."""
    wt = at_tau2(batch, tau2)
    k = batch.k
    log_det = np.log(batch.v + tau2[:, None]).sum(axis=-1, where=batch.mask)
    if reml:
        return -0.5 * (k - 1) * np.log(2 * np.pi) + 0.5 * np.log(k) - 0.5 * log_det - 0.5 * np.log(wt.s) - 0.5 * wt.q
    return -0.5 * k * np.log(2 * np.pi) - 0.5 * log_det - 0.5 * wt.q


def _fisher_scoring(method, batch, tau2, iterations, rel_tol):
    """metafor's Fisher scoring (update = score / expected information, halved while it would cross 0)."""
    tau2 = tau2.copy()
    active = batch.k > 1
    steps = np.zeros(tau2.shape, dtype=int)
    for _ in range(iterations):
        if not active.any():
            break
        idx = np.flatnonzero(active)
        sub, current = batch.subset(idx), tau2[idx]
        wt = at_tau2(sub, current)
        step = (wt.ypy2 - wt.tr_p) / wt.tr_p2 if method == "REML" else (wt.ypy2 - wt.s) / wt.s2
        step = np.where((current == 0) & (step < 0), 0.0, step)  # at the bound: stays at 0
        while np.any(current + step < 0):
            step = np.where(current + step < 0, step / 2, step)
        tau2[idx] = current + step
        steps[idx] += 1
        active[idx] = np.abs(step) > rel_tol * np.maximum(1.0, tau2[idx])
    return tau2, steps


def _score_at(method, batch, rows, tau2):
    """The score of the ML/REML equation for some rows of the batch only."""
    return _likelihood_score(method, batch.subset(rows))(tau2)[0]


def _maximum_likelihood(method, batch, control):
    """ML/REML τ²: metafor's Fisher scoring from the HE estimate (floored at 0), polished to the root.

    Fisher scoring first (as metafor, to land in the same local maximum when the likelihood has
    several), but only to |Δτ²| ≤ 1e-6: it converges linearly and on awkward data oscillates for
    thousands of steps. From where it stops, the nearest root of the score equation is bracketed
    (upwards by doubling if the score is positive, downwards by halving towards 0 if negative; no
    positive score down to 0 means the maximum is on the boundary, τ² = 0) and solved by Newton
    steps to ``control.tol``. Then metafor's check: if the likelihood at τ² = 0 is higher, τ² = 0.
    """
    fun = _likelihood_score(method, batch)
    valid = batch.k > 1
    start = np.where(valid, np.maximum(0.0, _he(batch)), 0.0)
    near, scoring_steps = _fisher_scoring(method, batch, start, iterations=200, rel_tol=1e-6)
    f_near = fun(near)[0]
    rising = valid & (f_near > 0)
    falling = valid & (f_near < 0) & (near > 0)
    hi, lo = near.copy(), np.where(rising, near, 0.0)
    for _ in range(2000):
        grow = rising & (fun(hi)[0] > 0)
        if not grow.any():
            break
        hi = np.where(grow, 2 * np.maximum(hi, 1.0), hi)
    # downwards: halve towards 0 until the score turns positive; none within 2^-60 of the start
    # means the maximum sits on the boundary τ² = 0
    search = np.flatnonzero(falling)
    candidate = near[search]
    for _ in range(60):
        if search.size == 0:
            break
        candidate = candidate / 2
        positive = _score_at(method, batch, search, candidate) > 0
        lo[search[positive]] = candidate[positive]
        search, candidate = search[~positive], candidate[~positive]
    falling &= lo > 0
    solve = rising | falling
    root, converged, iters = solve_decreasing(fun, 0.0, lo, hi, solve, control.tol, control.maxiter)
    tau2 = np.where(solve, root, np.where(valid & (f_near == 0), near, 0.0))
    reml = method == "REML"
    higher_at_zero = loglik(batch, np.zeros_like(tau2), reml) - loglik(batch, tau2, reml)
    tau2 = np.where((higher_at_zero > control.ll0_tol) & (tau2 > control.threshold), 0.0, tau2)
    return Tau2Estimate(tau2, converged, scoring_steps + iters)


def estimate_tau2(batch: Batch, method: str = "REML", control: Control | None = None) -> Tau2Estimate:
    """τ² for every meta-analysis in ``batch``, truncated at 0 (0 when k = 1)."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, not {method!r}")
    control = control or Control()
    n = batch.y.shape[0]
    if method in ("ML", "REML"):
        est = _maximum_likelihood(method, batch, control)
    elif method in ("PM", "EB"):
        est = _pm(batch, control)
    else:
        closed = {"EE": lambda b: np.zeros(n), "DL": _dl, "HE": _he, "HS": _hs, "SJ": _sj}[method]
        with np.errstate(divide="ignore", invalid="ignore"):
            raw = closed(batch)
        est = Tau2Estimate(raw, np.ones(n, dtype=bool), np.zeros(n, dtype=int))
    tau2 = np.where(batch.k > 1, np.maximum(0.0, est.tau2), 0.0)
    return Tau2Estimate(tau2, est.converged, est.iterations)


def tau2_se(batch: Batch, method: str, tau2: np.ndarray) -> np.ndarray:
    """Standard error of τ̂² as metafor reports it (``se.tau2``); NaN for ``EE``."""
    k = batch.k.astype(float)
    t = np.maximum(tau2, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        if method in ("DL", "HS"):
            fe = _fe(batch)
            bracket = np.sqrt(2 * (k - 1) + 4 * t * fe.tr_p + 2 * t**2 * fe.tr_p2)
            return bracket / (fe.tr_p if method == "DL" else fe.s)
        if method == "HE":
            v, m = batch.v, batch.mask
            sv, sv2 = v.sum(axis=-1, where=m), (v**2).sum(axis=-1, where=m)
            tr_p0v, tr_p0v2 = sv * (1 - 1 / k), sv2 - 2 * sv2 / k + sv**2 / k**2
            return np.sqrt(2 * tr_p0v2 + 4 * t * tr_p0v + 2 * t**2 * (k - 1)) / (k - 1)
        if method == "SJ":
            tau0 = sj_start(batch)
            return tau0 / (k - 1) * np.sqrt(_quadratic_form_traces(batch, at_tau2(batch, tau0), t))
        wt = at_tau2(batch, t)
        if method == "ML":
            return np.sqrt(2 / wt.s2)
        if method == "REML":
            return np.sqrt(2 / wt.tr_p2)
        if method in ("EB", "PM"):
            return np.sqrt(2 * k**2 / (k - 1)) / wt.s
    return np.full(k.shape, np.nan)


def _quadratic_form_traces(batch, wt: Weighted, t):
    """2·tr((PV)²) + 4t·tr(PVP) + 2t²·tr(P²) for the intercept-only P of weights ``wt.w``."""
    w, v, s = wt.w, batch.v * batch.mask, wt.s
    sw2v = (w**2 * v).sum(axis=-1)
    tr_pv2 = (w**2 * v**2).sum(axis=-1) - 2 * (w**3 * v**2).sum(axis=-1) / s + sw2v**2 / s**2
    tr_pvp = sw2v - 2 * (w**3 * v).sum(axis=-1) / s + wt.s2 * sw2v / s**2
    return 2 * tr_pv2 + 4 * t * tr_pvp + 2 * t**2 * wt.tr_p2


__all__ = ["METHODS", "Control", "Tau2Estimate", "estimate_tau2", "tau2_se", "loglik", "EPS"]
