"""metarepro._core.dist against scipy.stats, the implementation it replaces: the same numbers bit for bit (and the
same sign of zero, NaN where scipy gives NaN, the same type) on a grid that includes every edge case."""

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from metarepro._core import dist as _dist

X = [-np.inf, -1e300, -40.0, -3.0, -1.96, -0.5, -0.0, 0.0, 5e-324, 1e-300, 0.5, 1.0, 1.96, 3.0, 40.0, 1e300,
     np.inf, np.nan]  # fmt: skip
Q = [-0.1, 0.0, 5e-324, 1e-300, 1e-20, 0.001, 0.025, 0.05, 0.5, 0.95, 0.975, 0.999, 1 - 2**-53, 1.0, 1.1, np.nan]
DF = [-1.0, 0.0, 1e-3, 0.5, 1.0, 1, 2.5, 3, 30.0, 1e6, 1e300, np.inf, np.nan]

CASES = [
    (_dist.norm_sf, stats.norm.sf, X, 0),
    (_dist.norm_cdf, stats.norm.cdf, X, 0),
    (_dist.norm_ppf, stats.norm.ppf, Q, 0),
    (_dist.norm_isf, stats.norm.isf, Q, 0),
    (_dist.t_sf, stats.t.sf, X, 1),
    (_dist.t_ppf, stats.t.ppf, Q, 1),
    (_dist.t_isf, stats.t.isf, Q, 1),
    (_dist.f_sf, stats.f.sf, X, 2),
    (_dist.chi2_sf, stats.chi2.sf, X, 1),
    (_dist.chi2_cdf, stats.chi2.cdf, X, 1),
    (_dist.chi2_ppf, stats.chi2.ppf, Q, 1),
]
IDS = [case[0].__name__ for case in CASES]


def assert_identical(ours, theirs):
    assert type(ours) is type(theirs)
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
    assert np.array_equal(np.isnan(ours), np.isnan(theirs))
    seen = ~np.isnan(theirs)
    assert np.array_equal(ours[seen], theirs[seen])  # exact: no tolerance
    assert np.array_equal(np.signbit(ours[seen]), np.signbit(theirs[seen]))  # 0.0 is not -0.0


@pytest.mark.parametrize(("ours", "theirs", "grid", "n_df"), CASES, ids=IDS)
def test_scalars_match_scipy_stats(ours, theirs, grid, n_df):
    for point in itertools.product(grid, *[DF] * n_df):
        assert_identical(ours(*point), theirs(*point))


@pytest.mark.parametrize(("ours", "theirs", "grid", "n_df"), CASES, ids=IDS)
def test_arrays_broadcast_as_scipy_stats(ours, theirs, grid, n_df):
    x = np.array(grid)[:, None] if n_df else np.array(grid)
    dfs = [np.array(DF)[None, :]] * n_df
    assert_identical(ours(x, *dfs), theirs(x, *dfs))
    assert_identical(ours(list(grid), *[3.0] * n_df), theirs(list(grid), *[3.0] * n_df))  # lists, scalar df
    assert_identical(ours(np.array([1, 2]), *[4] * n_df), theirs(np.array([1, 2]), *[4] * n_df))  # integers
    one = [np.array([2.0])] * n_df  # a NumPy scalar against 1-element arrays
    assert_identical(ours(np.float64(0.3), *one), theirs(np.float64(0.3), *one))


def test_the_edge_scipy_special_alone_gets_wrong():
    # why _dist is not just the special functions: stdtrit puts the 0-quantile at +inf, scipy.stats at -inf
    from scipy import special

    assert special.stdtrit(3.0, 0.0) == np.inf
    assert _dist.t_ppf(0.0, 3.0) == -np.inf == stats.t.ppf(0.0, 3.0)


def kendall_cases():
    rng = np.random.default_rng(5)
    for n in [2, 3, 4, 5, 8, 13, 21, 34, 60, 171, 200]:
        for _ in range(3 if n < 100 else 1):
            x, y = rng.normal(size=n), rng.normal(size=n) + rng.uniform(-1, 1) * np.arange(n)
            yield x, y, True  # untied: exact as metafor
            if n > 2:  # (scipy's variance divides by n - 2)
                yield x, y, False
                yield np.round(x, 1), np.round(y, 0), False  # ties in both: the tie-corrected variance
    x = np.arange(8.0)
    yield x, x, True  # perfect concordance: c = 0 in the lower tail
    yield x, x[::-1], True
    yield x, np.r_[1.0, 0.0, x[2:]], True  # c = 1
    yield x, np.full(8, 2.0), False  # one value only: NaN
    yield np.r_[x[:-1], np.nan], x, True  # NaN propagates


def test_kendalltau_matches_scipy_stats():
    for x, y, exact in kendall_cases():
        theirs = stats.kendalltau(x, y, method="exact" if exact else "asymptotic")
        tau, p = _dist.kendalltau(x, y, exact)
        assert_identical(tau, theirs.statistic)
        assert_identical(p, theirs.pvalue)


@pytest.mark.parametrize("mode", ["python", "numba"])
def test_inversions_count_every_inverted_pair(mode, monkeypatch):
    """The merge-sort count of pairs i < j with y[i] > y[j] (dense ranks, ties not inverted) against the definition
    itself, pair by pair: lengths around powers of two (the merge levels), heavy ties, sorted and reversed runs; run
    as Python and compiled."""
    from metarepro._core import batch

    monkeypatch.setattr(batch, "PYTHON_BUDGET", math.inf if mode == "python" else -1)
    monkeypatch.setattr(batch, "PYTHON_CALL", math.inf if mode == "python" else -1)
    monkeypatch.setattr(_dist._merge_inversions, "compiled", None)
    rng = np.random.default_rng(21)
    cases = [np.array([1]), np.array([2, 1]), np.array([1, 1, 1]), np.arange(17, 0, -1), np.arange(1, 33)]
    cases += [rng.integers(1, m + 1, n) for n in (3, 7, 8, 9, 15, 16, 17, 63, 64, 65, 200) for m in (1, 3, n)]
    for y in cases:
        brute = sum(int(y[i] > y[j]) for i, j in itertools.combinations(range(len(y)), 2))
        assert _dist._inversions(y) == brute, y
    assert (_dist._merge_inversions.compiled is None) == (mode == "python")


def test_t_ppf_of_many_degrees_of_freedom_matches_scipy_stats():
    """Above DISTINCT_FIRST values t_ppf computes each distinct df once (the n − 1 of 10⁶ studies): still scipy's
    numbers bit for bit, every edge df among them, in the input's shape."""
    rng = np.random.default_rng(4)
    df = np.concatenate([np.tile(DF, 200), rng.integers(1, 400, 3000).astype(float)])
    assert df.size > _dist.DISTINCT_FIRST
    for q in Q:
        assert_identical(_dist.t_ppf(q, df), stats.t.ppf(q, df))
        assert_identical(_dist.t_ppf(q, df.reshape(-1, 10)), stats.t.ppf(q, df.reshape(-1, 10)))
