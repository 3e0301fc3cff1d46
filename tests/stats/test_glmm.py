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
import re
from functools import cache

import numpy as np
import pytest
from conftest import REFERENCE_DIR
from tolerances import ITERATIVE

from metarepro import rma_glmm
from metarepro.stats.glmm import _nchg, loglik, ml_data
from metarepro.stats.glmm._glm import binomial_loglik

REF = json.loads((REFERENCE_DIR / "glmm_reference.json").read_text())
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


# ---- the glmer fits: same likelihood, a better optimum, estimates within lme4's stopping error ------------------

GLMER_ML = [("bcg", "UM.FS"), ("nielweise2007", "UM.FS"), ("bcg", "UM.RS"), ("nielweise2007", "UM.RS"),
            ("bcg", "CM.AL"), ("nielweise2007", "CM.AL"), ("pritz1997", "UM.FS")]  # fmt: skip


def cells(dataset):
    """The tables metafor fits: OR tables without the double-zero ones (drop00), or PLO's (xi, mi)."""
    d = DATA[dataset]
    if d["measure"] == "PLO":
        return [np.asarray(d["xi"], dtype=float), np.asarray(d["mi"], dtype=float)]
    a, b, c, e = (np.asarray(d[x], dtype=float) for x in ("ai", "bi", "ci", "di"))
    keep = ~(((a == 0) & (c == 0)) | ((b == 0) & (e == 0)))
    return [a[keep], b[keep], c[keep], e[keep]]


def lme4_loglik_at(dataset, model, merfit):
    """Our likelihood at lme4's final (β, θ), on lme4's logLik scale: the saturated binomial log-likelihood is
    left out with nAGQ > 1 (lme4's quadrature deviance) and kept with nAGQ = 1 (its Laplace deviance)."""
    d = DATA[dataset]
    data = ml_data(d["measure"], model, cells(dataset))
    value = loglik(data, merfit["fixef"], merfit["theta"], merfit["nAGQ"])
    if merfit["nAGQ"] > 1:
        value -= binomial_loglik(data.x, data.n, np.clip(data.x / data.n, 1e-300, 1 - 1e-16))
    return value


@pytest.mark.parametrize(("dataset", "model"), GLMER_ML)
@pytest.mark.parametrize("control", ["default", "tight"])
def test_same_likelihood_as_lme4_at_its_estimates(dataset, model, control):
    """(1) lme4's 7-point adaptive Gauss-Hermite (UM.FS, CM.AL, PLO) / Laplace (UM.RS) log-likelihood, recomputed
    here at lme4's own estimates. Observed: 1.3e-12 relative for the quadrature fits; 8.7e-8 (1e-5 absolute) for
    UM.RS's Laplace fit with two random effects, with tolPwrss = 1e-7 and 1e-10 alike -- not explained; our guess
    is that lme4's logLik is read from its PIRLS state after the finite-difference Hessian, not at the mode."""
    merfit = reference(dataset, model, "ML", control)["glmer"]["ML"]
    rtol = 1e-6 if merfit["nAGQ"] == 1 else 1e-10
    assert close(lme4_loglik_at(dataset, model, merfit), merfit["logLik"], rtol=rtol)


@pytest.mark.parametrize(("dataset", "model"), GLMER_ML)
def test_optimum_at_least_as_high_as_lme4s(dataset, model):
    """(2) lme4 stops early; our optimum is at least as high as lme4's best (tight or default control)."""
    fit = ours(dataset, model, "ML")
    data = ml_data(DATA[dataset]["measure"], model, cells(dataset))
    for control in ("default", "tight"):
        merfit = reference(dataset, model, "ML", control)["glmer"]["ML"]
        theirs = loglik(data, merfit["fixef"], merfit["theta"], merfit["nAGQ"])
        assert fit.optimum >= theirs - 1e-9 * abs(theirs)


# lme4's stopping rule: Nelder-Mead ends when the deviance (-2 loglik) changes by less than FtolAbs = 1e-5, so its
# deviance may lie ~1e-5 above the minimum and its β up to ~√1e-5 ≈ 0.003 standard errors from the optimum (a
# deviance 1e-5 above the minimum is (δ/se)² = 1e-5 away). Allowed: a deviance gap of 1e-4 and 0.01 se in β; τ²,
# σ², I² and se to 1% (lme4's se comes from a finite-difference Hessian of a deviance computed only to tolPwrss).
DEVIANCE_GAP, BETA_SE, VARIANCE_RTOL = 1e-4, 0.01, 0.01


@pytest.mark.parametrize(("dataset", "model"), GLMER_ML)
@pytest.mark.parametrize("control", ["default", "tight"])
def test_estimates_within_lme4s_stopping_error(dataset, model, control):
    """(3) observed (default control): β 3.5e-4 relative (0.0015 se, nielweise2007 UM.FS), τ² 8.8e-4, se 3.7e-3
    (bcg UM.RS, the Laplace fit with two random effects); tight control (nloptwrap): β 9e-5, τ² 7e-5, se 3.7e-3.
    The deviance gap (observed 4e-7 at most, 2e-9 with the tight control) is within 1e-4 except where lme4 itself
    warns that it did not converge (nielweise2007 UM.FS, default control: "Model failed to converge with max|grad|
    = 0.0089", gap 1.5e-4): there 1e-3."""
    fit, ref = ours(dataset, model, "ML"), reference(dataset, model, "ML", control)
    merfit = ref["glmer"]["ML"]
    data = ml_data(DATA[dataset]["measure"], model, cells(dataset))
    gap = -2 * (loglik(data, merfit["fixef"], merfit["theta"], merfit["nAGQ"]) - fit.optimum)
    lme4_converged = not any("failed to converge" in w for w in ref["warnings"])
    assert -1e-9 <= gap <= (DEVIANCE_GAP if lme4_converged else 10 * DEVIANCE_GAP)
    assert abs(fit.beta[0] - ref["beta"][0]) <= BETA_SE * ref["se"][0]
    for name in ("tau2", "sigma2", "I2", "se"):
        if ref[name] is not None:
            assert close(getattr(fit, name), ref[name], rtol=VARIANCE_RTOL), name


# ---- CM.EL: exact likelihood, R's nlminb stopping point --------------------------------------------------------
# metafor maximizes CM.EL's likelihood with nlminb (rel.tol = 1e-10 on the function value), so its log-likelihood may
# lie 1e-10·|ll| below the maximum and β up to se·√(2·1e-10·|ll|) from it (observed 8e-7 relative on dat.bcg, where
# that bound is 6e-6/0.48). Here β solves the score equation (Newton, exact derivatives: Σ aᵢ - E(aᵢ|β) = 0).
# References: metafor's own exact pmf (dnchgcalc = "dnoncenhypergeom"); with BiasedUrn's (the default) numDeriv's
# Richardson steps amplify the pmf's 1e-10 truncation into se 1.4e-4 and QE.Wld 268.6 instead of 162.9 (dat.bcg).


@pytest.mark.parametrize(("dataset", "method"), [("bcg", "EE"), ("nielweise2007", "EE"), ("nielweise2007", "ML")])
def test_conditional_exact_likelihood_matches_metafor(dataset, method):
    fit, ref = ours(dataset, "CM.EL", method), reference(dataset, "CM.EL", method, "exact_pmf")
    ll = ref["fit_stats"][0]
    assert fit.fit_stats["ll"] >= ll - 1e-9 * abs(ll)  # at least as high (observed: equal to 5e-11 absolute)
    assert abs(fit.beta[0] - ref["beta"][0]) <= ref["se"][0] * np.sqrt(2e-10 * abs(ll))
    assert close(fit.QE_LRT, ref["QE_LRT"], rtol=1e-8)  # both maxima are flat: ll to 1e-10
    # the Wald test sits at R's nlminb stopping point of the 13-17-parameter saturated fit, with a numDeriv Hessian
    # there: observed 1e-3 relative (dat.bcg); here each study's conditional maximum is exact
    assert close(fit.QE_Wld, ref["QE_Wld"], rtol=1e-2)
    if method == "EE":
        assert close(fit.se, ref["se"], rtol=1e-5)  # numDeriv's Hessian of the exact pmf at R's β: observed 6.2e-6
        return
    # ML: numDeriv's 16 Richardson steps (down to ~3e-6) on integrate()'s values amplify its 1e-12 relative error;
    # observed se 2.5e-4, se(τ²) 1.5e-3. Ours (a Richardson-extrapolated Hessian of a 40-node quadrature, steps
    # 1e-3) changes by < 1e-8 between steps 1e-2 and 1e-3: the difference is numDeriv's.
    assert close(fit.se, ref["se"], rtol=1e-3) and close(fit.se_tau2, ref["se_tau2"], rtol=1e-2)
    assert close(fit.tau2, ref["tau2"], rtol=1e-5)  # nlminb's stopping point: observed 4.9e-8


def test_conditional_exact_likelihood_is_maximized():
    """The ML fit is a stationary point of our integrated likelihood and its value is the reported optimum."""
    d = cells("bcg")
    fit = ours("bcg", "CM.EL", "ML")
    studies = _nchg.tables(*d)

    def ll(beta, tau2):
        return _nchg.loglik_random(studies, np.full(len(studies), beta), tau2)

    assert close(ll(fit.beta[0], fit.tau2), fit.optimum, rtol=1e-12)
    for step in (1e-4, -1e-4):
        assert ll(fit.beta[0] + step, fit.tau2) < fit.optimum
        assert ll(fit.beta[0], fit.tau2 * (1 + step)) < fit.optimum


# ---- print.rma.glmm --------------------------------------------------------------------------------------------

NUMBER = re.compile(r"[(]?([-+]?\d+\.\d+)[%),]*")


def same_token(ours_token, theirs, rtol):
    a, b = NUMBER.fullmatch(ours_token), NUMBER.fullmatch(theirs)
    if a and b:
        x, y = float(a.group(1)), float(b.group(1))
        return abs(x - y) <= max(1.5e-4, rtol * abs(y))
    return ours_token == theirs


@pytest.mark.parametrize(("dataset", "model", "method", "control"), [
    ("bcg", "UM.FS", "EE", "default"), ("bcg", "UM.RS", "EE", "default"), ("nielweise2007", "CM.AL", "EE", "default"),
    ("pritz1997", "UM.FS", "EE", "default"), ("pritz1997", "UM.FS", "ML", "tight"), ("bcg", "UM.FS", "ML", "tight"),
    ("bcg", "UM.RS", "ML", "default"), ("nielweise2007", "CM.EL", "ML", "exact_pmf"),
])  # fmt: skip
def test_prints_like_metafor(dataset, model, method, control):
    """Token by token, whitespace collapsed; numbers to the 4 decimals shown (1.5e-4) for the exact EE fits, and
    within 1% for the ML fits, where lme4's or numDeriv's error shows in the 4th decimal (the values themselves are
    compared above, each to its own tolerance); the layout is what this test checks."""
    ours_lines = [" ".join(line.split()) for line in str(ours(dataset, model, method)).splitlines() if line.strip()]
    theirs = [" ".join(line.split()) for line in reference(dataset, model, method, control)["printed"].splitlines()
              if line.strip()]  # fmt: skip
    rtol = 1e-2 if method == "ML" or model == "UM.RS" else 0.0
    assert len(ours_lines) == len(theirs), "\n".join(ours_lines)
    for mine, reference_line in zip(ours_lines, theirs, strict=True):
        a, b = mine.split(), reference_line.split()
        assert len(a) == len(b) and all(same_token(x, y, rtol) for x, y in zip(a, b, strict=True)), (
            f"\n ours:    {mine}\n metafor: {reference_line}")


# ---- bad input -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"ai": [1, -2], "bi": [3, 4], "ci": [1, 2], "di": [3, 4]}, r"ai\[1\] = -2 is not a count"),
    ({"ai": [1, 2.5], "bi": [3, 4], "ci": [1, 2], "di": [3, 4]}, r"ai\[1\] = 2.5 is not a count"),
    ({"ai": [1, 9], "n1i": [5, 8], "ci": [1, 2], "n2i": [4, 4]}, r"ai\[1\] = 9 exceeds n1i\[1\] = 8"),
    ({"ai": [1, 2], "bi": [3], "ci": [1, 2], "di": [3, 4]}, "bi has 1 values but the other counts have 2"),
    ({"ai": [0, 2], "bi": [0, 4], "ci": [1, 2], "di": [3, 4]}, "empty group"),
    ({"ai": [1, 2], "bi": [3, 4], "ci": [1, 2], "di": [3, 4], "model": "CM.XX"}, "model must be one of"),
    ({"ai": [1, 2], "bi": [3, 4], "ci": [1, 2], "di": [3, 4], "method": "REML"}, "method must be 'EE' or 'ML'"),
    ({"ai": [1], "bi": [3], "ci": [1], "di": [3]}, "1 studies are too few for method 'ML'"),
])  # fmt: skip
def test_bad_input_gets_one_clear_message(kwargs, message):
    with pytest.raises(ValueError, match=message):
        rma_glmm(measure="OR", **kwargs)


def test_measure_is_required_and_checked():
    with pytest.raises(ValueError, match="measure must be one of OR, PLO, not 'RR'"):
        rma_glmm([1, 2], [3, 4], [1, 2], [3, 4], measure="RR")
    with pytest.raises(ValueError, match=r"xi\[0\] = 5 exceeds|mi\[0\]|ni\[0\]"):
        rma_glmm(xi=[5, 2], ni=[4, 4], measure="PLO")


def test_double_zero_tables_are_left_out_and_said_so():
    """drop00 (metafor's default): a table with no events in either group carries no information on the OR."""
    d = DATA["nielweise2007"]
    fit = ours("nielweise2007", "UM.FS", "EE")
    assert fit.k == len(d["ai"]) - 1 == 17 and "left out" in fit.warnings[0]


def test_t_test_uses_k_minus_p_degrees_of_freedom():
    """metafor's test = "t" for rma.glmm: t with k - p df for β, its p-value and CI (hand calculation with scipy)."""
    from scipy import stats

    z = ours("pritz1997", "UM.FS", "EE")
    t = rma_glmm(xi=DATA["pritz1997"]["xi"], mi=DATA["pritz1997"]["mi"], measure="PLO", method="EE", test="t")
    df = z.k - 1
    assert close(t.beta, z.beta, rtol=1e-15) and close(t.pval, 2 * stats.t.sf(abs(z.zval), df), rtol=1e-12)
    half = stats.t.isf(0.025, df) * z.se
    assert close(t.ci_lb, z.beta - half, rtol=1e-12) and close(t.ci_ub, z.beta + half, rtol=1e-12)
    assert " tval  df " in str(t) and f"  {df}  " in str(t)


@pytest.mark.parametrize("model", ["UM.FS", "UM.RS", "CM.AL"])
def test_tau2_on_the_boundary(model):
    """dat.bcg's first 3 trials: lme4 puts τ² at 0 (UM.RS: 1.3e-8); ours is ~1e-11 (θ optimized on the log scale),
    and β, se and the heterogeneity tests are then those at τ² = 0. Observed: UM.FS, CM.AL β 1e-12, se 1e-8;
    UM.RS β 1.9e-5, se 1.2e-3, QE.LRT 2e-6 (lme4's stopping and finite-difference Hessian)."""
    fit, ref = ours("bcg_first3", model, "ML"), reference("bcg_first3", model, "ML", "default")
    assert fit.tau2 < 1e-8 and ref["tau2"] < 1e-7
    assert abs(fit.beta[0] - ref["beta"][0]) <= BETA_SE * ref["se"][0]
    assert close(fit.se, ref["se"], rtol=VARIANCE_RTOL)
    exact = {"rtol": VARIANCE_RTOL} if model == "UM.RS" else ITERATIVE  # glm fits except for UM.RS
    assert close(fit.QE_LRT, ref["QE_LRT"], **exact) and close(fit.QE_Wld, ref["QE_Wld"], **exact)
