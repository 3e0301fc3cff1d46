"""Random-effects (and equal-effects) meta-analysis, metafor's ``rma()`` for the intercept-only model.

``rma(yi, vi)`` fits one meta-analysis; ``rma_batch(Y, V)`` fits many at once: Y and V are
(B, K) arrays padded with NaN, and every field of the result is then an array of length B.

Defaults, as metafor: ``method="REML"``, ``test="z"``, ``level=95``. ``test="knha"`` is the
Hartung–Knapp–Sidik–Jonkman adjustment: the variance of the estimate is multiplied by
s² = Σw(y−μ̂)²/(k−1) and tests and CIs use t with k−1 df. The prediction interval follows
``predict.rma``: μ̂ ± crit·√(se² + τ²), crit from z for ``test="z"`` and t(k−1) for ``knha``.
A fit of a single study with ``test="knha"`` uses z instead, as metafor does (a t test would have 0 df),
and says so in ``warnings``.

``warnings`` (a tuple of messages per fit) reports what a reader must know: the z fallback, a τ² or
τ² CI bound that did not converge, a Q-profile bound not found below the search limit (then also
``tau2_ci_low_capped`` / ``tau2_ci_high_capped``: the bound is that limit, i.e. "> x"), an ML/REML/PM/EB
estimate on the boundary τ² = 0, an ML/REML likelihood with more than one local maximum (the global one is
reported; the message names a lower one, where metafor's ``rma()`` may stop; see :mod:`metarepro.stats.tau2`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from metarepro._core.batch import EPS, Batch, at_tau2, percent_weights
from metarepro._core.dist import special
from metarepro._core.printing import Printable
from metarepro._core.spellings import metafor_spellings
from metarepro.stats import heterogeneity
from metarepro.stats.tau2 import METHODS, Control, estimate_tau2, tau2_se


def per_df(fn, df, *args):
    """``fn(df, *args)`` evaluated once per distinct df (quantile functions cost microseconds per call)."""
    unique, inverse = np.unique(df, return_inverse=True)
    return fn(unique, *args)[inverse]


KNHA_K1 = 'Setting argument test="z" since k=1.'  # metafor's words
GLOBAL_MAXIMUM = (
    "the {method} likelihood has more than one local maximum: the global one over tau2 >= 0 is reported; "
    "a lower one, where metafor's rma() may stop (from its default start), is at {{local:.6g}}"
)


TESTS = ("z", "knha")

SCALAR_FIELDS = (
    "k", "estimate", "se", "zval", "pval", "ci_low", "ci_high",
    "tau2", "tau2_se", "tau2_ci_low", "tau2_ci_high", "tau", "i2", "i2_ci_low", "i2_ci_high", "h2",
    "q", "q_df", "q_p", "pi_low", "pi_high", "converged", "iterations",
    "tau2_ci_low_capped", "tau2_ci_high_capped", "warnings",
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
    tau2_ci_low_capped: np.ndarray
    tau2_ci_high_capped: np.ndarray
    warnings: np.ndarray  # a tuple of str per fit (an object array of them for a batch)
    weights: np.ndarray = field(repr=False)

    def to_dict(self):
        """Plain Python values (a single fit), in the order of ``pooled.json``."""
        out = {"method": self.method, "test": self.test, "level": self.level}
        for name in SCALAR_FIELDS:
            if name == "warnings":
                if not isinstance(self.warnings, tuple):
                    raise ValueError("to_dict() is for a single fit; index a batch with result[i] first")
                out[name] = list(self.warnings)
                continue
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


def _warnings(method, test, k, est, het, tau2_ci, maxiter):
    """The messages of each fit (see the module docstring); an object array of tuples.

    Fits with the same conditions share one tuple; only a capped bound's and the global check's messages name
    their row's value.
    """
    low, high = tau2_ci
    boundary = "Q(0) <= k - 1: no positive root" if method in ("PM", "EB") else "the maximum is on the boundary"
    conditions = (
        ((k == 1) & (test == "knha"), KNHA_K1),
        (~est.converged, f"tau2 ({method}) did not converge within maxiter = {maxiter} steps"),
        (~het.converged, "a Q-profile bound of the tau2 CI did not converge"),
        (het.tau2_ci_low_capped, "tau2 CI lower bound not found below the search limit: reported as > {low:.6g}"),
        (het.tau2_ci_high_capped, "tau2 CI upper bound not found below the search limit: reported as > {high:.6g}"),
        (est.boundary, f"tau2 = 0 ({method}): {boundary}"),
        (est.higher_near_zero, f"the {method} likelihood at tau2 = 0 is higher than at the maximum found (0 is none)"),
        (np.isfinite(est.local_tau2), GLOBAL_MAXIMUM.format(method=method)),
    )  # fmt: skip
    formatted = 0b10011000  # the conditions whose message names its row's value
    code = np.zeros(k.shape, dtype=np.int64)
    for bit, (mask, _) in enumerate(conditions):
        code |= np.asarray(mask, dtype=np.int64) << bit
    out = np.empty(k.shape, dtype=object)
    out.fill(())
    for c in np.unique(code[code > 0]):
        texts = tuple(text for bit, (_, text) in enumerate(conditions) if c >> bit & 1)
        for i in np.flatnonzero(code == c):
            values = {"low": low[i], "high": high[i], "local": est.local_tau2[i]}
            out[i] = tuple(t.format(**values) for t in texts) if c & formatted else texts
    return out


def rma_batch(
    yi, vi, method="REML", test="z", level=95, control: Control | None = None, tau2_ci=True, tau2_start=None
) -> RmaResult:
    """Fit B intercept-only meta-analyses at once; ``yi``/``vi`` are (B, K), NaN-padded (or ``yi`` a prepared
    :class:`~metarepro._core.batch.Batch` and ``vi`` None).

    ``tau2_ci=False`` skips the Q-profile CIs of τ² and I² (NaN), for refits that do not report them.
    ``tau2_start``: where the ML/REML search starts (default metafor's HE estimate; leave-one-out refits
    start from the full fit's τ², which is close to every refit's).
    """
    method, level = metafor_spellings(method, level)
    check_options(method, test, level)
    control = control or Control()
    batch = yi if isinstance(yi, Batch) else Batch.from_arrays(yi, vi)
    if np.any(batch.k < 1):
        raise ValueError("every meta-analysis in the batch needs at least one study")
    k = batch.k
    df = (k - 1).astype(float)
    fe = at_tau2(batch, np.zeros(k.shape), level=2)  # with Σ log v, for the ll(0) check
    est = estimate_tau2(batch, method, control, fe, tau2_start)
    tau2 = est.tau2
    wt = at_tau2(batch, tau2) if est.sums is None else est.sums
    estimate = wt.mu
    var = 1 / wt.s
    z_crit = special.ndtri(0.5 + level / 200)
    with np.errstate(divide="ignore", invalid="ignore"):
        if test == "knha":
            s2 = np.where(wt.q <= EPS, 0.0, wt.q / df)
            knha = k > 1  # metafor: a single study is fitted with the z test
            var = np.where(knha, var * s2, var)
            df_t = np.where(knha, df, 1.0)
            crit = np.where(knha, per_df(special.stdtrit, df_t, 0.5 + level / 200), z_crit)
        else:
            crit = np.full(k.shape, z_crit)
        se = np.sqrt(var)
        zval = estimate / se
        if test == "knha":
            pval = np.where(knha, 2 * special.stdtr(df_t, -np.abs(zval)), 2 * special.ndtr(-np.abs(zval)))
        else:
            pval = 2 * special.ndtr(-np.abs(zval))
        pi_half = crit * np.sqrt(var + tau2)
    het = heterogeneity.heterogeneity(batch, tau2, method, level, control, fe, tau2_ci)
    converged = est.converged & het.converged
    warnings = _warnings(method, test, k, est, het, (het.tau2_ci_low, het.tau2_ci_high), control.maxiter)
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
        tau2_se=tau2_se(batch, method, tau2, fe, wt),
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
        converged=converged,
        iterations=est.iterations,
        tau2_ci_low_capped=het.tau2_ci_low_capped,
        tau2_ci_high_capped=het.tau2_ci_high_capped,
        warnings=warnings,
        weights=percent_weights(batch, tau2),
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
