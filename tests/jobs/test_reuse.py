"""An analysis of a rerun job whose inputs, settings, formats and code are unchanged gets its kept files back
(metarepro.jobs.reuse); any change computes it again.

"Computed again" is seen in what the job wrote, not only in what run_or_reuse returns: its log has no reuse line,
and a changed setting shows in pooled.json.
"""

import json
import shutil

import pytest
from conftest import REPO

from metarepro.jobs import reuse
from metarepro.jobs.outputs import analysis_files
from metarepro.jobs.reuse import run_or_reuse

ANALYSIS = {"title": "LOS", "data": "sheet.csv", "where": {"marker": "length_of_stay"}}
SETTINGS = {"name": "los", "defaults": {}, "analysis": ANALYSIS}
FILES = analysis_files(ANALYSIS, ("svg",))
EXTRA_ROW = "normand_10,Added,2001,length_of_stay,40,30,12,41,36,14,days,added,added\n"  # a valid row of the sheet
NOTE = "its files were copied from"


@pytest.fixture
def first_run(tmp_path, monkeypatch):
    """One analysis run and kept; then its files deleted, as Snakemake deletes a job's outputs before it runs."""
    monkeypatch.chdir(tmp_path)
    shutil.copy(REPO / "data/raw/normand1999_stroke_los.csv", tmp_path / "sheet.csv")
    assert run_or_reuse("sheet.csv", SETTINGS, "results/los", ("svg",), "los.log") is False
    made = {file: (tmp_path / "results/los" / file).read_bytes() for file in FILES}
    shutil.rmtree(tmp_path / "results/los")
    return tmp_path, made, (tmp_path / "los.log").read_text()


def test_an_unchanged_analysis_gets_its_files_back_byte_for_byte(first_run):
    path, made, log = first_run
    assert run_or_reuse("sheet.csv", SETTINGS, "results/los", ("svg",), "los.log") is True
    assert {file: (path / "results/los" / file).read_bytes() for file in FILES} == made
    text = (path / "los.log").read_text()
    assert text.startswith(log) and NOTE in text and "reuse_unchanged: false" in text
    assert (path / ".snakemake/metarepro-reuse/results/los/key.sha256").is_file()  # beside Snakemake's records
    assert sorted(p.name for p in (path / "results").iterdir()) == ["los"]  # nothing else in the results


def _edit_sheet(path):
    with (path / "sheet.csv").open("a") as handle:
        handle.write(EXTRA_ROW)


@pytest.mark.parametrize("change", ["sheet", "settings", "defaults", "formats", "code", "reuse off"])
def test_any_change_computes_the_analysis_again(first_run, monkeypatch, change):
    path, made, _ = first_run
    settings, formats, reuse_on = json.loads(json.dumps(SETTINGS)), ("svg",), True
    if change == "sheet":
        _edit_sheet(path)
    elif change == "settings":
        settings["analysis"]["method"] = "DL"
    elif change == "defaults":
        settings["defaults"]["test"] = "knha"
    elif change == "formats":
        formats = ("svg", "pdf")
    elif change == "code":  # another metarepro, or another numpy, pandas, ...
        monkeypatch.setattr(reuse, "code_fingerprint", lambda: "another version")
    else:
        reuse_on = False
    assert run_or_reuse("sheet.csv", settings, "results/los", formats, "los.log", reuse=reuse_on) is False
    assert NOTE not in (path / "los.log").read_text()
    pooled = json.loads((path / "results/los/pooled.json").read_text())
    # the sheet's LOS rows (dat.normand1999: 9 studies), and the added row
    assert pooled["k"] == (10 if change == "sheet" else 9)
    assert pooled["method"] == ("DL" if change == "settings" else "REML")
    assert pooled["test"] == ("knha" if change == "defaults" else "z")
    assert (path / "results/los/forest.pdf").exists() == (change == "formats")


def test_a_kept_copy_missing_a_file_is_not_used(first_run):
    path, _, _ = first_run
    (path / ".snakemake/metarepro-reuse/results/los/forest.svg").unlink()
    assert run_or_reuse("sheet.csv", SETTINGS, "results/los", ("svg",), "los.log") is False
    assert (path / ".snakemake/metarepro-reuse/results/los/forest.svg").is_file()  # kept again, whole


def test_files_above_the_size_limit_are_not_kept(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copy(REPO / "data/raw/normand1999_stroke_los.csv", tmp_path / "sheet.csv")
    monkeypatch.setattr(reuse, "REUSE_MAX_BYTES", 1000)
    for _ in range(2):
        assert run_or_reuse("sheet.csv", SETTINGS, "results/los", ("svg",), "los.log") is False
    assert not (tmp_path / ".snakemake/metarepro-reuse/results/los").exists()
