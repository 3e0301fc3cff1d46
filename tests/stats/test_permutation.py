"""Exact permutation tests (``permutest``) against R metafor 3.8-1 ``permutest(res, exact = TRUE)``.

References:
* tests/reference/metareg_reference.json, written by tests/reference/generate_metareg_reference.R: dat.bcg rows 1-10
  intercept-only (2^10 sign flips), rows 1-7 ~ ablat (2520 distinct permutations: ablat has a tie), rows 1-9
  ~ factor(alloc) (36), rows 1-7 ~ ablat + year (5040, PM/knha), for REML/DL x z/knha.
* tests/reference/metafor_reference_extra.json, written by tests/reference/generate_metafor_reference_extra.R:
  dat.bcg rows 1-8 ~ ablat (10080 permutations) and the intercept-only permutests, when that script ran them.
"""

import math

import numpy as np
import pandas as pd
import pytest
from conftest import assert_close, load_reference

from metarepro.stats.metareg import design_matrix, rma_mods
from metarepro.stats.permutation import COMPTOL, multiset_permutations, permutest

REFERENCE = load_reference("metareg_reference.json")
EXTRA = load_reference("metafor_reference_extra.json")


def design(record):
    if not record.get("moderators"):
        return None
    return design_matrix(pd.DataFrame(record["moderators"]), list(record["moderators"]))


@pytest.mark.parametrize("record", REFERENCE["permutest"],
                         ids=lambda r: f"{r['name']}-{r['method']}-{r['test']}")  # fmt: skip
def test_exact_permutest_matches_metafor(record):
    result = permutest(record["yi"], record["vi"], design(record), method=record["method"], test=record["test"],
                       exact=True)  # fmt: skip
    assert result.exact and result.exact_count == record["exact_iter"] == result.n_permutations
    assert_close(result.zval, record["fit"]["zval"], "observed z")
    assert_close(result.pval, record["pval"], "permutation p")
    assert_close(result.QM_p, record["QMp"], "QM permutation p")


SMALL = [s for s in EXTRA["permutest_small"] if s.get("permutest")]


@pytest.mark.skipif(not SMALL, reason="the extra reference was generated without permutation tests")
@pytest.mark.parametrize("record", SMALL, ids=lambda r: f"{r['method']}-{r['test']}")
def test_exact_permutest_matches_extra_reference(record):
    X = np.column_stack([np.ones(len(record["yi"])), record["ablat"]])
    result = permutest(record["yi"], record["vi"], X, method=record["method"], test=record["test"], exact=True)
    assert result.n_permutations == record["permutest"]["n_permutations"]
    assert_close(result.pval, record["permutest"]["pval"], "p")
    assert_close(result.QM_p, record["permutest"]["QMp"], "QM p")


INTERCEPT = [(d, a) for d in EXTRA["datasets"] for a in d["analyses"] if a.get("permutest")]


@pytest.mark.skipif(not INTERCEPT, reason="the extra reference was generated without permutation tests")
@pytest.mark.parametrize(("dataset", "analysis"), INTERCEPT,
                         ids=[f"{d['name']}-{a['method']}-{a['test']}" for d, a in INTERCEPT])  # fmt: skip
def test_sign_flip_permutest_matches_extra_reference(dataset, analysis):
    result = permutest(dataset["escalc"]["yi"], dataset["escalc"]["vi"], method=analysis["method"],
                       test=analysis["test"], exact=True)  # fmt: skip
    assert_close(result.pval, analysis["permutest"]["pval"], "p")
    assert_close(result.QM_p, analysis["permutest"]["QMp"], "QM p")


def test_multiset_permutations_closed_form():
    """Labels (0, 0, 1, 2): 4!/(2!·1!·1!) = 12 distinct arrangements, each with the right label counts."""
    arrangements = multiset_permutations([2, 1, 1])
    assert arrangements.shape == (12, 4)
    assert len({tuple(a) for a in arrangements}) == 12
    assert all(sorted(a) == [0, 0, 1, 2] for a in arrangements.tolist())
    assert len(multiset_permutations([1] * 5)) == math.factorial(5)


def test_exact_is_chosen_automatically_when_small():
    """metafor's default: exact whenever the distinct permutations (here 2^6 = 64) fit in iter."""
    yi, vi = [0.3, 0.1, 0.5, 0.2, 0.4, 0.25], [0.04, 0.02, 0.05, 0.03, 0.06, 0.02]
    assert permutest(yi, vi, iter=64).exact
    result = permutest(yi, vi, iter=63, seed=7)
    assert not result.exact and result.n_permutations == 63 and result.exact_count == 64


def test_random_permutations_are_seeded():
    """Random mode: numpy's generator (R's random stream cannot be reproduced), observed arrangement included."""
    record = next(r for r in REFERENCE["permutest"] if r["name"] == "bcg1-7_ablat" and r["method"] == "DL")
    X = design(record)
    first = permutest(record["yi"], record["vi"], X, method="DL", test=record["test"], iter=300, seed=11)
    second = permutest(record["yi"], record["vi"], X, method="DL", test=record["test"], iter=300, seed=11)
    assert not first.exact and first.seed == 11
    np.testing.assert_array_equal(first.pval, second.pval)
    assert np.all(first.pval >= 1 / 300) and np.all(first.pval <= 1)
    # Monte Carlo agreement with the exact metafor p-value (binomial sd ≈ 0.023 for p ≈ 0.19)
    assert abs(first.QM_p - record["QMp"]) < 0.1


# ------------------------------------------------------------------------------------------------------------
# A permutation whose refit fails in R (issue 20): metafor leaves it out; metarepro fits it

FAILED_REFITS = load_reference("permutest_failed_refits_reference.json")


def test_exact_permutest_fits_every_permutation_where_metafor_drops_refits_it_cannot_finish():
    """template.yaml's il6_drug_free (IL-6 ~ year, 4 studies, REML + knha; the reference file's inputs): R's
    metafor.R fitted it with threshold = 1e-13, under which Fisher scoring stops in 9 of the 24 permutations and
    permutest leaves them out (p = 11/15 = 0.733); with metafor's default control, or threshold 1e-10, it fits
    all 24 and gives 11/24 = 0.458, as metarepro does (decision: keep fitting every permutation; metafor.R refits
    the permutations with threshold 1e-10; the report says so under an exact test)."""
    ref = FAILED_REFITS
    by = {c["name"]: c for c in ref["by_control"]}
    yi, vi = np.array(ref["yi"]), np.array(ref["vi"])
    X = design_matrix(pd.DataFrame({"year": ref["year"]}), ["year"])
    result = permutest(yi, vi, X, method="REML", test="knha")
    assert result.exact and result.exact_count == len(ref["permutations"]) == 24 == result.n_permutations
    for name in ("default", "threshold_1e10"):  # R fits every permutation: the same p
        assert by[name]["failed"] == 0
        assert_close(result.pval, by[name]["pval"], f"permutation p ({name})")
        assert_close(result.QM_p, by[name]["QMp"], f"QM permutation p ({name})")
    # hand count over R's refits: 11 of the 24 |t*| reach the observed |t|
    z_obs = abs(result.zval[1])
    z_all = np.abs([r["zval"] for r in by["threshold_1e10"]["refit"]])
    assert int(np.sum(z_all >= z_obs - COMPTOL)) == 11
    assert result.pval[1] == 11 / 24
    # under threshold 1e-13 metafor's p is the share among the refits that finished (na.rm = TRUE)
    strict = by["threshold_1e13"]
    failed = np.array([r["error"] != "" for r in strict["refit"]])
    assert failed.sum() == strict["failed"] == 9
    assert all("did not converge" in r["error"] for r, f in zip(strict["refit"], failed, strict=True) if f)
    assert strict["pval"][1] == np.mean(z_all[~failed] >= z_obs - COMPTOL) == 11 / 15
    # each permutation R could not finish is an ordinary fit: ours converges to R's tau^2 (threshold 1e-10)
    for order, theirs in zip(ref["permutations"], by["threshold_1e10"]["refit"], strict=True):
        fit = rma_mods(yi, vi, X.to_numpy()[np.array(order) - 1], method="REML", test="knha")
        assert np.all(fit.converged), order
        assert_close(fit.tau2, theirs["tau2"], f"tau2 of permutation {order}")
        assert_close(fit.zval[1], theirs["zval"], f"t of permutation {order}")
