"""measure VR and CVR from a config: the analysis path (sheet rows → escalc → rma → pooled.json on the ratio scale)
against R metafor 3.8-1 (tests/reference/generate_variability_reference.R), and the reproduction of a ratio against
a published ratio (Osimo 2020's CVR) by hand-calculated numbers."""

import math

import numpy as np
import pytest
from conftest import REPO, assert_close, load_reference, sheet_from_columns
from tolerances import FORMULA

from metarepro.inputs.published import read_published
from metarepro.inputs.sheet import read_sheet, select_rows
from metarepro.pipeline.analysis import Settings, compute_effects, fit_analysis, pooled_record
from metarepro.pipeline.reproduction import comparison, reproduction_table

REFERENCE = load_reference("variability_reference.json")  # tests/reference/generate_variability_reference.R
CYTOKINES = REPO / "data/raw/cytokines_mdd.csv"
PUBLISHED = REPO / "data/raw/published_meta_analyses.csv"


def crp_analysis(measure, test):
    """The CRP rows with reported means and SDs, as the R script selects them (exclude_converted)."""
    settings = Settings.from_config({"measure": measure, "test": test, "exclude_converted": True})
    effects = compute_effects(select_rows(read_sheet(CYTOKINES), {"marker": "CRP"}), settings)
    return effects, pooled_record(fit_analysis(effects, settings), settings)


@pytest.mark.parametrize(("case", "measure", "test"),
                         [("crp_cvr_knha", "CVR", "knha"), ("crp_cvr_z", "CVR", "z"), ("crp_vr_knha", "VR", "knha")])
def test_crp_variability_analysis_matches_metafor(case, measure, test):
    expected = REFERENCE[case]
    effects, record = crp_analysis(measure, test)
    used = effects[effects["included"]]
    assert used["line"].tolist() == expected["lines"]  # the same rows, in the same order
    assert_close(used["yi"], expected["yi"], f"{case} yi", rtol=FORMULA, atol=0)  # escalc's closed forms
    assert_close(used["vi"], expected["vi"], f"{case} vi", rtol=FORMULA, atol=0)
    assert record["k"] == expected["k"] and record["measure"] == measure
    for ours, theirs in (("estimate", "beta"), ("se", "se"), ("ci_low", "ci_lb"), ("ci_high", "ci_ub"),
                         ("tau2", "tau2"), ("i2", "I2"), ("q", "QE"), ("pval", "pval"),
                         ("estimate_ratio", "pred_ratio"), ("ci_low_ratio", "ci_lb_ratio"),
                         ("ci_high_ratio", "ci_ub_ratio"), ("pi_low_ratio", "pi_lb_ratio"),
                         ("pi_high_ratio", "pi_ub_ratio")):  # fmt: skip
        assert_close(record[ours], expected[theirs], f"{case} {ours}")  # tests/tolerances.py ITERATIVE
    assert "estimate_r" not in record  # a ratio, not a correlation


def test_vr_needs_no_means_and_cvr_needs_positive_means():
    rows = sheet_from_columns({"n_cases": [20, 20], "sd_cases": [2.0, 2.0], "n_controls": [25, 25],
                               "sd_controls": [1.0, 1.0], "mean_cases": [np.nan, -1.0], "mean_controls": [np.nan, 3.0]})
    vr = compute_effects(rows, Settings(measure="VR"))
    # lnVR = ln(2/1) + 1/(2·19) − 1/(2·24), vi = 1/38 + 1/48 (Nakagawa et al. 2015, eq. 9)
    assert vr["included"].all()
    assert vr["yi"].tolist() == pytest.approx([math.log(2) + 1 / 38 - 1 / 48] * 2, rel=FORMULA)
    assert vr["vi"].tolist() == pytest.approx([1 / 38 + 1 / 48] * 2, rel=FORMULA)
    cvr = compute_effects(rows, Settings(measure="CVR"))
    assert not cvr["included"].any()
    assert cvr["reason"][0].startswith("incomplete: mean_cases, mean_controls are empty (CVR needs both groups' n")
    assert cvr["reason"][1] == ("CVR needs both means > 0 (log ratio of the coefficients of variation SD/mean)")


def record(estimate, se, measure="CVR"):
    """A pooled.json record on the log scale with a z CI (1.959964 · se)."""
    crit = 1.959963984540054
    return {"measure": measure, "estimate": math.log(estimate), "se": se, "ci_low": math.log(estimate) - crit * se,
            "ci_high": math.log(estimate) + crit * se, "level": 95, "test": "z", "k": 9, "pval": 0.03,
            "method": "REML", "preset": "metafor"}  # fmt: skip


def test_ratio_compared_with_a_published_ratio_on_the_ratio_scale():
    osimo = read_published(PUBLISHED).loc["osimo2020_crp_cvr"]  # CVR 0.85 (0.75 to 0.98), p = 0.02: the abstract
    assert (osimo["measure"], osimo["estimate"], osimo["ci_low"], osimo["ci_high"]) == ("CVR", 0.85, 0.75, 0.98)
    # ours 0.80 with se 0.1 on the log scale: CI exp(ln 0.8 ± 0.196) = 0.6578 to 0.9732, below 1 as the published.
    # Estimate −5.9% of 0.85 (within 10%), CI width 0.3155 vs 0.23: +37% (beyond 10%) → same conclusion, discrepant
    found = comparison(record(0.80, 0.1), osimo, same_scale=True)
    assert found["verdict"] == "discrepant, same conclusion"
    assert found["difference"] == pytest.approx(0.80 - 0.85, rel=FORMULA)
    width = 0.8 * (math.exp(0.1959963984540054) - math.exp(-0.1959963984540054))
    assert found["ci_width_relative"] == pytest.approx((width - 0.23) / 0.23, rel=FORMULA)
    # Altman & Bland on the logs: published se (ln 0.98 − ln 0.75) / (2 · 1.96)
    se_published = (math.log(0.98) - math.log(0.75)) / (2 * 1.959963984540054)
    z = (math.log(0.80) - math.log(0.85)) / math.hypot(0.1, se_published)
    assert found["difference_z"] == pytest.approx(z, rel=FORMULA)
    # a ratio above 1 is the other direction (null 1, not 0)
    assert comparison(record(1.10, 0.02), osimo, same_scale=True)["verdict"] == "meaningfully different"
    # a CI including 1 while the published excludes it: significance differs
    found = comparison(record(0.85, 0.2), osimo, same_scale=True)
    assert found["verdict"] == "meaningfully different" and "significance differs" in found["verdict_reason"]


def test_reproduction_table_shows_ratios_and_needs_the_same_ratio():
    published = read_published(PUBLISHED)
    table = reproduction_table({"crp_cvr": record(0.80, 0.1), "crp_rom": record(0.80, 0.1, "ROM")}, published,
                               {"crp_cvr": ["osimo2020_crp_cvr", "osimo2020_il6_cvr"],
                                "crp_rom": ["osimo2020_crp_cvr"]}).set_index(["analysis", "published_id"])  # fmt: skip
    row = table.loc[("crp_cvr", "osimo2020_crp_cvr")]
    assert row["same_scale"] and row["estimate_ours"] == pytest.approx(0.80, rel=FORMULA)
    assert row["ci_overlap"]  # 0.66–0.97 meets 0.75–0.98
    # Osimo 2020 prints no IL-6 CVR (the stored pages say "unchanged"): nothing to compare with
    assert table.loc[("crp_cvr", "osimo2020_il6_cvr"), "verdict"] == "insufficient information"
    assert table.loc[("crp_rom", "osimo2020_crp_cvr"), "verdict"] == "not comparable"  # a ROM is not a CVR
