"""A sheet edited while its analysis runs, or before the report is written: each result records the sha256 of the
bytes its job read, and a job whose sheet no longer holds those bytes fails, naming the sheet and the analysis.

The expected digests are hashlib.sha256 of the bytes the test wrote (the definition of the recorded value).
"""

import hashlib
import json
import shutil

import pandas as pd
import pytest
from conftest import REPO

from metarepro.inputs.sheet import SheetError, read_sheet, read_table
from metarepro.jobs import overview, pool
from metarepro.jobs.files import analysis_sheet
from metarepro.jobs.run import analysis_job, overview_job

ANALYSIS = {"title": "LOS", "data": "sheet.csv", "where": {"marker": "length_of_stay"}}
SETTINGS = {"name": "los", "defaults": {}, "analysis": ANALYSIS}
EXTRA_ROW = "normand_10,Added,2001,length_of_stay,40,30,12,41,36,14,days,added,added\n"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def sheet(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copy(REPO / "data/raw/normand1999_stroke_los.csv", tmp_path / "sheet.csv")
    return tmp_path / "sheet.csv"


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16"])
def test_the_reader_records_the_sha256_of_the_bytes_it_read(tmp_path, encoding):
    path = tmp_path / "s.csv"
    path.write_bytes("study_id,study,yi,vi\ns1,Ä,0.1,0.01\n".encode(encoding))
    assert read_table(path)[3]["sha256"] == sha256(path.read_bytes())
    assert read_sheet(path).attrs["sha256"] == sha256(path.read_bytes())


def test_an_analysis_records_the_sheet_it_read(sheet, tmp_path):
    read = sha256(sheet.read_bytes())
    analysis_job(sheet, SETTINGS, tmp_path / "out", formats=("svg",))
    assert json.loads((tmp_path / "out/pooled.json").read_text())["sheet_sha256"] == read
    files = {"summary": tmp_path / "summary.csv", "reproduction": tmp_path / "r.csv", "report": tmp_path / "r.html"}
    overview_job(["los"], {"los": ANALYSIS}, [tmp_path / "out"], files, sheets=["sheet.csv"])
    assert "sheet_sha256" not in pd.read_csv(files["summary"]).columns  # provenance, not a result
    assert f"<code>{read}</code>" in files["report"].read_text()


def test_a_sheet_edited_while_its_analysis_runs_fails_the_job(sheet, tmp_path, monkeypatch):
    """The edit lands after the pooled fit was computed from the old bytes, before the figures are drawn."""
    read = sha256(sheet.read_bytes())
    fit = pool.run_analysis

    def fit_then_edit(*args, **kwargs):
        result = fit(*args, **kwargs)
        with sheet.open("a") as handle:
            handle.write(EXTRA_ROW)
        return result

    monkeypatch.setattr(pool, "run_analysis", fit_then_edit)
    with pytest.raises(SheetError) as raised:
        analysis_job(sheet, SETTINGS, tmp_path / "out", formats=("svg",))
    now = sha256(sheet.read_bytes())
    assert str(raised.value) == (f"{sheet} changed while analysis los ran (sha256 read {read[:12]}..., now "
                                 f"{now[:12]}...); its results describe the old sheet: run again")  # fmt: skip
    assert "\n" not in str(raised.value)
    # what the job wrote describes the bytes it read: k = 9 studies, not the 10 of the edited sheet
    pooled = json.loads((tmp_path / "out/pooled.json").read_text())
    assert pooled["sheet_sha256"] == read and pooled["k"] == 9


def test_a_sheet_removed_while_its_analysis_runs_fails_the_job(sheet, tmp_path, monkeypatch):
    """Removed during the job's last step (its section of the report), after every step has read it."""
    write = overview.write_section

    def write_then_remove(*args, **kwargs):
        write(*args, **kwargs)
        sheet.unlink()

    monkeypatch.setattr(overview, "write_section", write_then_remove)
    with pytest.raises(SheetError, match=r"sheet.csv changed while analysis los ran \(sha256 read \w{12}\.\.\., now "
                                         r"no such file\)"):  # fmt: skip
        analysis_job(sheet, SETTINGS, tmp_path / "out", formats=("svg",))


def test_a_sheet_edited_after_its_analysis_fails_the_report(sheet, tmp_path):
    read = sha256(sheet.read_bytes())
    analysis_job(sheet, SETTINGS, tmp_path / "out", formats=("svg",))
    with sheet.open("a") as handle:
        handle.write(EXTRA_ROW)
    files = {"summary": tmp_path / "summary.csv", "reproduction": tmp_path / "r.csv", "report": tmp_path / "r.html"}
    with pytest.raises(SheetError) as raised:
        overview_job(["los"], {"los": ANALYSIS}, [tmp_path / "out"], files, sheets=["sheet.csv"])
    assert str(raised.value).startswith(f"sheet.csv changed after analysis los read it (sha256 read {read[:12]}..., "
                                        f"now {sha256(sheet.read_bytes())[:12]}...)")  # fmt: skip
    assert not files["report"].exists()


def test_a_later_analysis_of_the_job_gets_the_parse_of_the_same_bytes_and_a_new_one_after_an_edit(sheet):
    """analysis_sheet keeps the last sheet parsed for the next analysis of a job: the same frame read_sheet gives
    for those bytes (a copy: changing it changes nothing later), and after an edit, the edited sheet."""
    first = analysis_sheet("sheet.csv", ANALYSIS)
    first.loc[0, "study"] = "changed by the first analysis"
    second = analysis_sheet("sheet.csv", ANALYSIS)
    pd.testing.assert_frame_equal(second, read_sheet("sheet.csv"))
    assert second.attrs == read_sheet("sheet.csv").attrs
    with open("sheet.csv", "a") as handle:
        handle.write(EXTRA_ROW)
    edited = analysis_sheet("sheet.csv", ANALYSIS)
    assert len(edited) == len(second) + 1 and edited.attrs["sha256"] == sha256(open("sheet.csv", "rb").read())
    mapped = analysis_sheet("sheet.csv", {**ANALYSIS, "columns": {"year": None}})  # another mapping: parsed again
    pd.testing.assert_frame_equal(mapped, read_sheet("sheet.csv", {"year": None}))
    assert "year_as_printed" in mapped.columns and "year_as_printed" not in edited.columns
