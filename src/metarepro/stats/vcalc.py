"""Sampling covariances of dependent effects (metafor's ``vcalc``) and aggregation to one effect per cluster
(metafor's ``aggregate.escalc``).

``vcalc`` builds, cluster by cluster, ``V = S R S`` with ``S = diag(√vi)`` and, for effects i ≠ j of the same
cluster, ``R_ij = ρ_ij · c_ij`` where

* ρ_ij is 1 for the same ``obs`` (and ``type``), ``rho[obs_i, obs_j]`` for different obs of the same type, and
  ``rho[type_i, type_j]`` (the second element of ``rho``) for different types;
* c_ij accounts for shared groups (``grp1``/``grp2`` with sizes ``w1``/``w2``, e.g. several treatment groups
  against one control group, and ``time1``/``time2`` with autocorrelation ``phi``), exactly as ``vcalc``::

      c_ij = [δ(g1i,g1j)φ^|t1i−t1j|/√(w1i w1j) − δ(g1i,g2j)φ^|t1i−t2j|/√(w1i w2j)
              − δ(g2i,g1j)φ^|t2i−t1j|/√(w2i w1j) + δ(g2i,g2j)φ^|t2i−t2j|/√(w2i w2j)] / (d_i d_j),
      d_i = √(1/w1i + 1/w2i − 2 δ(g1i,g2i) φ^|t1i−t2i| /√(w1i w2i)).

The result is a :class:`~metarepro.stats.mv.BlockV` (one block per cluster, never a dense k×k matrix).
"""

from __future__ import annotations

import numpy as np

from metarepro.stats.mv import BlockV


def _column(values, k, default, name):
    if values is None:
        return np.full(k, default)
    values = np.asarray(values)
    if values.size != k:
        raise ValueError(f"{name} has {values.size} values but vi has {k}")
    if values.dtype.kind in "fc" and np.any(np.isnan(values)):
        raise ValueError(f"{name} has missing values; every effect needs one")
    return values


def _rho_lookup(rho, labels, name):
    """A function (a, b) -> correlation from a scalar or a (labels, matrix) pair."""
    if rho is None:
        return lambda a, b: 0.0
    if isinstance(rho, (int, float, np.number)):
        value = float(rho)
        if abs(value) > 1:
            raise ValueError(f"{name} must be in [-1, 1], not {value}")
        return lambda a, b: value
    names, matrix = rho
    matrix = np.asarray(matrix, dtype=float)
    index = {str(n): i for i, n in enumerate(names)}
    missing = sorted({str(x) for x in labels} - set(index))
    if missing:
        raise ValueError(f"{name} has no row/column for {', '.join(missing)}; give a correlation for every value")
    if np.any(np.abs(matrix) > 1):
        raise ValueError(f"every correlation in {name} must be in [-1, 1]")
    return lambda a, b: matrix[index[str(a)], index[str(b)]]


def vcalc(vi, cluster, *, obs=None, type=None, grp1=None, grp2=None, w1=None, w2=None, time1=None, time2=None,
          phi=None, rho=None) -> BlockV:  # fmt: skip
    """metafor's ``vcalc``: ``rho`` is a scalar or ``(labels, matrix)`` for ``obs`` (or for ``type`` when only
    ``type`` is given), or a pair ``(rho_obs, rho_type)`` when both are given."""
    vi = np.asarray(vi, dtype=float)
    k = vi.size
    cluster = _column(cluster, k, 0, "cluster")
    if (obs is not None or type is not None) and rho is None:
        raise ValueError("give rho (the assumed correlation) when obs or type is given")
    if (time1 is not None or time2 is not None) and phi is None:
        raise ValueError("give phi (the autocorrelation) when time1/time2 is given")
    if grp2 is not None and grp1 is None:
        raise ValueError("give grp1 with grp2 (or only grp1, or neither)")
    obs_ = _column(obs, k, 1, "obs")
    type_ = _column(type, k, 1, "type")
    g1 = _column(grp1, k, 1, "grp1")
    g2 = _column(grp2, k, 2, "grp2")
    t1 = _column(time1, k, 1, "time1").astype(float)
    t2 = t1 if time2 is None else _column(time2, k, 1, "time2").astype(float)
    w1_ = _column(w1, k, 1, "w1").astype(float)
    w2_ = w1_ if w2 is None else _column(w2, k, 1, "w2").astype(float)
    phi = 1.0 if phi is None else float(phi)
    if abs(phi) > 1:
        raise ValueError(f"phi must be in [-1, 1], not {phi}")
    if obs is not None and type is not None:
        rho_obs, rho_type = rho
    elif type is not None:
        rho_obs, rho_type = None, rho
    else:
        rho_obs, rho_type = rho, None
    r_obs = _rho_lookup(rho_obs, np.unique(obs_), "rho")
    r_type = _rho_lookup(rho_type, np.unique(type_), "rho (between types)")

    def shared(i, j):
        def term(ga, gb, ta, tb, wa, wb):
            return (ga == gb) * phi ** abs(ta - tb) * np.sqrt(1 / wa * 1 / wb)

        g = (g1, g2)
        t = (t1, t2)
        w = (w1_, w2_)
        num = sum(
            sign * term(g[a][i], g[b][j], t[a][i], t[b][j], w[a][i], w[b][j])
            for a, b, sign in ((0, 0, 1), (0, 1, -1), (1, 0, -1), (1, 1, 1))
        )

        def d(a):
            return np.sqrt(1 / w1_[a] + 1 / w2_[a] - 2 * term(g1[a], g2[a], t1[a], t2[a], w1_[a], w2_[a]))

        return num / (d(i) * d(j))

    out = BlockV(cluster, dict.fromkeys(cluster.tolist()))
    for c, rows in out.rows().items():
        R = np.eye(rows.size)
        for a in range(rows.size):
            for b in range(a):
                i, j = rows[a], rows[b]
                if type_[i] == type_[j]:
                    base = 1.0 if obs_[i] == obs_[j] else r_obs(obs_[i], obs_[j])
                else:
                    base = r_type(type_[i], type_[j])
                R[a, b] = R[b, a] = base * shared(i, j)
        s = np.sqrt(vi[rows])
        out.blocks[c] = R * s[:, None] * s[None, :]
    return out


def aggregate(yi, V, cluster=None, *, rho=None, weighted=True):
    """metafor's ``aggregate.escalc``: one effect per cluster (clusters in order of first appearance).

    ``V`` is a :class:`BlockV` (e.g. from :func:`vcalc`) or 1-D sampling variances with ``rho`` (struct CS:
    one correlation within every cluster). Weighted (default): ``ȳ = 1'V⁻¹y / 1'V⁻¹1``, ``v = 1/(1'V⁻¹1)``;
    unweighted: the mean and ``1'V1/k²``. Returns ``(clusters, yi, vi)``.
    """
    yi = np.asarray(yi, dtype=float)
    if isinstance(V, BlockV):
        blocks = V
        if cluster is not None and not np.array_equal(np.asarray(cluster), V.cluster):
            raise ValueError("cluster differs from the clusters of V; aggregate by the clusters V was built on")
    else:
        if cluster is None or rho is None:
            raise ValueError("with 1-D sampling variances, give cluster and rho (the assumed correlation)")
        blocks = vcalc(V, cluster, obs=np.arange(yi.size), rho=rho)
    labels = list(blocks.blocks)
    out_y, out_v = np.empty(len(labels)), np.empty(len(labels))
    for n, (c, rows) in enumerate(blocks.rows().items()):
        Vc = blocks.blocks[c]
        y = yi[rows]
        if weighted:
            try:
                W = np.linalg.inv(np.linalg.cholesky(Vc))
            except np.linalg.LinAlgError as err:
                raise ValueError(f"the sampling covariance of cluster {c} is not positive definite") from err
            W = W.T @ W
            total = W.sum()
            out_y[n] = (W @ y).sum() / total
            out_v[n] = 1 / total
        else:
            out_y[n] = y.mean()
            out_v[n] = Vc.sum() / rows.size**2
    return np.array(labels), out_y, out_v
