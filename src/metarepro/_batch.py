"""Array plumbing shared by the estimators: a batch of intercept-only meta-analyses.

A batch is ``y`` and ``v`` of shape (B, K): B meta-analyses padded to the largest k with NaN. Every
quantity is a weighted sum along the last axis, so nothing ever forms a k×k matrix. For the
intercept-only model with weights w (S = Σw, S2 = Σw², μ = Σwy/S):

* P = W − w wᵀ/S, so P y = w (y − μ), yᵀPy = Σw(y−μ)², yᵀP²y = Σw²(y−μ)²
* tr P = S − S2/S, tr P² = S2 − 2Σw³/S + S2²/S²
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
        return cls(np.where(mask, yi, 0.0), np.where(mask, vi, 1.0), mask, mask.sum(axis=-1))

    def subset(self, rows):
        return Batch(self.y[rows], self.v[rows], self.mask[rows], self.k[rows])


def weights(batch, tau2):
    """Random-effects weights 1/(v + τ²), zero on padding."""
    return batch.mask / (batch.v + np.asarray(tau2, dtype=float)[..., None])


@dataclass(frozen=True)
class Weighted:
    """The weighted sums every estimator needs, for one weight matrix."""

    w: np.ndarray
    s: np.ndarray  # Σw
    s2: np.ndarray  # Σw²
    mu: np.ndarray  # weighted mean
    resid: np.ndarray  # y − μ (0 on padding)
    q: np.ndarray  # Σw(y−μ)²

    @classmethod
    def of(cls, batch, w):
        s = w.sum(axis=-1)
        mu = (w * batch.y).sum(axis=-1) / s
        resid = np.where(batch.mask, batch.y - mu[..., None], 0.0)
        return cls(w, s, (w**2).sum(axis=-1), mu, resid, (w * resid**2).sum(axis=-1))

    @property
    def tr_p(self):
        return self.s - self.s2 / self.s

    @property
    def tr_p2(self):
        return self.s2 - 2 * (self.w**3).sum(axis=-1) / self.s + self.s2**2 / self.s**2

    @property
    def ypy3(self):
        """yᵀP³y = (Py)ᵀP(Py) with Py = w(y−μ): Σw³(y−μ)² − (Σw²(y−μ))²/Σw."""
        return (self.w**3 * self.resid**2).sum(axis=-1) - (self.w**2 * self.resid).sum(axis=-1) ** 2 / self.s

    @property
    def ypy2(self):
        """yᵀP²y = Σw²(y−μ)², also −dQ/dτ² for w = 1/(v+τ²)."""
        return (self.w**2 * self.resid**2).sum(axis=-1)


def at_tau2(batch, tau2):
    return Weighted.of(batch, weights(batch, tau2))


def solve_decreasing(fun, target, lo, hi, active, tol=1e-14, maxiter=200):
    """Vectorized root of fun(x) = target for functions decreasing in x, bracketed by [lo, hi].

    ``fun(x)`` returns (value, derivative). Newton steps, falling back to bisection whenever a step
    leaves the bracket, so it converges for every batch member; stops when the step (or bracket)
    is below ``tol·max(1, x)``. Returns (root, converged, iterations).
    """
    lo, hi = np.array(lo, dtype=float), np.array(hi, dtype=float)
    x = lo.copy()
    done = ~active
    iters = np.zeros(lo.shape, dtype=int)
    for _ in range(maxiter):
        if done.all():
            break
        value, deriv = fun(x)
        f = value - target
        lo = np.where(~done & (f > 0), x, lo)
        hi = np.where(~done & (f < 0), x, hi)
        with np.errstate(divide="ignore", invalid="ignore"):
            newton = x - f / deriv
        ok = np.isfinite(newton) & (newton > lo) & (newton < hi)
        new = np.where(ok, newton, 0.5 * (lo + hi))
        new = np.where(f == 0, x, new)
        step = np.abs(new - x)
        x = np.where(done, x, new)
        iters += ~done
        done |= (step <= tol * np.maximum(1.0, np.abs(x))) | (hi - lo <= tol * np.maximum(1.0, np.abs(x)))
    return x, done, iters
