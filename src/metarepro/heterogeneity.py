"""Heterogeneity statistics: Cochran's Q, I², H², and the Q-profile CI of τ² (metafor ``confint``).

* Q_E always uses the inverse-variance weights 1/v, whatever the τ² estimator (metafor).
* I² and H² are metafor's τ²-based definitions with the "typical" sampling variance
  ṽ = (k−1)Σw/((Σw)² − Σw²), w = 1/v: I² = 100·τ²/(ṽ+τ²), H² = 1 + τ²/ṽ. For ``EE`` fits they are
  the Q-based I² = max(0, 100(Q−df)/Q) and H² = Q/df.
* The τ² CI is the Q-profile interval (Viechtbauer 2007): the τ² at which the generalized Q equals
  the χ²(k−1) quantiles, searched on [0, max(100, 10τ̂²)] as metafor does; the I² CI plugs its bounds
  into the I² formula. Not computed (NaN) for ``EE`` fits, as metafor's ``confint`` refuses them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from ._batch import at_tau2, solve_decreasing
from .tau2 import q_of_tau2


@dataclass(frozen=True)
class Heterogeneity:
    q: np.ndarray
    q_p: np.ndarray
    typical_v: np.ndarray
    i2: np.ndarray
    h2: np.ndarray
    tau2_ci_low: np.ndarray
    tau2_ci_high: np.ndarray
    i2_ci_low: np.ndarray
    i2_ci_high: np.ndarray
    converged: np.ndarray


def i2_from_tau2(tau2, typical_v):
    return 100 * tau2 / (typical_v + tau2)


def q_profile_ci(batch, tau2_hat, level, control):
    """Q-profile bounds for τ² (metafor ``confint.rma.uni``, type "QP"), vectorized.

    Returns (low, high, converged). Where even τ² = 0 gives a Q below the lower quantile, both bounds
    are 0, as in metafor.
    """
    df = (batch.k - 1).astype(float)
    alpha = 1 - level / 100
    with np.errstate(invalid="ignore"):
        crit_upper_bound = stats.chi2.ppf(alpha / 2, df)  # Q = this at the upper τ² bound
        crit_lower_bound = stats.chi2.ppf(1 - alpha / 2, df)
    tau2_max = np.maximum(100.0, 10 * tau2_hat)
    fun = q_of_tau2(batch)
    q_min, q_max = fun(np.zeros_like(tau2_hat))[0], fun(tau2_max)[0]
    valid = batch.k > 1

    def bound(target, inside):
        root, converged, _ = solve_decreasing(
            fun, target, np.zeros_like(tau2_hat), tau2_max, inside, control.tol, control.maxiter
        )
        return root, converged | ~inside

    upper_inside = valid & (q_min >= crit_upper_bound) & (q_max <= crit_upper_bound)
    upper, ok_u = bound(crit_upper_bound, upper_inside)
    upper = np.where(q_max > crit_upper_bound, tau2_max, upper)
    upper = np.where(q_min < crit_upper_bound, 0.0, upper)

    lower_inside = valid & (q_min >= crit_lower_bound) & (q_max <= crit_lower_bound)
    lower, ok_l = bound(crit_lower_bound, lower_inside)
    lower = np.where(q_min < crit_lower_bound, 0.0, lower)
    lower = np.where(q_max > crit_lower_bound, tau2_max, lower)
    return np.where(valid, lower, np.nan), np.where(valid, upper, np.nan), ok_u & ok_l


def heterogeneity(batch, tau2, method, level, control) -> Heterogeneity:
    k = batch.k
    df = (k - 1).astype(float)
    fe = at_tau2(batch, np.zeros_like(tau2))
    q = np.where(k > 1, np.maximum(0.0, fe.q), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        q_p = np.where(k > 1, stats.chi2.sf(q, df), 1.0)
        typical_v = df * fe.s / (fe.s**2 - fe.s2)
        if method == "EE":
            i2 = np.where(k > 1, np.maximum(0.0, 100 * (q - df) / q), 0.0)
            h2 = np.where(k > 1, q / df, 1.0)
            nan = np.full(tau2.shape, np.nan)
            return Heterogeneity(q, q_p, typical_v, i2, h2, nan, nan, nan, nan, np.ones(tau2.shape, bool))
        i2 = np.where(k > 1, i2_from_tau2(tau2, typical_v), 0.0)
        h2 = np.where(k > 1, 1 + tau2 / typical_v, 1.0)
        low, high, converged = q_profile_ci(batch, tau2, level, control)
        return Heterogeneity(
            q, q_p, typical_v, i2, h2, low, high,
            i2_from_tau2(low, typical_v), i2_from_tau2(high, typical_v), converged,
        )  # fmt: skip
