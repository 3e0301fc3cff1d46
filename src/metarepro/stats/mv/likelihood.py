"""ML and REML log-likelihoods, GLS estimates, score and Fisher information in θ, block by block.

With P = W − WX(X'WX)⁻¹X'W (REML; W for ML), W = M⁻¹ and M_j = dM/dθ_j (block-diagonal like M):
score_j = −½ tr(P M_j) + ½ y'P M_j P y, expected information I_jl = ½ tr(P M_j P M_l) and observed information
−∂²ll/∂θ_j∂θ_l = −I_jl + y'P M_j P M_l P y + <R, M_jl>, R = ½ P − ½ Py y'P, M_jl = ∂²M/∂θ_j∂θ_l (for ML the traces
use W instead of P, the quadratic forms keep P: β̂ is profiled out). Every trace is a sum over the stacked
blocks; nothing k×k is formed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

LOG2PI = np.log(2 * np.pi)


@dataclass
class _Eval:
    """Log-likelihoods and β̂ at one θ; ``cache`` keeps (W, WX, W r) per group for the derivatives."""

    ll_ml: float
    ll_reml: float
    beta: np.ndarray
    XtWX: np.ndarray
    cache: list = field(default_factory=list, repr=False)

    def ll(self, method):
        return self.ll_reml if method == "REML" else self.ll_ml


def evaluate(model, Ms):
    """Log-likelihoods and GLS β̂ for the marginal covariances ``Ms`` (one per group); None if one is not
    positive definite (or X'WX is singular)."""
    p = model.p
    XtWX = np.zeros((p, p))
    XtWy = np.zeros(p)
    logdet = 0.0
    cache = []
    for grp, M in zip(model.groups, Ms, strict=True):
        try:
            L = np.linalg.cholesky(M)
        except np.linalg.LinAlgError:
            return None
        logdet += 2 * np.sum(np.log(np.diagonal(L, axis1=1, axis2=2)))
        W = np.linalg.inv(M)
        W = (W + np.swapaxes(W, 1, 2)) / 2
        WX = W @ grp.X
        XtWX += np.einsum("bsi,bsj->ij", grp.X, WX)
        XtWy += np.einsum("bsi,bs->i", WX, grp.y)
        cache.append((W, WX))
    try:
        cXtWX = np.linalg.cholesky(XtWX)
    except np.linalg.LinAlgError:
        return None
    beta = np.linalg.solve(XtWX, XtWy)
    rss = 0.0
    full = []
    for grp, (W, WX) in zip(model.groups, cache, strict=True):
        r = grp.y - grp.X @ beta
        wr = np.einsum("bst,bt->bs", W, r)
        rss += float(np.sum(r * wr))
        full.append((W, WX, wr))
    k = model.k
    ll_ml = -0.5 * k * LOG2PI - 0.5 * logdet - 0.5 * rss
    ld_xtwx = 2 * np.sum(np.log(np.diag(cXtWX)))
    ll_reml = -0.5 * (k - p) * LOG2PI + 0.5 * model.ld_xtx - 0.5 * logdet - 0.5 * ld_xtwx - 0.5 * rss
    return _Eval(ll_ml, ll_reml, beta, XtWX, full)


def score_information(ev: _Eval, dMs, method, second=None):
    """Score, expected (Fisher) information and (with ``second``) observed information in θ at ``ev``, given
    dM/dθ per group ((n, nb, s, s) each). ``second(Rs)`` returns Σ <R, M_jl> (n × n) for R per group."""
    p = ev.beta.size
    n = dMs[0].shape[0]
    A = np.linalg.inv(ev.XtWX)
    trWD = np.zeros(n)
    u = np.zeros(n)
    B = np.zeros((n, p, p))
    T = np.zeros((n, n))
    CA = np.zeros((n, n))
    S = np.zeros((n, n))  # a_j'W a_l with a_j = M_j W r
    XtWa = np.zeros((n, p))
    Rs = []
    for (W, WX, wr), D in zip(ev.cache, dMs, strict=True):
        # batched matrix products and flat dot products (BLAS) rather than many-index einsums
        WD = W[None] @ D  # W M_j
        trWD += np.einsum("jbss->j", WD)
        u += (D @ wr[None, :, :, None])[..., 0].reshape(n, -1) @ wr.ravel()
        F = D @ WX[None]  # M_j W X
        B += np.tensordot(F.reshape(n, -1, p), WX.reshape(-1, p), axes=([1], [0])).transpose(0, 2, 1)
        T += WD.reshape(n, -1) @ np.swapaxes(WD, 2, 3).reshape(n, -1).T
        if method == "REML":
            # tr(A X'W M_j W M_l W X) = <M_j W X A, W M_l W X>, summed over blocks
            CA += (F @ A).reshape(n, -1) @ (W[None] @ F).reshape(n, -1).T
        if second is not None:
            a = (D @ wr[None, :, :, None])[..., 0]  # (n, nb, s)
            Wa = (W[None] @ a[..., None])[..., 0]
            S += a.reshape(n, -1) @ Wa.reshape(n, -1).T
            XtWa += np.einsum("bsp,jbs->jp", WX, a)
            P = W - WX @ A @ np.swapaxes(WX, 1, 2) if method == "REML" else W
            Rs.append(0.5 * P - 0.5 * wr[:, :, None] * wr[:, None, :])
    if method == "ML":
        score, info = -0.5 * trWD + 0.5 * u, 0.5 * T
    else:
        trAB = np.einsum("ij,cji->c", A, B)
        AB = np.einsum("ij,cjk->cik", A, B)
        score = -0.5 * (trWD - trAB) + 0.5 * u
        info = 0.5 * (T - 2 * CA + np.einsum("cij,dji->cd", AB, AB))
    if second is None:
        return score, info, None
    observed = -info + S - XtWa @ A @ XtWa.T + second(Rs)
    return score, info, (observed + observed.T) / 2
