"""The metafor-shaped API: ``rma(yi, vi | sei, mods=..., intercept=...)``, metafor's names on every fitted object,
metafor's methods on the fit (``leave1out()``, ``influence()``, ``regtest()``, ...) and metafor's print of
``robust()`` and ``rma_mv()``.

References: tests/reference/api_reference.json (tests/reference/generate_api_reference.R: metafor 3.8-1's ``rma``
with ``sei``, a moderator vector, ``intercept = FALSE`` and a moderator matrix, and ``confint`` of each, tight
control) and the printed
text in tests/reference/print/ (tests/reference/generate_print_reference.R). Fitted values are τ² roots and smooth
functions of them: ITERATIVE (tests/tolerances.py). The methods on a fit must give exactly the values of the
functions they delegate to (the same computation from the same τ²), so those are compared for equality.
"""

import numpy as np
import pandas as pd
import pytest
from conftest import assert_close, load_reference
from print_reference import DATA, assert_prints_like_metafor
from tolerances import ITERATIVE

from metarepro import MetaregResult, RmaResult, rma, rma_mv, robust
from metarepro.stats import bias, influence
from metarepro.stats.metareg import model_matrix, rma_mods
from metarepro.stats.permutation import permutest

REFERENCE = load_reference("api_reference.json")
NORMAND, KNAPP = REFERENCE["data"]["normand1999"], REFERENCE["data"]["knapp2017"]
FIELDS = [("beta", "b"), ("se", "se"), ("zval", "zval"), ("pval", "pval"), ("ci_lb", "ci_lb"), ("ci_ub", "ci_ub"),
          ("tau2", "tau2"), ("se_tau2", "se_tau2"), ("QE", "QE"), ("QEp", "QEp"), ("I2", "I2"), ("H2", "H2"),
          ("k", "k"), ("p", "p")]  # fmt: skip
FITS = {
    "sei_reml": lambda: rma(NORMAND["yi"], sei=np.sqrt(NORMAND["vi"])),
    "sei_dl_knha": lambda: rma(NORMAND["yi"], sei=np.sqrt(NORMAND["vi"]), method="DL", test="knha"),
    "mods_vector_reml_knha": lambda: rma(KNAPP["yi"], KNAPP["vi"], mods=KNAPP["difficulty"], test="knha"),
    "mods_vector_reml_z": lambda: rma(KNAPP["yi"], KNAPP["vi"], mods=KNAPP["difficulty"]),
    "mods_vector_no_intercept": lambda: rma(KNAPP["yi"], KNAPP["vi"], mods=KNAPP["difficulty"], intercept=False),
    "mods_matrix_sei_ml": lambda: rma(KNAPP["yi"], sei=np.sqrt(KNAPP["vi"]), method="ML",
                                      mods=pd.DataFrame({"difficulty": KNAPP["difficulty"], "year": KNAPP["year"]})),
}  # fmt: skip


@pytest.mark.parametrize("name", FITS)
def test_rma_as_metafor_calls_it(name):
    ref, fit = REFERENCE["fits"][name], FITS[name]()
    assert list(np.atleast_1d(getattr(fit, "names", ["intrcpt"]))) == list(np.atleast_1d(ref["names"]))
    for ours, theirs in FIELDS:
        assert_close(getattr(fit, ours), ref[theirs], f"{name} {ours}", **ITERATIVE)
    if isinstance(fit, MetaregResult):
        for ours, theirs in (("QM", "QM"), ("QMp", "QMp"), ("QMdf", "QMdf"), ("R2", "R2")):
            assert_close(np.ravel(getattr(fit, ours)), ref[theirs], f"{name} {ours}", **ITERATIVE)
    # confint(fit): the Q-profile CIs of the (residual) τ², with χ²(k − p) quantiles for a meta-regression
    ci = fit.confint()
    assert list(ci.index) == ref["confint"]["rows"]
    for column in ("estimate", "ci_lb", "ci_ub"):
        assert_close(ci[column], ref["confint"][column], f"{name} confint {column}", **ITERATIVE)


def test_a_moderator_vector_gets_an_intercept_in_rma_mods_too():
    """rma_mods given a 1-D moderator fits the model with an intercept, as metafor's mods = x (it used to fit the
    model without one); a 2-D X stays the whole design matrix, so a model without intercept is an X of one column."""
    ref = REFERENCE["fits"]
    with_intercept = rma_mods(KNAPP["yi"], KNAPP["vi"], KNAPP["difficulty"], test="knha")
    assert with_intercept.names == ("intrcpt", "mods")
    assert_close(with_intercept.beta, ref["mods_vector_reml_knha"]["b"], "beta", **ITERATIVE)
    without = rma_mods(KNAPP["yi"], KNAPP["vi"], np.asarray(KNAPP["difficulty"])[:, None])
    assert_close(without.beta, ref["mods_vector_no_intercept"]["b"], "beta without intercept", **ITERATIVE)
    assert list(model_matrix(np.ones((3, 2)), intercept=False).columns) == ["mods1", "mods2"]


def test_older_names_read_metafor_names():
    fit = rma(NORMAND["yi"], NORMAND["vi"], test="knha")
    pairs = {"estimate": "beta", "ci_low": "ci_lb", "ci_high": "ci_ub", "q": "QE", "q_p": "QEp", "q_df": "QE_df",
             "i2": "I2", "h2": "H2", "tau2_se": "se_tau2", "pi_low": "pi_lb", "pi_high": "pi_ub"}  # fmt: skip
    for old, new in pairs.items():
        assert getattr(fit, old) is getattr(fit, new), old
    mods = rma(KNAPP["yi"], KNAPP["vi"], mods=KNAPP["difficulty"])
    assert mods.QM_p is mods.QMp and mods.ci_low is mods.ci_lb and mods.QE_p is mods.QEp


def test_sei_and_vi_are_one_or_the_other():
    with pytest.raises(ValueError, match="vi or the standard errors sei"):
        rma(NORMAND["yi"], NORMAND["vi"], sei=np.sqrt(NORMAND["vi"]))
    with pytest.raises(ValueError, match="vi or the standard errors sei"):
        rma(NORMAND["yi"])


def test_methods_of_a_fit_are_the_functions_without_a_refit():
    """fit.leave1out() etc. give exactly what the functions give on (yi, vi, settings): they reuse the fit's τ²."""
    yi, vi = np.asarray(NORMAND["yi"]), np.asarray(NORMAND["vi"])
    fit = rma(yi, vi, test="knha")
    assert isinstance(fit, RmaResult)
    same = [(fit.leave1out().estimate, influence.leave1out(yi, vi, test="knha").estimate),
            (fit.influence().cook_d, influence.influence(yi, vi, test="knha").cook_d),
            (fit.baujat().y, influence.baujat(yi, vi, test="knha").y),
            (fit.cumul(order=-yi).estimate, influence.cumul(yi, vi, order=-yi, test="knha").estimate),
            (fit.regtest().pval, bias.regtest(yi, vi, test="knha").pval),
            (fit.ranktest().pval, bias.ranktest(yi, vi).pval),
            (fit.trimfill().fit.beta, bias.trimfill(yi, vi, test="knha").fit.beta)]  # fmt: skip
    for ours, theirs in same:
        np.testing.assert_array_equal(ours, theirs)
    assert fit.influence().fit is fit  # the full model is the fit itself
    assert fit.trimfill(side="left").fit is fit if fit.trimfill(side="left").k0 == 0 else True
    frame = fit.predict()
    assert frame.loc[0, "pi_low"] == fit.pi_lb and frame.loc[0, "ci_high"] == fit.ci_ub
    ci = fit.confint()
    assert ci.loc["tau^2", "ci_lb"] == fit.tau2_ci_lb and ci.loc["I^2(%)", "ci_ub"] == fit.I2_ci_ub
    # H² = 1/(1 − I²/100), the closed form of H² = 1 + τ²/ṽ and I² = 100τ²/(ṽ + τ²)
    assert ci.loc["H^2", "estimate"] == pytest.approx(1 / (1 - fit.I2 / 100), rel=1e-12)
    assert fit.to_frame()["estimate"].iloc[0] == fit.beta


def test_a_batch_has_no_data_for_the_methods():
    from metarepro import rma_batch

    batch = rma_batch(np.array([NORMAND["yi"]]), np.array([NORMAND["vi"]]))
    with pytest.raises(ValueError, match="single fit from rma"):
        batch[0].leave1out()


KNAPP_PRINT, KON, NORM_PRINT = DATA["knapp2017"], DATA["konstantopoulos2011"], DATA["normand1999"]
YEAR_C = np.asarray(KON["year"]) - np.mean(KON["year"])
PRINTS = {
    "mods_vector_knha": lambda: rma(KNAPP_PRINT["yi"], KNAPP_PRINT["vi"], mods=KNAPP_PRINT["difficulty"], test="knha"),
    "robust_cr1": lambda: robust(rma(KNAPP_PRINT["yi"], KNAPP_PRINT["vi"]), KNAPP_PRINT["study"]),
    "robust_cr2": lambda: robust(rma(KNAPP_PRINT["yi"], KNAPP_PRINT["vi"]), KNAPP_PRINT["study"], clubSandwich=True),
    "robust_mods_cr1": lambda: robust(
        rma(KNAPP_PRINT["yi"], KNAPP_PRINT["vi"], mods=pd.DataFrame({"difficulty": KNAPP_PRINT["difficulty"]})),
        KNAPP_PRINT["study"]),
    "rma_mv_multilevel": lambda: rma_mv(KON["yi"], KON["vi"], nested={"district": KON["district"],
                                                                      "school": KON["school"]}),
    "rma_mv_year": lambda: rma_mv(KON["yi"], KON["vi"], np.column_stack([np.ones(len(KON["yi"])), YEAR_C]),
                                  X_names=["intrcpt", "year_c"], test="t",
                                  nested={"district": KON["district"], "school": KON["school"]}),
    "influence": lambda: rma(NORM_PRINT["yi"], NORM_PRINT["vi"]).influence(),
    "fsn_rosenthal": lambda: bias.fsn(NORM_PRINT["yi"], NORM_PRINT["vi"]),
    "fsn_orwin": lambda: bias.fsn(NORM_PRINT["yi"], NORM_PRINT["vi"], type="Orwin"),
    "fsn_rosenberg": lambda: bias.fsn(NORM_PRINT["yi"], NORM_PRINT["vi"], type="Rosenberg"),
    "permutest_mods": lambda: permutest(KNAPP_PRINT["yi"][:8], KNAPP_PRINT["vi"][:8],
                                        model_matrix(pd.DataFrame({"difficulty": KNAPP_PRINT["difficulty"][:8]})),
                                        exact=True),
    "permutest_intercept": lambda: permutest(NORM_PRINT["yi"], NORM_PRINT["vi"], exact=True),
    "ranktest": lambda: rma(NORM_PRINT["yi"], NORM_PRINT["vi"]).ranktest(),
}  # fmt: skip


@pytest.mark.parametrize("case", PRINTS)
def test_prints_like_metafor(case):
    result = PRINTS[case]()
    assert_prints_like_metafor(result, case)
    assert repr(result) == str(result)
