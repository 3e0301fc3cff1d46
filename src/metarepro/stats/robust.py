"""Cluster-robust inference, metafor's ``robust()`` (with and without ``clubSandwich = TRUE``).

``robust(fit, cluster)`` takes an :func:`~metarepro.stats.mv.rma_mv` fit, or an :func:`~metarepro.stats.rma.rma` /
:func:`~metarepro.stats.metareg.rma_mods` fit together with its ``yi``, ``vi`` (and ``X``), and returns the
coefficients' sandwich variance and tests:

* ``clubSandwich=False`` (metafor's default): CR1, the sandwich ``B (Σ_j X_j'W_j e_j e_j'W_j X_j) B`` with
  ``B = (X'WX)⁻¹`` and W the model's inverse marginal covariance, times ``n/(n − p)`` (n clusters), with t tests
  on ``n − p`` df and ``QM/m`` against F(m, n − p) (``adjust=False`` gives CR0).
* ``clubSandwich=True``: CR2 (the bias-reduced adjustment ``A_j = D_j'(D_j(I − H_jj)Θ_j D_j')^{-1/2} D_j``,
  Θ_j the model's marginal covariance of cluster j, ``D_j'D_j = Θ_j``), Satterthwaite df per coefficient
  (clubSandwich ``coef_test``), and the HTZ Wald test of the moderators (``Wald_test(test = "HTZ")``), computed
  as clubSandwich 0.5.8 does (its weight normalisation for ``rma.uni`` cancels and is left out).

Clusters must contain whole blocks of the model (the random effects are nested within them), as clubSandwich
requires; nothing k×k is formed, each cluster is handled on its own.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from metarepro._core import dist
from metarepro.stats.mv import RmaMvResult


@dataclass
class RobustResult:
    """Cluster-robust tests of a fit's coefficients (metafor's ``robust.rma`` fields)."""

    vbest: str
    n: int
    beta: np.ndarray
    se: np.ndarray
    zval: np.ndarray
    pval: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    vb: np.ndarray
    dfs: np.ndarray
    QM: float
    QM_df: tuple
    QM_p: float
    btt: np.ndarray

    def to_dict(self):
        out = {}
        for name, value in vars(self).items():
            out[name] = np.asarray(value).tolist() if isinstance(value, np.ndarray) else value
        out["QM_df"] = list(self.QM_df)
        return out


@dataclass(eq=False)
class _Clusters:
    """Clusters of one size s, stacked: X (n, s, p), e residuals (n, s), theta marginal covariance (n, s, s)."""

    X: np.ndarray
    e: np.ndarray
    theta: np.ndarray

    @property
    def W(self):
        return np.linalg.inv(self.theta)


def _stack(items):
    """Group per-cluster (X, e, theta) by cluster size."""
    by_size = {}
    for X, e, theta in items:
        by_size.setdefault(e.size, []).append((X, e, theta))
    return [_Clusters(*(np.stack(parts) for parts in zip(*group, strict=True))) for group in by_size.values()]


def _clusters_mv(fit: RmaMvResult, cluster):
    cluster = np.asarray(cluster)
    if cluster.size != fit.k:
        raise ValueError(f"cluster has {cluster.size} values but the model has {fit.k} effects")
    labels, codes = np.unique(cluster, return_inverse=True)
    rows_of = [[] for _ in labels]
    blocks_of = [[] for _ in labels]
    for rows, M in fit.marginal_blocks():
        block_codes = codes[rows]
        if np.any(block_codes != block_codes[:, :1]):
            raise ValueError(
                "the model's random effects or sampling covariances link effects in different clusters; "
                "use a cluster variable that contains them (e.g. the outermost grouping)"
            )
        for b, c in enumerate(block_codes[:, 0]):
            rows_of[c].append(rows[b])
            blocks_of[c].append(M[b])
    resid = fit._yi - fit._X @ fit.beta
    items = []
    for rows, blocks in zip(rows_of, blocks_of, strict=True):
        r = np.concatenate(rows)
        theta = blocks[0] if len(blocks) == 1 else _block_diag(blocks)
        items.append((fit._X[r], resid[r], theta))
    return _stack(items), len(labels), fit.beta, fit.btt


def _block_diag(blocks):
    size = sum(b.shape[0] for b in blocks)
    out = np.zeros((size, size))
    at = 0
    for b in blocks:
        s = b.shape[0]
        out[at : at + s, at : at + s] = b
        at += s
    return out


def _clusters_uni(fit, cluster, yi, vi, X):
    if yi is None or vi is None:
        raise ValueError("robust() of an rma()/rma_mods() fit needs the fit's yi and vi (and X for rma_mods)")
    yi, vi = np.asarray(yi, dtype=float), np.asarray(vi, dtype=float)
    X = np.ones((yi.size, 1)) if X is None else np.asarray(X, dtype=float)
    beta = np.atleast_1d(np.asarray(getattr(fit, "beta", getattr(fit, "estimate", None)), dtype=float))
    btt = np.asarray(getattr(fit, "btt", ()), dtype=int)
    if beta.size == 1 and btt.size == 0:
        btt = np.zeros(1, dtype=int)
    cluster = np.asarray(cluster)
    if cluster.size != yi.size:
        raise ValueError(f"cluster has {cluster.size} values but the model has {yi.size} effects")
    total = vi + float(fit.tau2)
    resid = yi - X @ beta
    labels = np.unique(cluster)
    items = [(X[r], resid[r], np.diag(total[r])) for r in (np.flatnonzero(cluster == c) for c in labels)]
    return _stack(items), labels.size, beta, btt


def robust(fit, cluster, *, yi=None, vi=None, X=None, clubSandwich=False, adjust=True, level=None) -> RobustResult:
    """Cluster-robust tests (see module doc); ``cluster`` gives each effect's cluster (e.g. its study)."""
    if isinstance(fit, RmaMvResult):
        groups, n, beta, btt = _clusters_mv(fit, cluster)
    else:
        if getattr(fit, "test", "z") == "knha" and not clubSandwich:
            # metafor's robust.rma.uni builds the bread from vb, which for knha carries the factor s²
            raise ValueError("robust() without clubSandwich needs an rma() fit with test='z'; refit with test='z'")
        groups, n, beta, btt = _clusters_uni(fit, cluster, yi, vi, X)
    level = fit.level if level is None else level
    p = beta.size
    if n - p <= 0:
        raise ValueError(f"robust() needs more clusters ({n}) than coefficients ({p})")
    for g in groups:
        g.Wm = g.W
        g.WX = g.Wm @ g.X
    bread = np.linalg.inv(sum(np.einsum("nsi,nsj->ij", g.X, g.WX) for g in groups))
    q = 0.5 + level / 200
    if not clubSandwich:
        u = np.concatenate([np.einsum("nsi,ns->ni", g.WX, g.e) for g in groups])  # X_j'W_j e_j
        vb = bread @ (u.T @ u) @ bread
        vbest = "CR0"
        if adjust:
            vb = vb * n / (n - p)
            vbest = "CR1"
        se = np.sqrt(np.diag(vb))
        zval = beta / se
        dfs = np.full(p, float(n - p))
        pval = 2 * dist.t_sf(np.abs(zval), dfs)
        crit = dist.t_ppf(q, dfs)
        QM = float(beta[btt] @ np.linalg.solve(vb[np.ix_(btt, btt)], beta[btt])) / btt.size
        QM_df = (btt.size, float(n - p))
        QM_p = float(dist.f_sf(QM, btt.size, n - p))
        return RobustResult(vbest, n, beta, se, zval, pval, beta - crit * se, beta + crit * se, vb, dfs, QM, QM_df,
                            QM_p, btt)  # fmt: skip
    vb, G, H = _cr2(groups, bread)
    se = np.sqrt(np.diag(vb))
    zval = beta / se
    dfs = np.array([_satterthwaite(G, H, np.eye(p)[[i]]) for i in range(p)])
    pval = 2 * dist.t_sf(np.abs(zval), dfs)
    crit = dist.t_ppf(q, dfs)
    intercept_only = p == 1 and all(np.all(g.X[..., 0] == 1) for g in groups)
    if intercept_only:
        QM, QM_df, QM_p = float(zval[0] ** 2), (1, float(dfs[0])), float(pval[0])
    else:
        QM, QM_df, QM_p = _htz(G, H, beta, vb, btt)
    return RobustResult("CR2", n, beta, se, zval, pval, beta - crit * se, beta + crit * se, vb, dfs, QM, QM_df, QM_p,
                        btt)  # fmt: skip


def _inv_sqrt_psd_batch(a):
    """a^{-1/2} for a stack of symmetric matrices, eigenvalues ≤ 1e-12 dropped (clubSandwich's matrix_power)."""
    vals, vecs = np.linalg.eigh(a)
    pw = np.where(vals > 1e-12, np.abs(vals) ** -0.5, 0.0)
    return np.einsum("nij,nj,nkj->nik", vecs, pw, vecs)


def _cr2(groups, bread):
    """CR2 sandwich and clubSandwich's G (per cluster, stacked by size) and H (p, p, J) for the df computations
    (vcov_CR, CR2 and get_GH with inverse_var = TRUE): W_j = Θ_j⁻¹, ``I − H_jj = I − X_j M X_j' W_j``,
    M = (X'WX)⁻¹, G_j = M E_j D_j', H_j = M E_j X_j chol(M)."""
    M = bread
    M_ct = np.linalg.cholesky(M)  # lower Cholesky factor
    comps, G, H = [], [], []
    for g in groups:
        D = np.swapaxes(np.linalg.cholesky(g.theta), 1, 2)  # upper: Θ = D'D
        s = g.e.shape[1]
        ih = np.eye(s) - np.einsum("nsp,pq,ntq->nst", g.X, M, g.WX)  # I - X M X'W
        gm = D @ ih @ g.theta @ np.swapaxes(D, 1, 2)
        A = np.swapaxes(D, 1, 2) @ _inv_sqrt_psd_batch((gm + np.swapaxes(gm, 1, 2)) / 2) @ D
        E = np.swapaxes(g.WX, 1, 2) @ A  # X_j'W_j A_j, (n, p, s)
        comps.append(np.einsum("nps,ns->np", E, g.e))
        ME = np.einsum("pq,nqs->nps", M, E)
        G.append(ME @ np.swapaxes(D, 1, 2))
        H.append(np.einsum("nps,nsq,qr->prn", ME, g.X, M_ct))
    comps = np.concatenate(comps)
    vb = M @ (comps.T @ comps) @ M
    return (vb + vb.T) / 2, G, np.concatenate(H, axis=2)


# clubSandwich's P array (get_P_array) for constraints C (q × p) is, for each pair (s, t), the J × J matrix
# P_st[j, k] = δ_jk g_js·g_jt − h_sj·h_tk, with g_js row s of C G_j and h_sj column j of (C H)[s] (u-vectors).
# It is never formed: traces and sums of products of such matrices reduce to u × u Gram matrices, so the
# cost is O(J u²) instead of O(J²).
def _terms(G, H, C):
    """(α, h): α[s, t, j] = g_js·g_jt and h[s] = (C H)[s], shape (u, J)."""
    alpha = np.concatenate([np.einsum("ap,nps,bq,nqs->abn", C, g, C, g) for g in G], axis=2)  # (q, q, J)
    return alpha, np.einsum("qp,puj->quj", C, H)


def _trace(alpha, x, y):
    """tr P for P[j, k] = δ_jk α_j − x_j·y_k."""
    return float(np.sum(alpha) - np.sum(x * y))


def _inner(a, x, y, b, z, w):
    """Σ_jk P[j, k] Q[j, k] for P = δα − x_j·y_k and Q = δβ − z_j·w_k."""
    return float(np.sum(a * b) - np.sum(a * np.sum(z * w, axis=0)) - np.sum(b * np.sum(x * y, axis=0))
                 + np.sum((z @ x.T) * (w @ y.T)))  # fmt: skip


def _satterthwaite(G, H, C):
    """clubSandwich coef_test's Satterthwaite df: 2 E²/V with E = tr P and V = 2 Σ P²."""
    alpha, h = _terms(G, H, C)
    a, x = alpha[0, 0], h[0]
    return _trace(a, x, x) ** 2 / _inner(a, x, x, a, x, x)


def _htz(G, H, beta, vb, btt):
    """clubSandwich's Wald_test(..., test = "HTZ") of beta[btt] = 0: Hotelling's T² approximation."""
    q = btt.size
    C = np.eye(beta.size)[btt]
    alpha, h = _terms(G, H, C)
    Omega = np.array([[_trace(alpha[s, t], h[s], h[t]) for t in range(q)] for s in range(q)])
    on = _inv_sqrt_psd_batch(Omega[None])[0]
    # B = Ω^{-1/2} P Ω^{-1/2} has the same form with transformed terms
    alpha = np.einsum("as,stj,tb->abj", on, alpha, on)
    h = np.einsum("as,suj->auj", on, h)
    var = np.empty((q, q))
    for s in range(q):
        for t in range(s + 1):
            var[s, t] = var[t, s] = _inner(alpha[s, t], h[s], h[t], alpha[t, s], h[t], h[s]) + _inner(
                alpha[s, s], h[s], h[s], alpha[t, t], h[t], h[t]
            )
    nu = q * (q + 1) / np.sum(var)
    Cb = C @ beta
    Q = float(Cb @ np.linalg.solve(C @ vb @ C.T, Cb))
    delta = max((nu - q + 1) / nu, 0.0)
    df = nu - q + 1
    F = delta * Q / q
    return F, (q, float(df)), float(dist.f_sf(F, q, df)) if df > 0 else np.nan
