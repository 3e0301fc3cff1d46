"""The pre-specified quality rules (data/raw/README.md): each on a constructed row that trips it and one that
does not. Expected numbers are hand calculations written out in each test."""

import numpy as np
import pandas as pd
import pytest
from conftest import sheet_from_columns

from metarepro import quality
from metarepro.inputs.sheet import LINE
from metarepro.pipeline.analysis import Settings, compute_effects


def test_low_dispersion_trips_at_exactly_the_threshold():
    # 3.0 ± 0.3 vs 1.9 ± 0.2: cases 0.3/3.0 = 0.10 (≤ 0.10, flagged), controls 0.2/1.9 = 0.105 (not)
    out = quality.low_dispersion([20, 20], [3.0, 3.0], [0.3, 0.31], [20, 20], [1.9, 1.9], [0.2, 0.2])
    assert out[0].startswith("low_dispersion: cases SD/mean 0.3/3 = 0.100")
    assert "controls" not in out[0]
    assert out[1] == ""  # 0.31/3.0 = 0.103 and 0.2/1.9 = 0.105


def test_likely_sem_when_reading_dispersions_as_sems_fixes_the_t():
    # n 25/25, 3.0 ± 1.5 vs 2.0 ± 1.5: t = 1 / (1.5 * sqrt(2/25)) = 2.357.
    # Reported t = 0.47: ratio 5.0, outside [1/2, 2]. As SEMs, SD = 1.5 * 5 = 7.5: t = 1 / (7.5 * 0.2828) = 0.471.
    out = quality.test_consistency([25], [3.0], [1.5], [25], [2.0], [1.5], [0.47], ["t"])
    assert out[0] == "likely_sem: t from means/SDs 2.36 vs reported 0.47 (from t), 0.471 if the dispersions are SEMs"
    # reported t = 2.0: ratio 1.18, consistent
    assert quality.test_consistency([25], [3.0], [1.5], [25], [2.0], [1.5], [2.0])[0] == ""


def test_inconsistent_test_when_the_sem_reading_does_not_help():
    # t from means/SDs 2.357 vs reported -2.357: opposite signs; as SEMs 0.471, still the wrong sign
    out = quality.test_consistency([25], [3.0], [1.5], [25], [2.0], [1.5], [-2.357])
    assert out[0].startswith("inconsistent_test: t from means/SDs 2.36 vs reported -2.36")
    # SDs converted from SEMs are not re-read as SEMs: the same row with sd_reported False is only inconsistent
    converted = quality.test_consistency([25], [3.0], [1.5], [25], [2.0], [1.5], [0.47], sd_reported=[False])
    assert converted[0].startswith("inconsistent_test:")


def test_reported_t_from_p_f_and_d():
    # p = 0.05 two-sided, df 48: t = 2.0106; F = 4 with cases_lower: t = -2;
    # d = 0.5, n 25/25: t = 0.5 / 0.28284 = 1.7678
    rows = sheet_from_columns({"n_cases": [25, 25, 25], "n_controls": [25, 25, 25], "p": [0.05, np.nan, np.nan],
                               "F": [np.nan, 4.0, np.nan], "d": [np.nan, np.nan, 0.5]})  # fmt: skip
    rows["direction"] = ["cases_higher", "cases_lower", ""]
    t, source = quality.reported_t(rows)
    assert t == pytest.approx([2.0106348, -2.0, 0.5 / np.sqrt(0.08)], rel=1e-7)
    assert list(source) == ["p", "F", "d"]


def test_extreme_effect():
    out = quality.extreme_effect([2.5, -2.01, 1.99, np.nan])
    assert out[0] == "extreme_effect: g = 2.50 (|g| > 2)"
    assert out[1].startswith("extreme_effect: g = -2.01")
    assert list(out[2:]) == ["", ""]


def test_implausible_value_robust_on_log_scale():
    # controls in pg/mL: 1, 1.5, 2, 2.5, 3 and 40 (the last given as 0.04 ng/mL).
    # log10: 0, .176, .301, .398, .477, 1.602; median (.301+.398)/2 = .3495;
    # |dev|: .3495 .173 .0485 .0485 .128 1.2526 -> MAD = (.128+.173)/2 = .1507, robust SD = .2234.
    # 40 pg/mL: z = 1.2526 / .2234 = 5.61 > 3.5 -> flagged; 1 pg/mL: z = .3495 / .2234 = 1.56 -> not.
    out = quality.implausible_value([1, 1.5, 2, 2.5, 3, 0.04], ["pg/mL"] * 5 + ["ng/mL"])
    assert out[5].startswith("implausible_value: control mean 0.04 ng/mL is 17.9× the median of 6 control means")
    assert "robust z 5.6" in out[5]
    assert list(out[:5]) == [""] * 5
    # fewer than 5 control means: no flag at all
    assert list(quality.implausible_value([1, 2, 40, 3], ["pg/mL"] * 4)) == [""] * 4


def test_implausible_value_needs_no_factor_10_and_a_spread_above_zero():
    # issue 17: the threshold follows from the controls' own spread (robust z > 3.5, Iglewicz & Hoaglin), no factor 10.
    # 10, 10.5, 11, 11.5, 12, 30 pg/mL; log10: 1, 1.02119, 1.04139, 1.06070, 1.07918, 1.47712; median 1.051045;
    # |dev| .051045 .029855 .009655 .009655 .028137 .426077 -> MAD (.028137 + .029855)/2 = .028996,
    # robust SD .042990; 30 pg/mL: z = .426077 / .042990 = 9.91 (only 2.67× the median: the old rule said nothing)
    out = quality.implausible_value([10, 10.5, 11, 11.5, 12, 30], ["pg/mL"] * 6)
    assert out[5].startswith("implausible_value: control mean 30 pg/mL is 2.67× the median of 6 control means")
    assert "robust z 9.9" in out[5]
    assert list(out[:5]) == [""] * 5  # 10 pg/mL: z = .051045 / .042990 = 1.19
    # half the means identical: MAD 0, no scale, no flag
    assert list(quality.implausible_value([5, 5, 5, 5, 6, 50], ["pg/mL"] * 6)) == [""] * 6


# --- numbers that no data could produce are excluded (data/raw/README.md) -----------------------------------------


def test_rounding_allowance_is_half_a_unit_of_the_last_printed_digit():
    assert quality.rounding_allowance(13.05) == pytest.approx(0.005)
    assert quality.rounding_allowance(75.0) == 0.5
    assert quality.rounding_allowance("1.0") == pytest.approx(0.05)  # text keeps its trailing zero


@pytest.mark.parametrize(("sd", "impossible"), [(2.94, True), (5.805, True), (5.8, False), (5.81, False)])
def test_an_sd_below_the_spread_of_its_subgroup_means_without_sizes(sd, impossible):
    # Cao 2021: n 75, 13.05, subgroup means 3.03, 10.41, 25.71 (sizes not printed). The least SD over every split is
    # n/(n-1)·(m - a)(b - m) with a, b the adjacent means moved 0.005 towards m and m at 13.045 (the smaller end):
    # 75/74 · (13.045 - 10.415)(25.705 - 13.045) = 75/74 · 2.63 · 12.66 = 33.7457 -> 5.8091.
    # sd 5.805 + 0.0005 = 5.8055 < 5.8091 (impossible); 5.81 + 0.005 = 5.815 (possible); 5.8 (a cell read as a
    # number shows no trailing zero, so its allowance is 0.05): 5.85 (possible)
    bound, _ = quality.subgroup_sd_bound(75, 13.05, [3.03, 10.41, 25.71])
    assert bound == pytest.approx(np.sqrt(75 / 74 * 2.63 * 12.66), rel=1e-12)
    rows = sheet_from_columns({"n_cases": [75], "mean_cases": [13.05], "sd_cases": [sd]})
    rows["subgroup_means_cases"] = ["3.03; 10.41; 25.71"]
    out = quality.impossible_numbers(rows)[0]
    assert (out != "") == impossible
    if impossible:
        assert out == (f"sd_cases {sd:g} < 5.81, the least SD that subgroup means 3.03, 10.41, 25.71 (any sizes) "
                       "allow with mean_cases 13.05 and n_cases 75")  # fmt: skip


@pytest.mark.parametrize(("sd", "impossible"), [(0.4, True), (0.5, False)])
def test_an_sd_below_the_spread_of_its_subgroup_means_with_sizes(sd, impossible):
    # n 10 = 5 + 5, means 1.5 and 2.5 (u 0.05), overall 2.0: sqrt((5·0.25 + 5·0.25)/9) = 0.52705, lowered by
    # 0.05·sqrt(10/9) = 0.052705 -> 0.47434. sd 0.4 + 0.05 = 0.45 < 0.474; 0.5 + 0.05 = 0.55 is possible
    bound, centre = quality.subgroup_sd_bound(10, 2.0, [1.5, 2.5], [5, 5], 0.05)
    assert (bound, centre) == (pytest.approx(np.sqrt(2.5 / 9) - 0.05 * np.sqrt(10 / 9), rel=1e-12), 2.0)
    rows = sheet_from_columns({"n_controls": [10], "mean_controls": [2.0], "sd_controls": [sd]})
    rows["subgroup_means_controls"], rows["subgroup_n_controls"] = ["1.5 2.5"], ["5 5"]
    out = quality.impossible_numbers(rows)[0]
    assert (out != "") == impossible
    if impossible:
        assert out.startswith("sd_controls 0.4 < 0.474, the least SD that subgroup means 1.5, 2.5 (sizes 5 5)")


@pytest.mark.parametrize(
    ("sizes", "mean", "expected"),
    [
        ("5 4", 2.0, "subgroup_n_cases 5 + 4 = 9 ≠ n_cases 10"),
        # weighted mean (5·1.5 + 5·2.5)/10 = 2.0; allowances 0.05 (2.2) + 0.05 (subgroup means): 0.2 > 0.1
        ("5 5", 2.2, "mean_cases 2.2 ≠ 2, the mean of subgroup means 1.5, 2.5 weighted by their sizes"),
        ("5 5", 2.05, ""),  # 0.05 < 0.005 + 0.05
        ("", 3.2, "mean_cases 3.2 lies outside its subgroup means 1.5, 2.5"),  # no split of 1.5, 2.5 averages 3.2
        ("", 2.55, ""),  # within 0.05 + 0.005 of 2.5: possible
        ("5 x", 2.0, "subgroup_n_cases '5 x' is not a list of numbers"),
        ("5 5 5", 2.0, "subgroup_n_cases has 3 sizes but subgroup_means_cases 2 means"),
    ],
)
def test_parts_that_do_not_make_the_whole(sizes, mean, expected):
    rows = sheet_from_columns({"n_cases": [10], "mean_cases": [mean], "sd_cases": [5.0]})
    rows["subgroup_means_cases"], rows["subgroup_n_cases"] = ["1.5; 2.5"], [sizes]
    out = quality.impossible_numbers(rows)[0]
    assert out.startswith(expected) and (out == "") == (expected == "")


def test_a_decimal_comma_in_a_subgroup_cell_is_refused_not_misread():
    rows = sheet_from_columns({"n_cases": [10], "mean_cases": [2.0], "sd_cases": [5.0]})
    rows["subgroup_means_cases"] = ["1,5 2,5"]
    assert "'.' as the decimal mark" in quality.impossible_numbers(rows)[0]


def test_impossible_rows_are_excluded_with_the_reason():
    # row 1: Cao 2021 as printed (13.05 ± 2.94 vs 1.13 ± 0.18, n 75/50); row 2: n 50 ≠ 20 + 20; row 3: vi 0;
    # row 4: the same numbers as row 1 with an SD the subgroups allow (6.0 + 0.05 ≥ 5.81): included
    rows = sheet_from_columns({"n_cases": [75, 20, np.nan, 75], "mean_cases": [13.05, 3.0, np.nan, 13.05],
                               "sd_cases": [2.94, 1.0, np.nan, 6.0], "n_controls": [50, 20, np.nan, 50],
                               "mean_controls": [1.13, 2.0, np.nan, 1.13], "sd_controls": [0.18, 1.0, np.nan, 0.18],
                               "n": [np.nan, 50, np.nan, np.nan], "yi": [np.nan, np.nan, 0.5, np.nan],
                               "vi": [np.nan, np.nan, 0.0, np.nan]})  # fmt: skip
    rows["subgroup_means_cases"] = ["3.03 10.41 25.71", "", "", "3.03 10.41 25.71"]
    effects = compute_effects(rows, Settings())
    reasons = effects["reason"].tolist()
    assert reasons[0].startswith("arithmetically impossible (sd_cases 2.94 < 5.81")
    assert reasons[1] == ("arithmetically impossible (n 50 ≠ n_cases + n_controls = 20 + 20): check the source and "
                          "the cells")  # fmt: skip
    assert reasons[2].startswith("arithmetically impossible (vi is 0")
    assert reasons[3] == "" and effects["included"].tolist() == [False, False, False, True]


def test_the_issue_17_audit_of_the_sheet():
    # one study_id per paper (Yuan, Cixi; the sertraline/IL-17 abstract), two eligibility judgements, Cao 2021 excluded
    from conftest import REPO

    from metarepro.inputs.sheet import read_sheet

    sheet = read_sheet(REPO / "data/raw/cytokines_mdd.csv")
    assert not sheet["study_id"].isin(["YuanGP_Cixi", "CN_jxxfw_sertraline"]).any()
    assert (sheet["study_id"] == "Yuan_Cixi").sum() == 7  # 4 rows (CRP, IL-1b, IL-6, TNF-a) + 3 from the copy
    assert (sheet["study_id"] == "CN_ZGYXCX2018_sertraline_IL17").sum() == 6
    eligibility = sheet.set_index(["study_id", "marker"])["eligibility_second_pass"]
    assert {eligibility[("ChenXY2024", m)] for m in ("IL-1b", "IL-6", "TNF-a")} == {"unclear"}
    assert eligibility[("Fornaro2011", "IL-6")] == "yes"
    crp = compute_effects(sheet[sheet["marker"] == "CRP"].reset_index(drop=True), Settings())
    cao = crp[crp["study"] == "Cao 2021"].iloc[0]
    assert cao["reason"].startswith("arithmetically impossible (sd_cases 2.94 < 5.81")


def test_eligibility_and_double_checking():
    out = quality.eligibility_unclear(["unclear", "yes"], ["medicated sample", ""])
    assert list(out) == ["eligibility_unclear: medicated sample", ""]
    out = quality.not_double_checked(["unconfirmed", "confirmed", "resolved", ""])
    assert list(out) == ["not_double_checked: verification 'unconfirmed'", "", "", ""]


def test_overlap_same_pmid_or_same_author_and_n():
    out = quality.overlaps(
        ["A2017", "B2017", "Yang2005", "Yang2007", "Yang2010", "C"],
        ["Anon 2017", "Other 2017", "Yang K 2005", "Yang 2007", "Yang 2010", "C 2001"],
        ["28558901", "28558901", "", "", "", ""],
        ["", "", "", "", "", ""],
        [72, 72, 33, 33, 34, 10],
        [60, 60, 23, 23, 23, 10],
        [2, 3, 4, 5, 6, 7],
    )
    assert out[0] == "overlap: same PMID 28558901 as line 3 (B2017)"
    assert out[2] == "overlap: same first author and n 33/23 as line 5 (Yang2007)"
    assert out[4] == "" and out[5] == ""  # Yang 2010 has n 34/23; C is alone


def test_overlap_names_what_is_shared_once_then_the_lines():
    """With several others of one key, the shared key is said once ("as lines 3 (B), 4 (C)"), up to ``shown``
    others; a row of the same sample (a second outcome of A) is not an other."""
    ids = ["A", "B", "C", "D", "A"]
    out = quality.overlaps(ids, ["Ames 2001"] * 5, ["11"] * 5, [""] * 5, [1, 2, 3, 4, 5], [1] * 5, [2, 3, 4, 5, 6],
                           shown=2)  # fmt: skip
    assert out[0] == out[4] == "overlap: same PMID 11 as lines 3 (B), 4 (C)"
    assert out[1] == "overlap: same PMID 11 as lines 2 (A), 4 (C)"
    assert out[3] == "overlap: same PMID 11 as lines 2 (A), 3 (B)"
    # each row its own sample (the texts after the group's head are made once); n 33/23 for all, one DOI for two
    out = quality.overlaps(["A", "B", "C", "D"], ["Yang 2005", "Yang 2007", "Yang 2010", "Yang 2011"], [""] * 4,
                           ["", "", "10.1/X", "10.1/x"], [33] * 4, [23] * 4, [2, 3, 4, 5], shown=2)  # fmt: skip
    assert out[0] == "overlap: same first author and n 33/23 as lines 3 (B), 4 (C)"
    assert out[2] == "overlap: same DOI 10.1/x as line 5 (D), same first author and n 33/23 as lines 2 (A), 3 (B)"
    assert out[3] == "overlap: same DOI 10.1/x as line 4 (C), same first author and n 33/23 as lines 2 (A), 3 (B)"


def test_flags_column_in_effects_and_the_primary_fit_is_untouched():
    rows = sheet_from_columns(
        {
            "n_cases": [20, 21, 30], "mean_cases": [3.0, 5.0, 4.0], "sd_cases": [0.3, 2.0, 2.5],
            "n_controls": [20, 20, 30], "mean_controls": [1.9, 4.0, 3.5], "sd_controls": [0.2, 2.0, 2.5],
        }
    )  # fmt: skip
    effects = compute_effects(rows, Settings())
    flags = effects["flags"].tolist()
    # row 1: 0.3/3.0 = 0.10 and g = (1.1 / 0.2550) * c(38) = 4.31 * 0.980 = 4.23
    assert flags[0].startswith("low_dispersion: cases SD/mean 0.3/3 = 0.100")
    assert "extreme_effect: g = 4.23" in flags[0]
    assert flags[1:] == ["", ""]
    assert effects["included"].all()


def _write(tmp_path, rows):
    header = "study_id,study,year,marker,n_cases,mean_cases,sd_cases,n_controls,mean_controls,sd_controls"
    path = tmp_path / "sheet.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def test_without_flagged_refits_on_the_unflagged_rows(tmp_path):
    from metarepro import rma
    from metarepro.jobs import run_analysis

    rows = [
        "a,Ames 2001,2001,X,30,5.0,2.0,30,4.0,2.0",
        "b,Berg 2002,2002,X,40,5.5,2.5,40,4.5,2.5",
        "c,Cole 2003,2003,X,25,6.0,3.0,25,4.0,3.0",
        "d,Dunn 2004,2004,X,20,9.0,1.0,20,4.0,1.0",  # g = 5 * c(38) = 4.90: extreme_effect
    ]
    result = run_analysis(_write(tmp_path, rows), {"title": "t", "data": "x"})
    effects, sensitivity = result.effects, result.pooled["without_flagged"]
    assert result.pooled["k"] == 4 and sensitivity["k"] == 3
    assert sensitivity["excluded_lines"] == [5]
    expected = rma(effects["yi"][:3], effects["vi"][:3], "REML", "z")
    assert sensitivity["estimate"] == expected.estimate and sensitivity["tau2"] == expected.tau2
    assert {"ci_low", "ci_high", "pval", "i2", "pi_low", "pi_high", "measure"} <= set(sensitivity)

    result = run_analysis(_write(tmp_path, rows[:3]), {"title": "t", "data": "x"})
    assert "without_flagged" not in result.pooled


def test_the_three_audited_overlaps_are_one_sample_each():
    # issue 11: one paper entered twice (PMID 28558901), Yang 2005/2007 (same authors, n 33/23), Lishui 2020 / Cao 2021
    from conftest import REPO

    from metarepro.inputs.sheet import read_sheet

    sheet = read_sheet(REPO / "data/raw/cytokines_mdd.csv")
    # primary study_id: its own rows plus the linked ones (CRP + IL-6; CRP + IL-6 + TNF-a; CRP + IL-6)
    for primary, own, linked in (("UnknownAJP2017", 2, 2), ("YangK2005", 3, 2), ("CaoJ2021", 1, 2)):
        rows = sheet[sheet["study_id"] == primary]
        moved = rows["notes"].str.contains(f"study_id set to {primary}")
        assert (len(rows), int(moved.sum())) == (own + linked, linked)
        assert rows.loc[~moved, "notes"].str.contains("primary").all()
    effects = compute_effects(sheet[sheet["marker"] == "CRP"], Settings())
    assert not effects["flags"].str.contains("overlap: same PMID 28558901").any()


def test_build_sheet_writes_the_committed_sheet(tmp_path):
    import subprocess
    import sys

    from conftest import REPO

    out = tmp_path / "sheet.csv"
    subprocess.run([sys.executable, "data/raw/extraction/build_sheet.py", str(out)], cwd=REPO, check=True,
                   capture_output=True)  # fmt: skip
    assert out.read_bytes() == (REPO / "data/raw/cytokines_mdd.csv").read_bytes()


# --- dispersions proven to be SEMs by a printed test are converted (data/raw/README.md) ---------------------------
# n 25/25, 3.0 ± 1.5 vs 2.0 ± 1.5: as SDs t = 1 / (1.5·√(2/25)) = 2.357; as SEMs (SD = 1.5·√25 = 7.5) t = 0.4714.


def _sem_rows(t, pmid=None):
    rows = sheet_from_columns({"n_cases": [25] * len(t), "mean_cases": [3.0] * len(t), "sd_cases": [1.5] * len(t),
                               "n_controls": [25] * len(t), "mean_controls": [2.0] * len(t),
                               "sd_controls": [1.5] * len(t), "t": t})  # fmt: skip
    if pmid is not None:
        rows["pmid"] = pmid
    return rows


@pytest.mark.parametrize(
    ("t", "proven"),
    [
        (0.47, True),  # as SEMs 0.4714/0.47 = 1.003; as SDs 5.0 (beyond a factor 2)
        (0.38, True),  # 0.4714/0.38 = 1.241 (within [0.8, 1.25])
        (0.37, False),  # 1.274: beyond 1.25 — a suspicion (likely_sem flags it), not a proof
        (0.59, False),  # 0.4714/0.59 = 0.7990: just outside [0.8, 1.25]
        (2.36, False),  # the SD reading fits: they are SDs
        (np.nan, False),  # no test printed: nothing proven
    ],
)
def test_a_printed_test_proves_sems_within_20_percent(t, proven):
    proof = quality.sem_proof(_sem_rows([t]))
    assert (proof[0] != "") == proven, proof[0]
    if proven:
        assert proof[0] == f"line 2: the reported t gives t {t:.3g}; as SEMs 0.471, as SDs 2.36"


def test_a_proof_covers_the_rows_of_its_source_unless_the_source_proves_both():
    proof = quality.sem_proof(_sem_rows([0.47, np.nan, np.nan, np.nan], pmid=["1", "1", "2", ""]))
    assert proof[0] == proof[1] == "line 2: the reported t gives t 0.47; as SEMs 0.471, as SDs 2.36"
    assert proof[2] == "" and proof[3] == ""  # another source, and no source at all
    mixed = quality.sem_proof(_sem_rows([0.47, 2.36, np.nan], pmid=["1", "1", "1"]))
    assert list(mixed) == ["", "", ""]  # the source proves SEMs in one row and SDs in another: left to the flags


def test_a_proven_row_is_converted_and_no_longer_flagged():
    rows = _sem_rows([0.47, 2.36])
    effects = compute_effects(rows, Settings())
    assert effects["conversion"][0] == ("SD cells read as SEMs (proven by line 2: the reported t gives t 0.47; "
                                        "as SEMs 0.471, as SDs 2.36)")  # fmt: skip
    assert effects["conversion"][1] == "" and "sem" not in effects["flags"][0] and "low_dispersion" not in (
        effects["flags"][0])  # fmt: skip
    # the same row written with SD = 7.5: d = (3 - 2) / 7.5
    written = compute_effects(sheet_from_columns({"n_cases": [25], "mean_cases": [3.0], "sd_cases": [7.5],
                                                  "n_controls": [25], "mean_controls": [2.0], "sd_controls": [7.5]}),
                              Settings())  # fmt: skip
    assert effects["yi"][0] == pytest.approx(written["yi"][0], rel=1e-14)
    assert effects["yi"][0] == pytest.approx((1 / 7.5) * (1 - 3 / (4 * 48 - 1)), rel=1e-3)  # Hedges' approximate J
    assert not compute_effects(rows, Settings(exclude_converted=True))["included"][0]  # reported SDs only: out


def test_one_registry_names_every_row_rule_with_what_it_does():
    """Every rule once, with one of three actions; the flags (RULES) are the registry's, in flag_rows' order (the
    order of the issue-17 table in data/raw/README.md)."""
    names = [rule.name for rule in quality.REGISTRY]
    assert len(names) == len(set(names)) and {r.action for r in quality.REGISTRY} == {"exclude", "flag", "note"}
    assert quality.RULES == ("low_dispersion", "likely_sem", "inconsistent_test", "extreme_effect",
                             "implausible_value", "eligibility_unclear", "not_double_checked", "overlap")  # fmt: skip
    # a flag's text starts with its name, a note's or an exclusion's does not (they are read as sentences)
    assert quality.RULEBOOK["extreme_effect"].say(g=2.5) == "extreme_effect: g = 2.50 (|g| > 2)"
    assert quality.RULEBOOK["large_smd"].say() == "|SMD| > 3: check SD vs SEM and units"
    assert quality.RULEBOOK["contradictory_numbers"].say(numbers="yi 2.4 > ci_high 0.35") == (
        "contradictory numbers (yi 2.4 > ci_high 0.35): check the source and the cells")


def test_the_documented_thresholds_are_the_registry_s():
    """data/raw/README.md states each threshold in words before the rules ran; the registry holds the numbers the
    checks use: both must say the same."""
    from conftest import REPO

    readme = (REPO / "data/raw/README.md").read_text()
    table = {line.split("|")[1].strip(" `"): line for line in readme.splitlines() if line.startswith("| `")}
    documented = {"low_dispersion": "SD/mean ≤ 0.10", "likely_sem": "more than a factor 2",
                  "inconsistent_test": "more than a factor 2", "extreme_effect": "> 2 (Hedges' g",
                  "implausible_value": "more than 3.5 robust SDs"}  # fmt: skip
    for name, words in documented.items():
        assert words in table[name], name
        assert f"{quality.RULEBOOK[name].threshold:g}" in words.replace("0.10", "0.1"), name
    checks = readme.split("### Checks reported per row")[1].split("\n## ")[0]
    assert f"SD < {quality.RULEBOOK['sem_as_sd'].threshold:g} × mean" in checks
    assert f"|SMD| > {quality.RULEBOOK['large_smd'].threshold:g}" in checks


def test_the_checks_column_notes_and_exclusions_come_from_the_registry():
    # line 1: 3.0 ± 0.2 (SD/mean 0.067 < 0.1) twice, so both rows also repeat each other's numbers; line 3 a
    # reversed 95% CI of a precomputed yi (0.5 > 0.1)
    rows = sheet_from_columns({"n_cases": [20, 20, np.nan], "mean_cases": [3.0, 3.0, np.nan],
                               "sd_cases": [0.2, 0.2, np.nan], "n_controls": [20, 20, np.nan],
                               "mean_controls": [2.0, 2.0, np.nan], "sd_controls": [1.0, 1.0, np.nan],
                               "yi": [np.nan, np.nan, 0.3], "ci_low": [np.nan, np.nan, 0.5],
                               "ci_high": [np.nan, np.nan, 0.1]})  # fmt: skip
    effects = compute_effects(rows, Settings()).set_index("line")
    lines = list(effects.index)
    assert effects.loc[lines[0], "checks"] == (f"SD < 0.1×mean: an SEM reported as SD?; identical numbers in "
                                               f"line(s) {lines[1]}")  # fmt: skip
    assert effects.loc[lines[2], "reason"] == (
        "contradictory numbers (ci_low 0.5 > ci_high 0.1): check the source and the cells")


def _overlaps_by_definition(ids, study, pmid, doi, n1, n2, lines, shown):
    """The overlap rule as its docstring defines it, row by row (quadratic): for each key, the first ``shown``
    rows with the same key and another sample."""
    import re

    def author(label):
        m = re.search(r"([^\W\d_]+)", label.strip().lower())
        return m[1] if m else ""

    keys = [("PMID", [p.strip() for p in pmid]), ("DOI", [d.strip().lower() for d in doi]),
            ("author", [(author(s), a, b) if author(s) and np.isfinite(a) and np.isfinite(b) else ""
                        for s, a, b in zip(study, n1, n2, strict=True)])]  # fmt: skip
    out = []
    for i in range(len(ids)):
        parts = []
        for label, key in keys:
            if ids[i] is None:  # rows without a study_id take no part
                continue
            others = [j for j in range(len(ids)) if key[i] != "" and key[j] == key[i] and ids[j] is not None
                      and ids[j] != ids[i]][:shown]  # fmt: skip
            if others:
                shared = f"first author and n {n1[i]:.0f}/{n2[i]:.0f}" if label == "author" else f"{label} {key[i]}"
                listed = ", ".join(f"{lines[j]} ({ids[j]})" for j in others)
                parts.append(f"same {shared} as {'line' if len(others) == 1 else 'lines'} {listed}")
        out.append(f"overlap: {', '.join(parts)}" if parts else "")
    return out


def test_overlaps_agree_with_their_definition_on_random_sheets():
    """Grouped and vectorised (heads of groups, repeated samples in a group, several keys per row, rows without a
    study_id) as the row-by-row definition, on 400 random small sheets; a missing PMID cell (None, NaN, pd.NA) is no
    PMID, not a text two rows could share."""
    rng = np.random.default_rng(21)
    for _ in range(400):
        k = int(rng.integers(1, 30))
        ids = [None if rng.random() < 0.1 else i for i in rng.choice(list("ABCDEFG")[: rng.integers(1, 8)], k).tolist()]
        study = rng.choice(["Yang 2005", "yang 2007", "Ames", "", "12 x", "B b"], k).tolist()
        pmid, doi = rng.choice(["", "1", "2", " 2"], k).tolist(), rng.choice(["", "10.1/X", "10.1/x", "d"], k).tolist()
        n1, n2 = rng.choice([1.0, 2.0, np.nan], k), rng.choice([3.0, 4.0], k)
        lines, shown = list(range(2, k + 2)), int(rng.integers(1, 6))
        expected = _overlaps_by_definition(ids, study, pmid, doi, n1, n2, lines, shown)
        assert list(quality.overlaps(ids, study, pmid, doi, n1, n2, lines, shown)) == expected
    na = quality.overlaps(["A", "B", "C"], [""] * 3, [pd.NA, "1", "1"], [""] * 3, [1, 2, 3], [1, 2, 3], [2, 3, 4])
    assert list(na) == ["", "overlap: same PMID 1 as line 4 (C)", "overlap: same PMID 1 as line 3 (B)"]
    sizes = ([1, 2, 3], [1, 2, 3], [2, 3, 4])
    assert list(quality.overlaps(["A", "B", "C"], [""] * 3, [pd.NA, np.nan, None], [""] * 3, *sizes)) == ["", "", ""]


def test_identical_numbers_agree_with_their_definition_on_random_sheets():
    """Rows whose numbers (rounded to 12 decimals, at least two given, NaN equal to NaN, -0 equal to 0) repeat
    another row's name the first ``shown`` others of their group in sheet order, "and N more" after them; checked
    row by row against that definition on random sheets with many repeats."""
    rng = np.random.default_rng(8)
    columns = ("mean_cases", "sd_cases", "mean_controls", "sd_controls", "median_cases", "yi")
    for _ in range(100):
        k = int(rng.integers(1, 40))
        rows = pd.DataFrame({c: rng.choice([1.0, 2.0, np.nan, -0.0, 0.0, 1 + 1e-14], k) for c in columns})
        rows[LINE] = np.arange(2, k + 2)
        shown = int(rng.integers(1, 4))
        key = [tuple(np.nan_to_num(row.round(12) + 0.0, nan=np.inf)) for row in rows[list(columns)].to_numpy()]
        enough = np.isfinite(rows[list(columns)].to_numpy()).sum(axis=1) >= 2
        expected = []
        for i in range(k):
            group = [j for j in range(k) if enough[j] and key[j] == key[i]] if enough[i] else [i]
            others = [str(rows[LINE][j]) for j in group[: shown + 1] if j != i][:shown]
            more = f" and {len(group) - 1 - shown} more" if len(group) - 1 > shown else ""
            expected.append(f"{', '.join(others)}{more}" if len(group) > 1 else "")
        assert list(quality.identical_numbers(rows, shown)) == expected


def test_flags_join_the_rules_of_a_row_and_turn_their_semicolons_into_commas():
    """A row's flags are its rules' messages in rule order, joined with "; "; a message's own ";" (a comment) becomes
    ",", so that the join stays readable; rows no rule flags have no flags."""
    rows = sheet_from_columns(
        {
            "n_cases": [20, 21, 22], "mean_cases": [3.0, 3.0, 9.0], "sd_cases": [1.0, 1.0, 1.0],
            "n_controls": [20, 20, 20], "mean_controls": [2.0, 2.0, 2.0], "sd_controls": [1.0, 1.0, 1.0],
        }
    )  # fmt: skip
    rows["eligibility_second_pass"] = ["unclear", "", "unclear"]
    rows["eligibility_comment"] = ["medicated; partly", "", "inpatients"]
    flags = compute_effects(rows, Settings(measure="SMD"))["flags"].tolist()
    # row 3: g = 7/1 * (1 - 3/(4*40 - 1)) = 6.87 > 2: extreme_effect before eligibility_unclear (rule order); no two
    # rows share group sizes (no overlap flag)
    assert flags[0] == "eligibility_unclear: medicated, partly"
    assert flags[1] == ""
    assert flags[2].startswith("extreme_effect: g = 6.87") and flags[2].endswith("; eligibility_unclear: inpatients")


def test_a_sample_pooled_twice_is_excluded_after_its_first_row():
    """Rows of a study_id after its first usable row are excluded, naming that first row's line; an excluded first
    row (an SD of 0) does not count, so the next row of its sample is the one pooled."""
    rows = sheet_from_columns(
        {
            "n_cases": [20, 21, 22, 23, 24], "mean_cases": [3.0, 3.1, 3.2, 3.3, 3.4], "sd_cases": [0.0] + [1.0] * 4,
            "n_controls": [20, 21, 22, 23, 24], "mean_controls": [2.0] * 5, "sd_controls": [1.0] * 5,
        }
    )  # fmt: skip
    rows["study_id"] = ["a", "a", "b", "a", "b"]  # lines 2-6
    reasons = compute_effects(rows, Settings(measure="SMD"))["reason"].tolist()
    assert reasons[0].startswith("an SD is 0") and reasons[1] == reasons[2] == ""
    assert reasons[3].startswith("study_id a already contributes line 3; pool one row per independent sample")
    assert reasons[4].startswith("study_id b already contributes line 4;")
