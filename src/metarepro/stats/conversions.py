"""Turning what a paper reports into what a meta-analysis needs. Pure functions over arrays.

Group summaries (per group; n is that group's size):

* SEM → SD: sd = sem·√n.
* 95% CI of a mean → SD: sd = √n·(high − low)/(2·t(n−1, 0.975)) (Cochrane Handbook 6.5.2.2); the
  mean, if not reported, is the CI's midpoint.
* Median with quartiles and/or range → mean and SD, the default methods of metafor's
  ``conv.fivenum`` (``method="luo/wan/shi"``): Luo et al. 2018 for the mean, Wan et al. 2014 (range or
  IQR) and Shi et al. 2020 (both) for the SD, with metafor's skewness tests (Shi et al. 2023) as flags.

Standardized differences from test statistics (then Hedges-corrected like any SMD, see
:func:`metarepro.stats.effects.smd_from_d`):

* t (cases − controls) → d = t·√(1/n1 + 1/n2) (metafor ``escalc(ti=)``).
* two-sided p with a direction → t = ±t⁻¹(N−2, 1 − p/2), then as above (metafor ``pi=``).
* Cohen's d (cases − controls) with both group sizes → Hedges' g (metafor ``escalc(di=)``).
* z with a direction → used as a t: d = ±|z|·√(1/n1 + 1/n2) (metafor ``ti=``; a large-sample equivalence,
  so for small groups or a rank-test z it is an approximation).
* F with one numerator df and a direction → |t| = √F, sign from the direction, then as t (metafor ``ti=``).
* point-biserial r → d = √(m/n1 + m/n2)·r/√(1 − r²), m = n1 + n2 − 2 (metafor ``ri=`` for SMD).
"""

from __future__ import annotations

import numpy as np

from metarepro._core import dist


def _f(x):
    return np.asarray(x, dtype=float)


def sd_from_sem(sem, n):
    return _f(sem) * np.sqrt(_f(n))


def sd_from_ci(low, high, n, level=95):
    n = _f(n)
    with np.errstate(invalid="ignore"):
        crit = dist.t_ppf(0.5 + level / 200, n - 1)
    return np.sqrt(n) * (_f(high) - _f(low)) / (2 * crit)


def _xi(n):
    """Expected range of n standard normal draws (Wan 2014 eq. 9 approximation): 2Φ⁻¹((n−0.375)/(n+0.25))."""
    return 2 * dist.norm_ppf((n - 0.375) / (n + 0.25))


def _eta(n):
    """Expected interquartile range of n standard normal draws: 2Φ⁻¹((0.75n−0.125)/(n+0.25))."""
    return 2 * dist.norm_ppf((0.75 * n - 0.125) / (n + 0.25))


def mean_sd_from_fivenum(n, median, q1=np.nan, q3=np.nan, minimum=np.nan, maximum=np.nan):
    """Mean, SD and a skewness flag from (min, median, max), (q1, median, q3) or all five.

    Returns (mean, sd, skewed). NaN where the inputs fit none of the three cases. ``skewed`` is
    metafor's ``conv.fivenum`` test (which, with ``test=TRUE``, drops such rows); we keep and flag them.
    """
    n, med = _f(n), _f(median)
    q1, q3, lo, hi = _f(q1), _f(q3), _f(minimum), _f(maximum)
    n, med, q1, q3, lo, hi = np.broadcast_arrays(n, med, q1, q3, lo, hi)
    has_q = np.isfinite(q1) & np.isfinite(q3) & np.isfinite(med)
    has_r = np.isfinite(lo) & np.isfinite(hi) & np.isfinite(med)
    with np.errstate(invalid="ignore", divide="ignore"):
        # case 1: min, median, max (Luo eq. 7; Wan eq. 9)
        w1 = 4 / (4 + n**0.75)
        mean1 = w1 * (lo + hi) / 2 + (1 - w1) * med
        sd1 = (hi - lo) / _xi(n)
        skew1 = np.abs(lo + hi - 2 * med) / (hi - lo) >= 1 / np.log(n + 9) + 2.5 / (n + 1)
        # case 2: q1, median, q3 (Luo eq. 11; Wan eq. 16)
        w2 = 0.7 + 0.39 / n
        mean2 = w2 * (q1 + q3) / 2 + (1 - w2) * med
        sd2 = (q3 - q1) / _eta(n)
        skew2 = np.abs(q1 + q3 - 2 * med) / (q3 - q1) >= 2.65 / np.sqrt(n) - 6 / n**2
        # case 3: all five (Luo eq. 15; Shi 2020 eq. 10)
        wa, wb = 2.2 / (2.2 + n**0.75), 0.7 - 0.72 / n**0.55
        mean3 = wa * (lo + hi) / 2 + wb * (q1 + q3) / 2 + (1 - wa - wb) * med
        ws = 1 / (1 + 0.07 * n**0.6)
        sd3 = ws * (hi - lo) / _xi(n) + (1 - ws) * (q3 - q1) / _eta(n)
        skew3 = (
            np.maximum(
                2.65 * np.log(0.6 * n) / np.sqrt(n) * np.abs(lo + hi - 2 * med) / (hi - lo),
                np.abs(q1 + q3 - 2 * med) / (q3 - q1),
            )
            >= 3 / np.sqrt(n) - 40 / n**3
        )
    both = has_q & has_r
    only_q = has_q & ~has_r
    only_r = has_r & ~has_q
    mean = np.select([both, only_q, only_r], [mean3, mean2, mean1], np.nan)
    sd = np.select([both, only_q, only_r], [sd3, sd2, sd1], np.nan)
    skewed = np.select([both, only_q, only_r], [skew3, skew2, skew1], False).astype(bool)
    return mean, sd, skewed


def d_from_t(t, n1, n2):
    return _f(t) * np.sqrt(1 / _f(n1) + 1 / _f(n2))


def t_from_z(z, direction_sign):
    """A z statistic as a t: its size, signed by the direction (a test's sign depends on its group order)."""
    return _f(direction_sign) * np.abs(_f(z))


def t_from_f(f, direction_sign):
    """|t| = √F for an F with one numerator df; the sign comes from the direction."""
    with np.errstate(invalid="ignore"):
        return _f(direction_sign) * np.sqrt(_f(f))


def t_from_p(p, direction_sign, n1, n2):
    """Signed t from a two-sided p and the direction (+1: cases higher, −1: cases lower)."""
    return _f(direction_sign) * dist.t_isf(_f(p) / 2, _f(n1) + _f(n2) - 2)


def d_from_point_biserial(r, n1, n2):
    r, n1, n2 = _f(r), _f(n1), _f(n2)
    m = n1 + n2 - 2
    return np.sqrt(m / n1 + m / n2) * r / np.sqrt(1 - r**2)


# Mass concentrations in one base unit (pg/mL); anything else (nmol/L, IU/mL, OD) cannot be converted
# without knowing the molecule, so such rows are excluded from MD analyses with a reason.
PG_PER_ML = {
    "pg/ml": 1.0,
    "ng/l": 1.0,
    "ng/ml": 1e3,
    "ug/l": 1e3,
    "ug/ml": 1e6,
    "mg/l": 1e6,
    "mg/dl": 1e7,
    "g/l": 1e9,
}


def normalize_unit(unit: str) -> str:
    return str(unit).strip().lower().replace("µ", "u").replace("μ", "u").replace(" ", "")


def unit_factor(unit_from: str, unit_to: str) -> float:
    """Multiply values in ``unit_from`` by this to express them in ``unit_to``; NaN if not convertible."""
    a, b = PG_PER_ML.get(normalize_unit(unit_from)), PG_PER_ML.get(normalize_unit(unit_to))
    return np.nan if a is None or b is None else a / b
