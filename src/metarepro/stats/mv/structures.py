"""Grouping codes, the sampling covariance input (BlockV) and the G structures of ``~ inner | outer``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

STRUCTS = ("ID", "DIAG", "CS", "HCS", "UN", "AR")

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
    """The ``~ inner | outer`` term: G (m × m over the inner levels) from θ_G = (log τ², Fisher-z correlations)."""

    struct: str
    m: int  # number of inner levels
    levels: np.ndarray
    inner: np.ndarray  # codes per row
    outer: np.ndarray  # codes per row

    def n_var(self):
        """Number of τ² in θ_G (the rest are correlations)."""
        return self.m if self.struct in ("DIAG", "HCS", "UN") else 1

    def n_theta(self):
        m = self.m
        return {"ID": 1, "DIAG": m, "CS": 2, "HCS": m + 1, "UN": m + m * (m - 1) // 2, "AR": 2}[self.struct]

    def natural(self, theta):
        """(tau2, rho) in metafor's order from θ (rho in lower.tri column-major order for UN)."""
        m, s = self.m, self.struct
        if s == "ID":  # metafor reports rho = 0 (fixed) for ID and DIAG
            return np.full(1, np.exp(theta[0])), np.zeros(1)
        if s == "DIAG":
            return np.exp(theta[:m]), np.zeros(1)
        if s in ("CS", "AR"):
            return np.exp(theta[:1]), np.tanh(theta[1:2])
        if s == "HCS":
            return np.exp(theta[:m]), np.tanh(theta[m : m + 1])
        corr = _cpc_corr(np.tanh(theta[m:]), m)
        return np.exp(theta[:m]), np.array([corr[i, j] for j in range(m) for i in range(j + 1, m)])

    def G(self, theta):
        m, s = self.m, self.struct
        tau2, rho = self.natural(theta)
        tau2 = np.broadcast_to(tau2, (m,)) if s in ("ID", "CS", "AR") else tau2
        sd = np.sqrt(tau2)
        if s in ("ID", "DIAG"):
            corr = np.eye(m, dtype=theta.dtype)
        elif s in ("CS", "HCS"):
            corr = rho[0] * np.ones((m, m), dtype=theta.dtype) + (1 - rho[0]) * np.eye(m)
        elif s == "AR":  # metafor: rho^|a − b| over the sorted inner levels a, b (not their values)
            lag = np.arange(m)
            corr = rho[0] ** np.abs(lag[:, None] - lag[None, :])
        else:
            corr = _cpc_corr(np.tanh(theta[m:]), m)
        return corr * sd[:, None] * sd[None, :]

    def dG(self, theta):
        """dG/dθ_j, (n_theta, m, m), by complex-step differentiation (exact to rounding: the map is analytic)."""
        h = 1e-30
        out = np.empty((theta.size, self.m, self.m))
        for j in range(theta.size):
            t = theta.astype(complex)
            t[j] += 1j * h
            out[j] = self.G(t).imag / h
        return out

    def d2G(self, theta):
        """d²G/dθ_j dθ_l, (n, n, m, m): central differences of the complex-step dG (error ~1e-10 relative;
        used only for the Newton direction, never for the score or a convergence test)."""
        n = theta.size
        out = np.empty((n, n, self.m, self.m))
        h = 1e-4
        for j in range(n):
            e = np.zeros(n)
            e[j] = h
            out[:, j] = (self.dG(theta + e) - self.dG(theta - e)) / (2 * h)  # NaN at ρ = ±1: scoring instead
        return (out + out.transpose(1, 0, 2, 3)) / 2


def _cpc_corr(z, m):
    """Correlation matrix from canonical partial correlations z (C-vine order (0,1),(0,2)..,(1,2)..)."""
    w = np.zeros((m, m), dtype=np.result_type(z, float))
    w[0, 0] = 1
    it = iter(z)
    cpc = np.zeros((m, m), dtype=w.dtype)
    for i in range(m):
        for j in range(i + 1, m):
            cpc[i, j] = next(it)
    with np.errstate(invalid="ignore"):  # rounding at a partial correlation of ±1: NaN, and no step goes there
        for j in range(1, m):
            rest = 1.0
            for i in range(j):
                w[i, j] = cpc[i, j] * np.sqrt(rest)
                rest = rest - w[i, j] ** 2
            w[j, j] = np.sqrt(rest)
    return w.T @ w
