"""The shared solver: Newton / Fisher scoring in θ with step halving, boundaries, convergence checks.

Newton steps on an unconstrained parametrisation θ (log variances; Fisher z of canonical partial correlations,
which keeps G positive definite for any θ) with the analytic score and observed information of likelihood.py
where that information is positive definite, Fisher scoring (expected information) where it is not. A step
must raise the log-likelihood (only a full step may leave it unchanged to its rounding, 64·EPS·|ll|); it is
halved at most ``max_halvings`` times, then the scaled gradient is tried, and a step that cannot raise the
likelihood ends the search (it never loops). An iteration cap, and stopping rules free of the data's scale (θ
is a log scale; the score in θ is dimensionless). ``converged`` is True only when the final score, scaled by its
Fisher information, is below ``score_tol`` at a point where the information is positive definite. A variance
that runs to zero (below ``1e-10`` of the data's sampling variances) is set to exactly 0, a correlation that
runs to ±1 is held there, and both are reported in ``boundary`` (indices into θ); such a point is converged if
the one-sided score there points out of the parameter space.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from metarepro.stats.mv.likelihood import _Eval, evaluate, score_information
from metarepro.stats.mv.model import _Model

EPS = np.finfo(float).eps

@dataclass(frozen=True)
class MVControl:
    """Solver settings: iteration cap, step tolerance in θ, scaled-score tolerance, step halvings."""

    max_iter: int = 500
    step_tol: float = 1e-12
    score_tol: float = 1e-7
    max_halvings: int = 60
    boundary: float = 1e-10


@dataclass
class _Fit:
    theta: np.ndarray
    free: np.ndarray
    ev: _Eval
    converged: bool
    iterations: int
    boundary: list
    scaled_score: float


CORR_EDGE = 19.0  # atanh scale: tanh(19) rounds to 1 within 1e-16


def _kinds(model):
    """Per θ entry: 'pin0' (a variance entering M linearly, pinned at exactly 0 at the boundary),
    'var' (a log-variance of CS/HCS/UN), 'cor' (a Fisher-z correlation, pinned at ±1 at the boundary)."""
    kinds = ["pin0"] * model.n_sigma
    gs = model.gspec
    if gs:
        nt = gs.n_var()
        kinds += ["pin0" if gs.struct in ("ID", "DIAG") else "var"] * nt
        kinds += ["cor"] * (gs.n_theta() - nt)
    return np.array(kinds)


def _full(values, mask, n):
    out = np.zeros(n)
    out[mask] = values
    return out


def _derivatives(model, ev, theta, method, observed=False):
    """Score, Fisher information and (with ``observed``) observed information in θ at ``ev`` (at ``theta``)."""
    dMs, dG = model.gradients(theta)
    return score_information(ev, dMs, method, model.second(theta, dG) if observed else None)


def _solve(model: _Model, method, theta0, control: MVControl, fixed=None):
    """Newton / Fisher scoring in θ with step halving; ``fixed`` is a boolean mask of θ held at theta0."""
    theta = np.array(theta0, dtype=float)
    n = theta.size
    fixed = np.zeros(n, bool) if fixed is None else np.asarray(fixed, bool)
    kinds = _kinds(model)
    pinned = np.zeros(n, bool)  # at the boundary: variance exactly 0 or correlation ±1
    log_floor = np.log(control.boundary * model.scale)
    ev = evaluate(model, model.marginal(theta))  # exp(-inf) = 0 for a pinned variance
    if ev is None:
        raise ValueError("the starting values give a marginal covariance that is not positive definite")
    iterations = 0
    stopped = False  # ended by a stopping rule, not by the iteration cap
    while iterations < control.max_iter:
        iterations += 1
        active = ~fixed & ~pinned
        if not active.any():
            stopped = True
            break
        g_all, I_all, O_all = _derivatives(model, ev, theta, method, observed=True)
        g, info = g_all[active], I_all[np.ix_(active, active)]
        obs = O_all[np.ix_(active, active)]
        if np.all(np.isfinite(obs)) and np.all(np.linalg.eigvalsh(obs) > 1e-8 * np.max(np.abs(np.diag(info)))):
            info = obs  # Newton where the likelihood is locally concave (quadratic convergence), else scoring
        # Newton direction on the Jacobi-scaled information, dropping directions it cannot resolve (a
        # correlation near ±1 has information ~sech⁴); then the scaled gradient if that direction fails
        d = 1 / np.sqrt(np.maximum(np.abs(np.diag(info)), 1e-300))
        newton = d * (np.linalg.pinv(d[:, None] * info * d[None, :], rcond=1e-10, hermitian=True) @ (d * g))
        base = ev.ll(method)
        new = None  # (theta, ll, t)
        for step in (newton, d * d * g):
            step = np.clip(np.where(np.isfinite(step), step, 0.0), -5, 5)  # log-variances move ≤ e^5 per step
            t = 1.0
            for _ in range(control.max_halvings):
                cand = theta.copy()
                cand[active] += t * step
                cand[kinds == "cor"] = np.clip(cand[kinds == "cor"], -CORR_EDGE, CORR_EDGE)
                cev = evaluate(model, model.marginal(cand))
                ll = -np.inf if cev is None else cev.ll(method)
                # a step must raise the likelihood; only a full step may leave it unchanged to rounding
                # (the last Newton steps near the optimum), so halving can never creep along a flat ridge
                if ll > base or (t == 1 and ll >= base - 64 * EPS * max(1.0, abs(base))):
                    if new is None or ll > new[1].ll(method):
                        new = (cand, cev, t)
                    break
                t /= 2
            if new is not None and new[2] >= 1 / 16:
                break  # Newton worked without heavy halving: no need for the gradient direction
        if new is None:
            # a correlation drifting to ±1 flattens the likelihood in θ until no step registers: try the edge
            drift = (
                active & (kinds == "cor") & (np.abs(theta) > 5) & (np.sign(theta) == np.sign(_full(newton, active, n)))
            )
            if drift.any():
                cand = theta.copy()
                cand[drift] = np.sign(theta[drift]) * CORR_EDGE
                cev = evaluate(model, model.marginal(cand))
                if cev is not None and cev.ll(method) >= base - 1e-15 * abs(base):
                    theta, ev = cand, cev
                    pinned |= drift
                    continue
            stopped = True
            break  # no step raises the likelihood: stop here, the checks below decide
        full_step = new[2] == 1
        new = new[:2]
        moved = np.max(np.abs(new[0][active] - theta[active]))
        theta, ev = new
        variance = (kinds == "pin0") | (kinds == "var")
        newly = active & ((variance & (theta < log_floor)) | ((kinds == "cor") & (np.abs(theta) >= CORR_EDGE)))
        if newly.any():
            pinned |= newly
            theta[newly & variance] = -np.inf
            ev = evaluate(model, model.marginal(theta))
            continue
        if full_step and moved < control.step_tol:
            stopped = True
            break
    # final checks at the reported point: the score scaled by its information for the free entries, and a
    # one-sided score pointing out of the parameter space for the pinned ones
    g_all, I_all, _ = _derivatives(model, ev, theta, method)
    active = ~fixed & ~pinned
    ok = True
    scaled = 0.0
    if active.any():
        g, info = g_all[active], I_all[np.ix_(active, active)]
        try:
            np.linalg.cholesky(info)
            scaled = float(np.sqrt(np.abs(g @ np.linalg.solve(info, g))))
        except np.linalg.LinAlgError:
            ok, scaled = False, np.inf
        ok = ok and scaled < control.score_tol
    for i in np.flatnonzero(pinned & (kinds == "var")):
        # a τ² of CS/HCS/UN/AR at 0: G moves with its square root, so the one-sided score is not finite; instead
        # the likelihood must not rise when the variance is raised to the boundary
        up = theta.copy()
        up[i] = log_floor
        uev = evaluate(model, model.marginal(up))
        ok = ok and (uev is None or uev.ll(method) <= ev.ll(method) + 64 * EPS * max(1.0, abs(ev.ll(method))))
    for i in np.flatnonzero(pinned & (kinds != "var")):
        # in the natural parameter (σ² at 0: the derivative at θ = 0 is in σ²; ρ at ±1: divide by tanh' = sech²)
        d = 1.0 if kinds[i] == "pin0" else 1 / np.cosh(theta[i]) ** 2
        outward = -1.0 if kinds[i] == "pin0" else np.sign(theta[i])
        gi, ii = g_all[i] / d, max(I_all[i, i], 0) / d**2
        ok = ok and outward * gi >= -control.score_tol * np.sqrt(ii)
    converged = bool(ok and stopped)
    return _Fit(theta, ~fixed, ev, converged, iterations, [int(i) for i in np.flatnonzero(pinned)], scaled)


def _start(model, yi, X, vdiag):
    """metafor's starting values: the residual variance of the equal-effects fit beyond the typical vi,
    split equally between the components; correlations 0."""
    w = 1 / np.where(vdiag > 0, vdiag, model.scale)
    beta = np.linalg.lstsq(X * np.sqrt(w)[:, None], yi * np.sqrt(w), rcond=None)[0]
    ncomp = model.n_sigma + (model.gspec.n_theta() if model.gspec else 0)
    total = max(1e-3 * model.scale, np.var(yi - X @ beta, ddof=1) - 1 / np.mean(w)) if yi.size > 1 else model.scale
    parts = [np.full(model.n_sigma, np.log(total / max(ncomp, 1)))]
    if model.gspec:
        gs = model.gspec
        nt = gs.n_var()
        parts.append(np.full(nt, np.log(total / max(ncomp, 1))))
        parts.append(np.zeros(gs.n_theta() - nt))
    return np.concatenate(parts)
