"""Inputs as researchers have them (issue 9): sheets written by R and Excel, configs with mistakes.

Each test trips one case with a sheet or config under tests/data/inputs/ (or a few lines written
here) and checks for the right result or a one-line message naming file, line, column and the fix.
"""

import time
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_close, load_reference, sheet_from_columns
from tolerances import ITERATIVE

from metarepro.analysis import Settings, compute_effects
from metarepro.pipeline import run_analysis
from metarepro.sheet import LINE, SheetError, numeric_columns, read_sheet, select_rows

DATA = Path(__file__).parent / "data" / "inputs"
REFERENCE = load_reference("inputs_reference.json")  # tests/reference/generate_inputs_reference.R


def test_duplicate_check_is_linear_in_the_number_of_rows():
    """200,000 rows, every tenth repeating another's numbers: the quadratic check took > 600 s."""
    k = 200_000
    base = np.arange(k) % (k // 10)  # each set of numbers appears ten times
    sheet = sheet_from_columns(
        {"n_cases": np.full(k, 20), "mean_cases": 1 + base / k, "sd_cases": np.full(k, 1.0),
         "n_controls": np.full(k, 20), "mean_controls": np.full(k, 1.0), "sd_controls": np.full(k, 1.0)}
    )  # fmt: skip
    start = time.perf_counter()
    effects = compute_effects(sheet, Settings(method="DL"))
    assert time.perf_counter() - start < 60
    # line 2 (row 0) has the same numbers as rows 20000, 40000, ... (lines 20002, 40002, ...)
    assert effects["checks"][0] == "identical numbers in line(s) 20002, 40002, 60002, 80002, 100002 and 4 more"


# --- sheets -------------------------------------------------------------------------------------------


def sheet_text(tmp_path, text, name="sheet.csv", encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def error(function, *args, **kwargs):
    with pytest.raises(SheetError) as err:
        function(*args, **kwargs)
    return str(err.value)


def normand_smd():
    return REFERENCE["normand1999_smd"]["percent"]


def test_metafor_export_with_a_column_mapping_matches_metafor():
    """write.csv(dat.normand1999): metafor's names, mapped in the config; same fit as metafor's rma()."""
    columns = {"study_id": "study", "study": "source", "n_cases": "n1i", "mean_cases": "m1i", "sd_cases": "sd1i",
               "n_controls": "n2i", "mean_controls": "m2i", "sd_controls": "sd2i"}  # fmt: skip
    result = run_analysis(DATA / "normand1999_metafor_names.csv", {"title": "t", "columns": columns})
    assert result.pooled["k"] == 9
    assert_close(result.pooled["estimate"], normand_smd()["beta"], "estimate", **ITERATIVE)
    assert_close(result.pooled["tau2"], normand_smd()["tau2"], "tau2", **ITERATIVE)


def test_metafor_names_without_a_mapping_are_named_with_the_mapping_to_add():
    message = error(run_analysis, DATA / "normand1999_metafor_names.csv", {"title": "t"})
    assert "missing column(s) study_id (did you mean 'study'?)" in message
    mapped = {"title": "t", "columns": {"study_id": "study"}}
    message = error(run_analysis, DATA / "normand1999_metafor_names.csv", mapped)
    assert "no row of this analysis can be used (nothing was written)" in message
    assert "Columns metarepro does not read as inputs: source, n1i, m1i, sd1i, n2i, m2i, sd2i" in message
    assert "columns: {n_cases: n1i, mean_cases: m1i, sd_cases: sd1i, n_controls: n2i" in message
    assert "effects.csv" not in message and "\n" not in message


def test_mapping_to_a_column_the_sheet_lacks_is_named(tmp_path):
    message = error(read_sheet, DATA / "normand1999_metafor_names.csv", {"study_id": "study", "n_cases": "n1"})
    assert "maps n_cases to 'n1', which the sheet does not have (did you mean 'n1i'?)" in message
    message = error(read_sheet, DATA / "normand1999_metafor_names.csv", {"n_case": "n1i"})
    assert "'n_case' is not a metarepro column (did you mean 'n_cases'?)" in message


def test_excel_sep_line_bom_crlf_and_semicolons():
    sheet = read_sheet(DATA / "normand1999_excel_sep_line.csv")
    assert sheet["study_id"].iloc[0] == "normand_1" and sheet["sd_controls"].iloc[-1] == 20
    assert sheet[LINE].tolist() == list(range(3, 12))  # line 1 is 'sep=;', line 2 the header
    result = run_analysis(DATA / "normand1999_excel_sep_line.csv", {"title": "t"})
    assert_close(result.pooled["estimate"], normand_smd()["beta"], "estimate", **ITERATIVE)


def test_write_csv2_semicolons_decimal_commas_and_na():
    """write.csv2(dat.knapp2017): ';', '0,62' and NA in numeric cells (yi_iq) are read, not refused."""
    sheet = read_sheet(DATA / "knapp2017_write_csv2.csv", {"study_id": "id"})
    assert len(sheet) == 66 and sheet["yi"].iloc[0] == 0.62 and sheet["vi"].iloc[0] == 0.075


@pytest.mark.parametrize("spelling", ["NA", "N/A", "NaN", ".", "", "na", " NA "])
def test_missing_spellings_are_missing_in_numeric_columns(tmp_path, spelling):
    path = sheet_text(tmp_path, f"study_id,n_cases,mean_cases,sd_cases,n_controls,mean_controls,sd_controls\n"
                                f"a,10,1.5,0.4,12,1.1,{spelling}\n")  # fmt: skip
    effects = compute_effects(read_sheet(path), Settings())
    assert effects["reason"][0].startswith("incomplete: sd_controls is empty (SMD needs")


def test_missing_column_is_named_in_the_reason(tmp_path):
    path = sheet_text(tmp_path, "study_id,n_cases,mean_cases,sd_cases,n_controls,mean_controls\na,10,1.5,0.4,12,1.1\n")
    assert compute_effects(read_sheet(path), Settings())["reason"][0].startswith(
        "incomplete: the sheet has no column sd_controls (SMD needs"
    )


@pytest.mark.parametrize("value", ["inf", "Infinity", "-inf", "1e400"])
def test_infinite_numbers_are_refused_with_line_and_column(tmp_path, value):
    path = sheet_text(tmp_path, f"study_id,n_cases,mean_cases\na,10,1\nb,10,{value}\n")
    message = error(read_sheet, path)
    assert f"line 3 (study_id b), column 'mean_cases': '{value}' is not a finite number" in message


def test_duplicate_column_names_are_refused(tmp_path):
    path = sheet_text(tmp_path, "study_id,mean_cases,n_cases,mean_cases\na,1,10,2\n")
    message = error(read_sheet, path)
    assert "line 1 (header): column 'mean_cases' appears twice (columns 2 and 4); rename or delete one" in message


@pytest.mark.parametrize("variant", ["S1 ", " S1", "S\u200b1", "S1\u00a0", "\ufeffS1"])
def test_study_ids_that_look_the_same_are_the_same_sample(tmp_path, variant):
    row = "10,1.5,0.4,12,1.1,0.3"
    path = sheet_text(tmp_path, f"study_id,n_cases,mean_cases,sd_cases,n_controls,mean_controls,sd_controls\n"
                                f"S1,{row}\n{variant},{row}\n")  # fmt: skip
    effects = compute_effects(read_sheet(path), Settings())
    assert effects["included"].tolist() == [True, False]
    assert "study_id S1 already contributes line 2" in effects["reason"][1]


def test_line_numbers_count_blank_lines_and_line_breaks_in_quoted_cells(tmp_path):
    path = sheet_text(tmp_path, 'study_id,study,n_cases\na,"A\nsecond line",10\n\nb,B,x\n')
    assert "line 5 (study_id b), column 'n_cases': 'x' is not a number" in error(read_sheet, path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "the file is empty"),
        ("\n \n", "the file is empty"),
        ("study_id,study,n_cases\n", "the sheet has a header but no rows; add one row per comparison"),
        ("study_id,n_cases\na,10,3\n", "line 2: 3 cells but the header (line 1) has 2 columns"),
    ],
)
def test_empty_and_malformed_sheets(tmp_path, text, expected):
    assert expected in error(read_sheet, sheet_text(tmp_path, text))


def test_directory_and_latin1(tmp_path):
    assert "is a folder, not a sheet" in error(read_sheet, tmp_path)
    path = sheet_text(tmp_path, "study_id,study\na,Müller 2001\n", encoding="latin-1")
    message = error(read_sheet, path)
    assert "line 2: byte 0xfc is not UTF-8" in message and "Save it as 'CSV UTF-8'" in message
    assert error(numeric_columns, path, ["year"]) == message  # the DAG-time read says the same


def test_where_on_a_missing_column_or_value_suggests_the_closest(tmp_path):
    sheet = read_sheet(sheet_text(tmp_path, "study_id,marker,tissue\na,IL-6,serum\n"))
    assert "names a column that the sheet does not have (did you mean 'marker'?)" in error(
        select_rows, sheet, {"markr": "IL-6"}
    )
    assert "no row has marker = 'IL6' (did you mean 'IL-6'?)" in error(select_rows, sheet, {"marker": "IL6"})


@pytest.mark.parametrize("measure", ["SMD", "MD", "ROM"])
def test_overflowing_means_and_single_participant_groups_are_excluded(measure):
    sheet = sheet_from_columns(
        {"n_cases": [10, 1, 10], "mean_cases": [1e308, 1.5, 2.0], "sd_cases": [1e308, 0.4, 0.5],
         "n_controls": [10, 12, 12], "mean_controls": [1.0, 1.1, 1.0], "sd_controls": [1.0, 0.3, 0.4]}
    )  # fmt: skip
    effects = compute_effects(sheet, Settings(measure=measure))
    assert effects["included"].tolist() == [False, False, True]
    assert "too large to compute with (overflow)" in effects["reason"][0]
    assert "n_cases is below 2: a group of one has no SD" in effects["reason"][1]
