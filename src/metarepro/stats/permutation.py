"""Permutation tests of a meta-analysis or meta-regression, metafor's ``permutest.rma.uni``.

* Intercept-only model (``X`` None or a single column of ones): the signs of y are flipped, 2^k distinct sign
  patterns.
* Model with moderators: the rows of X are permuted against (y, v); the number of *distinct* arrangements is
  k!/∏nⱼ! where nⱼ counts identical rows of X (as metafor counts them).

Every arrangement is refitted with the model's method, test, level, btt and control (the pseudo-R² is skipped,
as metafor's ``skipr2``). Two-sided p-value of coefficient j: the proportion of arrangements with
|z*ⱼ| ≥ |zⱼ| − ``comptol`` (z is the t statistic under knha); for the omnibus test the proportion with
QM* ≥ QM − ``comptol``. The observed arrangement is part of the reference set.

``exact``: ``None`` (default, metafor's ``exact = FALSE``) runs the exact test whenever the number of distinct
arrangements is ≤ ``iter``, otherwise ``iter`` random arrangements (the first being the observed data, as
metafor); ``True`` always enumerates every arrangement; ``False`` always samples. Exact p-values match metafor.
Random ones come from numpy's generator seeded with ``seed`` and **cannot** reproduce R's random stream, so they
agree with metafor only up to Monte Carlo error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from metarepro._core import limits
from metarepro._core.batch import EPS
from metarepro._core.printing import Printable
from metarepro.stats.metareg import INTERCEPT, MetaregResult, _fit
from metarepro.stats.tau2 import Control

COMPTOL = EPS**0.5  # metafor's control$comptol
CHUNK = 4096  # refits per vectorized batch at most; fewer for large k (see _chunk)


@dataclass(frozen=True, repr=False)  # printing.Printable gives metafor's print.permutest
class PermutationResult(Printable):
    """Permutation p-values next to the observed fit (``fit``)."""

    fit: MetaregResult
    names: tuple
    zval: np.ndarray  # observed test statistics
    pval: np.ndarray  # permutation p-value per coefficient
    QM: float
    QM_p: float
    exact: bool
    n_permutations: int  # arrangements evaluated, the observed one included
    exact_count: int  # number of distinct arrangements (metafor's exact.iter)
    seed: int | None


def _distinct_rows(X):
    """Label each row of X by its distinct value: (labels, distinct rows, counts)."""
    distinct, labels, counts = np.unique(X, axis=0, return_inverse=True, return_counts=True)
    return labels.reshape(-1), distinct, counts


def multiset_permutations(counts):
    """Every distinct arrangement of a multiset with ``counts[g]`` copies of label g, as an (N, Σcounts) array.

    Built position by position, extending each prefix with every label that still has copies left.
    """
    counts = np.asarray(counts, dtype=int)
    prefixes = np.zeros((1, 0), dtype=np.int32)
    left = counts[None, :].copy()
    for _ in range(int(counts.sum())):
        parts, lefts = [], []
        for g in range(len(counts)):
            rows = left[:, g] > 0
            if rows.any():
                parts.append(np.column_stack([prefixes[rows], np.full(rows.sum(), g, dtype=np.int32)]))
                new_left = left[rows].copy()
                new_left[:, g] -= 1
                lefts.append(new_left)
        prefixes, left = np.concatenate(parts), np.concatenate(lefts)
    return prefixes


def _sign_patterns(k, rows):
    """Sign vectors for the integers ``rows`` (bit j of the integer flips study j)."""
    bits = (np.asarray(rows, dtype=np.int64)[:, None] >> np.arange(k)) & 1
    return 1.0 - 2.0 * bits


def _chunk(k: int) -> int:
    """Refits per batch: CHUNK, or fewer so that refits × studies stays within REFIT_CHUNK_ELEMENTS (memory O(k))."""
    return max(1, min(CHUNK, limits.REFIT_CHUNK_ELEMENTS // max(1, k)))


def permutest(
    yi, vi, X=None, method="REML", test="z", level=95, btt=None, control: Control | None = None,
    iter=1000, exact=None, seed=None, comptol=COMPTOL,
) -> PermutationResult:  # fmt: skip
    """Permutation test of the model ``rma_mods(yi, vi, X, method, test, level, control, btt)`` (see module doc).

    ``X`` is the design matrix with its intercept column (``None``: intercept-only); ``iter`` = 1000 as metafor.
    Rows with a missing value are dropped first.
    """
    iter = int(round(iter))
    if iter < 2:
        raise ValueError("iter must be >= 2")
    chunk = _chunk(len(yi))
    yi, vi = np.asarray(yi, dtype=float), np.asarray(vi, dtype=float)
    names = None
    if X is None:
        X = np.ones((len(yi), 1))
        names = (INTERCEPT,)
    elif hasattr(X, "columns"):
        names = tuple(str(c) for c in X.columns)
    X = np.asarray(X, dtype=float).reshape(len(yi), -1)
    keep = np.isfinite(yi) & np.isfinite(vi) & np.isfinite(X).all(axis=1)
    yi, vi, X = yi[keep], vi[keep], X[keep]
    k = len(yi)
    int_only = X.shape[1] == 1 and np.all(np.abs(X - 1) < 1e-8)

    def refit(Y, Xs):
        return _fit(Y, np.broadcast_to(vi, Y.shape), Xs, method, test, level, control, btt, with_r2=False)

    observed = refit(yi[None, :], X)
    names = names or observed.names
    if int_only:
        exact_count = 2**k
    else:
        labels, distinct, counts = _distinct_rows(X)
        exact_count = math.factorial(k) // math.prod(math.factorial(int(c)) for c in counts)
    use_exact = exact is True or (exact is None and exact_count <= iter)

    if use_exact:
        if int_only:
            chunks = (
                (yi * _sign_patterns(k, np.arange(s, min(s + chunk, exact_count))), X)
                for s in range(0, exact_count, chunk)
            )
        else:
            arrangements = multiset_permutations(counts)
            chunks = ((np.broadcast_to(yi, (len(a), k)), distinct[a]) for a in np.array_split(
                arrangements, max(1, math.ceil(len(arrangements) / chunk))))  # fmt: skip
        n_total = exact_count
    else:
        rng = np.random.default_rng(seed)
        n_random = iter - 1
        if int_only:
            signs = rng.choice([-1.0, 1.0], size=(n_random, k))
            chunks = ((yi * signs[s : s + chunk], X) for s in range(0, n_random, chunk))
        else:
            orders = np.argsort(rng.random((n_random, k)), axis=1)
            chunks = ((np.broadcast_to(yi, (len(o), k)), X[o]) for o in np.array_split(
                orders, max(1, math.ceil(n_random / chunk))))  # fmt: skip
        n_total = iter

    zvals, qms = [], []
    if not use_exact:  # metafor puts the observed statistics first
        zvals.append(observed.zval)
        qms.append(observed.QM)
    for Y, Xs in chunks:
        if len(Y) == 0:
            continue
        fits = refit(Y, Xs)
        zvals.append(fits.zval)
        qms.append(fits.QM)
    zval_perm = np.concatenate(zvals)
    qm_perm = np.concatenate(qms)

    z_obs, qm_obs = observed.zval[0], float(observed.QM[0])
    with np.errstate(invalid="ignore"):
        finite = np.isfinite(zval_perm)
        pval = (finite & (np.abs(zval_perm) >= np.abs(z_obs) - comptol)).sum(axis=0) / finite.sum(axis=0)
        ok = np.isfinite(qm_perm)
        qm_p = float((ok & (qm_perm >= qm_obs - comptol)).sum() / ok.sum())
    return PermutationResult(
        fit=observed[0], names=names, zval=z_obs, pval=np.minimum(pval, 1.0), QM=qm_obs, QM_p=qm_p,
        exact=use_exact, n_permutations=n_total, exact_count=exact_count, seed=seed,
    )  # fmt: skip


__all__ = ["PermutationResult", "permutest", "multiset_permutations", "COMPTOL"]
