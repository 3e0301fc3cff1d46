"""The PRISMA frame (metarepro.pipeline.prisma): the flow of rows, the study characteristics, a sheet's extraction
counts and the methods written from each analysis's settings.

Sources of truth: data/raw/README.md for the cytokine sheet's extraction counts; the sheet itself read with the csv
module (line numbers count the header as line 1) for the characteristics; each row's effect computed *alone* (a
one-row sheet, no later selection step) for whether a row is usable; the analysis's own pooled record (k_input,
k_excluded, without_flagged) for the flow's counts; and for the methods, the setting each sentence must follow.
"""

import csv
from collections import Counter

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REPO

from metarepro import quality
from metarepro.inputs.sheet import read_sheet, select_rows
from metarepro.jobs.pool import run_analysis
from metarepro.pipeline import prisma as pr
from metarepro.pipeline.analysis import Settings, compute_effects

SHEET = REPO / "data/raw/cytokines_mdd.csv"
CONFIG = yaml.safe_load((REPO / "config/config.yaml").read_text())
IL6 = [name for name, a in CONFIG["analyses"].items() if a.get("where") == {"marker": "IL-6"}]


def test_extraction_counts_are_the_ones_the_data_readme_states():
    """data/raw/README.md, "Double extraction": 318 confirmed, 8 resolved, 56 unconfirmed; after the issue-17 audit
    86 rows are `unclear` in eligibility_second_pass."""
    counts = dict(pr.extraction_counts(read_sheet(SHEET)))
    verification = dict(counts["independent second extraction (verification)"])
    assert verification == {"confirmed": 318, "resolved": 8, "unconfirmed": 56}
    assert dict(counts["second extractor's eligibility judgement (eligibility_second_pass)"])["unclear"] == 86
    # every value of each column, counted by the csv module, and nothing else
    with SHEET.open(newline="", encoding="utf-8") as handle:
        raw = list(csv.DictReader(handle))
    expected = Counter(r["extracted_by"].strip() or "(empty)" for r in raw)
    assert dict(counts["extraction pass (extracted_by)"]) == dict(expected)


@pytest.fixture(scope="module")
def il6_runs():
    return {name: run_analysis(SHEET, CONFIG["analyses"][name], CONFIG["defaults"]) for name in IL6}


@pytest.mark.parametrize("name", IL6)
def test_flow_adds_up_and_matches_the_pooled_record(il6_runs, name):
    result = il6_runs[name]
    rows = pr.flow_rows("IL-6", name, "any", result.effects, 382)
    flow = pr.Flow.from_rows(rows)
    c = flow.counts
    assert c["sheet rows"] == c["other rows of the sheet"] + c["rows for the question"] == 382  # README: 382 rows
    assert c["rows for the question"] == c["not usable"] + c["usable"]
    assert c["usable"] == c["usable, not pooled"] + c["pooled"]
    assert c["pooled"] == c["flagged"] + c["without flagged rows"]
    for stage in ("not usable", "usable, not pooled"):  # the reasons add up to their stage
        assert sum(n for _, n in flow.reasons.get(stage, [])) == c[stage]
    pooled = result.pooled.to_dict()
    assert c["rows for the question"] == pooled["k_input"]  # README's table: 101 IL-6 rows
    assert c["pooled"] == pooled["k_input"] - pooled["k_excluded"]
    without = pooled.get("without_flagged")
    # every IL-6 analysis pools flagged rows (an `if` here skipped the check silently when none were): the fit
    # without flagged rows pools exactly the rows the flow leaves
    assert c["flagged"] > 0 and without is not None
    k = without["dependence"]["k_effects"] if without.get("dependence") else without["k"]
    assert k == c["without flagged rows"]


@pytest.mark.parametrize("name", IL6)
def test_a_row_is_usable_exactly_when_its_effect_can_be_computed_alone(il6_runs, name):
    """``reason_group`` sorts each exclusion into "not usable" (no effect) or "usable, not pooled" (a later step:
    one row per study_id, reported-only, dependence). Independent check: the row as a one-row sheet, with no
    selection step (no exclude_converted, no dependence), gives an effect or not."""
    analysis = CONFIG["analyses"][name]
    settings = Settings.from_config({k: v for k, v in analysis.items() if k not in ("exclude_converted", "dependence")},
                                    CONFIG["defaults"])  # fmt: skip
    sheet = read_sheet(SHEET)
    sheet[quality.SEM_PROOF_COLUMN] = quality.sem_proof(sheet)  # over the whole sheet, as run_analysis proves
    rows = select_rows(sheet, analysis["where"])
    effects = il6_runs[name].effects
    if settings.measure == "MD":  # the unit the analysis pooled in, not the one row's own
        from dataclasses import replace

        settings = replace(settings, unit=effects.attrs.get("unit") or analysis.get("unit"))
    checked = 0
    for i in np.flatnonzero(~effects["included"].to_numpy(dtype=bool)):
        alone = compute_effects(rows.iloc[[i]], settings)
        usable, _ = pr.reason_group(effects["reason"].iloc[i])
        assert usable == bool(alone["included"].iloc[0]), (effects["line"].iloc[i], effects["reason"].iloc[i])
        checked += 1
    assert checked == len(effects) - int(effects["included"].sum()) > 0


def test_reason_groups_drop_the_row_specific_part():
    assert pr.reason_group("incomplete: mean_cases, sd_cases are empty (SMD needs ...)") == (
        False, "incomplete: cells the measure needs are empty")
    assert pr.reason_group("study_id X already contributes line 3; pool one row per independent sample") == (
        True, "another row of the same study_id is pooled (one row per independent sample)")
    assert pr.reason_group("converted row; this analysis uses reported means and SDs only")[0] is True
    assert pr.reason_group("unit 'nmol/L' cannot be converted to pg/ml") == (False, "unit cannot be converted")
    # an unknown reason is kept (numbers and quoted values dropped), never silently merged into another
    assert pr.reason_group("a new rule tripped at 3.5 for 'x'") == (False, "a new rule tripped at … for '…'")


def test_characteristics_are_the_sheets_cells_of_the_pooled_rows(il6_runs):
    result = il6_runs["il6_smd"]
    table = pr.characteristics("IL-6", "il6_smd", result.effects, read_sheet(SHEET))
    with SHEET.open(newline="", encoding="utf-8") as handle:
        raw = {i + 2: row for i, row in enumerate(csv.DictReader(handle))}  # line 1 is the header
    used = result.effects[result.effects["included"]]
    assert list(table["line"]) == list(used["line"].astype(int))
    for row in table.itertuples(index=False):
        source = raw[row.line]
        assert row.study_id == source["study_id"] and source["marker"] == "IL-6"
        for column in ("country", "sample", "assay", "medication", "verification"):
            assert (getattr(row, column) if isinstance(getattr(row, column), str) else "") == source[column].strip()
        for column in ("n_cases", "n_controls"):
            value = getattr(row, column)
            assert (np.isnan(value) and source[column] == "") or value == float(source[column])
    # the page's participant count is the sum over these rows
    n1, n2 = table["n_cases"].sum(), table["n_controls"].sum()
    assert pr.participants_text(result.effects) == f"{n1:,.0f} cases and {n2:,.0f} controls"


# ------------------------------------------------------------------------------------------------------------
# methods written from the settings

BASE = {"measure": "SMD", "method": "REML", "test": "knha", "level": 95, "vtype": "LS", "preset": "metafor", "k": 12}
BIAS = {"k": 12, "egger_statistic": "t", "egger_df": 10, "begg_method": "exact", "trimfill_side": "left",
        "trimfill_estimator": "L0", "low_power_note": None}  # fmt: skip
EFFECTS = pd.DataFrame({"included": [True, True, True, False], "conversion": ["", "SEM→SD", "t→d", ""],
                        "reason": ["", "", "", "study_id a already contributes line 2; pool one row"],
                        "flags": ["", "likely_sem: ...", "", ""], "n_cases": 10.0, "n_controls": 10.0})  # fmt: skip


def methods(pooled=None, bias=None, effects=None, analysis=None, columns=("year",)) -> dict:
    sentences = pr.methods_sentences({**BASE, **(pooled or {})}, {**BIAS, **(bias or {})} if bias != {} else None,
                                     EFFECTS if effects is None else effects,
                                     {"data": "s.csv", "where": {"marker": "IL-6"}, **(analysis or {})}, columns)
    return dict(sentences)


CHANGES = [  # (what changes, topic, a phrase only the default has, a phrase only the changed one has)
    ({"pooled": {"method": "DL"}}, "Model", "restricted maximum likelihood", "DerSimonian–Laird"),
    ({"pooled": {"method": "PM"}}, "Model", "restricted maximum likelihood", "Paule–Mandel"),
    ({"pooled": {"test": "z"}}, "Model", "Knapp–Hartung", "Wald z tests"),
    ({"pooled": {"test": "z"}}, "Model", "prediction interval from t with k − 1 df", "from the normal distribution"),
    ({"pooled": {"level": 90}}, "Model", "95% CI", "90% CI"),
    ({"pooled": {"method": "EE"}}, "Model", "Random effects", "equal-effects"),
    ({"pooled": {"preset": "revman", "method": "DL", "vtype": "RM5"}}, "Effect measure", "exact small-sample",
     "Review Manager 5's approximate correction"),
    ({"pooled": {"vtype": "UB"}}, "Effect measure", "large-sample variance", "unbiased variance"),
    ({"pooled": {"measure": "ROM"}}, "Effect measure", "Hedges' g", "ln(m1/m2)"),
    ({"pooled": {"measure": "MD", "unit": "mg/L"}}, "Effect measure", "Hedges' g", "every row in mg/L"),
    ({"pooled": {"measure": "ZCOR"}}, "Effect measure", "cases minus controls", "atanh(r)"),
    ({"bias": {"trimfill_side": "right"}}, "Trim-and-fill", "on the left side", "on the right side"),
    ({"bias": {"trimfill_estimator": "R0"}}, "Trim-and-fill", "Estimator L0", "Estimator R0"),
    ({"bias": {"egger_statistic": "z", "egger_df": None}}, "Small-study effects", "statistic t with k − 2 df",
     "statistic z"),
    ({"bias": {"low_power_note": "k < 10"}}, "Small-study effects", "PET-PEESE. Asymmetry is read at p < 0.10 "
     "(Egger et al. 1997).", "low power"),
    ({"analysis": {"cumulative_order": "pmid"}, "columns": ("year", "pmid")}, "Cumulative order", "'year'", "'pmid'"),
    ({"columns": ("study",)}, "Cumulative order", "increasing order", "sheet's order"),
    ({"analysis": {"exclude_converted": True}}, "Rows", "marker = IL-6.", "only rows that report means and SDs"),
    ({"analysis": {"where": {"marker": "CRP"}}}, "Rows", "marker = IL-6", "marker = CRP"),
    ({"effects": EFFECTS.assign(flags="")}, "Without flagged rows", "without the 1 of 3 pooled rows",
     "No pooled row is flagged"),
    ({"effects": EFFECTS.assign(conversion="")}, "Conversions", "SEM→SD 1 row; t→d 1 row", "None"),
    ({"effects": EFFECTS.assign(reason=["", "", "", "incomplete: x"])}, "Dependence", "1 further row",
     "0 further rows"),
]  # fmt: skip


@pytest.mark.parametrize(("change", "topic", "before", "after"), CHANGES)
def test_changing_a_setting_changes_its_sentence(change, topic, before, after):
    default, changed = methods(), methods(**change)
    assert before in default[topic] and after not in default[topic], default[topic]
    assert after in changed[topic] and before not in changed[topic], changed[topic]
    # the other topics do not move (a sentence follows its own settings only)
    unrelated = {"Model": {"Effect measure"}, "Effect measure": {"Model"}}.get(topic, set())
    assert {t for t in default if t in changed and default[t] != changed[t]} - unrelated == {topic}


def test_conversion_formulas_follow_the_conversions_used():
    text = methods()["Conversion formulas"]
    assert "SD = SEM·√n" in text and "d = t·√(1/n1 + 1/n2)" in text and "qt(1 − p/2" not in text
    with_p = methods(effects=EFFECTS.assign(conversion=["two-sided p→t→d", "z as t→d", "", ""]))
    assert "qt(1 − p/2" in with_p["Conversion formulas"] and "z statistic used as t" in with_p["Conversion formulas"]
    # "t→d" is a part of "z as t→d" and "two-sided p→t→d": each row counts once, under its own conversion
    assert with_p["Conversions"].startswith("z as t→d 1 row; p→t→d 1 row")


def test_no_bias_record_and_the_dependence_model_are_said():
    assert methods(bias={})["Small-study effects"] == "Not assessed (no bias record)."
    assert "Trim-and-fill" not in methods(bias={})
    dep = {"model": "multilevel", "formula": "rma.mv(yi, V, random = ~ 1 | study_id/effect)", "clusters":
           {"study_id": 20}, "cluster_column": "study_id", "shared_controls": True, "robust": {"type": "CR2"},
           "test_note": "test knha is run as its test = \"t\""}  # fmt: skip
    text = methods(pooled={"dependence": dep})
    assert "multilevel model (rma.mv(yi, V, random = ~ 1 | study_id/effect)) over 20 clusters" in text["Dependence"]
    assert "CR2" in text["Dependence"] and "sharing one control group" in text["Dependence"]
    assert "profile-likelihood" in text["Model"] and "Q-profile" not in text["Model"]


def test_methods_table_lists_each_distinct_text_once_with_its_analyses():
    a, b = methods(), methods(pooled={"method": "DL"})
    rows = pr.methods_table([("x", list(a.items())), ("y", list(b.items())), ("z", list(a.items()))])
    models = [(names, text) for topic, names, text in rows if topic == "Model"]
    assert models == [(["x", "z"], a["Model"]), (["y"], b["Model"])]
    assert [(topic, names) for topic, names, _ in rows if topic == "Rows"] == [("Rows", ["x", "y", "z"])]
    assert [topic for topic, _, _ in rows] == sorted((t for t, _, _ in rows), key=list(a).index)


def test_participants_without_group_sizes_are_said_not_counted_as_zero():
    effects = EFFECTS.assign(n_cases=[10.0, np.nan, 5.0, 1.0], n_controls=[12.0, np.nan, 6.0, 1.0])
    assert pr.participants_text(effects) == "15 cases and 18 controls (1 row without group sizes)"  # 10 + 5, 12 + 6
    assert pr.participants_text(effects.assign(n_cases=np.nan)) == "the sheet gives no group sizes for these rows"


def test_every_measure_has_its_formula_in_the_methods():
    """Caught (audit of issue 20): the methods table's "Effect measure" row said only "CVR." and "VR." for the
    variability ratios, "OR.", "RR.", "RD.", "PLO." for the binary examples: every measure metafor's escalc
    computes for us is named with its formula (the formulas as stats/effects.py and effects_binary.py document)."""
    from metarepro.stats.effects import MEASURES

    for measure in MEASURES:
        text = pr._measure_sentence({"measure": measure})
        assert text != f"{measure}." and len(text) > 60, measure
        assert measure in ("SMD", "GEN") or f'escalc measure "{measure}"' in text, measure
    assert "vtype \"UB\"" in pr._measure_sentence({"measure": "RD", "vtype": "UB"})  # the LS formula is not claimed
    assert "vtype" not in pr._measure_sentence({"measure": "RD", "vtype": "LS"})
