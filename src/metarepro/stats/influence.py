"""Case diagnostics of the intercept-only model: metafor's ``leave1out``, ``influence``, ``baujat`` and ``cumul``.

Every refit reuses the model's ``method``, ``test``, ``level`` and ``control`` (as metafor does), and all
refits of one diagnostic are :func:`~metarepro.stats.rma.rma_batch` calls on (rows, k) NaN-padded arrays: row i of the
leave-one-out batch is the data with study i left out; row i of the cumulative batch holds the first i+1 studies.
So k = 1,000 costs vectorized fits of 1,000 meta-analyses, not 1,000 fits. The rows go in chunks of at most
:data:`~metarepro._core.limits.REFIT_CHUNK_ELEMENTS` values (each row is fitted on its own, so chunking changes no
number): memory stays O(k) while time is O(k²) (see :data:`~metarepro._core.limits.REFIT_MAX_K`).

Defaults, as metafor: ``method="REML"``, ``test="z"``, ``level=95``; ``control=None`` means
:class:`~metarepro.stats.tau2.Control` (tight convergence). Results are arrays in the original study order
(``cumul``: in cumulative order, with ``order`` mapping rows back to studies).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np

from metarepro._core import dist, limits
from metarepro._core.batch import EPS, Batch, at_tau2
from metarepro._core.printing import Printable
from metarepro.stats.rma import RmaResult, rma, rma_batch
from metarepro.stats.tau2 import Control

# Fields of a batch fit that the per-fit tables report (metafor names in brackets in the dataclass docs).
_TABLE_FIELDS = ("k", "estimate", "se", "zval", "pval", "ci_low", "ci_high", "q", "q_p", "tau2", "i2", "h2")


def _as_1d(yi, vi):
    yi, vi = np.asarray(yi, dtype=float), np.asarray(vi, dtype=float)
    if yi.ndim != 1 or yi.shape != vi.shape:
        raise ValueError("yi and vi must be 1-D arrays of the same length")
    if not (np.isfinite(yi).all() and np.isfinite(vi).all()):
        raise ValueError("yi and vi must be finite; drop incomplete rows first")
    if yi.size < 2:
        raise ValueError("case diagnostics need k >= 2 studies (metafor: 'Stopped because k = 1')")
    return yi, vi


def fit_rows(Y, V, method, test, level, control, tau2_start=None) -> RmaResult:
    """``rma_batch`` of the refits ``Y``/``V`` (NaN-padded arrays, or ``Y`` a prepared Batch and ``V`` None).

    A row with k = 1 uses ``test="z"``, as metafor's rma.uni (and rma_batch) do. The τ² CIs are skipped
    (no diagnostic reports them); ``tau2_start`` see :func:`~metarepro.stats.rma.rma_batch`.
    """
    with np.errstate(divide="ignore", invalid="ignore"):  # k = 1 rows: HE start etc. divide by k − 1
        return rma_batch(Y, V, method, test, level, control, tau2_ci=False, tau2_start=tau2_start)


@dataclass(repr=False)  # printing.Printable gives the metafor-like repr
class FitTable(Printable):
    """One row per refit, metafor's ``list.rma`` of ``leave1out``/``cumul``.

    Columns (metafor name): ``estimate``, ``se``, ``zval`` (``zval``, or ``tval`` for knha), ``pval``
    (``pvals`` in cumul), ``ci_low``/``ci_high`` (``ci.lb``/``ci.ub``), ``q``/``q_p`` (``Q``/``Qp``),
    ``tau2`` (0 for ``EE``, where metafor omits the column), ``i2`` (percent), ``h2``; ``k`` is the number
    of studies in each refit. ``order`` is the study index (0-based, original order) of each row: the
    omitted study for ``leave1out``, the study added at that step for ``cumul``.
    """

    method: str
    test: str
    level: float
    order: np.ndarray
    k: np.ndarray
    estimate: np.ndarray
    se: np.ndarray
    zval: np.ndarray
    pval: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    q: np.ndarray
    q_p: np.ndarray
    tau2: np.ndarray
    i2: np.ndarray
    h2: np.ndarray

    def __len__(self):
        return int(self.order.size)


def _table(res: RmaResult, order, method, test, level) -> FitTable:
    return FitTable(method, test, level, np.asarray(order), **{name: getattr(res, name) for name in _TABLE_FIELDS})


def row_chunks(n_rows, width, max_elements=None):
    """Consecutive slices of range(n_rows) of at most max_elements // width rows each (at least one row);
    ``max_elements`` defaults to :data:`~metarepro._core.limits.REFIT_CHUNK_ELEMENTS`."""
    step = max(1, (max_elements or limits.REFIT_CHUNK_ELEMENTS) // max(1, width))
    return [np.arange(start, min(start + step, n_rows)) for start in range(0, n_rows, step)]


def _by_chunks(fit_chunk, n_rows, width):
    """``fit_chunk(rows)`` (a dict of per-row arrays) for each chunk of rows, concatenated, as attributes."""
    parts = [fit_chunk(rows) for rows in row_chunks(n_rows, width)]
    return SimpleNamespace(**{name: np.concatenate([p[name] for p in parts]) for name in parts[0]})


def _fields(res, names=_TABLE_FIELDS) -> dict:
    return {name: np.asarray(getattr(res, name)) for name in names}


def _leave1out_batch(yi, vi, rows=None):
    """Row j: every study but study rows[j] (masked out, so no NaN-padded copy needs cleaning); all k by default."""
    k = yi.size
    rows = np.arange(k) if rows is None else rows
    mask = np.ones((rows.size, k), dtype=bool)
    mask[np.arange(rows.size), rows] = False
    return Batch(np.tile(yi, (rows.size, 1)), np.tile(vi, (rows.size, 1)), mask, np.full(rows.size, k - 1))


def leave1out(yi, vi, method="REML", test="z", level=95, control: Control | None = None) -> FitTable:
    """metafor ``leave1out(rma(yi, vi, method, test, level))``: the model refitted without each study in turn.
    (:func:`influence` returns the same table as its ``leave1out``, from the same refits.)"""
    yi, vi = _as_1d(yi, vi)
    start = rma(yi, vi, method, test, level, control).tau2

    def refit(rows):
        return _fields(fit_rows(_leave1out_batch(yi, vi, rows), None, method, test, level, control, start))

    return _table(_by_chunks(refit, yi.size, yi.size), np.arange(yi.size), method, test, level)


def cumul(yi, vi, order=None, method="REML", test="z", level=95, control: Control | None = None,
          decreasing=False) -> FitTable:  # fmt: skip
    """metafor ``cumul(rma(yi, vi, ...), order=order)``: fits of the first 1, 2, ..., k studies.

    ``order`` is a sort key per study (e.g. publication year); None keeps the given order. Studies are
    sorted by it as R's ``order()`` does: stably (ties keep the original order), NaN keys last;
    ``decreasing=True`` reverses the key but still keeps ties in original order (R's radix sort).
    """
    yi, vi = _as_1d(yi, vi)
    k = yi.size
    if order is None:
        idx = np.arange(k)
    else:
        key = np.asarray(order, dtype=float)
        if key.shape != yi.shape:
            raise ValueError(f"order has {key.size} values for {k} studies")
        # negate for decreasing (not reverse) so that ties stay in original order; NaN stays NaN, i.e. last
        idx = np.argsort(-key if decreasing else key, kind="stable")
    ys, vs = yi[idx], vi[idx]

    def refit(rows):  # row i: the first i + 1 studies, NaN after them
        Y = np.where(np.arange(k)[None, :] <= rows[:, None], ys[None, :], np.nan)
        return _fields(fit_rows(Y, np.tile(vs, (rows.size, 1)), method, test, level, control))

    return _table(_by_chunks(refit, k, k), idx, method, test, level)


@dataclass
class Influence:
    """metafor ``influence.rma.uni`` for the intercept-only model (arrays of length k, original order).

    ``rstudent`` externally studentized residuals; ``dffits``; ``cook_d`` Cook's distance (full-model
    Var(β̂), not divided by p); ``cov_r`` covariance ratio; ``tau2_del``/``qe_del`` τ² and Q_E without the
    study; ``hat`` hat values; ``weight`` weights in percent; ``dfbs`` DFBETAS of the intercept; ``inf``
    metafor's influence flag (the ``*`` column): |dffits| > 3√(p/(k−p)), or χ²₁ cdf of cook_d > 0.5, or
    hat > 3p/k, or |dfbs| > 1, with p = 1. ``fit`` is the full model, ``leave1out`` the deletion fits.
    """

    rstudent: np.ndarray
    dffits: np.ndarray
    cook_d: np.ndarray
    cov_r: np.ndarray
    tau2_del: np.ndarray
    qe_del: np.ndarray
    hat: np.ndarray
    weight: np.ndarray
    dfbs: np.ndarray
    inf: np.ndarray
    fit: RmaResult
    leave1out: FitTable


def _knha_scale(batch, tau2, test):
    """s² of each row (metafor ``s2w``): Σw(y−μ̂)²/(k−1) with w = 1/(v+τ²) for knha, 0 if that RSS ≤ ε; 1 for z.

    A row with a single study was fitted with the z test (see :func:`fit_rows`), so its s² is 1.
    """
    if test == "z":
        return np.ones(batch.k.size)
    wt = at_tau2(batch, tau2)
    with np.errstate(divide="ignore", invalid="ignore"):
        s2 = np.where(wt.q <= EPS, 0.0, wt.q / (batch.k - 1))
    return np.where(batch.k == 1, 1.0, s2)


def influence(yi, vi, method="REML", test="z", level=95, control: Control | None = None,
              fit: RmaResult | None = None) -> Influence:  # fmt: skip
    """metafor ``influence(rma(yi, vi, method, test, level))``: deletion diagnostics from one batch of k refits.
    ``fit``: that model's fit (``rma(yi, vi, method, test, level, control)``), when the caller has it; else fitted
    here."""
    yi, vi = _as_1d(yi, vi)
    k = yi.size
    full = rma(yi, vi, method, test, level, control) if fit is None else fit
    full_data = Batch.from_arrays(yi, vi)

    def refit(rows):
        loo = _leave1out_batch(yi, vi, rows)
        dele = fit_rows(loo, None, method, test, level, control, full.tau2)
        with np.errstate(divide="ignore", invalid="ignore"):
            # Var(β̂) with the deletion τ² but all k studies (metafor's vb.del), for DFBETAS
            vb_all = 1 / at_tau2(full_data, dele.tau2, np.zeros(rows.size, dtype=np.int64), level=0).s
        return {**_fields(dele), "s2w": _knha_scale(loo, dele.tau2, test), "vb_all": vb_all}

    dele = _by_chunks(refit, k, k)
    beta, vb = full.estimate, full.se**2  # vb is KH-scaled under knha, as metafor's x$vb
    beta_del, vb_del, tau2_del, s2w, vb_all = dele.estimate, dele.se**2, dele.tau2, dele.s2w, dele.vb_all

    w = 1 / (vi + full.tau2)
    hat = w / w.sum()
    resid = yi - beta_del
    resid = np.where(np.abs(resid) < 100 * EPS, 0.0, resid)  # metafor zeroes numerically-zero residuals
    with np.errstate(divide="ignore", invalid="ignore"):
        rstudent = resid / np.sqrt(vi * s2w + vb_del + tau2_del * s2w)
        dffits = (beta - beta_del) / np.sqrt(s2w * hat * (tau2_del + vi))
        dfbs = (beta - beta_del) / np.sqrt(s2w * vb_all)
        cook_d = (beta - beta_del) ** 2 / vb
        cov_r = vb_del / vb
        inf = (
            (np.abs(dffits) > 3 * np.sqrt(1 / (k - 1)))
            | (dist.chi2_cdf(cook_d, 1) > 0.5)
            | (hat > 3 / k)
            | (np.abs(dfbs) > 1)
        )
    return Influence(
        rstudent=rstudent, dffits=dffits, cook_d=cook_d, cov_r=cov_r, tau2_del=tau2_del, qe_del=dele.q,
        hat=hat, weight=100 * hat, dfbs=dfbs, inf=inf, fit=full,
        leave1out=_table(dele, np.arange(k), method, test, level),
    )  # fmt: skip


@dataclass
class Baujat:
    """metafor ``baujat.rma`` coordinates per study (original order).

    ``x`` = (yᵢ − μ̂)²/(τ̂² + vᵢ), the squared Pearson residual (contribution to Q for an EE model);
    ``y`` = (μ̂₍₋ᵢ₎ − μ̂)²/Var(μ̂₍₋ᵢ₎), the influence on the overall result (Var KH-scaled under knha).
    """

    x: np.ndarray
    y: np.ndarray
    fit: RmaResult


def baujat(yi, vi, method="REML", test="z", level=95, control: Control | None = None,
           influence: Influence | None = None) -> Baujat:  # fmt: skip
    """Baujat plot coordinates from the full fit and the leave-one-out refits (those of ``influence``, the
    :func:`influence` result of the same data and settings, when given; else refitted here)."""
    yi, vi = _as_1d(yi, vi)
    if influence is not None:
        full, dele = influence.fit, influence.leave1out
    else:
        full = rma(yi, vi, method, test, level, control)
        dele = leave1out(yi, vi, method, test, level, control)
    x = (yi - full.estimate) ** 2 / (full.tau2 + vi)
    with np.errstate(divide="ignore", invalid="ignore"):
        y = (dele.estimate - full.estimate) ** 2 / dele.se**2
    return Baujat(x, y, full)


__all__ = ["FitTable", "Influence", "Baujat", "leave1out", "cumul", "influence", "baujat", "fit_rows"]
