"""Sentences of the report that were wrong (issue 20, "Wrong today"): each test names what it caught.

Expected values come from R metafor (``tests/reference/generate_bias_reference.R`` → ``bias_reference.json``,
whose regtest entries carry the test line ``print.regtest`` printed), from the Cochrane Handbook's wording
(quoted where used), or from constructed inputs whose answer is visible in the test.
"""

import html
import re

import numpy as np
import pandas as pd
import pytest
from conftest import load_reference

from metarepro.jobs import sensitivity
from metarepro.jobs.pool import without_flagged
from metarepro.pipeline.analysis import Settings, pooled_record
from metarepro.present.plots import forest_plot
from metarepro.present.report import (
    AnalysisSection,
    _bias,
    _estimators,
    _subgroups,
    fit_block,
    heterogeneity_words,
    render_report,
)
from metarepro.stats.rma import rma

BIAS = load_reference("bias_reference.json")


def included_rows(yi, vi):
    k = len(yi)
    ids = [f"s{i}" for i in range(k)]
    return pd.DataFrame({"line": np.arange(2, k + 2), "study_id": ids, "study": ids, "yi": yi, "vi": vi,
                         "weight": 100 / k})  # fmt: skip


def _egger_cases():
    return [pytest.param(ds, a, id=f"{ds['name']}-{a['method']}-{a['test']}")
            for ds in BIAS["datasets"] if ds["name"] in ("bcg_logRR", "normand1999_SMD")
            for a in ds["analyses"] if a["method"] in ("REML", "DL")]  # fmt: skip


def _row(page, test):
    """The (result, p) cells of one row of the bias table."""
    match = re.search(rf'<td class="text">{re.escape(test)}</td><td class="text">([^<]*)</td><td>([^<]*)</td>', page)
    assert match, test
    return match.group(1), match.group(2)


def _printed_cells(printed):
    """metafor's "t = -0.7812, df = 11, p = 0.4512" as our cells: ("t = -0.7812, df = 11", "0.4512");
    "p < .0001" becomes the table's "<.0001"."""
    statistic, p = printed.split(", p ")
    return statistic, p.removeprefix("= ").replace("< ", "<")


@pytest.mark.parametrize(("ds", "a"), _egger_cases())
def test_egger_tests_are_labelled_as_metafor_prints_them(ds, a):
    """Caught: the mixed-effects Egger test was labelled "z = 3.4" under Knapp–Hartung, where metafor prints
    "t = 3.3968, df = 18, p = 0.0032" (bias.json gave no kind or df); the classic test's "t(18) = 2.13" is now
    metafor's form too. Expected: the test line R's print.regtest wrote into bias_reference.json."""
    rows = included_rows(np.array(ds["yi"]), np.array(ds["vi"]))
    record = sensitivity.publication_bias(rows, Settings(method=a["method"], test=a["test"])).record
    assert record["egger_statistic"] == ("t" if a["test"] == "knha" else "z")
    assert (record["egger_df"] is None) == (a["test"] == "z")
    page = _bias(record)
    assert _row(page, "Egger (mixed-effects, sei as predictor)") == _printed_cells(a["regtest"]["rma_sei"]["printed"])
    assert _row(page, "Egger (classic weighted regression)") == _printed_cells(a["regtest"]["lm_sei"]["printed"])


def test_headline_counts_the_rows_the_fit_without_flagged_rows_leaves_out():
    """Caught: the headline said "14 of 20 pooled rows carry a data-quality flag", counting soft checks (``checks``)
    too, beside a fit "without flagged rows" that drops only the 12 rows a quality rule flagged (``flags``).
    Constructed rows: two with a soft check only, one with a check and a flag, one with a flag only, two clean,
    and one excluded row with a flag (not pooled): 2 of 6 pooled rows are flagged, the refit keeps 4."""
    yi = np.array([0.2, 0.4, 0.1, 0.9, 0.3, 0.5, np.nan])
    effects = pd.DataFrame({
        "line": np.arange(2, 9), "study_id": [f"s{i}" for i in range(7)], "study": [f"Study {i}" for i in range(7)],
        "input": "mean/SD", "conversion": "", "yi": yi, "vi": [0.04, 0.05, 0.03, 0.06, 0.05, 0.04, np.nan],
        "weight": np.nan, "included": [True] * 6 + [False], "reason": [""] * 6 + ["no SD"],
        "checks": ["SD > mean: skewed data", "not double-checked", "|SMD| > 3", "", "", "", ""],
        "flags": ["", "", "extreme_effect: g = 3.1 (|g| > 2)", "overlap: same n as line 2", "", "",
                  "not_double_checked: verification 'unconfirmed'"],
    })  # fmt: skip
    settings = Settings(measure="SMD")
    pooled = {**pooled_record(rma(yi[:6], effects["vi"][:6], "REML", "z"), settings), "n_cases": np.nan}
    pooled["without_flagged"] = without_flagged(effects, settings)
    assert pooled["without_flagged"]["excluded_lines"] == [4, 5] and pooled["without_flagged"]["k"] == 4
    section = AnalysisSection("a1", "Marker A", pooled, effects, "<svg></svg>", config={"where": {"marker": "A"}})
    sentence = re.search(r'<ul class="lede"><li>(.*?)</li>', render_report([section]), flags=re.S).group(1)
    assert "2 of 6 pooled rows are flagged by a pre-specified quality rule" in sentence
    assert "; without them: " in sentence and "k = 4, " in sentence
    # the fit without flagged rows stands in the lead, beside the primary, not among the caveats (issue 17)
    assert "without them" not in sentence.split("Caveats")[-1] or "Caveats" not in sentence


@pytest.mark.parametrize(("i2", "words"), [
    (0, "heterogeneity that might not be important (I² = 0%)"),
    (29.4, "heterogeneity that might not be important (I² = 29%)"),
    (30, "heterogeneity that might not be important or may be moderate (I² = 30%, in overlapping Handbook ranges)"),
    (35, "heterogeneity that might not be important or may be moderate (I² = 35%, in overlapping Handbook ranges)"),
    (40, "heterogeneity that might not be important or may be moderate (I² = 40%, in overlapping Handbook ranges)"),
    (45, "heterogeneity that may be moderate (I² = 45%)"),
    (55, "heterogeneity that may be moderate to substantial (I² = 55%, in overlapping Handbook ranges)"),
    (61, "heterogeneity that may be substantial (I² = 61%)"),
    (74.6, "substantial to considerable heterogeneity (I² = 75%, in overlapping Handbook ranges)"),
    (80, "substantial to considerable heterogeneity (I² = 80%, in overlapping Handbook ranges)"),
    (90, "substantial to considerable heterogeneity (I² = 90%, in overlapping Handbook ranges)"),
    (91, "considerable heterogeneity (I² = 91%)"),
])  # fmt: skip
def test_heterogeneity_words_follow_the_handbooks_overlapping_ranges(i2, words):
    """Caught: the page claimed "Heterogeneity bands follow the Cochrane Handbook §10.10.2" but cut I² at 25/50/75%
    (35% "moderate", 55% "substantial", 80% "considerable"). Expected: Cochrane Handbook v6.4 §10.10.2, closed
    ranges "0% to 40%: might not be important; 30% to 60%: may represent moderate heterogeneity; 50% to 90%: may
    represent substantial heterogeneity; 75% to 100%: considerable heterogeneity", read at the I² shown (29.4 -> 29%,
    74.6 -> 75%), every range the value falls in."""
    assert heterogeneity_words(i2) == words


def test_headline_note_quotes_the_handbook_ranges_and_its_warning():
    """Caught: the note named §10.10.2 beside cut-offs that are not the Handbook's; now the note gives its ranges,
    its warning against fixed thresholds, and the chapter in the references."""
    page = render_report([])
    assert "0–40% might not be important, 30–60% may represent moderate, 50–90% substantial and 75–100% considerable" \
        in page
    assert "such thresholds can mislead" in page
    assert "Chapter 10: Analysing data and undertaking meta-analyses (§10.10.2" in page


def test_one_study_shows_no_heterogeneity_statistics():
    """Caught: a fit to one study printed "I^2 ... 0.00%", "tau^2 ... 0.0000" and "Q(df = 0) = 0.0000" (metafor's
    print.rma does the same), the forest plot "τ² = 0.000, I² = 0.0%", a one-study subgroup "I² = 0.0%" and the
    estimator table 0 for τ² and I²: one study has no between-study variability, so they are not applicable.
    With one study metafor also switches Knapp-Hartung to z (R: "Setting argument test="z" since k=1").
    Expected by hand: yi = 0.5, vi = 0.04 gives z = 0.5/0.2 = 2.5 and the CI 0.5 ± 1.96·0.2 = [0.1080, 0.8920]."""
    record = pooled_record(rma([0.5], [0.04], "REML", "knha"), Settings(test="knha"))
    text = fit_block(record)
    assert "I^2 (total heterogeneity" not in text and "Q(df = 0)" not in text
    assert "tau^2, tau, I^2, H^2: not applicable (k = 1" in text and "Q: not applicable (k = 1" in text
    assert re.search(r"zval\s+pval.*\n\s+0\.5000\s+0\.2000\s+2\.5000\s+0\.0124\s+0\.1080\s+0\.8920", text)

    forest = forest_plot(pd.DataFrame({"study": ["Only"], "yi": [0.5], "vi": [0.04], "ci_low": [0.108],
                                       "ci_high": [0.892], "weight": [100.0], "included": [True]}),
                         {**record, "measure": "SMD"})  # fmt: skip
    drawn = " ".join(t.get_text() for t in forest.findobj(lambda a: hasattr(a, "get_text") and a.get_text()))
    assert "one study (k = 1): τ², I² and Q not applicable" in drawn and "I² = 0.0%" not in drawn

    subgroups = pd.DataFrame({"column": "sample", "subgroup": ["plasma", "serum"], "k": [1, 3],
                              "estimate": [0.5, 0.3], "ci_low": [0.1, 0.1], "ci_high": [0.9, 0.5], "pval": [0.01, 0.02],
                              "tau2": [0.0, 0.02], "i2": [0.0, 35.0], "test_moderator_QM": 1.0, "test_moderator_df": 1,
                              "test_moderator_df2": np.nan, "test_moderator_p": 0.3, "test_between_Q": 1.0,
                              "test_between_df": 1, "test_between_p": 0.3})  # fmt: skip
    cells = re.findall(r"<tr>(.*?)</tr>", _subgroups(subgroups))
    assert cells[1].count("n/a (k = 1)") == 2 and "n/a" not in cells[2]  # cells[0]: the header

    estimators = pd.DataFrame({"method": ["REML", "DL"], "test": "z", "estimate": 0.5, "ci_low": 0.108,
                               "ci_high": 0.892, "pval": 0.0124, "tau2": 0.0, "i2": 0.0, "converged": True})
    rows = re.findall(r"<tr>(.*?)</tr>", _estimators(estimators, record))[1:]
    assert all(row.count("n/a (k = 1)") == 2 for row in rows)


def test_fail_safe_n_carries_the_handbooks_advice_against_it():
    """Caught: fail-safe N was shown as a plain result. The Cochrane Handbook (v5.1.0, §10.4.4.3, "Fail-safe N")
    ends: "this and related methods are not recommended for use in Cochrane reviews"; the note sits in its row."""
    rows = included_rows(np.array([0.1, 0.5, 0.3, 0.8, 0.2]), np.array([0.04, 0.09, 0.02, 0.12, 0.05]))
    page = _bias(sensitivity.publication_bias(rows, Settings()).record)
    row = re.search(r"<tr><td class=\"text\">Fail-safe N</td>(.*?)</tr>", page).group(1)
    assert "Rosenthal" in row and "Not recommended: the Cochrane Handbook (v5.1.0, §10.4.4.3)" in row


def test_the_fit_without_flagged_rows_says_when_its_conclusion_differs():
    """The lead gives both fits their conclusion (issue 17): all rows 0.5 (0.1 to 0.9) is higher; without the two
    flagged rows 0.3 (-0.1 to 0.7) is not clearly different."""
    from metarepro.present.report import _without_flagged_sentence

    effects = pd.DataFrame({"included": [True] * 5, "flags": ["extreme_effect: g = 3", "overlap: x", "", "", ""]})
    record = {"measure": "SMD", "estimate": 0.5, "ci_low": 0.1, "ci_high": 0.9, "level": 95,
              "without_flagged": {"k": 3, "estimate": 0.3, "ci_low": -0.1, "ci_high": 0.7, "pval": 0.14}}  # fmt: skip
    labels = {"cases": "MDD", "controls": "controls"}
    [text] = _without_flagged_sentence(effects, record, "higher in MDD than in controls", labels)
    assert text.startswith("2 of 5 pooled rows are flagged by a pre-specified quality rule (see the row account)")
    assert text.endswith("k = 3, then not clearly different between MDD and controls.")
    record["without_flagged"].update(ci_low=0.05)
    [text] = _without_flagged_sentence(effects, record, "higher in MDD than in controls", labels)
    assert text.endswith("k = 3, also higher in MDD than in controls.")


def test_a_tau2_below_its_own_q_profile_ci_is_said_with_the_reml_fit_beside_it():
    """Issue 20: DerSimonian–Laird put τ² below its own Q-profile CI (IL-6 MD: 2.76 vs [71.9, 462]) and the page
    did not say so. Constructed: DL τ² 2.76 with CI [71.9, 462]; yi 0, 5, 10 against a prediction interval
    [1, 9] leaves out 2 of 3; the REML row of the estimator table is shown beside it."""
    from metarepro.present.report import tau2_outside_ci_note

    effects = pd.DataFrame({"yi": [0.0, 5.0, 10.0, 99.0], "included": [True, True, True, False]})
    record = {"k": 3, "measure": "MD", "method": "DL", "test": "z", "level": 95, "tau2": 2.76, "tau2_ci_low": 71.9,
              "tau2_ci_high": 462.0, "estimate": 5.0, "ci_low": 3.0, "ci_high": 7.0, "pi_low": 1.0, "pi_high": 9.0}
    estimators = pd.DataFrame({"method": ["DL", "REML", "REML"], "test": ["z", "z", "knha"],
                               "estimate": [5.0, 4.5, 4.5], "ci_low": [3.0, -1.0, -2.0], "ci_high": [7.0, 10.0, 11.0],
                               "pval": [0.001, 0.11, 0.2], "tau2": [2.76, 150.0, 150.0],
                               "pi_low": [1.0, -20.0, -30.0], "pi_high": [9.0, 29.0, 39.0]})  # fmt: skip
    note = tau2_outside_ci_note(record, effects, estimators)
    assert "τ² = 2.76 (the DerSimonian–Laird estimator) lies below its own Q-profile 95% CI (71.9 to 462)" in note
    assert "(its prediction interval leaves out 2 of 3 observed studies)" in note
    assert "REML on the same rows (z test): " in note and "4.50 (95% CI -1.00 to 10.00), p = 0.11" in note
    assert "its prediction interval leaves out 0 of 3 observed studies" in note
    assert tau2_outside_ci_note({**record, "tau2": 100.0}, effects, estimators) == ""  # inside its CI: nothing


def test_rom_bias_adjusted_estimates_are_ratios_like_the_pooled_estimate():
    """Issue 20: the ROM bias table printed log-scale adjusted estimates ("adjusted 1.18" beside a ratio of 3.25).
    exp(1.18) = 3.2544, exp(0.9) = 2.4596, exp(1.5) = 4.4817 (shown to 4 significant digits)."""
    from metarepro.present.report import _bias

    bias = {"k": 12, "egger_z": 1.0, "egger_p": 0.3, "trimfill_k0": 2, "trimfill_side": "left",
            "trimfill_estimate": 1.18, "trimfill_ci_low": 0.9, "trimfill_ci_high": 1.5}  # fmt: skip
    html = _bias(bias, "ROM")
    assert "adjusted 3.254 [2.46, 4.482]" in html and "(adjusted estimates as ratios of means)" in html
    assert "adjusted 1.18 [0.9, 1.5]" in _bias(bias, "SMD") and "(analysis scale)" in _bias(bias, "SMD")


def test_subgroup_rows_without_a_value_are_named_in_the_table_and_the_figure(tmp_path):
    """Issue 20: rows without a subgroup value were dropped from the subgroup table and figure without a word.
    Constructed: five studies, one without a 'sample'."""
    from metarepro.jobs.pool import run_analysis
    from metarepro.present.report import _subgroups

    sheet = tmp_path / "s.csv"
    sheet.write_text("study_id,sample,yi,vi\na,serum,0.1,0.02\nb,serum,0.3,0.03\nc,plasma,0.5,0.02\n"
                     "d,plasma,0.2,0.04\ne,,0.4,0.03\n")  # fmt: skip
    config = {"name": "t", "defaults": {}, "analysis": {"data": str(sheet), "measure": "GEN", "subgroups": ["sample"]}}
    result = run_analysis(sheet, config["analysis"])
    model, rows = result.settings, sensitivity.sensitivity_rows(result, config["analysis"])
    table = sensitivity.subgroups(rows, model, ["sample"])
    html = _subgroups(table)
    assert "<strong>By sample</strong>" in html  # the heading names the grouping column (it once said "By I² (%)")
    assert "1 pooled row(s) have no sample and are in no subgroup: line(s) 6." in html
    figure = sensitivity.subgroup_figure(rows, model, "sample", title="T")
    assert any("1 pooled row(s) without a sample are in no subgroup" in t.get_text() for t in figure.texts)


def test_a_significant_egger_test_is_among_the_markers_caveats():
    """Issue 20: the headline called IL-1b higher on k = 4 while significant Egger tests (IL-6 p = 0.003, CRP
    p = 0.011) were missing from the caveats. Egger 1997 read asymmetry at p < 0.10."""
    from metarepro.present.report import _small_study_caveat

    bias = {"egger_statistic": "t", "egger_z": 3.4, "egger_df": 18, "egger_p": 0.0032, "low_power_note": None}
    assert _small_study_caveat(bias) == [
        "funnel asymmetry by Egger's test (t = 3.4000, df = 18, p = 0.003): small-study effects or publication bias"]
    few = {**bias, "egger_p": 0.08, "low_power_note": "fewer than 10 studies ..."}
    assert _small_study_caveat(few)[0].endswith("(fewer than 10 studies: the test has low power)")
    assert _small_study_caveat({**bias, "egger_p": 0.10}) == [] and _small_study_caveat(None) == []


def test_the_test_of_moderators_is_named_as_metafor_prints_it():
    """The report wrote "QM(df = 1, 44) = 3.859" for a Knapp–Hartung meta-regression; metafor prints that test as
    "F(df1 = 1, df2 = 44) = 3.8589" (an F), and a z-test model's as "QM(df = 3) = ..." (a chi-square)."""
    from metarepro.present.report import moderator_test

    assert moderator_test(3.8589, 1, 44) == "F(df1 = 1, df2 = 44) = 3.859"
    assert moderator_test(1.878, 3, np.nan) == "QM(df = 3) = 1.878"
    assert moderator_test(1.878, 3) == "QM(df = 3) = 1.878"


def _headline(measure, yi, vi, labels=None, title="IL-6", config=None):
    effects = included_rows(np.asarray(yi), np.asarray(vi)).assign(included=True, flags="", conversion="",
                                                                   reason="", checks="")  # fmt: skip
    pooled = {**pooled_record(rma(np.asarray(yi), np.asarray(vi), "REML", "z"), Settings(measure=measure)),
              "n_cases": np.nan}  # fmt: skip
    config = {"where": {"marker": "IL-6"}} if config is None else config
    section = AnalysisSection("a1", title, pooled, effects, "<svg></svg>", config=config)
    page = render_report([section], labels=labels or {"cases": "MDD", "controls": "controls"})
    return re.search(r'<ul class="lede"><li>(.*?)</li>', page, flags=re.S).group(1), pooled


# Constructed: five rows around 0.3 with small variances (the CI excludes 0), and around 0 (it includes 0)
CLEAR = ([0.25, 0.3, 0.35, 0.28, 0.32], [0.004] * 5)
UNCLEAR = ([0.2, -0.2, 0.05, -0.1, 0.1], [0.04] * 5)


@pytest.mark.parametrize(("measure", "rows", "expected"), [
    ("SMD", CLEAR, "<strong>IL-6</strong> is higher in MDD than in controls: "),
    ("SMD", UNCLEAR, "<strong>IL-6</strong> is not clearly different between MDD and controls: "),
    ("ZCOR", CLEAR, "<strong>IL-6</strong> is positively correlated (the CI excludes r = 0): correlation r "),
    ("ZCOR", UNCLEAR, "<strong>IL-6</strong> is not clearly correlated (the CI includes r = 0): correlation r "),
    ("GEN", CLEAR, "<strong>IL-6</strong> is associated with an effect above 0 (the CI excludes 0): effect "),
    ("GEN", UNCLEAR, "<strong>IL-6</strong> is associated with an effect not clearly different from 0 (the CI "
                     "includes 0): effect "),
])  # fmt: skip
def test_marker_sentences_use_the_words_of_their_measure_family(measure, rows, expected):
    """Caught: the wording written for case-control levels ("IL-6 is higher in cases than in controls") was applied
    to correlations, which have no groups (r of the marker with another variable), and to generic effects (GEN:
    the sheet's own yi, whose direction means what the sheet says): these name the measure instead."""
    sentence, pooled = _headline(measure, *rows)
    assert sentence.startswith(expected), sentence
    if measure != "SMD":
        assert "MDD" not in sentence and "controls" not in sentence
    assert (pooled["ci_low"] > 0) == (rows is CLEAR)  # the constructed CIs are as the cases say


def test_sensitivity_conclusions_use_the_words_of_their_measure_family():
    from metarepro.pipeline.findings import conclusion_text

    labels = {"cases": "MDD"}
    assert [conclusion_text(s, labels, "SMD") for s in (1, -1, 0)] == [
        "higher in MDD", "lower in MDD", "CI includes no difference"]  # fmt: skip
    assert [conclusion_text(s, labels, "ZCOR") for s in (1, -1, 0)] == [
        "positive correlation", "negative correlation", "CI includes no correlation"]  # fmt: skip
    assert [conclusion_text(s, labels, "GEN") for s in (1, -1, 0)] == [
        "effect above 0", "effect below 0", "CI includes 0"]  # fmt: skip


def test_an_exact_permutation_p_says_how_metafor_counts_failed_refits():
    """Issue 20: for template.yaml's il6_drug_free (4 studies, 24 permutations) R's permutest under a strict
    threshold left out 9 refits it could not finish (p = 0.733) where metarepro refits all 24 (p = 0.458,
    tests/stats/test_permutation.py): an exact test says so; a random one (its own caveat) does not."""
    from metarepro.present.report import _metareg

    table = pd.DataFrame({"coefficient": ["intrcpt", "year"], "estimate": [1.0, 0.1], "se": [1.0, 0.1],
                          "ci_low": [-1.0, -0.1], "ci_high": [3.0, 0.3], "pval": [0.3, 0.3],
                          "permutation_p": [0.458, 0.458], "k": 4, "tau2": 1.2, "R2": 0.0, "QM": 1.0, "QM_df": 1,
                          "QM_df2": 2, "QM_p": 0.42, "QM_permutation_p": 0.458, "permutations": 24,
                          "permutation_exact": True, "QE": 3.0, "QE_df": 2, "QE_p": 0.2})  # fmt: skip
    exact = html.unescape(str(_metareg(table)))
    assert ("permutation p = 0.458 (24 permutations: exact, every distinct permutation refitted; metafor's "
            "permutest leaves out a permutation whose refit stops with an error") in exact
    random = html.unescape(str(_metareg(table.assign(permutations=1000, permutation_exact=False))))
    assert "permutation p = 0.458 (1000 permutations);" in random and "refit" not in random


def test_a_sentence_on_an_analysis_named_by_its_title_speaks_of_its_outcome():
    """Caught (audit of issue 20): the treatment trials' sentence made the analysis title its subject ("Anti-
    inflammatory agents vs placebo in adults with MDD: depression score, Hedges' g is not clearly different between
    anti-inflammatory and placebo"). An analysis without ``where: marker`` is named by its title, then its outcome
    is the subject; a marker's sentence is unchanged."""
    title = "Drug vs placebo: depression score, Hedges' g"
    labels = {"cases": "drug", "controls": "placebo"}
    sentence, _ = _headline("SMD", *UNCLEAR, labels=labels, title=title, config={"where": {"outcome": "score"}})
    assert sentence.startswith("<strong>Drug vs placebo: depression score, Hedges&#39; g</strong> — the outcome is not "
                               "clearly different between drug and placebo: Hedges&#39; g "), sentence  # fmt: skip
    sentence, _ = _headline("SMD", *UNCLEAR, labels=labels)
    assert sentence.startswith("<strong>IL-6</strong> is not clearly different between drug and placebo: ")
