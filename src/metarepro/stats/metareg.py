"""Mixed-effects meta-regression, metafor's ``rma(yi, vi, mods = ...)``, vectorized over a batch.

``rma_mods(yi, vi, X)`` fits y = Xβ + u + e with u ~ N(0, τ²) and e ~ N(0, v). ``X`` is the full k×p design
matrix *including* the intercept column (build it with :func:`design_matrix`). ``yi``/``vi`` may be (k,) for one
fit or (B, k) for B fits sharing k; ``X`` is then (k, p) (shared) or (B, k, p). Rows with a missing value in
``yi``, ``vi`` or ``X`` are left out, as metafor's ``na.action = "na.omit"`` does, so a batch may be ragged
(NaN-padded); ``k`` reports the studies used.

Nothing forms a k×k matrix. With W = diag(w), S = W^½ and the thin QR decomposition S X = Q R, the residual
maker P = W − WX(XᵀWX)⁻¹XᵀW is S(I − QQᵀ)S, so (h = row sums of Q², the leverages):

* β̂ = R⁻¹Qᵀ S y, Var(β̂) = (XᵀWX)⁻¹ = R⁻¹R⁻ᵀ, Py = w∘(y − Xβ̂), yᵀPy = Σw(y − Xβ̂)²
* tr P = Σw(1 − h); for diagonal D₁, D₂ with e = w∘d: tr(PD₁PD₂) = Σe₁e₂ − 2Σe₁e₂h + tr(QᵀE₁Q·QᵀE₂Q)

τ² estimators (metafor's formulas with moderators, see shared/reference/metafor_internals.md §2):

* ``EE`` 0. ``DL`` (Q_E − (k−p))/tr P_FE. ``HS`` (Q_E − k)/Σw (k, not k−p, as metafor).
* ``HE`` (yᵀP₀y − tr(P₀V))/(k−p) with the unweighted P₀ = I − X(XᵀX)⁻¹Xᵀ.
* ``SJ`` τ₀²·Q(W(τ₀²))/(k−p), τ₀² = Σ(y − ȳ)²/k (ignores X, as metafor).
* ``PM`` the root of Q(W(τ²)) = k − p (0 if Q(W(0)) < k − p).
* ``EB`` metafor iterates Fisher scoring with the update (k/(k−p)·Q(W(τ²)) − k)/Σw, whose fixed point is
  Q(W(τ²)) = k − p, the PM equation. That iteration can oscillate, so EB is solved like PM.
* ``ML``/``REML`` the root of metafor's score equation (yᵀP²y − Σw for ML, yᵀP²y − tr P for REML) nearest
  metafor's start (the HE estimate floored at 0), then the ll(0) check (τ² = 0 if the likelihood at 0 is higher
  by more than ``control.ll0_tol`` and 0 is itself a maximum), then the global check of
  :func:`metarepro.stats.tau2.maximize_likelihood` (the global maximum over τ² ≥ 0; where the likelihood has more
  than one local maximum, ``tau2_local`` holds a lower one, where metafor may stop).

Every iterative τ² is solved by the same safeguarded Newton as the intercept-only model
(:func:`metarepro._core.batch.solve_decreasing`: bracketed, scale-free stopping, an iteration cap, a checked
solution; ``converged`` reports it).

As metafor, all τ² equations, Q_E and the ll(0) check use the mean-centred y (immaterial with an intercept).
Every estimate is truncated at 0.

Tests (``test``): ``"z"`` Wald z and χ²(m) for QM; ``"knha"`` Knapp–Hartung: Var(β̂) × s², s² = yᵀPy/(k−p) with
the final weights (0 if that RSS ≤ machine ε), t(k−p) for coefficients and QM/m ~ F(m, k−p). QM tests the
coefficients ``btt`` (0-based column indices; default: all but the intercept, or the intercept alone when it is
the only column).

Heterogeneity (metafor §4): Q_E = yᵀP_FE y with W_FE = diag(1/v), df k−p; ṽ = (k−p)/tr P_FE;
I² = 100τ²/(ṽ+τ²), H² = 1 + τ²/ṽ (EE: I² = max(0, 100(Q_E−(k−p))/Q_E), H² = Q_E/(k−p)); k ≤ p gives
Q_E = 0, p = 1, I² = 0, H² = 1. Pseudo-R² (percent, only for models with an intercept and moderators):
max(0, 100(τ²_RE − τ²)/τ²_RE) against the intercept-only fit with the same method and control (0 if τ²_RE = 0);
for EE metafor's weighted adjusted R² of the regression, max(0, 100(1 − (Q_E/(k−p))/(TSS_w/(k−1)))).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from metarepro._core import dist
from metarepro._core.batch import EPS, solve_decreasing
from metarepro._core.printing import Printable
from metarepro._core.spellings import metafor_spellings
from metarepro.stats.rma import TESTS, check_options
from metarepro.stats.tau2 import SEARCH_CAP, Control, maximize_likelihood, q_terms, score_negative_above

EVTOL = 1e-7  # metafor's rank check: an eigenvalue of XᵀX at or below this means X is not of full rank
INTERCEPT = "intrcpt"


# ---------------------------------------------------------------------------------------------------------------
# design matrix
# ---------------------------------------------------------------------------------------------------------------


def design_matrix(frame: pd.DataFrame, moderators, intercept: bool = True) -> pd.DataFrame:
    """The k×p design matrix for ``moderators`` (column names of ``frame``), as R's ``model.matrix``.

    * an intercept column ``"intrcpt"`` first (metafor's name), unless ``intercept=False``;
    * numeric (and boolean) columns as they are, named as the column;
    * text / categorical columns as treatment-coded factors: the levels sorted (Python string order; R's
      ``factor()`` sorts in the locale's collation, which can differ for mixed-case labels), the first level
      is the reference, and each other level gets a 0/1 column named like metafor's ``mods = ~ factor(x)``:
      ``"factor(x)level"``. Without an intercept the first factor codes every level (``~ 0 + factor(x)``
      in R's ``model.matrix``); later factors are treatment-coded as before.

    A missing value gives a NaN row, which ``rma_mods`` leaves out (as metafor's ``na.omit``).
    """
    if isinstance(moderators, str):
        moderators = [moderators]
    columns = {}
    k = len(frame)
    if intercept:
        columns[INTERCEPT] = np.ones(k)
    full_coding = not intercept  # the first factor spans the intercept's place
    for name in moderators:
        values = frame[name]
        if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
            columns[name] = values.to_numpy(dtype=float)
            continue
        missing = values.isna().to_numpy()
        labels = values.astype(str).to_numpy()
        levels = sorted(set(labels[~missing]))
        for level in levels if full_coding else levels[1:]:
            columns[f"factor({name}){level}"] = np.where(missing, np.nan, (labels == level).astype(float))
        full_coding = False
    return pd.DataFrame(columns, index=frame.index)


# ---------------------------------------------------------------------------------------------------------------
# weighted least squares through the thin QR of W^½X
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Data:
    """A batch of regressions: padding rows have y = 0, v = 1, X = 0 and mask False, so every sum ignores them."""

    y: np.ndarray  # (B, k)
    ymc: np.ndarray  # mean-centred y (metafor's Ymc), 0 on padding
    v: np.ndarray
    X: np.ndarray  # (B, k, p)
    mask: np.ndarray
    k: np.ndarray  # (B,)

    @property
    def p(self):
        return self.X.shape[-1]

    def subset(self, rows):
        return _Data(self.y[rows], self.ymc[rows], self.v[rows], self.X[rows], self.mask[rows], self.k[rows])

    def weights(self, tau2):
        return self.mask / (self.v + np.asarray(tau2, dtype=float)[..., None])


@dataclass(frozen=True)
class _WLS:
    w: np.ndarray  # (B, k)
    q: np.ndarray  # (B, k, p), thin Q of W^½X
    r: np.ndarray  # (B, p, p)
    beta: np.ndarray  # (B, p)
    resid: np.ndarray  # y − Xβ̂, 0 on padding

    @classmethod
    def fit(cls, X, y, w):
        s = np.sqrt(w)
        q, r = np.linalg.qr(s[..., None] * X)
        qty = np.einsum("bkp,bk->bp", q, s * y)
        beta = np.linalg.solve(r, qty[..., None])[..., 0]
        resid = np.where(w > 0, y - np.einsum("bkp,bp->bk", X, beta), 0.0)
        return cls(w, q, r, beta, resid)

    @property
    def h(self):
        """Leverages diag(W^½X(XᵀWX)⁻¹XᵀW^½)."""
        return (self.q**2).sum(axis=-1)

    @property
    def rss(self):
        """yᵀPy = Σw(y − Xβ̂)²."""
        return (self.w * self.resid**2).sum(axis=-1)

    @property
    def ypy2(self):
        """yᵀP²y = |Py|², Py = w∘(y − Xβ̂)."""
        return ((self.w * self.resid) ** 2).sum(axis=-1)

    @property
    def tr_p(self):
        return (self.w * (1 - self.h)).sum(axis=-1)

    def tr_pdpd(self, d1, d2):
        """tr(P D₁ P D₂) for diagonal D₁ = diag(d1), D₂ = diag(d2)."""
        e1, e2 = self.w * d1, self.w * d2
        m1 = np.einsum("bki,bk,bkj->bij", self.q, e1, self.q)
        m2 = np.einsum("bki,bk,bkj->bij", self.q, e2, self.q)
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
        proj = su - np.einsum("bkp,bp->bk", self.q, np.einsum("bkp,bk->bp", self.q, su))
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


def _at(data, tau2, centred=True):
    return _WLS.fit(data.X, data.ymc if centred else data.y, data.weights(tau2))


# ---------------------------------------------------------------------------------------------------------------
# τ² estimators
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Tau2:
    tau2: np.ndarray
    converged: np.ndarray
    iterations: np.ndarray
    local_tau2: np.ndarray | None = None  # ML/REML: the lower local maximum the global check replaced (else NaN)


def _he(data, ols=None):
    """HE; ``ols``: the unweighted fit of the centred y, if the caller has it."""
    ols = _WLS.fit(data.X, data.ymc, data.mask.astype(float)) if ols is None else ols
    tr_p0v = (data.v * (1 - ols.h) * data.mask).sum(axis=-1)
    return (ols.rss - tr_p0v) / (data.k - data.p)


def _sj_start(data):
    return (data.ymc**2).sum(axis=-1) / data.k


def _unit_cap(data):
    """The data's own scale for the τ² searches (see tau2.search_cap): min vᵢ, and the search limit."""
    vmin = np.where(data.mask, data.v, np.inf).min(axis=-1)
    vmax = np.where(data.mask, data.v, 0.0).max(axis=-1)
    return vmin, SEARCH_CAP * (vmax + (data.ymc**2).sum(axis=-1) / data.k)


def _pm(data, control):
    """Root of Q(W(τ²)) = k − p (0 if Q(W(0)) ≤ k − p), by tau2's safeguarded Newton on 1/Q."""
    target = (data.k - data.p).astype(float)
    active = _at(data, np.zeros(target.shape)).rss > target

    def q_eq(sub, x, rows):
        fit = _at(sub, x)
        return q_terms(fit.rss, fit.ypy2, target[rows])

    n = target.size
    fun = lambda x, rows: q_eq(data if rows.size == n else data.subset(rows), x, rows)  # noqa: E731
    unit, cap = _unit_cap(data)
    root = solve_decreasing(
        fun, np.zeros(n), np.zeros(n), np.full(n, np.inf), active, control.tol, control.maxiter, unit, cap
    )
    converged = np.where(active, root.converged & ~root.capped, True)
    return _Tau2(np.where(active, root.x, 0.0), converged, root.iterations)


def _score_terms(method, fit):
    """ML/REML score f(τ²) with its derivative, the size of its terms and the expected information."""
    ypy2 = fit.ypy2
    if method == "REML":
        trace, info = fit.tr_p, fit.tr_p2
    else:
        trace, info = fit.w.sum(axis=-1), (fit.w**2).sum(axis=-1)
    return ypy2 - trace, info - 2 * fit.ypy3, ypy2 + trace, info


def loglik(data, tau2, reml):
    """(Restricted) log-likelihood on the centred y, without the constant ½ln|XᵀX| (it cancels in comparisons)."""
    fit = _at(data, tau2)
    log_v = np.log(data.v + np.asarray(tau2)[..., None]).sum(axis=-1, where=data.mask)
    if reml:
        return -0.5 * (data.k - data.p) * np.log(2 * np.pi) - 0.5 * log_v - 0.5 * fit.logdet - 0.5 * fit.rss
    return -0.5 * data.k * np.log(2 * np.pi) - 0.5 * log_v - 0.5 * fit.rss


def _maximum_likelihood(method, data, control):
    """metafor's ML/REML estimate (start HE floored at 0, ll(0) check), solved as tau2.maximize_likelihood."""
    ols = _WLS.fit(data.X, data.ymc, data.mask.astype(float))
    start = np.maximum(0.0, np.nan_to_num(_he(data, ols)))
    f0 = _score_terms(method, _at(data, np.zeros(start.shape)))[0]
    unit, cap = _unit_cap(data)
    reml = method == "REML"
    vmax = np.where(data.mask, data.v, 0.0).max(axis=-1)
    top = score_negative_above(unit, vmax, ols.rss, data.k, data.p if reml else 0)
    est = maximize_likelihood(
        lambda x, rows: _score_terms(method, _at(data.subset(rows), x)),
        lambda t, rows: (loglik(data.subset(rows), t, reml), None), start, f0, unit, cap, control,
        np.ones(start.shape, bool), top=top,
    )  # fmt: skip
    return _Tau2(est.tau2, est.converged, est.iterations, est.local_tau2)


def _estimate_tau2(data, method, control):
    n = data.k.shape[0]
    if method in ("ML", "REML"):
        est = _maximum_likelihood(method, data, control)
    elif method in ("PM", "EB"):
        est = _pm(data, control)
    else:
        if method == "EE":
            raw = np.zeros(n)
        elif method == "HE":
            raw = _he(data)
        elif method == "SJ":
            tau0 = _sj_start(data)
            raw = tau0 * _at(data, tau0).rss / (data.k - data.p)
        else:
            fe = _at(data, np.zeros(n))
            raw = (fe.rss - (data.k - data.p)) / fe.tr_p if method == "DL" else (fe.rss - data.k) / fe.w.sum(axis=-1)
        est = _Tau2(raw, np.ones(n, dtype=bool), np.zeros(n, dtype=int))
    local = np.full(n, np.nan) if est.local_tau2 is None else est.local_tau2
    return _Tau2(np.maximum(0.0, est.tau2), est.converged, est.iterations, local)


def _tau2_se(data, method, tau2):
    """metafor's ``se.tau2`` for models with moderators; NaN for EE."""
    k, p = data.k.astype(float), data.p
    t = np.maximum(tau2, 0.0)
    v = data.v * data.mask
    one = data.mask.astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        if method in ("DL", "HS"):
            fe = _at(data, np.zeros_like(t))
            bracket = np.sqrt(2 * (k - p) + 4 * t * fe.tr_p + 2 * t**2 * fe.tr_p2)
            return bracket / (fe.tr_p if method == "DL" else fe.w.sum(axis=-1))
        if method == "HE":
            ols = _WLS.fit(data.X, data.ymc, one)
            tr_p0v = (v * (1 - ols.h)).sum(axis=-1)
            return np.sqrt(2 * ols.tr_pdpd(v, v) + 4 * t * tr_p0v + 2 * t**2 * (k - p)) / (k - p)
        if method == "SJ":
            tau0 = _sj_start(data)
            fit = _at(data, tau0)
            bracket = 2 * fit.tr_pdpd(v, v) + 4 * t * fit.tr_pdpd(v, one) + 2 * t**2 * fit.tr_p2
            return tau0 / (k - p) * np.sqrt(bracket)
        fit = _at(data, t)
        if method == "ML":
            return np.sqrt(2 / (fit.w**2).sum(axis=-1))
        if method == "REML":
            return np.sqrt(2 / fit.tr_p2)
        if method in ("PM", "EB"):
            return np.sqrt(2 * k**2 / (k - p)) / fit.w.sum(axis=-1)
    return np.full(k.shape, np.nan)


# ---------------------------------------------------------------------------------------------------------------
# the model
# ---------------------------------------------------------------------------------------------------------------

FIELDS = (
    "k", "beta", "se", "zval", "pval", "ci_low", "ci_high", "vb", "tau2", "tau2_se", "QE", "QE_df", "QE_p",
    "QM", "QM_df", "QM_p", "I2", "H2", "R2", "s2", "converged", "iterations", "tau2_local",
)  # fmt: skip


@dataclass(repr=False)  # printing.Printable gives the metafor-like repr
class MetaregResult(Printable):
    """One fit (``beta`` of shape (p,), scalars elsewhere) or a batch (a leading axis of length B on every field).

    ``zval`` is z (``test="z"``) or t (``"knha"``); ``QM_df`` is metafor's ``QMdf``: (m, NaN) for z, (m, k−p) for
    knha, where QM is then the F statistic. ``s2`` is the Knapp–Hartung scale (1 for z). ``btt`` are 0-based.
    ``I2`` and ``R2`` are in percent as in metafor; ``R2`` is NaN for a model without moderators or intercept.
    """

    method: str
    test: str
    level: float
    names: tuple
    btt: tuple
    p: int
    k: np.ndarray
    beta: np.ndarray
    se: np.ndarray
    zval: np.ndarray
    pval: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    vb: np.ndarray = field(repr=False)
    tau2: np.ndarray
    tau2_se: np.ndarray
    QE: np.ndarray
    QE_df: np.ndarray
    QE_p: np.ndarray
    QM: np.ndarray
    QM_df: np.ndarray
    QM_p: np.ndarray
    I2: np.ndarray
    H2: np.ndarray
    R2: np.ndarray
    s2: np.ndarray
    converged: np.ndarray
    iterations: np.ndarray
    # ML/REML: where the likelihood has more than one local maximum, a lower one (tau2 is the global one), where
    # metafor's rma() may stop from its default start; else NaN
    tau2_local: np.ndarray = field(repr=False, default=None)

    def __getitem__(self, i):
        """The i-th fit of a batch."""
        values = {name: getattr(self, name)[i] for name in FIELDS}
        return MetaregResult(self.method, self.test, self.level, self.names, self.btt, self.p, **values)

    def __len__(self):
        return int(np.size(self.k))

    @property
    def tau(self):
        return np.sqrt(self.tau2)

    def coefficients(self) -> pd.DataFrame:
        """metafor's coefficient table of a single fit."""
        return pd.DataFrame(
            {"estimate": self.beta, "se": self.se, "zval": self.zval, "pval": self.pval,
             "ci_low": self.ci_low, "ci_high": self.ci_high},
            index=list(self.names),
        )  # fmt: skip

    def predict(self, newmods):
        """Fitted values x β̂ for the rows of ``newmods`` (m×p, intercept column included) of a single fit.

        Returns a DataFrame with ``pred``, ``se``, ``ci_low``/``ci_high`` and the prediction interval
        ``pi_low``/``pi_high`` = pred ± crit·√(se² + τ²) as metafor's ``predict.rma`` (crit from z for
        ``test="z"`` and t(k−p) for knha; ``se`` is Knapp–Hartung-scaled for knha).
        """
        x = np.atleast_2d(np.asarray(newmods, dtype=float))
        pred = x @ self.beta
        se = np.sqrt(np.einsum("mi,ij,mj->m", x, self.vb, x))
        crit = _critical(self.test, self.level, self.k - self.p)
        pi_half = crit * np.sqrt(se**2 + self.tau2)
        return pd.DataFrame({"pred": pred, "se": se, "ci_low": pred - crit * se, "ci_high": pred + crit * se,
                             "pi_low": pred - pi_half, "pi_high": pred + pi_half})  # fmt: skip


def _critical(test, level, df):
    if test == "knha":
        return dist.t_ppf(0.5 + level / 200, df)
    return dist.norm_ppf(0.5 + level / 200) + 0 * np.asarray(df, dtype=float)


def _prepare(yi, vi, X):
    yi = np.asarray(yi, dtype=float)
    vi = np.asarray(vi, dtype=float)
    single = yi.ndim == 1
    yi, vi = np.atleast_2d(yi), np.atleast_2d(vi)
    if yi.shape != vi.shape:
        raise ValueError(f"yi and vi differ in shape: {yi.shape} vs {vi.shape}")
    names = None
    if isinstance(X, pd.DataFrame):
        names = tuple(str(c) for c in X.columns)
    X = np.asarray(X, dtype=float)
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim == 2:
        X = np.broadcast_to(X, (yi.shape[0], *X.shape))
    if X.shape[:2] != yi.shape:
        raise ValueError(f"X must be (k, p) or (B, k, p) matching yi {yi.shape}, not {X.shape}")
    mask = np.isfinite(yi) & np.isfinite(vi) & np.isfinite(X).all(axis=-1)
    if np.any(vi[mask] <= 0):
        raise ValueError("every sampling variance vi must be > 0")
    k = mask.sum(axis=-1)
    y = np.where(mask, yi, 0.0)
    ybar = y.sum(axis=-1) / np.maximum(k, 1)
    ymc = np.where(mask, y - ybar[:, None], 0.0)
    Xm = np.where(mask[..., None], X, 0.0)
    data = _Data(y, ymc, np.where(mask, vi, 1.0), Xm, mask, k)
    p = X.shape[-1]
    is_int = np.all(np.where(mask[..., None], np.abs(Xm - 1) < 1e-8, True), axis=(0, 1))
    if names is None:
        names = tuple(INTERCEPT if is_int[j] else f"X{j + 1}" for j in range(p))
    return data, single, names, is_int


def _full_rank(data):
    xtx = np.einsum("bki,bkj->bij", data.X, data.X)
    return np.linalg.eigvalsh(xtx).min(axis=-1) > EVTOL


def _default_btt(p, is_int):
    if p == 1:
        return (0,)
    return tuple(j for j in range(p) if not is_int[j]) if is_int.any() else tuple(range(p))


def rma_mods(yi, vi, X, method="REML", test="z", level=95, control: Control | None = None, btt=None) -> MetaregResult:
    """Fit the meta-regression of ``yi`` (sampling variances ``vi``) on the design matrix ``X`` (see module doc).

    Defaults as metafor: ``method="REML"``, ``test="z"``, ``level=95``, ``btt`` = every coefficient but the
    intercept; ``control`` defaults to ``Control()`` (tight convergence). X must be of full rank (metafor's
    eigenvalue check) and k must exceed p (k ≥ p for ``EE``).
    """
    return _fit(yi, vi, X, method, test, level, control, btt, with_r2=True)


def _fit(yi, vi, X, method, test, level, control, btt, with_r2):
    method, level = metafor_spellings(method, level)
    check_options(method, test, level)
    control = control or Control()
    data, single, names, is_int = _prepare(yi, vi, X)
    k, p = data.k, data.p
    min_k = p if method == "EE" else p + 1
    if np.any(k < min_k):
        raise ValueError(f"every fit needs k ≥ {min_k} studies for p = {p} coefficients with method {method}")
    if not _full_rank(data).all():
        raise ValueError("model matrix not of full rank; cannot fit the model")
    btt = _default_btt(p, is_int) if btt is None else tuple(sorted({int(b) for b in np.atleast_1d(btt)}))
    b_idx = np.array(btt)
    m = len(btt)

    est = _estimate_tau2(data, method, control)
    tau2 = est.tau2
    fit = _at(data, tau2, centred=False)
    beta, vb = fit.beta, fit.vb
    df = (k - p).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        rss = fit.rss
        s2 = np.where(rss <= EPS, 0.0, rss / df) if test == "knha" else np.ones(k.shape)
        vb = vb * s2[:, None, None]
        se = np.sqrt(np.diagonal(vb, axis1=-2, axis2=-1))
        with np.errstate(divide="ignore", invalid="ignore"):  # se = 0 when s2 = 0: t = ±Inf, as metafor
            zval = beta / se
        # With s2 = 0 (every residual 0) the scaled Var(β̂) is 0 and cannot be inverted: QM is NA, as in metafor.
        testable = s2 > 0
        vb_bb = vb[:, b_idx[:, None], b_idx[None, :]]
        beta_b = beta[:, b_idx]
        qm = np.full(k.shape, np.nan)
        if testable.any():
            solved = np.linalg.solve(vb_bb[testable], beta_b[testable][..., None])[..., 0]
            qm[testable] = np.einsum("bi,bi->b", beta_b[testable], solved)
        crit = _critical(test, level, df)[:, None]
        if test == "knha":
            pval = 2 * dist.t_sf(np.abs(zval), df[:, None])
            qm = qm / m
            qm_df = np.stack([np.full(df.shape, float(m)), df], axis=-1)
            qm_p = dist.f_sf(qm, m, df)
        else:
            pval = 2 * dist.norm_sf(np.abs(zval))
            qm_df = np.stack([np.full(df.shape, float(m)), np.full(df.shape, np.nan)], axis=-1)
            qm_p = dist.chi2_sf(qm, m)

        fe = _at(data, np.zeros(k.shape))
        has_df = k > p
        qe = np.where(has_df, np.maximum(0.0, fe.rss), 0.0)
        qe_p = np.where(has_df, dist.chi2_sf(qe, df), 1.0)
        typical_v = df / fe.tr_p
        if method == "EE":
            i2 = np.where(has_df, np.maximum(0.0, 100 * (qe - df) / qe), 0.0)
            h2 = np.where(has_df, qe / df, 1.0)
        else:
            i2 = np.where(has_df, 100 * tau2 / (typical_v + tau2), 0.0)
            h2 = np.where(has_df, 1 + tau2 / typical_v, 1.0)
        r2 = _pseudo_r2(data, method, tau2, qe, control) if (with_r2 and p > 1 and is_int.any()) else np.nan
        r2 = np.broadcast_to(r2, k.shape).astype(float)

    result = MetaregResult(
        method=method, test=test, level=level, names=names, btt=btt, p=p, k=k,
        beta=beta, se=se, zval=zval, pval=pval, ci_low=beta - crit * se, ci_high=beta + crit * se, vb=vb,
        tau2=tau2, tau2_se=_tau2_se(data, method, tau2), QE=qe, QE_df=df, QE_p=qe_p,
        QM=qm, QM_df=qm_df, QM_p=qm_p, I2=i2, H2=h2, R2=r2, s2=s2,
        converged=est.converged, iterations=est.iterations, tau2_local=est.local_tau2,
    )  # fmt: skip
    return result[0] if single else result


def _pseudo_r2(data, method, tau2, qe, control):
    k = data.k
    if method == "EE":
        # metafor: adjusted R² of lm(yi ~ X, weights = 1/vi), in percent
        w = data.mask / data.v
        mu = (w * data.y).sum(axis=-1) / w.sum(axis=-1)
        tss = (w * np.where(data.mask, data.y - mu[:, None], 0.0) ** 2).sum(axis=-1)
        adj = 1 - (qe / (k - data.p)) / (tss / (k - 1))
        constant = np.all(np.where(data.mask, data.y == data.y[:, :1], True), axis=-1)
        return np.where(constant, 0.0, np.maximum(0.0, 100 * adj))
    # the intercept-only refit through the same code (the same solver for ML/REML)
    ones = data.mask[..., None].astype(float)
    tau2_re = _estimate_tau2(_Data(data.y, data.ymc, data.v, ones, data.mask, k), method, control).tau2
    return np.where(tau2_re == 0, 0.0, np.maximum(0.0, 100 * (tau2_re - tau2) / tau2_re))


__all__ = ["MetaregResult", "design_matrix", "loglik", "rma_mods", "TESTS", "INTERCEPT"]
