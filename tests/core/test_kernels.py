"""The loops of metarepro._core.batch give the same bits run as plain Python (what a small analysis does, so its process
never imports numba) as compiled by numba (what large batches do): every field of every fit, on the hard-case
corpus and on meta-regressions, permutation tests and deletion diagnostics."""

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
from hard_cases import corpus

from metarepro import rma, rma_batch
from metarepro._core import batch as _batch
from metarepro.stats.influence import influence, leave1out
from metarepro.stats.metareg import rma_mods
from metarepro.stats.permutation import permutest
from metarepro.stats.tau2 import METHODS

KERNELS = [obj for obj in vars(_batch).values() if isinstance(obj, _batch._Kernel)]
CASES = corpus(6)


def run(mode, fn, spent=None):
    """fn() with every kernel run as Python (mode "python") or compiled ("numba"); checks that it was.
    ``spent`` (a list) receives the Python work done."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_batch, "_spent", 0)
        mp.setattr(_batch, "PYTHON_BUDGET", math.inf if mode == "python" else -1)
        mp.setattr(_batch, "PYTHON_CALL", math.inf if mode == "python" else -1)
        if mode == "python":
            for kernel in KERNELS:
                mp.setattr(kernel, "compiled", None)
        out = fn()
        if mode == "python":
            assert all(kernel.compiled is None for kernel in KERNELS)
        else:
            assert _batch._spent == 0
        if spent is not None:
            spent.append(_batch._spent)
    return out


def leaves(obj, path="result"):
    """Every value inside a result (dataclass fields, dicts, sequences, frames) with where it is."""
    if dataclasses.is_dataclass(obj):
        for f in dataclasses.fields(obj):
            yield from leaves(getattr(obj, f.name), f"{path}.{f.name}")
    elif isinstance(obj, dict):
        for key, value in obj.items():
            yield from leaves(value, f"{path}[{key!r}]")
    elif isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            yield from leaves(value, f"{path}[{i}]")
    elif isinstance(obj, pd.DataFrame):
        for column in obj:
            yield from leaves(obj[column].to_numpy(), f"{path}[{column!r}]")
    elif isinstance(obj, np.ndarray) and obj.dtype == object:
        for i, value in enumerate(obj.ravel()):
            yield from leaves(value, f"{path}[{i}]")
    else:
        yield path, obj


def assert_same_bits(a, b):
    got, want = list(leaves(a)), list(leaves(b))
    assert [p for p, _ in got] == [p for p, _ in want]
    for (path, x), (_, y) in zip(got, want, strict=True):
        if isinstance(x, (str, type(None))):
            assert x == y, path
            continue
        x, y = np.asarray(x), np.asarray(y)
        assert x.dtype == y.dtype and x.shape == y.shape, path
        if x.dtype.kind == "f":
            # the bit patterns themselves (NaN == NaN, 0.0 != -0.0)
            assert np.array_equal(x.view(np.uint64) if x.ndim else x.reshape(1).view(np.uint64),
                                  y.view(np.uint64) if y.ndim else y.reshape(1).view(np.uint64)), path  # fmt: skip
        else:
            assert np.array_equal(x, y), path


def padded():
    width = max(y.size for _, y, _ in CASES)
    Y, V = np.full((len(CASES), width), np.nan), np.full((len(CASES), width), np.nan)
    for i, (_, y, v) in enumerate(CASES):
        Y[i, : y.size], V[i, : v.size] = y, v
    return Y, V


@pytest.mark.parametrize("method", METHODS)
def test_batches_and_single_fits(method):
    Y, V = padded()
    spent = []
    for test in ("z", "knha"):
        fits = [run(mode, lambda: rma_batch(Y, V, method, test), spent) for mode in ("python", "numba")]  # noqa: B023
        assert_same_bits(*fits)
    assert spent[0] > 0  # the Python run did run the loops
    for _, y, v in CASES[::7]:
        assert_same_bits(*(run(mode, lambda: rma(y, v, method, "knha")) for mode in ("python", "numba")))  # noqa: B023


def test_deletion_diagnostics():
    for _, y, v in CASES[1::9]:
        if y.size < 3:
            continue
        for fn in (leave1out, influence):
            assert_same_bits(*(run(mode, lambda: fn(y, v, "REML")) for mode in ("python", "numba")))  # noqa: B023


def test_metaregression_and_permutations():
    rng = np.random.default_rng(7)
    for k in (5, 8, 13, 30):  # ordinary data: the corpus's extremes make X'WX singular
        v = 10.0 ** rng.uniform(-2, 0, k)
        y = rng.normal(0, 1, k) * np.sqrt(v + rng.choice([0.0, 0.1, 1.0]))
        X = np.column_stack([np.ones(k), rng.normal(size=k)])
        for method in ("REML", "DL", "PM"):
            fit = [run(mode, lambda: rma_mods(y, v, X, method, "knha")) for mode in ("python", "numba")]  # noqa: B023
            assert_same_bits(*fit)
        perm = [run(mode, lambda: permutest(y, v, X, iter=50, exact=False, seed=1)) for mode in ("python", "numba")]  # noqa: B023
        assert_same_bits(*perm)


def clean_args(rows, cols):
    y = np.zeros((rows, cols))
    return y, y + 1, np.empty((rows, cols)), np.empty((rows, cols)), np.empty((rows, cols), bool), np.empty(rows, int)


@pytest.mark.parametrize(("budget", "call", "second"), [(1000, 1000, (1, 600)), (10**6, 1000, (3, 400))])
def test_compiled_once_the_budget_is_spent_or_for_a_large_call(monkeypatch, budget, call, second):
    # (1000, 1000): 500 + 600 units pass the process budget; (10**6, 1000): 1200 units pass the per-call limit
    monkeypatch.setattr(_batch, "_spent", 0)
    monkeypatch.setattr(_batch, "PYTHON_BUDGET", budget)
    monkeypatch.setattr(_batch, "PYTHON_CALL", call)
    kernel = _batch._clean
    monkeypatch.setattr(kernel, "compiled", None)
    assert kernel(*clean_args(1, 500)) and kernel.compiled is None and _batch._spent == 500
    assert kernel(*clean_args(*second)) and kernel.compiled is not None and _batch._spent == 500
    assert kernel(*clean_args(1, 10)) and _batch._spent == 500  # compiled from now on


def test_each_kernel_on_random_arrays():
    # many short rows, with the corpus's spread of scales: one operation rounded differently (x ** 2 by pow
    # against x * x differs in ~1 of 1,000 squares) shows in the results of some rows
    rng = np.random.default_rng(11)
    B, K = 6000, 4
    scale = 10.0 ** rng.uniform(-6, 6, (B, 1))
    yi = rng.normal(0, 1, (B, K)) * scale
    vi = 10.0 ** rng.uniform(-12, 6, (B, K)) * scale**2
    yi[:, 1:][rng.random((B, K - 1)) < 0.2] = np.nan  # padding (every row keeps a study)
    batch = _batch.Batch.from_arrays(yi, vi)
    tau2 = 10.0 ** rng.uniform(-8, 4, B) * scale[:, 0] ** 2
    rows = np.flatnonzero(rng.random(B) < 0.7)
    n = rows.size

    def calls():
        out = {"scales": np.empty((4, B)), "top": np.zeros(B, dtype=np.int64), "weights": np.empty((B, K))}
        _batch._row_scales(batch.y, batch.v, batch.mask, out["scales"], out["top"])
        _batch._percent_weights(batch.v, batch.mask, tau2, out["weights"])
        for level in (0, 1, 2):
            out[f"sums{level}"] = np.full((n, 9), np.nan)
            sums = out[f"sums{level}"]
            _batch._weighted_sums(batch.y, batch.v, batch.mask, out["top"], rows, tau2[rows], level, sums)
        grid = tau2[rows, None] * 10.0 ** np.linspace(-6, 3, 7)  # the global scan's profile: both likelihoods,
        for reml in (False, True):  # both loop orders (their bits must agree too: compared below)
            for by_column in (False, True):
                out[f"profile {reml} {by_column}"] = profile = np.empty(grid.shape)
                _batch._loglik_profile(batch.y, batch.v, batch.mask, out["top"], rows, grid, reml, by_column, profile)
                # variances of 1e±250: one factor per product before its log (chunk = 1)
                extreme = _batch.Batch.from_arrays(yi[:50], 10.0 ** np.where(vi[:50] < 1, -250.0, 250.0))
                out[f"extreme {reml} {by_column}"] = profile = np.empty((50, 3))
                _batch._loglik_profile(extreme.y, extreme.v, extreme.mask, extreme.top(), np.arange(50),
                                       np.tile([0.0, 1.0, 1e200], (50, 1)), reml, by_column, profile)  # fmt: skip
        r = np.random.default_rng(3)  # the same Newton inputs for both modes
        x = 10.0 ** r.uniform(-6, 2, B)
        lo = np.where(r.random(B) < 0.5, -1.0, x * r.uniform(0, 1, B))
        hi = np.where(r.random(B) < 0.5, np.inf, x * r.uniform(1, 5, B))
        state = [x, lo, hi, np.zeros(B, dtype=bool), np.zeros(B, dtype=bool), np.zeros(B, dtype=bool),
                 np.zeros(B, dtype=bool), np.zeros(B, dtype=np.int64)]  # fmt: skip
        f, d = r.normal(size=n), r.normal(size=n)
        f_scale, info, unit, cap = (
            np.abs(f) * 10.0 ** r.uniform(0, 18, n),
            r.uniform(0, 2, n),
            10.0 ** r.uniform(-6, 0, B),
            10.0 ** r.uniform(0, 4, B),
        )
        with np.errstate(all="ignore"):
            _batch._newton_update(rows, f, d, f_scale, info, *state[:3], unit, cap, 1e-10, *state[3:])
        out["newton"] = state
        return out

    python, numba = run("python", calls), run("numba", calls)
    assert_same_bits(python, numba)
    for reml in (False, True):
        assert_same_bits(python[f"profile {reml} False"], python[f"profile {reml} True"])
        assert_same_bits(python[f"extreme {reml} False"], python[f"extreme {reml} True"])
        assert np.isfinite(python[f"extreme {reml} False"]).all()
