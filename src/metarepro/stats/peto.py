"""Peto's method for 2×2 tables, metafor 3.8-1's ``rma.peto()``: the pooled log odds ratio Σ(Oᵢ − Eᵢ) / ΣVᵢ.

Oᵢ = aᵢ, Eᵢ = (aᵢ + cᵢ) n1ᵢ/Nᵢ its expectation and Vᵢ its hypergeometric variance
(aᵢ + cᵢ)(bᵢ + dᵢ) n1ᵢ n2ᵢ / (Nᵢ²(Nᵢ − 1)) under no effect (Yusuf et al. 1985); the SE is 1/√ΣVᵢ.
The heterogeneity test is Yusuf et al.'s: Q = Σ(Oᵢ − Eᵢ)²/Vᵢ − (Σ(Oᵢ − Eᵢ))²/ΣVᵢ over the ``k_pos`` tables with
Vᵢ > 0, with k_yi − 1 df (k_yi: the studies whose Peto yi is not missing); I² = max(0, 100(Q − df)/Q),
H² = Q/df; 0, 1, 0, 1 when at most one table has Vᵢ > 0.

``add``, ``to``, ``drop00``: pairs as in :func:`metarepro.stats.mh.rma_mh` (defaults (1/2, 0),
("only0", "none"), (True, False)). ``weights``: Vᵢ in percent (metafor's ``weights.rma.peto``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from metarepro._core import dist
from metarepro._core.printing import Printable
from metarepro._core.spellings import percent_level
from metarepro.stats.effects_binary import pair, pooled_tables
from metarepro.stats.mh import wald


@dataclass(repr=False)  # printing.Printable gives metafor's print.rma.peto
class RmaPetoResult(Printable):
    """A Peto fit, with metafor's field names (``ci.lb`` → ``ci_lb``, ``k.pos`` → ``k_pos``)."""

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
    weights: np.ndarray
    add: tuple
    to: tuple
    drop00: tuple
    warnings: tuple
    measure: str = "PETO"
    method: str = "FE"
    test: str = "z"
    tau2: float = 0.0
    yi_f: np.ndarray = field(default=None, repr=False)
    vi_f: np.ndarray = field(default=None, repr=False)


def rma_peto(ai, bi=None, ci=None, di=None, n1i=None, n2i=None, add=0.5, to="only0", drop00=True,
             level=95) -> RmaPetoResult:  # fmt: skip
    """Peto's pooled log odds ratio of 2×2 tables (``ai, bi, ci, di`` or ``ai, n1i, ci, n2i``), metafor's
    ``rma.peto`` with its defaults (see the module docstring)."""
    level = percent_level(level)
    add, to, drop00 = pair(add, 0.0, "add"), pair(to, "none", "to"), pair(drop00, False, "drop00")
    t = pooled_tables("PETO", ai, bi, ci, di, n1i, n2i, add, to, drop00)
    n1, n2 = t.ai + t.bi, t.ci + t.di
    n = n1 + n2
    xt, yt = t.ai + t.ci, t.bi + t.di
    gap = t.ai - xt * n1 / n
    v = xt * yt * (n1 / n) * (n2 / n) / (n - 1)
    if v.sum() == 0:
        raise ValueError("one of the two outcomes never occurred in any of the tables: Peto's method cannot be "
                         "used (metafor rma.peto)")  # fmt: skip
    beta, se = gap.sum() / v.sum(), 1 / np.sqrt(v.sum())
    zval, pval, ci_lb, ci_ub = wald(float(beta), float(se), level)
    positive = v > 0
    k_pos, k_yi = int(positive.sum()), int(t.yi.size)
    QE = max(0.0, float(np.sum(gap[positive] ** 2 / v[positive]) - gap.sum() ** 2 / v[positive].sum()))
    if k_pos > 1:
        with np.errstate(invalid="ignore", divide="ignore"):
            QEp, I2, H2 = float(dist.chi2_sf(QE, k_yi - 1)), max(0.0, 100 * (QE - (k_yi - 1)) / QE), QE / (k_yi - 1)
    else:
        QEp, I2, H2 = 1.0, 0.0, 1.0
    weights = np.full(t.used.shape, np.nan)
    weights[t.used] = 100 * v / v.sum()
    return RmaPetoResult(
        level=level, k=int(t.used.sum()), k_yi=k_yi, k_pos=k_pos, beta=float(beta), se=float(se), zval=float(zval),
        pval=float(pval), ci_lb=float(ci_lb), ci_ub=float(ci_ub), QE=QE, QEp=QEp, I2=I2, H2=H2, yi=t.yi, vi=t.vi,
        weights=weights, add=add, to=to, drop00=drop00, warnings=t.warnings, yi_f=t.yi_f, vi_f=t.vi_f,
    )  # fmt: skip
