"""The reproduction table: published numbers are read as printed; differences only on a common scale."""

import math

import pytest
from conftest import REPO

from metarepro.inputs.published import read_published
from metarepro.inputs.sheet import SheetError
from metarepro.pipeline.reproduction import reproduction_table

PUBLISHED = REPO / "data/raw/published_meta_analyses.csv"


def ours(measure, estimate, low, high, unit=None):
    return {"measure": measure, "estimate": estimate, "ci_low": low, "ci_high": high, "unit": unit, "k": 5,
            "n_cases": 100, "n_controls": 90, "method": "REML", "test": "knha", "preset": "metafor"}  # fmt: skip


def test_published_sheet_holds_the_seen_dowlati_numbers():
    # Dowlati 2010 abstract: IL-6 WMD 1.78 pg/mL (1.23 to 2.33), 16 studies, 492 depressed / 400 controls
    published = read_published(PUBLISHED)
    il6 = published.loc["dowlati2010_il6"]
    assert (il6["estimate"], il6["ci_low"], il6["ci_high"], il6["k"]) == (1.78, 1.23, 2.33, 16)
    assert (il6["n_cases"], il6["n_controls"], il6["unit"]) == (492, 400, "pg/mL")


def test_difference_and_overlap_on_the_same_scale():
    published = read_published(PUBLISHED)
    table = reproduction_table(
        {"il6_md": ours("MD", 1.50, 0.9, 2.1, unit="pg/mL"), "il6_smd": ours("SMD", 0.30, 0.05, 0.55)},
        published,
        {"il6_md": ["dowlati2010_il6"], "il6_smd": ["haapakoski2015_tnf", "dowlati2010_il6"]},
    ).set_index(["analysis", "published_id"])
    md = table.loc[("il6_md", "dowlati2010_il6")]
    assert md["difference"] == pytest.approx(1.50 - 1.78) and md["ci_overlap"]  # 0.9-2.1 meets 1.23-2.33
    smd = table.loc[("il6_smd", "haapakoski2015_tnf")]
    assert smd["difference"] == pytest.approx(0.30 - 0.40) and smd["ci_overlap"]
    mixed = table.loc[("il6_smd", "dowlati2010_il6")]  # an SMD beside a raw difference: no difference
    assert not mixed["same_scale"] and math.isnan(mixed["difference"]) and mixed["ci_overlap"] is None


def test_md_in_another_unit_is_not_compared():
    table = reproduction_table(
        {"a": ours("MD", 1.5, 0.9, 2.1, unit="ng/mL")}, read_published(PUBLISHED), {"a": ["dowlati2010_il6"]}
    )
    assert not table["same_scale"][0]


def test_unknown_id_and_bad_numbers_are_reported(tmp_path):
    with pytest.raises(SheetError, match="lacks"):
        reproduction_table({"a": ours("SMD", 0, -1, 1)}, read_published(PUBLISHED), {"a": ["nobody2020"]})
    bad = tmp_path / "published.csv"
    bad.write_text(PUBLISHED.read_text().replace(",1.78,", ",1.78 pg/mL,", 1))
    with pytest.raises(SheetError, match=r"line 3 \(id dowlati2010_il6\), column 'estimate'"):
        read_published(bad)


def _verdicts(mine, ids, published=None):
    table = reproduction_table({"a": mine}, published if published is not None else read_published(PUBLISHED),
                               {"a": ids})  # fmt: skip
    return table.set_index("published_id")


def test_verdict_reproduced_at_the_published_rounding():
    # Haapakoski 2015 TNF: 0.4 (0.15 to 0.65), printed to 2 decimals by its CI; p 0.002.
    mine = {**ours("SMD", 0.404, 0.148, 0.652), "pval": 0.0024}
    row = _verdicts(mine, ["haapakoski2015_tnf"]).loc["haapakoski2015_tnf"]
    assert row["verdict"] == "reproduced" and "at 2 decimals" in row["verdict_reason"]
    # 0.406 rounds to 0.41, not 0.40: no longer reproduced, but within 0.1 of every printed number
    row = _verdicts({**mine, "estimate": 0.406}, ["haapakoski2015_tnf"]).loc["haapakoski2015_tnf"]
    assert row["verdict"] == "reproduced, approximately"
    # the p-value is part of the published rounding: 0.0026 rounds to 0.003
    row = _verdicts({**mine, "pval": 0.0026}, ["haapakoski2015_tnf"]).loc["haapakoski2015_tnf"]
    assert row["verdict"] == "reproduced, approximately"


# One published result per scale, written here so that every boundary is exact: an SMD 0.40 (0.15 to 0.65) with
# p 0.002, a raw mean difference 1.78 (1.23 to 2.33) pg/mL (width 1.10), an SMD printed without CI or p, one with
# only p = 0.86, one at 99%, and one without an estimate.
SCALE_SHEET = (
    "id,source,doi,marker,measure,unit,estimate,ci_low,ci_high,ci_level,pval,k,n_cases,n_controls,i2,model,software,"
    "note\n"
    "smd,S,,IL-6,d,,0.40,0.15,0.65,95,0.002,10,,,,,,\n"
    "md,M,,IL-6,WMD,pg/mL,1.78,1.23,2.33,95,,10,,,,,,\n"
    "bare,B,,IL-6,d,,0.54,,,,,,,,,,,\n"
    "ponly,P,,IL-6,d,,-0.05,,,,0.86,,,,,,,\n"
    "wide,W,,IL-6,d,,0.46,0.34,0.58,99,,,,,,,,\n"
    "none,N,,IL-6,d,,,,,,,,,,,,,\n"
)


@pytest.fixture
def scales(tmp_path):
    path = tmp_path / "published.csv"
    path.write_text(SCALE_SHEET)
    return read_published(path)


def _one(scales, pid, measure, estimate, low, high, **extra):
    mine = {**ours(measure, estimate, low, high, unit="pg/mL" if measure == "MD" else None), "test": "z", **extra}
    return _verdicts(mine, [pid], scales).loc[pid]


@pytest.mark.parametrize(
    ("estimate", "low", "high", "verdict"),
    [
        # largest difference 0.0999 (< 0.1 on the SMD scale): approximately
        (0.4999, 0.2499, 0.7499, "reproduced, approximately"),
        # exactly 0.1 is not below 0.1 (0.5 - 0.4 is 0.09999999999999998 in binary: compared as printed)
        (0.50, 0.25, 0.75, "discrepant, same conclusion"),
        (0.40, 0.15, 0.7501, "discrepant, same conclusion"),  # one CI bound 0.1001 away is enough
        (0.60, -0.05, 1.25, "meaningfully different"),  # our CI includes 0, the published does not
        (-0.20, -0.50, -0.01, "meaningfully different"),  # the other direction
    ],
)
def test_standardized_verdicts_at_the_0_1_boundary(scales, estimate, low, high, verdict):
    row = _one(scales, "smd", "SMD", estimate, low, high)
    assert row["verdict"] == verdict, row["verdict_reason"]


def test_meaningful_difference_says_which_way(scales):
    assert _one(scales, "smd", "SMD", 0.60, -0.05, 1.25)["verdict_reason"].startswith(
        "significance differs: the published excludes the null, ours does not")
    assert _one(scales, "smd", "SMD", -0.20, -0.50, -0.01)["verdict_reason"].startswith("the direction differs")


@pytest.mark.parametrize(
    ("estimate", "low", "high", "verdict"),
    [
        (1.95, 1.40, 2.50, "reproduced, approximately"),  # 0.17/1.78 = 9.55%, width 1.10 as published
        (1.958, 1.408, 2.508, "discrepant, same conclusion"),  # 0.178/1.78 = 10% exactly: not below 10%
        (1.78, 1.175, 2.385, "discrepant, same conclusion"),  # width 1.21 = 110% of 1.10: not below 10%
        (1.78, 1.18, 2.38, "reproduced, approximately"),  # width 1.20: 9.1%
        (1.20, -0.10, 2.50, "meaningfully different"),  # 32.6% off and the CI includes 0
    ],
)
def test_relative_verdicts_at_the_10_percent_boundary(scales, estimate, low, high, verdict):
    row = _one(scales, "md", "MD", estimate, low, high)
    assert row["verdict"] == verdict, row["verdict_reason"]


def test_differences_and_the_5_percent_flag(scales):
    row = _one(scales, "md", "MD", 1.869, 1.319, 2.419)  # 0.089/1.78 = 5% exactly, same width
    assert row["difference"] == pytest.approx(0.089) and row["difference_relative"] == pytest.approx(0.05)
    assert row["ci_width_relative"] == pytest.approx(0.0, abs=1e-12) and row["flag_5pct"]
    row = _one(scales, "md", "MD", 1.8672, 1.3172, 2.4172)  # 4.9%
    assert not row["flag_5pct"]
    row = _one(scales, "md", "MD", 1.78, 1.2025, 2.3575)  # width 1.155: +5%
    assert row["ci_width_relative"] == pytest.approx(0.05) and row["flag_5pct"]


def test_altman_bland_test_of_the_difference_from_the_two_cis(scales):
    """Altman & Bland 2003 (BMJ 326:219), by hand: SE of the published estimate = (0.65 - 0.15) / (2 * 1.959964)
    = 0.127551; ours se 0.1; z = (0.6 - 0.4) / sqrt(0.1^2 + 0.127551^2) = 1.233960; p = erfc(z / sqrt(2))."""
    row = _one(scales, "smd", "SMD", 0.6, 0.404, 0.796, se=0.1)
    se_published = 0.5 / (2 * 1.959963984540054)
    z = 0.2 / math.sqrt(0.1**2 + se_published**2)
    assert row["difference_z"] == pytest.approx(z, rel=1e-12) and z == pytest.approx(1.233960, abs=1e-6)
    assert row["difference_p"] == pytest.approx(math.erfc(z / math.sqrt(2)), rel=1e-10)


def test_a_published_99_percent_ci_is_met_by_ours_at_99_percent(scales):
    # z test: 0.46 ± 2.575829 × 0.0466 = 0.3400 to 0.5800 at 99% (our 95% CI, 0.3687 to 0.5513, is not compared)
    row = _one(scales, "wide", "SMD", 0.46, 0.3687, 0.5513, se=0.0466)
    assert row["verdict"] == "reproduced" and "at 99%" in row["verdict_reason"]
    # Knapp-Hartung: t quantile on k - 1 = 4 df, t(0.995, 4) = 4.604095: 0.46 ± 0.2302 = 0.2298 to 0.6902
    row = _one(scales, "wide", "SMD", 0.46, 0.30, 0.62, se=0.05, test="knha")
    assert row["verdict"] == "discrepant, same conclusion"
    assert "0.23 to 0.69) at 99%" in row["verdict_reason"]


def test_verdicts_without_a_published_ci(scales):
    # an estimate alone: reproduced approximately within 0.1; else only a change of direction can be told
    assert _one(scales, "bare", "SMD", 0.60, 0.3, 0.9)["verdict"] == "reproduced, approximately"
    row = _one(scales, "bare", "SMD", 1.41, 1.0, 1.8)
    assert row["verdict"] == "insufficient information" and "no CI or p" in row["verdict_reason"]
    assert _one(scales, "bare", "SMD", -0.30, -0.6, 0.1)["verdict"] == "meaningfully different"
    # p = 0.86 alone: ours, -0.3 (-0.6 to 0.05), is 0.25 off but includes 0 as the published p says
    assert _one(scales, "ponly", "SMD", -0.30, -0.60, 0.05)["verdict"] == "discrepant, same conclusion"
    row = _one(scales, "ponly", "SMD", 0.498, 0.08, 0.91)
    assert row["verdict"] == "meaningfully different" and "the direction differs" in row["verdict_reason"]
    assert _one(scales, "none", "SMD", 0.5, 0.2, 0.8)["verdict"] == "insufficient information"
    assert _one(scales, "smd", "SMD", math.nan, math.nan, math.nan)["verdict"] == "insufficient information"


def test_verdict_not_comparable_for_scale_or_population():
    assert _verdicts(ours("SMD", 0.5, 0.2, 0.8), ["dowlati2010_il6"])["verdict"].iloc[0] == "not comparable"
    # Howren 2009 pooled community and clinical samples: its row says so in population_differs
    row = _verdicts(ours("SMD", 0.25, 0.18, 0.31), ["howren2009_il6", "haapakoski2015_tnf"])
    assert row.loc["howren2009_il6", "verdict"] == "not comparable"
    assert row.loc["howren2009_il6", "verdict_reason"].startswith("other population: community and clinical")
    assert row.loc["haapakoski2015_tnf", "verdict"] == "discrepant, same conclusion"  # 0.25 (0.18-0.31): 0.34 off


def test_verdict_of_the_fit_without_flagged_rows():
    mine = {**ours("SMD", 1.41, 1.0, 1.8), "without_flagged": {**ours("SMD", 0.45, 0.2, 0.7), "k": 7}}
    row = _verdicts(mine, ["haapakoski2015_tnf"]).iloc[0]
    assert (row["verdict"], row["verdict_without_flagged"]) == ("discrepant, same conclusion",
                                                                "reproduced, approximately")  # fmt: skip
    assert (row["k_without_flagged"], row["estimate_without_flagged"]) == (7, 0.45)
    assert _verdicts(ours("SMD", 0.5, 0.2, 0.8), ["haapakoski2015_tnf"])["verdict_without_flagged"].iloc[0] is None


@pytest.mark.parametrize(
    ("search_end", "years", "expected"),
    [
        # Dowlati 2010 searched to August 2009: a 2010 study cannot be in it, a 2009 one may not be
        ("2009-08", [2002, 2009, 2010, 2024], (2, 1, 0, "update")),
        ("2009-08", [2002, 2005, 2009], (0, 1, 0, "reproduction")),
        ("2009", [2002, None], (0, 0, 1, None)),  # a study without a year might postdate the search
        ("2009-08-31", [2011, None], (1, 0, 1, "update")),
        ("", [2011], (None, None, None, None)),  # no search end published: not known
        ("in press", [2011], (None, None, None, None)),
    ],
)
def test_study_set_against_the_published_search_end(search_end, years, expected):
    from metarepro.pipeline.reproduction import study_set

    found = study_set({"study_years": years}, {"search_end": search_end})
    assert (found["k_after_search"], found["k_search_year"], found["k_year_unknown"], found["comparison_type"]) == (
        expected
    )


def test_an_update_says_so_in_the_reason(scales):
    mine = {**ours("SMD", 0.404, 0.148, 0.652), "test": "z", "study_years": [2001, 2015, 2016, None]}
    published = scales.assign(search_end="2014-05")
    row = reproduction_table({"a": mine}, published, {"a": ["smd"]}).iloc[0]
    assert row["comparison_type"] == "update" and row["k_after_search"] == 2
    assert row["verdict_reason"].endswith("an update, not a reproduction: 2 of our 4 pooled studies appeared after "
                                          "the published search ended (2014-05)")


def test_pooled_records_carry_the_years_of_the_pooled_studies(tmp_path):
    from metarepro.jobs.pool import run_analysis

    sheet = tmp_path / "s.csv"
    sheet.write_text("study_id,year,yi,vi\na,2003,0.1,0.01\nb,2001a,0.2,0.02\nc,,0.3,0.03\nd,1999,,\n")
    pooled = run_analysis(sheet, {"measure": "GEN"}).pooled  # d has no effect size: not pooled, not counted
    assert pooled["k"] == 3 and pooled["study_years"] == [2001, 2003, None]


def test_the_fit_without_flagged_rows_gets_the_same_columns(scales):
    """reproduction.csv carries the verdict and its numbers for both fits (issue 17)."""
    from metarepro.pipeline.reproduction import COMPARISON_NUMBERS

    mine = {**ours("SMD", 1.41, 1.0, 1.8), "test": "z", "se": 0.2,
            "without_flagged": {**ours("SMD", 0.45, 0.2, 0.7), "test": "z", "se": 0.1, "k": 3}}  # fmt: skip
    row = reproduction_table({"a": mine}, scales, {"a": ["smd"]}).iloc[0]
    for name in COMPARISON_NUMBERS:
        assert f"{name}_without_flagged" in row.index
    assert row["difference_without_flagged"] == pytest.approx(0.45 - 0.40)
    assert row["difference"] == pytest.approx(1.41 - 0.40)
    assert row["flag_5pct_without_flagged"] and row["verdict_without_flagged"] == "reproduced, approximately"


def test_large_records_count_years_instead_of_listing_them(tmp_path, monkeypatch, scales):
    """Above RECORD_LIST_MAX_K pooled studies (set to 2 here; 10,000 in use) pooled.json holds [year, count] pairs
    (``study_year_counts``) and the flagged lines' count (``k_flagged``), not one value per study; the study set and
    the reason read the counts as they read the list. Expected by hand: years 2001, 2003, 2003, 2010, none."""
    from metarepro.jobs import pool
    from metarepro.jobs.pool import run_analysis
    from metarepro.pipeline.reproduction import study_set

    sheet = tmp_path / "s.csv"
    sheet.write_text("study_id,year,yi,vi\na,2003,0.1,0.01\nb,2001a,0.2,0.02\nc,,0.3,0.03\nd,2010,0.25,0.02\n"
                     "e,2003,0.15,0.04\n")  # fmt: skip
    listed = run_analysis(sheet, {"measure": "GEN"}).pooled
    assert listed["study_years"] == [2001, 2003, 2003, 2010, None] and "study_year_counts" not in listed
    monkeypatch.setattr(pool, "RECORD_LIST_MAX_K", 2)
    counted = run_analysis(sheet, {"measure": "GEN"}).pooled
    assert "study_years" not in counted
    assert counted["study_year_counts"] == [[2001, 1], [2003, 2], [2010, 1], [None, 1]]
    for search_end, expected in (("2005", (1, 0, 1, "update")), ("2003-06", (1, 2, 1, "update")),
                                 ("2012", (0, 0, 1, None))):  # fmt: skip
        for record in (listed, counted):
            found = study_set(record, {"search_end": search_end})
            assert (found["k_after_search"], found["k_search_year"], found["k_year_unknown"],
                    found["comparison_type"]) == expected  # fmt: skip
    mine = {**ours("SMD", 0.404, 0.148, 0.652), "test": "z", "study_year_counts": counted["study_year_counts"]}
    row = reproduction_table({"a": mine}, scales.assign(search_end="2005"), {"a": ["smd"]}).iloc[0]
    assert "an update, not a reproduction: 1 of our 5 pooled studies appeared after" in row["verdict_reason"]


def test_large_records_count_the_flagged_lines(monkeypatch):
    """Above RECORD_LIST_MAX_K flagged rows, without_flagged holds their count (k_flagged), not their lines."""
    import pandas as pd

    from metarepro.jobs import pool

    effects = pd.DataFrame({"line": [2, 3, 4, 5], "yi": [0.1, 0.3, 0.2, 0.5], "vi": [0.01, 0.02, 0.02, 0.03],
                            "included": True, "flags": ["", "overlap", "", "overlap"]})  # fmt: skip
    settings = pool.Settings.from_config({"measure": "GEN"})
    listed = pool.without_flagged(effects, settings)
    monkeypatch.setattr(pool, "RECORD_LIST_MAX_K", 1)
    counted = pool.without_flagged(effects, settings)
    assert listed["excluded_lines"] == [3, 5] and "k_flagged" not in listed
    assert counted["k_flagged"] == 2 and "excluded_lines" not in counted
    assert {k: v for k, v in counted.items() if k != "k_flagged"} == {
        k: v for k, v in listed.items() if k != "excluded_lines"}
