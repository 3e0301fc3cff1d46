"""The treatment reproduction of the default config (issue 19): the trial sheet read through its documented mapping,
every row pooled or excluded with a reason, the pooled SMD against R metafor 3.8-1
(tests/reference/generate_treatment_reference.R) and beside Köhler 2014, Bai 2020 and Köhler-Forsberg 2019."""

import pytest
import yaml
from conftest import REPO, assert_close, load_reference
from tolerances import FORMULA

from metarepro.inputs.published import read_published
from metarepro.inputs.sheet import SheetError, read_sheet, select_rows
from metarepro.pipeline.analysis import Settings, compute_effects, fit_analysis, pooled_record
from metarepro.pipeline.reproduction import reproduction_table

REFERENCE = load_reference("treatment_reference.json")  # tests/reference/generate_treatment_reference.R
CONFIG = yaml.safe_load((REPO / "config/config.yaml").read_text())
ANALYSIS = CONFIG["analyses"]["treatment_smd"]


def treatment(test=None, columns=None):
    analysis = {**ANALYSIS, **({"test": test} if test else {})}
    rows = select_rows(read_sheet(REPO / ANALYSIS["data"], columns or ANALYSIS["columns"]), ANALYSIS["where"])
    settings = Settings.from_config(analysis, CONFIG["defaults"])
    effects = compute_effects(rows, settings)
    return rows, effects, pooled_record(fit_analysis(effects, settings), settings)


def test_the_trial_sheet_is_refused_without_its_mapping():
    """The sheet's p holds bounds ('<0.001') and its direction its own words: refused, never recoded silently."""
    with pytest.raises(SheetError) as err:
        read_sheet(REPO / ANALYSIS["data"], {k: v for k, v in ANALYSIS["columns"].items() if v is not None})
    message = str(err.value)
    assert "column 'p': '<0.001' is not a number" in message
    assert "column 'direction': 'favours_treatment' is not one of cases_higher, cases_lower" in message


def test_every_adult_mdd_score_row_is_pooled_or_excluded_with_a_reason():
    rows, effects, _ = treatment()
    # the sheet's own columns, as printed, stay readable as text beside metarepro's (empty) t, p, direction
    assert set(rows["p_as_printed"]) >= {"<0.001", "0.004", "0.90"} and rows["t"].isna().all()
    assert len(effects) == len(rows) == 31  # eligible_mdd yes, outcome score
    used = effects[effects["included"]]
    assert used["line"].tolist() == REFERENCE["lines"] and used["study_id"].tolist() == REFERENCE["study_id"]
    assert used.set_index("study_id")["input"].to_dict() == {"Mischoulon2009": "summary"}
    excluded = effects[~effects["included"]]
    assert (excluded["reason"].str.len() > 0).all()
    assert excluded["reason"].str.contains("the config sets aside this sheet's t, p, direction").all()
    carney = excluded.set_index("study_id").loc["Carney2009", "reason"]  # means and n, no SDs; t unsigned
    assert carney.startswith("incomplete: sd_cases, sd_controls are empty")


@pytest.mark.parametrize("test", ["knha", "z"])
def test_pooled_smd_matches_metafor(test):
    _, effects, record = treatment(test)
    used = effects[effects["included"]]
    assert_close(used["yi"], REFERENCE["yi"], "yi", rtol=FORMULA, atol=0)  # escalc's closed forms
    assert_close(used["vi"], REFERENCE["vi"], "vi", rtol=FORMULA, atol=0)
    expected = REFERENCE[f"reml_{test}"]
    assert record["k"] == expected["k"] == 1
    if test == "knha":  # metafor's own warning: with k = 1 the CI is the z interval
        assert record["warnings"] == ['Setting argument test="z" since k=1.']
    for ours, theirs in (("estimate", "beta"), ("se", "se"), ("pval", "pval"), ("ci_low", "ci_lb"),
                         ("ci_high", "ci_ub"), ("tau2", "tau2"), ("i2", "I2"), ("q", "QE")):  # fmt: skip
        assert_close(record[ours], expected[theirs], f"{test} {ours}")  # tests/tolerances.py ITERATIVE


def test_verdicts_beside_the_published_treatment_meta_analyses():
    _, _, record = treatment()
    published = read_published(REPO / CONFIG["published"])
    table = reproduction_table({"treatment_smd": record}, published, {"treatment_smd": ANALYSIS["compare_with"]})
    assert table["published_id"].tolist() == ["kohler2014_smd", "kohler2014_smd_depression", "bai2020_smd",
                                              "kohlerforsberg2019_smd_addon"]  # fmt: skip
    # Köhler 2014 (all agents' trials of NSAIDs and cytokine inhibitors in depressive symptoms, and its subgroup in
    # depression) and Köhler-Forsberg 2019's add-on SMD pooled other populations (population_differs in the sheet)
    verdicts = table.set_index("published_id")["verdict"]
    assert verdicts.drop("bai2020_smd").eq("not comparable").all()
    assert table.set_index("published_id").loc["kohlerforsberg2019_smd_addon", "verdict_reason"] == (
        "other population: add-on treatment in MDD only")
    # Bai 2020 −0.55 (−0.75 to −0.35): its CI excludes 0, ours (one trial) includes it: significance differs
    bai = table.set_index("published_id").loc["bai2020_smd"]
    assert record["ci_low"] < 0 < record["ci_high"] and bai["ci_high_published"] < 0
    assert bai["verdict"] == "meaningfully different"
    assert bai["verdict_reason"].startswith("significance differs: the published excludes the null, ours does not")
    assert (table["k_ours"] == 1).all() and bai["k_published"] == 26  # k as Bai 2020's abstract prints it


def test_the_printed_effect_sizes_are_not_mapped_onto_d():
    """Mapping the sheet's smd onto d would add Husain 2017 (−1.21, negative = better) but read Mischoulon 2009's
    0.55 (positive = better) as a d against its own means: the quality rule then flags a sound row."""
    columns = {**ANALYSIS["columns"], "d": "smd"}
    _, effects, record = treatment("knha", columns)
    expected = REFERENCE["with_husain2017"]
    used = effects[effects["included"]]
    assert used["line"].tolist() == expected["lines"]
    assert_close(used["yi"], expected["yi"], "yi", rtol=FORMULA, atol=0)
    assert_close(record["estimate"], expected["reml_knha"]["beta"], "estimate")
    fit = expected["reml_knha"]
    assert_close([record["ci_low"], record["ci_high"]], [fit["ci_lb"], fit["ci_ub"]], "CI")
    flags = used.set_index("study_id")["flags"]
    assert flags["Mischoulon2009"].startswith("inconsistent_test: t from means/SDs -1.3 vs reported 1.62 (from d)")


# ------------------------------------------------------------------------------- response (risk and odds ratio)


def response(name, test=None):
    analysis = {**CONFIG["analyses"][name], **({"test": test} if test else {})}
    rows = select_rows(read_sheet(REPO / analysis["data"], analysis["columns"]), analysis["where"])
    settings = Settings.from_config(analysis, CONFIG["defaults"])
    effects = compute_effects(rows, settings)
    return effects, pooled_record(fit_analysis(effects, settings), settings)


@pytest.mark.parametrize("name,measure", [("treatment_response_rr", "RR"), ("treatment_response_or", "OR")])
def test_every_adult_mdd_response_row_is_pooled_or_excluded_with_a_reason(name, measure):
    effects, _ = response(name)
    assert len(effects) == 12  # eligible_mdd yes, outcome response (data/raw/README.md's table: 15 rows, 3 not MDD)
    used = effects[effects["included"]]
    expected = REFERENCE[f"response_{measure}"]  # R selects the rows itself: counts in both arms, no subgroup
    assert used["line"].tolist() == expected["lines"] and used["study_id"].tolist() == expected["study_id"]
    reasons = effects[~effects["included"]].set_index("study_id")["reason"]
    assert (reasons.str.len() > 0).all()
    # Raison 2013 prints counts (8/13 vs 3/9) of an hs-CRP > 5 mg/L subgroup: excluded by the sheet's own rule
    assert reasons["Raison2013"] == ("analysis_set 'subgroup: baseline hs-CRP > 5 mg/L (exploratory)': a subgroup "
                                     "of the trial, not its randomised comparison")  # fmt: skip
    # percentages with arm sizes: no count is derived from a percentage
    for study in ("Sepanjnia2012", "Marangell2003", "Carney2009"):
        assert reasons[study].startswith("incomplete: events_cases, events_controls are empty")


@pytest.mark.parametrize("measure", ["RR", "OR"])
@pytest.mark.parametrize("test", ["knha", "z"])
def test_pooled_response_matches_metafor(measure, test):
    effects, record = response(f"treatment_response_{measure.lower()}", test)
    expected = REFERENCE[f"response_{measure}"]
    used = effects[effects["included"]]
    assert_close(used["yi"], expected["yi"], "yi", rtol=FORMULA, atol=0)  # escalc's closed forms
    assert_close(used["vi"], expected["vi"], "vi", rtol=FORMULA, atol=0)
    fit = expected[f"reml_{test}"]
    assert record["k"] == fit["k"] == 3 and record["measure"] == measure
    for ours, theirs in (("estimate", "beta"), ("se", "se"), ("pval", "pval"), ("ci_low", "ci_lb"),
                         ("ci_high", "ci_ub"), ("q", "QE")):  # fmt: skip
        assert_close(record[ours], fit[theirs], f"{test} {ours}")  # tests/tolerances.py ITERATIVE
    assert_close(record["tau2"], fit["tau2"], f"{test} tau2")  # 0, in R up to its last REML step (2e-14 for RR)


def test_response_verdicts_beside_bai2020_kohlerforsberg2019_and_kohler2014():
    records = {name: response(name)[1] for name in ("treatment_response_rr", "treatment_response_or")}
    published = read_published(REPO / CONFIG["published"])
    compare = {name: CONFIG["analyses"][name]["compare_with"] for name in records}
    table = reproduction_table(records, published, compare).set_index("published_id")
    assert list(table.index) == ["bai2020_response", "kohlerforsberg2019_response_addon",
                                 "kohler2014_response_celecoxib"]  # fmt: skip
    # Köhler 2014's OR 6.59 is its celecoxib sub-analysis; Köhler-Forsberg 2019's RR 1.76 add-on in MDD
    assert table.loc["kohler2014_response_celecoxib", "verdict"] == "not comparable"
    assert table.loc["kohlerforsberg2019_response_addon", "verdict"] == "not comparable"
    # Bai 2020 RR 1.52 (1.30 to 1.79) excludes 1; ours (three trials, Knapp-Hartung) includes it
    bai, rr = table.loc["bai2020_response"], records["treatment_response_rr"]
    assert rr["ci_low"] < 0 < rr["ci_high"] and bai["ci_low_published"] > 1
    assert bai["verdict"] == "meaningfully different"


@pytest.mark.parametrize("measure", ["RR", "OR"])
def test_response_by_mantel_haenszel_matches_metafor(measure):
    """The same three tables by rma.mh (fit: rma.mh), for comparison with the inverse-variance default."""
    analysis = {**CONFIG["analyses"][f"treatment_response_{measure.lower()}"], "fit": "rma.mh"}
    rows = select_rows(read_sheet(REPO / analysis["data"], analysis["columns"]), analysis["where"])
    settings = Settings.from_config(analysis, CONFIG["defaults"])
    record = pooled_record(fit_analysis(compute_effects(rows, settings), settings), settings)
    expected = REFERENCE[f"response_{measure}"]["mh"]
    assert record["k"] == expected["k"] == 3
    for ours, theirs in (("estimate", "beta"), ("se", "se"), ("pval", "pval"), ("ci_low", "ci_lb"),
                         ("ci_high", "ci_ub"), ("q", "QE")):  # fmt: skip
        assert_close(record[ours], expected[theirs], f"MH {ours}")
