"""metarepro.pipeline.findings: GRADE domain suggestions flip where their rules say, the OIS by hand, metafor's
influence()/reporter() rules against R (tests/reference/generate_findings_reference.R), and every number in a
sentence read back equal to the record it came from."""

import math
import re

import numpy as np
import pandas as pd
import pytest
from conftest import load_reference
from markupsafe import escape
from tolerances import FORMULA

from metarepro.pipeline import findings as fd

# A pooled.json-like record (SMD, REML + Knapp-Hartung); tests change one field at a time.
BASE = {"k": 12, "measure": "SMD", "method": "REML", "test": "knha", "level": 95, "estimate": 0.5, "se": 0.1,
        "zval": 5.0, "pval": 0.0004, "ci_low": 0.28, "ci_high": 0.72, "tau2": 0.04, "i2": 40.0, "q": 20.0,
        "q_df": 11.0, "q_p": 0.045, "pi_low": 0.05, "pi_high": 0.95, "n_cases": 600.0, "n_controls": 600.0}  # fmt: skip
Z = 1.959963984540054 + 0.8416212335729143  # z_{0.975} + z_{0.80}, from a normal table


def pooled(**changes):
    return {**BASE, **changes}


def effects_frame(weights, flags, n1=50.0, n2=50.0, vi=0.04):
    k = len(weights)
    return pd.DataFrame({"line": range(1, k + 1), "study": [f"S{i}" for i in range(k)], "included": True,
                         "weight": weights, "flags": flags, "n_cases": n1, "n_controls": n2, "vi": vi})  # fmt: skip


# ---------------------------------------------------------------------------------------------------- OIS


def test_ois_smd_by_hand():
    # GRADE 6 (Guyatt 2011): n per group = 2 (z_α/2 + z_β)² σ² / δ²; SMD δ = 0.2, σ = 1:
    # 2 · 2.801585² / 0.04 = 392.44 per group (the handbook's "about 400 per group"), 784.9 in all -> 785
    assert fd.optimal_information_size("SMD", 0.2) == pytest.approx(4 * Z**2 / 0.04, rel=FORMULA)
    assert math.ceil(fd.optimal_information_size("SMD", 0.2)) == 785
    assert math.ceil(fd.optimal_information_size("SMD", -0.5)) == 126  # 4 · 7.84888 / 0.25 = 125.58


def test_ois_correlation_and_md_by_hand():
    # r = 0.3: ((z_α/2 + z_β) / atanh 0.3)² + 3 = (2.801585 / 0.3095196)² + 3 = 81.93 + 3 = 84.93 -> 85
    assert math.ceil(fd.optimal_information_size("ZCOR", math.atanh(0.3))) == 85
    # MD δ = 5 with σ² = 100: 4 · 7.84888 · 100 / 25 = 125.58 (the SMD 0.5 case, as it must be)
    assert fd.optimal_information_size("MD", 5.0, 100.0) == pytest.approx(4 * Z**2 * 100 / 25, rel=FORMULA)
    with pytest.raises(ValueError, match="sigma2"):
        fd.optimal_information_size("MD", 5.0)


def test_outcome_variance_inverts_two_group_variance():
    # vi = σ² (1/n1 + 1/n2): with σ² = 9, n 20/30 -> vi = 9 · (1/20 + 1/30) = 0.75; another row n 10/10 -> 1.8
    eff = pd.DataFrame(
        {
            "included": [True, True, True],
            "n_cases": [20.0, 10.0, 40.0],
            "n_controls": [30.0, 10.0, 40.0],
            "vi": [0.75, 1.8, 9 * (2 / 40) * 4],
        }
    )  # third row: σ² = 36
    assert fd.outcome_variance(eff) == pytest.approx(9.0, rel=FORMULA)


# -------------------------------------------------------------------------------------------- suggestions


def test_inconsistency_flips_at_i2_50_and_when_the_pi_crosses_the_null():
    assert fd.inconsistency(pooled(i2=49.9)).concern is False
    s = fd.inconsistency(pooled(i2=50.0))
    assert s.concern is True and "I² = 50.0% (≥ 50%)" in s.reason
    # PI includes 0 while the CI excludes it -> concern even with low I²
    s = fd.inconsistency(pooled(pi_low=-0.1))
    assert s.concern is True and "−0.10 to 0.95 includes the null 0 while the CI excludes it" in s.reason
    # both include 0: the PI adds nothing to the CI
    assert fd.inconsistency(pooled(pi_low=-0.1, ci_low=-0.05)).concern is False
    assert fd.inconsistency(pooled(k=1)).concern is None


def test_imprecision_flips_on_ci_threshold_and_ois():
    # 1200 participants; OIS for the pooled 0.5 is 126: no concern
    s = fd.imprecision(pooled())
    assert s.concern is False
    assert "1200 participants ≥ OIS 126" in s.reason and "the pooled estimate 0.50" in s.reason
    assert fd.imprecision(pooled(ci_low=-0.01)).concern is True  # CI includes 0
    # decision threshold 0.3 inside [0.28, 0.72] -> concern; 0.25 outside -> none (OIS 4·7.849/0.0625 = 502.3)
    assert fd.imprecision(pooled(), decision_threshold=0.3).concern is True
    s = fd.imprecision(pooled(), decision_threshold=0.25)
    assert s.concern is False and "OIS 503" in s.reason and "the decision threshold 0.25" in s.reason
    # participants just below / at the OIS for δ = 0.25 (502.3): 502 < 503 -> concern, 503 -> none
    assert fd.imprecision(pooled(n_cases=251.0, n_controls=251.0), decision_threshold=0.25).concern is True
    assert fd.imprecision(pooled(n_cases=251.0, n_controls=252.0), decision_threshold=0.25).concern is False


def test_imprecision_ratio_threshold_is_on_the_reader_scale():
    # ROM: the threshold is a ratio; log(1.2) = 0.18232 lies inside the CI [log 1.1, log 1.5]
    p = pooled(measure="ROM", estimate=math.log(1.3), ci_low=math.log(1.1), ci_high=math.log(1.5))
    eff = effects_frame([50.0, 50.0], ["", ""], n1=50.0, n2=50.0, vi=0.04)  # σ² = 0.04 / (2/50) = 1
    s = fd.imprecision(p, eff, decision_threshold=1.2)
    assert s.concern is True and "CI 1.10 to 1.50 excludes the null 1" in s.reason
    # OIS for log(1.2) with σ² = 1: 4 · 7.84888 / 0.18232² = 944.5 -> 945 > 1200? no: 1200 ≥ 945
    assert "OIS 945" in s.reason and "σ² = 1.0000" in s.reason
    # threshold 1.05 below the CI: the CI is fine, but the OIS for log(1.05) = 0.04879 is 4 · 7.84888 / 0.0023805
    # = 13188.7 -> 13189 > 1200 participants; with 6600 per group (13200) no concern remains
    s = fd.imprecision(p, eff, decision_threshold=1.05)
    assert s.concern is True and "1200 participants < OIS 13189" in s.reason
    assert fd.imprecision({**p, "n_cases": 6600.0, "n_controls": 6600.0}, eff, decision_threshold=1.05).concern is False
    with pytest.raises(ValueError, match="ratio"):
        fd.imprecision(p, eff, decision_threshold=-1)


def test_publication_bias_flips_at_egger_010_with_k10_and_on_trimfill():
    bias = {
        "k": 10,
        "egger_z": 2.0,
        "egger_statistic": "t",
        "egger_df": 8.0,
        "egger_p": 0.0999,
        "trimfill_k0": 0,
        "trimfill_side": "left",
        "trimfill_estimate": 0.5,
        "trimfill_ci_low": 0.28,
        "trimfill_ci_high": 0.72,
    }
    s = fd.publication_bias(pooled(k=10), bias)
    assert s.concern is True and "t = 2.00, df = 8, p = 0.0999 (< 0.1, k = 10)" in s.reason
    assert fd.publication_bias(pooled(k=10), {**bias, "egger_p": 0.10}).concern is False
    # k = 9: the test is not read; nothing assessable unless trim-and-fill changes the conclusion
    assert fd.publication_bias(pooled(k=9), {**bias, "k": 9}).concern is None
    filled = {**bias, "k": 9, "trimfill_k0": 3, "trimfill_estimate": 0.2, "trimfill_ci_low": -0.05}
    s = fd.publication_bias(pooled(k=9), filled)
    assert s.concern is True and "adds 3 studies" in s.reason and "changes the conclusion" in s.reason
    # filled studies that keep the CI above 0: no change
    assert fd.publication_bias(pooled(), {**filled, "k": 12, "egger_p": 0.5, "trimfill_ci_low": 0.01}).concern is False


def test_risk_of_bias_flips_at_half_the_weight():
    p = pooled(without_flagged={"k": 2, "estimate": 0.4, "ci_low": 0.1, "ci_high": 0.7})
    s = fd.risk_of_bias(p, effects_frame([49.9, 50.1], ["low_dispersion: x", ""]))
    assert s.concern is False and "1 of 2 pooled rows" in s.reason and "49.9% of the weight (< 50%)" in s.reason
    assert fd.risk_of_bias(p, effects_frame([50.0, 50.0], ["low_dispersion: x", ""])).concern is True
    # leaving them out changes the conclusion -> concern even with little weight
    p2 = pooled(without_flagged={"k": 1, "estimate": 0.4, "ci_low": -0.1, "ci_high": 0.9})
    s = fd.risk_of_bias(p2, effects_frame([10.0, 90.0], ["", "overlap: y"]))
    assert s.concern is True and "changes conclusion" in s.reason
    assert fd.risk_of_bias(p, None).concern is None


def test_suggestion_labels_say_a_person_confirms():
    for concern in (True, False, None):
        label = fd.Suggestion("x", concern, "r").label
        assert ("confirmed" in label) if concern is not None else ("person" in label)


def test_sof_row_on_the_reader_scale():
    p = pooled(measure="ROM", estimate=math.log(1.3), ci_low=math.log(1.1), ci_high=math.log(1.5))
    row = fd.sof_row("IL-6", "il6_rom", p, None, effects_frame([60.0, 40.0], ["", ""]))
    assert (row.estimate, row.ci_low, row.ci_high) == pytest.approx((1.3, 1.1, 1.5), rel=FORMULA)
    assert row.k == 12 and row.participants == 1200.0
    assert [s.domain for s in row.suggestions] == ["risk of bias", "inconsistency", "imprecision",
                                                   "publication bias"]  # fmt: skip
    table = fd.sof_table([row])
    assert table.loc[0, "publication_bias"].startswith("not assessable")


# ----------------------------------------------------------------------------------------- questions


def test_questions_group_by_sheet_and_filter():
    analyses = {"a_smd": {"data": "s.csv", "where": {"marker": "A"}},
                "a_rep": {"data": "s.csv", "where": {"marker": "A"}, "exclude_converted": True},
                "a_rom": {"data": "s.csv", "where": {"marker": "A"}, "measure": "ROM"},
                "a_ml": {"data": "s.csv", "where": {"marker": "A"}, "dependence": {"model": "multilevel"}},
                "a_dl": {"data": "s.csv", "where": {"marker": "A"}, "method": "DL"},
                "b_md": {"data": "s.csv", "where": {"marker": "B", "medication": ["free", "naive"]}, "measure": "MD"},
                "c": {"data": "s.csv"}}  # fmt: skip
    q = fd.questions(analyses, {"measure": "SMD"})
    assert q == {"A": {"primary": "a_smd", "reported": "a_rep", "ROM": "a_rom", "multilevel": "a_ml",
                       "settings: a_dl": "a_dl"},
                 "B, medication: free/naive": {"primary": "b_md"}, "c": {"primary": "c"}}  # fmt: skip


# ------------------------------------------------------------------------------------- metafor's rules


def r_influence(case):
    """R's influence() diagnostics of one reference case as influence.csv holds them."""
    return pd.DataFrame({"study": case["slab"], "rstudent": case["rstudent"], "dffits": case["dffits"],
                         "cook_d": case["cook_d"], "hat": case["hat"], "dfbetas": case["dfbetas"]})  # fmt: skip


@pytest.mark.parametrize("case", load_reference("findings_reference.json")["datasets"], ids=lambda c: c["name"])
def test_influence_rules_match_metafor(case):
    crit = fd.influence_criteria(r_influence(case))
    star = crit[["dffits", "cook_d", "hat", "dfbetas"]].any(axis=1).to_numpy()
    np.testing.assert_array_equal(star, case["is_infl"])
    np.testing.assert_array_equal(crit["outlier"], case["reporter_outlier"])
    np.testing.assert_array_equal(crit["cook_spike"], case["reporter_cook_spike"])


def test_the_reference_cases_trip_each_rule():
    # the R cases are only a check if some study trips each rule
    cases = load_reference("findings_reference.json")["datasets"]
    assert any(any(c["is_infl"]) for c in cases)
    assert any(any(c["reporter_outlier"]) for c in cases)
    assert any(any(c["reporter_cook_spike"]) for c in cases)


# --------------------------------------------------------------------------------- numbers in sentences

NUMBER = re.compile(r"[−-]?\d+(?:\.\d+)?")


def numbers(text):
    return [float(x.replace("−", "-")) for x in NUMBER.findall(text)]


BIAS = {"k": 12, "egger_z": 3.0891735914740144, "egger_statistic": "t", "egger_df": 10.0, "egger_p": 0.0113,
        "begg_tau": 0.1473684210526316, "begg_p": 0.3858571513151256}  # fmt: skip


def test_reporter_sentences_numbers_equal_the_records():
    p = pooled(estimate=0.4871, ci_low=0.2012, ci_high=0.7731, zval=3.7512, pval=0.00321, q=31.234, q_p=0.00102,
               tau2=0.08765, i2=61.234, pi_low=-0.1213, pi_high=1.0955)  # fmt: skip
    s = fd.reporter_sentences(p, BIAS)
    assert numbers(s[0]) == [round(p["estimate"], 2), 95, round(p["ci_low"], 2), round(p["ci_high"], 2), 0,
                             p["k"] - 1, round(p["zval"], 2), round(p["pval"], 4)]  # fmt: skip
    assert "differed significantly from 0 (t(11) = 3.75, p = 0.0032)" in s[0]
    assert numbers(s[1]) == [p["q_df"], round(p["q"], 2), round(p["q_p"], 4), round(p["tau2"], 4), round(p["i2"], 2)]
    assert s[1].startswith("According to the Q-test, the true outcomes appear to be heterogeneous")
    assert numbers(s[2]) == [95, round(p["pi_low"], 2), round(p["pi_high"], 2), 0]
    assert (
        "includes 0. Hence, although the average outcome is estimated to be positive, in some studies the "
        "true outcome may in fact be negative." in s[2]
    )
    assert s[3] == ("The regression test indicated funnel plot asymmetry (regression test, t = 3.09, df = 10, "
                    "p = 0.0113) but not the rank correlation test (rank correlation test, Kendall's τ = 0.147, "
                    "p = 0.3859).")  # fmt: skip


def test_reporter_prediction_interval_and_tests_flip():
    s = fd.reporter_sentences(pooled(), {**BIAS, "egger_p": 0.051})
    assert "excludes 0. Hence, even though there may be some heterogeneity" in s[2]
    assert s[3].startswith("Neither the rank correlation nor the regression test")
    s = fd.reporter_sentences(pooled(), {**BIAS, "egger_p": 0.05, "begg_p": 0.05})
    assert s[3].startswith("Both the rank correlation and the regression test")
    s = fd.reporter_sentences(pooled(), {**BIAS, "egger_p": 0.2, "begg_p": 0.01})
    assert s[3].startswith("The rank correlation test indicated funnel plot asymmetry")
    # the Q-test wording at metafor's 0.10 / 0.05 cut-offs
    assert fd.reporter_sentences(pooled(q_p=0.1001))[1].startswith("According to the Q-test, there was no")
    assert fd.reporter_sentences(pooled(q_p=0.10))[1].startswith("The Q-test for heterogeneity was not significant")
    assert fd.reporter_sentences(pooled(q_p=0.05))[1].startswith("According to the Q-test, the true outcomes appear")
    # no PI sentence when tau2 = 0 (metafor: only "when any amount of heterogeneity is detected")
    assert not any("prediction interval" in x for x in fd.reporter_sentences(pooled(tau2=0.0)))
    # τ² only for random-effects models (reporter: model == "RE")
    assert "τ²" in fd.reporter_sentences(pooled())[1]
    assert "τ²" not in fd.reporter_sentences(pooled(method="EE", tau2=0.0))[1]


def test_reporter_on_a_ratio_speaks_of_1():
    p = pooled(measure="ROM", estimate=math.log(1.5), ci_low=math.log(1.2), ci_high=math.log(1.9),
               pi_low=math.log(0.9), pi_high=math.log(2.5))  # fmt: skip
    s = fd.reporter_sentences(p)
    assert "ratio of means was 1.50 (95% CI: 1.20 to 1.90)" in s[0] and "differed significantly from 1" in s[0]
    assert (
        "0.90 to 2.50; it includes 1. Hence, although the average outcome is estimated to be above 1, in some "
        "studies the true outcome may in fact be below 1." in s[2]
    )


def test_reporter_on_a_proportion_tests_against_no_null():
    """A proportion (PLO here) has no "no difference" value: metafor's reporter would say the average "differed
    significantly from 0", a test of logit p = 0, i.e. p = 50%, which answers no question of a prevalence; the
    sentences give the estimate and the prediction interval in proportions, without a null."""
    logit = [math.log(0.3 / 0.7), math.log(0.2 / 0.8), math.log(0.4 / 0.6), math.log(0.1 / 0.9), math.log(0.6 / 0.4)]
    p = pooled(measure="PLO", estimate=logit[0], ci_low=logit[1], ci_high=logit[2], pi_low=logit[3], pi_high=logit[4],
               **{f"{name}_prop": 1 / (1 + math.exp(-v)) for name, v in zip(
                   ("estimate", "ci_low", "ci_high", "pi_low", "pi_high"), logit, strict=True)})  # fmt: skip
    s = fd.reporter_sentences(p)
    assert s[0].startswith("The estimated average proportion was 0.30 (95% CI: 0.20 to 0.40); a proportion has no")
    assert not any("significantly from" in t or "includes" in t or "excludes" in t for t in s)
    assert "A 95% prediction interval for the true outcomes is given by 0.10 to 0.60." in s


REPORTER_PHRASES = (
    "differed significantly from zero", "did not differ significantly from zero",
    "According to the $Q$-test, there was no significant amount of heterogeneity in the true outcomes",
    "The $Q$-test for heterogeneity was not significant, but some heterogeneity may still be present",
    "According to the $Q$-test, the true outcomes appear to be heterogeneous",
    "Hence, although the average outcome is estimated to be negative, in some studies the true outcome may in fact "
    "be positive.",
    "Hence, although the average outcome is estimated to be positive, in some studies the true outcome may in fact "
    "be negative.",
    "Hence, even though there may be some heterogeneity, the true outcomes of the studies are generally in the same "
    "direction as the estimated average outcome.",
    "Neither the rank correlation nor the regression test indicated any funnel plot asymmetry",
    "Both the rank correlation and the regression test indicated potential funnel plot asymmetry",
    "The regression test indicated funnel plot asymmetry", "The rank correlation test indicated funnel plot asymmetry",
)  # fmt: skip


@pytest.mark.parametrize("case", load_reference("findings_reference.json")["datasets"], ids=lambda c: c["name"])
def test_reporter_sentences_take_metafor_reporters_branches(case):
    """metafor's reporter() text for the same fit (tests/reference/generate_findings_reference.R): each of its
    branch phrases is in our sentences exactly when it is in reporter's, and the studies it names are ours."""
    fit = {**case["fit"], "measure": "GEN"}  # GEN: the analysis scale, as reporter prints (log RR, log OR)
    effects = pd.DataFrame({"study": case["slab"], "included": True, "weight": case["weight"]})
    ours = " ".join(fd.reporter_sentences(fit, case["bias"], r_influence(case), effects))
    ours = ours.replace("Q-test", "$Q$-test").replace("from 0 (", "from zero (")
    theirs = case["reporter_text"]
    for phrase in REPORTER_PHRASES:
        assert (phrase in ours) == (phrase in theirs), phrase
    for named in re.findall(r"((?:One|one|two|several) stud(?:y|ies) \([^)]*\) had [a-z ]+)", theirs):
        assert named.lower().replace(" value", " value") in ours.lower(), named
    cook = re.search(r"According to the Cook's distances, (.*?) could be considered", theirs).group(1)
    assert f"), {cook} could be considered" in ours
    bonferroni = re.search(r"\\pm (\d+\.\d+)", theirs).group(1)
    assert f"±{float(bonferroni):.2f}" in ours


def test_reporter_influence_sentences_name_the_rule_and_the_study():
    case = next(c for c in load_reference("findings_reference.json")["datasets"] if c["name"] == "magnesium_or_ee_z")
    infl = r_influence(case)
    k = case["k"]
    s = fd.reporter_sentences(pooled(k=k, measure="OR", tau2=0.0), None, infl)
    named = [n for n, hit in zip(case["slab"], case["is_infl"], strict=True) if hit]
    sentence = next(x for x in s if x.startswith("By metafor's influence() criteria"))
    assert all(n in sentence for n in named)
    bonferroni = next(x for x in s if x.startswith("An examination"))
    assert f"±{fd.num(case['reporter_crit'])}" in bonferroni
    spikes = [n for n, hit in zip(case["slab"], case["reporter_cook_spike"], strict=True) if hit]
    assert f"two studies ({'; '.join(spikes)})" in next(x for x in s if x.startswith("According to the Cook"))


# ------------------------------------------------------------------------------------------- sensitivity


def _records():
    p = pooled(without_flagged={"k": 8, "estimate": 0.3, "ci_low": -0.02, "ci_high": 0.62, "excluded_lines": [3, 4]})
    est = pd.DataFrame({"method": ["EE", "DL", "REML", "DL"], "test": ["knha", "knha", "knha", "z"],
                        "estimate": [0.41, 0.52, 0.5, 0.52], "ci_low": [0.2, 0.3, 0.28, 0.35],
                        "ci_high": [0.62, 0.74, 0.72, 0.69]})  # fmt: skip
    l1o = pd.DataFrame({"study": ["S0", "S1", "S2"], "estimate": [0.45, 0.58, 0.5],
                        "ci_low": [0.2, 0.31, -0.01], "ci_high": [0.7, 0.85, 1.01]})  # fmt: skip
    bias = {"trimfill_k0": 2, "trimfill_side": "left", "trimfill_estimator": "L0", "trimfill_estimate": 0.42,
            "trimfill_ci_low": 0.18, "trimfill_ci_high": 0.66}  # fmt: skip
    rom = pooled(measure="ROM", k=10, estimate=math.log(1.4), ci_low=math.log(1.1), ci_high=math.log(1.8))
    return {"a": fd.AnalysisRecords("a", p, bias, None, est, l1o), "a_rom": fd.AnalysisRecords("a_rom", rom)}


def test_sensitivity_rows_without_leave_one_out_refits():
    """Above REFIT_MAX_K the leave-one-out table holds no refit (every estimate NaN, the reason in the table): the
    sensitivity summary leaves the row out instead of failing (a k = 10,000 report job stopped on
    'All-NaN slice encountered')."""
    records = _records()
    l1o = records["a"].leave1out.assign(estimate=np.nan, ci_low=np.nan, ci_high=np.nan)
    records["a"] = fd.AnalysisRecords("a", records["a"].pooled, records["a"].bias, None, records["a"].estimators, l1o)
    labels = [row.label for row in fd.sensitivity_rows({"primary": "a"}, records)]
    assert "leave-one-out" not in labels and labels[0] == "primary"


def test_sensitivity_rows_and_sentence():
    rows = fd.sensitivity_rows({"primary": "a", "ROM": "a_rom"}, _records())
    table = fd.sensitivity_table(rows).set_index("label")
    assert list(table.index) == [
        "primary",
        "without flagged rows",
        "other scale: ROM (REML, knha)",
        "every τ² estimator (3, test knha)",
        "leave-one-out",
        "trim-and-fill (L0, left side)",
    ]
    assert table.loc["other scale: ROM (REML, knha)", ["estimate", "low", "high"]].tolist() == pytest.approx(
        [1.4, 1.1, 1.8], rel=FORMULA
    )
    # the estimator range uses the primary's test only (DL z's row is not in it): 0.41 (EE) to 0.52 (DL)
    est = table.loc["every τ² estimator (3, test knha)"]
    assert (est["low"], est["high"], est["conclusion"]) == (0.41, 0.52, 1)
    l1o = table.loc["leave-one-out"]
    assert (l1o["low"], l1o["high"], l1o["k"]) == (0.45, 0.58, 11)
    assert "conclusion changes without: S2" in l1o["note"] and pd.isna(l1o["conclusion"])
    assert table.loc["trim-and-fill (L0, left side)", "k"] == 14
    sentence = fd.sensitivity_sentence("A", rows, {"cases": "MDD"})
    assert sentence == ("A: the primary analysis (SMD, REML, test knha) gives 0.50 [0.28, 0.72], higher in MDD; "
                        "3 of 5 sensitivity analyses reach the same conclusion, not: without flagged rows; "
                        "leave-one-out.")  # fmt: skip


def test_one_study_has_no_estimator_range_and_the_sentence_says_why():
    """Caught (audit of issue 20): for the one-trial treatment question the table had a row "every τ² estimator
    (9, test knha)" with the range −0.43 [−0.43, −0.43] ("lowest EE, highest EE"), and the sentence said "all 1
    sensitivity analyses reach the same conclusion". With k = 1 every estimator gives τ² = 0 and the study's own
    estimate (metafor: rma(yi, vi, method = m) for any m), so the row is no sensitivity analysis; and metafor's rma
    fits one study with test "z" ('Setting argument test="z" since k=1.'), not the primary's knha."""
    one = pooled(k=1, estimate=-0.43, ci_low=-1.10, ci_high=0.24)
    est = pd.DataFrame({"method": ["EE", "DL", "REML"], "test": ["knha"] * 3, "estimate": [-0.43] * 3,
                        "ci_low": [-1.10] * 3, "ci_high": [0.24] * 3})  # fmt: skip
    rows = fd.sensitivity_rows({"primary": "t"}, {"t": fd.AnalysisRecords("t", one, None, None, est, None)})
    assert [r.label for r in rows] == ["primary"]
    assert rows[0].note == "SMD, one study (no τ²), test z"  # not "REML, test knha": rma(k = 1) sets test = "z"
    assert fd.sensitivity_sentence("T", rows).endswith(
        "; with one study no sensitivity analysis applies (every τ² estimator gives its estimate).")
    two = pooled(k=2)  # k = 2: the estimators can differ, so the range stays
    records = {"t": fd.AnalysisRecords("t", two, None, None, _records()["a"].estimators, None)}
    rows = fd.sensitivity_rows({"primary": "t"}, records)
    assert [r.label for r in rows] == ["primary", "every τ² estimator (3, test knha)"]
    assert fd.sensitivity_sentence("T", rows).endswith("; the one sensitivity analysis reaches the same conclusion.")


# ------------------------------------------------------------------------------------ the default run


def check_default_run(workdir):
    """On what the default config wrote: the SoF numbers are pooled.json's on the reader's scale, the
    influence() criteria here give influence.csv's ``influential`` column, and each reporter sentence carries
    the record's numbers."""
    import yaml

    from metarepro.jobs.findings import findings, read_records

    config = yaml.safe_load((workdir / "config" / "config.yaml").read_text())
    out = findings(config, workdir / "results")
    # issue 19 added the variability ratios (a question of their own per marker) and the treatment trials (score;
    # response as RR, its OR another scale)
    assert [r.question for r in out.sof_rows] == ["IL-6", "TNF-a", "CRP", "IL-2", "IL-10", "IL-1b", "CRP, variability",
                                                  "IL-6, variability", "TNF-a, variability", "score, eligible_mdd: yes",
                                                  "response, eligible_mdd: yes"]
    crp = out.sensitivity["CRP"]  # the variability ratios are not sensitivity analyses of the mean difference
    assert not crp["analysis"].isin(["crp_cvr", "crp_vr"]).any()
    assert out.sensitivity["CRP, variability"]["analysis"].drop_duplicates().tolist()[:2] == ["crp_cvr", "crp_vr"]
    for row in out.sof_rows:
        rec = read_records(workdir / "results", row.analysis)
        p = rec.pooled
        # the reader's scale as pooled.json writes it (*_ratio for RR, CVR, VR: predict(transf = exp) in R, checked in
        # test_variability.py and test_binary_pipeline.py), not findings' own reader_scale, which makes the row
        suffix = next((s for s in ("_ratio", "_r", "_prop") if f"estimate{s}" in p), "")
        shown = np.array([p[f"{key}{suffix}"] for key in ("estimate", "ci_low", "ci_high")], dtype=float)
        np.testing.assert_allclose([row.estimate, row.ci_low, row.ci_high], shown, rtol=FORMULA, atol=0)
        assert row.k == p["k"]
        assert row.participants == p["n_cases"] + p["n_controls"]
        crit = fd.influence_criteria(rec.influence)
        np.testing.assert_array_equal(crit[["dffits", "cook_d", "hat", "dfbetas"]].any(axis=1),
                                      rec.influence["influential"].astype(bool))  # fmt: skip
        reasons = {x.domain: x.reason for x in row.suggestions}
        one = p["k"] == 1  # the treatment trials: one usable trial, no heterogeneity to estimate
        assert (reasons["inconsistency"] == "k = 1: heterogeneity cannot be estimated" if one
                else f"I² = {fd.num(p['i2'], 1)}%" in reasons["inconsistency"])  # fmt: skip
        flagged = fd.flagged_included(rec.effects)
        share = rec.effects.loc[flagged, "weight"].sum() / rec.effects.loc[rec.effects["included"], "weight"].sum()
        assert f"{int(flagged.sum())} of {p['k']} pooled rows" in reasons["risk of bias"]
        assert f"{fd.num(100 * share, 1)}% of the weight" in reasons["risk of bias"]
        first = out.reporter[row.analysis][0]
        assert f"was {fd.num(shown[0])} (95% CI: {fd.num(shown[1])} to {fd.num(shown[2])})" in first
        assert f"= {fd.num(p['zval'])}, {fd.p_text(p['pval'])})" in first
    il6 = out.sensitivity["IL-6"].set_index("label")
    assert il6.loc["multilevel (every case subgroup)", "analysis"] == "il6_smd_multilevel"
    without = read_records(workdir / "results", "il6_smd").pooled["without_flagged"]
    assert il6.loc["without flagged rows", ["k", "estimate", "low", "high"]].tolist() == [
        without["k"],
        without["estimate"],
        without["ci_low"],
        without["ci_high"],
    ]
    rom = read_records(workdir / "results", "il6_rom").pooled
    assert il6.loc["other scale: ROM (REML, knha)", ["estimate", "low", "high"]].tolist() == pytest.approx(
        np.exp([rom["estimate"], rom["ci_low"], rom["ci_high"]]), rel=FORMULA
    )
    assert "IL-6: the primary analysis" in out.sensitivity_sentences["IL-6"]


def test_findings_of_the_default_run(default_run):
    check_default_run(default_run)


def test_decision_threshold_config_errors():
    from metarepro.inputs.config import semantic_errors

    config = {"analyses": {"a": {"data": "s.csv", "title": "A", "measure": "ROM", "decision_threshold": 0},
                           "b": {"data": "s.csv", "title": "B", "measure": "ZCOR", "decision_threshold": 1.5},
                           "c": {"data": "s.csv", "title": "C", "decision_threshold": -0.2}}}  # fmt: skip
    errors = semantic_errors(config)
    assert len(errors) == 2
    assert "decision_threshold 0 is not a ratio; ROM thresholds are on the ratio scale" in errors[0]
    assert "decision_threshold 1.5 is not a correlation" in errors[1]


# ------------------------------------------------------------------------------------ traffic light


def test_flag_judgements_read_each_rule_and_the_overall():
    eff = effects_frame(
        [30.0, 30.0, 40.0],
        [
            "low_dispersion: cases SD/mean 1/20 = 0.050 (≤ 0.1: x); overlap: y",
            "",
            "eligibility_unclear: abstract says; not_double_checked: z",
        ],
    )
    eff.loc[3] = eff.loc[0]
    eff.loc[3, ["included", "study", "flags"]] = [False, "S3", "overlap: excluded row"]  # not pooled: not shown
    t = fd.flag_judgements(eff)
    assert list(t.index) == ["S0", "S1", "S2"]
    assert t.loc["S0", "low_dispersion"] == t.loc["S0", "overlap"] == "flagged"
    # "not_double_checked: z" after "; " is that rule; the text "abstract says; not..." does not fool the others
    assert t.loc["S2", "eligibility_unclear"] == t.loc["S2", "not_double_checked"] == "flagged"
    assert t.loc["S2", "overlap"] == "not flagged" and (t.loc["S1"] == "not flagged").all()
    assert t["overall"].tolist() == ["flagged", "not flagged", "flagged"]


def test_rob_judgements_from_sheet_columns():
    eff = effects_frame([50.0, 50.0], ["", ""])
    sheet = pd.DataFrame({"line": [1, 2], "rob_selection": ["Low", "High"], "rob_measurement": ["unclear", "Moderate"]})
    t = fd.rob_judgements(sheet, eff)
    assert t.loc["S0"].tolist() == ["low", "no information", "low"]  # overall = worst rated domain
    assert t.loc["S1"].tolist() == ["high", "some concerns", "high"]
    assert fd.rob_judgements(sheet.drop(columns=["rob_selection", "rob_measurement"]), eff) is None
    with pytest.raises(ValueError, match="line 2, column rob_selection: 'bad' is not a risk-of-bias judgement"):
        fd.rob_judgements(sheet.assign(rob_selection=["low", "bad"]), eff)


def test_traffic_light_draws_the_table():
    from metarepro.present.plots.traffic_light import traffic_light_plot

    eff = effects_frame([50.0, 50.0], ["extreme_effect: |g| 2.5", ""])
    table = fd.flag_judgements(eff)
    fig = traffic_light_plot(table, "t")
    drawn = {}
    for c in fig.axes[0].collections:
        if (c.get_gid() or "").startswith("judgement-"):
            for col, row in c.get_offsets():
                drawn[(int(row), int(col))] = c.get_gid().removeprefix("judgement-")
    assert drawn == {(i, j): table.iat[i, j] for i in range(table.shape[0]) for j in range(table.shape[1])}
    with pytest.raises(ValueError, match="unknown judgement"):
        traffic_light_plot(table.replace("flagged", "red"))


def test_traffic_light_beyond_the_figure_limit_is_robvis_summary_of_shares():
    """Above max_rows studies one row per study is not legible (k = 10,000 drew a 216,000 pt tall SVG, 12.5 MB of
    the page): robvis's summary plot instead, each domain's bar split into the share of studies per judgement, read
    back from the figure against shares counted in the table."""
    from metarepro.present.plots.traffic_light import traffic_light_plot

    flags = ["extreme_effect: |g| 2.5", "", "", "low_dispersion: SD/mean 0.05", ""]
    table = fd.flag_judgements(effects_frame([20.0] * 5, flags))
    fig = traffic_light_plot(table, "t", max_rows=4)
    drawn = {p.get_gid(): p.get_width() for p in fig.axes[0].patches if (p.get_gid() or "").startswith("share-")}
    expected = {f"share-{j}-{value}": n / 5 for j, column in enumerate(table.columns)
                for value, n in table[column].value_counts().items()}  # fmt: skip
    assert drawn == pytest.approx(expected, rel=FORMULA) and len(fig.axes[0].get_yticklabels()) == table.shape[1]
    assert not [c for c in fig.axes[0].collections if (c.get_gid() or "").startswith("judgement-")]


def test_conclusion_words_fit_the_measure():
    assert fd.conclusion_text(1, {"cases": "MDD"}) == "higher in MDD"
    assert fd.conclusion_text(-1, None, "ROM") == "lower in cases"
    assert fd.conclusion_text(1, {"cases": "MDD"}, "ZCOR") == "positive correlation"
    assert fd.conclusion_text(0, None, "ZCOR") == "CI includes no correlation"


def test_report_parts_show_the_rows_numbers_escaped():
    from metarepro.jobs.findings import Findings
    from metarepro.present.report import findings_part, sof_section

    p = pooled(measure="ROM", estimate=math.log(1.3), ci_low=math.log(1.1), ci_high=math.log(1.5))
    row = fd.sof_row("IL-6 <b>", "il6_rom", p, None, effects_frame([60.0, 40.0], ["", ""]))
    rows = fd.sensitivity_rows({"primary": "a", "ROM": "a_rom"}, _records())
    found = Findings(fd.sof_table([row]), [row], {"IL-6 <b>": fd.sensitivity_table(rows)},
                     {"IL-6 <b>": fd.sensitivity_sentence("A", rows)}, {"il6_rom": ["A & B."]})  # fmt: skip
    html = str(sof_section(found))
    assert "IL-6 &lt;b&gt;" in html and "IL-6 <b>" not in html
    assert "ratio of means 1.30 [1.10, 1.50] (95% CI)" in html and "<td>12</td><td>1200</td>" in html
    for s in row.suggestions:
        assert str(escape(s.reason)) in html
    assert "? not assessable" in html  # publication bias: no bias.json
    part = str(findings_part(found, row, {"cases": "MDD"}))
    assert 'id="part-il6_rom"' in part and "A &amp; B." in part
    assert "0.50 [0.41, 0.52]" in part and "conclusions differ" in part and "higher in MDD" in part


