"""Mixed-effects meta-regression (``rma_mods``) against R metafor 3.8-1.

References:
* tests/reference/metareg_reference.json, written by tests/reference/generate_metareg_reference.R:
  ``rma(yi, vi, mods = ..., method = m, test = t, control = list(threshold = 1e-13, tol = 1e-13, maxiter = 10000))``
  for all nine methods x {z, knha} on dat.bcg (RR; ~ ablat + year, ~ factor(alloc), ~ ablat + factor(alloc) with
  btt = 2 and level = 90), dat.molloy2014 (ZCOR; ~ meanage + factor(design)) and dat.bangertdrowns2004 (SMD;
  ~ length + imag + meta), plus the design matrices ``res$X``.
* tests/reference/metafor_reference_extra.json, written by tests/reference/generate_metafor_reference_extra.R
  (bcg ~ ablat + year and ~ factor(alloc) for REML/DL x z/knha, the intercept-only fits, bcg rows 1-8 ~ ablat).
"""

import numpy as np
import pandas as pd
import pytest
from conftest import assert_close, load_reference
from tolerances import ITERATIVE, difference_atol

from metarepro.stats.metareg import design_matrix, rma_mods
from metarepro.stats.rma import rma
from metarepro.stats.tau2 import METHODS

REFERENCE = load_reference("metareg_reference.json")
EXTRA = load_reference("metafor_reference_extra.json")
CASES = {case["name"]: case for case in REFERENCE["cases"]}
FITS = [(name, i) for name, case in CASES.items() for i in range(len(case["fits"]))]
FIT_IDS = [f"{n}-{CASES[n]['fits'][i]['method']}-{CASES[n]['fits'][i]['test']}" for n, i in FITS]
# our field -> metafor field
FIELDS = {
    "beta": "b", "se": "se", "zval": "zval", "pval": "pval", "ci_low": "ci_lb", "ci_high": "ci_ub", "vb": "vb",
    "QM": "QM", "QM_df": "QMdf", "QM_p": "QMp", "tau2": "tau2", "tau2_se": "se_tau2", "I2": "I2", "H2": "H2",
    "R2": "R2", "QE": "QE", "QE_p": "QEp", "k": "k",
}  # fmt: skip


def frame_of(moderators):
    return pd.DataFrame({name: values for name, values in moderators.items()})


def design_of(case):
    return design_matrix(frame_of(case["moderators"]), list(case["moderators"]))


def test_reference_provenance():
    assert REFERENCE["metafor_version"] == "3.8.1"
    assert REFERENCE["generator"] == "tests/reference/generate_metareg_reference.R"
    methods = {fit["method"] for case in CASES.values() for fit in case["fits"]}
    assert methods == {"EE", "DL", "REML", "ML", "PM", "SJ", "HE", "HS", "EB"}


@pytest.mark.parametrize("name", CASES)
def test_design_matrix_matches_model_matrix(name):
    case = CASES[name]
    X = design_of(case)
    assert list(X.columns) == case["X"]["names"]
    np.testing.assert_array_equal(X.to_numpy(), np.array(case["X"]["rows"], dtype=float))


@pytest.mark.parametrize(("name", "index"), FITS, ids=FIT_IDS)
def test_fit_matches_metafor(name, index):
    case = CASES[name]
    reference = case["fits"][index]
    btt = None if case.get("btt") is None else [b - 1 for b in case["btt"]]
    fit = rma_mods(case["yi"], case["vi"], design_of(case), method=reference["method"], test=reference["test"],
                   level=case["level"], btt=btt)  # fmt: skip
    assert fit.converged
    assert list(fit.names) == reference["names"]
    assert [b + 1 for b in fit.btt] == reference["btt"]
    assert fit.p == reference["p"] and fit.QE_df == reference["k"] - reference["p"]
    label = f"{name} {reference['method']}/{reference['test']}"
    atol = {}
    threshold = REFERENCE["rma_control"]["threshold"]
    if reference["method"] in ("ML", "REML") and 0 < reference["tau2"] <= threshold:
        # metafor's Fisher scoring stopped within its threshold of the boundary maximum τ² = 0 (the score is
        # negative at 0, the maximum is on the boundary): ours is the boundary itself. I² = 100τ²/(ṽ+τ²) and
        # H² = 1 + τ²/ṽ then differ by up to 100·threshold/ṽ and threshold/ṽ.
        assert fit.tau2 == 0
        typical_v = reference["tau2"] * (100 / reference["I2"] - 1)
        atol = {"tau2": threshold, "I2": 100 * threshold / typical_v, "H2": threshold / typical_v}
    for ours, theirs in FIELDS.items():
        tol = {"atol": atol[ours]} if ours in atol else {}
        assert_close(np.ravel(getattr(fit, ours)), reference[theirs], f"{label} {ours}", **tol)
    if reference["test"] == "z":
        assert fit.s2 == 1


EXTRA_BCG = EXTRA["datasets"][0]
EXTRA_ANALYSES = [a for a in EXTRA_BCG["analyses"] if "metareg" in a]


def _extra_compare(fit, record, label):
    coefficients = record["coefficients"]
    assert list(fit.names) == coefficients["names"]
    pairs = {"beta": coefficients["b"], "se": coefficients["se"], "zval": coefficients["zval"],
             "pval": coefficients["pval"], "ci_low": coefficients["ci_lb"], "ci_high": coefficients["ci_ub"],
             "QM": record["QM"], "QM_df": record["QMdf"], "QM_p": record["QMp"], "tau2": record["tau2"],
             "tau2_se": record["se_tau2"], "I2": record["I2"], "H2": record["H2"], "R2": record["R2"],
             "QE": record["QE"], "QE_p": record["QEp"]}  # fmt: skip
    for ours, reference in pairs.items():
        assert_close(np.ravel(getattr(fit, ours)), reference, f"{label} {ours}")


@pytest.mark.parametrize("analysis", EXTRA_ANALYSES, ids=lambda a: f"{a['method']}-{a['test']}")
def test_extra_reference_bcg(analysis):
    """bcg ~ ablat + year, ~ factor(alloc) and the intercept-only model as in the other helper's R script."""
    yi, vi = EXTRA_BCG["escalc"]["yi"], EXTRA_BCG["escalc"]["vi"]
    frame = frame_of(EXTRA_BCG["moderators"])
    method, test = analysis["method"], analysis["test"]
    fit = rma_mods(yi, vi, design_matrix(frame, ["ablat", "year"]), method=method, test=test)
    _extra_compare(fit, analysis["metareg"], f"ablat+year {method}/{test}")
    fit = rma_mods(yi, vi, design_matrix(frame, ["alloc"]), method=method, test=test)
    _extra_compare(fit, analysis["metareg_subgroup"], f"factor(alloc) {method}/{test}")
    fit = rma_mods(yi, vi, np.ones((len(yi), 1)), method=method, test=test)
    _extra_compare(fit, analysis["fit"], f"intercept-only {method}/{test}")


def test_ragged_batch_equals_metafor():
    """Two regressions with different k in one NaN-padded batch; each matches its own metafor fit."""
    small = next(s for s in EXTRA["permutest_small"] if s["method"] == "REML" and s["test"] == "knha")
    seven = next(p for p in REFERENCE["permutest"] if p["name"] == "bcg1-7_ablat" and p["method"] == "REML"
                 and p["test"] == "knha")  # fmt: skip
    width = 8
    yi, vi, X = np.full((2, width), np.nan), np.full((2, width), np.nan), np.zeros((2, width, 2))
    for row, (y, v, ablat) in enumerate([(small["yi"], small["vi"], small["ablat"]),
                                         (seven["yi"], seven["vi"], seven["moderators"]["ablat"])]):  # fmt: skip
        yi[row, : len(y)], vi[row, : len(v)] = y, v
        X[row, : len(y)] = np.column_stack([np.ones(len(y)), ablat])
    batch = rma_mods(yi, vi, X, method="REML", test="knha")
    assert batch.k.tolist() == [8, 7] and len(batch) == 2
    for row, record in enumerate([small["fit"], seven["fit"]]):
        beta = record["coefficients"]["b"] if "coefficients" in record else record["b"]
        se = record["coefficients"]["se"] if "coefficients" in record else record["se"]
        assert_close(batch.beta[row], beta, f"batch row {row} beta")
        assert_close(batch.se[row], se, f"batch row {row} se")
        assert_close(batch.tau2[row], record["tau2"], f"batch row {row} tau2")
        assert_close(batch.QM_p[row], record["QMp"], f"batch row {row} QMp")


def test_missing_moderator_rows_are_dropped():
    """A NaN in X leaves that study out, as metafor's na.omit: same as fitting the complete rows."""
    case = CASES["bcg_ablat_year"]
    X = design_of(case)
    X_missing = X.copy()
    X_missing.loc[0, "ablat"] = np.nan
    with_nan = rma_mods(case["yi"], case["vi"], X_missing)
    complete = rma_mods(case["yi"][1:], case["vi"][1:], X.iloc[1:])
    assert with_nan.k == 12
    np.testing.assert_allclose(with_nan.beta, complete.beta, **ITERATIVE)
    np.testing.assert_allclose(with_nan.tau2, complete.tau2, **ITERATIVE)


def test_predict_closed_form():
    """predict(): x·β̂ and √(xᵀVx), by hand from the fitted β̂ and vb.

    Both are sums with large terms of both signs (1970·β̂_year), and the CI half-width is a difference of two
    such numbers, so each is compared with an absolute tolerance from its terms (tests/tolerances.py).
    """
    case = CASES["bcg_ablat_year"]
    fit = rma_mods(case["yi"], case["vi"], design_of(case))
    x = np.array([[1.0, 30.0, 1970.0]])
    out = fit.predict(x)
    terms = x[0] * fit.beta
    pred = terms.sum()
    quad = np.outer(x[0], x[0]) * fit.vb
    se = np.sqrt(quad.sum())
    se_atol = difference_atol(quad) / (2 * se)  # error of √s is (error of s) / (2√s)
    z = 1.959963984540054
    np.testing.assert_allclose(out["pred"], pred, rtol=0, atol=difference_atol(terms))
    half = out["ci_high"] - out["pred"]
    np.testing.assert_allclose(half, z * se, rtol=0, atol=difference_atol(terms, out["ci_high"]) + z * se_atol)
    half_pi = out["pi_high"] - out["pred"]
    se_pi = np.sqrt(se**2 + fit.tau2)
    np.testing.assert_allclose(half_pi, z * se_pi, rtol=0,
                               atol=difference_atol(terms, out["pi_high"]) + z * se_atol * se / se_pi)  # fmt: skip


def test_design_matrix_text_levels_sorted():
    frame = pd.DataFrame({"dose": [1.0, 2.0, 3.0, 4.0], "arm": ["b", "a", "c", "a"]})
    X = design_matrix(frame, ["dose", "arm"])
    assert list(X.columns) == ["intrcpt", "dose", "factor(arm)b", "factor(arm)c"]
    np.testing.assert_array_equal(X["factor(arm)b"], [1, 0, 0, 0])
    np.testing.assert_array_equal(X["factor(arm)c"], [0, 0, 1, 0])


def test_invalid_models_are_refused():
    yi, vi = [0.1, 0.2, 0.3], [0.01, 0.02, 0.03]
    with pytest.raises(ValueError, match="full rank"):
        rma_mods(yi, vi, np.column_stack([np.ones(3), [1, 2, 3], [2, 4, 6]]), method="EE")
    with pytest.raises(ValueError, match="k ≥"):
        rma_mods(yi, vi, np.column_stack([np.ones(3), [1, 2, 3], [1, 0, 0]]), method="REML")
    with pytest.raises(ValueError, match="method"):
        rma_mods(yi, vi, np.ones((3, 1)), method="XX")


DEGENERATE = load_reference("degenerate_metareg_reference.json")["fits"]


@pytest.mark.parametrize("ref", DEGENERATE, ids=lambda r: f"{r['name']}-{r['method']}-{r['test']}")
def test_equal_yi_as_metafor(ref):
    """Every yi equal (tests/reference/generate_degenerate_metareg_reference.R, metafor 3.8-1): with knha the
    scale s2 is 0, so se = 0, t = ±Inf, p = 0, the CI is the estimate and QM is NA; with z an ordinary fit."""
    x = np.asarray(ref["x"], dtype=float)
    fit = rma_mods(ref["yi"], ref["vi"], np.column_stack([np.ones_like(x), x]), ref["method"], ref["test"], 95)
    # the intercept is yi's common value; the slope is 0 up to rounding of the solve (R: 3e-18 and 3e-15)
    slope_atol = 1e-9 * max(1.0, abs(ref["beta"][0]))
    assert_close(fit.beta[0], ref["beta"][0], "intercept")
    assert abs(fit.beta[1]) < slope_atol and abs(ref["beta"][1]) < slope_atol
    assert_close(fit.tau2, ref["tau2"], "tau2", atol=1e-10)
    if ref["test"] == "knha":
        assert fit.s2 == ref["s2w"] == 0
        assert list(fit.se) == ref["se"] == [0, 0] and list(fit.pval) == ref["pval"] == [0, 0]
        assert np.isinf(fit.zval[0]) and ref["zval"] == [None, None]  # R's Inf, written as null
        assert list(fit.ci_low) == list(fit.beta) == list(fit.ci_high)
        assert np.isnan(fit.QM) and np.isnan(fit.QM_p) and ref["QM"] is None and ref["QMp"] is None
    else:
        assert_close(fit.se, ref["se"], "se")
        assert_close(fit.pval[0], ref["pval"][0], "intercept p")
        assert abs(fit.QM) < 1e-12 and ref["QM"] < 1e-12


@pytest.mark.parametrize("method", [m for m in METHODS if m != "EE"])  # EE: adjusted R² of the regression
def test_pseudo_r2_is_against_the_tau2_rma_gives_the_same_rows(method):
    """R² = max(0, 100(τ²_RE − τ²)/τ²_RE) with τ²_RE the τ² of rma() on the same rows, to the bit (metafor: the
    model refitted without moderators)."""
    rng = np.random.default_rng(3)
    for _ in range(20):
        k = int(rng.integers(5, 40))
        vi = rng.uniform(0.01, 0.5, k)
        x = rng.normal(size=k)
        yi = 0.2 + 0.3 * x + rng.normal(0, np.sqrt(vi + 0.05))
        fit = rma_mods(yi, vi, x, method=method)
        tau2_re = rma(yi, vi, method=method).tau2
        expected = 0.0 if tau2_re == 0 else max(0.0, 100 * (tau2_re - fit.tau2) / tau2_re)
        assert float(fit.R2) == expected


def test_the_fits_a_design_keeps_change_no_bit(monkeypatch):
    """A Design keeps its last fits (by τ² and centring) and shares W^½X's QR between centred and plain y; with no
    fit kept, every field of random single and batched (padded) meta-regressions, every τ² method, is the same to the
    bit; a fit asked for at level 1 after one at level 2 carries no Σlog(v + τ²), as a new one."""
    from metarepro._core import wls

    rng = np.random.default_rng(12)
    cases = []
    for _ in range(12):
        k = int(rng.integers(6, 30))
        x = rng.normal(size=(k, 2))
        vi = rng.uniform(0.01, 1.0, k) * 10.0 ** rng.integers(-2, 2, k)
        cases.append((0.1 + x @ [0.3, -0.2] + rng.normal(0, np.sqrt(vi + 0.1)), vi, x))
    batched_y = np.full((3, 20), np.nan)
    batched_v = np.full((3, 20), np.nan)
    for b in range(3):
        batched_y[b, : 15 + b], batched_v[b, : 15 + b] = rng.normal(size=15 + b), rng.uniform(0.05, 0.5, 15 + b)
    batched_x = np.stack([np.ones((3, 20)), rng.normal(size=(3, 20))], axis=-1)  # intercept and one moderator

    def fits():
        out = [rma_mods(yi, vi, x, method=m) for yi, vi, x in cases for m in METHODS]
        return out + [rma_mods(batched_y, batched_v, batched_x, method=m) for m in ("REML", "ML", "DL")]

    kept = fits()
    monkeypatch.setattr(wls, "FITS_KEPT", 0)
    fresh = fits()
    for a, b in zip(kept, fresh, strict=True):
        for name in ("beta", "se", "tau2", "se_tau2", "QE", "QM", "I2", "H2", "R2", "iterations"):
            assert np.array_equal(np.asarray(getattr(a, name)), np.asarray(getattr(b, name)), equal_nan=True), name
    monkeypatch.undo()
    design = wls.Design(*(np.ones((1, 4)), np.zeros((1, 4)), np.full((1, 4), 0.5), np.ones((1, 4, 1)),
                          np.ones((1, 4), bool), np.array([4])))  # fmt: skip
    assert design.at(np.zeros(1), level=2).log_det is not None and design.at(np.zeros(1)).log_det is None
