"""Tail areas and quantiles of the normal, t, F and chi-square distributions from :mod:`scipy.special`.

``scipy.stats`` computes these with exactly these special functions (``norm.sf(x) = ndtr(-x)``,
``t.ppf(q, df) = stdtrit(df, q)``, ``f.sf = fdtrc``, ...), but importing it costs a pipeline job 0.5-1 s.
Each function here reproduces the ``scipy.stats`` method bit for bit, its edge cases included (checked on a
grid in ``tests/test_dist.py``): NaN for a NaN argument or a degrees-of-freedom that is not positive, the
support's bounds for q = 0 and q = 1 (``stdtrit`` alone gives +inf at q = 0), 1 below the support, ``+ 0.0``
as scipy's ``* scale + loc`` (so a quantile is never −0.0), a NumPy scalar for scalar input.
"""

from __future__ import annotations

import numpy as np
from scipy import special

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
    return _quantile(q, (df,), -_INF, _INF, lambda q: special.stdtrit(df, q))


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
