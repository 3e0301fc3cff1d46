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
* ``VR``   log variability ratio ln(sd1/sd2) + 1/(2(n1−1)) − 1/(2(n2−1)), variance 1/(2(n1−1)) + 1/(2(n2−1))
  (Nakagawa et al. 2015, eq. 9).
* ``CVR``  log coefficient-of-variation ratio ln((sd1/m1)/(sd2/m2)) with the same small-sample terms, variance
  that of VR plus sd1²/(n1 m1²) + sd2²/(n2 m2²) (Nakagawa et al. 2015, eq. 12 without the mean–variance
  correlation terms).

VR and CVR are metafor 3.8-1's (the version the references come from). metafor 5.0 changed CVR's yi: by default
(``correct=TRUE``) it adds the second-order bias correction ½(sd2²/(n2 m2²) − sd1²/(n1 m1²)) of Senior et al.
2020 (eq. 6) to the 3.8-1 value; ``correct=FALSE`` drops both that and the 1/(2(n−1)) terms. We follow 3.8-1
(neither of 5.x's two). VR, and the variances of both, are the same in 5.x by default.

The measures from counts (OR, RR, RD, PETO; PR, PLN, PLO, PAS, PFT) are in :mod:`metarepro.stats.effects_binary`;
:func:`escalc` computes any measure by name with metafor's argument names.
"""

from __future__ import annotations

import numpy as np

from metarepro._core import dist
from metarepro._core.dist import special
from metarepro.stats import effects_binary
from metarepro.stats.effects_binary import PROPORTION_MEASURES, TABLE_MEASURES

GROUP_MEASURES = ("SMD", "MD", "ROM", "VR", "CVR")  # from two groups' means, SDs and sizes
MEASURES = ("SMD", "MD", "ROM", "ZCOR", "GEN", "VR", "CVR", *TABLE_MEASURES, *PROPORTION_MEASURES)
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


def vr(n1, sd1, n2, sd2):
    """Log variability ratio (lnVR) with its small-sample terms, metafor 3.8-1 ``measure="VR"``."""
    n1, sd1, n2, sd2 = (np.asarray(a, dtype=float) for a in (n1, sd1, n2, sd2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.log(sd1 / sd2) + 1 / (2 * (n1 - 1)) - 1 / (2 * (n2 - 1)), 1 / (2 * (n1 - 1)) + 1 / (2 * (n2 - 1))


def cvr(n1, m1, sd1, n2, m2, sd2):
    """Log coefficient-of-variation ratio (lnCVR), metafor 3.8-1 ``measure="CVR"`` (see the module docstring)."""
    n1, m1, sd1, n2, m2, sd2 = (np.asarray(a, dtype=float) for a in (n1, m1, sd1, n2, m2, sd2))
    with np.errstate(invalid="ignore", divide="ignore"):
        yi = np.log(sd1 / m1) + 1 / (2 * (n1 - 1)) - np.log(sd2 / m2) - 1 / (2 * (n2 - 1))
    vi = 1 / (2 * (n1 - 1)) + sd1**2 / (n1 * m1**2) + 1 / (2 * (n2 - 1)) + sd2**2 / (n2 * m2**2)
    return yi, vi


def zcor(r, n):
    """Fisher's r-to-z transformation with variance 1/(n − 3)."""
    r, n = np.asarray(r, dtype=float), np.asarray(n, dtype=float)
    return np.arctanh(r), 1 / (n - 3)


def vi_from_ci(ci_low, ci_high, level=95):
    """Sampling variance of an effect reported with a symmetric (Wald) CI on the analysis scale."""
    crit = dist.norm_ppf(0.5 + level / 200)
    half_width = (np.asarray(ci_high, dtype=float) - np.asarray(ci_low, dtype=float)) / (2 * crit)
    return half_width**2


def _required(measure, given, names):
    missing = [n for n in names if given[n] is None]
    if missing:
        raise ValueError(f"measure {measure} needs {', '.join(names)}; missing: {', '.join(missing)}")
    return [given[n] for n in names]


def escalc(measure, *, ai=None, bi=None, ci=None, di=None, n1i=None, n2i=None, m1i=None, sd1i=None, m2i=None,
           sd2i=None, xi=None, mi=None, ni=None, ri=None, add=None, to="only0", drop00=False, vtype="LS"):  # fmt: skip
    """Effect sizes ``(yi, vi)`` of ``measure`` with metafor's ``escalc`` argument names and defaults.

    * 2×2 tables (OR, RR, RD, PETO): ``ai, bi, ci, di`` or ``ai, n1i, ci, n2i``; zero cells as metafor:
      ``add=1/2``, ``to="only0"``, ``drop00=False`` (:mod:`metarepro.stats.effects_binary`).
    * proportions (PR, PLN, PLO, PAS, PFT): ``xi`` and ``ni`` (or ``mi``); ``add`` 1/2, but 0 for PAS and PFT.
    * two groups (SMD, MD, ROM, VR, CVR): ``m1i, sd1i, n1i, m2i, sd2i, n2i`` (VR without the means).
    * ZCOR: ``ri, ni``.

    ``vtype``: metafor's default ``"LS"``; ``"UB"`` for SMD, RD, PR; ``"AV"`` for RD, PR, PLN, PLO; ``"RM5"`` for
    SMD (see :func:`smd_from_d`).
    """
    if measure in TABLE_MEASURES:
        return effects_binary.two_by_two(measure, ai, bi, ci, di, n1i, n2i, 0.5 if add is None else add, to,
                                         drop00, vtype)  # fmt: skip
    if measure in PROPORTION_MEASURES:
        return effects_binary.proportion(measure, xi, ni, mi, add, to, vtype)
    given = {"m1i": m1i, "sd1i": sd1i, "n1i": n1i, "m2i": m2i, "sd2i": sd2i, "n2i": n2i, "ri": ri, "ni": ni}
    if measure == "VR":
        return vr(*_required(measure, given, ("n1i", "sd1i", "n2i", "sd2i")))
    if measure in GROUP_MEASURES:
        values = _required(measure, given, ("n1i", "m1i", "sd1i", "n2i", "m2i", "sd2i"))
        if measure == "SMD":
            return smd(*values, vtype=vtype)
        return {"MD": md, "ROM": rom, "CVR": cvr}[measure](*values)
    if measure == "ZCOR":
        return zcor(*_required(measure, given, ("ri", "ni")))
    raise ValueError(f"measure must be one of {', '.join(m for m in MEASURES if m != 'GEN')}, not {measure!r}")


RATIO_MEASURES = ("ROM", "OR", "RR", "PETO", "VR", "CVR", "PLN")  # log scale: exp() gives the ratio (or proportion)


def transform_back(measure, x, ni=None):
    """Back-transform estimates to the reader's scale: ratios (ROM, OR, RR, PETO, VR, CVR) and PLN proportions by
    exp, ZCOR to r, PLO by the inverse logit, PAS by sin², PFT by metafor's ``transf.ipft.hm`` (needs the studies'
    sample sizes ``ni``); None for measures already on their natural scale (SMD, MD, RD, PR, GEN)."""
    if measure in RATIO_MEASURES:
        return np.exp(x)
    if measure == "ZCOR":
        return np.tanh(x)
    if measure == "PLO":
        return special.expit(x)
    if measure == "PAS":
        return effects_binary.transf_iarcsin(x)
    if measure == "PFT":
        if ni is None:
            raise ValueError("PFT estimates are back-transformed with the studies' sample sizes: give ni")
        return effects_binary.transf_ipft_hm(x, ni)
    return None
