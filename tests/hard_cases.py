"""A seeded corpus of hard meta-analyses and a 50-digit mpmath reference for their estimating equations.

Kinds of case (each drawn from its own seeded generator, so the corpus is the same on every machine):
extreme variance ratios (vᵢ log-uniform over 1e-12..1e6, or one vᵢ = 1e-12 beside the rest), tiny k (2, 3),
near-identical yᵢ (spread 1e-9 of √v), huge τ² (1e6 × v), all yᵢ equal, all vᵢ equal, and ordinary data at
units from 1e-6 to 1e6.
"""

from __future__ import annotations

import mpmath
import numpy as np

mpmath.mp.dps = 50

KINDS = ("ratio", "one_tiny", "tiny_k", "near_equal_y", "huge_tau2", "equal_y", "equal_v", "unit")


def hard_case(kind, rng):
    k = int(rng.integers(2, 4)) if kind == "tiny_k" else int(rng.integers(2, 16))
    if kind in ("ratio", "tiny_k"):
        v = 10.0 ** rng.uniform(-12, 6, k)
    elif kind == "one_tiny":
        v = 10.0 ** rng.uniform(4, 6, k)
        v[0] = 1e-12
    elif kind == "equal_v":
        v = np.full(k, 10.0 ** rng.uniform(-3, 3))
    else:
        v = 10.0 ** rng.uniform(-2, 0, k)
    tau2 = {"huge_tau2": 1e6 * v.max()}.get(kind, float(rng.choice([0.0, 0.1, 1.0])) * np.median(v))
    y = rng.normal(0, 1, k) * np.sqrt(v + tau2)
    if kind == "near_equal_y":
        y = 0.5 + 1e-9 * rng.normal(0, 1, k) * np.sqrt(v)
    elif kind == "equal_y":
        y = np.full(k, 0.25)
    elif kind == "unit":
        a = 10.0 ** rng.uniform(-6, 6)
        y, v = y * a, v * a * a
    return y, v


def corpus(n_per_kind, seed=20261201):
    rng = np.random.default_rng(seed)
    return [(kind, *hard_case(kind, rng)) for kind in KINDS for _ in range(n_per_kind)]


def _sums(y, v, t):
    w = [1 / (mpmath.mpf(vi) + t) for vi in v]
    s = mpmath.fsum(w)
    mu = mpmath.fsum(wi * mpmath.mpf(yi) for wi, yi in zip(w, y, strict=True)) / s
    r = [mpmath.mpf(yi) - mu for yi in y]
    return w, s, r


def q_mp(y, v, t):
    w, _, r = _sums(y, v, t)
    return mpmath.fsum(wi * ri**2 for wi, ri in zip(w, r, strict=True))


def score_mp(method, y, v, t):
    """The ML/REML score yᵀP²y − Σw (ML) or − tr P (REML), in 50 digits."""
    w, s, r = _sums(y, v, t)
    ypy2 = mpmath.fsum((wi * ri) ** 2 for wi, ri in zip(w, r, strict=True))
    s2 = mpmath.fsum(wi**2 for wi in w)
    return ypy2 - (s - s2 / s if method == "REML" else s)


def equation_mp(method, y, v, t, target=None):
    """The estimating equation of ``method`` at τ² = t (decreasing through its root)."""
    t = mpmath.mpf(t)
    if method in ("ML", "REML"):
        return score_mp(method, y, v, t)
    return q_mp(y, v, t) - (len(y) - 1 if target is None else mpmath.mpf(target))


def solves(method, y, v, tau2, rel, target=None, floor=0.0):
    """Exactly (50 digits): the equation changes sign from + to − within tau2·(1 ± rel) ± floor, or, at
    tau2 = 0, is ≤ 0 at 0 (a boundary solution). Returns (ok, description)."""
    if tau2 == 0:
        f0 = equation_mp(method, y, v, 0, target)
        return f0 <= 0, f"f(0) = {mpmath.nstr(f0, 5)}"
    width = rel * tau2 + floor
    f_lo = equation_mp(method, y, v, max(tau2 - width, 0.0), target)
    f_hi = equation_mp(method, y, v, tau2 + width, target)
    return (f_lo >= 0) and (f_hi <= 0), f"f({tau2 - width:.6g}) = {mpmath.nstr(f_lo, 5)}, f(+) = {mpmath.nstr(f_hi, 5)}"
