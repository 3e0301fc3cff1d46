"""Multilevel and multivariate meta-analysis, metafor's ``rma.mv()``.

The model is ``y = Xβ + u + e`` with ``e ~ N(0, V)`` (V known, block-diagonal by cluster) and random effects

* nested random intercepts of any depth (metafor ``random = ~ 1 | study/sample/effect``): ``nested=[study,
  sample, effect]`` gives one variance component σ²_l per level, where level l is the combination of the first
  l factors, as metafor's ``study/sample`` means ``study`` and ``study:sample``;
* ``~ inner | outer`` (``inner=marker, outer=sample``) with ``struct`` ``ID``, ``DIAG``, ``CS``, ``HCS`` or
  ``UN``: effects in the same outer group covary by G[inner_i, inner_j];
* both together.

Defaults as metafor: ``method="REML"``, ``test="z"``, ``dfs="residual"``, ``level=95``.

Structure for scale: rows are split into independent blocks (connected components of V's blocks and every
grouping), blocks of equal size are stacked, and every quantity is a sum over blocks: nothing k×k is formed.

Solver (the design of issue 8): Fisher scoring on an unconstrained parametrisation θ (log variances; Fisher
z of canonical partial correlations, which keeps G positive definite for any θ). A step must raise the
log-likelihood (only a full step may leave it unchanged to its rounding, 64·EPS·|ll|); it is halved at most
``max_halvings`` times, then the scaled gradient is tried, and a step that cannot raise the likelihood ends
the search (it never loops). An iteration cap, and stopping rules free of the data's scale (θ is a log scale;
the score in θ is dimensionless). ``converged`` is True only when the final score, scaled by its Fisher
information, is below ``score_tol`` at a point where the information is positive definite. A variance that
runs to zero (below ``1e-10`` of the data's sampling variances) is set to exactly 0, a correlation that runs
to ±1 is held there, and both are reported in ``boundary`` (indices into θ); such a point is converged if the
one-sided score there points out of the parameter space.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from metarepro._core import dist
from metarepro._core.printing import Printable
from metarepro._core.spellings import add_aliases

METHODS = ("REML", "ML")
TESTS = ("z", "t")
DFS = ("residual", "contain")
STRUCTS = ("ID", "DIAG", "CS", "HCS", "UN")
LOG2PI = np.log(2 * np.pi)
EPS = np.finfo(float).eps


@dataclass(frozen=True)
class MVControl:
    """Solver settings: iteration cap, step tolerance in θ, scaled-score tolerance, step halvings."""

    max_iter: int = 500
    step_tol: float = 1e-12
    score_tol: float = 1e-7
    max_halvings: int = 60
    boundary: float = 1e-10


def _codes(values, name="grouping"):
    """Integer codes of a grouping column, levels sorted as R's factor() sorts them."""
    values = np.asarray(values)
    missing = [i for i, v in enumerate(values.tolist()) if v is None or (isinstance(v, float) and np.isnan(v))]
    if missing:
        raise ValueError(f"{name} is missing in row {missing[0] + 1}; every effect needs its group (or drop the row)")
    levels, codes = np.unique(values, return_inverse=True)
    return codes.astype(np.int64), levels


def _interaction(columns):
    """Codes of the combination of several grouping columns (metafor's study/sample)."""
    stacked = np.stack([_codes(c)[0] for c in columns], axis=1)
    _, codes = np.unique(stacked, axis=0, return_inverse=True)
    return codes.reshape(-1).astype(np.int64)


# ---------------------------------------------------------------------------------------------- variance input
@dataclass
class BlockV:
    """A block-diagonal sampling covariance: ``blocks[c]`` is the matrix of the rows ``cluster == c`` (in row order)."""

    cluster: np.ndarray
    blocks: dict

    def rows(self):
        """Row indices of each cluster (in row order), computed once."""
        if getattr(self, "_rows", None) is None:
            labels, codes = np.unique(np.asarray(self.cluster), return_inverse=True)
            order = np.argsort(codes, kind="stable")
            parts = np.split(order, np.cumsum(np.bincount(codes.ravel(), minlength=labels.size))[:-1])
            by_label = dict(zip(labels.tolist(), parts, strict=True))
            self._rows = {c: by_label[c] for c in self.blocks}
        return self._rows

    def diag(self):
        out = np.empty(self.cluster.size)
        for c, r in self.rows().items():
            out[r] = np.diag(self.blocks[c])
        return out


def _as_blockv(V, k):
    if isinstance(V, BlockV):
        if V.cluster.size != k:
            raise ValueError(f"V covers {V.cluster.size} rows but yi has {k}")
        return V
    V = np.asarray(V, dtype=float)
    if V.ndim == 1:
        if V.size != k:
            raise ValueError(f"vi has {V.size} values but yi has {k}")
        return None  # diagonal: handled without blocks
    raise ValueError("V must be a 1-D array of sampling variances or a BlockV (see vcalc())")


# ---------------------------------------------------------------------------------------------- random structure
@dataclass
class _GSpec:
    struct: str
    m: int  # number of inner levels
    levels: np.ndarray
    inner: np.ndarray  # codes per row
    outer: np.ndarray  # codes per row

    def n_theta(self):
        m = self.m
        return {"ID": 1, "DIAG": m, "CS": 2, "HCS": m + 1, "UN": m + m * (m - 1) // 2}[self.struct]

    def pairs(self):
        return [(a, b) for a in range(self.m) for b in range(a, self.m)]

    def natural(self, theta):
        """(tau2, rho) in metafor's order from θ (rho in lower.tri column-major order for UN)."""
        m, s = self.m, self.struct
        if s == "ID":  # metafor reports rho = 0 (fixed) for ID and DIAG
            return np.full(1, np.exp(theta[0])), np.zeros(1)
        if s == "DIAG":
            return np.exp(theta[:m]), np.zeros(1)
        if s == "CS":
            return np.exp(theta[:1]), np.tanh(theta[1:2])
        if s == "HCS":
            return np.exp(theta[:m]), np.tanh(theta[m : m + 1])
        corr = _cpc_corr(np.tanh(theta[m:]), m)
        return np.exp(theta[:m]), np.array([corr[i, j] for j in range(m) for i in range(j + 1, m)])

    def G(self, theta):
        m, s = self.m, self.struct
        tau2, rho = self.natural(theta)
        tau2 = np.broadcast_to(tau2, (m,)) if s in ("ID", "CS") else tau2
        sd = np.sqrt(tau2)
        if s in ("ID", "DIAG"):
            corr = np.eye(m, dtype=theta.dtype)
        elif s in ("CS", "HCS"):
            corr = rho[0] * np.ones((m, m), dtype=theta.dtype) + (1 - rho[0]) * np.eye(m)
        else:
            corr = _cpc_corr(np.tanh(theta[m:]), m)
        return corr * sd[:, None] * sd[None, :]

    def theta_from_natural(self, tau2, rho):
        m, s = self.m, self.struct
        lt = np.log(np.asarray(tau2, dtype=float))
        if s in ("ID", "DIAG"):
            return lt
        if s in ("CS", "HCS"):
            return np.concatenate([lt, np.arctanh(np.atleast_1d(rho))])
        corr = np.eye(m)
        lower = [(a, b) for b in range(m) for a in range(b + 1, m)]
        for (a, b), r in zip(lower, rho, strict=True):
            corr[a, b] = corr[b, a] = r
        return np.concatenate([lt, np.arctanh(_corr_cpc(corr))])


def _cpc_corr(z, m):
    """Correlation matrix from canonical partial correlations z (C-vine order (0,1),(0,2)..,(1,2)..)."""
    w = np.zeros((m, m), dtype=np.result_type(z, float))
    w[0, 0] = 1
    it = iter(z)
    cpc = np.zeros((m, m), dtype=w.dtype)
    for i in range(m):
        for j in range(i + 1, m):
            cpc[i, j] = next(it)
    for j in range(1, m):
        rest = 1.0
        for i in range(j):
            w[i, j] = cpc[i, j] * np.sqrt(rest)
            rest = rest - w[i, j] ** 2
        w[j, j] = np.sqrt(rest)
    return w.T @ w


def _corr_cpc(corr):
    m = corr.shape[0]
    w = np.linalg.cholesky(corr).T
    out = []
    for i in range(m):
        for j in range(i + 1, m):
            rest = 1 - np.sum(w[:i, j] ** 2)
            out.append(w[i, j] / np.sqrt(rest))
    return np.clip(np.array(out), -1 + 1e-12, 1 - 1e-12)


@dataclass
class _Group:
    """Independent blocks of one size s, stacked: rows and y (nb, s), X (nb, s, p), V (nb, s, s), E (nc, nb, s, s)."""

    rows: np.ndarray
    y: np.ndarray
    X: np.ndarray
    V: np.ndarray
    E: np.ndarray


@dataclass
class _Model:
    """Stacked blocks and the structure matrices E_c with M = V + Σ γ_c(θ) E_c."""

    k: int
    p: int
    n_sigma: int
    gspec: _GSpec | None
    groups: list = field(default_factory=list)  # (rows, y, X, V, E) per block size
    scale: float = 1.0

    @property
    def n_theta(self):
        return self.n_sigma + (self.gspec.n_theta() if self.gspec else 0)

    def gamma(self, theta):
        """Coefficients of the structure matrices (σ² then G[a, b] for a ≤ b)."""
        parts = [np.exp(theta[: self.n_sigma])]
        if self.gspec:
            G = self.gspec.G(theta[self.n_sigma :])
            parts.append(np.array([G[a, b] for a, b in self.gspec.pairs()]))
        return np.concatenate(parts)

    def jacobian(self, theta):
        """dγ/dθ by complex-step differentiation (exact to rounding; the maps are analytic)."""
        n = theta.size
        h = 1e-30
        cols = []
        for i in range(n):
            t = theta.astype(complex)
            t[i] += 1j * h
            cols.append(self.gamma(t).imag / h)
        return np.stack(cols, axis=1) if cols else np.zeros((0, 0))


def _build(yi, V, X, nested, inner, outer, struct):
    k = yi.size
    rows_edges = []
    sigma_codes = []
    if nested is not None:
        nested = [np.asarray(c) for c in nested]
        for level in range(len(nested)):
            if nested[level].size != k:
                raise ValueError(f"nested grouping {level + 1} has {nested[level].size} values but yi has {k}")
            _codes(nested[level], f"nested grouping {level + 1}")
            sigma_codes.append(_interaction(nested[: level + 1]))
    gspec = None
    if inner is not None or outer is not None:
        if inner is None or outer is None:
            raise ValueError("give both inner and outer for a ~ inner | outer random effect")
        if struct not in STRUCTS:
            raise ValueError(f"struct must be one of {', '.join(STRUCTS)}, not {struct!r}")
        icodes, ilevels = _codes(inner, "inner")
        ocodes, _ = _codes(outer, "outer")
        gspec = _GSpec(struct, len(ilevels), ilevels, icodes, ocodes)
    if not sigma_codes and gspec is None:
        raise ValueError("rma_mv() needs random effects: nested=[...] and/or inner= with outer=")
    Vb = _as_blockv(V, k)
    # independent blocks: rows linked by a shared level of any grouping or a V block
    groupings = list(sigma_codes[:1]) + ([gspec.outer] if gspec else [])
    if Vb is not None:
        groupings.append(_codes(np.asarray(Vb.cluster).astype(str))[0])
    for codes in groupings:
        first = np.full(codes.max() + 1, -1)
        order = np.arange(k)
        first[codes[::-1]] = order[::-1]
        rows_edges.append((order, first[codes]))
    from scipy.sparse import coo_matrix  # scipy.sparse only where a model is set up: slow to import
    from scipy.sparse.csgraph import connected_components

    src = np.concatenate([e[0] for e in rows_edges])
    dst = np.concatenate([e[1] for e in rows_edges])
    graph = coo_matrix((np.ones(src.size), (src, dst)), shape=(k, k))
    _, comp = connected_components(graph, directed=False)
    if Vb is not None:
        vdiag = Vb.diag()
        # each row's V block (as an integer code) and its position in that block
        labels = list(Vb.rows())
        vcode = np.empty(k, dtype=np.int64)
        vpos = np.empty(k, dtype=np.int64)
        for n, r in enumerate(Vb.rows().values()):
            vcode[r] = n
            vpos[r] = np.arange(r.size)
    else:
        vdiag = np.asarray(V, dtype=float)
    if np.any(vdiag < 0):
        raise ValueError("sampling variances must be non-negative")
    model = _Model(k, X.shape[1], len(sigma_codes), gspec)
    pos_scale = vdiag[vdiag > 0]
    model.scale = float(np.mean(pos_scale)) if pos_scale.size else 1.0
    order = np.argsort(comp, kind="stable")
    sizes = np.bincount(comp)
    starts = np.concatenate([[0], np.cumsum(sizes)])
    by_size = {}
    for c in range(sizes.size):
        by_size.setdefault(int(sizes[c]), []).append(order[starts[c] : starts[c + 1]])
    pairs = gspec.pairs() if gspec else []
    for s, blocks in sorted(by_size.items()):
        rows = np.stack(blocks)  # (nb, s)
        nb = rows.shape[0]
        Vg = np.zeros((nb, s, s))
        if Vb is None:
            Vg[:, np.arange(s), np.arange(s)] = vdiag[rows]
        else:
            for b in range(nb):
                vc, vp = vcode[rows[b]], vpos[rows[b]]
                if np.all(vc == vc[0]):  # the model block is one V block (possibly reordered)
                    Vg[b] = Vb.blocks[labels[vc[0]]][np.ix_(vp, vp)]
                    continue
                for a1 in range(s):
                    for a2 in range(s):
                        if vc[a1] == vc[a2]:
                            Vg[b, a1, a2] = Vb.blocks[labels[vc[a1]]][vp[a1], vp[a2]]
        E = []
        for codes in sigma_codes:
            c = codes[rows]
            E.append((c[:, :, None] == c[:, None, :]).astype(float))
        if gspec:
            o, inn = gspec.outer[rows], gspec.inner[rows]
            same = o[:, :, None] == o[:, None, :]
            lo = np.minimum(inn[:, :, None], inn[:, None, :])
            hi = np.maximum(inn[:, :, None], inn[:, None, :])
            for a, b in pairs:
                E.append((same & (lo == a) & (hi == b)).astype(float))
        model.groups.append(_Group(rows, yi[rows], X[rows], Vg, np.stack(E)))
    return model, sigma_codes


# ---------------------------------------------------------------------------------------------- likelihood pieces
@dataclass
class _Eval:
    ll_ml: float
    ll_reml: float
    beta: np.ndarray
    XtWX: np.ndarray
    grad: np.ndarray | None = None  # d ll / d γ
    info: np.ndarray | None = None  # expected information in γ


def _evaluate(model: _Model, gamma, method, derivatives=True):
    """Log-likelihoods, GLS β̂ and (optionally) score and Fisher information in γ, block by block."""
    p = model.p
    XtWX = np.zeros((p, p))
    XtWy = np.zeros(p)
    XtX = np.zeros((p, p))
    logdet = 0.0
    cache = []
    for grp in model.groups:
        y, X, E = grp.y, grp.X, grp.E
        M = grp.V + np.tensordot(gamma, E, axes=1)
        try:
            L = np.linalg.cholesky(M)
        except np.linalg.LinAlgError:
            return None
        logdet += 2 * np.sum(np.log(np.diagonal(L, axis1=1, axis2=2)))
        W = np.linalg.inv(M)
        W = (W + np.swapaxes(W, 1, 2)) / 2
        WX = W @ X
        XtWX += np.einsum("bsi,bsj->ij", X, WX)
        XtWy += np.einsum("bsi,bs->i", WX, y)
        XtX += np.einsum("bsi,bsj->ij", X, X)
        cache.append((y, X, E, W, WX))
    try:
        cXtWX = np.linalg.cholesky(XtWX)
    except np.linalg.LinAlgError:
        return None
    beta = np.linalg.solve(XtWX, XtWy)
    rss = 0.0
    Pr = []
    for y, X, _, W, _ in cache:
        r = y - X @ beta
        wr = np.einsum("bst,bt->bs", W, r)
        rss += float(np.sum(r * wr))
        Pr.append(wr)
    k = model.k
    ll_ml = -0.5 * k * LOG2PI - 0.5 * logdet - 0.5 * rss
    ld_xtwx = 2 * np.sum(np.log(np.diag(cXtWX)))
    ld_xtx = np.linalg.slogdet(XtX)[1]
    ll_reml = -0.5 * (k - p) * LOG2PI + 0.5 * ld_xtx - 0.5 * logdet - 0.5 * ld_xtwx - 0.5 * rss
    out = _Eval(ll_ml, ll_reml, beta, XtWX)
    if not derivatives:
        return out
    A = np.linalg.inv(XtWX)
    nc = gamma.size
    trWE = np.zeros(nc)
    u = np.zeros(nc)
    B = np.zeros((nc, p, p))
    T = np.zeros((nc, nc))
    CA = np.zeros((nc, nc))
    for (_, _, E, W, WX), wr in zip(cache, Pr, strict=True):
        # batched matrix products and flat dot products (BLAS) rather than many-index einsums
        nc_, p_ = E.shape[0], WX.shape[2]
        WE = W[None] @ E  # W E_c
        trWE += np.einsum("cbss->c", WE)
        u += (E @ wr[None, :, :, None])[..., 0].reshape(nc_, -1) @ wr.ravel()
        F = E @ WX[None]  # E_c W X
        B += np.tensordot(F.reshape(nc_, -1, p_), WX.reshape(-1, p_), axes=([1], [0])).transpose(0, 2, 1)
        T += WE.reshape(nc_, -1) @ np.swapaxes(WE, 2, 3).reshape(nc_, -1).T
        if method == "REML":
            # tr(A X'W E_c W E_d W X) = <E_c W X A, W E_d W X>, summed over blocks
            CA += (F @ A).reshape(nc_, -1) @ (W[None] @ F).reshape(nc_, -1).T
    if method == "ML":
        out.grad = -0.5 * trWE + 0.5 * u
        out.info = 0.5 * T
    else:
        trAB = np.einsum("ij,cji->c", A, B)
        out.grad = -0.5 * (trWE - trAB) + 0.5 * u
        AB = np.einsum("ij,cjk->cik", A, B)
        out.info = 0.5 * (T - 2 * CA + np.einsum("cij,dji->cd", AB, AB))
    return out


# ---------------------------------------------------------------------------------------------- solver
@dataclass
class _Fit:
    theta: np.ndarray
    free: np.ndarray
    ev: _Eval
    converged: bool
    iterations: int
    boundary: list
    scaled_score: float


def _ll(ev, method):
    return ev.ll_reml if method == "REML" else ev.ll_ml


CORR_EDGE = 19.0  # atanh scale: tanh(19) rounds to 1 within 1e-16


def _kinds(model):
    """Per θ entry: 'pin0' (a variance entering M linearly, pinned at exactly 0 at the boundary),
    'var' (a log-variance of CS/HCS/UN), 'cor' (a Fisher-z correlation, pinned at ±1 at the boundary)."""
    kinds = ["pin0"] * model.n_sigma
    gs = model.gspec
    if gs:
        nt = {"ID": 1, "DIAG": gs.m, "CS": 1, "HCS": gs.m, "UN": gs.m}[gs.struct]
        kinds += ["pin0" if gs.struct in ("ID", "DIAG") else "var"] * nt
        kinds += ["cor"] * (gs.n_theta() - nt)
    return np.array(kinds)


def _full(values, mask, n):
    out = np.zeros(n)
    out[mask] = values
    return out


def _solve(model: _Model, method, theta0, control: MVControl, fixed=None):
    """Fisher scoring in θ with step halving; ``fixed`` is a boolean mask of θ held at theta0."""
    theta = np.array(theta0, dtype=float)
    n = theta.size
    fixed = np.zeros(n, bool) if fixed is None else np.asarray(fixed, bool)
    kinds = _kinds(model)
    pinned = np.zeros(n, bool)  # at the boundary: variance exactly 0 or correlation ±1
    log_floor = np.log(control.boundary * model.scale)
    ev = _evaluate(model, model.gamma(theta), method)  # exp(-inf) = 0 for a pinned variance
    if ev is None:
        raise ValueError("the starting values give a marginal covariance that is not positive definite")
    iterations = 0
    stopped = False  # ended by a stopping rule, not by the iteration cap
    while iterations < control.max_iter:
        iterations += 1
        active = ~fixed & ~pinned
        if not active.any():
            stopped = True
            break
        J = model.jacobian(np.where(np.isfinite(theta), theta, 0.0))
        g = (J.T @ ev.grad)[active]
        info = (J.T @ ev.info @ J)[np.ix_(active, active)]
        # Newton direction on the Jacobi-scaled information, dropping directions it cannot resolve (a
        # correlation near ±1 has information ~sech⁴); then the scaled gradient if that direction fails
        d = 1 / np.sqrt(np.maximum(np.abs(np.diag(info)), 1e-300))
        newton = d * (np.linalg.pinv(d[:, None] * info * d[None, :], rcond=1e-10, hermitian=True) @ (d * g))
        base = _ll(ev, method)
        new = None  # (theta, ll, t)
        for step in (newton, d * d * g):
            step = np.clip(np.where(np.isfinite(step), step, 0.0), -5, 5)  # log-variances move ≤ e^5 per step
            t = 1.0
            for _ in range(control.max_halvings):
                cand = theta.copy()
                cand[active] += t * step
                cand[kinds == "cor"] = np.clip(cand[kinds == "cor"], -CORR_EDGE, CORR_EDGE)
                cev = _evaluate(model, model.gamma(cand), method, derivatives=False)
                ll = -np.inf if cev is None else _ll(cev, method)
                # a step must raise the likelihood; only a full step may leave it unchanged to rounding
                # (the last Newton steps near the optimum), so halving can never creep along a flat ridge
                if ll > base or (t == 1 and ll >= base - 64 * EPS * max(1.0, abs(base))):
                    if new is None or ll > new[1]:
                        new = (cand, ll, t)
                    break
                t /= 2
            if new is not None and new[2] >= 1 / 16:
                break  # Newton worked without heavy halving: no need for the gradient direction
        if new is None:
            # a correlation drifting to ±1 flattens the likelihood in θ until no step registers: try the edge
            drift = (
                active & (kinds == "cor") & (np.abs(theta) > 5) & (np.sign(theta) == np.sign(_full(newton, active, n)))
            )
            if drift.any():
                cand = theta.copy()
                cand[drift] = np.sign(theta[drift]) * CORR_EDGE
                cev = _evaluate(model, model.gamma(cand), method)
                if cev is not None and _ll(cev, method) >= base - 1e-15 * abs(base):
                    theta, ev = cand, cev
                    pinned |= drift
                    continue
            stopped = True
            break  # no step raises the likelihood: stop here, the checks below decide
        full_step = new[2] == 1
        new = (new[0], _evaluate(model, model.gamma(new[0]), method))
        moved = np.max(np.abs(new[0][active] - theta[active]))
        theta, ev = new
        newly = active & (((kinds == "pin0") & (theta < log_floor)) | ((kinds == "cor") & (np.abs(theta) >= CORR_EDGE)))
        if newly.any():
            pinned |= newly
            theta[newly & (kinds == "pin0")] = -np.inf
            ev = _evaluate(model, model.gamma(theta), method)
            continue
        if full_step and moved < control.step_tol:
            stopped = True
            break
    # final checks at the reported point: the score scaled by its information for the free entries, and a
    # one-sided score pointing out of the parameter space for the pinned ones
    J = model.jacobian(np.where(np.isfinite(theta), theta, 0.0))
    g_all = J.T @ ev.grad
    I_all = J.T @ ev.info @ J
    active = ~fixed & ~pinned
    ok = True
    scaled = 0.0
    if active.any():
        g, info = g_all[active], I_all[np.ix_(active, active)]
        try:
            np.linalg.cholesky(info)
            scaled = float(np.sqrt(np.abs(g @ np.linalg.solve(info, g))))
        except np.linalg.LinAlgError:
            ok, scaled = False, np.inf
        ok = ok and scaled < control.score_tol
    for i in np.flatnonzero(pinned):
        # in the natural parameter (σ² at 0: dγ/dσ² is J at θ = 0; ρ at ±1: divide by tanh' = sech²)
        d = 1.0 if kinds[i] == "pin0" else 1 / np.cosh(theta[i]) ** 2
        outward = -1.0 if kinds[i] == "pin0" else np.sign(theta[i])
        gi, ii = g_all[i] / d, max(I_all[i, i], 0) / d**2
        ok = ok and outward * gi >= -control.score_tol * np.sqrt(ii)
    converged = bool(ok and stopped)
    return _Fit(theta, ~fixed, ev, converged, iterations, [int(i) for i in np.flatnonzero(pinned)], scaled)


def _start(model, yi, X, vdiag):
    """metafor's starting values: the residual variance of the equal-effects fit beyond the typical vi,
    split equally between the components; correlations 0."""
    w = 1 / np.where(vdiag > 0, vdiag, model.scale)
    beta = np.linalg.lstsq(X * np.sqrt(w)[:, None], yi * np.sqrt(w), rcond=None)[0]
    ncomp = model.n_sigma + (model.gspec.n_theta() if model.gspec else 0)
    total = max(1e-3 * model.scale, np.var(yi - X @ beta, ddof=1) - 1 / np.mean(w)) if yi.size > 1 else model.scale
    parts = [np.full(model.n_sigma, np.log(total / max(ncomp, 1)))]
    if model.gspec:
        gs = model.gspec
        nt = {"ID": 1, "DIAG": gs.m, "CS": 1, "HCS": gs.m, "UN": gs.m}[gs.struct]
        parts.append(np.full(nt, np.log(total / max(ncomp, 1))))
        parts.append(np.zeros(gs.n_theta() - nt))
    return np.concatenate(parts)


# ---------------------------------------------------------------------------------------------- result
@dataclass(repr=False)  # printing.Printable gives metafor's print.rma.mv
class RmaMvResult(Printable):
    """A fitted ``rma.mv`` model; field names follow metafor (``b`` is ``beta``); ``ci_lb``/``ci_ub``, ``QEp``,
    ``QMp`` and ``QMdf`` read metafor's names of ``ci_low``/``ci_high``, ``QE_p``, ``QM_p`` and ``QM_df``."""

    method: str
    test: str
    dfs: str
    level: float
    k: int
    p: int
    X_names: list
    beta: np.ndarray
    se: np.ndarray
    zval: np.ndarray
    pval: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    vb: np.ndarray
    ddf: np.ndarray
    btt: np.ndarray
    QM: float
    QM_df: tuple
    QM_p: float
    QE: float
    QE_df: int
    QE_p: float
    sigma2: np.ndarray
    s_nlevels: np.ndarray
    s_names: list  # the factors of each sigma² (metafor's "district/school"), from the names of ``nested``
    tau2: np.ndarray
    rho: np.ndarray
    G: np.ndarray | None
    g_levels: np.ndarray | None
    struct: str | None
    parms: int
    fit_stats: dict
    converged: bool
    iterations: int
    boundary: list
    scaled_score: float
    # internals for predict/robust/profile
    _model: _Model = field(repr=False)
    _theta: np.ndarray = field(repr=False)
    _yi: np.ndarray = field(repr=False)
    _X: np.ndarray = field(repr=False)

    @property
    def logLik(self):
        return self.fit_stats[self.method]["ll"]

    @property
    def AIC(self):
        return self.fit_stats[self.method]["AIC"]

    @property
    def BIC(self):
        return self.fit_stats[self.method]["BIC"]

    @property
    def AICc(self):
        return self.fit_stats[self.method]["AICc"]

    def marginal_blocks(self):
        """(rows, M) per stacked group at the estimates: M = V + Σ γ E, one (nb, s, s) array per block size."""
        gamma = self._model.gamma(self._theta)
        return [(g.rows, g.V + np.tensordot(gamma, g.E, axes=1)) for g in self._model.groups]

    def predict(self, x=None, tau2_level=None):
        """predict.rma.mv at moderator values x (with the intercept column; default: the intercept-only model's
        estimate): the estimate, its CI, and the prediction interval ± crit·√(se² + Σσ² + τ²), where τ² is the
        model's single τ² or, for HCS/DIAG/UN, ``tau2[tau2_level]`` (0-based; without it the PI is NaN, as
        metafor's). With ``test="t"`` crit uses the smallest df of the coefficients x involves."""
        x = np.ones(1) if x is None else np.asarray(x, dtype=float)
        if x.size != self.p:
            raise ValueError(f"predict() needs {self.p} moderator values (with the intercept), not {x.size}")
        pred = float(x @ self.beta)
        se = float(np.sqrt(x @ self.vb @ x))
        crit = self._crit(float(np.min(self.ddf[x != 0])) if self.test == "t" else None)
        extra = float(np.sum(self.sigma2))
        if self.struct is not None:
            if self.tau2.size == 1:
                extra += float(self.tau2[0])
            elif tau2_level is not None:
                extra += float(self.tau2[tau2_level])
            else:
                extra = np.nan
        half = crit * np.sqrt(se**2 + extra)
        return {
            "pred": pred,
            "se": se,
            "ci_low": pred - crit * se,
            "ci_high": pred + crit * se,
            "pi_low": pred - half,
            "pi_high": pred + half,
        }

    def _crit(self, df):
        q = 0.5 + self.level / 200
        return float(dist.norm_ppf(q) if df is None else dist.t_ppf(q, df))

    def i2(self):
        """I² of Viechtbauer's FAQ ("I² for multilevel and multivariate models") with the typical sampling
        variance (k−p)/tr P, P = W − WX(X'WX)⁻¹X'W, W = V⁻¹: for nested intercepts 100·σ²_l/(Σσ² + typical) per
        level and 100·Σσ²/(Σσ² + typical) in total; for a ~ inner | outer model 100·τ²_j/(τ²_j + typical)."""
        if self.struct is not None and self.sigma2.size:
            raise ValueError("i2() is defined for nested intercepts or for a ~ inner | outer term, not both")
        model = self._model
        trW = 0.0
        XtWX = np.zeros((self.p, self.p))
        XtWWX = np.zeros((self.p, self.p))
        for grp in model.groups:
            X = grp.X
            W = np.linalg.inv(grp.V)
            WX = W @ X
            trW += float(np.einsum("bss->", W))
            XtWX += np.einsum("bsi,bsj->ij", X, WX)
            XtWWX += np.einsum("bsi,bsj->ij", WX, WX)
        trP = trW - float(np.trace(np.linalg.solve(XtWX, XtWWX)))
        typical = (self.k - self.p) / trP
        if self.struct is not None:
            return {"levels": 100 * self.tau2 / (self.tau2 + typical), "typical_vi": typical}
        total = float(np.sum(self.sigma2))
        return {
            "total": 100 * total / (total + typical),
            "levels": 100 * self.sigma2 / (total + typical),
            "typical_vi": typical,
        }

    def to_dict(self):
        out = {
            "method": self.method,
            "test": self.test,
            "dfs": self.dfs,
            "level": self.level,
            "k": self.k,
            "p": self.p,
            "struct": self.struct,
        }
        for name in (
            "X_names",
            "beta",
            "se",
            "zval",
            "pval",
            "ci_low",
            "ci_high",
            "vb",
            "ddf",
            "sigma2",
            "s_nlevels",
            "tau2",
            "rho",
            "G",
            "g_levels",
        ):
            v = getattr(self, name)
            out[name] = None if v is None else np.asarray(v).tolist()
        out.update(
            QM=self.QM,
            QM_df=list(self.QM_df),
            QM_p=self.QM_p,
            QE=self.QE,
            QE_df=self.QE_df,
            QE_p=self.QE_p,
            parms=self.parms,
            fit_stats=self.fit_stats,
            converged=self.converged,
            iterations=self.iterations,
            boundary=self.boundary,
        )
        return out


add_aliases(RmaMvResult, {"ci_lb": "ci_low", "ci_ub": "ci_high", "QEp": "QE_p", "QMp": "QM_p", "QMdf": "QM_df"})


def _contain_ddf(X, sigma_codes, gspec, k, p):
    """metafor's dfs = "contain": per coefficient, the fewest levels of a grouping its column is constant within."""
    facs = list(sigma_codes)
    if gspec is not None:
        facs.append(_interaction([gspec.inner, gspec.outer]))
        facs.append(gspec.outer)
    ddf = np.full(p, float(k))
    for j in range(p):
        best = []
        for f in facs:
            pairs = np.unique(np.stack([f, X[:, j]], axis=1), axis=0)
            if pairs.shape[0] == np.unique(f).size:  # one value of X[:, j] per level
                best.append(np.unique(f).size)
        if best:
            ddf[j] = min(best)
    return np.maximum(ddf - p, 1)


def rma_mv(
    yi,
    V,
    X=None,
    *,
    nested=None,
    inner=None,
    outer=None,
    struct="CS",
    method="REML",
    test="z",
    dfs="residual",
    level=95,
    btt=None,
    X_names=None,
    control: MVControl | None = None,
    start=None,
) -> RmaMvResult:
    """Fit metafor's ``rma.mv``.

    ``V``: 1-D sampling variances or a :class:`BlockV` (e.g. from :func:`metarepro.stats.vcalc.vcalc`).
    ``X``: (k, p) design (default: intercept only). ``nested``: list of grouping columns, outermost first (or a
    dict name -> column, or named pandas Series: the names label the variance components as metafor's print).
    ``inner``/``outer``/``struct``: the ``~ inner | outer`` term. ``btt``: 0-based coefficients for QM
    (default: all but an intercept column). ``start``: θ to start from (log variances, Fisher-z correlations;
    an entry of -inf holds that variance at 0, as metafor's ``sigma2 = c(0, NA)``).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
    if test not in TESTS:
        raise ValueError(f"test must be one of {', '.join(TESTS)}, not {test!r}")
    if dfs not in DFS:
        raise ValueError(f"dfs must be one of {', '.join(DFS)}, not {dfs!r}")
    if not 0 < level < 100:
        raise ValueError(f"level is a percentage between 0 and 100, not {level!r}")
    control = control or MVControl()
    yi = np.asarray(yi, dtype=float)
    k = yi.size
    if yi.ndim != 1 or k < 2:
        raise ValueError("rma_mv() needs a 1-D yi with at least 2 effects")
    if not np.all(np.isfinite(yi)):
        raise ValueError("yi must be finite; drop or exclude incomplete rows first")
    X = np.ones((k, 1)) if X is None else np.asarray(X, dtype=float).reshape(k, -1)
    p = X.shape[1]
    if X_names is None:
        X_names = ["intrcpt"] if p == 1 and np.all(X == 1) else [f"x{j}" for j in range(p)]
    if np.linalg.matrix_rank(X) < p:
        raise ValueError("the design matrix X is not of full column rank")
    s_names = None
    if nested is not None:
        # metafor names the component of level l by its factors, e.g. "district/school"
        named = nested if isinstance(nested, dict) else {
            str(getattr(c, "name", None) or f"grouping{i + 1}"): c for i, c in enumerate(nested)}  # fmt: skip
        nested = list(named.values())
        s_names = ["/".join(list(named)[: i + 1]) for i in range(len(named))]
    model, sigma_codes = _build(yi, V, X, nested, inner, outer, struct)
    vdiag = V.diag() if isinstance(V, BlockV) else np.asarray(V, dtype=float)
    theta0 = _start(model, yi, X, vdiag) if start is None else np.asarray(start, dtype=float)
    fixed = None
    if start is not None and not np.all(np.isfinite(theta0)):
        fixed = ~np.isfinite(theta0)
    fit = _solve(model, method, theta0, control, fixed)
    return _result(model, fit, sigma_codes, yi, X, X_names, method, test, dfs, level, btt, s_names or [])


def _result(model, fit, sigma_codes, yi, X, X_names, method, test, dfs, level, btt, s_names):
    k, p = model.k, model.p
    ev = fit.ev
    theta = fit.theta
    vb = np.linalg.inv(ev.XtWX)
    vb = (vb + vb.T) / 2
    beta = ev.beta
    se = np.sqrt(np.diag(vb))
    zval = beta / se
    intercept = np.all(X[:, 0] == 1)
    btt = np.arange(1 if (intercept and p > 1) else 0, p) if btt is None else np.asarray(btt, dtype=int)
    m = btt.size
    QM = float(beta[btt] @ np.linalg.solve(vb[np.ix_(btt, btt)], beta[btt]))
    q = 0.5 + level / 200
    if test == "t":
        ddf = np.full(p, float(k - p)) if dfs == "residual" else _contain_ddf(X, sigma_codes, model.gspec, k, p)
        ddf = np.maximum(ddf, 1)
        QM /= m
        QM_df = (m, float(np.min(ddf[btt])))
        QM_p = float(dist.f_sf(QM, m, QM_df[1]))
        pval = 2 * dist.t_sf(np.abs(zval), ddf)
        crit = dist.t_ppf(q, ddf)
    else:
        ddf = np.full(p, np.nan)
        QM_df = (m, np.nan)
        QM_p = float(dist.chi2_sf(QM, m))
        pval = 2 * dist.norm_sf(np.abs(zval))
        crit = dist.norm_ppf(q)
    # QE and the saturated log-likelihood use V alone
    fe = _evaluate(model, np.zeros_like(model.gamma(np.zeros(model.n_theta))), "ML", derivatives=False)
    QE_df = k - p
    QE = np.nan
    ll_qe = np.nan
    if fe is not None:
        logdetV = 0.0
        rss = 0.0
        for grp in model.groups:
            y, Xb, Vg = grp.y, grp.X, grp.V
            logdetV += float(np.sum(np.linalg.slogdet(Vg)[1]))
            r = y - Xb @ fe.beta
            rss += float(np.sum(r * np.linalg.solve(Vg, r[..., None])[..., 0]))
        QE = rss
        ll_qe = -0.5 * k * LOG2PI - 0.5 * logdetV
    QE_p = float(dist.chi2_sf(QE, QE_df)) if QE_df > 0 else 1.0
    if QE_df <= 0:
        QE = 0.0
    gs = model.gspec
    sigma2 = np.exp(theta[: model.n_sigma])
    tau2 = rho = np.zeros(0)
    G = g_levels = None
    if gs:
        tau2, rho = gs.natural(theta[model.n_sigma :])
        G = gs.G(theta[model.n_sigma :])
        g_levels = gs.levels
    nfree = int(np.sum(fit.free))
    parms = p + nfree
    llm, llr = ev.ll_ml, ev.ll_reml
    dev_ml = -2 * (llm - ll_qe) if np.all(_vdiag_pos(model)) else -2 * llm
    fit_stats = {"ML": _criteria(llm, dev_ml, parms, k), "REML": _criteria(llr, -2 * llr, parms, k - p)}
    return RmaMvResult(
        method=method,
        test=test,
        dfs=dfs,
        level=level,
        k=k,
        p=p,
        X_names=list(X_names),
        beta=beta,
        se=se,
        zval=zval,
        pval=pval,
        ci_low=beta - crit * se,
        ci_high=beta + crit * se,
        vb=vb,
        ddf=ddf,
        btt=btt,
        QM=QM,
        QM_df=QM_df,
        QM_p=QM_p,
        QE=float(QE),
        QE_df=QE_df,
        QE_p=QE_p,
        sigma2=sigma2,
        s_nlevels=np.array([np.unique(c).size for c in sigma_codes]),
        s_names=s_names,
        tau2=tau2,
        rho=rho,
        G=G,
        g_levels=g_levels,
        struct=gs.struct if gs else None,
        parms=parms,
        fit_stats=fit_stats,
        converged=fit.converged,
        iterations=fit.iterations,
        boundary=fit.boundary,
        scaled_score=fit.scaled_score,
        _model=model,
        _theta=theta,
        _yi=yi,
        _X=X,
    )


def _criteria(ll, dev, parms, n):
    """metafor's fit statistics; n is k for ML and k − p for REML."""
    nn = max(n, parms + 2)
    return {"ll": ll, "dev": dev, "AIC": -2 * ll + 2 * parms, "BIC": -2 * ll + parms * np.log(n),
            "AICc": -2 * ll + 2 * parms * nn / (nn - parms - 1)}  # fmt: skip


def _vdiag_pos(model):
    return np.concatenate([np.diagonal(g.V, axis1=1, axis2=2).ravel() for g in model.groups]) > 0


# ---------------------------------------------------------------------------------------------- profile CIs, LRT
def _profile_ll(fit: RmaMvResult, index, value_theta, control):
    model = fit._model
    theta0 = np.where(np.isfinite(fit._theta), fit._theta, np.log(control.boundary * model.scale))
    theta0 = theta0.copy()
    theta0[index] = value_theta
    fixed = np.zeros(theta0.size, bool)
    fixed[index] = True
    res = _solve(model, fit.method, theta0, control, fixed)
    return _ll(res.ev, fit.method), res.converged


def _component_index(fit, component, which):
    model = fit._model
    if component == "sigma2":
        if not 0 <= which < model.n_sigma:
            raise ValueError(f"sigma2 index {which} out of range (model has {model.n_sigma})")
        return which, "log"
    gs = model.gspec
    if gs is None:
        raise ValueError("the model has no ~ inner | outer term")
    nt = {"ID": 1, "DIAG": gs.m, "CS": 1, "HCS": gs.m, "UN": gs.m}[gs.struct]
    if component == "tau2":
        return model.n_sigma + which, "log"
    if component == "rho":
        if gs.struct == "UN" and which >= gs.m - 1:
            raise ValueError("profile CIs for UN correlations are available for the first inner level's pairs only")
        return model.n_sigma + nt + which, "atanh"
    raise ValueError("component must be 'sigma2', 'tau2' or 'rho'")


def confint(fit: RmaMvResult, component="sigma2", which=0, level=None, control: MVControl | None = None):
    """Profile-likelihood CI of one variance component, as metafor's ``confint.rma.mv`` (``sigma2=``,
    ``tau2=``, ``rho=`` with 0-based ``which``). Bounds are roots of 2(ll̂ − ll_profile) = χ²₁ found by Brent's
    method to 1e-12 relative in θ; a bound not bracketed within the search range is returned as the range end
    with ``*_found=False`` (metafor's lower bound 0 for a variance whose profile stays above the cut)."""
    from scipy import optimize  # for brentq only; slow to import

    control = control or MVControl()
    level = fit.level if level is None else level
    index, kind = _component_index(fit, component, which)
    theta_hat = fit._theta[index]
    at_zero = not np.isfinite(theta_hat)  # a variance estimated at 0: the CI is [0, upper]
    if at_zero:
        theta_hat = np.log(control.boundary * fit._model.scale)
    ll_hat = fit.logLik
    cut = dist.chi2_ppf(level / 100, 1) / 2

    def f(t):
        ll, _ = _profile_ll(fit, index, t, control)
        return ll_hat - ll - cut

    out = {"estimate": float(np.exp(theta_hat) if kind == "log" else np.tanh(theta_hat))}
    if kind == "log":
        # search range: down to the boundary, up to 1e6 times the larger of the estimate and the sampling variances
        lo_end = np.log(control.boundary * fit._model.scale)
        hi_end = max(theta_hat, np.log(fit._model.scale)) + np.log(1e6)
    else:
        lo_end, hi_end = -18.0, 18.0  # |rho| within 1 - 1e-15
    sides = (("low", lo_end), ("high", hi_end))
    if at_zero:
        out.update(estimate=0.0, ci_low=0.0, ci_low_found=True)
        sides = sides[1:]
    for side, end in sides:
        a = theta_hat
        step = 1.0 if kind == "log" else 0.5
        b = a
        found = False
        while b > end if side == "low" else b < end:
            b = max(end, b - step) if side == "low" else min(end, b + step)
            if f(b) > 0:
                found = True
                break
            a = b
            step *= 2
        if found:
            root = optimize.brentq(f, min(a, b), max(a, b), xtol=1e-14, rtol=1e-13, maxiter=200)
        else:
            root = end
        value = np.exp(root) if kind == "log" else np.tanh(root)
        if not found and kind == "log" and side == "low":
            value = 0.0
        out[f"ci_{side}"] = float(value)
        out[f"ci_{side}_found"] = found
    return out


def anova(full: RmaMvResult, reduced: RmaMvResult):
    """Likelihood-ratio test of nested models (metafor ``anova(full, reduced)``): LRT = 2(ll_f − ll_r)."""
    if full.method != reduced.method:
        raise ValueError("both models must be fitted with the same method")
    if full.k != reduced.k or not np.array_equal(full._yi, reduced._yi):
        raise ValueError("both models must be fitted to the same effects")
    if full.method == "REML" and not np.array_equal(full._X, reduced._X):
        raise ValueError("REML likelihoods are comparable only for the same fixed effects; refit with method='ML'")
    df = full.parms - reduced.parms
    if df <= 0:
        raise ValueError("the full model must have more parameters than the reduced one")
    lrt = max(0.0, 2 * (full.logLik - reduced.logLik))
    return {
        "LRT": lrt,
        "df": df,
        "pval": float(dist.chi2_sf(lrt, df)),
        "ll_full": full.logLik,
        "ll_reduced": reduced.logLik,
        "AIC_full": full.AIC,
        "AIC_reduced": reduced.AIC,
    }
