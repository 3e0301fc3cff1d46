"""Random-effects (and equal-effects) meta-analysis, metafor's ``rma()`` for the intercept-only model.

``rma(yi, vi)`` fits one meta-analysis; ``rma_batch(Y, V)`` fits many at once: Y and V are
(B, K) arrays padded with NaN, and every field of the result is then an array of length B.

Defaults, as metafor: ``method="REML"``, ``test="z"``, ``level=95``. ``test="knha"`` is the
Hartung–Knapp–Sidik–Jonkman adjustment: the variance of the estimate is multiplied by
s² = Σw(y−μ̂)²/(k−1) and tests and CIs use t with k−1 df. The prediction interval follows
``predict.rma``: μ̂ ± crit·√(se² + τ²), crit from z for ``test="z"`` and t(k−1) for ``knha``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from . import heterogeneity
from ._batch import EPS, Batch, at_tau2
from ._spellings import metafor_spellings
from .printing import Printable
from .tau2 import METHODS, Control, estimate_tau2, tau2_se

TESTS = ("z", "knha")

SCALAR_FIELDS = (
    "k", "estimate", "se", "zval", "pval", "ci_low", "ci_high",
    "tau2", "tau2_se", "tau2_ci_low", "tau2_ci_high", "tau", "i2", "i2_ci_low", "i2_ci_high", "h2",
    "q", "q_df", "q_p", "pi_low", "pi_high", "converged", "iterations",
)  # fmt: skip


@dataclass(repr=False)  # printing.Printable gives the metafor-like repr
class RmaResult(Printable):
    """One fit (scalar fields) or a batch of fits (array fields of length B).

    ``zval`` is the test statistic (z, or t for ``knha``); ``weights`` are in percent (NaN on padding).
    """

    method: str
    test: str
    level: float
    k: np.ndarray
    estimate: np.ndarray
    se: np.ndarray
    zval: np.ndarray
    pval: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    tau2: np.ndarray
    tau2_se: np.ndarray
    tau2_ci_low: np.ndarray
    tau2_ci_high: np.ndarray
    tau: np.ndarray
    i2: np.ndarray
    i2_ci_low: np.ndarray
    i2_ci_high: np.ndarray
    h2: np.ndarray
    q: np.ndarray
    q_df: np.ndarray
    q_p: np.ndarray
    pi_low: np.ndarray
    pi_high: np.ndarray
    converged: np.ndarray
    iterations: np.ndarray
    weights: np.ndarray = field(repr=False)

    def to_dict(self):
        """Plain Python values (a single fit), in the order of ``pooled.json``."""
        out = {"method": self.method, "test": self.test, "level": self.level}
        for name in SCALAR_FIELDS:
            value = np.asarray(getattr(self, name))
            if value.ndim:
                raise ValueError("to_dict() is for a single fit; index a batch with result[i] first")
            out[name] = value.item()
        return out

    def __getitem__(self, i):
        """The i-th fit of a batch, as a single-fit result."""
        values = {name: getattr(self, name)[i] for name in (*SCALAR_FIELDS, "weights")}
        weights = values["weights"]
        values["weights"] = weights[np.isfinite(weights)]
        return RmaResult(self.method, self.test, self.level, **values)

    def __len__(self):
        return int(np.size(self.k))


def check_options(method, test, level):
    """Reject an unknown method or test, or a level outside (0, 100), naming the allowed values."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
    if test not in TESTS:
        raise ValueError(f"test must be one of {', '.join(TESTS)}, not {test!r}")
    if not 0 < level < 100:
        raise ValueError(f"level is a percentage between 0 and 100, not {level!r}")


def rma_batch(yi, vi, method="REML", test="z", level=95, control: Control | None = None) -> RmaResult:
    """Fit B intercept-only meta-analyses at once; ``yi``/``vi`` are (B, K), NaN-padded."""
    method, level = metafor_spellings(method, level)
    check_options(method, test, level)
    control = control or Control()
    batch = Batch.from_arrays(yi, vi)
    if np.any(batch.k < 1):
        raise ValueError("every meta-analysis in the batch needs at least one study")
    k = batch.k
    df = (k - 1).astype(float)
    est = estimate_tau2(batch, method, control)
    tau2 = est.tau2
    wt = at_tau2(batch, tau2)
    estimate = wt.mu
    var = 1 / wt.s
    with np.errstate(divide="ignore", invalid="ignore"):
        if test == "knha":
            s2 = np.where(wt.q <= EPS, 0.0, wt.q / df)
            var = var * s2
            crit = stats.t.ppf(0.5 + level / 200, df)
            dist_sf = lambda x: 2 * stats.t.sf(np.abs(x), df)  # noqa: E731
        else:
            crit = np.full(k.shape, stats.norm.ppf(0.5 + level / 200))
            dist_sf = lambda x: 2 * stats.norm.sf(np.abs(x))  # noqa: E731
        se = np.sqrt(var)
        zval = estimate / se
        pval = dist_sf(zval)
        pi_half = crit * np.sqrt(var + tau2)
    het = heterogeneity.heterogeneity(batch, tau2, method, level, control)
    return RmaResult(
        method=method,
        test=test,
        level=level,
        k=k,
        estimate=estimate,
        se=se,
        zval=zval,
        pval=pval,
        ci_low=estimate - crit * se,
        ci_high=estimate + crit * se,
        tau2=tau2,
        tau2_se=tau2_se(batch, method, tau2),
        tau2_ci_low=het.tau2_ci_low,
        tau2_ci_high=het.tau2_ci_high,
        tau=np.sqrt(tau2),
        i2=het.i2,
        i2_ci_low=het.i2_ci_low,
        i2_ci_high=het.i2_ci_high,
        h2=het.h2,
        q=het.q,
        q_df=df,
        q_p=het.q_p,
        pi_low=estimate - pi_half,
        pi_high=estimate + pi_half,
        converged=est.converged & het.converged,
        iterations=est.iterations,
        weights=np.where(batch.mask, 100 * wt.w / wt.s[:, None], np.nan),
    )


def rma(yi, vi, method="REML", test="z", level=95, control: Control | None = None) -> RmaResult:
    """Fit one meta-analysis of effects ``yi`` with sampling variances ``vi`` (1-D arrays)."""
    yi, vi = np.asarray(yi, dtype=float), np.asarray(vi, dtype=float)
    if yi.ndim != 1 or vi.ndim != 1:
        raise ValueError("rma() takes 1-D yi and vi; use rma_batch() for many meta-analyses")
    if yi.shape == vi.shape and (missing := np.isnan(yi) | np.isnan(vi)).any():  # metafor's na.action = "na.omit"
        warnings.warn(f"{missing.sum()} studies with NAs omitted from model fitting", stacklevel=2)
        yi, vi = yi[~missing], vi[~missing]
    if not (np.isfinite(yi).all() and np.isfinite(vi).all()):
        raise ValueError("yi and vi must be finite; drop or exclude incomplete rows first")
    return rma_batch(yi[None, :], vi[None, :], method, test, level, control)[0]
