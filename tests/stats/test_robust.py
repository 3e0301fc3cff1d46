"""Cluster-robust inference (``robust``) against R metafor 3.8-1 ``robust()`` and clubSandwich 0.5.8.

Reference: tests/reference/rma_mv_reference.json (tests/reference/generate_rma_mv_reference.R): for each model,
``robust(res, cluster)`` (CR1), ``robust(res, cluster, clubSandwich = TRUE)`` (CR2, Satterthwaite, HTZ),
``vcovCR(res, type = "CR2")``, ``coef_test(..., test = "Satterthwaite")`` and ``Wald_test(..., test = "HTZ")``.
The rma.mv models are the polished fits of test_rma_mv.py (components at the root of the score equation), so
everything is compared at ``ITERATIVE`` (1e-8 relative). The rma.uni models use rma's tight control.
"""

import numpy as np
import pytest
from conftest import assert_close
from test_rma_mv import CASES, fit_of
from tolerances import ITERATIVE

from metarepro.stats.metareg import rma_mods
from metarepro.stats.rma import rma
from metarepro.stats.robust import robust

CLUSTER = {"konstantopoulos2011": "district", "assink2016": "study", "berkey1998": "trial", "knapp2017": "study"}
MV = [(c, f) for c in CASES for f in CASES[c]["robust"] if not f.startswith("rma_uni")]


def check(result, ref, name):
    for ours, theirs in [("beta", "b"), ("se", "se"), ("zval", "zval"), ("pval", "pval"), ("ci_low", "ci_lb"),
                         ("ci_high", "ci_ub"), ("QM", "QM"), ("QM_p", "QMp")]:  # fmt: skip
        assert_close(getattr(result, ours), ref[theirs], f"{name} {ours}", **ITERATIVE)
    assert_close(result.vb, np.array(ref["vb"]), f"{name} vb", **ITERATIVE)
    assert_close(result.dfs, np.broadcast_to(ref["dfs"], result.dfs.shape), f"{name} dfs", **ITERATIVE)
    assert_close(result.QM_df, ref["QMdf"], f"{name} QMdf", **ITERATIVE)
    assert result.n == ref["n"]
    assert result.vbest == ref["vbest"]


@pytest.mark.parametrize(("case_name", "fit_name"), MV, ids=[f"{c}-{f}" for c, f in MV])
def test_robust_rma_mv(case_name, fit_name):
    ref = CASES[case_name]["robust"][fit_name]
    fit, _ = fit_of(case_name, fit_name)
    cluster = CASES[case_name]["data"][CLUSTER[case_name]]
    check(robust(fit, cluster), ref["CR1"], "CR1")
    cr2 = robust(fit, cluster, clubSandwich=True)
    check(cr2, ref["CR2"], "CR2")
    assert_close(cr2.vb, np.array(ref["vcovCR2"]), "vcovCR", **ITERATIVE)
    assert_close(cr2.se, ref["coef_test"]["SE"], "coef_test SE", **ITERATIVE)
    assert_close(cr2.dfs, ref["coef_test"]["df"], "coef_test df", **ITERATIVE)
    assert_close(cr2.pval, ref["coef_test"]["p_Satt"], "coef_test p", **ITERATIVE)
    if "Wald_test" in ref:
        wt = ref["Wald_test"]
        assert_close(cr2.QM, wt["Fstat"], "HTZ F", **ITERATIVE)
        assert_close(cr2.QM_df, [wt["df_num"], wt["df_denom"]], "HTZ df", **ITERATIVE)
        assert_close(cr2.QM_p, wt["p_val"], "HTZ p", **ITERATIVE)


@pytest.mark.parametrize("fit_name", ["rma_uni", "rma_uni_year"])
def test_robust_rma_uni(fit_name):
    case = CASES["assink2016"]
    d = case["data"]
    ref = case["robust"][fit_name]
    if fit_name == "rma_uni":
        fit, X = rma(d["yi"], d["vi"]), None
    else:
        X = np.array(case["rma_uni"]["year"]["X"], dtype=float)
        fit = rma_mods(d["yi"], d["vi"], X)
        assert_close(fit.tau2, case["rma_uni"]["year"]["tau2"], "tau2", **ITERATIVE)
    check(robust(fit, d["study"], yi=d["yi"], vi=d["vi"], X=X), ref["CR1"], "CR1")
    cr2 = robust(fit, d["study"], yi=d["yi"], vi=d["vi"], X=X, clubSandwich=True)
    check(cr2, ref["CR2"], "CR2")
    assert_close(cr2.dfs, ref["coef_test"]["df"], "coef_test df", **ITERATIVE)
    if "Wald_test" in ref:
        assert_close(cr2.QM, ref["Wald_test"]["Fstat"], "HTZ F", **ITERATIVE)
        assert_close(cr2.QM_df[1], ref["Wald_test"]["df_denom"], "HTZ df", **ITERATIVE)


def test_cluster_must_contain_the_model_blocks():
    fit, _ = fit_of("konstantopoulos2011", "reml_z")
    with pytest.raises(ValueError, match="different clusters"):
        robust(fit, CASES["konstantopoulos2011"]["data"]["school"])


def test_cr0_is_cr1_without_the_small_sample_factor():
    """metafor's adjust = FALSE: CR1 = CR0 · n/(n − p) (closed form)."""
    fit, _ = fit_of("assink2016", "deltype_reml_z")
    cluster = CASES["assink2016"]["data"]["study"]
    cr0 = robust(fit, cluster, adjust=False)
    cr1 = robust(fit, cluster)
    n, p = cr1.n, fit.p
    assert cr0.vbest == "CR0"
    np.testing.assert_allclose(cr1.vb, cr0.vb * n / (n - p), rtol=1e-13)


def test_knha_fit_needs_z_for_cr1():
    d = CASES["assink2016"]["data"]
    with pytest.raises(ValueError, match="test='z'"):
        robust(rma(d["yi"], d["vi"], test="knha"), d["study"], yi=d["yi"], vi=d["vi"])
