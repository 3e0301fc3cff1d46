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

import numpy as np

from metarepro._core import dist
from metarepro._core.spellings import percent_level
from metarepro.stats.effects_binary import pooled_tables
from metarepro.stats.mh import TablesFit, shared_fields


class RmaPetoResult(TablesFit):
    """A Peto fit (``measure`` "PETO"); printed as metafor's print.rma.peto (printing.Printable)."""


def rma_peto(ai, bi=None, ci=None, di=None, n1i=None, n2i=None, add=0.5, to="only0", drop00=True,
             level=95) -> RmaPetoResult:  # fmt: skip
    """Peto's pooled log odds ratio of 2×2 tables (``ai, bi, ci, di`` or ``ai, n1i, ci, n2i``), metafor's
    ``rma.peto`` with its defaults (see the module docstring)."""
    level = percent_level(level)
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
    positive = v > 0
    k_pos, df = int(positive.sum()), t.yi.size - 1
    QE = max(0.0, float(np.sum(gap[positive] ** 2 / v[positive]) - gap.sum() ** 2 / v[positive].sum()))
    if k_pos > 1:
        with np.errstate(invalid="ignore", divide="ignore"):
            heterogeneity = QE, float(dist.chi2_sf(QE, df)), max(0.0, 100 * (QE - df) / QE), QE / df
    else:
        heterogeneity = QE, 1.0, 0.0, 1.0
    return RmaPetoResult(**shared_fields(t, "PETO", level, beta, se, k_pos, heterogeneity, v))
