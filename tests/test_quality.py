"""The pre-specified quality rules (data/raw/README.md): each on a constructed row that trips it and one that
does not. Expected numbers are hand calculations written out in each test."""

import numpy as np
import pytest
from conftest import sheet_from_columns

from metarepro import quality
from metarepro.analysis import Settings, compute_effects


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
    # 40 pg/mL: 1.2526 > log10(10) = 1 and z = 5.61 > 3.5 -> flagged; 1 pg/mL: .3495 < 1 -> not.
    out = quality.implausible_value([1, 1.5, 2, 2.5, 3, 0.04], ["pg/mL"] * 5 + ["ng/mL"])
    assert out[5].startswith("implausible_value: control mean 0.04 ng/mL is 17.9× the median of 6 control means")
    assert "robust z 5.6" in out[5]
    assert list(out[:5]) == [""] * 5
    # fewer than 5 control means: no flag at all
    assert list(quality.implausible_value([1, 2, 40, 3], ["pg/mL"] * 4)) == [""] * 4


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
    from metarepro.steps import run_analysis

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

    from metarepro.sheet import read_sheet

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
