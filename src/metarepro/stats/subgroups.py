"""Subgroup analysis: a separate fit per subgroup and two tests of subgroup differences.

``subgroup_analysis(yi, vi, groups)`` reports

* **per-subgroup fits**: metafor's ``rma(yi, vi, subset = groups == g)`` for each level g, fitted together by
  ``rma_batch`` (one NaN-padded batch row per subgroup), each with its own τ². A subgroup of one study is fitted
  with ``test="z"`` even under knha, as metafor switches (it warns "Setting argument test='z' since k=1").
* **the mixed-effects moderator test** (``moderator_test``): the meta-regression on the subgroup factor with a
  *common* τ², metafor's ``rma(yi, vi, mods = ~ factor(groups))``; its QM (χ²(G−1) for z, F(G−1, k−G) for knha)
  tests that all subgroup means are equal.
* **the between-subgroup Q over separately fitted subgroups** (``Q_between``): Q = Σ w_g (est_g − est_pooled)²
  with w_g = 1/se_g², est_pooled = Σw_g·est_g/Σw_g, df = G − 1, p from χ²(G−1); se_g is the subgroup fit's SE
  (Knapp–Hartung-scaled under knha). This is R meta's ``test.subgroup`` for random-effects subgroups (τ² not
  pooled) and RevMan's test for subgroup differences.

Levels are in sorted order (Python string order), the first being the reference level of the moderator test.
Rows with a missing ``yi``/``vi``/group are left out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from metarepro._core import dist
from metarepro.stats.metareg import MetaregResult, design_matrix, rma_mods
from metarepro.stats.rma import RmaResult, rma_batch
from metarepro.stats.tau2 import Control


@dataclass(frozen=True)
class SubgroupResult:
    method: str
    test: str
    level: float
    levels: tuple
    fits: RmaResult  # a batch: fits[i] is the subgroup levels[i]
    moderator_test: MetaregResult | None  # None when there is one subgroup or too few studies
    QM: float
    QM_df: tuple
    QM_p: float
    Q_between: float
    Q_between_df: int
    Q_between_p: float
    estimate_pooled: float  # inverse-SE²-weighted mean of the subgroup estimates

    def table(self) -> pd.DataFrame:
        """One row per subgroup: k, estimate, se, CI, p, τ², I², Q."""
        f = self.fits
        return pd.DataFrame(
            {"k": f.k, "estimate": f.beta, "se": f.se, "ci_low": f.ci_lb, "ci_high": f.ci_ub,
             "pval": f.pval, "tau2": f.tau2, "i2": f.I2, "q": f.QE, "q_p": f.QEp},
            index=pd.Index(self.levels, name="subgroup"),
        )  # fmt: skip


def _merge(first: RmaResult, second: RmaResult, use_second) -> RmaResult:
    """Fields of ``second`` where ``use_second`` (per batch row), else of ``first``."""
    values = {}
    for name, value in vars(first).items():
        if isinstance(value, np.ndarray) and value.shape[:1] == use_second.shape:
            other = getattr(second, name)
            sel = use_second.reshape(use_second.shape + (1,) * (value.ndim - 1))
            values[name] = np.where(sel, other, value)
        else:
            values[name] = value
    return RmaResult(**values)


def between_q(estimates, ses):
    """Q over separately fitted subgroups: (Q, df, p, pooled estimate), see the module doc."""
    est, se = np.asarray(estimates, dtype=float), np.asarray(ses, dtype=float)
    w = 1 / se**2
    pooled = (w * est).sum() / w.sum()
    q = float((w * (est - pooled) ** 2).sum())
    df = len(est) - 1
    return q, df, float(dist.chi2_sf(q, df)) if df > 0 else np.nan, float(pooled)


def subgroup_analysis(
    yi, vi, groups, method="REML", test="z", level=95, control: Control | None = None
) -> SubgroupResult:
    """Subgroup fits and tests of subgroup differences (module doc). Defaults as metafor: REML, z, 95%."""
    yi, vi = np.asarray(yi, dtype=float), np.asarray(vi, dtype=float)
    groups = pd.Series(np.asarray(groups, dtype=object))
    keep = np.isfinite(yi) & np.isfinite(vi) & groups.notna().to_numpy()
    yi, vi = yi[keep], vi[keep]
    labels = groups[keep].astype(str).reset_index(drop=True)
    levels = tuple(sorted(set(labels)))
    sizes = [int((labels == g).sum()) for g in levels]
    Y = np.full((len(levels), max(sizes)), np.nan)
    V = np.full_like(Y, np.nan)
    for row, g in enumerate(levels):
        sel = (labels == g).to_numpy()
        Y[row, : sizes[row]], V[row, : sizes[row]] = yi[sel], vi[sel]
    with np.errstate(divide="ignore", invalid="ignore"):  # k = 1 rows: the HE start value is 0/0, then unused
        fits = rma_batch(Y, V, method, test, level, control)
        single = np.array(sizes) == 1
        if test != "z" and single.any():
            fits = _merge(fits, rma_batch(Y, V, method, "z", level, control), single)

    q_b, df_b, p_b, pooled = between_q(fits.beta, fits.se)
    G, k = len(levels), len(yi)
    moderator = None
    qm, qm_df, qm_p = np.nan, (np.nan, np.nan), np.nan
    if G > 1 and k > G:
        X = design_matrix(pd.DataFrame({"group": labels}), ["group"])
        moderator = rma_mods(yi, vi, X, method, test, level, control)
        qm, qm_df, qm_p = float(moderator.QM), tuple(float(d) for d in moderator.QMdf), float(moderator.QMp)
    return SubgroupResult(
        method=method, test=test, level=level, levels=levels, fits=fits, moderator_test=moderator,
        QM=qm, QM_df=qm_df, QM_p=qm_p, Q_between=q_b, Q_between_df=df_b, Q_between_p=p_b, estimate_pooled=pooled,
    )  # fmt: skip


__all__ = ["SubgroupResult", "subgroup_analysis", "between_q"]
