"""Array plumbing of the design-matrix case: a batch of meta-regressions and their weighted sums, through the thin
QR decomposition of W^½X. The intercept-only model (X = 1) has its own, faster and more accurate, sums in
:mod:`metarepro._core.batch`; both give the τ² estimators of :mod:`metarepro.stats.tau2` the same quantities.

Nothing forms a k×k matrix. With W = diag(w), S = W^½ and S X = Q R, the residual maker
P = W − WX(XᵀWX)⁻¹XᵀW is S(I − QQᵀ)S, so (h = row sums of Q², the leverages):

* β̂ = R⁻¹Qᵀ S y, Var(β̂) = (XᵀWX)⁻¹ = R⁻¹R⁻ᵀ, Py = w∘(y − Xβ̂), yᵀPy = Σw(y − Xβ̂)²
* tr P = Σw(1 − h); for diagonal D₁, D₂ with e = w∘d: tr(PD₁PD₂) = Σe₁e₂ − 2Σe₁e₂h + tr(QᵀE₁Q·QᵀE₂Q)
"""

from __future__ import annotations

from collections import OrderedDict
from copy import copy
from dataclasses import dataclass, field
from functools import cached_property
from types import SimpleNamespace

import numpy as np


@dataclass(frozen=True)
class Design:
    """A batch of regressions: padding rows have y = 0, v = 1, X = 0 and mask False, so every sum ignores them.

    The τ² estimators' view of the data (the same methods as :class:`metarepro._core.batch.Batch`): ``k``, ``p``,
    ``at(tau2, rows, level)`` (the weighted sums), ``vmin``/``vmax``, ``sj_start`` and ``unweighted`` (the
    quantities of the unweighted fit the HE estimator uses). As metafor, every τ² equation uses the mean-centred
    y (``ymc``; immaterial with an intercept).
    """

    y: np.ndarray  # (B, k)
    ymc: np.ndarray  # mean-centred y (metafor's Ymc), 0 on padding
    v: np.ndarray
    X: np.ndarray  # (B, k, p)
    mask: np.ndarray
    k: np.ndarray  # (B,)
    # the last few fits of every row (by τ² and centring): a fit is asked for again at τ² = 0 and at the estimate
    _fits: OrderedDict = field(default_factory=OrderedDict, init=False, repr=False, compare=False)

    @property
    def p(self):
        return self.X.shape[-1]

    def subset(self, rows):
        return Design(self.y[rows], self.ymc[rows], self.v[rows], self.X[rows], self.mask[rows], self.k[rows])

    def weights(self, tau2):
        return self.mask / (self.v + np.asarray(tau2, dtype=float)[..., None])

    def at(self, tau2, rows=None, level=1, centred=True):
        """The weighted fit at τ² = ``tau2`` (one value per row, of ``rows`` if given); ``level`` 2 adds
        Σlog(v + τ²). ``centred=False``: of y itself (for β̂), not of the centred y."""
        every = rows is None or (rows.size == self.k.size and np.array_equal(rows, np.arange(rows.size)))
        tau2 = np.asarray(tau2, dtype=float)
        data = self if every else self.subset(rows)
        fit = self._kept_fit(tau2, centred) if every else WLS.fit(data.X, data.ymc if centred else data.y,
                                                                   data.weights(tau2))  # fmt: skip
        fit.tau2 = tau2
        if level == 1:
            return fit
        fit = copy(fit)  # Σlog(v + τ²) on a copy: a kept fit asked for at level 1 has none, as a new one
        fit.log_det = np.log(data.v + tau2[..., None]).sum(axis=-1, where=data.mask)
        return fit

    def _kept_fit(self, tau2, centred):
        """The fit of every row at ``tau2``, one of the last :data:`FITS_KEPT` if it is (by τ² and centring), else
        made and kept (with the QR of W^½X of a kept fit at the same τ² of the other centring: y plays no part)."""
        key = (tau2.shape, tau2.tobytes(), centred)
        fit = self._fits.get(key)
        if fit is not None:
            self._fits.move_to_end(key)
            return fit
        other = self._fits.get((*key[:2], not centred))
        fit = WLS.fit(self.X, self.ymc if centred else self.y, self.weights(tau2),
                      None if other is None else (other.q_factor, other.r))  # fmt: skip
        self._fits[key] = fit
        if len(self._fits) > FITS_KEPT:
            self._fits.popitem(last=False)
        return fit

    def vmin(self):
        return np.where(self.mask, self.v, np.inf).min(axis=-1)

    def vmax(self):
        return np.where(self.mask, self.v, 0.0).max(axis=-1)

    def sj_start(self):
        """Σ(y − ȳ)²/k: SJ's τ₀² (it ignores X, as metafor) and the data's scale of a τ² search."""
        return (self.ymc**2).sum(axis=-1) / self.k

    @cached_property
    def unweighted(self):
        """The unweighted least-squares fit of the centred y (P₀ = I − X(XᵀX)⁻¹Xᵀ), see :class:`Unweighted`."""
        ols = WLS.fit(self.X, self.ymc, self.mask.astype(float))
        tr_pv = (self.v * (1 - ols.h) * self.mask).sum(axis=-1)
        v = self.v * self.mask
        return Unweighted(ols.rss, tr_pv, tr_pv / (self.k - self.p), ols.tr_pdpd(v, v), ols.logdet)

    def v_traces(self, fit):
        """(tr(PVPV), tr(PVP)) of the weighted fit ``fit`` (of all rows)."""
        v = self.v * self.mask
        return fit.tr_pdpd(v, v), fit.tr_pdpd(v, self.mask.astype(float))

    def profile(self, grid, rows, reml):
        """The (restricted) log-likelihood (as :func:`metarepro.stats.tau2.loglik`) of the fits ``rows`` at the τ²
        values ``grid`` (one row per fit), for the global scan, which only locates maxima (each one it finds is
        solved and compared with the exact fit). Where the design is well conditioned, per τ² one Gram matrix of
        W^½[X, y] and its Cholesky factor in place of a QR of W^½X: yᵀPy is the square of its last diagonal
        element, log|XᵀWX| twice the sum of the logs of the others. A Gram matrix squares the condition number,
        so this is done only where cond(XᵀWX) ≤ cond(XᵀX)·max v/min v stays below ``GRAM_COND`` (the other columns
        first centred on the intercept column: same P and |XᵀWX|, and a year, ~2000 ± 20, no longer squares a
        condition of ~10⁴) and where the moderators leave more than ``1/GRAM_SHARE`` of yᵀWy as yᵀPy; elsewhere
        (e.g. one vᵢ dwarfing the rest) the exact fit at each τ²."""
        from metarepro.stats.tau2 import loglik

        out = np.empty(grid.shape)
        every = rows.size == self.k.size and np.array_equal(rows, np.arange(rows.size))
        data = self if every else self.subset(rows)  # no copies of 10⁶ studies for one fit
        gram = self._gram_conditioned(data)
        if gram.any():
            some = data if gram.all() else data.subset(np.flatnonzero(gram))
            out[gram], good = self._gram_profile(some, grid[gram], reml, rows[gram])
            gram[gram] = good
        exact = np.flatnonzero(~gram)
        if exact.size:
            out[exact] = np.column_stack([loglik(self, grid[exact, g], reml, rows=rows[exact])
                                          for g in range(grid.shape[1])])  # fmt: skip
        return out

    @staticmethod
    def _x_shift(data):
        """What :meth:`profile` subtracts from X: each column's mean but the intercept's (0 without an intercept)."""
        mask, X = data.mask, data.X
        ones = np.all(np.where(mask[..., None], X == 1.0, True), axis=1)  # (B, p): intercept columns
        means = np.einsum("bkp,bk->bp", X, mask.astype(float)) / np.maximum(data.k, 1)[:, None]
        return np.where(ones.any(axis=-1)[:, None] & ~ones, means, 0.0)[:, None, :]

    @staticmethod
    def _centred_x(data, shift, columns=slice(None)):
        """X of the studies ``columns`` less ``shift`` (padding stays 0)."""
        return np.where(data.mask[:, columns, None], data.X[:, columns] - shift, data.X[:, columns])

    def _gram_conditioned(self, data):
        X = self._centred_x(data, self._x_shift(data))
        xtx = np.swapaxes(X, -1, -2) @ X
        scale = np.sqrt(np.diagonal(xtx, axis1=-2, axis2=-1))
        with np.errstate(divide="ignore", invalid="ignore"):
            eig = np.linalg.eigvalsh(xtx / (scale[:, :, None] * scale[:, None, :]))
            cond = eig[:, -1] / eig[:, 0] * data.vmax() / data.vmin()
        return np.isfinite(cond) & (eig[:, 0] > 0) & (cond <= GRAM_COND)

    def _gram_profile(self, data, grid, reml, rows):
        """The log-likelihood at ``grid`` of ``data`` (the fits ``rows``) by Gram matrices (see :meth:`profile`),
        and which rows it holds for."""
        from metarepro.stats.tau2 import loglik

        p, mask, n_grid = self.p, data.mask, grid.shape[1]
        # the sums over studies in blocks of GRAM_BLOCK: no temporary the size of the data
        grams, log_det = np.zeros((n_grid, mask.shape[0], p + 1, p + 1)), np.zeros((n_grid, mask.shape[0]))
        shift = self._x_shift(data)
        for start in range(0, mask.shape[1], GRAM_BLOCK):
            block = slice(start, start + GRAM_BLOCK)
            z = np.concatenate([self._centred_x(data, shift, block), data.ymc[:, block, None]], axis=-1)
            used, v = mask[:, block], data.v[:, block]
            for g in range(n_grid):
                f = np.where(used, v + grid[:, g, None], 1.0)
                sz = z * np.sqrt(used / f)[..., None]
                grams[g] += np.swapaxes(sz, -1, -2) @ sz
                log_det[g] += np.log(f).sum(axis=-1)
        out, good = np.empty(grid.shape), np.ones(grid.shape[0], dtype=bool)
        for g in range(n_grid):
            gram = grams[g]
            try:
                diagonal = np.diagonal(np.linalg.cholesky(gram), axis1=-2, axis2=-1)
            except np.linalg.LinAlgError:
                return out, np.zeros(grid.shape[0], dtype=bool)
            q = diagonal[:, p] ** 2
            good &= q * GRAM_SHARE > gram[:, p, p]
            sums = SimpleNamespace(q=q, log_det=log_det[g], logdet_xwx=2 * np.log(diagonal[:, :p]).sum(-1))
            out[:, g] = loglik(self, None, reml, sums, rows)
        return out, good


# The global scan of a meta-regression's likelihood uses Gram matrices (Design.profile) where cond(XᵀWX) is at most
# this (a relative error of ~1e-10 in yᵀPy, far below the differences the scan compares) and yᵀPy is more than
# 1/GRAM_SHARE of yᵀWy.
GRAM_COND = 1e6
GRAM_SHARE = 1e2
GRAM_BLOCK = 65_536  # studies per block of the Gram sums
FITS_KEPT = 3  # fits a Design keeps (each holds W^½X's Q and the residuals: ~40 MB at 10⁶ studies and p = 2)


@dataclass(frozen=True)
class Unweighted:
    """What the unweighted fit (P₀ = I − X(XᵀX)⁻¹Xᵀ) gives the τ² estimators: ``rss`` yᵀP₀y, ``tr_pv`` tr(P₀V),
    ``v_mean`` tr(P₀V)/(k − p) (the average sampling variance left after the fit), ``tr_pvpv`` tr(P₀VP₀V), and
    ``log_det_xtx`` log|XᵀX| (the constant of the restricted likelihood)."""

    rss: np.ndarray
    tr_pv: np.ndarray
    v_mean: np.ndarray
    tr_pvpv: np.ndarray
    log_det_xtx: np.ndarray


@dataclass
class WLS:
    """The weighted least-squares fit of y on X with weights w, and the sums the τ² estimators need (named as in
    :class:`metarepro._core.batch.Weighted`)."""

    w: np.ndarray  # (B, k)
    q_factor: np.ndarray  # (B, k, p), thin Q of W^½X
    r: np.ndarray  # (B, p, p)
    beta: np.ndarray  # (B, p)
    resid: np.ndarray  # y − Xβ̂, 0 on padding
    tau2: np.ndarray | None = None  # the τ² of the weights, where Design.at set them
    log_det: np.ndarray | None = None  # Σ log(v + τ²), where Design.at was asked for it (level 2)

    @classmethod
    def fit(cls, X, y, w, qr=None):
        """``qr``: the thin QR factors of W^½X, if known."""
        s = np.sqrt(w)
        q, r = np.linalg.qr(s[..., None] * X) if qr is None else qr
        qty = np.einsum("bkp,bk->bp", q, s * y)
        beta = np.linalg.solve(r, qty[..., None])[..., 0]
        resid = np.where(w > 0, y - np.einsum("bkp,bp->bk", X, beta), 0.0)
        return cls(w, q, r, beta, resid)

    @cached_property
    def h(self):
        """Leverages diag(W^½X(XᵀWX)⁻¹XᵀW^½) (kept: each trace of a fit reads them)."""
        return (self.q_factor**2).sum(axis=-1)

    @property
    def rss(self):
        """yᵀPy = Σw(y − Xβ̂)²."""
        return (self.w * self.resid**2).sum(axis=-1)

    q = rss  # the name of yᵀPy in the intercept-only sums (Q of the weights w)

    @property
    def s(self):
        """Σw."""
        return self.w.sum(axis=-1)

    @property
    def s2(self):
        """Σw²."""
        return (self.w**2).sum(axis=-1)

    @property
    def ypy2(self):
        """yᵀP²y = |Py|², Py = w∘(y − Xβ̂)."""
        return ((self.w * self.resid) ** 2).sum(axis=-1)

    @property
    def tr_p(self):
        return (self.w * (1 - self.h)).sum(axis=-1)

    def tr_pdpd(self, d1, d2):
        """tr(P D₁ P D₂) for diagonal D₁ = diag(d1), D₂ = diag(d2) (one array for both: its sums once)."""
        e1 = self.w * d1
        m1 = np.einsum("bki,bk,bkj->bij", self.q_factor, e1, self.q_factor)
        if d2 is d1:
            e2, m2 = e1, m1
        else:
            e2 = self.w * d2
            m2 = np.einsum("bki,bk,bkj->bij", self.q_factor, e2, self.q_factor)
        return (e1 * e2).sum(axis=-1) - 2 * (e1 * e2 * self.h).sum(axis=-1) + np.einsum("bij,bji->b", m1, m2)

    @property
    def tr_p2(self):
        one = np.ones_like(self.w)
        return self.tr_pdpd(one, one)

    @property
    def ypy3(self):
        """yᵀP³y = uᵀPu with u = Py: |(I − QQᵀ)W^½u|² (the projected residual, not |W^½u|² − |QᵀW^½u|²,
        which cancels when one weight dominates)."""
        su = np.sqrt(self.w) * self.w * self.resid
        proj = su - np.einsum("bkp,bp->bk", self.q_factor, np.einsum("bkp,bk->bp", self.q_factor, su))
        return (proj**2).sum(axis=-1)

    @property
    def vb(self):
        """(XᵀWX)⁻¹ = R⁻¹R⁻ᵀ."""
        r_inv = np.linalg.inv(self.r)
        return r_inv @ np.swapaxes(r_inv, -1, -2)

    @property
    def logdet(self):
        """log |XᵀWX| = 2Σ log |R_jj|."""
        return 2 * np.log(np.abs(np.diagonal(self.r, axis1=-2, axis2=-1))).sum(axis=-1)

    logdet_xwx = logdet  # the name the estimators use
