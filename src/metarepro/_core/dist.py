"""Tail areas and quantiles of the normal, t, F and chi-square distributions from :mod:`scipy.special`.

``scipy.stats`` computes these with exactly these special functions (``norm.sf(x) = ndtr(-x)``,
``t.ppf(q, df) = stdtrit(df, q)``, ``f.sf = fdtrc``, ...), but importing it costs a pipeline job 0.5-1 s.
Each function here reproduces the ``scipy.stats`` method bit for bit, its edge cases included (checked on a
grid in ``tests/core/test_dist.py``): NaN for a NaN argument or a degrees-of-freedom that is not positive, the
support's bounds for q = 0 and q = 1 (``stdtrit`` alone gives +inf at q = 0), 1 below the support, ``+ 0.0``
as scipy's ``* scale + loc`` (so a quantile is never −0.0), a NumPy scalar for scalar input. Likewise
:func:`kendalltau` for the rank test, which would otherwise import scipy.stats in every analysis job.
"""

from __future__ import annotations

import math

import numpy as np

from metarepro._core.batch import kernel


class _SciPySpecial:
    """scipy.special, imported by the first function that needs it (0.1 s that the report job, which computes
    no p-value, does not pay); each function looked up once. The modules that use scipy.special import this."""

    def __getattr__(self, name):
        from scipy import special as module

        function = getattr(module, name)
        setattr(self, name, function)
        return function


special = _SciPySpecial()

_INF = np.inf


def _done(out):
    return out[()] if out.ndim == 0 else out


def _positive(*dfs):
    ok = np.True_
    for df in dfs:
        ok = np.logical_and(ok, np.asarray(df) > 0)
    return ok


def _tail(x, dfs, lower, upper, fn, sf):
    """sf (or cdf) of a distribution supported on [lower, upper], as rv_continuous.sf (.cdf)."""
    x = np.asarray(x)
    x = np.asarray(x, dtype=np.promote_types(x.dtype, np.float64))
    with np.errstate(invalid="ignore"):
        ok = _positive(*dfs)
        inside = ok & (lower < x) & (x < upper)
        edge = ok & ((x <= lower) if sf else (x >= upper))  # the tail holding all the mass
        out = np.where(inside, fn(x), 0.0)
    out = np.where(edge, 1.0, out)
    out = np.where(~ok | np.isnan(x), np.nan, out)
    return _done(np.asarray(out, dtype=x.dtype))


def _quantile(q, dfs, at_zero, at_one, fn):
    """ppf (at_zero = lower bound) or isf (at_zero = upper bound): as rv_continuous.ppf/isf."""
    q = np.asarray(q)
    with np.errstate(invalid="ignore"):
        ok = _positive(*dfs)
        out = np.where(ok & (q > 0) & (q < 1), fn(q) + 0.0, np.nan)
        out = np.where(ok & (q == 0), at_zero, out)
        out = np.where(ok & (q == 1), at_one, out)
    return _done(np.asarray(out, dtype=float))


def norm_sf(x):
    return _tail(x, (), -_INF, _INF, lambda x: special.ndtr(-x), sf=True)


def norm_cdf(x):
    return _tail(x, (), -_INF, _INF, special.ndtr, sf=False)


def norm_ppf(q):
    return _quantile(q, (), -_INF, _INF, special.ndtri)


def norm_isf(q):
    return _quantile(q, (), _INF, -_INF, lambda q: -special.ndtri(q))


def t_sf(x, df):
    return _tail(x, (df,), -_INF, _INF, lambda x: special.stdtr(df, -x), sf=True)


def t_ppf(q, df):
    df = np.asarray(df, dtype=float)
    if np.ndim(q) == 0 and df.size > DISTINCT_FIRST:  # e.g. n − 1 of 10⁶ studies: each distinct df's quantile once
        values, inverse = np.unique(df, return_inverse=True)
        return t_ppf(q, values)[inverse.ravel()].reshape(df.shape)
    return _quantile(q, (df,), -_INF, _INF, lambda q: special.stdtrit(df, q))


# Above this many degrees of freedom, t_ppf computes each distinct one once (stdtrit iterates, ~1 µs a value; the
# same value either way).
DISTINCT_FIRST = 1000


def t_isf(q, df):
    return _quantile(q, (df,), _INF, -_INF, lambda q: -special.stdtrit(df, q))


def f_sf(x, dfn, dfd):
    return _tail(x, (dfn, dfd), 0.0, _INF, lambda x: special.fdtrc(dfn, dfd, x), sf=True)


def chi2_sf(x, df):
    return _tail(x, (df,), 0.0, _INF, lambda x: special.chdtrc(df, x), sf=True)


def chi2_cdf(x, df):
    return _tail(x, (df,), 0.0, _INF, lambda x: special.chdtr(df, x), sf=False)


def chi2_ppf(q, df):
    return _quantile(q, (df,), 0.0, _INF, lambda q: 2 * special.gammaincinv(np.asarray(df) / 2, q))


def kendalltau(x, y, exact: bool):
    """Kendall's tau-b and its two-sided p value: ``scipy.stats.kendalltau(x, y, method="exact" if exact else
    "asymptotic")`` step for step (scipy 1.17's _stats_py.kendalltau and _mstats_basic._kendall_p_exact), so
    that the rank test does not import scipy.stats. ``exact`` requires no ties (the caller checks). Returns
    (tau, p) as NumPy floats; NaN for NaN input or a variable with one value only."""
    x, y = np.asarray(x).ravel(), np.asarray(y).ravel()
    if np.isnan(x).any() or np.isnan(y).any():
        return np.float64(np.nan), np.float64(np.nan)
    size = x.size
    perm = np.argsort(y)  # dense ranks of y, then of x with a stable sort (ties of x keep y ascending)
    x, y = x[perm], y[perm]
    y = np.r_[True, y[1:] != y[:-1]].cumsum(dtype=np.intp)
    perm = np.argsort(x, kind="mergesort")
    x, y = x[perm], y[perm]
    x = np.r_[True, x[1:] != x[:-1]].cumsum(dtype=np.intp)
    dis = _inversions(y)  # discordant pairs
    obs = np.r_[True, (x[1:] != x[:-1]) | (y[1:] != y[:-1]), True]
    cnt = np.diff(np.nonzero(obs)[0]).astype("int64", copy=False)
    ntie = int((cnt * (cnt - 1) // 2).sum())  # joint ties
    xtie, x0, x1 = _rank_ties(x)
    ytie, y0, y1 = _rank_ties(y)
    tot = (size * (size - 1)) // 2
    if xtie == tot or ytie == tot:
        return np.float64(np.nan), np.float64(np.nan)
    con_minus_dis = tot - xtie - ytie + ntie - 2 * dis
    tau = con_minus_dis / np.sqrt(tot - xtie) / np.sqrt(tot - ytie)
    tau = np.minimum(1.0, max(-1.0, tau))
    if exact:
        return tau[()], _kendall_p_exact(size, tot - dis)[()]
    m = size * (size - 1.0)
    var = (m * (2 * size + 5) - x1 - y1) / 18 + (2 * xtie * ytie) / m + x0 * y0 / (9 * m * (size - 2))
    z = con_minus_dis / np.sqrt(var)
    return tau[()], (2 * special.ndtr(-np.abs(z)))[()]


def _rank_ties(ranks):
    cnt = np.bincount(ranks).astype("int64", copy=False)
    cnt = cnt[cnt > 1]
    return (int((cnt * (cnt - 1) // 2).sum()), int((cnt * (cnt - 1.0) * (cnt - 2)).sum()),
            int((cnt * (cnt - 1.0) * (2 * cnt + 5)).sum()))  # fmt: skip


def _inversions(y) -> int:
    """Pairs i < j with y[i] > y[j] (an exact integer count), by a merge sort: see :func:`_merge_inversions`."""
    a = np.array(y, dtype=np.int64)  # a copy: sorted in place
    return int(_merge_inversions(a, np.empty_like(a))) if a.size >= 2 else 0


@kernel(lambda a, buffer: a.size * max(1, int(a.size).bit_length()))
def _merge_inversions(a, buffer):
    """The inverted pairs of ``a``, which a bottom-up merge sort sorts in place (``buffer``: room for one level):
    merging two sorted runs, a value taken from the right run is inverted with every value left in the left run.
    Compiled for large arrays (Begg's test at k = 10⁶: a loop in Python took seconds, whole-array NumPy steps per
    level one second)."""
    n = a.size
    count = 0
    width = 1
    while width < n:
        start = 0
        while start < n - width:
            middle, end = start + width, min(start + 2 * width, n)
            i, j, out = start, middle, start
            while i < middle and j < end:
                if a[j] < a[i]:
                    count += middle - i
                    buffer[out] = a[j]
                    j += 1
                else:
                    buffer[out] = a[i]
                    i += 1
                out += 1
            while i < middle:
                buffer[out] = a[i]
                i += 1
                out += 1
            while j < end:
                buffer[out] = a[j]
                j += 1
                out += 1
            for t in range(start, end):
                a[t] = buffer[t]
            start += 2 * width
        width *= 2
    return count


def _kendall_p_exact(n, c):
    """Two-sided exact p of c concordant pairs among n untied observations (Kendall 1970), as scipy."""
    c = int(min(c, (n * (n - 1)) // 2 - c))  # the distribution is symmetric: the lower tail
    if n <= 0 or c < 0 or 4 * c > n * (n - 1):
        raise ValueError(f"n = {n}, c = {c}: need n > 0 and 0 <= 4c <= n(n - 1)")
    if n <= 2:
        prob = 1.0
    elif c == 0:
        prob = 2.0 / math.factorial(n) if n < 171 else 0.0
    elif c == 1:
        prob = 2.0 / math.factorial(n - 1) if n < 172 else 0.0
    elif 4 * c == n * (n - 1):
        prob = 1.0
    elif n < 171:
        new = np.zeros(c + 1)
        new[0:2] = 1.0
        for j in range(3, n + 1):
            new = np.cumsum(new)
            if j <= c:
                new[j:] -= new[: c + 1 - j]
        prob = 2.0 * np.sum(new) / math.factorial(n)
    else:
        new = np.zeros(c + 1)
        new[0:2] = 1.0
        for j in range(3, n + 1):
            new = np.cumsum(new) / j
            if j <= c:
                new[j:] -= new[: c + 1 - j]
        prob = np.sum(new)
    return np.clip(prob, 0, 1)
