"""The reproduction table: published numbers are read as printed; differences only on a common scale."""

import math

import pytest
from conftest import REPO

from metarepro.reproduction import read_published, reproduction_table
from metarepro.sheet import SheetError

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
    # 0.406 rounds to 0.41, not 0.40: no longer reproduced, but the CIs overlap
    row = _verdicts({**mine, "estimate": 0.406}, ["haapakoski2015_tnf"]).loc["haapakoski2015_tnf"]
    assert row["verdict"] == "consistent"
    # the p-value is part of the published rounding: 0.0026 rounds to 0.003
    row = _verdicts({**mine, "pval": 0.0026}, ["haapakoski2015_tnf"]).loc["haapakoski2015_tnf"]
    assert row["verdict"] == "consistent"


def test_verdict_not_reproduced_and_without_a_published_ci():
    far = ours("SMD", 1.41, 1.0, 1.8)
    assert _verdicts(far, ["haapakoski2015_tnf"])["verdict"].iloc[0] == "not reproduced"
    # Haapakoski IL-6 prints 0.54 without a CI: our CI either contains it or not
    assert _verdicts(far, ["haapakoski2015_il6"])["verdict"].iloc[0] == "not reproduced"
    assert _verdicts(ours("SMD", 0.6, 0.3, 0.9), ["haapakoski2015_il6"])["verdict"].iloc[0] == "consistent"


def test_verdict_not_comparable_for_scale_or_population():
    assert _verdicts(ours("SMD", 0.5, 0.2, 0.8), ["dowlati2010_il6"])["verdict"].iloc[0] == "not comparable"
    # Howren 2009 pooled community and clinical samples: its row says so in population_differs
    row = _verdicts(ours("SMD", 0.25, 0.18, 0.31), ["howren2009_il6", "haapakoski2015_tnf"])
    assert row.loc["howren2009_il6", "verdict"] == "not comparable"
    assert row.loc["howren2009_il6", "verdict_reason"].startswith("other population: community and clinical")
    assert row.loc["haapakoski2015_tnf", "verdict"] == "consistent"  # 0.18-0.31 meets 0.15-0.65


def test_verdict_of_the_fit_without_flagged_rows():
    mine = {**ours("SMD", 1.41, 1.0, 1.8), "without_flagged": {**ours("SMD", 0.45, 0.2, 0.7), "k": 7}}
    row = _verdicts(mine, ["haapakoski2015_tnf"]).iloc[0]
    assert (row["verdict"], row["verdict_without_flagged"]) == ("not reproduced", "consistent")
    assert (row["k_without_flagged"], row["estimate_without_flagged"]) == (7, 0.45)
    assert _verdicts(ours("SMD", 0.5, 0.2, 0.8), ["haapakoski2015_tnf"])["verdict_without_flagged"].iloc[0] is None
