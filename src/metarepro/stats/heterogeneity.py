"""Heterogeneity statistics: Cochran's Q, I², H², and the Q-profile CI of τ² (metafor ``confint``).

* Q_E always uses the inverse-variance weights 1/v, whatever the τ² estimator (metafor).
* I² and H² are metafor's τ²-based definitions with the "typical" sampling variance
  ṽ = (k−1)Σw/((Σw)² − Σw²), w = 1/v: I² = 100·τ²/(ṽ+τ²), H² = 1 + τ²/ṽ. For ``EE`` fits they are
  the Q-based I² = max(0, 100(Q−df)/Q) and H² = Q/df.
* The τ² CI is the Q-profile interval (Viechtbauer 2007): the τ² at which the generalized Q equals
  the χ²(k−1) quantiles. Q(W(τ²)) falls to 0 as τ² grows, so both bounds exist; unlike metafor (which
  stops at max(100, 10τ̂²) and prints "> 100") the search goes on until it finds them, up to
  ``tau2.SEARCH_CAP`` × the data's scale. A bound not found below that limit is reported as the limit
  with ``tau2_ci_high_capped`` / ``tau2_ci_low_capped`` True (never as a number that looks found).
  The I² CI plugs the τ² bounds into the I² formula (and is capped with them). Not computed (NaN)
  for ``EE`` fits, as metafor's ``confint`` refuses them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from metarepro._core.batch import at_tau2
from metarepro._core.dist import special
from metarepro.stats.tau2 import solve_q


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
    tau2_ci_low_capped: np.ndarray
    tau2_ci_high_capped: np.ndarray


def i2_from_tau2(tau2, typical_v):
    return 100 * tau2 / (typical_v + tau2)


def chi2_quantiles(df, level):
    """The χ²(df) quantiles at α/2 and 1 − α/2 (scipy.special: a fraction of scipy.stats' call cost)."""
    alpha = 1 - level / 100
    df = np.asarray(df, dtype=float)
    unique, inverse = np.unique(df, return_inverse=True)
    with np.errstate(invalid="ignore"):
        low, high = special.chdtri(unique, 1 - alpha / 2), special.chdtri(unique, alpha / 2)
    return low[inverse].reshape(df.shape), high[inverse].reshape(df.shape)


def q_profile_ci(batch, tau2_hat, level, control, q0):
    """Q-profile bounds for τ² (metafor ``confint.rma.uni``, type "QP"), vectorized; ``batch`` is a model of
    :mod:`metarepro.stats.tau2` (intercept-only or a design matrix: the quantiles of χ²(k − p)).

    ``q0`` is Q(W(0)) = Q_E. Returns (low, high, converged, low_capped, high_capped). Where even τ² = 0
    gives a Q below the lower quantile, both bounds are 0, as in metafor.
    """
    df = (batch.k - batch.p).astype(float)
    valid = batch.k > batch.p
    c_low, c_high = chi2_quantiles(np.where(valid, df, 1.0), level)  # Q = c_low at the upper τ² bound
    start = np.maximum(tau2_hat, 0.0)
    upper_inside = valid & (q0 > c_low)
    lower_inside = valid & (q0 > c_high)
    both = np.concatenate([upper_inside, lower_inside])
    # the two bounds are one batch of roots: each analysis twice, once per target
    root = solve_q(batch, np.concatenate([c_low, c_high]), np.concatenate([start, start]), both, control)
    n = batch.k.size
    upper, lower = np.where(upper_inside, root.x[:n], 0.0), np.where(lower_inside, root.x[n:], 0.0)
    ok = np.where(both, root.converged | root.capped, True)
    capped = root.capped & both
    nan = np.where(valid, 0.0, np.nan)
    return lower + nan, upper + nan, ok[:n] & ok[n:], capped[n:], capped[:n]


def heterogeneity(batch, tau2, method, level, control, fe=None, tau2_ci=True) -> Heterogeneity:
    """Q, I², H² and (unless ``tau2_ci`` is False, then NaN) the Q-profile CIs of τ² and I²."""
    k = batch.k
    df = (k - 1).astype(float)
    fe = at_tau2(batch, np.zeros_like(tau2)) if fe is None else fe
    q = np.where(k > 1, np.maximum(0.0, fe.q), 0.0)
    none = np.zeros(tau2.shape, dtype=bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        q_p = np.where(k > 1, special.chdtrc(np.where(k > 1, df, 1.0), q), 1.0)
        typical_v = df / fe.tr_p
        if method == "EE":
            i2 = np.where(k > 1, np.maximum(0.0, 100 * (q - df) / q), 0.0)
            h2 = np.where(k > 1, q / df, 1.0)
            nan = np.full(tau2.shape, np.nan)
            return Heterogeneity(q, q_p, typical_v, i2, h2, nan, nan, nan, nan, ~none, none, none)
        i2 = np.where(k > 1, i2_from_tau2(tau2, typical_v), 0.0)
        h2 = np.where(k > 1, 1 + tau2 / typical_v, 1.0)
        if not tau2_ci:
            nan = np.full(tau2.shape, np.nan)
            return Heterogeneity(q, q_p, typical_v, i2, h2, nan, nan, nan, nan, ~none, none, none)
        low, high, converged, low_capped, high_capped = q_profile_ci(batch, tau2, level, control, fe.q)
        return Heterogeneity(
            q, q_p, typical_v, i2, h2, low, high,
            i2_from_tau2(low, typical_v), i2_from_tau2(high, typical_v), converged, low_capped, high_capped,
        )  # fmt: skip


def confint_table(tau2, tau2_ci, i2, i2_ci, h2):
    """metafor's ``confint(fit)$random``: τ², τ, I² (percent) and H² with their CIs, as a DataFrame. H² =
    1/(1 − I²/100) (the closed form of H² = 1 + τ²/ṽ and I² = 100τ²/(ṽ + τ²)), so its bounds are the I² bounds'."""
    import pandas as pd  # only here: the fits do not need pandas

    h2_ci = [100 / (100 - x) for x in i2_ci]
    return pd.DataFrame({"estimate": [tau2, np.sqrt(tau2), i2, h2], "ci_lb": [tau2_ci[0], np.sqrt(tau2_ci[0]),
                                                                            i2_ci[0], h2_ci[0]],
                         "ci_ub": [tau2_ci[1], np.sqrt(tau2_ci[1]), i2_ci[1], h2_ci[1]]},
                        index=["tau^2", "tau", "I^2(%)", "H^2"])  # fmt: skip
