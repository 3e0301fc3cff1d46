"""Study-level reproduction (issue 17, item 3): matching published studies to ours, the agreement thresholds, the
suggested error types (each on a constructed pair with the hand calculation in the test), the figure against its
table, and the pipeline writing study_level.csv."""

from __future__ import annotations

import math
import shutil

import numpy as np
import pandas as pd
import pytest
from conftest import REPO
from figure_readback import drawn_rows

from metarepro.inputs.published import read_study_values
from metarepro.inputs.sheet import SheetError
from metarepro.pipeline.study_level import (
    OTHER,
    SAMPLE_SIZE,
    SD_SE,
    SIGN,
    author_year,
    compare_studies,
    study_counts,
    summary_sentence,
)


def ours(*rows) -> pd.DataFrame:
    """An effects.csv-like table: (study_id, study, yi, n_cases, n_controls[, included, reason])."""
    records = []
    for line, row in enumerate(rows, start=2):
        sid, study, yi, n1, n2, *rest = row
        included = rest[0] if rest else True
        records.append({"line": line, "study_id": sid, "study": study, "n_cases": n1, "n_controls": n2,
                        "yi": yi, "ci_low": yi - 0.4, "ci_high": yi + 0.4, "included": included,
                        "reason": rest[1] if len(rest) > 1 else ""})  # fmt: skip
    return pd.DataFrame(records)


def published(tmp_path, text) -> pd.DataFrame:
    path = tmp_path / "published.csv"
    path.write_text(text)
    return read_study_values(path)


def one(pub_estimate, our_estimate, n_pub=("", ""), n_ours=(25, 25), measure="SMD", tmp_path=None) -> pd.Series:
    """The compared row of one constructed pair (matched by study_id)."""
    text = f"study_id,study,yi,n_cases,n_controls\na,A 2001,{pub_estimate},{n_pub[0]},{n_pub[1]}\n"
    table = compare_studies(ours(("a", "A 2001", our_estimate, *n_ours)), published(tmp_path, text), measure)
    assert len(table) == 1
    return table.iloc[0]


# ---------------------------------------------------------------------------------------------------------------
# matching


def test_explicit_study_id_matches_even_when_labels_differ(tmp_path):
    pub = published(tmp_path, "study_id,study,yi\nx1,Smith et al. 2010,0.3\n")
    table = compare_studies(ours(("x1", "Jones 1999", 0.3, 20, 20)), pub, "SMD")
    assert table["matched_by"].tolist() == ["study_id"] and table["status"].tolist() == ["agrees"]


def test_a_study_id_not_in_our_sheet_is_not_matched_by_its_label(tmp_path):
    """The published row names study_id 'x2'; our 'Smith 2010' has another id: no fallback to author + year."""
    pub = published(tmp_path, "study_id,study,yi\nx2,Smith 2010,0.3\n")
    table = compare_studies(ours(("x1", "Smith 2010", 0.3, 20, 20)), pub, "SMD")
    assert table["status"].tolist() == ["missing study", "added study"]
    assert "study_id 'x2' is not in our sheet" in table["note"][0]


def test_author_year_matching_and_unmatched_on_both_sides(tmp_path):
    pub = published(tmp_path, "study,year,yi\nStypuła et al.,1996,-0.15\nWilliams-Gray 2016,,0.17\nNobody 2000,,0.1\n")
    mine = ours(("s", "Stypula 1996", -0.15, 21, 21), ("w", "Williams-Gray (2016)", 0.2, 230, 93),
                ("z", "Zed 2020", 0.5, 10, 10))  # fmt: skip
    table = compare_studies(mine, pub, "SMD")
    assert table["study_id_ours"].tolist()[:2] == ["s", "w"]
    assert table["matched_by"].tolist() == ["author+year", "author+year", "", ""]
    assert table["status"].tolist() == ["agrees", "agrees", "missing study", "added study"]
    assert table["note"][2] == "no study of ours is nobody 2000"
    assert table["study"].tolist()[3] == "Zed 2020"


def test_two_of_our_studies_with_one_author_and_year_are_not_guessed(tmp_path):
    pub = published(tmp_path, "study,yi\nMaes 1995,0.5\n")
    table = compare_studies(ours(("m1", "Maes 1995", 0.5, 20, 20), ("m2", "Maes 1995", 0.9, 30, 30)), pub, "SMD")
    assert table["status"].tolist() == ["missing study", "added study", "added study"]
    assert "2 of our studies are maes 1995 (m1, m2): add study_id" in table["note"][0]


def test_author_year_key():
    assert author_year("Stypuła 1996") == ("stypula", "1996")
    assert author_year("Williams-Gray et al. 2016") == ("williamsgray", "2016")
    assert author_year("Maes", "1995a") == ("maes", "1995a")
    assert author_year("no year here") is None


def test_our_unusable_row_is_insufficient_information_with_its_reason(tmp_path):
    pub = published(tmp_path, "study_id,study,yi\na,A 2001,0.5\n")
    mine = ours(("a", "A 2001", np.nan, 20, 20, False, "incomplete: no means"))
    row = compare_studies(mine, pub, "SMD").iloc[0]
    assert row["status"] == "insufficient information" and row["note"] == "ours not usable: incomplete: no means"


# ---------------------------------------------------------------------------------------------------------------
# thresholds: |Δ| < 0.1 on SMD-type scales, |Δ| / |published| < 10% otherwise (strictly below, as the verdicts)


def test_smd_boundary(tmp_path):
    # 0.6 - 0.5 is 0.1 as printed numbers (0.09999999999999998 in binary): not below 0.1
    assert one(0.5, 0.6, tmp_path=tmp_path)["status"] == "differs"
    assert one(0.5, 0.599, tmp_path=tmp_path)["status"] == "agrees"  # |Δ| = 0.099
    assert one(0.5, 0.401, tmp_path=tmp_path)["status"] == "agrees"


def test_relative_boundary_on_other_scales(tmp_path):
    # MD 10 vs 11: relative difference 1/10 = 10%, not below; 10.99: 9.9%
    assert one(10, 11, measure="MD", tmp_path=tmp_path)["status"] == "differs"
    row = one(10, 10.99, measure="MD", tmp_path=tmp_path)
    assert row["status"] == "agrees" and row["difference_relative"] == pytest.approx(0.099)


# ---------------------------------------------------------------------------------------------------------------
# suggested error types, each on a pair whose numbers show it


def test_sd_se_confusion(tmp_path):
    """Published g = 0.5 with n = 25/25; ours 2.5 = 0.5·√25: an SMD computed with SEMs (SD/√25) as SDs is √25 = 5
    times the right one."""
    row = one(0.5, 2.5, n_pub=(25, 25), n_ours=(25, 25), tmp_path=tmp_path)
    assert row["ratio"] == pytest.approx(5.0) == pytest.approx(math.sqrt(25))
    assert row["status"] == "differs" and row["suggested_error"] == SD_SE


def test_sd_se_confusion_band_is_sqrt_n_of_the_two_groups(tmp_path):
    """n = 16/36: the ratio lies between √16 = 4 and √36 = 6 (widened by 10%: 3.6 to 6.6). 0.5 → 2.5 (ratio 5) is
    inside; 0.5 → 1.5 (ratio 3) is not and is 'calculation or other'."""
    assert one(0.5, 2.5, n_ours=(16, 36), tmp_path=tmp_path)["suggested_error"] == SD_SE
    assert one(0.5, 1.5, n_ours=(16, 36), tmp_path=tmp_path)["suggested_error"] == OTHER


def test_sign_error(tmp_path):
    """0.4 vs -0.4 (same n): opposite signs; the ratio 1 is no sign of SD/SE confusion."""
    row = one(0.4, -0.4, n_pub=(25, 25), n_ours=(25, 25), tmp_path=tmp_path)
    assert row["difference"] == pytest.approx(-0.8) and row["suggested_error"] == SIGN


def test_sample_size(tmp_path):
    """Published n 30/30, ours 20/30; 0.5 vs 0.7: Δ 0.2, ratio 1.4 (< 2)."""
    row = one(0.5, 0.7, n_pub=(30, 30), n_ours=(20, 30), tmp_path=tmp_path)
    assert row["suggested_error"] == SAMPLE_SIZE


def test_calculation_or_other(tmp_path):
    """0.5 vs 0.8, n 30/30 on both sides: Δ 0.3, same sign, ratio 1.6, same n."""
    assert one(0.5, 0.8, n_pub=(30, 30), n_ours=(30, 30), tmp_path=tmp_path)["suggested_error"] == OTHER


def test_counts_and_sentence(tmp_path):
    pub = published(tmp_path, "study_id,study,yi\na,A 2001,0.5\nb,B 2002,0.4\nc,C 2003,0.2\nd,D 2004,0.3\n")
    mine = ours(("a", "A 2001", 0.55, 25, 25), ("b", "B 2002", -0.4, 25, 25),
                ("c", "C 2003", np.nan, 9, 9, False, "incomplete"), ("e", "E 2005", 0.1, 9, 9))  # fmt: skip
    table = compare_studies(mine, pub, "SMD")
    counts = study_counts(table)
    assert {k: counts[k] for k in ("published", "compared", "agrees", "differs", "insufficient information",
                                   "missing study", "added study")} == {
        "published": 4, "compared": 2, "agrees": 1, "differs": 1, "insufficient information": 1,
        "missing study": 1, "added study": 1}  # fmt: skip
    assert counts["suggestions"] == {SIGN: 1}
    assert summary_sentence(counts, "SMD", "X 2020") == (
        "1 of 4 studies of X 2020 agree with ours within 0.1 (SMD units); 1 differ (suggested from the numbers: "
        "sign error or arms swapped 1); 1 could not be compared (no usable numbers on one side); 1 are not in our "
        "sheet; 1 of ours are not in the published analysis.")


def test_bad_published_sheet_names_line_and_column(tmp_path):
    path = tmp_path / "published.csv"
    path.write_text("study_id,study,yi\na,A 2001,0.5\nb,B 2002,0.4x\n")
    with pytest.raises(SheetError, match=r"line 3, column 'yi' \(estimate\): '0.4x' is not a number"):
        read_study_values(path)
    path.write_text("study_id,study,effect\na,A 2001,0.5\n")
    with pytest.raises(SheetError, match=r"line 1 \(header\): no column 'yi' \(estimate\)"):
        read_study_values(path)
    path.write_text("study_id,study,yi\na,A 2001,0.5\na,A 2001b,0.6\n")
    with pytest.raises(SheetError, match=r"lines 2, 3, column 'study_id': study_id 'a' appears more than once"):
        read_study_values(path)


# ---------------------------------------------------------------------------------------------------------------
# the figure shows its table; the pipeline writes both


def test_figure_matches_its_table(tmp_path):
    from metarepro.present.plots.study_level import agreement_band, row_text, study_level_plot

    pub = published(tmp_path, "study_id,study,yi,ci_low,ci_high\na,A 2001,0.5,0.1,0.9\nb,B 2002,0.4,0,0.8\n")
    table = compare_studies(ours(("a", "A 2001", 2.5, 25, 25), ("z", "Z 2009", 0.2, 9, 9)), pub, "SMD")
    drawn = drawn_rows(study_level_plot(table, "SMD"))
    assert len(drawn) == len(table) == 3
    for i, row in enumerate(table.itertuples(index=False)):
        got = drawn[i]
        assert got["label"] == row.study and got["text"] == row_text(row)
        for side in ("published", "ours"):
            estimate = getattr(row, f"estimate_{side}")
            assert (side in got) == bool(np.isfinite(estimate)), (i, side)
            if side in got:
                assert got[side] == pytest.approx(estimate, rel=1e-12)
                x0, x1, _ = got[f"{side}-ci"]
                assert (x0, x1) == pytest.approx((getattr(row, f"ci_low_{side}"), getattr(row, f"ci_high_{side}")))
    assert drawn[0]["text"] == "Δ 2.00 differs (SD/SE confusion)"  # 2.5 − 0.5, ratio 5 = √25
    assert agreement_band(0.5, "SMD") == pytest.approx((0.4, 0.6))


@pytest.mark.workflow
def test_pipeline_writes_study_level_table_figure_and_report(tmp_path, monkeypatch):
    """The Qin 2016 example's analysis with compare_studies, run by run_config: the files analysis_files lists,
    study_level.csv with one row per published study (Qin's forest plot has 13), the figure, the sentence."""
    from metarepro.jobs.run import analysis_files, run_config

    shutil.copytree(REPO / "data", tmp_path / "data")
    config = (REPO / "config/examples/qin2016_pd_il6.yaml").read_text()
    (tmp_path / "config.yaml").write_text(config + "figure_formats: [svg]\n")
    monkeypatch.chdir(tmp_path)
    run_config("config.yaml")
    out = tmp_path / "results/qin2016_pd_il6/qin2016_primary"
    from metarepro.inputs.config import load_config

    entry = load_config([tmp_path / "config.yaml"])[0]["analyses"]["qin2016_primary"]
    assert {"study_level.csv", "study_level.svg"} <= set(analysis_files(entry, ("svg",)))
    assert {p.name for p in out.iterdir()} == set(analysis_files(entry, ("svg",)))
    table = pd.read_csv(out / "study_level.csv")
    assert len(table) == 13 and table["matched_by"].eq("study_id").all()
    # Scalzo 2010: p = 0.015, n 44/22, cases higher -> t = qt(1 - 0.015/2, 64) = 2.4998, d = t·sqrt(1/44 + 1/22)
    # = 0.6527, g = d·(1 − 3/(4·64 − 1)) = 0.6451 (hand calculation, Hedges' approximate J; metafor's exact J
    # differs by 5e-6); Qin printed 0.582: Δ = 0.063 < 0.1
    scalzo = table.set_index("study_id_ours").loc["scalzo_2010"]
    assert scalzo["estimate_ours"] == pytest.approx(0.6451, abs=5e-4) and scalzo["status"] == "agrees"
    assert table["status"].value_counts().to_dict() == {"insufficient information": 11, "agrees": 2}
    page = (tmp_path / "results/qin2016_pd_il6/report.html").read_text()
    assert "2 of 13 studies of Qin 2016 forest plot agree with ours within 0.1 (SMD units)" in page
    # the config without the key writes no study-level files
    assert not (tmp_path / "results/qin2016_pd_il6/qin2016_il6/study_level.csv").exists()
