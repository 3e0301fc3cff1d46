"""Rows lost, shifted or silently wrong, and files that stop without saying why (issue 21).

Each test builds the malformed input here (a few lines, or a few bytes) and checks either the one-line message
(file, line, column, what to do) or the documented exclusion; beside each, a well-formed neighbour that must pass.
"""

import zipfile

import numpy as np
import pytest
from test_inputs import error, sheet_text

from metarepro.inputs.config import CheckedInputs, published_errors, sheet_errors
from metarepro.inputs.published import read_published
from metarepro.inputs.sheet import map_distinct, order_key, read_sheet, read_table
from metarepro.pipeline.analysis import Settings, compute_effects

HEADER = "study_id,study,year,yi,vi\n"


def rows(*lines):
    return HEADER + "".join(f"{line}\n" for line in lines)


# ---------------------------------------------------------------------------------------------------------------
# quotes: a stray quote must not swallow or shift rows
# ---------------------------------------------------------------------------------------------------------------


def test_a_quote_never_closed_names_its_line_instead_of_swallowing_the_rest(tmp_path):
    text = rows("a,A,2001,0.1,0.01", 'b,"Smith 2003,2003,0.2,0.02', "c,C,2004,0.3,0.03", "d,D,2005,0.4,0.04")
    message = error(read_sheet, sheet_text(tmp_path, text))
    assert "sheet.csv, line 3: a double quote opens a cell here and is never closed" in message
    assert "\n" not in message


def test_two_stray_quotes_do_not_give_one_study_another_studys_numbers(tmp_path):
    text = rows("a,A,2001,0.1,0.01", 'b,"Smith 2003,2003,0.2,0.02', "c,C,2004,0.3,0.03",
                "d,D,2005,0.4,0.04", 'e,E",2006,0.5,0.05', "f,F,2007,0.6,0.06")  # fmt: skip
    message = error(read_sheet, sheet_text(tmp_path, text))
    assert "line 3: cell 2 opens a double quote that closes only on line 6, taking in line 4" in message


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_a_quoted_note_over_several_lines_is_still_one_cell(tmp_path, delimiter):
    cells = ["a", '"first line, with a comma\nsecond line; and a semicolon"', "2001", "0.1", "0.01"]
    text = delimiter.join(HEADER.strip().split(",")) + "\n" + delimiter.join(cells) + "\n"
    sheet = read_sheet(sheet_text(tmp_path, text))
    assert sheet["study"].iloc[0] == "first line, with a comma\nsecond line; and a semicolon"
    assert sheet["yi"].iloc[0] == 0.1


def test_text_after_a_closing_quote_is_refused(tmp_path):
    message = error(read_sheet, sheet_text(tmp_path, rows('a,"Smith" 2003,2001,0.1,0.01')))
    assert "sheet.csv, line 2: not readable as CSV" in message and "written twice" in message


# ---------------------------------------------------------------------------------------------------------------
# invisible characters
# ---------------------------------------------------------------------------------------------------------------

BIDI = ["\u200e", "\u200f", "\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068",
        "\u2069", "\u061c"]  # fmt: skip


@pytest.mark.parametrize("mark", BIDI)
def test_bidirectional_controls_neither_split_a_sample_nor_reach_the_outputs(tmp_path, mark):
    text = rows(f"a{mark},Smith{mark} 2003,2003,0.1,0.01", "a,Smith 2003,2003,0.2,0.02", f"b,{mark}Lee,2004,0.3,0.03")
    effects = compute_effects(read_sheet(sheet_text(tmp_path, text)), Settings(measure="GEN"))
    assert effects["study_id"].tolist() == ["a", "a", "b"]
    assert effects["study"].tolist() == ["Smith 2003", "Smith 2003", "Lee"]
    assert effects["included"].tolist() == [True, False, True]  # one sample: its second row is excluded, named
    assert "study_id a already contributes line 2" in effects["reason"][1]


# ---------------------------------------------------------------------------------------------------------------
# numbers that are read as another number, or not at all
# ---------------------------------------------------------------------------------------------------------------


def test_a_thousands_separator_in_a_decimal_comma_sheet_is_refused(tmp_path):
    text = "study_id;n_cases;yi;vi\na;1.310;0,5;0,01\nb;20;0,2;0,02\n"
    message = error(read_sheet, sheet_text(tmp_path, text))
    assert "line 2 (study_id a), column 'n_cases': '1.310' is ambiguous" in message
    assert "(1310)" in message and "(1,310)" in message


def test_dots_are_decimals_where_the_sheet_writes_no_decimal_comma(tmp_path):
    """A ';' sheet (or a tab sheet) may well use '.' as its decimal mark: only a sheet with decimal commas is
    ambiguous, and '0.310' (no thousands group starts with 0) never is."""
    sheet = read_sheet(sheet_text(tmp_path, "study_id;yi;vi\na;1.310;0.01\n"))
    assert sheet["yi"].iloc[0] == 1.31
    sheet = read_sheet(sheet_text(tmp_path, "study_id;yi;vi\na;0.310;0,01\n"))
    assert sheet["yi"].iloc[0] == 0.31 and sheet["vi"].iloc[0] == 0.01


@pytest.mark.parametrize("minus", ["\u2212", "\u2013", "\u2012", "\ufe63", "\uff0d"])
def test_a_typographic_minus_is_named(tmp_path, minus):
    message = error(read_sheet, sheet_text(tmp_path, rows(f"a,A,2001,{minus}1.2,0.1")))
    assert f"line 2 (study_id a), column 'yi': '{minus}1.2' is written with a typographic minus" in message
    assert "ASCII hyphen-minus '-'" in message


@pytest.mark.parametrize(
    ("header", "bad", "good", "reason"),
    [
        ("yi,ci_low,ci_high", "2.40,0.05,0.35", "0.2,0.05,0.35", "yi 2.4 > ci_high 0.35"),
        ("yi,ci_low,ci_high", "-0.1,0.05,0.35", "0.05,0.05,0.35", "ci_low 0.05 > yi -0.1"),
        ("yi,ci_low,ci_high", "0.2,0.3,0.1", "0.2,0.1,0.3", "ci_low 0.3 > ci_high 0.1"),
        ("yi,vi,ci_low,ci_high", "0.2,0.01,0.3,0.1", "0.2,0.01,0.1,0.3", "ci_low 0.3 > ci_high 0.1"),
        ("mean_cases,ci_low_cases,ci_high_cases", "5,1,3", "2,1,3", "mean_cases 5 > ci_high_cases 3"),
        ("median_cases,q1_cases,q3_cases", "5,6,9", "7,6,9", "q1_cases 6 > median_cases 5"),
        ("median_cases,min_cases,max_cases", "5,9,1", "5,1,9",
         "min_cases 9 > max_cases 1; min_cases 9 > median_cases 5; median_cases 5 > max_cases 1"),
        ("median_cases,q1_cases,q3_cases,min_cases,max_cases", "5,4,6,4.5,9", "5,4,6,4,9",
         "min_cases 4.5 > q1_cases 4"),
    ],
)
def test_a_row_whose_numbers_contradict_each_other_is_excluded_with_the_cells_named(tmp_path, header, bad, good,
                                                                                       reason):  # fmt: skip
    measure = "GEN" if header.startswith("yi") else "SMD"
    controls = "" if measure == "GEN" else ",n_cases,n_controls,mean_controls,sd_controls"
    values = "" if measure == "GEN" else ",20,20,2,1"
    text = f"study_id,{header}{controls}\nbad,{bad}{values}\nok,{good}{values}\n"
    effects = compute_effects(read_sheet(sheet_text(tmp_path, text)), Settings(measure=measure))
    assert effects["included"].tolist() == [False, True], effects["reason"].tolist()
    assert effects["reason"][0] == f"contradictory numbers ({reason}): check the source and the cells"


# ---------------------------------------------------------------------------------------------------------------
# years with letters
# ---------------------------------------------------------------------------------------------------------------


def test_years_with_letters_sort_after_the_plain_year_and_by_letter():
    keys, unreadable = order_key(["2001b", "2002", "2001", "2001a", "in press", "", "NA", " 1999 "])
    assert keys[:4] == [2001.02, 2002.0, 2001.0, 2001.01] and keys[7] == 1999.0
    assert np.isnan(keys[4:7]).all() and unreadable == ["in press", "", "NA"]
    assert list(np.argsort(keys, kind="stable")) == [7, 2, 3, 0, 1, 4, 5, 6]


def test_a_column_is_read_once_per_distinct_text_as_it_would_be_cell_by_cell():
    """order_key and the subgroup/moderator readers read each distinct text once (10⁶ rows, a few dozen years):
    the same keys, in row order, and every unreadable cell in row order; a column that is not all text (equal
    numbers of other types print differently: 1, 1.0, True) is read cell by cell."""
    cells = ["2001b", "2002", "NA", "2002", "x", "2001b", "x", " 2002 "] * 3
    keys, unreadable = order_key(cells)
    one_by_one = [order_key([cell]) for cell in cells]
    np.testing.assert_array_equal(keys, [key for (key,), _ in one_by_one])  # NaN where either has NaN
    assert unreadable == [text for _, texts in one_by_one for text in texts] == ["NA", "x", "x"] * 3
    mixed = [1, 1.0, True, "1", None]
    assert map_distinct(mixed, repr).tolist() == ["1", "1.0", "True", "'1'", "None"]
    assert map_distinct(["b", "a", "b"], str.upper).tolist() == ["B", "A", "B"]
    assert map_distinct([], str.upper).tolist() == []


@pytest.mark.parametrize("dtype", [object, "str"])
@pytest.mark.parametrize("repeats", [1, 30])
def test_numbers_are_parsed_once_per_distinct_text_as_to_numeric_parses_them(repeats, dtype):
    """A column that repeats its texts (30 times: each distinct text parsed once) gives pandas' to_numeric of the
    whole column (errors coerced), as floats, to the bit (-0 stays -0.0 beside a missing cell and is 0.0 in a column
    of integers): exponents, signs, spaces, inf, huge integers, Unicode digits, junk, missing cells; a column of
    numbers keeps -0.0 apart from 0.0."""
    import pandas as pd

    from metarepro.inputs.sheet import to_numbers

    def same(ours, theirs):
        ours, theirs = ours.to_numpy(), theirs.to_numpy()
        return np.array_equal(ours, theirs, equal_nan=True) and (np.signbit(ours) == np.signbit(theirs)).all()

    texts = ["1", "1.5", " 2 ", "-0", "1e-300", "1e400", "-inf", "NaN", "1_000", "0x10", "١٢", "x", "",
             "9007199254740993", "18446744073709551616", "3.000", None]  # fmt: skip
    integers = ["-0", "0", "12", "-3", "9007199254740993"]
    for column in (texts, integers, [*integers, None]):
        cells = pd.Series(column * repeats, dtype=dtype).sample(frac=1, random_state=1)
        assert same(to_numbers(cells), pd.to_numeric(cells, errors="coerce").astype(float)), column
        assert (to_numbers(cells).index == cells.index).all()
    numbers = pd.Series([-0.0, 0.0, 0.0, 1.0] * repeats)
    assert same(to_numbers(numbers), numbers)


def test_the_cumulative_figure_says_how_many_studies_had_no_year(tmp_path):
    from metarepro.jobs import sensitivity
    from metarepro.jobs.pool import run_analysis

    text = rows("a,A,2001b,0.1,0.01", "b,B,2001a,0.2,0.02", "c,C,,0.3,0.03", "d,D,2000,0.4,0.04")
    path = sheet_text(tmp_path, text)
    config = {"name": "t", "defaults": {}, "analysis": {"data": str(path), "measure": "GEN"}}
    result = run_analysis(path, config["analysis"], {})
    kept = sensitivity.sensitivity_rows(result, config["analysis"])
    out = sensitivity.diagnostics(kept, result.settings)
    assert out.tables["cumulative"]["study_id"].tolist() == ["d", "b", "a", "c"]
    title = out.figures["cumulative"].axes[0].get_title(loc="left") or out.figures["cumulative"].axes[0].get_title()
    texts = [t.get_text() for t in out.figures["cumulative"].findobj(lambda a: hasattr(a, "get_text"))]
    assert any("1 study without a year added last" in t for t in [title, *texts])


# ---------------------------------------------------------------------------------------------------------------
# files that are not CSV text
# ---------------------------------------------------------------------------------------------------------------


def test_a_workbook_is_named_as_one(tmp_path):
    book = tmp_path / "sheet.csv"
    with zipfile.ZipFile(book, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook/>")
    message = error(read_sheet, book)
    assert "sheet.csv: is a zip archive (an Excel .xlsx or OpenDocument .ods workbook?), not a CSV sheet" in message
    (tmp_path / "old.xls").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(100))
    assert "is a legacy Excel workbook (.xls)" in error(read_sheet, tmp_path / "old.xls")


@pytest.mark.parametrize(("encoding", "named"), [("utf-16-le", "UTF-16LE"), ("utf-16-be", "UTF-16BE")])
def test_utf16_without_a_byte_order_mark_is_named(tmp_path, encoding, named):
    path = sheet_text(tmp_path, rows("a,A,2001,0.1,0.01"), encoding=encoding)
    message = error(read_sheet, path)
    assert "looks like UTF-16" in message and f"iconv -f {named} -t UTF-8 sheet.csv" in message


def test_utf16_with_its_mark_is_read_and_a_truncated_one_is_named(tmp_path):
    path = sheet_text(tmp_path, rows("a,A,2001,0.1,0.01"), encoding="utf-16")  # with the byte-order mark
    assert read_sheet(path)["yi"].iloc[0] == 0.1
    path.write_bytes(path.read_bytes()[:-1])
    assert "the file may be truncated" in error(read_sheet, path)


def test_nul_bytes_are_not_a_sheet(tmp_path):
    path = tmp_path / "sheet.csv"
    path.write_bytes(HEADER.encode() + b"a,A,2001,0.1,0.01\n\x00\x01\x02 binary tail that is mostly text\n")
    assert "sheet.csv, line 3: contains NUL bytes" in error(read_sheet, path)


# ---------------------------------------------------------------------------------------------------------------
# the published-results sheet: the same reader, checked before the first job
# ---------------------------------------------------------------------------------------------------------------

PUBLISHED = ("id;source;doi;marker;measure;estimate;ci_low;ci_high;pval;k;n_cases;n_controls;i2;model;software;note\n"
             "x2010;X 2010;;IL-6;SMD;0,51;0,22;0,80;;12;300;280;;random;RevMan;\n")  # fmt: skip


def test_the_published_sheet_is_read_as_the_extraction_sheets_are(tmp_path):
    frame = read_published(sheet_text(tmp_path, PUBLISHED, name="pub.csv"))  # ';' with decimal commas
    assert frame.loc["x2010", "estimate"] == 0.51 and frame.loc["x2010", "ci_high"] == 0.80
    assert frame.loc["x2010", "ci_high_decimals"] == 2  # "0,80": two decimals as printed
    latin = sheet_text(tmp_path, PUBLISHED.replace("X 2010", "Müller 2010"), name="latin.csv", encoding="latin-1")
    assert "latin.csv, line 2: byte 0xfc is not UTF-8" in error(read_published, latin)
    wrong = sheet_text(tmp_path, "id,source\nx,y\n", name="wrong.csv")
    assert "wrong.csv, line 1 (header): missing column(s) doi, marker" in error(read_published, wrong)


def _config(tmp_path, **analysis):
    sheet = sheet_text(tmp_path, rows("a,A,2001,0.1,0.01", "b,B,2002,0.2,0.02"), name="s.csv")
    return {"analyses": {"one": {"data": str(sheet), "measure": "GEN", **analysis}}}


def test_compare_with_ids_and_the_published_sheet_are_checked_before_any_job(tmp_path):
    config = _config(tmp_path, compare_with=["x2010", "x2011"])
    assert published_errors(config) == [
        "config (analyses → one → compare_with): compare_with needs the published-results sheet: add 'published: "
        "<path to its CSV>' at the top of the config"
    ]
    config["published"] = str(sheet_text(tmp_path, PUBLISHED, name="pub.csv"))
    found = published_errors(config)
    assert len(found) == 1 and "'x2011' is not an id of" in found[0] and "(did you mean 'x2010'?)" in found[0]
    config["analyses"]["one"]["compare_with"] = ["x2010"]
    assert published_errors(config) == []
    config["published"] = str(sheet_text(tmp_path, "\ufeffid,source\n", name="pub.csv"))
    assert published_errors(config)[0].startswith("published: ")


def test_every_problem_of_every_sheet_is_listed_before_any_job(tmp_path):
    first = sheet_text(tmp_path, rows("a,A,2001,x,0.01", "b,B,2002,0.2,-1"), name="first.csv")
    second = sheet_text(tmp_path, rows("a,A,2001,0.1,0.01", 'b,"B,2002,0.2,0.02'), name="second.csv")
    config = {"analyses": {
        "one": {"data": str(first), "measure": "GEN"}, "two": {"data": str(first), "measure": "GEN"},
        "three": {"data": str(second), "measure": "GEN"}, "four": {"data": str(second), "where": {"year": "1999"}},
    }}  # fmt: skip
    found = sheet_errors(config)
    assert len(found) == 2  # each broken sheet once, whichever analyses read it
    assert "column 'yi': 'x' is not a number" in found[0] and "column 'vi': -1 is negative" in found[0]
    assert "second.csv, line 3: a double quote opens a cell here and is never closed" in found[1]
    fixed = sheet_text(tmp_path, rows("a,A,2001,0.1,0.01"), name="second.csv")
    config["analyses"] = {"four": {"data": str(fixed), "where": {"year": "1999"}}}
    assert sheet_errors(config) == ["analysis four: " + error(read_sheet_where, fixed, {"year": "1999"})]


def read_sheet_where(path, where):
    from metarepro.inputs.sheet import select_rows

    return select_rows(read_sheet(path), where)


def test_inputs_that_passed_are_not_read_whole_again_until_they_change(tmp_path, monkeypatch):
    import metarepro.inputs.sheet

    config = _config(tmp_path)
    memory = tmp_path / ".snakemake" / "checked.json"
    inputs = CheckedInputs(memory)
    assert sheet_errors(config, checked=inputs) == []
    inputs.save()

    def refuse(*args, **kwargs):
        raise AssertionError("read whole again")

    monkeypatch.setattr(metarepro.inputs.sheet, "read_sheet", refuse)
    assert sheet_errors(config, checked=CheckedInputs(memory)) == []  # unchanged: header only
    config["analyses"]["one"]["where"] = {"year": "2001"}  # read another way: checked whole again
    with pytest.raises(AssertionError, match="read whole again"):
        sheet_errors(config, checked=CheckedInputs(memory))
    monkeypatch.undo()
    del config["analyses"]["one"]["where"]
    sheet = config["analyses"]["one"]["data"]
    with open(sheet, "a", encoding="utf-8") as handle:  # edited since: checked whole again, and the new error found
        handle.write("c,C,2003,oops,0.01\n")
    found = sheet_errors(config, checked=CheckedInputs(memory))
    assert len(found) == 1 and "line 4 (study_id c), column 'yi': 'oops' is not a number" in found[0]


def test_read_table_reports_its_delimiter_and_decimal_mark(tmp_path):
    header, cells, lines, info = read_table(sheet_text(tmp_path, "study_id;yi\na;0,5\n"))
    assert (header, cells, lines) == (["study_id", "yi"], [["a", "0,5"]], [2])
    assert info["delimiter"] == ";" and info["decimal_comma"]


@pytest.mark.workflow
def test_a_bad_cell_stops_snakemake_before_any_job_with_one_message(tmp_path):
    from test_inputs import snakemake

    (tmp_path / "s.csv").write_text(rows("a,A,2001,0.1,0.01", "b,B,2002,\u22120.2,0.02"), encoding="utf-8")
    (tmp_path / "pub.csv").write_text("id,source\n", encoding="utf-8")
    config = "published: pub.csv\nanalyses:\n  a:\n    title: t\n    data: s.csv\n    measure: GEN\n"
    result = snakemake(tmp_path, config + "    compare_with: [x]\n", "--dry-run")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "metarepro: 2 problem(s) in the config:" in result.stderr
    assert "s.csv, line 3 (study_id b), column 'yi': '\u22120.2' is written with a typographic minus" in result.stderr
    assert "published: pub.csv, line 1 (header): missing column(s) doi, marker" in result.stderr
    assert not (tmp_path / "results").exists()


def test_a_study_level_sheet_is_checked_before_any_job(tmp_path):
    from metarepro.inputs.config import study_sheet_errors

    config = _config(tmp_path)
    bad = sheet_text(tmp_path, "study,yi,ci_low,ci_high\nA 2001,0.5,x,0.9\n", name="studies.csv")
    config["analyses"]["one"]["compare_studies"] = {"sheet": str(bad)}
    found = study_sheet_errors(config)
    assert len(found) == 1 and found[0].startswith("analysis one, compare_studies: ")
    assert "studies.csv, line 2" in found[0] and "'x'" in found[0]
    sheet_text(tmp_path, "study,yi,ci_low,ci_high\nA 2001,0.5,0.1,0.9\n", name="studies.csv")
    assert study_sheet_errors(config) == []
