"""The model as independent blocks: rows split into connected components, stacked (padded) by size."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from metarepro.stats.mv.structures import STRUCTS, _as_blockv, _codes, _GSpec, _interaction


@dataclass
class _Group:
    """Independent blocks padded to one size s (row −1: padding, see _padded) and stacked: rows and y (nb, s),
    X (nb, s, p), V (nb, s, s), the nested levels' structure matrices E (n_sigma, nb, s, s), and for a
    ``~ inner | outer`` term each row's inner level ``inn`` (nb, s) and the same-outer indicator ``same``."""

    rows: np.ndarray
    y: np.ndarray
    X: np.ndarray
    V: np.ndarray
    E: np.ndarray
    inn: np.ndarray | None = None
    same: np.ndarray | None = None

    def project(self, R, m):
        """The adjoint of lift: Σ over row pairs within one outer level of R, by inner-level pair (m × m)."""
        pair = self.inn[:, :, None] * m + self.inn[:, None, :]
        return np.bincount(pair.ravel(), weights=(R * self.same).ravel(), minlength=m * m).reshape(m, m)

    def lift(self, G):
        """An inner-level matrix (…, m, m) at the rows' pairs within one outer level: (…, nb, s, s)."""
        return G[..., self.inn[:, :, None], self.inn[:, None, :]] * self.same


@dataclass
class _Model:
    """Stacked blocks; the marginal covariance M = V + Σ_l σ²_l E_l + same-outer ∘ G[inner, inner] and its
    derivatives in θ = (log σ², θ_G)."""

    k: int
    p: int
    n_sigma: int
    gspec: _GSpec | None
    groups: list = field(default_factory=list)  # _Group per block size
    scale: float = 1.0
    ld_xtx: float = 0.0  # log det X'X (REML's constant)

    @property
    def n_theta(self):
        return self.n_sigma + (self.gspec.n_theta() if self.gspec else 0)

    def marginal(self, theta):
        """M per group at θ (an entry of −inf is a variance held at exactly 0)."""
        sigma2 = np.exp(theta[: self.n_sigma])
        G = self.gspec.G(theta[self.n_sigma :]) if self.gspec else None
        out = []
        for grp in self.groups:
            M = grp.V.copy()
            if self.n_sigma:
                M += (sigma2 @ grp.E.reshape(sigma2.size, -1)).reshape(M.shape)
            if G is not None:
                M += grp.lift(G)
            out.append(M)
        return out

    def _at_zero_linear(self, theta):
        """θ with a variance held at 0 that enters M linearly (σ², τ² of ID/DIAG) set to 0, so that its
        derivative is the one in the variance itself; a τ² of CS/HCS/UN/AR held at 0 stays −inf (G is not linear
        in it, and the other derivatives must be taken where G really is)."""
        linear = np.ones(theta.size, bool)
        if self.gspec and self.gspec.struct not in ("ID", "DIAG"):
            linear[self.n_sigma :] = False
        return np.where(np.isfinite(theta) | ~linear, theta, 0.0)

    def gradients(self, theta):
        """dM/dθ per group, (n_theta, nb, s, s), and dG/dθ_G (or None). A variance held at 0 (θ = −inf) that
        enters M linearly is differentiated at θ = 0, i.e. in σ² itself (dM/dσ² = E), which the boundary checks
        need."""
        theta = self._at_zero_linear(theta)
        sigma2 = np.exp(theta[: self.n_sigma])
        dG = self.gspec.dG(theta[self.n_sigma :]) if self.gspec else None
        out = []
        for grp in self.groups:
            parts = [sigma2[:, None, None, None] * grp.E] if self.n_sigma else []
            if dG is not None:
                parts.append(grp.lift(dG))
            out.append(parts[0] if len(parts) == 1 else np.concatenate(parts))
        return out, dG

    def second(self, theta, dG):
        """``Rs ↦ Σ_blocks <R, ∂²M/∂θ_j∂θ_l>`` (n × n) at θ: log σ² gives σ²E on the diagonal, θ_G gives
        <project(R), ∂²G/∂θ_j∂θ_l>; the two never mix."""
        theta = self._at_zero_linear(theta)
        ns = self.n_sigma
        sigma2 = np.exp(theta[:ns])
        d2G = self.gspec.d2G(theta[ns:]) if self.gspec else None

        def contract(Rs):
            out = np.zeros((self.n_theta, self.n_theta))
            for grp, R in zip(self.groups, Rs, strict=True):
                if ns:
                    out[np.arange(ns), np.arange(ns)] += sigma2 * np.tensordot(grp.E, R, axes=([1, 2, 3], [0, 1, 2]))
                if d2G is not None:
                    out[ns:, ns:] += np.tensordot(d2G, grp.project(R, self.gspec.m), axes=([2, 3], [0, 1]))
            return out

        return contract


PAD_SLACK = 4096  # matrix entries of padding always allowed in a stack (small models: one stack, one pass)


def _padded(by_size):
    """Blocks stacked by size, consecutive sizes merged into one stack padded to its largest size (row index
    −1) while the padded entries stay within twice the real ones plus ``PAD_SLACK``: few stacks (each is a
    pass of Python-level work per evaluation) at a bounded cost in flops. A padding row has variance 1, no
    covariance with any row, y = 0 and X = 0, so it adds nothing to any likelihood term."""
    stacks, current, real = [], [], 0
    for s, blocks in sorted(by_size.items()):
        n = sum(len(c) for c in current) + len(blocks)
        if current and n * s * s > 2 * (real + len(blocks) * s * s) + PAD_SLACK:
            stacks.append(current)
            current, real = [], 0
        current.append(blocks)
        real += len(blocks) * s * s
    stacks.append(current)
    out = []
    for parts in stacks:
        blocks = [b for part in parts for b in part]
        s = max(b.size for b in blocks)
        rows = np.full((len(blocks), s), -1, dtype=np.int64)
        for i, b in enumerate(blocks):
            rows[i, : b.size] = b
        out.append(rows)
    return out


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
    model = _Model(k, X.shape[1], len(sigma_codes), gspec, ld_xtx=float(np.linalg.slogdet(X.T @ X)[1]))
    pos_scale = vdiag[vdiag > 0]
    model.scale = float(np.mean(pos_scale)) if pos_scale.size else 1.0
    order = np.argsort(comp, kind="stable")
    sizes = np.bincount(comp)
    starts = np.concatenate([[0], np.cumsum(sizes)])
    by_size = {}
    for c in range(sizes.size):
        by_size.setdefault(int(sizes[c]), []).append(order[starts[c] : starts[c + 1]])
    for rows in _padded(by_size):
        nb, s = rows.shape
        real = rows >= 0
        pair = real[:, :, None] & real[:, None, :]
        at = np.where(real, rows, 0)
        Vg = np.zeros((nb, s, s))
        Vg[:, np.arange(s), np.arange(s)] = np.where(real, vdiag[at], 1.0)  # a padding row: variance 1, alone
        if Vb is not None:
            for b in range(nb):
                n = int(real[b].sum())
                vc, vp = vcode[rows[b, :n]], vpos[rows[b, :n]]
                if np.all(vc == vc[0]):  # the model block is one V block (possibly reordered)
                    Vg[b, :n, :n] = Vb.blocks[labels[vc[0]]][np.ix_(vp, vp)]
                    continue
                for a1 in range(n):
                    for a2 in range(n):
                        Vg[b, a1, a2] = Vb.blocks[labels[vc[a1]]][vp[a1], vp[a2]] if vc[a1] == vc[a2] else 0.0
        E = np.zeros((len(sigma_codes), nb, s, s))
        for level, codes in enumerate(sigma_codes):
            c = codes[at]
            E[level] = (c[:, :, None] == c[:, None, :]) & pair
        grp = _Group(rows, np.where(real, yi[at], 0.0), X[at] * real[:, :, None], Vg, E)
        if gspec:
            o = gspec.outer[at]
            grp.inn = gspec.inner[at]
            grp.same = ((o[:, :, None] == o[:, None, :]) & pair).astype(float)
        model.groups.append(grp)
    return model, sigma_codes
