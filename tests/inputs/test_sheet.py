"""Extraction-sheet validation: bad input gives a message with file, line, column and the fix;
incomplete rows are kept and excluded with a reason, never dropped silently."""

import pytest
from conftest import REPO

from metarepro.inputs.sheet import SheetError, read_sheet, select_rows
from metarepro.pipeline.analysis import Settings, compute_effects

HEADER = "study_id,study,year,marker,n_cases,mean_cases,sd_cases,n_controls,mean_controls,sd_controls,yi,vi,sample\n"


def write(tmp_path, body, header=HEADER):
    path = tmp_path / "sheet.csv"
    path.write_text(header + body)
    return path


def test_reads_the_default_sheet():
    sheet = read_sheet(REPO / "data/raw/normand1999_stroke_los.csv")
    assert len(sheet) == 9
    assert sheet["n_cases"].dtype == float
    assert sheet["_line"].tolist() == list(range(2, 11))


def test_text_in_numeric_cell_names_file_line_column_and_fix(tmp_path):
    path = write(
        tmp_path,
        "a,A 2001,2001,IL-6,10,1.5,0.4,12,1.1,0.3,,,serum\nb,B 2003,2003,IL-6,20,2.0±0.5,,22,1.0,0.2,,,plasma\n",
    )
    with pytest.raises(SheetError) as err:
        read_sheet(path)
    message = str(err.value)
    assert str(path) in message
    assert "line 3" in message and "study_id b" in message and "'mean_cases'" in message
    assert "'2.0±0.5' is not a number" in message and "leave the cell empty" in message


def test_every_problem_is_listed_not_just_the_first(tmp_path):
    path = write(tmp_path, "a,A,2001,IL-6,-10,1.5,0.4,12.5,1.1,-0.3,,,\n")
    message = str(pytest.raises(SheetError, read_sheet, path).value)
    assert "3 problem(s)" in message
    assert "'n_cases'" in message and "'sd_controls'" in message and "whole number" in message


def test_missing_identity_column_is_reported_in_the_header(tmp_path):
    path = write(tmp_path, "A,10\n", header="Study_ID,study,n_cases\n")
    message = str(pytest.raises(SheetError, read_sheet, path).value)
    assert "line 1 (header): missing column(s) study_id (did you mean 'Study_ID'?)" in message


def test_year_and_marker_are_optional(tmp_path):
    sheet = read_sheet(write(tmp_path, "a,A,10\n", header="study_id,study,n_cases\n"))
    assert sheet["n_cases"].tolist() == [10.0] and "year" not in sheet


def test_missing_file_says_which_config_key(tmp_path):
    message = str(pytest.raises(SheetError, read_sheet, tmp_path / "nope.csv").value)
    assert "nope.csv" in message and "'data'" in message


def test_incomplete_rows_are_excluded_with_reasons_not_dropped(tmp_path):
    path = write(
        tmp_path,
        "a,A,2001,IL-6,10,1.5,0.4,12,1.1,0.3,,,serum\n"
        "b,B,2003,IL-6,20,2.0,,22,1.0,0.2,,,serum\n"  # SD missing
        "c,C,2005,IL-6,,,,,,,0.4,,serum\n"  # yi without variance
        "a,A again,2001,IL-6,10,1.5,0.4,12,1.1,0.3,,,serum\n"  # same sample twice
        "d,D,2007,IL-6,15,-1.0,0.5,15,1.0,0.5,,,serum\n",  # ROM impossible with a negative mean
    )
    effects = compute_effects(read_sheet(path), Settings(measure="ROM"))
    assert len(effects) == 5
    assert effects["included"].tolist() == [True, False, False, False, False]
    reasons = effects["reason"].tolist()
    assert "incomplete" in reasons[1]
    assert "without vi, sei or a 95% CI" in reasons[2]
    assert "already contributes line 2" in reasons[3]
    assert "means > 0" in reasons[4]


def test_where_filters_by_value_or_list_and_rejects_unknown_columns(tmp_path):
    path = write(
        tmp_path,
        "a,A,2001,IL-6,10,1,1,10,1,1,,,serum\nb,B,2002,CRP,10,1,1,10,1,1,,,plasma\nc,C,2002,hsCRP,10,1,1,10,1,1,,,serum\n",
    )
    sheet = read_sheet(path)
    assert select_rows(sheet, {"marker": "IL-6"})["study_id"].tolist() == ["a"]
    assert select_rows(sheet, {"marker": ["CRP", "hsCRP"]})["study_id"].tolist() == ["b", "c"]
    assert select_rows(sheet, {"year": 2002, "sample": "serum"})["study_id"].tolist() == ["c"]
    message = str(pytest.raises(SheetError, select_rows, sheet, {"tissue": "serum"}).value)
    assert "'where: {tissue: ...}'" in message and "sample" in message


def test_a_column_set_aside_by_a_null_mapping_is_kept_as_text_and_not_read(tmp_path):
    """columns: {p: null, direction: null, t: null}: the sheet's own p (bounds), direction (its own words) and t
    (unsigned) are kept as text under *_as_printed; metarepro's p, direction and t are empty, so no row uses them."""
    header = "study_id,n_treatment,n_placebo,t,p,direction\n"
    body = "a,20,20,2.1,<0.001,favours_treatment\nb,15,16,0.5,0.62,favours_placebo\n"
    path = write(tmp_path, body, header)
    with pytest.raises(SheetError):  # as it is: a p that is not a number, a direction outside the vocabulary
        read_sheet(path, {"n_cases": "n_treatment", "n_controls": "n_placebo"})
    mapping = {"n_cases": "n_treatment", "n_controls": "n_placebo", "t": None, "p": None, "direction": None}
    sheet = read_sheet(path, mapping)
    assert sheet["p_as_printed"].tolist() == ["<0.001", "0.62"]
    assert sheet["direction_as_printed"].tolist() == ["favours_treatment", "favours_placebo"]
    assert sheet["t_as_printed"].tolist() == ["2.1", "0.5"]  # text, as printed
    assert sheet[["t", "p"]].isna().all().all() and "direction" not in sheet.attrs["columns"]
    effects = compute_effects(sheet, Settings(measure="SMD"))
    assert not effects["included"].any()
    aside = "; the config sets aside this sheet's t, p, direction (columns: {name: null})"
    assert effects["reason"].str.contains(aside, regex=False).all()


def test_setting_aside_a_column_the_sheet_lacks_is_named(tmp_path):
    path = write(tmp_path, "a,A,2001,IL-6,10,1.5,0.4,12,1.1,0.3,,,serum\n")
    with pytest.raises(SheetError) as err:
        read_sheet(path, {"p": None})
    assert "sets aside 'p' (p: null), but the sheet has no column 'p'" in str(err.value)
