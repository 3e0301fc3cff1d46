"""Binary outcomes, proportions and variability ratios against R metafor 3.8-1.

Reference: tests/reference/binary_reference.json and tests/reference/print/{mh,peto}_*.txt, written by
tests/reference/generate_binary_reference.R on metadat's dat.bcg, dat.linde2005, dat.nielweise2007 (zero cells, a
double-zero study), dat.collins1985a/b, dat.pritz1997, dat.normand1999, dat.moore1998 (data/raw) and small edge
cases (a zero cell, a double-zero table, tables with only events, an empty arm; proportions of 0 and 1).

Tolerances (tests/tolerances.py): escalc's yi and vi are a few operations each, so ``FORMULA`` relative, with an
absolute floor of ``difference_atol`` over the set (RD and PETO are differences); rma() fits are ``ITERATIVE``
(conftest.assert_close), I² and H² with τ²'s absolute tolerance carried through I² = 100 τ²/(ṽ + τ²);
rma_mh and rma_peto are closed forms but long sums with cancellations (Tarone's test, RD, I²), compared at 1e-8
relative, p-values on the log scale (``log_p_close``). The largest differences seen are in the module's
``test_largest_differences_are_reported`` output (run with -s).
"""

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import REPO, assert_close, load_reference
from print_reference import assert_prints_like_metafor
from tolerances import FORMULA, ITERATIVE, difference_atol, log_p_close

import metarepro
from metarepro import escalc, rma, rma_mh, rma_peto
from metarepro.stats.effects import transform_back
from metarepro.stats.effects_binary import transf_iarcsin, transf_ipft, transf_ipft_hm, transf_pft

REFERENCE = load_reference("binary_reference.json")
SOURCES = {"table": REFERENCE["tables"], "proportion": REFERENCE["proportions"], "groups": REFERENCE["groups"]}
# the rma result's names are being unified with metafor's: accept either spelling
RMA_NAMES = {"beta": "estimate", "ci.lb": "ci_low", "ci.ub": "ci_high", "QE": "q", "QEp": "q_p", "I2": "i2",
             "H2": "h2"}  # fmt: skip
MH_FIELDS = ("beta", "se", "zval", "ci.lb", "ci.ub", "QE", "I2", "H2", "k", "k.yi", "k.pos", "CO", "MH", "BD", "TA")
P_FIELDS = ("pval", "QEp", "COp", "MHp", "BDp", "TAp")


def values(x):
    return np.array([np.nan if v is None else v for v in x], dtype=float)


def data_of(kind, dataset):
    return {name: values(column) for name, column in SOURCES[kind][dataset].items()}


def settings_of(case):
    """R's settings (an empty list when none) as keyword arguments; R's vectors of two as tuples."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in (case.get("settings") or {}).items()}


def quietly(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # metafor's warnings (NAs, ±Inf recoded), checked in their own tests
        return fn(*args, **kwargs)


def case_id(case):
    what = case.get("measure", "PETO")
    extra = ",".join(f"{k}={v}" for k, v in settings_of(case).items())
    return f"{case['dataset']}-{what}" + (f"-{extra}" if extra else "")


def rma_field(fit, name):
    for attribute in (name.replace(".", "_"), RMA_NAMES.get(name, name)):
        if hasattr(fit, attribute):
            return getattr(fit, attribute)
    raise AttributeError(name)


def test_reference_provenance():
    assert REFERENCE["metafor_version"].startswith("3.8")
    measures = {case["measure"] for case in REFERENCE["escalc"]}
    assert measures == {"OR", "RR", "RD", "PETO", "PR", "PLN", "PLO", "PAS", "PFT", "VR", "CVR"}
    assert {f["method"] for f in REFERENCE["rma"]} == {"REML", "DL"} and {f["test"] for f in REFERENCE["rma"]} == {
        "z", "knha"}  # fmt: skip
    assert {f["measure"] for f in REFERENCE["rma_mh"]} == {"OR", "RR", "RD"} and len(REFERENCE["rma_peto"]) >= 20


@pytest.mark.parametrize("case", REFERENCE["escalc"], ids=case_id)
def test_escalc_matches_metafor(case):
    yi, vi = quietly(escalc, case["measure"], **data_of(case["kind"], case["dataset"]), **settings_of(case))
    for name, ours in (("yi", yi), ("vi", vi)):
        theirs = values(case[name])
        np.testing.assert_allclose(ours, theirs, rtol=FORMULA, atol=difference_atol(theirs[np.isfinite(theirs)]),
                                   equal_nan=True, err_msg=f"{case_id(case)} {name}")  # fmt: skip


def default_effects(dataset, measure):
    case = next(c for c in REFERENCE["escalc"] if c["dataset"] == dataset and c["measure"] == measure
                and not c["settings"])  # fmt: skip
    return case, values(case["yi"]), values(case["vi"])


def typical_v(vi):
    w = 1 / vi
    return (w.size - 1) * w.sum() / (w.sum() ** 2 - (w**2).sum())


def fit_id(fit):
    return f"{fit['dataset']}-{fit['measure']}-{fit['method']}-{fit['test']}"


@pytest.mark.parametrize("fit", REFERENCE["rma"], ids=fit_id)
def test_rma_on_binary_effects_matches_metafor(fit):
    case, yi, vi = default_effects(fit["dataset"], fit["measure"])
    ours = quietly(rma, yi, vi, method=fit["method"], test=fit["test"])
    v = typical_v(vi[np.isfinite(vi)])
    for name in ("beta", "se", "zval", "ci.lb", "ci.ub", "QE", "tau2", "k"):
        assert_close(rma_field(ours, name), fit[name], f"{fit_id(fit)} {name}")
    for name, scale in (("I2", 100 / v), ("H2", 1 / v)):  # functions of τ²: its absolute tolerance, carried through
        assert_close(rma_field(ours, name), fit[name], name, atol=ITERATIVE["atol"] * scale)
    assert log_p_close(rma_field(ours, "pval"), fit["pval"], rma_field(ours, "zval"))
    if "back" in fit:  # a pooled Freeman-Tukey value as a proportion, metafor's transf.ipft.hm
        ni = data_of("proportion", fit["dataset"])["ni"]
        for name in ("pred", "ci.lb", "ci.ub"):
            x = rma_field(ours, "beta" if name == "pred" else name)
            assert_close(transf_ipft_hm(x, ni), fit["back"][name], f"{fit_id(fit)} back-transformed {name}")


def assert_pooled_matches(ours, reference, fields):
    label = case_id(reference)
    for name in fields:
        if name in reference:
            assert_close(getattr(ours, name.replace(".", "_")), reference[name], f"{label} {name}")
    for name in P_FIELDS:
        if name not in reference:
            continue
        p = getattr(ours, name)
        if reference[name] is None:
            assert np.isnan(p), f"{label} {name}"
        else:
            assert log_p_close(p, reference[name]), f"{label} {name}: {p} vs {reference[name]}"
    assert_close(ours.weights, reference["weights"], f"{label} weights")


@pytest.mark.parametrize("reference", REFERENCE["rma_mh"], ids=case_id)
def test_rma_mh_matches_metafor(reference):
    data = data_of("table", reference["dataset"])
    ours = quietly(rma_mh, **data, measure=reference["measure"], **settings_of(reference))
    fields = MH_FIELDS if reference["measure"] == "OR" else tuple(f for f in MH_FIELDS if f not in ("CO", "MH", "BD",
                                                                                                   "TA", "k.pos"))
    assert_pooled_matches(ours, reference, fields)


@pytest.mark.parametrize("reference", REFERENCE["rma_peto"], ids=case_id)
def test_rma_peto_matches_metafor(reference):
    ours = quietly(rma_peto, **data_of("table", reference["dataset"]), **settings_of(reference))
    assert_pooled_matches(ours, reference, ("beta", "se", "zval", "ci.lb", "ci.ub", "QE", "I2", "H2", "k", "k.yi",
                                            "k.pos"))  # fmt: skip


TABLES = {name: data_of("table", name) for name in REFERENCE["tables"]}
PRINTS = {
    "mh_or_bcg": lambda: rma_mh(**TABLES["bcg"]),
    "mh_or_nielweise2007": lambda: rma_mh(**TABLES["nielweise2007"]),
    "mh_or_edge": lambda: rma_mh(**TABLES["edge"]),
    "mh_rr_linde2005": lambda: rma_mh(**TABLES["linde2005"], measure="RR"),
    "mh_rd_moore1998": lambda: rma_mh(**TABLES["moore1998"], measure="RD"),
    "peto_bcg": lambda: rma_peto(**TABLES["bcg"]),
    "peto_collins1985a": lambda: rma_peto(**TABLES["collins1985a"]),
}


@pytest.mark.parametrize("case", PRINTS)
def test_prints_like_metafor(case):
    fit = quietly(PRINTS[case])
    assert_prints_like_metafor(fit, case)
    json.dumps(fit.to_dict())  # plain values only
    assert fit.to_frame().shape[0] == 1


def test_metafor_warnings_name_what_was_left_out():
    """dat.linde2005: two trials without counts (omitted) and one without responders in either arm (no yi)."""
    with pytest.warns(UserWarning) as caught:
        fit = rma_mh(**TABLES["linde2005"], measure="RR")
    messages = [str(w.message) for w in caught]
    assert messages == ["Tables with NAs omitted from model fitting.", "Some yi/vi values are NA."]
    assert fit.warnings == tuple(messages) and fit.k == 24 and fit.k_yi == 23
    assert np.isnan(fit.weights[[4, 25]]).all() and np.isclose(np.nansum(fit.weights), 100)
    with pytest.warns(UserWarning, match="values equal to \\+-Inf. Recoded to NAs"):
        yi, _ = escalc("OR", ai=[0, 3], bi=[10, 7], ci=[2, 4], di=[8, 6], to="none")
    assert np.isnan(yi[0]) and np.isfinite(yi[1])


def test_events_and_totals_give_the_same_tables():
    bcg = TABLES["bcg"]
    n1i, n2i = bcg["ai"] + bcg["bi"], bcg["ci"] + bcg["di"]
    for measure in ("OR", "RR", "RD", "PETO"):
        a = escalc(measure, **bcg)
        b = escalc(measure, ai=bcg["ai"], n1i=n1i, ci=bcg["ci"], n2i=n2i)
        np.testing.assert_array_equal(a, b)
    assert rma_mh(ai=bcg["ai"], n1i=n1i, ci=bcg["ci"], n2i=n2i).beta == rma_mh(**bcg).beta


def test_a_hand_calculation():
    """One table a = 4, b = 6, c = 2, d = 8 (no zero cell): log OR = ln(4·8/(6·2)), variance 1/4 + 1/6 + 1/2 + 1/8;
    log RR = ln(0.4/0.2), variance 1/4 − 1/10 + 1/2 − 1/10; RD = 0.2, variance 0.4·0.6/10 + 0.2·0.8/10;
    Peto: E = 6·10/20 = 3, V = 6·14·(1/2)(1/2)/19, yi = (4 − 3)/V."""
    table = {"ai": [4], "bi": [6], "ci": [2], "di": [8]}
    expected = {"OR": (np.log(32 / 12), 1 / 4 + 1 / 6 + 1 / 2 + 1 / 8),
                "RR": (np.log(2), 1 / 4 - 1 / 10 + 1 / 2 - 1 / 10),
                "RD": (0.2, 0.024 + 0.016), "PETO": (19 / 21, 19 / 21)}  # fmt: skip
    for measure, (y, v) in expected.items():
        yi, vi = escalc(measure, **table)
        np.testing.assert_allclose([yi[0], vi[0]], [y, v], rtol=FORMULA, err_msg=measure)
    # a zero cell: metafor's default adds 1/2 to the four cells of that table only
    yi, vi = escalc("OR", ai=[0, 4], bi=[10, 6], ci=[3, 2], di=[7, 8])
    np.testing.assert_allclose(yi, [np.log(0.5 * 7.5 / (10.5 * 3.5)), np.log(32 / 12)], rtol=FORMULA)


def test_back_transformations():
    """Closed forms: exp for ratios, the inverse logit, sin², and the Freeman-Tukey round trip."""
    assert transform_back("OR", np.log(2.0)) == pytest.approx(2.0, rel=FORMULA)
    assert transform_back("PLO", 0.0) == 0.5 and transform_back("PAS", np.pi / 6) == pytest.approx(0.25, rel=FORMULA)
    assert transform_back("RD", 0.1) is None and transform_back("PR", 0.1) is None
    assert transf_iarcsin(-0.1) == 0 and transf_iarcsin(2.0) == 1
    p, n = np.array([0.0, 0.1, 0.5, 0.93, 1.0]), 30.0
    np.testing.assert_allclose(transf_ipft(transf_pft(p, n), n), p, atol=64 * np.finfo(float).eps)
    ni = np.array([10.0, 20.0, 40.0])
    harmonic = 3 / (1 / 10 + 1 / 20 + 1 / 40)
    assert transf_ipft_hm(0.6, ni) == transform_back("PFT", 0.6, ni=ni) == transf_ipft(0.6, harmonic)
    with pytest.raises(ValueError, match="give ni"):
        transform_back("PFT", 0.6)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: escalc("OR", ai=[3, -1], bi=[5, 5], ci=[2, 2], di=[6, 6]), r"ai\[1\] = -1 is negative"),
        (lambda: escalc("RR", ai=[3, 12], n1i=[10, 10], ci=[2, 2], n2i=[8, 8]),
         r"ai\[1\] = 12 events is more than n1i\[1\] = 10"),
        (lambda: escalc("RD", ai=[3, 2.5], bi=[5, 5], ci=[2, 2], di=[6, 6]), r"ai\[1\] = 2.5 is not a whole number"),
        (lambda: escalc("OR", ai=[3], bi=[5], ci=[2], di=[6], n1i=[9]), r"n1i\[0\] = 9 is not ai \+ bi = 8"),
        (lambda: escalc("OR", ai=[3], ci=[2], di=[6]), "give bi .* or n1i"),
        (lambda: escalc("PR", xi=[3, 11], ni=[10, 10]), r"xi\[1\] = 11 events is more than ni\[1\] = 10"),
        (lambda: escalc("PLO", xi=[0], ni=[0]), r"ni\[0\] = 0: a proportion needs at least one participant"),
        (lambda: escalc("PLO", xi=[-2], ni=[5]), r"xi\[0\] = -2 is negative"),
        (lambda: escalc("OR", ai=[1], bi=[1], ci=[1], di=[1], to="some"), "to must be one of all, only0"),
        (lambda: escalc("PR", xi=[1], ni=[4], vtype="UB2"), "vtype for PR must be one of LS, UB, AV"),
        (lambda: escalc("CVR", n1i=[10], sd1i=[1], n2i=[10], sd2i=[1]), "missing: m1i, m2i"),
        (lambda: escalc("ORR", ai=[1]), "measure must be one of"),
        (lambda: rma_mh(ai=[1], bi=[2], ci=[3], di=[4], measure="PETO"), "OR, RR, RD for the Mantel-Haenszel"),
        (lambda: rma_mh(ai=[1], bi=[2], ci=[3], di=[4], add=(1, 2, 3)), "add is one value or two"),
        (lambda: rma_peto(ai=[0, 0], bi=[5, 6], ci=[0, 0], di=[7, 8]), "one of the two outcomes never occurred"),
        (lambda: rma_mh(ai=[np.nan], bi=[2], ci=[3], di=[4]), "no table without missing cells"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(call, message):
    with pytest.raises(ValueError, match=message):
        quietly(call)


def test_public_names():
    for name in ("escalc", "rma_mh", "rma_peto", "RmaMhResult", "RmaPetoResult"):
        assert name in metarepro.__all__ and getattr(metarepro, name)
    assert {"OR", "RR", "RD", "PETO", "PFT", "VR", "CVR"} <= set(metarepro.MEASURES)


@pytest.mark.parametrize(("file", "dataset", "columns"), [
    ("linde2005_st_johns_wort.csv", "linde2005", ("ai", "n1i", "ci", "n2i")),
    ("moore1998_topical_nsaids.csv", "moore1998", ("Ee", "Ne", "Ec", "Nc")),
])  # fmt: skip
def test_exported_datasets_are_the_ones_metafor_ran_on(file, dataset, columns):
    """data/raw's exports (data/raw/export_metadat_binary.R) hold the counts of the reference tables, and every row
    names its source."""
    sheet = pd.read_csv(REPO / "data" / "raw" / file)
    ai, n1i, ci, n2i = (sheet[c].to_numpy(dtype=float) for c in columns)
    table = TABLES[dataset]
    np.testing.assert_array_equal(ai, table["ai"])
    np.testing.assert_array_equal(n1i - ai, table["bi"])
    np.testing.assert_array_equal(ci, table["ci"])
    np.testing.assert_array_equal(n2i - ci, table["di"])
    assert sheet["source"].str.contains("doi:10.").all() and sheet["location"].notna().all()
