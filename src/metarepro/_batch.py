"""Array plumbing shared by the estimators: a batch of intercept-only meta-analyses, and the one root finder.

A batch is ``y`` and ``v`` of shape (B, K): B meta-analyses padded to the largest k with NaN. Every
quantity is a weighted sum along the last axis, so nothing ever forms a k×k matrix. For the
intercept-only model with weights w (S = Σw, μ = Σwy/S, r = y − μ, a = w/S, 1 − a computed without
cancellation, see :func:`one_minus_share`):

* P = W − w wᵀ/S, so P y = w r, yᵀPy = Σw r², yᵀP²y = Σw² r²
* tr P = Σw(1 − a), tr P² = Σw²(1 − a)² + Σᵢwᵢ²(S2 − wᵢ²)/S²  (S2 = Σw²)
* yᵀP³y = (Py)ᵀP(Py) = Σw(wr − m)², m = Σw²r/S (the centred form; the textbook Σw³r² − (Σw²r)²/S cancels)

These forms stay accurate when one study's weight dwarfs the rest (vᵢ = 1e-12 beside 1e6), where
S − S2/S would cancel to noise or to 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EPS = np.finfo(float).eps


@dataclass(frozen=True)
class Batch:
    """Padded effect sizes: ``y``/``v`` hold 0/1 where ``mask`` is False so sums stay finite."""

    y: np.ndarray
    v: np.ndarray
    mask: np.ndarray
    k: np.ndarray  # number of studies per analysis, shape (B,)

    @classmethod
    def from_arrays(cls, yi, vi):
        yi = np.atleast_2d(np.asarray(yi, dtype=float))
        vi = np.atleast_2d(np.asarray(vi, dtype=float))
        if yi.shape != vi.shape:
            raise ValueError(f"yi and vi differ in shape: {yi.shape} vs {vi.shape}")
        mask = np.isfinite(yi) & np.isfinite(vi)
        if np.any(vi[mask] <= 0):
            raise ValueError("every sampling variance vi must be > 0")
        if mask.all():
            return cls(yi, vi, mask, np.full(yi.shape[0], yi.shape[1]))
        return cls(np.where(mask, yi, 0.0), np.where(mask, vi, 1.0), mask, mask.sum(axis=-1))

    @property
    def padded(self):
        return not self.mask.all()

    def subset(self, rows):
        return Batch(self.y[rows], self.v[rows], self.mask[rows], self.k[rows])

    def vmin(self):
        return np.where(self.mask, self.v, np.inf).min(axis=-1) if self.padded else self.v.min(axis=-1)

    def vmean(self):
        return self.v.sum(axis=-1, where=self.mask) / self.k


def weights(batch, tau2):
    """Random-effects weights 1/(v + τ²), zero on padding."""
    w = 1 / (batch.v + np.asarray(tau2, dtype=float)[..., None])
    return w * batch.mask if batch.padded else w


def _top(w):
    return np.argmax(w, axis=-1)[..., None]


def _without_top(w, top):
    """Σ of each row without its largest element, summed from the others (exact where S − w_max cancels)."""
    rest = w.copy()
    np.put_along_axis(rest, top, 0.0, axis=-1)
    return rest.sum(axis=-1)


def one_minus_share(w, s, top=None):
    """1 − wᵢ/S; for the largest weight (S − w_max)/S, from the sum of the other weights."""
    out = 1 - w / s[..., None]
    top = _top(w) if top is None else top
    np.put_along_axis(out, top, (_without_top(w, top) / s)[..., None], axis=-1)
    return out


@dataclass(frozen=True)
class Weighted:
    """The weighted sums every estimator needs, for one weight matrix.

    Residuals are taken from the study of largest weight, y_ref: r = d − δ with d = y − y_ref and
    δ = Σw d/S, so μ = y_ref + δ. When one weight dwarfs the rest, that study's residual −δ is then exact
    to rounding, where y − μ would be the difference of two nearly equal numbers (and yᵀP²y, which
    multiplies it by w², noise).
    """

    w: np.ndarray
    s: np.ndarray  # Σw
    mu: np.ndarray  # weighted mean
    resid: np.ndarray  # y − μ (0 on padding)
    q: np.ndarray  # Σw(y−μ)²
    top: np.ndarray  # index of the largest weight, shape (B, 1)

    @classmethod
    def of(cls, batch, w):
        s = w.sum(axis=-1)
        top = _top(w)
        ref = np.take_along_axis(batch.y, top, axis=-1)
        d = batch.y - ref
        delta = (w * d).sum(axis=-1) / s
        resid = d - delta[..., None]
        if batch.padded:
            resid = resid * batch.mask
        return cls(w, s, ref[..., 0] + delta, resid, (w * resid**2).sum(axis=-1), top)

    @property
    def s2(self):
        return (self.w**2).sum(axis=-1)

    @property
    def b(self):
        """1 − wᵢ/S per study (the diagonal of P divided by w), without cancellation."""
        return one_minus_share(self.w, self.s, self.top)

    @property
    def tr_p(self):
        return (self.w * self.b).sum(axis=-1)

    @property
    def tr_p2(self):
        w2 = self.w**2
        others = w2.sum(axis=-1)[..., None] - w2  # S2 − wᵢ²: cancels only for the largest weight
        np.put_along_axis(others, self.top, _without_top(w2, self.top)[..., None], axis=-1)
        return (w2 * self.b**2).sum(axis=-1) + (w2 * others).sum(axis=-1) / self.s**2

    @property
    def ypy2(self):
        """yᵀP²y = Σw²(y−μ)², also −dQ/dτ² for w = 1/(v+τ²)."""
        return ((self.w * self.resid) ** 2).sum(axis=-1)

    @property
    def ypy3(self):
        """yᵀP³y = Σw(wr − m)², m = Σw²r/S."""
        u = self.w * self.resid
        m = (self.w * u).sum(axis=-1) / self.s
        return (self.w * (u - m[..., None]) ** 2).sum(axis=-1)


def at_tau2(batch, tau2):
    return Weighted.of(batch, weights(batch, tau2))


@dataclass(frozen=True)
class Root:
    """A root of a decreasing estimating equation, with how it was established.

    ``converged``: the point solves its equation to the tolerance, checked there: either a Newton step from it
    is ≤ tol·(x + floor) with a negative derivative (a strict downward crossing: a maximum, for a score), or
    the sign change is bracketed within that width, or the equation is 0 to working precision.
    ``capped``: no sign change was found below the search limit, so ``x`` is that limit, not a root.
    ``boundary``: the equation is ≤ 0 at the lower end (0) and no crossing was found above it within
    the floor: the solution is the boundary itself (converged).
    """

    x: np.ndarray
    converged: np.ndarray
    iterations: np.ndarray
    capped: np.ndarray
    boundary: np.ndarray


def solve_decreasing(fun, x, lo, hi, active, tol, maxiter, unit, cap):
    """Safeguarded Newton for a sign change of ``f`` from + to − (one design for every iterative quantity).

    ``fun(x, rows)`` returns (f, f′, f_scale, info) for the batch rows ``rows``, where f_scale is the size of
    the terms whose difference f is (so |f| ≤ 16·ε·f_scale means f is 0 to working precision) and info > 0
    an expected information (Fisher scoring's step f/info is the second choice when Newton's leaves the
    bracket or f′ ≥ 0). ``lo``: a
    point with f > 0, or −1 where none is known yet; ``hi``: a point with f < 0, or inf. Each step is the
    Newton step if it stays strictly inside (lo, hi); otherwise bisection (geometric when the bracket spans
    more than a factor 4), a fourfold expansion (from at least ``unit``) while no upper point is known, or a
    fourfold contraction towards 0 while no lower point is known. ``unit`` is a per-row length on the data's
    own scale (the smallest vᵢ for τ²), so stopping is scale-free: relative to x + floor, floor = ε·unit
    (a τ² below ε·min v changes no weight). A row stops as ``capped`` when the expansion passes ``cap``, and
    as ``boundary`` when the contraction passes the floor without finding f > 0. Every loop is bounded by
    ``maxiter``; rows that hit it are reported not converged.
    """
    x, lo, hi = (np.array(a, dtype=float) for a in (x, lo, hi))
    unit = np.asarray(unit, dtype=float)
    floor = EPS * unit
    n = x.shape[0]
    done = ~np.asarray(active, dtype=bool)
    converged = np.zeros(n, dtype=bool)
    capped = np.zeros(n, dtype=bool)
    boundary = np.zeros(n, dtype=bool)
    iters = np.zeros(n, dtype=int)
    for _ in range(maxiter):
        rows = np.flatnonzero(~done)
        if rows.size == 0:
            break
        xr, lor, hir, fl, un = x[rows], lo[rows], hi[rows], floor[rows], unit[rows]
        f, d, scale, info = fun(xr, rows)
        iters[rows] += 1
        lor = np.where(f > 0, xr, lor)
        hir = np.where(f < 0, xr, hir)
        width = tol * (xr + fl)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            newton = xr - f / d
            step_small = (d < 0) & (np.abs(f / d) <= width)
        zero = (f == 0) | (np.abs(f) <= 16 * EPS * scale)
        bracketed = (lor >= 0) & np.isfinite(hir) & (hir - lor <= width)
        left = np.maximum(lor, 0)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            scoring = xr + f / info
        ok_newton = np.isfinite(newton) & (newton > left) & (newton < hir) & (d < 0)
        ok_scoring = np.isfinite(scoring) & (scoring > left) & (scoring < hir)
        wide = (lor > 0) & (hir > 4 * lor)
        mid = np.where(wide, np.sqrt(np.abs(lor) * np.where(np.isfinite(hir), hir, 1.0)), 0.5 * (lor + hir))
        fallback = np.where(
            ~np.isfinite(hir), 4 * np.maximum(np.maximum(xr, lor), un), np.where(lor < 0, 0.25 * hir, mid)
        )
        new = np.where(ok_newton, newton, np.where(ok_scoring, scoring, fallback))
        finished = zero | step_small | bracketed
        new = np.where(zero | bracketed, xr, np.where(step_small, np.clip(newton, 0, None), new))
        over = ~finished & (new > cap[rows])
        under = ~finished & (lor < 0) & (new < fl)
        x[rows] = np.where(over, cap[rows], np.where(under, 0.0, new))
        lo[rows], hi[rows] = lor, hir
        converged[rows] = finished | under
        capped[rows] = over
        boundary[rows] = under
        done[rows] = finished | over | under
    return Root(x, converged & done, iters, capped, boundary)


def rowwise(batch, evaluate):
    """``fun(x, rows)`` for :func:`solve_decreasing`: ``evaluate(sub_batch, x)`` on the rows still iterating."""
    n = batch.y.shape[0]

    def fun(x, rows):
        return evaluate(batch if rows.size == n else batch.subset(rows), x)

    return fun
