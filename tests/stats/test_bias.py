"""Small-study effects (metarepro.stats.bias) against R metafor 3.8-1.

Expected values come only from committed R scripts or hand calculations shown here:

* ``tests/reference/generate_metafor_reference_extra.R`` → ``metafor_reference_extra.json``: ``regtest(res,
  model = "rma"|"lm")``, ``ranktest(res)``, ``trimfill(res, estimator = "L0"|"R0")``, ``fsn(yi, vi, type = ...)``
  on dat.bcg, dat.normand1999, dat.molloy2014 (ties in ranktest).
* ``tests/reference/generate_bias_reference.R`` → ``bias_reference.json``: ``regtest`` with predictor "sei" and "vi"
  for both models and every τ² method × test; ``trimfill(res, estimator, control = tight, test = res$test)``
  (fills on the right: dat.bcg; on the left: dat.molloy2014, dat.hackshaw1998, k = 60 synthetic); ``ranktest``
  with k = 60 (exact p, no ties); ``fsn`` with other alpha, weighted Orwin and a given target.
"""

import math

import numpy as np
import pytest
from conftest import assert_close, load_reference
from tolerances import FORMULA, conditioned_rtol, difference_atol

from metarepro.stats.bias import LOW_POWER_NOTE, fsn, low_power_note, pet_peese, ranktest, regtest, trimfill
from metarepro.stats.rma import rma

EXTRA = load_reference("metafor_reference_extra.json")
BIAS = load_reference("bias_reference.json")

pytest.importorskip(
    "metarepro.stats.metareg", reason="the mixed-effects Egger test and trim-and-fill's side need rma_mods"
)


def _data(ds):
    if "escalc" in ds:
        return np.array(ds["escalc"]["yi"]), np.array(ds["escalc"]["vi"])
    return np.array(ds["yi"]), np.array(ds["vi"])


def _extra_cases():
    return [pytest.param(ds, a, id=f"{ds['name']}-{a['method']}-{a['test']}")
            for ds in EXTRA["datasets"] for a in ds["analyses"]]  # fmt: skip


def _bias_cases():
    return [pytest.param(ds, a, id=f"{ds['name']}-{a['method']}-{a['test']}")
            for ds in BIAS["datasets"] for a in ds["analyses"] if "regtest" in a]  # fmt: skip


def _check_regtest(ours, ref):
    assert_close(ours.zval, ref["zval"], "zval")
    assert_close(ours.pval, ref["pval"], "pval")
    assert_close(ours.dfs, ref["dfs"], "dfs")
    assert_close(ours.estimate, ref["limit_estimate"], "limit estimate")
    assert_close([ours.ci_low, ours.ci_high], [ref["limit_ci_lb"], ref["limit_ci_ub"]], "limit CI")
    assert_close(ours.beta, ref["fit_b"], "coefficients")
    assert_close(ours.se, ref["fit_se"], "coefficient se")
    assert_close(ours.tau2, ref["fit_tau2"], "tau2")


# ------------------------------------------------------------------------------------------------------------
# regtest
# ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("ds", "a"), _extra_cases())
@pytest.mark.parametrize("model", ["rma", "lm"])
def test_regtest_extra(ds, a, model):
    yi, vi = _data(ds)
    _check_regtest(regtest(yi, vi, model, "sei", a["method"], a["test"]), a[f"regtest_{model}"])


@pytest.mark.parametrize(("ds", "a"), _bias_cases())
@pytest.mark.parametrize(("model", "predictor"), [("rma", "sei"), ("rma", "vi"), ("lm", "sei"), ("lm", "vi")])
def test_regtest_all_methods(ds, a, model, predictor):
    yi, vi = _data(ds)
    ref = a["regtest"][f"{model}_{predictor}"]
    ours = regtest(yi, vi, model, predictor, a["method"], a["test"])
    _check_regtest(ours, ref)
    assert_close([ours.intercept_zval, ours.intercept_pval], [ref["fit_zval"][0], ref["fit_pval"][0]], "intercept")


def test_regtest_lm_hand_calculation():
    """Exact data on a line y = 1 + 2·sei have zero residuals: intercept 1, slope 2, se 0 (hand check)."""
    vi = np.array([0.01, 0.04, 0.09, 0.16])
    yi = 1 + 2 * np.sqrt(vi)
    out = regtest(yi, vi, model="lm")
    X = np.column_stack([np.ones(4), np.sqrt(vi)])
    np.testing.assert_allclose(out.beta, [1.0, 2.0], rtol=conditioned_rtol(X, floor=0))
    # residuals are rounding errors of yi, so se is too
    np.testing.assert_allclose(out.se, [0.0, 0.0], atol=difference_atol(yi) * np.linalg.cond(X))


# ------------------------------------------------------------------------------------------------------------
# PET-PEESE (the two regtest limit estimates and the two-sided rule)
# ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("ds", "a"), _bias_cases())
@pytest.mark.parametrize("model", ["rma", "lm"])
def test_pet_peese(ds, a, model):
    yi, vi = _data(ds)
    pet, peese = a["regtest"][f"{model}_sei"], a["regtest"][f"{model}_vi"]
    ours = pet_peese(yi, vi, model, a["method"], a["test"])
    use_peese = pet["fit_pval"][0] < 0.05
    assert ours.use_peese == use_peese
    chosen = peese if use_peese else pet
    assert_close([ours.estimate, ours.ci_low, ours.ci_high],
                 [chosen["limit_estimate"], chosen["limit_ci_lb"], chosen["limit_ci_ub"]], "PET-PEESE")  # fmt: skip
    assert_close(ours.pet.estimate, pet["limit_estimate"], "PET")
    assert_close(ours.peese.estimate, peese["limit_estimate"], "PEESE")


# ------------------------------------------------------------------------------------------------------------
# ranktest
# ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ds", [pytest.param(ds, id=ds["name"]) for ds in EXTRA["datasets"] + BIAS["datasets"]])
def test_ranktest(ds, request):
    yi, vi = _data(ds)
    ref = ds["analyses"][0]["ranktest"] if "escalc" in ds else ds["ranktest"]
    if yi.size < 3:
        pytest.skip("ranktest needs k >= 3 here")
    ours = ranktest(yi, vi)
    assert_close(ours.tau, ref["tau"], "tau")
    assert_close(ours.pval, ref["pval"], "pval")
    assert ours.exact == (not any("ties" in w for w in ref["warnings"]))


def test_ranktest_has_large_untied_case():
    ds = next(d for d in BIAS["datasets"] if d["name"] == "synthetic_k60")
    assert ranktest(*_data(ds)).exact


# ------------------------------------------------------------------------------------------------------------
# trimfill
# ------------------------------------------------------------------------------------------------------------


def _check_trimfill(ours, ref):
    assert ours.k0 == ref["k0"]
    assert ours.side == ref["side"]
    assert_close(ours.se_k0, ref["se_k0"], "se_k0")
    assert_close(ours.p_k0, ref["p_k0"], "p_k0")
    np.testing.assert_array_equal(ours.fill, ref["fill"])
    assert_close(ours.yi, ref["yi"], "filled yi")
    assert_close(ours.vi, ref["vi"], "filled vi")
    fit = ours.fit
    for field, name in [("k", "k"), ("estimate", "estimate"), ("se", "se"), ("zval", "zval"), ("pval", "pval"),
                        ("ci_low", "ci_lb"), ("ci_high", "ci_ub"), ("tau2", "tau2"), ("i2", "I2"), ("q", "QE"),
                        ("q_p", "QEp")]:  # fmt: skip
        assert_close(getattr(fit, field), ref[name], f"trimfill fit {field}")


@pytest.mark.parametrize(("ds", "a"), _bias_cases())
@pytest.mark.parametrize("estimator", ["L0", "R0"])
def test_trimfill_all_methods(ds, a, estimator):
    """R: trimfill(res, estimator, control = tight, test = res$test) -- tight convergence in every internal fit."""
    yi, vi = _data(ds)
    _check_trimfill(trimfill(yi, vi, estimator, method=a["method"], test=a["test"]), a["trimfill"][estimator])


@pytest.mark.parametrize(("ds", "a"), _extra_cases())
@pytest.mark.parametrize("estimator", ["L0", "R0"])
def test_trimfill_metafor_defaults(ds, a, estimator):
    """R: trimfill(res, estimator) with no extra arguments. metafor 3.8-1 then refits filled data with its default
    test = "z" (so test="z" here when k0 > 0) and its default control (threshold 1e-5): only fits that do not
    iterate (DL) or that return the original model (k0 = 0) can match to 1e-8."""
    ref = a[f"trimfill_{estimator}"]
    if ref["k0"] > 0 and a["method"] != "DL":
        pytest.skip("metafor's trimfill refits with its default (loose) convergence; see bias_reference.json")
    yi, vi = _data(ds)
    test = "z" if ref["k0"] > 0 else a["test"]
    ours = trimfill(yi, vi, estimator, method=a["method"], test=test)
    _check_trimfill(ours, {**ref, "zval": ref["zval"]})


@pytest.mark.parametrize(("ds", "a"), _bias_cases())
@pytest.mark.parametrize("estimator", ["L0", "R0"])
def test_trimfill_and_pet_peese_take_the_fits_a_job_has(ds, a, estimator):
    """An analysis job passes the fits it already has: the model (trim-and-fill's result when k0 = 0) and the
    mixed-effects Egger regression (its slope is trim-and-fill's side; it is PET). The results are metafor's
    (same reference as above) and exactly those of the functions fitting alone."""
    yi, vi = _data(ds)
    options = {"method": a["method"], "test": a["test"]}
    egger = regtest(yi, vi, **options)
    given = trimfill(yi, vi, estimator, **options, fit=rma(yi, vi, **options), side_fit=egger.fit)
    _check_trimfill(given, a["trimfill"][estimator])
    alone = trimfill(yi, vi, estimator, **options)
    assert (given.k0, given.side, given.fit.estimate, given.fit.se) == (alone.k0, alone.side, alone.fit.estimate,
                                                                         alone.fit.se)  # fmt: skip
    shared, own = pet_peese(yi, vi, **options, pet=egger), pet_peese(yi, vi, **options)
    assert shared.pet is egger and (shared.estimate, shared.ci_low, shared.use_peese) == (own.estimate, own.ci_low,
                                                                                           own.use_peese)  # fmt: skip


def test_trimfill_fills_both_sides():
    sides = {a["trimfill"]["L0"]["side"] for ds in BIAS["datasets"] for a in ds["analyses"]
             if "trimfill" in a and a["trimfill"]["L0"]["k0"] > 0}  # fmt: skip
    assert sides == {"left", "right"}


def test_trimfill_explicit_side_and_rounding():
    """Hand check of one L0 step: y = (−1, 0, 1, 2, 6) with equal variances; side 'left' given.

    EE mean 1.6; centred (−2.6, −1.6, −0.6, 0.4, 4.4); ranks of |c| (4, 3, 2, 1, 5); S_r = 1 + 5 = 6;
    k0 = (4·6 − 30)/9 = −0.667 → 0: nothing filled, and the fit is the plain model.
    """
    yi, vi = np.array([-1.0, 0.0, 1.0, 2.0, 6.0]), np.full(5, 0.1)
    out = trimfill(yi, vi, "L0", side="left", method="EE")
    assert out.k0 == 0 and out.fill.sum() == 0
    assert out.fit.estimate == pytest.approx(1.6, rel=FORMULA)


# ------------------------------------------------------------------------------------------------------------
# fsn
# ------------------------------------------------------------------------------------------------------------

FSN_ARGS = {
    "Rosenthal": {"type": "Rosenthal"}, "Rosenthal_alpha01": {"type": "Rosenthal", "alpha": 0.01},
    "Orwin": {"type": "Orwin"}, "Orwin_weighted": {"type": "Orwin", "weighted": True},
    "Orwin_target": {"type": "Orwin", "target": 0.05},
    "Rosenberg": {"type": "Rosenberg"}, "Rosenberg_alpha10": {"type": "Rosenberg", "alpha": 0.10},
}  # fmt: skip


@pytest.mark.parametrize("ds", [pytest.param(ds, id=ds["name"]) for ds in EXTRA["datasets"] + BIAS["datasets"]])
def test_fsn(ds):
    yi, vi = _data(ds)
    for name, ref in ds["fsn"].items():
        ours = fsn(yi, vi, **FSN_ARGS[name])
        assert ours.fsnum == ref["fsnum"], name
        assert_close(ours.pval, ref["pval"], f"{name} pval")
        assert_close(ours.meanes, ref["meanes"], f"{name} meanes")
        assert_close(ours.target, ref["target"], f"{name} target")


def test_fsn_rounds_up_unless_integer():
    """Rosenthal: N = k(z̄/z₀.₉₅)² − k is an integer up to rounding error here: rounded, not raised (hand check)."""
    from scipy import stats

    z = stats.norm.isf(0.05) * np.sqrt(2)
    yi, vi = np.full(4, z), np.ones(4)  # zᵢ = z, z̄ = 4z/2 = 2z → N = 4·4·2 − 4 = 28
    assert fsn(yi, vi).fsnum == 28


# ------------------------------------------------------------------------------------------------------------
# low-power note
# ------------------------------------------------------------------------------------------------------------


def test_low_power_note():
    assert low_power_note(9) == LOW_POWER_NOTE
    assert "13.3.5.4" in LOW_POWER_NOTE and "10 studies" in LOW_POWER_NOTE
    assert low_power_note(10) is None


def test_odds_ratio_note_only_for_odds_ratios():
    """The Handbook's caveat for 2×2 tables (5.1, 10.4.3.1): Egger's test with log odds ratios is biased toward false
    positives; said for OR and Peto's OR, not for ratios whose SE the tests do not share this way."""
    from metarepro.stats.bias import ODDS_RATIO_NOTE, odds_ratio_note

    assert odds_ratio_note("OR") == odds_ratio_note("PETO") == ODDS_RATIO_NOTE
    assert "false positives" in ODDS_RATIO_NOTE and "Harbord" in ODDS_RATIO_NOTE and "Peters" in ODDS_RATIO_NOTE
    assert all(odds_ratio_note(m) is None for m in ("RR", "RD", "SMD", "PLO"))


REGTEST_NI = load_reference("regtest_ni_reference.json")  # tests/reference/generate_regtest_ni_reference.R


@pytest.mark.parametrize("case", sorted(REGTEST_NI["cases"]))
def test_regtest_with_sample_size_predictors_matches_metafor(case):
    """metafor's regtest(..., predictor = "ni"/"ninv"/"sqrtni"/"sqrtninv", ni = n1i + n2i) on dat.linde2005's log
    odds ratios; no limit estimate for ni and sqrtni (metafor gives none)."""
    from tolerances import ITERATIVE

    model, predictor = case.split("_", 1)
    ref = REGTEST_NI["cases"][case]
    yi, vi, ni = (np.array(REGTEST_NI[k], dtype=float) for k in ("yi", "vi", "ni"))
    ours = regtest(yi, vi, model=model, predictor=predictor, ni=ni, method="REML")
    tol = ITERATIVE if model == "rma" else {"rtol": FORMULA, "atol": 0}  # lm: a weighted least-squares closed form
    assert_close(ours.zval, ref["zval"], f"{case} zval", **tol)
    assert_close(ours.pval, ref["pval"], f"{case} pval", **tol)
    if predictor in ("ni", "sqrtni"):
        assert ref["est"] is None and np.isnan(ours.estimate)
    else:
        for mine, theirs in (("estimate", "est"), ("ci_low", "ci_lb"), ("ci_high", "ci_ub")):
            assert_close(getattr(ours, mine), ref[theirs], f"{case} {mine}", **tol)
    with pytest.raises(ValueError, match="needs the studies' sample sizes: give ni"):
        regtest(yi, vi, model=model, predictor=predictor)


@pytest.mark.parametrize("mode", ["python", "numba"])
def test_trimfill_ranks_by_merging_equal_a_stable_sort(mode, monkeypatch):
    """The one-pass ranks of |cᵢ| (sorted cᵢ: two ascending runs merged) are R's rank(..., ties = "first"), i.e.
    the positions of a stable sort of |cᵢ|, with ties inside the negative run, across the runs and at 0; run as
    Python and compiled."""
    from metarepro._core import batch
    from metarepro.stats.bias import _abs_ranks

    monkeypatch.setattr(batch, "PYTHON_BUDGET", math.inf if mode == "python" else -1)
    monkeypatch.setattr(batch, "PYTHON_CALL", math.inf if mode == "python" else -1)
    monkeypatch.setattr(_abs_ranks, "compiled", None)
    rng = np.random.default_rng(5)
    for trial in range(300):
        k = int(rng.integers(1, 60))
        values = rng.integers(-6, 7, k) / 4 if trial % 2 else rng.normal(size=k)  # many ties, or none
        centred = np.sort(values - rng.choice([0.0, 0.25, values[0]]))
        expected = np.empty(k)
        expected[np.argsort(np.abs(centred), kind="stable")] = np.arange(1, k + 1)
        ranks = np.empty(k)
        _abs_ranks(centred, ranks)
        np.testing.assert_array_equal(ranks, expected)
    assert (_abs_ranks.compiled is None) == (mode == "python")
