"""The Mantel–Haenszel method for 2×2 tables, metafor 3.8-1's ``rma.mh()`` (measures OR, RR, RD).

An equal-effects pooled estimate computed from the tables themselves (no per-study variances), so tables with
zero cells need no correction:

* ``OR``: Mantel & Haenszel's (1959) ratio R/S, R = Σ aᵢdᵢ/Nᵢ, S = Σ bᵢcᵢ/Nᵢ, with the Robins, Breslow & Greenland
  (1986) variance of its log; the Cochran–Mantel–Haenszel test (``MH``, with ``correct=True`` the continuity
  correction ½, metafor's default; ``CO`` is Cochran's test, with Nᵢ instead of Nᵢ − 1 in the variance); the
  Breslow–Day test (``BD``) and Tarone's (1985) corrected version of it (``TA``) for heterogeneity, over the
  ``k_pos`` tables with events and non-events.
* ``RR``: Σ aᵢn2ᵢ/Nᵢ / Σ cᵢn1ᵢ/Nᵢ with the Greenland & Robins (1985) variance of its log.
* ``RD``: Σ (aᵢn2ᵢ − cᵢn1ᵢ)/Nᵢ / Σ n1ᵢn2ᵢ/Nᵢ with the Sato, Greenland & Robins (1989) variance, which holds in both
  large-stratum and sparse-data limits, as metafor (Greenland & Robins 1985 for the estimate).

Q, I² and H² are metafor's: Q = Σ wᵢ(yᵢ − β̂)², wᵢ = 1/vᵢ, over the studies whose yᵢ, vᵢ (from ``escalc`` with
``add[0]``, ``to[0]``, ``drop00[0]``) are not missing; I² = max(0, 100(Q − df)/Q), H² = Q/df, df = k_yi − 1.

``add``, ``to``, ``drop00`` are pairs as in metafor: the first for the studies' yi, vi (defaults 1/2,
``"only0"``, True: double-zero studies have no yi), the second for the tables pooled (defaults 0, ``"none"``,
False). Give one value to set the first. ``weights`` are metafor's ``weights.rma.mh`` in percent, one per input
table (NaN for a table left out).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from metarepro._core import dist
from metarepro._core.printing import Printable
from metarepro._core.spellings import percent_level
from metarepro.stats.effects_binary import pooled_tables

MH_MEASURES = ("OR", "RR", "RD")


@dataclass(repr=False)
class TablesFit(Printable):
    """What a Mantel–Haenszel and a Peto fit share, with metafor's field names (``ci.lb`` → ``ci_lb``, ``k.yi`` →
    ``k_yi``): ``k`` tables pooled, ``k_yi`` study effects in Q, ``k_pos`` tables in Tarone's (MH) or Peto's
    heterogeneity test; ``yi, vi`` those studies' effects; ``yi_f, vi_f`` and ``weights`` one per input table."""

    measure: str
    level: float
    k: int
    k_yi: int
    k_pos: int
    beta: float
    se: float
    zval: float
    pval: float
    ci_lb: float
    ci_ub: float
    QE: float
    QEp: float
    I2: float
    H2: float
    yi: np.ndarray
    vi: np.ndarray
    yi_f: np.ndarray
    vi_f: np.ndarray
    weights: np.ndarray
    add: tuple
    to: tuple
    drop00: tuple
    warnings: tuple
    method: str = "FE"  # metafor's name of the equal-effects model here
    test: str = "z"
    tau2: float = 0.0


@dataclass(repr=False, kw_only=True)  # printing.Printable gives metafor's print.rma.mh
class RmaMhResult(TablesFit):
    """A Mantel–Haenszel fit: the shared fields and the tests of the OR (NaN for RR and RD, and ``k_pos`` 0)."""

    correct: bool
    CO: float
    COp: float
    MH: float
    MHp: float
    BD: float
    BDp: float
    TA: float
    TAp: float


def wald(beta, se, level):
    """z, two-sided p and the Wald CI of an estimate (NaN where the estimate is)."""
    crit = dist.norm_isf((1 - level / 100) / 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        zval = beta / se
    return zval, 2 * dist.norm_sf(abs(zval)), beta - crit * se, beta + crit * se


def heterogeneity_q(yi, vi, beta):
    """metafor's Q (inverse-variance weights), its p, I² and H² around a pooled ``beta`` (k − 1 df; 0, 1, 0, 1 for
    one study)."""
    k = yi.size
    if k <= 1:
        return 0.0, 1.0, 0.0, 1.0
    q = max(0.0, float(np.sum((yi - beta) ** 2 / vi)))
    with np.errstate(invalid="ignore", divide="ignore"):
        return q, float(dist.chi2_sf(q, k - 1)), max(0.0, 100 * (q - (k - 1)) / q), q / (k - 1)


def shared_fields(t, measure, level, beta, se, k_pos, heterogeneity, weight) -> dict:
    """The :class:`TablesFit` fields of a fit of the tables ``t`` (:func:`pooled_tables`): the Wald test and CI of
    ``beta``, ``heterogeneity`` (QE, QEp, I2, H2) and the tables' ``weight`` in percent, one per input table."""
    zval, pval, ci_lb, ci_ub = wald(float(beta), float(se), level)
    weights = np.full(t.used.shape, np.nan)
    weights[t.used] = 100 * weight / weight.sum()
    return dict(zip(("QE", "QEp", "I2", "H2"), heterogeneity, strict=True)) | {
        "measure": measure, "level": level, "k": int(t.used.sum()), "k_yi": int(t.yi.size), "k_pos": k_pos,
        "beta": float(beta), "se": float(se), "zval": float(zval), "pval": float(pval), "ci_lb": float(ci_lb),
        "ci_ub": float(ci_ub), "yi": t.yi, "vi": t.vi, "yi_f": t.yi_f, "vi_f": t.vi_f, "weights": weights,
        "add": t.add, "to": t.to, "drop00": t.drop00, "warnings": t.warnings}  # fmt: skip


def _odds_ratio(a, b, c, d, n1, n2, n, correct):
    """MH odds ratio and its tests (see the module docstring), as metafor computes them."""
    nan = float("nan")
    P, Q, R, S = (a + d) / n, (b + c) / n, a / n * d, b / n * c
    r, s = R.sum(), S.sum()
    if r == 0 or s == 0:
        beta = se = nan
    else:
        beta = np.log(r / s)
        se = np.sqrt(0.5 * (np.sum(P * R) / r**2 + np.sum(P * S + Q * R) / (r * s) + np.sum(Q * S) / s**2))
    xt, yt = a + c, b + d
    tests = dict.fromkeys(("CO", "COp", "MH", "MHp", "BD", "BDp", "TA", "TAp"), nan)
    if xt.sum() != 0 and yt.sum() != 0:
        deviation = (abs(np.sum(a - n1 / n * xt)) - (0.5 if correct else 0.0)) ** 2
        tests["CO"] = deviation / np.sum(n1 / n * (n2 / n) * (xt * (yt / n)))
        tests["MH"] = deviation / np.sum(n1 / n * (n2 / n) * (xt * (yt / (n - 1))))
        tests["COp"], tests["MHp"] = dist.chi2_sf(tests["CO"], 1), dist.chi2_sf(tests["MH"], 1)
    k_pos = 0
    if np.isfinite(beta):
        psi = r / s
        if psi == 1:
            n11 = n1 / n * xt
        else:  # the expected a under the common odds ratio: the root of a quadratic (Breslow & Day 1980)
            A = psi * (n1 + xt) + (n2 - xt)
            n11 = (A - np.sqrt(A**2 - 4 * n1 * xt * psi * (psi - 1))) / (2 * (psi - 1))
        pos = (n11 > 0) & (xt > 0) & (yt > 0)
        k_pos = int(pos.sum())
        n11 = n11[pos]
        n12, n21 = n1[pos] - n11, xt[pos] - n11
        n22 = n11 - n1[pos] - xt[pos] + n[pos]
        inverse_var = 1 / (1 / n11 + 1 / n12 + 1 / n21 + 1 / n22)
        gap = a[pos] - n11
        tests["BD"] = max(0.0, float(np.sum(gap**2 / inverse_var)))
        tests["TA"] = max(0.0, tests["BD"] - float(np.sum(gap) ** 2 / np.sum(inverse_var)))
        if k_pos > 1:
            tests["BDp"], tests["TAp"] = dist.chi2_sf(tests["BD"], k_pos - 1), dist.chi2_sf(tests["TA"], k_pos - 1)
    return beta, se, k_pos, tests


def rma_mh(ai, bi=None, ci=None, di=None, n1i=None, n2i=None, measure="OR", add=0.5, to="only0", drop00=True,
           correct=True, level=95) -> RmaMhResult:  # fmt: skip
    """Mantel–Haenszel pooling of 2×2 tables (``ai, bi, ci, di`` or ``ai, n1i, ci, n2i``), metafor's ``rma.mh``.

    Defaults as metafor 3.8-1: ``measure="OR"``, ``add=(1/2, 0)``, ``to=("only0", "none")``,
    ``drop00=(True, False)``, ``correct=True``, ``level=95`` (see the module docstring).
    """
    if measure not in MH_MEASURES:
        raise ValueError(f"measure must be one of {', '.join(MH_MEASURES)} for the Mantel-Haenszel method (metafor "
                         f"rma.mh), not {measure!r}")  # fmt: skip
    level = percent_level(level)
    t = pooled_tables(measure, ai, bi, ci, di, n1i, n2i, add, to, drop00)
    a, b, c, d = t.ai, t.bi, t.ci, t.di
    n1, n2 = a + b, c + d
    n = n1 + n2
    nan = float("nan")
    tests, k_pos = dict.fromkeys(("CO", "COp", "MH", "MHp", "BD", "BDp", "TA", "TAp"), nan), 0
    if measure == "OR":
        beta, se, k_pos, tests = _odds_ratio(a, b, c, d, n1, n2, n, correct)
        weight = b / n * c
    elif measure == "RR":
        r, s = np.sum(a * (n2 / n)), np.sum(c * (n1 / n))
        if a.sum() == 0 or c.sum() == 0:
            beta = se = nan
        else:
            beta = np.log(r / s)
            se = np.sqrt(np.sum(n1 / n * (n2 / n) * (a + c) - a / n * c) / (r * s))
        weight = c / n * n1
    else:
        total = np.sum(n1 * (n2 / n))
        beta = np.sum(a * (n2 / n) - c * (n1 / n)) / total
        spread = np.sum(c * (n1 / n) ** 2 - a * (n2 / n) ** 2 + (n1 / n) * (n2 / n) * (n2 - n1) / 2)
        se = np.sqrt((beta * spread + np.sum(a * (n2 - c) / n + c * (n1 - a) / n) / 2) / total**2)
        weight = n1 / n * n2
    fields = shared_fields(t, measure, level, beta, se, k_pos, heterogeneity_q(t.yi, t.vi, beta), weight)
    return RmaMhResult(**fields, correct=correct, **{key: float(value) for key, value in tests.items()})
