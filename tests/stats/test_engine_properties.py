"""Invariances the τ² engine must keep, for every estimator and both tests (seeded generators).

* row permutation: the fit does not depend on the order of the studies;
* location shift: y + c shifts estimate, CI and PI by c and changes nothing else;
* scale: y·a, v·a² (a from 1e-6 to 1e6) scale estimate, se, CI, PI by a and τ², its SE and CI by a²,
  and leave p-values, I², H², Q untouched, so the unit of a mean difference cannot change a conclusion;
* duplication: an analysis fitted inside a batch (twice, beside a shorter NaN-padded one) is its single fit.

The data are the hard-case corpus (tests/hard_cases.py) plus ordinary random-effects data. Differences are
measured on each quantity's own scale: an estimate against √(v̄ + τ²), a τ² against τ² + ṽ (metafor's typical
sampling variance), since a τ² error below ε·ṽ changes no weight. The tolerance 1e-9 leaves room for the
rounding of the inputs themselves (y + c, y·a are rounded) carried through ill-conditioned sums.
"""

import numpy as np
import pytest
from conftest import load_reference
from hard_cases import KINDS, corpus

from metarepro import METHODS, rma, rma_batch
from metarepro.stats.rma import KNHA_K1

RTOL = 1e-9


def _ordinary(n, seed=11):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        k = int(rng.integers(3, 30))
        v = rng.uniform(0.01, 0.3, k)
        yield "ordinary", rng.normal(0.3, 1, k) * np.sqrt(v + 0.05), v


CASES = corpus(6, seed=7) + list(_ordinary(8))
TESTS = ("z", "knha")
LOCATION = ("estimate", "ci_low", "ci_high", "pi_low", "pi_high")
SPREAD = ("se",)
TAU2 = ("tau2", "tau2_se", "tau2_ci_low", "tau2_ci_high")
FREE = ("zval", "i2", "i2_ci_low", "i2_ci_high", "h2", "q", "q_p", "pval")


def scales(fit, v):
    """(scale of an estimate, scale of a τ²) for this fit."""
    typical = float(fit.q_df / np.sum((1 / v) * (1 - (1 / v) / np.sum(1 / v)))) if fit.k > 1 else float(v[0])
    return np.sqrt(np.mean(v) + fit.tau2), fit.tau2 + typical


def assert_same(ours, base, fields, scale, label, factor=1.0):
    for name in fields:
        a, b = float(getattr(ours, name)), float(getattr(base, name)) * factor
        if np.isnan(b) or np.isinf(b):
            assert np.isnan(a) == np.isnan(b) and np.isinf(a) == np.isinf(b), f"{label} {name}: {a} vs {b}"
            continue
        assert abs(a - b) <= RTOL * (abs(b) + scale), f"{label} {name}: {a} vs {b} (scale {scale:.3g})"


def assert_free_same(ours, base, label):
    for name in FREE:
        a, b = float(getattr(ours, name)), float(getattr(base, name))
        if (name in ("pval", "q_p") and b < 1e-300) or (np.isinf(b) and a == b):
            continue
        rel = abs(np.log(a / b)) if name in ("pval", "q_p") and a > 0 and b > 0 else abs(a - b) / (abs(b) + 1)
        assert rel <= RTOL * max(1.0, abs(float(ours.zval)) ** 2) or (np.isnan(a) and np.isnan(b)), (
            f"{label} {name}: {a} vs {b}"
        )
    assert ours.converged == base.converged
    assert bool(ours.tau2_ci_high_capped) == bool(base.tau2_ci_high_capped)


@pytest.mark.parametrize("test", TESTS)
@pytest.mark.parametrize("method", METHODS)
def test_row_permutation(method, test):
    perm_rng = np.random.default_rng(3)
    for kind, y, v in CASES:
        base = rma(y, v, method, test)
        loc, t2 = scales(base, v)
        order = perm_rng.permutation(y.size)
        fit = rma(y[order], v[order], method, test)
        label = f"{kind} k={y.size} {method}/{test} permuted"
        assert_same(fit, base, LOCATION + SPREAD, loc, label)
        assert_same(fit, base, TAU2, t2, label)
        assert_free_same(fit, base, label)
        np.testing.assert_allclose(fit.weights, base.weights[order], rtol=RTOL, atol=RTOL, err_msg=label)


@pytest.mark.parametrize("test", TESTS)
@pytest.mark.parametrize("method", METHODS)
def test_location_shift(method, test):
    for kind, y, v in CASES:
        c = 4 * np.abs(y).max() + 7.25 * np.sqrt(np.mean(v))
        # y + c rounds y's low bits; fit the rounded y itself so that the shift is exact ((y + c) − c is
        # exact by Sterbenz's lemma for |y| ≤ c/2), and any difference is the engine's
        y = (y + c) - c
        base = rma(y, v, method, test)
        loc, t2 = scales(base, v)
        fit = rma(y + c, v, method, test)
        label = f"{kind} k={y.size} {method}/{test} shifted by {c:.3g}"
        for name in LOCATION:
            a, b = float(getattr(fit, name)) - c, float(getattr(base, name))
            assert abs(a - b) <= RTOL * (abs(b) + loc + abs(c)), f"{label} {name}: {a} vs {b}"
        assert_same(fit, base, SPREAD, loc, label)
        assert_same(fit, base, TAU2, t2, label)
        assert_same(fit, base, ("i2", "h2", "q"), 1.0, label)


@pytest.mark.parametrize("test", TESTS)
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("a", [1e-6, 1e-3, 1e3, 1e6])
def test_scale(method, test, a):
    for kind, y, v in CASES:
        base = rma(y, v, method, test)
        loc, t2 = scales(base, v)
        fit = rma(y * a, v * a * a, method, test)
        label = f"{kind} k={y.size} {method}/{test} unit x{a:g}"
        assert_same(fit, base, LOCATION + SPREAD, loc * a, label, factor=a)
        assert_same(fit, base, TAU2, t2 * a * a, label, factor=a * a)
        assert_free_same(fit, base, label)
        assert fit.iterations <= 2 * base.iterations + 10, label  # no stopping rule in absolute units


@pytest.mark.parametrize("test", TESTS)
@pytest.mark.parametrize("method", METHODS)
def test_duplication_in_a_batch(method, test):
    for kind, y, v in CASES:
        base = rma(y, v, method, test)
        short = max(1, y.size - 1)
        Y = np.full((3, y.size), np.nan)
        V = np.full((3, y.size), np.nan)
        Y[0], V[0], Y[1, :short], V[1, :short], Y[2], V[2] = y, v, y[:short], v[:short], y, v
        batch = rma_batch(Y, V, method, test)
        for row in (0, 2):
            fit = batch[row]
            label = f"{kind} k={y.size} {method}/{test} batch row {row}"
            loc, t2 = scales(base, v)
            assert_same(fit, base, LOCATION + SPREAD, loc, label)
            assert_same(fit, base, TAU2, t2, label)
            assert_free_same(fit, base, label)
            assert fit.warnings == base.warnings


def test_every_kind_is_in_the_corpus():
    assert {kind for kind, _, _ in CASES} == {*KINDS, "ordinary"}


K1 = load_reference("qprofile_reference.json")["k1"]


@pytest.mark.parametrize("case", K1, ids=[str(c["yi"]) for c in K1])
@pytest.mark.parametrize("method", ["REML", "DL", "PM"])
def test_k1_knha_falls_back_to_z_as_metafor(case, method):
    """metafor (generate_qprofile_reference.R): rma(yi, vi, test = "knha") with k = 1 uses z and warns."""
    fit = rma([case["yi"]], [case["vi"]], method=method, test="knha")
    for name in ("estimate", "se", "zval", "pval", "ci_low", "ci_high"):
        np.testing.assert_allclose(getattr(fit, name), case[name], rtol=1e-12, err_msg=name)
    assert case["warnings"] == [KNHA_K1]
    assert fit.test == case["test"] == "z"  # the test the fit used, as metafor's res$test
    assert fit.warnings == (KNHA_K1,)
    assert fit.to_dict()["warnings"] == [KNHA_K1]
