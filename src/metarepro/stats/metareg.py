"""Mixed-effects meta-regression, metafor's ``rma(yi, vi, mods = ...)``, vectorized over a batch.

``rma_mods(yi, vi, X)`` fits y = Xβ + u + e with u ~ N(0, τ²) and e ~ N(0, v). A 2-D ``X`` is the full k×p design
matrix *including* the intercept column (build it with :func:`design_matrix` from a data frame's columns, or
:func:`model_matrix` from values); a 1-D ``X`` is one moderator and gets an intercept, as metafor's
``rma(yi, vi, mods = x)`` (``metarepro.rma(yi, vi, mods=x)`` is the metafor-shaped way in). ``yi``/``vi`` may be
(k,) for one fit or (B, k) for B fits sharing k; ``X`` is then (k, p) (shared) or (B, k, p). Rows with a missing
value in ``yi``, ``vi`` or ``X`` are left out, as metafor's ``na.action = "na.omit"`` does, so a batch may be ragged
(NaN-padded); ``k`` reports the studies used.

The weighted sums come from :class:`metarepro._core.wls.Design` (the thin QR of W^½X; nothing k×k) and τ² from
the estimators of :mod:`metarepro.stats.tau2`, written once for this case and the intercept-only model (the
formulas with k − p there; the ML/REML global check; ``tau2_local`` holds a lower local maximum, where metafor
may stop). As metafor, all τ² equations, Q_E and the ll(0) check use the mean-centred y (immaterial with an
intercept). Every estimate is truncated at 0.

Tests (``test``): ``"z"`` Wald z and χ²(m) for QM; ``"knha"`` Knapp–Hartung: Var(β̂) × s², s² = yᵀPy/(k−p) with
the final weights (0 if that RSS ≤ machine ε), t(k−p) for coefficients and QM/m ~ F(m, k−p). QM tests the
coefficients ``btt`` (0-based column indices; default: all but the intercept, or the intercept alone when it is
the only column).

Heterogeneity (metafor §4): Q_E = yᵀP_FE y with W_FE = diag(1/v), df k−p; ṽ = (k−p)/tr P_FE;
I² = 100τ²/(ṽ+τ²), H² = 1 + τ²/ṽ (EE: I² = max(0, 100(Q_E−(k−p))/Q_E), H² = Q_E/(k−p)); k ≤ p gives
Q_E = 0, p = 1, I² = 0, H² = 1. Pseudo-R² (percent, only for models with an intercept and moderators):
max(0, 100(τ²_RE − τ²)/τ²_RE) against the intercept-only fit with the same method and control, as ``rma()`` fits it
(the same τ²_RE, to the bit; 0 if τ²_RE = 0);
for EE metafor's weighted adjusted R² of the regression, max(0, 100(1 − (Q_E/(k−p))/(TSS_w/(k−1)))).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from metarepro._core import dist
from metarepro._core.batch import EPS, Batch
from metarepro._core.printing import Printable
from metarepro._core.spellings import add_aliases, metafor_spellings
from metarepro._core.wls import Design
from metarepro.stats import heterogeneity
from metarepro.stats.rma import TESTS, check_options
from metarepro.stats.tau2 import Control, estimate_tau2, loglik, tau2_se

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


def model_matrix(mods, intercept: bool = True) -> pd.DataFrame:
    """The design matrix of metafor's ``rma(yi, vi, mods = ...)`` for moderators given as values.

    ``mods``: a vector (one moderator, named ``"mods"`` as metafor names it), a k×m matrix (columns ``"mods1"``...
    ``"modsm"``), or a DataFrame / named Series (its columns, coded by :func:`design_matrix`: numeric as they are,
    text as treatment-coded factors). The intercept column ``"intrcpt"`` comes first unless ``intercept=False``
    (metafor's ``intercept=TRUE`` default; ``mods = ~ 0 + x`` in a formula).
    """
    if isinstance(mods, pd.Series):
        mods = mods.to_frame(name=mods.name if mods.name is not None else "mods")
    if not isinstance(mods, pd.DataFrame):
        values = np.asarray(mods, dtype=float)
        if values.ndim not in (1, 2):
            raise ValueError(f"mods must be a vector or a k×m matrix, not an array of shape {values.shape}")
        names = ["mods"] if values.ndim == 1 else [f"mods{j + 1}" for j in range(values.shape[1])]
        mods = pd.DataFrame(values.reshape(values.shape[0], -1), columns=names)
    return design_matrix(mods, list(mods.columns), intercept)


# ---------------------------------------------------------------------------------------------------------------
# the model
# ---------------------------------------------------------------------------------------------------------------

FIELDS = (
    "k", "beta", "se", "zval", "pval", "ci_lb", "ci_ub", "vb", "tau2", "se_tau2", "QE", "QE_df", "QEp",
    "QM", "QMdf", "QMp", "I2", "H2", "R2", "s2", "converged", "iterations", "tau2_local",
)  # fmt: skip

# older name -> metafor's name (the field); the older names stay readable for the code that spells them so
ALIASES = {"ci_low": "ci_lb", "ci_high": "ci_ub", "tau2_se": "se_tau2", "QE_p": "QEp", "QM_p": "QMp", "QM_df": "QMdf"}


@dataclass(repr=False)  # printing.Printable gives the metafor-like repr
class MetaregResult(Printable):
    """One fit (``beta`` of shape (p,), scalars elsewhere) or a batch (a leading axis of length B on every field).

    metafor's names: ``beta``, ``se``, ``zval`` (z for ``test="z"``, t for ``"knha"``), ``pval``, ``ci_lb``/``ci_ub``,
    ``vb`` (Var(β̂)), ``tau2`` and ``se_tau2``, ``QE`` on ``QE_df`` = k − p df with ``QEp``, ``QM`` with ``QMdf``
    ((m, NaN) for z, (m, k−p) for knha, where QM is then the F statistic) and ``QMp``, ``I2``, ``H2``, ``R2``.
    ``s2`` is the Knapp–Hartung scale (1 for z). ``btt`` are 0-based. ``I2`` and ``R2`` are in percent as in
    metafor; ``R2`` is NaN for a model without moderators or intercept. The older names of :data:`ALIASES`
    (``ci_low``, ``QM_p``, ...) read the same values.
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
    ci_lb: np.ndarray
    ci_ub: np.ndarray
    vb: np.ndarray = field(repr=False)
    tau2: np.ndarray
    se_tau2: np.ndarray
    QE: np.ndarray
    QE_df: np.ndarray
    QEp: np.ndarray
    QM: np.ndarray
    QMdf: np.ndarray
    QMp: np.ndarray
    I2: np.ndarray
    H2: np.ndarray
    R2: np.ndarray
    s2: np.ndarray
    converged: np.ndarray
    iterations: np.ndarray
    # ML/REML: where the likelihood has more than one local maximum, a lower one (tau2 is the global one), where
    # metafor's rma() may stop from its default start; else NaN
    tau2_local: np.ndarray = field(repr=False, default=None)
    # a single fit's studies (those used) and design matrix, which robust() reuses; None for a batch
    yi: np.ndarray | None = field(repr=False, default=None)
    vi: np.ndarray | None = field(repr=False, default=None)
    X: np.ndarray | None = field(repr=False, default=None)
    control: Control | None = field(repr=False, default=None)

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
             "ci_low": self.ci_lb, "ci_high": self.ci_ub},
            index=list(self.names),
        )  # fmt: skip

    def confint(self):
        """metafor's ``confint(fit)`` of a single fit: the residual τ², τ, I² (percent) and H² with their Q-profile
        CIs: the τ² at which Q(W(τ²)) of the residuals of y (not of the centred y) equals the χ²(k − p)
        quantiles, by the search of the intercept-only model (:func:`metarepro.stats.heterogeneity.q_profile_ci`,
        up to its limit). NaN for ``EE``, which metafor's confint refuses."""
        if self.yi is None:
            raise ValueError("confint() is for a single fit of rma_mods() (it keeps yi, vi and X)")
        if self.method == "EE":
            return heterogeneity.confint_table(self.tau2, (np.nan, np.nan), self.I2, (np.nan, np.nan), self.H2)
        data = _prepare(self.yi, self.vi, self.X)[0]
        data = replace(data, ymc=data.y)  # metafor's confint profiles Q of y itself (its estimators: of the centred y)
        fe = data.at(np.zeros(1))
        low, high, *_ = heterogeneity.q_profile_ci(data, np.atleast_1d(self.tau2), self.level,
                                                   self.control or Control(), fe.q)  # fmt: skip
        typical_v = (data.k - data.p) / fe.tr_p
        bounds = (float(low[0]), float(high[0]))
        i2 = tuple(float(heterogeneity.i2_from_tau2(b, typical_v)[0]) for b in bounds)
        return heterogeneity.confint_table(self.tau2, bounds, self.I2, i2, self.H2)

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


add_aliases(MetaregResult, ALIASES)


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
    data = Design(y, ymc, np.where(mask, vi, 1.0), Xm, mask, k)
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

    A 2-D ``X`` is the whole design matrix, the intercept column included where the model has one (build it with
    :func:`design_matrix` or :func:`model_matrix`; a model without intercept is an X without that column). A 1-D
    ``X`` is one moderator, and the model gets an intercept, as metafor's ``rma(yi, vi, mods = x)``.

    Defaults as metafor: ``method="REML"``, ``test="z"``, ``level=95``, ``btt`` = every coefficient but the
    intercept; ``control`` defaults to ``Control()`` (tight convergence). X must be of full rank (metafor's
    eigenvalue check) and k must exceed p (k ≥ p for ``EE``).
    """
    if not isinstance(X, pd.DataFrame) and np.ndim(X) == 1:
        X = model_matrix(X)
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

    est = estimate_tau2(data, method, control)
    tau2 = est.tau2
    fit = data.at(tau2, centred=False)
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

        fe = data.at(np.zeros(k.shape))
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
        beta=beta, se=se, zval=zval, pval=pval, ci_lb=beta - crit * se, ci_ub=beta + crit * se, vb=vb,
        tau2=tau2, se_tau2=tau2_se(data, method, tau2), QE=qe, QE_df=df, QEp=qe_p,
        QM=qm, QMdf=qm_df, QMp=qm_p, I2=i2, H2=h2, R2=r2, s2=s2,
        converged=est.converged, iterations=est.iterations, tau2_local=est.local_tau2,
    )  # fmt: skip
    if not single:
        return result
    used = data.mask[0]
    return replace(result[0], yi=data.y[0, used], vi=data.v[0, used], X=data.X[0, used], control=control)


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
    # the intercept-only fit of the same rows, as rma() fits it (metafor: rma() without the moderators)
    tau2_re = estimate_tau2(Batch(data.y, data.v, data.mask, k), method, control).tau2
    return np.where(tau2_re == 0, 0.0, np.maximum(0.0, 100 * (tau2_re - tau2) / tau2_re))


__all__ = ["MetaregResult", "design_matrix", "model_matrix", "loglik", "rma_mods", "TESTS", "INTERCEPT"]
