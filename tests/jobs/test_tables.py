"""Output tables are safe to open in a spreadsheet (OWASP CSV injection) and keep every label as written:
metarepro.jobs.files.write_table is the one writer, read_table its reader."""

import csv
import inspect
import re

import numpy as np
import pandas as pd
import pytest
from conftest import REPO, run_config_in
from figure_readback import svg_row_texts
from markupsafe import escape

from metarepro.jobs.files import read_effects, read_table, write_table

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # OWASP's list of characters a spreadsheet starts a formula with


def cells(path):
    with open(path, newline="") as handle:
        return list(csv.reader(handle))


def test_formula_like_text_gets_one_quote_and_numbers_are_untouched(tmp_path):
    frame = pd.DataFrame({
        "study": ["=1+1", "-Smith", "+x", "@SUM(A1)", "\tTab", "\nLF", "plain", "'=already", "'plain", "-1.5"],
        "estimate": [-0.5, 1.0, -1e-300, 0.0, 2.5, -3.0, np.nan, 4.0, -0.25, 1.5],
        "k": [-1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
        "mixed": ["-a", 1.5, None, True, "b", -2, "=c", "", "'+d", "x"],
    })  # fmt: skip
    write_table(frame, tmp_path / "t.csv")
    header, *rows = cells(tmp_path / "t.csv")
    assert header == ["study", "estimate", "k", "mixed"]
    assert [row[0] for row in rows] == ["'=1+1", "'-Smith", "'+x", "'@SUM(A1)", "'\tTab", "\nLF", "plain",
                                        "''=already", "'plain", "'-1.5"]  # fmt: skip
    assert [row[1] for row in rows] == ["-0.5", "1.0", "-1e-300", "0.0", "2.5", "-3.0", "", "4.0", "-0.25", "1.5"]
    assert [row[2] for row in rows] == [str(v) for v in frame["k"]]
    assert [row[3] for row in rows] == ["'-a", "1.5", "", "True", "b", "-2", "'=c", "", "''+d", "x"]
    # pandas writes the unchanged frame the same way: only the quotes differ
    frame.to_csv(tmp_path / "plain.csv", index=False)
    unquoted = [[re.sub(r"^'", "", c) if c.lstrip("'")[:1] in FORMULA_START else c for c in row]
                for row in cells(tmp_path / "t.csv")]  # fmt: skip
    assert unquoted == cells(tmp_path / "plain.csv")


def test_a_carriage_return_in_text_is_quoted_so_the_row_stays_whole(tmp_path):
    """Python's csv module quotes a CR only when it is part of the line terminator (pandas writes "\\n")."""
    frame = pd.DataFrame({"study": ["\rCR", "a\rb", "plain"], "yi": [-0.5, np.nan, 1.0], "k": [1, 2, 3]})
    write_table(frame, tmp_path / "t.csv")
    assert (tmp_path / "t.csv").read_bytes().decode() == (
        '"study","yi","k"\n"\'\rCR",-0.5,1\n"a\rb","",2\n"plain",1.0,3\n'
    )
    assert cells(tmp_path / "t.csv")[1:] == [["'\rCR", "-0.5", "1"], ["a\rb", "", "2"], ["plain", "1.0", "3"]]
    pd.testing.assert_frame_equal(read_table(tmp_path / "t.csv"), frame)
    write_table(pd.DataFrame({"mixed": ["a\rb", 1.5, None]}, dtype=object), tmp_path / "mixed.csv")
    assert (tmp_path / "mixed.csv").read_bytes().decode() == '"mixed"\n"a\rb"\n1.5\n""\n'


def test_reading_back_gives_the_table_as_it_was(tmp_path):
    frame = pd.DataFrame({
        "study": ["=1+1", "-Smith", "'=already", "'plain", "plain"],
        "study_id": ["-1", "2", "+3", "4", "5"],
        "estimate": [-0.5, 1.0, -2.0, 0.5, 0.25],
    })  # fmt: skip
    write_table(frame, tmp_path / "t.csv")
    frame.to_csv(tmp_path / "plain.csv", index=False)
    for options in ({}, {"dtype": {"study_id": str}}, {"keep_default_na": False, "na_values": [""]}):
        back, plain = read_table(tmp_path / "t.csv", **options), pd.read_csv(tmp_path / "plain.csv", **options)
        # as pandas reads the unquoted table: a column of numbers once unquoted is numbers (study_id -1, 2, 3 ...)
        pd.testing.assert_frame_equal(back, plain)
    assert read_table(tmp_path / "t.csv")["study"].tolist() == frame["study"].tolist()


def test_default_tables_unchanged_when_no_text_looks_like_a_formula(tmp_path):
    frame = pd.DataFrame({"study": ["Maes 1999", "O'Brien 2004"], "yi": [-0.123456789012345, 0.5]})
    write_table(frame, tmp_path / "t.csv")
    frame.to_csv(tmp_path / "plain.csv", index=False)
    assert (tmp_path / "t.csv").read_bytes() == (tmp_path / "plain.csv").read_bytes()


@pytest.mark.parametrize("compiled_from", [0, 10**9])
@pytest.mark.parametrize("block", [3, 20_000])
def test_written_bytes_are_pandas_to_csv_bytes(tmp_path, monkeypatch, block, compiled_from):
    """write_table joins the cells itself (much faster than pandas at 10^6 rows); the bytes are what
    DataFrame.to_csv(index=False) writes, for every kind of column, across its blocks of rows and in the frames it
    leaves to pandas (a column of dates, a single column, a number among texts); doubles by repr, or by the compiled
    repr of large tables (here from 0 rows)."""
    import metarepro.jobs.files as files

    monkeypatch.setattr(files, "_CSV_BLOCK", block)
    monkeypatch.setattr(files, "COMPILED_REPR_ROWS", compiled_from)
    rng = np.random.default_rng(7)
    n = 40
    floats = rng.normal(size=n) * 10.0 ** rng.integers(-30, 30, n)
    floats[:12] = [np.nan, 0.0, -0.0, np.inf, -np.inf, 1e16, 1e15, 1e-5, 1e-4, 5e-324, 0.1 + 0.2, 123456789.0]
    texts = ["plain", "a,b", 'say "x"', "two\nlines", "", " padded ", "Müller 2003", "tab\there", "'quoted", "NA"]
    frame = pd.DataFrame({
        "float": floats, "int": rng.integers(-10**12, 10**12, n), "bool": rng.random(n) < 0.5,
        "object": pd.Series([texts[i % len(texts)] if i % 7 else None for i in range(n)], dtype=object),
        "string": pd.Series([texts[i % len(texts)] if i % 5 else None for i in range(n)], dtype="string"),
        "str": pd.Series([texts[(i + 3) % len(texts)] for i in range(n)], dtype="str"),
        "category": pd.Categorical([texts[i % 3] for i in range(n)]),
        "a,b": np.arange(n, dtype=np.uint8), "float nan": np.full(n, np.nan),
        "few floats": np.tile([1.0, 2.5, np.nan, 1e16], n // 4), "signed zeros": np.tile([0.0, -0.0, 3.0, 0.0], n // 4),
    })  # fmt: skip
    cases = {
        "every kind": frame, "no rows": frame.iloc[:0], "one row": frame.iloc[:1],
        "one column": frame[["object"]], "number among texts": frame.assign(object=frame["object"].where(
            frame.index != 5, 1.5)), "dates": frame.assign(when=pd.Timestamp("2020-01-01")),
        "float32": frame.assign(float=frame["float"].astype(np.float32)),
    }  # fmt: skip
    for name, case in cases.items():
        write_table(case, tmp_path / "t.csv")
        case.to_csv(tmp_path / "pandas.csv", index=False)
        assert (tmp_path / "t.csv").read_bytes() == (tmp_path / "pandas.csv").read_bytes(), name
        # the cases after the first three are left to pandas
        assert files._write_csv_fast(case, tmp_path / "fast.csv") == (name in ("every kind", "no rows", "one row"))


def test_write_table_is_the_only_writer_of_csv():
    """Every output table goes through write_table (one place where text is made safe)."""
    stray = [(path.relative_to(REPO).as_posix(), line.strip()) for path in (REPO / "src").rglob("*.py")
             for line in path.read_text().splitlines()
             if re.search(r"\.to_csv\(|csv\.writer\(|csv\.DictWriter\(", line)]  # fmt: skip
    assert len(stray) == 1 and stray[0][0] == "src/metarepro/jobs/files.py"
    assert stray[0][1] in inspect.getsource(write_table)


LABELS = {"Edinburgh": "=1+1", "Orpington-Mild": "-Smith", "Orpington-Moderate": "'=quoted", "Orpington-Severe": "@X"}


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory):
    """Normand 1999 (R metadat dat.normand1999) with four study labels a spreadsheet would run, and a subgroup column
    whose values start with '-' and '=', through run_config (the functions the workflow's jobs call)."""
    workdir = tmp_path_factory.mktemp("hostile")
    sheet = pd.read_csv(REPO / "data/raw/normand1999_stroke_los.csv", dtype=str, keep_default_na=False)
    assert set(LABELS) <= set(sheet["study"])
    sheet["study"] = sheet["study"].replace(LABELS)
    sheet["arm"] = ["-a" if i % 2 else "=b" for i in range(len(sheet))]
    sheet.to_csv(workdir / "sheet.csv", index=False)  # the input sheet, as a researcher might write it
    return run_config_in(
        workdir,
        "figure_formats: [svg]\nanalyses:\n  los:\n    title: LOS\n    data: sheet.csv\n    subgroups: [arm]\n"
        "    moderators: [arm]\n    permutations: 0\n",
    )


@pytest.mark.workflow
def test_no_text_cell_of_any_output_table_starts_a_formula(hostile_run):
    tables = sorted(hostile_run.rglob("*.csv"))
    assert {p.name for p in tables} >= {"effects.csv", "leave1out.csv", "influence.csv", "cumulative.csv",
                                        "subgroups.csv", "metareg.csv", "summary.csv", "reproduction.csv"}  # fmt: skip
    for path in tables:
        for row in cells(path):
            for cell in row:
                if cell[:1] in FORMULA_START:
                    float(cell)  # a number such as -0.5 is written as it is; anything else would be a formula


@pytest.mark.workflow
def test_labels_are_quoted_in_the_tables_and_as_written_in_figures_and_report(hostile_run):
    folder = hostile_run / "los"
    header, *rows = cells(folder / "effects.csv")
    written = [row[header.index("study")] for row in rows]
    assert {"'=1+1", "'-Smith", "''=quoted", "'@X"} <= set(written)
    yi = [float(row[header.index("yi")]) for row in rows if row[header.index("yi")]]
    assert min(yi) < 0 and all(not row[header.index("yi")].startswith("'") for row in rows)  # numbers stay numbers
    assert {"'-a", "'=b"} == {row[1] for row in cells(folder / "subgroups.csv")[1:]}
    assert "factor(arm)=b" in {row[0] for row in cells(folder / "metareg.csv")[1:]}  # starts with no formula sign

    effects = read_effects(folder / "effects.csv")
    assert set(LABELS.values()) <= set(effects["study"])
    used = effects[effects["included"]]
    texts = svg_row_texts((folder / "forest.svg").read_text())
    assert [texts[f"row{i}-label"] for i in range(len(used))] == used["study"].tolist()
    assert set(LABELS.values()) <= {texts[f"row{i}-label"] for i in range(len(used))}
    leave1out = svg_row_texts((folder / "leave1out.svg").read_text())
    assert {f"− {label}" for label in LABELS.values()} <= set(leave1out.values())
    subgroup_texts = " ".join(svg_row_texts((folder / "forest_subgroups_arm.svg").read_text()).values())
    assert "Subgroup -a " in subgroup_texts and "Subgroup =b " in subgroup_texts and "'-a" not in subgroup_texts

    page = (hostile_run / "report.html").read_text()
    for label in LABELS.values():  # escaped as the page's templates escape (MarkupSafe)
        assert escape(label) in page
        assert escape("'" + label) not in page  # the quote is for spreadsheets only


def test_regtest_predictor_adds_the_sample_size_tests_as_metafor_computes_them(monkeypatch):
    """config regtest_predictor: ninv on the linde2005 log odds ratios (REML, z) gives metafor's regtest(...,
    predictor = "ninv") for both models (tests/reference/generate_regtest_ni_reference.R), beside Egger's."""
    from conftest import REPO, load_reference
    from tolerances import ITERATIVE

    from metarepro.jobs.pool import run_analysis
    from metarepro.jobs.sensitivity import analysis_rows, publication_bias

    monkeypatch.chdir(REPO)
    ref = load_reference("regtest_ni_reference.json")["cases"]
    linde = {"title": "x", "data": "data/raw/linde2005_st_johns_wort.csv", "measure": "OR", "test": "z", "columns": {
        "study_id": "id", "events_cases": "ai", "n_cases": "n1i", "events_controls": "ci", "n_controls": "n2i"}}
    result = run_analysis(linde["data"], linde)
    record = publication_bias(analysis_rows(result), result.settings, predictor="ninv").record
    assert record["regtest_predictor"] == "ninv" and "egger_z" in record  # Egger's stay
    for model in ("rma", "lm"):
        expected = ref[f"{model}_ninv"]
        assert np.isclose(record[f"regtest_{model}_z"], expected["zval"], **ITERATIVE)
        assert np.isclose(record[f"regtest_{model}_p"], expected["pval"], **ITERATIVE)
    assert record["regtest_lm_statistic"] == "t" and record["regtest_lm_df"] == ref["lm_ninv"]["dfs"] == 22
    assert "regtest_rma_z" not in publication_bias(analysis_rows(result), result.settings).record
    from metarepro.present.report import _bias

    shown = str(_bias(record, "OR"))
    lm = ref["lm_ninv"]  # R's t = 3.1830 with 22 df, as the report prints it (4 decimals)
    assert "Regression test (weighted regression, predictor ninv)" in shown
    assert f"t = {lm['zval']:.4f}, df = {lm['dfs']}" in shown
