"""Multilevel / multivariate models (``rma_mv``) against R metafor 3.8-1.

Reference: tests/reference/rma_mv_reference.json, written by tests/reference/generate_rma_mv_reference.R on
metadat's dat.konstantopoulos2011 (three-level), dat.assink2016 (three-level with moderators),
dat.berkey1998 (multivariate, known V, struct UN/CS/HCS/AR) and dat.knapp2017 (V from vcalc with shared controls);
konstantopoulos2011 also with struct CS over 56 inner levels and struct AR over 11 (schools within districts).

R's own optimum (nlminb on log-likelihood values) is good to only ~1e-8..1e-7 relative in the variance
components (the likelihood is flat to EPS·|ll| there; optimizers disagree in the 8th digit). The generator
therefore polishes it to the root of the score equation (Newton on metafor's log-likelihood, step < 1e-9 in
log σ²) and records metafor's fit with the components fixed at that root; every field is compared with that
record at ``ITERATIVE`` (1e-8 relative). The free nlminb fit is used only for AIC/BIC/AICc (its log-likelihood
is flat-optimal, so exact to ~EPS·|ll|) and for the looser sanity check that our components are at least as good.
"""

import numpy as np
import pytest
from conftest import assert_close, load_reference
from tolerances import FORMULA, ITERATIVE, log_p_close

from metarepro.stats.mv import BlockV, MVControl, anova, confint, rma_mv

REFERENCE = load_reference("rma_mv_reference.json")
CASES = REFERENCE["cases"]


def berkey_V(data):
    trial = np.asarray(data["trial"])
    v = np.stack([data["v1i"], data["v2i"]], axis=1)
    return BlockV(trial, {t: v[trial == t] for t in dict.fromkeys(trial.tolist())})


def knapp_V(case, which="shared_R"):
    study = np.asarray(case["data"]["study"])
    blocks = {int(s): np.array(rows, dtype=float) for s, rows in case["vcalc"][which].items()}
    return BlockV(study, blocks)


def setup(case_name, fit_name):
    """yi, V, random-effects arguments of each reference fit (as in the R script)."""
    case = CASES[case_name]
    d = case["data"]
    if case_name == "konstantopoulos2011":
        if fit_name.startswith("cs_study_district"):  # ~ factor(study) | district, struct CS: 56 inner levels
            return d["yi"], d["vi"], {"inner": d["study"], "outer": d["district"], "struct": "CS"}
        if fit_name.startswith("ar_school_district"):  # ~ school | district, struct AR: 11 inner levels
            return d["yi"], d["vi"], {"inner": d["school"], "outer": d["district"], "struct": "AR"}
        nested = [d["study"]] if fit_name.startswith("two_level") else [d["district"], d["school"]]
        return d["yi"], d["vi"], {"nested": nested}
    if case_name == "assink2016":
        if fit_name.startswith("both_"):
            struct = fit_name.split("_")[1].upper()
            return (
                d["yi"],
                d["vi"],
                {"nested": [d["study"]], "inner": d["deltype"], "outer": d["study"], "struct": struct},
            )
        return d["yi"], d["vi"], {"nested": [d["study"], d["esid"]]}
    if case_name == "berkey1998":
        struct = fit_name.split("_")[0].upper()
        return d["yi"], berkey_V(d), {"inner": d["outcome"], "outer": d["trial"], "struct": struct}
    if case_name == "knapp2017":
        return d["yi"], knapp_V(case), {"nested": [d["study"], d["comp"]]}
    raise KeyError(case_name)


def fit_of(case_name, fit_name, **extra):
    ref = CASES[case_name]["fits"][fit_name]
    yi, V, random = setup(case_name, fit_name)
    X = np.array(ref["X"], dtype=float)
    return rma_mv(
        yi,
        V,
        X,
        method=ref["method"],
        test=ref["test"],
        dfs=ref["dfs"] or "residual",
        X_names=ref["X_names"],
        **random,
        **extra,
    ), ref


FITS = [(c, f) for c in CASES for f in CASES[c]["fits"]]


def test_reference_provenance():
    assert REFERENCE["metafor_version"] == "3.8.1"
    assert REFERENCE["generator"] == "tests/reference/generate_rma_mv_reference.R"
    assert REFERENCE["clubSandwich_version"]
    # every polished fit solved metafor's score equation: the last Newton step is below 1e-9 in log-scale
    assert all(f["polish"]["last_step"] < 1e-9 for c in CASES.values() for f in c["fits"].values())


@pytest.mark.parametrize(("case_name", "fit_name"), FITS, ids=[f"{c}-{f}" for c, f in FITS])
def test_fit_matches_metafor(case_name, fit_name):
    fit, ref = fit_of(case_name, fit_name)
    assert fit.converged
    assert fit.k == ref["k"] and fit.p == ref["p"]
    for ours, theirs in [
        ("beta", "b"),
        ("se", "se"),
        ("zval", "zval"),
        ("pval", "pval"),
        ("ci_low", "ci_lb"),
        ("ci_high", "ci_ub"),
        ("QM", "QM"),
        ("QM_p", "QMp"),
        ("QE", "QE"),
        ("QE_p", "QEp"),
    ]:
        assert_close(getattr(fit, ours), ref[theirs], f"{fit_name}: {ours}", **ITERATIVE)
    assert_close(fit.vb, np.array(ref["vb"]), "vb", **ITERATIVE)
    assert_close(fit.QM_df, ref["QMdf"], "QMdf", rtol=0, atol=0)
    if ref["test"] == "t":
        np.testing.assert_array_equal(fit.ddf, ref["ddf"])
    if ref["sigma2"] is not None:
        assert_close(fit.sigma2, ref["sigma2"], "sigma2", **ITERATIVE)
        np.testing.assert_array_equal(fit.s_nlevels, ref["s_nlevels"])
    if ref["tau2"] is not None:
        assert_close(fit.tau2, ref["tau2"], "tau2", **ITERATIVE)
        assert_close(fit.rho, ref["rho"], "rho", **ITERATIVE)
        assert_close(fit.G, np.array(ref["G"]), "G", **ITERATIVE)
        assert [str(v) for v in fit.g_levels] == ref["g_levels_f"]
    for method in ("ML", "REML"):
        for stat in ("ll", "dev"):
            assert_close(fit.fit_stats[method][stat], ref["fit_stats"][method][stat], f"{method} {stat}", **ITERATIVE)
    # information criteria of the free fit (parameters counted as metafor does); the free fit's log-likelihood
    # falls short of the polished one by a little (nlminb's stopping rule), which its AIC carries twice
    assert fit.parms == ref["free"]["parms"]
    shortfall = 2 * abs(ref["logLik"] - ref["free"]["logLik"])
    for stat in ("AIC", "BIC", "AICc"):
        assert_close(getattr(fit, stat), ref["free"][stat], stat, rtol=FORMULA, atol=shortfall)
    # our optimum is at least as high as metafor's free nlminb optimum
    assert fit.logLik >= ref["free"]["logLik"] - FORMULA * abs(ref["free"]["logLik"])
    X = np.array(ref["X"], dtype=float)
    rows = [0] if fit.p == 1 and np.all(X == 1) else range(X.shape[0])
    levels = ref["predict"]["tau2_level"]
    for n, i in enumerate(rows):
        pred = fit.predict(X[i], tau2_level=None if levels is None else levels[n] - 1)
        for ours, theirs in [("pred", "pred"), ("se", "se"), ("ci_low", "ci_lb"), ("ci_high", "ci_ub"),
                             ("pi_low", "pi_lb"), ("pi_high", "pi_ub")]:  # fmt: skip
            assert_close(pred[ours], ref["predict"][theirs][n], f"predict row {i} {ours}", **ITERATIVE)
    if "I2" in ref:
        i2 = fit.i2()
        if "total" in ref["I2"]:
            assert_close(i2["total"], ref["I2"]["total"], "I2 total", **ITERATIVE)
        assert_close(i2["levels"], ref["I2"]["levels"], "I2 levels", **ITERATIVE)
        assert_close(i2["typical_vi"], ref["I2"]["typical_vi"], "typical vi", rtol=FORMULA, atol=0)
    assert fit.to_dict()["k"] == ref["k"]
    assert "Multivariate Meta-Analysis Model" in str(fit)


ANOVAS = [(c, a) for c in CASES for a in CASES[c].get("anova", {})]
ANOVA_FITS = {
    "three_vs_two_reml": ("reml_z", "two_level_reml"),
    "three_vs_two_ml": ("ml_z", "two_level_ml"),
    "year_vs_none_ml": ("year_ml_z", "ml_z"),
    "deltype_vs_none_ml": ("deltype_ml_z", "ml_z"),
    "un_vs_cs_reml": ("un_reml", "cs_reml"),
    "hcs_vs_cs_ml": ("hcs_ml", "cs_ml"),
}


@pytest.mark.parametrize(("case_name", "name"), ANOVAS, ids=[f"{c}-{a}" for c, a in ANOVAS])
def test_anova_matches_metafor(case_name, name):
    ref = CASES[case_name]["anova"][name]
    full_name, reduced_name = ANOVA_FITS[name]
    full, _ = fit_of(case_name, full_name)
    reduced, _ = fit_of(case_name, reduced_name)
    out = anova(full, reduced)
    assert out["df"] == ref["df"]
    # LRT is a difference of two log-likelihoods: accurate to EPS·(|ll_f| + |ll_r|) in absolute terms
    atol = 64 * np.finfo(float).eps * (abs(ref["ll_f"]) + abs(ref["ll_r"])) + 1e-10
    assert_close(out["LRT"], ref["LRT"], "LRT", rtol=1e-8, atol=atol)
    assert_close(out["pval"], ref["pval"], "pval", rtol=1e-7, atol=1e-12)


def test_anova_rejects_reml_with_different_fixed_effects():
    a, _ = fit_of("assink2016", "deltype_reml_z")
    b, _ = fit_of("assink2016", "reml_z")
    with pytest.raises(ValueError, match="REML"):
        anova(a, b)


PROFILES = [(c, f) for c in CASES for f in CASES[c].get("profile", {})]


@pytest.mark.parametrize(("case_name", "fit_name"), PROFILES, ids=[f"{c}-{f}" for c, f in PROFILES])
def test_profile_ci_matches_confint(case_name, fit_name):
    """Profile bounds are roots found by uniroot (tol 1e-12) on profiles refitted by nlminb, whose optima are
    good to ~1e-8 relative in the components (see module docstring): at a bound the profile's slope is finite,
    so an error δ in the profiled log-likelihood moves the root by δ/slope ~ 1e-8 relative; rtol 1e-6 leaves a
    factor 100 for the slope being shallow near the bounds."""
    fit, ref = fit_of(case_name, fit_name)
    parts = list(CASES[case_name]["profile"][fit_name].values())
    components = []
    if ref["sigma2"] is not None:
        components += [("sigma2", i) for i in range(len(ref["sigma2"]))]
    if ref["tau2"] is not None:
        components += [("tau2", i) for i in range(len(ref["tau2"]))] + [("rho", i) for i in range(len(ref["rho"]))]
    assert len(parts) == len(components)
    for (component, which), part in zip(components, parts, strict=True):
        ci = confint(fit, component, which)
        first = lambda v: v[0] if isinstance(v, list) else v  # noqa: E731  (variance rows also list the SD)
        # the reference's "estimate" is the free nlminb fit's (checked in test_fit_matches_metafor)
        got = [ci["ci_low"], ci["ci_high"]]
        assert_close(
            got, [first(part["ci_lb"]), first(part["ci_ub"])], f"{component}[{which}] CI", rtol=1e-6, atol=1e-9
        )


def scaled_fit(model, a):
    """The three-level konstantopoulos model or a berkey multivariate model on yi·a with V·a²."""
    if model == "three-level":
        d = CASES["konstantopoulos2011"]["data"]
        return rma_mv(np.array(d["yi"]) * a, np.array(d["vi"]) * a**2, nested=[d["district"], d["school"]])
    d = CASES["berkey1998"]["data"]
    X = np.array(CASES["berkey1998"]["fits"]["un_reml"]["X"], dtype=float)
    V = berkey_V(d)
    V = BlockV(V.cluster, {c: b * a**2 for c, b in V.blocks.items()})
    return rma_mv(np.array(d["yi"]) * a, V, X, inner=d["outcome"], outer=d["trial"], struct=model)


@pytest.mark.parametrize("model", ["three-level", "CS", "HCS", "UN"])
def test_scale_invariance(model):
    """yi·a and V·a² give β·a, variance components·a², the same correlations and p-values, at any a
    (scale-free stopping rules)."""
    base = scaled_fit(model, 1.0)
    for a in (1e-6, 1e-3, 1e3, 1e6):
        fit = scaled_fit(model, a)
        assert fit.converged
        assert_close(fit.beta, base.beta * a, f"beta a={a}", rtol=1e-9, atol=0)
        assert_close(fit.sigma2, base.sigma2 * a**2, f"sigma2 a={a}", rtol=1e-8, atol=0)
        assert_close(fit.tau2, base.tau2 * a**2, f"tau2 a={a}", rtol=1e-8, atol=0)
        assert_close(fit.rho, base.rho, f"rho a={a}", rtol=1e-8, atol=0)
        assert log_p_close(fit.pval, base.pval, base.zval), f"pval a={a}"


def test_row_order_does_not_matter():
    d = CASES["assink2016"]["data"]
    perm = np.random.default_rng(1).permutation(len(d["yi"]))
    take = lambda key: np.asarray(d[key])[perm]  # noqa: E731
    base = rma_mv(d["yi"], d["vi"], nested=[d["study"], d["esid"]])
    fit = rma_mv(take("yi"), take("vi"), nested=[take("study"), take("esid")])
    assert_close(fit.sigma2, base.sigma2, "sigma2", rtol=1e-10, atol=0)
    assert_close(fit.beta, base.beta, "beta", rtol=1e-10, atol=0)


def test_padded_stacks_give_the_unpadded_fit(monkeypatch):
    """Blocks of several sizes stacked with padding rows (the default for small models) give the fit of one
    stack per size: the padding adds nothing to any likelihood term, and marginal_blocks() leaves it out."""
    from metarepro.stats.mv import model

    d = CASES["assink2016"]["data"]
    args = (d["yi"], d["vi"])
    kwargs = {"nested": [d["study"]], "inner": d["deltype"], "outer": d["study"], "struct": "ID"}
    padded = rma_mv(*args, **kwargs)
    monkeypatch.setattr(model, "PAD_SLACK", -np.inf)  # no merging: one stack per block size
    unpadded = rma_mv(*args, **kwargs)
    assert len(padded._model.groups) < len(unpadded._model.groups)
    assert_close(padded.logLik, unpadded.logLik, "ll", rtol=1e-12, atol=0)
    for name in ("beta", "se", "sigma2", "tau2", "rho", "QE"):
        assert_close(getattr(padded, name), getattr(unpadded, name), name, rtol=1e-9, atol=0)
    blocks = {rows.shape[1]: (rows, M) for rows, M in padded.marginal_blocks()}
    for rows, M in unpadded.marginal_blocks():
        np.testing.assert_array_equal(blocks[rows.shape[1]][0], rows)
        assert_close(blocks[rows.shape[1]][1], M, "marginal blocks", rtol=1e-9, atol=0)


@pytest.mark.parametrize("case", ["three-level", "UN", "AR-11"])
@pytest.mark.parametrize("method", ["REML", "ML"])
def test_observed_information_is_the_derivative_of_the_score(case, method):
    """The analytic observed information (the solver's Newton matrix) against central differences of the
    analytic score, −∂score/∂θ (step 1e-5, error ~1e-10 relative)."""
    from metarepro.stats.mv.likelihood import evaluate
    from metarepro.stats.mv.model import _build
    from metarepro.stats.mv.solver import _derivatives

    d = CASES["konstantopoulos2011"]["data"]
    yi, V, X = np.asarray(d["yi"]), np.asarray(d["vi"]), np.ones((len(d["yi"]), 1))
    if case == "three-level":
        args, theta = ([d["district"], d["school"]], None, None, "CS"), np.log([0.06, 0.03])
    elif case == "AR-11":
        args, theta = (None, d["school"], d["district"], "AR"), np.array([np.log(0.09), 0.9])
    else:
        b = CASES["berkey1998"]["data"]
        yi, V = np.asarray(b["yi"]), berkey_V(b)
        X = np.array(CASES["berkey1998"]["fits"]["un_reml"]["X"], dtype=float)
        args, theta = (None, b["outcome"], b["trial"], "UN"), np.array([np.log(0.01), np.log(0.03), 0.5])
    model, _ = _build(yi, V, X, *args)
    score = lambda t: _derivatives(model, evaluate(model, model.marginal(t)), t, method)[0]  # noqa: E731
    _, _, observed = _derivatives(model, evaluate(model, model.marginal(theta)), theta, method, observed=True)
    h = 1e-5
    numeric = np.stack([(score(theta - h * e) - score(theta + h * e)) / (2 * h) for e in np.eye(theta.size)])
    assert_close(observed, (numeric + numeric.T) / 2, "observed information", rtol=1e-6, atol=1e-8)


def test_zero_component_is_reported_at_the_boundary():
    """Identical effects within each district: the school-level variance has its maximum at 0."""
    d = CASES["konstantopoulos2011"]["data"]
    district = np.asarray(d["district"])
    means = {g: np.mean(np.asarray(d["yi"])[district == g]) for g in np.unique(district)}
    yi = np.array([means[g] for g in district])
    fit = rma_mv(yi, d["vi"], nested=[d["district"], d["school"]])
    assert fit.converged
    assert fit.boundary == [1]
    assert fit.sigma2[1] == 0.0


def test_iteration_cap_is_reported_as_not_converged():
    d = CASES["assink2016"]["data"]
    fit = rma_mv(d["yi"], d["vi"], nested=[d["study"], d["esid"]], control=MVControl(max_iter=2))
    assert not fit.converged


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "DL"}, "method must be one of"),
        ({"test": "knha"}, "test must be one of"),
        ({"dfs": "bw"}, "dfs must be one of"),
        ({"struct": "HAR", "inner": [1] * 4, "outer": [1, 1, 2, 2]}, "struct"),
    ],
)
def test_bad_options_name_the_allowed_values(kwargs, message):
    args = {"nested": [[1, 1, 2, 2]]} if "inner" not in kwargs else {}
    with pytest.raises(ValueError, match=message):
        rma_mv([0.1, 0.2, 0.3, 0.4], [0.01] * 4, **args, **kwargs)


def test_missing_group_names_the_row():
    with pytest.raises(ValueError, match="nested grouping 2 is missing in row 3"):
        rma_mv([0.1, 0.2, 0.3, 0.4], [0.01] * 4, nested=[[1, 1, 2, 2], [1.0, 2.0, np.nan, 1.0]])


def test_profile_ci_of_a_zero_component_starts_at_zero():
    d = CASES["konstantopoulos2011"]["data"]
    district = np.asarray(d["district"])
    means = {g: np.mean(np.asarray(d["yi"])[district == g]) for g in np.unique(district)}
    fit = rma_mv([means[g] for g in district], d["vi"], nested=[d["district"], d["school"]])
    ci = confint(fit, "sigma2", 1)
    assert ci["ci_low"] == 0.0 and ci["estimate"] == 0.0
    assert ci["ci_high_found"] and ci["ci_high"] > 0
    # the upper bound solves the profile equation: 2(ll̂ − ll(bound)) = χ²₁(0.95)
    from scipy import stats

    from metarepro.stats.mv.inference import _profile_ll

    ll, converged = _profile_ll(fit, 1, np.log(ci["ci_high"]), MVControl())
    assert converged
    assert abs(2 * (fit.logLik - ll) - stats.chi2.ppf(0.95, 1)) < 1e-8


def test_fixing_a_variance_at_zero_gives_the_reduced_model():
    """metafor's sigma2 = c(0, NA) in ~ 1 | district/school is the two-level model ~ 1 | study (reference)."""
    d = CASES["konstantopoulos2011"]["data"]
    ref = CASES["konstantopoulos2011"]["fits"]["two_level_reml"]
    fit = rma_mv(d["yi"], d["vi"], nested=[d["district"], d["school"]], start=[-np.inf, np.log(0.05)])
    assert fit.converged and fit.parms == ref["free"]["parms"]
    assert fit.sigma2[0] == 0.0
    assert_close(fit.sigma2[1], ref["sigma2"], "sigma2", **ITERATIVE)
    assert_close(fit.logLik, ref["logLik"], "ll", **ITERATIVE)
