"""How close is close enough: one tolerance per way a quantity is computed.

Every comparison in the tests uses one of these, so a tolerance says why it is what it is and holds on any
machine (BLAS, libm and compiler may round each operation differently, by up to a few units of the last place).

EPS is double precision's unit roundoff (2.2e-16). The tolerances, from tightest to loosest:

* ``FORMULA``: the same closed-form formula evaluated two ways (a few operations on well-scaled inputs, no
  cancellation): relative error a few hundred EPS at most.
* ``difference_atol(*terms)``: a difference or sum of nearly equal numbers (``ci_high - estimate``, x·β̂ with
  large terms of both signs) is accurate only *relative to the largest term*, not to the result: the absolute
  error is a small multiple of EPS · Σ|term|. Use it as ``atol`` with ``rtol=0``.
* ``ITERATIVE``: a root of an estimating equation (τ², a Q-profile bound, a permutation-free iterative fit)
  solved here to ~1e-14 relative and compared with a closed form or with R metafor run with threshold 1e-13:
  agreement to 1e-8 relative (1e-10 absolute near zero) leaves room for the other side's stopping rule.
* ``conditioned_rtol(X)``: a meta-regression coefficient carries the condition number of its design
  (κ(X)·EPS per solve); 1e-8 is replaced by max(1e-8, 100·κ·EPS).
* p-values far in the tail are compared on the log scale (``log_p_close``): a p of 1e-30 is computed from a
  statistic accurate to ~1e-15 relative, so p itself is accurate only to ~|z|²·1e-15 relative.
"""

from __future__ import annotations

import numpy as np

EPS = np.finfo(float).eps
FORMULA = 512 * EPS  # ~1.1e-13
ITERATIVE = {"rtol": 1e-8, "atol": 1e-10}


def difference_atol(*terms, ulps=64) -> float:
    """Absolute tolerance for a sum/difference of ``terms``: ``ulps`` · EPS · Σ|term| (over all elements)."""
    scale = sum(float(np.sum(np.abs(np.asarray(t, dtype=float)))) for t in terms)
    return ulps * EPS * scale


def conditioned_rtol(X, floor=1e-8) -> float:
    """Relative tolerance for coefficients of a least-squares/GLS fit with design ``X``."""
    return max(floor, 100 * float(np.linalg.cond(np.asarray(X, dtype=float))) * EPS)


def log_p_close(actual, expected, z=None) -> bool:
    """p-values agree on the log scale (relative error allowed grows as z² in the tail)."""
    actual, expected = np.asarray(actual, dtype=float), np.asarray(expected, dtype=float)
    z2 = 1.0 if z is None else np.maximum(1.0, np.asarray(z, dtype=float) ** 2)
    return bool(np.all(np.abs(np.log(actual) - np.log(expected)) <= 1e-8 * z2))

# A maximum located by a quasi-Newton optimizer from log-likelihood values alone (R's nlminb in metafor's rma.mv,
# stopping at a relative change of 1e-10 in the log-likelihood): near the maximum ll changes with the square of the
# distance from it, so the variance components are located only to about sqrt(1e-10) = 1e-5 relative, and every
# quantity computed from them inherits that (metarepro's rma_mv solves the score equation instead).
OPTIMIZER = {"rtol": 1e-5, "atol": 1e-8}

# An optimum located by lme4 (R's glmer, behind metafor's rma.glmm for every model but the exact CM.EL): Nelder-Mead /
# bobyqa stop when the deviance (−2 ll) changes by less than FtolAbs = 1e-5, so R's fixed effect may lie up to
# ~√1e-5 ≈ 0.003 of its standard error from the optimum (a deviance 1e-5 above the minimum is (δ/se)² = 1e-5 away):
# allowed 0.01 se. Its variance components, I², Wald QE and se (lme4's se comes from a finite-difference Hessian of a
# deviance computed only to tolPwrss) to 1% relative. metarepro's rma_glmm maximizes to its own optimum instead
# (tests/stats/test_glmm.py checks the likelihood itself against lme4's).
GLMER = {"beta_se": 0.01, "rtol": 0.01}
