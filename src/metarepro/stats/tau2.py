"""Estimators of the between-study variance τ² (metafor ``rma(method=...)``), written once for the model
y = Xβ + u + e (k studies, p coefficients) and vectorized over a batch of fits.

The estimators see the data through a *model* object with one interface and two implementations: the
intercept-only model, X = 1 (:class:`metarepro._core.batch.Batch`: one fused compiled pass per row, accurate when
one weight dwarfs the rest; the fast path of ``rma``, of every refit of the diagnostics and of the Q-profile CIs)
and the design-matrix case (:class:`metarepro._core.wls.Design`: the thin QR of W^½X; ``rma_mods``). Both give
``k``, ``p``, ``at(τ², rows, level)`` (the sums at τ²: Σw, Σw², Q = yᵀPy, yᵀP²y, yᵀP³y, tr P, tr P²,
Σlog(v + τ²), log|XᵀWX|), ``vmin``/``vmax``, ``sj_start`` and ``unweighted`` (the unweighted fit, P₀). As metafor,
every τ² equation uses the mean-centred y (immaterial with an intercept). P is the residual maker
W − WX(XᵀWX)⁻¹XᵀW, P_FE that at τ² = 0.

Every estimate is truncated at 0 as metafor does (``tau2.min = 0``). Iterative estimators converge
tightly and report it: ``Tau2Estimate.converged`` and ``.iterations`` are part of the result.

Methods (metafor names and formulas, see shared/reference/metafor_internals.md §2):

* ``EE``   equal (common) effect: τ² = 0.
* ``DL``   DerSimonian–Laird: (Q_E − (k−p)) / tr P_FE.
* ``HE``   Hedges: (yᵀP₀y − tr(P₀V))/(k−p); for X = 1 the sample variance of y (divisor k−1) minus the mean of v.
* ``HS``   Hunter–Schmidt: (Q_E − k) / Σw (k, not k−p, as metafor).
* ``SJ``   Sidik–Jonkman: τ₀²·Q(W(τ₀²))/(k−p), τ₀² = Σ(y−ȳ)²/k (ignores X, as metafor).
* ``PM``   Paule–Mandel: the root of Q(W(τ²)) = k−p (0 if Q(W(0)) < k−p), searched from the DL estimate.
* ``ML``, ``REML``: the global maximum of the (restricted) likelihood over τ² ≥ 0; the score equations are
  yᵀP²y − Σw (ML) and yᵀP²y − tr P (REML). First metafor's answer:
  the root of the score equation nearest metafor's start (the HE estimate floored at 0), a maximum
  (checked), or the boundary τ² = 0 where the score is ≤ 0 there; then metafor's check that the likelihood
  at τ² = 0 is not higher (see :func:`maximize_likelihood`). Then the global check (:func:`global_check`):
  when the vᵢ span orders of magnitude the likelihood can have several maxima (or be higher inside while the
  score is negative at 0), and a single start, metafor's included, may stop at a lower one. The
  log-likelihood is scanned at ``GRID_PER_DECADE`` = 3 log-spaced τ² per decade from ``GRID_FLOOR`` = 0.01
  × min vᵢ up to a τ² above which the score is provably negative (:func:`score_negative_above`); every other
  peak of the scan is refined by the same solver, and a maximum higher by more than ``ll0_tol``·(1 + |ll|)
  replaces the answer. ``Tau2Estimate.local_tau2`` (and a warning in ``rma``) names a lower maximum where
  there is one. A fit whose answer is already the global maximum is unchanged to the bit.
* ``EB``   empirical Bayes. metafor iterates Fisher scoring with the update (k/(k−p)·Q(W(τ²)) − k)/Σw, whose
  fixed point is Q(W(τ²)) = k−p, the PM equation, so it is solved by the same bracketed root finder. metafor's
  iteration can oscillate (with variances 1e-4 and 10 it wanders chaotically for thousands of steps); the root
  finder cannot.

Every iterative quantity (ML, REML, PM, EB here and the Q-profile bounds in heterogeneity.py) is solved by one
design, :func:`metarepro._core.batch.solve_decreasing`:
safeguarded Newton inside a bracket, stopping rules relative to the data's own scale (so yᵢ·a, vᵢ·a²
give estimates ·a and τ² ·a² at any a), an iteration cap that reports non-convergence, and a check at
the reported point that it solves its equation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from metarepro._core.batch import EPS, Root, Weighted, solve_decreasing

METHODS = ("EE", "DL", "REML", "ML", "PM", "SJ", "HE", "HS", "EB")

# The search for a τ² (an estimate or a Q-profile bound) gives up at this multiple of the data's own scale
# (largest vᵢ plus the spread of y): there every weight is equal to 1e-12 and Q is far below any χ² quantile
# of a CI at levels up to 99.99%, so in exact arithmetic every root lies below it.
SEARCH_CAP = 1e12

# The global check of an ML/REML maximum scans the likelihood at this many log-spaced τ² per decade, from this
# multiple of min vᵢ (below it no weight changes by more than 1%) up to where the score is provably negative.
GRID_PER_DECADE = 3
GRID_FLOOR = 1e-2


@dataclass(frozen=True)
class Control:
    """Convergence settings. metafor's defaults are threshold=1e-5 and tol=ε^¼; ours are far tighter.

    ``tol``: every iterative solution (ML, REML, PM, EB and the Q-profile bounds) stops when its Newton
    step (or its bracket) is ≤ tol·(τ² + ε·min vᵢ): relative, so the result does not depend on the unit.
    ``maxiter``: cap on those steps; a fit that hits it reports ``converged = False``.
    ``threshold``: an ML/REML estimate at or below threshold·min vᵢ is not subject to the ll(0) check
    (metafor's rule, on the data's scale).
    ``ll0_tol``: how much higher the likelihood at τ² = 0 must be before the estimate is set to 0
    (metafor ``tol``, used in its ll(0) check).
    """

    threshold: float = 1e-13
    tol: float = 1e-14
    maxiter: int = 10000
    ll0_tol: float = 1e-10


@dataclass(frozen=True)
class Tau2Estimate:
    """τ² with how it was found: ``boundary`` marks an ML/REML/PM/EB solution at τ² = 0 whose equation
    is ≤ 0 there (the maximum, or the root, is on the boundary); ``higher_near_zero`` an ML/REML fit whose
    likelihood at 0 is higher than at the maximum found, where 0 itself is not a maximum."""

    tau2: np.ndarray
    converged: np.ndarray
    iterations: np.ndarray
    boundary: np.ndarray | None = None
    higher_near_zero: np.ndarray | None = None
    sums: Weighted | None = None  # the sums at ``tau2`` (all rows), where the search computed them already
    local_tau2: np.ndarray | None = None  # ML/REML: a lower local maximum, where there is one (else NaN)


def _fe(model):
    return model.at(np.zeros(model.k.shape))


def _he(model):
    """(yᵀP₀y − tr(P₀V))/(k − p) with the unweighted P₀, as the residual variance of the unweighted fit minus the
    average sampling variance it leaves (for X = 1: the sample variance of y minus the mean of v)."""
    unweighted = model.unweighted
    return unweighted.rss / (model.k - model.p) - unweighted.v_mean


def _dl(model, fe):
    return (fe.q - (model.k - model.p)) / fe.tr_p


def _hs(model, fe):
    return (fe.q - model.k) / fe.s


def _sj(model):
    tau0 = model.sj_start()
    return tau0 * model.at(tau0).q / (model.k - model.p)


def search_cap(model):
    """The documented limit of every τ² search (``SEARCH_CAP`` × (max vᵢ + Σ(y−ȳ)²/k))."""
    return SEARCH_CAP * (model.vmax() + model.sj_start())


def q_terms(q, ypy2, target):
    """Q(W(τ²)) = target as a decreasing equation for :func:`solve_decreasing`: f = 1/target − 1/Q.

    1/Q is nearly linear in τ² (exactly so for equal vᵢ), so Newton on it needs a few steps where Newton on
    Q itself (convex, flattening) creeps; f′ = −yᵀP²y/Q².
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        f = 1 / target - 1 / q
        d = -ypy2 / q**2
    return f, d, 1 / target, -d


def q_equation(model, target):
    """``fun(x, rows)`` of Q(W(τ²)) = target[rows]; ``target`` may list several targets per analysis (row
    j of the equations is analysis j mod B), so that both Q-profile bounds are one batch of roots."""
    n = model.k.size

    def fun(x, rows):
        wt = model.at(x, rows % n, level=0)
        return q_terms(wt.q, wt.ypy2, target[rows])

    return fun


def solve_q(model, target, start, active, control) -> Root:
    """The τ² at which Q(W(τ²)) = target, for rows where Q(W(0)) > target (so that a root exists).

    ``target``, ``start`` and ``active`` may be m·B long: m equations per analysis (see :func:`q_equation`).
    """
    m = target.size // model.k.size
    return solve_decreasing(
        q_equation(model, target), start, np.zeros(start.shape), np.full(start.shape, np.inf), active,
        control.tol, control.maxiter, np.tile(model.vmin(), m), np.tile(search_cap(model), m),
    )  # fmt: skip


def _pm(model, control, fe):
    """The root of Q(W(τ²)) = k − p from the DL estimate (0 where Q(W(0)) ≤ k − p: the boundary)."""
    target = (model.k - model.p).astype(float)
    active = (fe.q > target) & (model.k > model.p)
    with np.errstate(divide="ignore", invalid="ignore"):
        start = np.where(active, np.maximum(0.0, _dl(model, fe)), 0.0)
    root = solve_q(model, target, np.nan_to_num(start), active, control)
    converged = np.where(active, root.converged & ~root.capped, True)
    return Tau2Estimate(np.where(active, root.x, 0.0), converged, root.iterations, ~active & (model.k > model.p))


def _score_terms(method, wt):
    """The ML or REML score f(τ²) with its derivative, the size of its terms and the expected information.

    REML: f = yᵀP²y − tr P,  f′ = tr P² − 2yᵀP³y,  information tr P².
    ML:   f = yᵀP²y − Σw,    f′ = Σw² − 2yᵀP³y,    information Σw².
    These are the equations metafor's Fisher scoring solves (its update is f / information).
    """
    ypy2 = wt.ypy2
    if method == "REML":
        trace, info = wt.tr_p, wt.tr_p2
    else:
        trace, info = wt.s, wt.s2
    return ypy2 - trace, info - 2 * wt.ypy3, ypy2 + trace, info


def loglik(model, tau2, reml, wt=None, rows=None):
    """(Restricted) log-likelihood (metafor's ``REMLf=TRUE``) of the fits ``rows`` (default all) of ``model`` at
    ``tau2``; ``wt``: the sums at ``tau2`` with their logs (``model.at(..., level=2)``), if the caller has them.

    ML: −½(k log 2π + Σlog(v + τ²) + yᵀPy); REML: −½((k − p) log 2π − log|XᵀX| + Σlog(v + τ²) + log|XᵀWX| + yᵀPy).
    """
    wt = model.at(tau2, rows, level=2) if wt is None else wt
    k = model.k if rows is None else model.k[rows]
    if reml:
        log_det_xtx = model.unweighted.log_det_xtx
        log_det_xtx = log_det_xtx if rows is None else log_det_xtx[rows]
        return (-0.5 * (k - model.p) * np.log(2 * np.pi) + 0.5 * log_det_xtx - 0.5 * wt.log_det - 0.5 * wt.logdet_xwx
                - 0.5 * wt.q)  # fmt: skip
    return -0.5 * k * np.log(2 * np.pi) - 0.5 * wt.log_det - 0.5 * wt.q


def maximize_likelihood(score, loglik_at, start, f0, unit, cap, control, valid, ll0=None, top=None, profile=None):
    """ML/REML τ²: the global maximum of the (restricted) likelihood over τ² ≥ 0, found from metafor's start.

    Shared by the intercept-only model and meta-regression. ``score(x, rows)`` is the score equation
    (for :func:`solve_decreasing`) at x for the analyses ``rows``; ``loglik_at(tau2, rows)`` their
    log-likelihood; ``f0`` the score at 0 (``ll0`` the log-likelihood there, if known); ``valid`` the
    analyses with a τ² to estimate (k > 1; others get 0). The score is solved by :func:`solve_decreasing`
    from the start: a root where it crosses from + to − is a local maximum. If f(0) ≤ 0 and no positive
    score is found on the way down, the maximum is on the boundary, τ² = 0. Then metafor's check: if the
    likelihood at τ² = 0 is higher by more than ``ll0_tol``, τ² = 0, but only where 0 is itself a
    maximum (f(0) ≤ 0); where it is not (f(0) > 0), the first maximum above 0 is found from 0 and kept
    if its likelihood is higher.

    That is metafor's answer, a local maximum; the global check (:func:`global_check`) then scans the
    likelihood on a grid up to ``top`` (above which the score is negative, see :func:`score_negative_above`)
    and replaces it where the likelihood is higher elsewhere. ``local_tau2`` of the result is a lower local
    maximum where the likelihood has more than one (the replaced one, another the scan found, or 0 where the
    score is negative at 0), NaN elsewhere. ``profile(grid, rows)``: the log-likelihood up to a constant per
    analysis at the τ² values ``grid`` (one row per analysis), if faster than ``loglik_at``.
    """
    n = start.shape[0]
    at_boundary = valid & (start == 0) & (f0 <= 0)
    active = valid & ~at_boundary
    lo = np.where(f0 > 0, 0.0, -1.0)
    inf = np.full(n, np.inf)
    root = solve_decreasing(score, start, lo, inf, active, control.tol, control.maxiter, unit, cap)
    tau2 = np.where(active, root.x, 0.0)
    converged = np.where(active, root.converged & ~root.capped, True)
    boundary = at_boundary | (active & root.boundary)
    iterations = root.iterations
    higher_near_zero = np.zeros(n, dtype=bool)
    check = np.flatnonzero(valid & (tau2 > control.threshold * unit))
    sums = None
    if check.size:
        at_zero = loglik_at(np.zeros(check.size), check)[0] if ll0 is None else ll0[check]
        at_estimate, sums = loglik_at(tau2[check], check)
        higher = at_zero - at_estimate > control.ll0_tol
        if check.size < n or higher.any():
            sums = None  # not the sums of every final τ²
        reset = check[higher & (f0[check] <= 0)]
        tau2[reset], converged[reset], boundary[reset] = 0.0, True, True
        climb = check[higher & (f0[check] > 0)]
        if climb.size:
            m = climb.size
            first = solve_decreasing(
                lambda x, rows: score(x, climb[rows]), np.zeros(m), np.zeros(m), np.full(m, np.inf),
                np.ones(m, bool), control.tol, control.maxiter, unit[climb], cap[climb],
            )  # fmt: skip
            better = first.converged & (loglik_at(first.x, climb)[0] > loglik_at(tau2[climb], climb)[0])
            tau2[climb[better]] = first.x[better]
            iterations[climb] += first.iterations
            still = loglik_at(np.zeros(m), climb)[0] - loglik_at(tau2[climb], climb)[0] > control.ll0_tol
            higher_near_zero[climb] = still
    top = cap if top is None else np.minimum(top, cap)
    local, moved = global_check(score, loglik_at, profile, tau2, unit, top, cap, control, valid, iterations)
    converged[moved], boundary[moved], higher_near_zero[moved] = True, False, False
    # a maximum inside while the score is < 0 at 0: the boundary is a lower local maximum (metafor's rma() stops
    # there from a start at or near 0)
    local[np.isnan(local) & valid & (f0 < 0) & (tau2 > 0)] = 0.0
    return Tau2Estimate(tau2, converged, iterations, boundary, higher_near_zero, sums, local)


def score_negative_above(vmin, vmax, rss, k, p):
    """A τ² above which the ML (``p`` = 0) or REML (``p`` = number of coefficients) score is negative, so
    that every maximum of the likelihood lies below it; inf where k ≤ p.

    ``rss``: the unweighted residual sum of squares of y (Σ(y − ȳ)² for the intercept-only model). With
    w = 1/(v + τ²): yᵀP²y ≤ w_max·yᵀPy ≤ w_max²·rss (P's eigenvalues are ≤ w_max, and yᵀPy is the least
    weighted sum of squares), while Σw ≥ k·w_min and tr P = tr((I − H)W) ≥ (k − p)·w_min. With
    w_max ≤ 1/τ² and w_min ≥ 1/(v_max + τ²) the score is < rss/τ⁴ − (k − p)/(v_max + τ²), which is < 0 above
    the positive root of (k − p)τ⁴ − rss·τ² − rss·v_max; returned with a margin of vmin·GRID_FLOOR.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        root = (rss + np.sqrt(rss * rss + 4 * (k - p) * rss * vmax)) / (2 * (k - p))
    return np.where(k > p, root * (1 + 1e-8) + vmin * GRID_FLOOR, np.inf)


def scan_points(tau2, unit, top):
    """The τ² values of the global scan, one row per analysis: ``tau2``, 0, then the grid: ``GRID_PER_DECADE``
    log-spaced points per decade (at least; rows of a narrower span get more) from ``GRID_FLOOR``·``unit``
    (min vᵢ) to ``top``."""
    low = GRID_FLOOR * unit
    log_span = np.log(np.maximum(top / low, 1.0))
    n = max(2, int(np.ceil(GRID_PER_DECADE * log_span.max() / np.log(10))) + 1 if log_span.size else 2)
    points = np.empty((tau2.size, n + 2))
    points[:, 0], points[:, 1] = tau2, 0.0
    grid = points[:, 2:]
    np.multiply.outer(log_span, np.linspace(0.0, 1.0, n), out=grid)
    np.exp(grid, out=grid)
    grid *= low[:, None]
    return points


def global_check(score, loglik_at, profile, tau2, unit, top, cap, control, valid, iterations):
    """Replace (in place) each local maximum ``tau2`` by the global one over τ² ≥ 0; returns a lower local
    maximum where one was seen (NaN elsewhere: the replaced one, else the highest other maximum the scan
    found) and where ``tau2`` was replaced. ``iterations`` gets the steps of the refinement that replaced it
    (a refinement that found nothing higher leaves the fit as it was, its iterations too).

    The (restricted) likelihood in τ² can have more than one maximum when the vᵢ span orders of magnitude;
    a search from one start (metafor's rma(), and the solver above) then may stop at a lower one, or at the
    boundary 0 while the likelihood is higher inside. So the log-likelihood is evaluated at the points of
    :func:`scan_points` (the grid and 0). Every grid point higher than both grid neighbours (0 below the first; the
    last counts if higher than the one before) marks a maximum; unless
    ``tau2`` lies between those neighbours (its own maximum), the score is solved from that point, bracketed
    by the neighbours where the signs of the score allow; likewise from the highest grid point if it is higher
    than at ``tau2``. A maximum found replaces ``tau2`` if it converged and its likelihood (computed as
    everywhere else) is the highest and higher by more than ``ll0_tol``·(1 + |ll|). Where ``tau2`` is the
    global maximum the result is untouched, to the bit.
    """
    n = tau2.shape[0]
    local, moved = np.full(n, np.nan), np.zeros(n, dtype=bool)
    scan = np.flatnonzero(valid & (top < np.inf))
    if scan.size == 0:
        return local, moved
    points = scan_points(tau2[scan], unit[scan], top[scan])
    if profile is None:
        ll = np.column_stack([loglik_at(points[:, g], scan)[0] for g in range(points.shape[1])])
    else:
        ll = profile(points, scan)
    # grid column g is points[:, 2 + g]; its lower neighbour points[:, 1 + g] (0 for the first)
    hat = tau2[scan, None]
    candidate = ll[:, 2:] > ll[:, 1:-1]
    candidate[:, :-1] &= ll[:, 2:-1] >= ll[:, 3:]
    candidate[:, :-1] &= (hat <= points[:, 1:-2]) | (hat >= points[:, 3:])  # not tau2's own maximum
    candidate[:, -1] &= hat[:, 0] <= points[:, -2]
    best = np.argmax(ll[:, 2:], axis=1)
    at_hat = ll[:, 0]
    higher = ll[np.arange(scan.size), 2 + best] - at_hat > control.ll0_tol * (1 + np.abs(at_hat))
    candidate[np.flatnonzero(higher), best[higher]] = True
    which, column = np.nonzero(candidate)
    if which.size == 0:
        return local, moved
    rows = scan[which]
    m = rows.size
    left, mid = points[which, 1 + column], points[which, 2 + column]
    last = points.shape[1] - 3
    right = np.where(column < last, points[which, np.minimum(3 + column, last + 2)], 2 * mid)  # score < 0 above
    f = score(np.concatenate([left, mid, right]), np.tile(rows, 3))[0]
    f_left, f_mid, f_right = f[:m], f[m : 2 * m], f[2 * m :]
    # a bracket (a point of positive score below, one of negative score above) where the grid shows one
    lo = np.where(f_mid > 0, mid, np.where(f_left > 0, left, -1.0))
    hi = np.where(f_mid < 0, mid, np.where(f_right < 0, right, np.inf))
    root = solve_decreasing(
        lambda x, sub: score(x, rows[sub]), mid, lo, hi, np.ones(m, bool), control.tol, control.maxiter,
        unit[rows], cap[rows],
    )  # fmt: skip
    at_root = np.where(root.converged & ~root.capped, loglik_at(root.x, rows)[0], -np.inf)
    order = np.lexsort((-at_root, rows))  # per analysis, its highest maximum first
    first = order[np.r_[True, rows[order][1:] != rows[order][:-1]]]
    rows, x, at_root, steps = rows[first], root.x[first], at_root[first], root.iterations[first]
    at_local = loglik_at(tau2[rows], rows)[0]
    take = at_root - at_local > control.ll0_tol * (1 + np.abs(at_local))
    lower = ~take & (at_root < at_local - control.ll0_tol * (1 + np.abs(at_local)))
    local[rows[take]] = tau2[rows[take]]
    local[rows[lower]] = x[lower]
    tau2[rows[take]] = x[take]
    iterations[rows[take]] += steps[take]
    moved[rows[take]] = True
    return local, moved


def _maximum_likelihood(method, model, control, fe, start=None):
    valid = model.k > model.p
    f0 = _score_terms(method, fe)[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        he = _he(model) if start is None else np.broadcast_to(np.asarray(start, dtype=float), valid.shape)
        start = np.where(valid, np.maximum(0.0, np.nan_to_num(he)), 0.0)
    reml = method == "REML"
    ll0 = loglik(model, None, reml, fe) if fe.log_det is not None and np.isfinite(fe.log_det).all() else None

    def loglik_at(tau2, rows):
        sums = model.at(tau2, rows, level=2)
        return loglik(model, tau2, reml, sums, rows), sums

    profile = None if model.profile is None else (lambda grid, rows: model.profile(grid, rows, reml))
    top = score_negative_above(model.vmin(), model.vmax(), model.unweighted.rss, model.k, model.p if reml else 0)
    return maximize_likelihood(
        lambda x, rows: _score_terms(method, model.at(x, rows)), loglik_at, start, f0, model.vmin(), search_cap(model),
        control, valid, ll0, top, profile,
    )  # fmt: skip


def estimate_tau2(model, method: str = "REML", control: Control | None = None, fe=None, start=None) -> Tau2Estimate:
    """τ² for every fit in ``model`` (a :class:`~metarepro._core.batch.Batch` for the intercept-only model or a
    :class:`~metarepro._core.wls.Design`), truncated at 0 (0 when k ≤ p).

    ``fe``: the equal-effects sums (``model.at`` at τ² = 0; with their logs, level 2, for the ll(0) check without
    a refit) if the caller has them already. ``start``: where the ML/REML search starts (default metafor's, the HE
    estimate floored at 0).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, not {method!r}")
    control = control or Control()
    n = model.k.shape[0]
    fe = _fe(model) if fe is None else fe
    none = np.zeros(n, dtype=bool)
    if method in ("ML", "REML"):
        est = _maximum_likelihood(method, model, control, fe, start)
    elif method in ("PM", "EB"):
        est = _pm(model, control, fe)
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            if method == "EE":
                raw = np.zeros(n)
            elif method in ("DL", "HS"):
                raw = (_dl if method == "DL" else _hs)(model, fe)
            else:
                raw = (_he if method == "HE" else _sj)(model)
        est = Tau2Estimate(raw, np.isfinite(raw) | (model.k <= model.p), np.zeros(n, dtype=int))
    tau2 = np.where(model.k > model.p, np.maximum(0.0, est.tau2), 0.0)
    boundary = none if est.boundary is None else est.boundary
    near_zero = none if est.higher_near_zero is None else est.higher_near_zero
    sums = est.sums if est.sums is not None and np.array_equal(est.sums.tau2, tau2) else None
    local = np.full(n, np.nan) if est.local_tau2 is None else est.local_tau2
    return Tau2Estimate(tau2, est.converged, est.iterations, boundary, near_zero, sums, local)


def tau2_se(model, method: str, tau2: np.ndarray, fe=None, wt=None) -> np.ndarray:
    """Standard error of τ̂² as metafor reports it (``se.tau2``); NaN for ``EE``. ``fe``/``wt``: the sums at
    τ² = 0 and at ``tau2``, if the caller has them.

    DL, HS: √(2(k − p) + 4τ²·tr P + 2τ⁴·tr P²)/(tr P or Σw) at τ² = 0; HE: √(2 tr(P₀VP₀V) + 4τ² tr(P₀V) +
    2τ⁴(k − p))/(k − p); SJ: τ₀²/(k − p)·√(2 tr(PVPV) + 4τ² tr(PVP) + 2τ⁴ tr P²) at τ₀²; ML √(2/Σw²); REML
    √(2/tr P²); PM, EB √(2k²/(k − p))/Σw.
    """
    k, p = model.k.astype(float), model.p
    t = np.maximum(tau2, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        if method in ("DL", "HS"):
            fe = _fe(model) if fe is None else fe
            bracket = np.sqrt(2 * (k - p) + 4 * t * fe.tr_p + 2 * t**2 * fe.tr_p2)
            return bracket / (fe.tr_p if method == "DL" else fe.s)
        if method == "HE":
            unweighted = model.unweighted
            return np.sqrt(2 * unweighted.tr_pvpv + 4 * t * unweighted.tr_pv + 2 * t**2 * (k - p)) / (k - p)
        if method == "SJ":
            tau0 = model.sj_start()
            at_tau0 = model.at(tau0)
            tr_pvpv, tr_pvp = model.v_traces(at_tau0)
            return tau0 / (k - p) * np.sqrt(2 * tr_pvpv + 4 * t * tr_pvp + 2 * t**2 * at_tau0.tr_p2)
        wt = model.at(t) if wt is None else wt
        if method == "ML":
            return np.sqrt(2 / wt.s2)
        if method == "REML":
            return np.sqrt(2 / wt.tr_p2)
        if method in ("EB", "PM"):
            return np.sqrt(2 * k**2 / (k - p)) / wt.s
    return np.full(k.shape, np.nan)


__all__ = ["METHODS", "Control", "Tau2Estimate", "estimate_tau2", "tau2_se", "loglik", "solve_q", "search_cap", "EPS"]
