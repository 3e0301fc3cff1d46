"""Effect sizes and their sampling variances, as metafor's ``escalc()`` computes them.

Every function is a pure function of arrays (any shape, broadcast elementwise) and returns
``(yi, vi)``. Group 1 is the cases (the depressed group): every difference is cases minus controls.

Measures (metafor names):

* ``SMD``  Hedges' g with the exact bias correction c(m) and, by default, metafor's large-sample
  variance ``vtype="LS"``; ``vtype="UB"`` gives the unbiased variance (meta's default).
* ``MD``   raw mean difference, variance s1²/n1 + s2²/n2 (metafor ``vtype="LS"``).
* ``ROM``  log ratio of means, plain delta-method variance (metafor ≤ 4.x, no bias correction).
* ``ZCOR`` Fisher's z of a correlation, variance 1/(n − 3).
* ``GEN``  a precomputed effect with its variance (given as ``vi``, ``sei`` or a 95% CI).
"""

from __future__ import annotations

import numpy as np

from metarepro._core import dist
from metarepro._core.dist import special

MEASURES = ("SMD", "MD", "ROM", "ZCOR", "GEN")
SMD_VTYPES = ("LS", "UB", "RM5")


def hedges_correction(m):
    """Exact small-sample bias factor c(m) of Hedges' g, on the log scale so large m cannot overflow.

    c(m) = Γ(m/2) / (√(m/2) Γ((m−1)/2)); NaN where m ≤ 1 (as metafor).
    """
    m = np.asarray(m, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.exp(special.gammaln(m / 2) - 0.5 * np.log(m / 2) - special.gammaln((m - 1) / 2))
    return np.where(m > 1, out, np.nan)


def pooled_sd(n1, sd1, n2, sd2):
    """Pooled within-group standard deviation with n1 + n2 − 2 degrees of freedom."""
    n1, sd1, n2, sd2 = (np.asarray(a, dtype=float) for a in (n1, sd1, n2, sd2))
    return np.sqrt(((n1 - 1) * sd1**2 + (n2 - 1) * sd2**2) / (n1 + n2 - 2))


def smd_from_d(d, n1, n2, vtype="LS"):
    """Hedges' g and its variance from an uncorrected standardized difference d (metafor's SMD path).

    ``vtype``: ``"LS"`` metafor's default large-sample variance 1/n1 + 1/n2 + g²/(2N);
    ``"UB"`` the unbiased variance; ``"RM5"`` RevMan 5's approximate correction J = 1 − 3/(4N − 9)
    and variance N/(n1 n2) + g²/(2(N − 3.94)) (Deeks & Higgins 2010, "Statistical algorithms in
    Review Manager 5"), used by the ``revman`` preset.
    """
    if vtype not in SMD_VTYPES:
        raise ValueError(f"vtype must be one of {SMD_VTYPES}, not {vtype!r}")
    d, n1, n2 = (np.asarray(a, dtype=float) for a in (d, n1, n2))
    if vtype == "RM5":
        total = n1 + n2
        g = (1 - 3 / (4 * total - 9)) * d
        return g, total / (n1 * n2) + g**2 / (2 * (total - 3.94))
    m = n1 + n2 - 2
    c = hedges_correction(m)
    g = c * d
    if vtype == "LS":
        vi = 1 / n1 + 1 / n2 + g**2 / (2 * (n1 + n2))
    else:
        vi = 1 / n1 + 1 / n2 + (1 - (m - 2) / (m * c**2)) * g**2
    return g, vi


def smd(n1, m1, sd1, n2, m2, sd2, vtype="LS"):
    """Standardized mean difference (Hedges' g) from group summaries, metafor ``measure="SMD"``."""
    d = (np.asarray(m1, dtype=float) - np.asarray(m2, dtype=float)) / pooled_sd(n1, sd1, n2, sd2)
    return smd_from_d(d, n1, n2, vtype)


def md(n1, m1, sd1, n2, m2, sd2):
    """Raw mean difference (e.g. pg/mL) with the heteroscedastic variance s1²/n1 + s2²/n2."""
    n1, m1, sd1, n2, m2, sd2 = (np.asarray(a, dtype=float) for a in (n1, m1, sd1, n2, m2, sd2))
    return m1 - m2, sd1**2 / n1 + sd2**2 / n2


def rom(n1, m1, sd1, n2, m2, sd2):
    """Log ratio of means ln(m1/m2) with the delta-method variance; both means must be positive."""
    n1, m1, sd1, n2, m2, sd2 = (np.asarray(a, dtype=float) for a in (n1, m1, sd1, n2, m2, sd2))
    with np.errstate(invalid="ignore", divide="ignore"):
        yi = np.log(m1 / m2)
    return yi, sd1**2 / (n1 * m1**2) + sd2**2 / (n2 * m2**2)


def zcor(r, n):
    """Fisher's r-to-z transformation with variance 1/(n − 3)."""
    r, n = np.asarray(r, dtype=float), np.asarray(n, dtype=float)
    return np.arctanh(r), 1 / (n - 3)


def vi_from_ci(ci_low, ci_high, level=95):
    """Sampling variance of an effect reported with a symmetric (Wald) CI on the analysis scale."""
    crit = dist.norm_ppf(0.5 + level / 200)
    half_width = (np.asarray(ci_high, dtype=float) - np.asarray(ci_low, dtype=float)) / (2 * crit)
    return half_width**2


def transform_back(measure, x):
    """Back-transform estimates of ``ROM`` (ratio of means) and ``ZCOR`` (correlation r); None otherwise."""
    if measure == "ROM":
        return np.exp(x)
    if measure == "ZCOR":
        return np.tanh(x)
    return None
