"""Case diagnostics (metarepro.stats.influence) against R metafor 3.8-1.

Expected values come only from committed R scripts:

* ``tests/reference/generate_metafor_reference_extra.R`` → ``metafor_reference_extra.json``: ``leave1out(res)``,
  ``influence(res)``, ``baujat(res)``, ``cumul(res, order = year)`` for ``res <- rma(yi, vi, method, test,
  control = tight)`` on dat.bcg (REML, DL), dat.normand1999 and dat.molloy2014 (REML), tests z and knha.
* ``tests/reference/generate_bias_reference.R`` → ``bias_reference.json``: the same calls for every τ² method
  (EE, DL, REML, ML, PM, SJ, HE, HS, EB) on dat.bcg and more methods on the other datasets, dat.hackshaw1998,
  k = 2 and k = 3 subsets of dat.bcg (deletion fits with one or two studies) and ``cumul`` with tied order keys
  (dat.molloy2014 ordered by vi).
"""

import time

import numpy as np
import pytest
from conftest import assert_close, load_reference
from tolerances import FORMULA

from metarepro.stats.influence import baujat, cumul, influence, leave1out
from metarepro.stats.rma import rma

EXTRA = load_reference("metafor_reference_extra.json")
BIAS = load_reference("bias_reference.json")

TABLE = {  # our FitTable field -> metafor list.rma column (extra file / bias file)
    "estimate": ("estimate", "estimate"), "se": ("se", "se"), "zval": (None, "zval"), "pval": (None, "pval"),
    "ci_low": ("ci.lb", "ci_lb"), "ci_high": ("ci.ub", "ci_ub"), "q": ("Q", "Q"), "q_p": ("Qp", "Qp"),
    "tau2": ("tau2", "tau2"), "i2": ("I2", "I2"), "h2": ("H2", "H2"),
}  # fmt: skip


def _extra_cases_gen():
    for ds in EXTRA["datasets"]:
        for a in ds["analyses"]:
            yield pytest.param(ds, a, id=f"{ds['name']}-{a['method']}-{a['test']}")


# The bcg ML cases include the first 7 studies by year (cumul step 7), whose ML likelihood has a boundary
# maximum at τ² = 0 and a higher interior one at 0.0634 that metafor's Fisher scoring reaches from its start.
def _bias_cases_gen():
    for ds in BIAS["datasets"]:
        for a in ds["analyses"]:
            yield pytest.param(ds, a, id=f"{ds['name']}-{a['method']}-{a['test']}")


def _extra_cases():
    return list(_extra_cases_gen())


def _bias_cases():
    return list(_bias_cases_gen())


def _data(ds):
    return np.array(ds["escalc"]["yi"] if "escalc" in ds else ds["yi"]), np.array(
        ds["escalc"]["vi"] if "escalc" in ds else ds["vi"]
    )


def _extra_stat_names(ref, test, pval="pval"):
    return {"zval": "zval" if test == "z" else "tval", "pval": pval}


# ------------------------------------------------------------------------------------------------------------
# metafor_reference_extra.json
# ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("ds", "a"), _extra_cases())
def test_leave1out_extra(ds, a):
    yi, vi = _data(ds)
    ref = a["leave1out"]
    ours = leave1out(yi, vi, a["method"], a["test"])
    names = _extra_stat_names(ref, a["test"])
    for field, (extra_name, _) in TABLE.items():
        name = extra_name or names[field]
        assert_close(getattr(ours, field), ref[name], f"leave1out {field}")
    np.testing.assert_array_equal(ours.order + 1, ref["slab"])


@pytest.mark.parametrize(("ds", "a"), _extra_cases())
def test_influence_extra(ds, a):
    yi, vi = _data(ds)
    ref = a["influence"]
    ours = influence(yi, vi, a["method"], a["test"])
    pairs = [("rstudent", "rstudent"), ("dffits", "dffits"), ("cook_d", "cook.d"), ("cov_r", "cov.r"),
             ("tau2_del", "tau2.del"), ("qe_del", "QE.del"), ("hat", "hat"), ("weight", "weight")]  # fmt: skip
    for field, name in pairs:
        assert_close(getattr(ours, field), ref["inf"][name], f"influence {field}")
    assert_close(ours.dfbs, ref["dfbs"]["intrcpt"], "influence dfbs")
    np.testing.assert_array_equal(ours.inf, ref["is_infl"])
    assert_close(ours.fit.tau2, ref["tau2"], "tau2")
    assert_close(ours.fit.q, ref["QE"], "QE")


@pytest.mark.parametrize(("ds", "a"), _extra_cases())
def test_influence_takes_the_fit_a_job_has(ds, a):
    """Given the model's fit (an analysis job has it), influence does not refit it: metafor's values (the same
    reference as above), exactly those of influence fitting alone."""
    yi, vi = _data(ds)
    fit = rma(yi, vi, a["method"], a["test"])
    given, alone = influence(yi, vi, a["method"], a["test"], fit=fit), influence(yi, vi, a["method"], a["test"])
    assert given.fit is fit
    assert_close(given.rstudent, a["influence"]["inf"]["rstudent"], "influence rstudent")
    for field in ("rstudent", "dffits", "cook_d", "cov_r", "tau2_del", "hat", "dfbs"):
        np.testing.assert_array_equal(getattr(given, field), getattr(alone, field))


@pytest.mark.parametrize(("ds", "a"), _extra_cases())
def test_baujat_extra(ds, a):
    yi, vi = _data(ds)
    ours = baujat(yi, vi, a["method"], a["test"])
    assert_close(ours.x, a["baujat"]["x"], "baujat x")
    assert_close(ours.y, a["baujat"]["y"], "baujat y")


@pytest.mark.parametrize(("ds", "a"), _extra_cases())
def test_cumul_extra(ds, a):
    yi, vi = _data(ds)
    ref = a["cumul"]
    # normand1999 is ordered by study number, i.e. the given order
    order = ds["moderators"]["year"] if ref["order_by"] == "year" else None
    ours = cumul(yi, vi, order, a["method"], a["test"])
    np.testing.assert_array_equal(ours.order + 1, ref["ids"])
    names = _extra_stat_names(ref, a["test"], pval="pvals")
    for field, (extra_name, _) in TABLE.items():
        assert_close(getattr(ours, field), ref[extra_name or names[field]], f"cumul {field}")
    np.testing.assert_array_equal(ours.k, np.arange(1, yi.size + 1))


# ------------------------------------------------------------------------------------------------------------
# bias_reference.json (every method, tiny k, tied order keys)
# ------------------------------------------------------------------------------------------------------------


def _check_table(ours, ref, what, skip=()):
    keep = np.setdiff1d(np.arange(len(ref["estimate"])), skip)
    for field, (_, name) in TABLE.items():
        expected = np.asarray(ref[name], dtype=object)[keep]
        assert_close(np.atleast_1d(getattr(ours, field))[keep], expected, f"{what} {field}")


# Fits where metafor's default start stops at a lower maximum than the global one the engine reports (tau2.
# global_check): (dataset, method, table) -> (row, case of global_max_reference.json, written by
# generate_global_max_reference.R from the best of many rma() starts). dat.bcg's first 6 studies by year, ML:
# metafor's default start gives tau2 = 2e-14 (logLik -3.554), the likelihood is higher at tau2 = 0.0596 (-3.369).
GLOBAL_ROWS = {("bcg_logRR", "ML", "cumul"): (5, "bcg_logRR_first6_by_year")}


def _check_global_row(table, ds, a, what):
    """The rows of GLOBAL_ROWS against the best-of-starts reference; returns the rows to skip in _check_table."""
    if (ds["name"], a["method"], what) not in GLOBAL_ROWS:
        return ()
    row, name = GLOBAL_ROWS[(ds["name"], a["method"], what)]
    (case,) = [c for c in load_reference("global_max_reference.json")["cases"] if c["name"] == name]
    ref = case["fits"][a["method"]]
    fields = [("tau2", "tau2"), ("estimate", "estimate")]
    if a["test"] == "z":  # the reference is a z fit
        fields += [("se", "se"), ("ci_low", "ci_lb"), ("ci_high", "ci_ub")]
    for field, name in fields:
        assert_close(getattr(table, field)[row], ref[name], f"{what} {field} (global maximum)")
    return (row,)


@pytest.mark.parametrize(("ds", "a"), _bias_cases())
def test_case_diagnostics_all_methods(ds, a):
    yi, vi = _data(ds)
    method, test = a["method"], a["test"]
    _check_table(leave1out(yi, vi, method, test), a["leave1out"], "leave1out")

    ref = a["influence"]
    ours = influence(yi, vi, method, test)
    for field, name in [("rstudent", "rstudent"), ("dffits", "dffits"), ("cook_d", "cook_d"), ("cov_r", "cov_r"),
                        ("tau2_del", "tau2_del"), ("qe_del", "QE_del"), ("hat", "hat"), ("weight", "weight"),
                        ("dfbs", "dfbs")]:  # fmt: skip
        assert_close(getattr(ours, field), ref[name], f"influence {field}")
    np.testing.assert_array_equal(ours.inf, ref["is_infl"])

    b = baujat(yi, vi, method, test)
    assert_close(b.x, a["baujat"]["x"], "baujat x")
    assert_close(b.y, a["baujat"]["y"], "baujat y")

    c = cumul(yi, vi, ds["order"], method, test)
    np.testing.assert_array_equal(c.order + 1, a["cumul"]["ids"])
    _check_table(c, a["cumul"], "cumul", _check_global_row(c, ds, a, "cumul"))


def test_single_study_refits_use_z():
    """metafor refits a single study with test="z" (rma.uni: 'Setting argument test="z" since k=1'), so a knha
    leave-one-out of k = 2 reports z-based CIs: hand check, estimate = y_other, se = √v_other."""
    yi, vi = np.array([0.2, 0.5]), np.array([0.04, 0.09])
    out = leave1out(yi, vi, "REML", "knha")
    np.testing.assert_allclose(out.estimate, [0.5, 0.2], rtol=FORMULA)
    np.testing.assert_allclose(out.se, [0.3, 0.2], rtol=FORMULA)
    np.testing.assert_allclose(out.ci_high, [0.5 + 1.959963984540054 * 0.3, 0.2 + 1.959963984540054 * 0.2])


def test_cumul_decreasing_keeps_ties_in_order():
    yi, vi = np.array([0.1, 0.2, 0.3, 0.4]), np.array([0.1, 0.1, 0.1, 0.1])
    out = cumul(yi, vi, order=[1, 2, 2, 0], decreasing=True)
    np.testing.assert_array_equal(out.order, [1, 2, 0, 3])


def test_rejects_single_study():
    with pytest.raises(ValueError, match="k >= 2"):
        leave1out([0.1], [0.1])


def test_k1000_is_fast():
    """leave1out + influence on k = 1,000 each run one batch of 1,000 fits; guard against a per-study loop."""
    rng = np.random.default_rng(7)
    vi = rng.uniform(0.01, 0.2, 1000)
    yi = rng.normal(0.3, np.sqrt(vi + 0.05))
    start = time.perf_counter()
    out = leave1out(yi, vi)
    inf = influence(yi, vi)
    elapsed = time.perf_counter() - start
    assert np.isfinite(out.estimate).all() and np.isfinite(inf.rstudent).all()
    assert elapsed < 30, f"leave1out + influence took {elapsed:.1f} s for k = 1000"
