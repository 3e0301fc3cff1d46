"""Binary outcomes from a config to pooled.json: counts → effects (every row accounted for) → rma / rma.mh / rma.peto /
rma.glmm → back-transformed record, and leave1out/cumul of MH and Peto fits, against metafor 3.8-1
(tests/reference/generate_binary_pipeline_reference.R → binary_pipeline_reference.json), on the sheets the example
configs read (data/raw/linde2005_st_johns_wort.csv, data/raw/moore1998_topical_nsaids.csv)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from metarepro.inputs.sheet import LINE
from metarepro.jobs.pool import run_analysis
from metarepro.pipeline import binary
from metarepro.pipeline.analysis import Settings, compute_effects
from tests.conftest import REFERENCE_DIR, REPO
from tests.tolerances import FORMULA, GLMER, ITERATIVE

REF = json.loads((REFERENCE_DIR / "binary_pipeline_reference.json").read_text())["fits"]
LINDE = {"data": "data/raw/linde2005_st_johns_wort.csv",
         "columns": {"study_id": "id", "events_cases": "ai", "n_cases": "n1i", "events_controls": "ci",
                     "n_controls": "n2i"}}  # fmt: skip
MOORE = {"data": "data/raw/moore1998_topical_nsaids.csv",
         "columns": {"study_id": "id", "study": "author", "events_cases": "Ee", "n_cases": "Ne",
                     "events_controls": "Ec", "n_controls": "Nc"}}  # fmt: skip
MOORE_TREATED = {"data": "data/raw/moore1998_topical_nsaids.csv",
                 "columns": {"study_id": "id", "study": "author", "events": "Ee", "n": "Ne"}}  # fmt: skip
SHEETS = {"linde2005": LINDE, "moore1998": MOORE, "moore1998_treated": MOORE_TREATED}
# MH, Peto and the escalc-based rma are closed forms or REML to 1e-13: ITERATIVE. rma.glmm's ML fits use lme4's
# optimum in R, which stops by its own rule (bobyqa/Nelder-Mead, FtolAbs 1e-5): tests/tolerances.py GLMER, β within
# 0.01 of R's se, the rest to 1% (metarepro.stats.glmm documents 3.5e-4 relative in β, 8.8e-4 in τ², 3.7e-3 in se as
# the largest differences seen).
CRIT = 1.959963984540054  # qnorm(0.975): rma.glmm's z intervals


def glmm_tolerances(ref) -> dict:
    """{field: np.isclose keywords} for an rma.glmm fit: a bound β ± crit·s carries β's stopping error and crit times
    s's 1% (s = se for the CI, √(se² + τ²) for the prediction interval)."""
    step, se_pi = GLMER["beta_se"] * ref["se"], np.hypot(ref["se"], ref["tau2"] ** 0.5)
    ci, pi = step + CRIT * GLMER["rtol"] * ref["se"], step + CRIT * GLMER["rtol"] * se_pi
    bounds = {"estimate": step, "ci_low": ci, "ci_high": ci, "pi_low": pi, "pi_high": pi}
    return {**{field: {"rtol": 0, "atol": atol} for field, atol in bounds.items()},
            **dict.fromkeys(("se", "tau2", "i2", "q"), {"rtol": GLMER["rtol"], "atol": 0})}  # fmt: skip


POOLED_REF = (("estimate", "beta"), ("se", "se"), ("ci_low", "ci_lb"), ("ci_high", "ci_ub"), ("tau2", "tau2"),
              ("i2", "I2"), ("q", "QE"))  # fmt: skip
POOLED = tuple(ours for ours, _ in POOLED_REF)
BOUNDS = ("estimate", "ci_low", "ci_high", "pi_low", "pi_high")


def analysis(name, **extra):
    ref = REF[name]
    measure = "OR" if ref["measure"] == "PETO" else ref["measure"]
    return {"title": name, **SHEETS[ref["data"]], "measure": measure, **({"fit": ref["fit"]} | extra)}


@pytest.fixture(autouse=True)
def _repo(monkeypatch):
    monkeypatch.chdir(REPO)


@pytest.mark.parametrize("name", sorted(REF))
def test_pooled_record_matches_metafor(name):
    ref = REF[name]
    result = run_analysis(analysis(name)["data"], analysis(name))
    pooled = result.pooled
    glmm = ref["fit"] == "rma.glmm"
    tol = glmm_tolerances(ref) if glmm else dict.fromkeys(POOLED + BOUNDS, ITERATIVE)
    assert pooled["k"] == ref["k"]
    for ours, theirs in POOLED_REF:
        assert np.isclose(pooled[ours], ref[theirs], **tol[ours]), (ours, pooled[ours], ref[theirs])
    if "back" in ref:  # the natural scale: exp, ilogit, iarcsin, ipft.hm (metafor's transf)
        suffix = {"PLN": "prop", "PLO": "prop", "PAS": "prop", "PFT": "prop"}.get(ref["measure"], "ratio")
        shown = np.array([pooled[f"{f}_{suffix}"] for f in BOUNDS])
        if glmm:  # compared on the model's scale (log OR, logit), where the stopping error is bounded
            link = {"OR": np.log, "PLO": lambda p: np.log(p / (1 - p))}[ref["measure"]]
            for field, ours, theirs in zip(BOUNDS, link(shown), link(np.array(ref["back"])), strict=True):
                assert np.isclose(ours, theirs, **tol[field]), (field, ours, theirs)
        else:
            assert np.allclose(shown, ref["back"], **ITERATIVE), (shown, ref["back"])
    if ref.get("weights") is not None:
        weights = result.effects.loc[result.effects["included"], "weight"].to_numpy(dtype=float)
        assert np.allclose(weights, np.asarray(ref["weights"], dtype=float), **ITERATIVE, equal_nan=True)
    if ref["fit"] != "rma":
        assert pooled["fit"].startswith(ref["fit"])


@pytest.mark.parametrize("name", sorted(n for n, r in REF.items() if r["fit"] in ("rma.mh", "rma.peto")))
@pytest.mark.parametrize("kind", ["leave1out", "cumul"])
def test_mh_and_peto_refits_match_metafor(name, kind):
    """metafor's leave1out.rma.mh / cumul.rma.mh (and .rma.peto): MH or Peto refitted on each subset."""
    spec = analysis(name)
    result = run_analysis(spec["data"], spec)
    rows = result.effects[result.effects["included"]].reset_index(drop=True)
    order = None
    if kind == "cumul":
        years = result.rows.set_index(LINE).loc[rows["line"], "year"]
        order = pd.to_numeric(years, errors="coerce").to_numpy()
    table = binary.tables_refits(rows, result.settings, order)
    ref = REF[name][kind]
    for ours, theirs in (("estimate", "estimate"), ("se", "se"), ("ci_low", "ci_lb"), ("ci_high", "ci_ub"),
                         ("q", "Q"), ("i2", "I2")):  # fmt: skip
        expected = np.asarray(ref[theirs], dtype=float)
        assert np.allclose(getattr(table, ours), expected, **ITERATIVE, equal_nan=True), ours
    if kind == "cumul":  # the study added at each step (metafor's slab: its position), by year, ties as in the sheet
        assert [str(i + 1) for i in table.order] == ref["slab"]


# ---- every row accounted for ------------------------------------------------------------------------------------


def rows_of(**columns):
    n = len(next(iter(columns.values())))
    frame = pd.DataFrame({"study_id": [f"s{i}" for i in range(n)], "study": [f"S{i}" for i in range(n)], **columns})
    frame[LINE] = np.arange(2, n + 2)
    return frame


def test_events_above_the_group_size_exclude_the_row_naming_the_cells():
    rows = rows_of(events_cases=[5.0, 12.0], n_cases=[10.0, 10.0], events_controls=[3.0, 4.0], n_controls=[10, 10.0])
    effects = compute_effects(rows, Settings(measure="OR"))
    assert effects["included"].tolist() == [True, False]
    assert effects.loc[1, "reason"] == ("contradictory numbers (events_cases 12 > n_cases 10: more events than "
                                        "participants): check the source and the cells")  # fmt: skip


def test_double_zero_table_kept_with_metafors_correction_and_dropped_only_with_drop00():
    """escalc's defaults (add 1/2, to only0, drop00 FALSE): a table without events has log OR log(0.5·10.5 /
    (10.5·0.5)) = 0 and variance 2/0.5 + 2/10.5; with drop00 it is excluded with the reason."""
    rows = rows_of(events_cases=[0.0, 4.0], n_cases=[10.0, 10.0], events_controls=[0.0, 2.0], n_controls=[10, 10.0])
    kept = compute_effects(rows, Settings(measure="OR"))
    assert kept["included"].all()
    assert kept.loc[0, "yi"] == 0 and np.isclose(kept.loc[0, "vi"], 2 / 0.5 + 2 / 10.5, rtol=FORMULA)
    dropped = compute_effects(rows, Settings(measure="OR", drop00=True))
    assert dropped["included"].tolist() == [False, True]
    assert dropped.loc[0, "reason"].startswith("no events (or only events) in both groups: left out")


def test_mh_pools_a_double_zero_table_without_an_estimate_of_its_own():
    rows = rows_of(events_cases=[0.0, 4.0, 6.0], n_cases=[10.0, 10.0, 12.0], events_controls=[0.0, 2.0, 3.0],
                   n_controls=[10.0, 10.0, 12.0])  # fmt: skip
    effects = compute_effects(rows, Settings(measure="OR", fit="rma.mh"))
    assert effects["included"].all() and np.isnan(effects.loc[0, "yi"])
    assert binary.NO_ESTIMATE in effects.loc[0, "checks"]


def test_a_proportion_of_zero_or_one_is_corrected_as_metafor_and_excluded_without_correction():
    """PLO of 0/20 with add 1/2 (to only0): logit(0.5/21) and variance 1/0.5 + 1/20.5; with to: none the logit is
    infinite and the row is excluded saying why."""
    rows = rows_of(events=[0.0, 20.0, 7.0], n=[20.0, 20.0, 20.0])
    effects = compute_effects(rows, Settings(measure="PLO"))
    assert effects["included"].all()
    assert np.isclose(effects.loc[0, "yi"], np.log(0.5 / 20.5), rtol=FORMULA)
    assert np.isclose(effects.loc[0, "vi"], 1 / 0.5 + 1 / 20.5, rtol=FORMULA)
    bare = compute_effects(rows, Settings(measure="PLO", to="none"))
    assert bare["included"].tolist() == [False, False, True]
    assert bare.loc[0, "reason"].startswith("PLO is not finite for these counts")


def test_rows_without_counts_are_incomplete_and_named():
    rows = rows_of(events_cases=[5.0, np.nan], n_cases=[10.0, 10.0], events_controls=[3.0, 4.0], n_controls=[10, 10.0])
    effects = compute_effects(rows, Settings(measure="RR"))
    assert effects.loc[1, "reason"].startswith("incomplete: events_cases is empty")


def test_settings_take_metafors_defaults_per_fit():
    assert Settings.from_config({"measure": "OR", "fit": "rma.mh"}).zero_cells() == {
        "add": (0.5, 0.0), "to": ("only0", "none"), "drop00": (True, False)}
    assert Settings.from_config({"measure": "PFT"}).zero_cells() == {"add": 0.0, "to": "only0", "drop00": False}
    glmm = Settings.from_config({"measure": "OR", "fit": "rma.glmm"})
    assert (glmm.method, glmm.model, glmm.zero_cells()["drop00"]) == ("ML", "UM.FS", True)
    assert Settings.from_config({"measure": "OR", "fit": "rma.peto"}, {"method": "DL"}).method == "EE"


def test_negative_and_fractional_counts_stop_the_run_naming_file_line_and_column(tmp_path):
    from metarepro.inputs.sheet import SheetError, read_sheet

    path = tmp_path / "trials.csv"
    path.write_text("id,ai,n1i,ci,n2i\nA,3,20,-1,20\nB,2.5,20,4,20\n")
    with pytest.raises(SheetError) as err:
        read_sheet(path, LINDE["columns"])
    lines = str(err.value).splitlines()
    assert lines[0] == f"2 problem(s) in {path}:"
    assert lines[1].strip() == (f"{path}, line 3 (study_id B), column 'events_cases': 2.5 is not a whole number of "
                                "participants.")
    assert lines[2].strip() == (f"{path}, line 2 (study_id A), column 'events_controls': -1 is negative; a "
                                "events_controls cannot be. Check the source and correct the cell.")


def test_every_row_of_the_linde_sheet_is_accounted_for():
    """26 rows: 24 pooled; Harrer 1991 and Bjerkenstedt give no response counts (incomplete, named)."""
    spec = analysis("linde_or_mh")
    effects = run_analysis(spec["data"], spec).effects
    assert len(effects) == 26 and effects["included"].sum() == 24
    excluded = effects[~effects["included"]]
    assert excluded["line"].tolist() == [6, 27]
    assert excluded["reason"].tolist() == 2 * [
        "incomplete: OR needs events_cases and events_controls with n_cases and n_controls (or nonevents_cases, "
        "nonevents_controls)"]
    osterheider = effects[effects["line"] == 7].iloc[0]  # 0/22 vs 0/23: pooled by MH without an estimate
    assert osterheider["included"] and np.isnan(osterheider["yi"]) and binary.NO_ESTIMATE in osterheider["checks"]
