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
