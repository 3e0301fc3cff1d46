"""Inputs as researchers have them (issue 9): sheets written by R and Excel, configs with mistakes.

Each test trips one case with a sheet or config under tests/data/inputs/ (or a few lines written
here) and checks for the right result or a one-line message naming file, line, column and the fix.
"""

import json
import shutil
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from conftest import REPO, assert_close, load_reference, sheet_from_columns
from tolerances import ITERATIVE, conditioned_rtol

from metarepro.inputs.sheet import LINE, SheetError, read_sheet, select_rows
from metarepro.jobs import run_analysis, sensitivity
from metarepro.pipeline.analysis import Settings, compute_effects
from metarepro.stats.metareg import design_matrix, rma_mods

DATA = REPO / "tests" / "data" / "inputs"
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


# --- file-level steps skip what the data do not allow, and say why -----------------------------------


def included_rows(yi, vi, **columns):
    k = len(yi)
    ids = [f"s{i}" for i in range(k)]
    return pd.DataFrame({"line": np.arange(2, k + 2), "study_id": ids, "study": ids, "yi": yi, "vi": vi,
                         "weight": 100 / k, **columns})  # fmt: skip


def test_publication_bias_with_all_vi_equal_skips_the_regression_based_parts():
    rows = included_rows([0.1, 0.3, 0.2, 0.5, 0.4], [0.04] * 5)
    record = sensitivity.publication_bias(rows, Settings()).record
    assert "egger_z" not in record and "pet_peese_estimate" not in record
    assert "Egger (mixed-effects): the predictor is constant (all vi equal)" in record["skipped"]
    assert "trim-and-fill (L0): model matrix not of full rank" in record["skipped"]  # its side comes from Egger
    assert record["fsn_rosenthal"] > 0  # fail-safe N needs no differing variances


def test_diagnostics_with_one_study_is_skipped_with_the_reason():
    out = sensitivity.diagnostics(included_rows([0.3], [0.04]), Settings())
    assert out.record["note"] == "case diagnostics need k >= 2 studies; this analysis has k = 1"
    assert all(table.empty for table in out.tables.values()) and set(out.figures) == {
        "leave1out",
        "cumulative",
        "baujat",
    }


# --- missing moderators and subgroups: rows leave that model, as metafor's na.omit --------------------


def analysis_rows_of(path, analysis):
    result = run_analysis(path, analysis)
    return result, sensitivity.analysis_rows(result)


def test_na_in_a_numeric_moderator_leaves_the_model_as_in_metafor():
    """dat.knapp2017 (write.csv2), moderators: [difficulty]: metafor drops the 9 NA rows and fits a slope."""
    reference = REFERENCE["knapp2017_difficulty"]
    analysis = {"title": "t", "measure": "GEN", "columns": {"study_id": "id"}}
    result, rows = analysis_rows_of(DATA / "knapp2017_write_csv2.csv", analysis)
    table = sensitivity.metaregression(rows, result.settings, ["difficulty"], permutations=0)
    assert table["coefficient"].tolist() == reference["coefficients"] == ["intrcpt", "difficulty"]
    assert table["k"].iloc[0] == reference["k"] == 57
    assert_close(table["estimate"], reference["beta"], "beta", **ITERATIVE)
    assert_close(table["se"], reference["se"], "se", **ITERATIVE)
    assert_close(table["tau2"].iloc[0], reference["tau2"], "tau2", **ITERATIVE)
    assert_close(table["QM_p"].iloc[0], reference["QMp"], "QMp", **ITERATIVE)
    left_out = rows.set_index("line").loc[[int(x) for x in table["left_out_lines"].iloc[0].split()], "study_id"]
    assert table["left_out"].iloc[0] == 9 and left_out.tolist() == reference["dropped"]


def test_na_in_a_subgroup_column_leaves_that_model_never_a_subgroup_na():
    """dat.mcdaniel1994 (write.csv), subgroups: [type]: three rows have type NA."""
    reference = REFERENCE["mcdaniel1994_type"]
    analysis = {"title": "t", "measure": "ZCOR", "columns": {"study_id": "study", "r": "ri", "n": "ni"}}
    result, rows = analysis_rows_of(DATA / "mcdaniel1994_write_csv.csv", analysis)
    table = sensitivity.subgroups(rows, result.settings, ["type"]).set_index("subgroup")
    assert sorted(table.index) == sorted(reference["subgroups"]) == ["j", "p", "s"]
    for level, fit in reference["subgroups"].items():
        assert table.loc[level, "k"] == fit["k"]
        assert_close(table.loc[level, "estimate"], fit["beta"], f"estimate {level}", **ITERATIVE)
    assert_close(table["test_moderator_QM"].iloc[0], reference["moderator"]["QM"], "QM", **ITERATIVE)
    dropped = rows.set_index("line").loc[[int(x) for x in table["left_out_lines"].iloc[0].split()], "study_id"]
    assert table["left_out"].iloc[0] == 3 and dropped.astype(int).tolist() == reference["dropped_studies"]


def test_design_matrix_without_intercept_codes_every_level_of_the_first_factor():
    """dat.bcg, metafor's rma(yi, vi, mods = ~ 0 + factor(alloc) + ablat): the model.matrix and the fit."""
    reference = REFERENCE["bcg_no_intercept"]
    frame = pd.DataFrame({"alloc": reference["alloc"], "ablat": reference["ablat"]})
    X = design_matrix(frame, ["alloc", "ablat"], intercept=False)
    assert X.columns.tolist() == reference["coefficients"]
    np.testing.assert_array_equal(X.to_numpy(), np.array(reference["X"], dtype=float))
    fit = rma_mods(reference["yi"], reference["vi"], X)
    assert_close(fit.beta, reference["beta"], "beta", rtol=max(ITERATIVE["rtol"], conditioned_rtol(X)))
    assert_close(fit.tau2, reference["tau2"], "tau2", **ITERATIVE)


def test_level_given_as_a_proportion_gives_metafors_interval():
    """metafor reads level = 0.95 as 95 % (rma(..., level = 0.95) in generate_inputs_reference.R)."""
    columns = {"study_id": "study", "n_cases": "n1i", "mean_cases": "m1i", "sd_cases": "sd1i",
               "n_controls": "n2i", "mean_controls": "m2i", "sd_controls": "sd2i"}  # fmt: skip
    result = run_analysis(DATA / "normand1999_metafor_names.csv", {"title": "t", "columns": columns, "level": 0.95})
    reference = REFERENCE["normand1999_smd"]["proportion"]
    assert result.pooled["level"] == 95
    assert_close(result.pooled["ci_low"], reference["ci_lb"], "ci_low", **ITERATIVE)
    assert_close(result.pooled["ci_high"], reference["ci_ub"], "ci_high", **ITERATIVE)


# --- through Snakemake: config mistakes stop before any rule, one line each --------------------------

SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--cores", "1"]


def snakemake(workdir, config_text, *args):
    (workdir / "my.yaml").write_text(config_text)
    cmd = [*SNAKEMAKE, *args, "--configfile", "my.yaml"]  # --configfile takes every argument after it
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=workdir)


@pytest.mark.workflow
def test_config_mistakes_are_listed_at_once_before_any_rule(tmp_path):
    (tmp_path / "latin1.csv").write_bytes("study_id,study,year\na,Müller,2001\n".encode("latin-1"))
    config = (
        "analyses:\n"
        "  2024:\n    title: t\n    data: latin1.csv\n    moderators: [year]\n    seed: -5\n"
        "  b:\n    title: t\n    data: nowhere.csv\n    methd: DL\n    permutations: 1000000000\n"
    )
    result = snakemake(tmp_path, config, "--dry-run")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "metarepro: 3 problem(s) in the config:" in result.stderr
    assert "my.yaml, line 6 (analyses → 2024 → seed): -5 must be at least 0" in result.stderr
    assert "my.yaml, line 10 (analyses → b → methd): unknown key 'methd' (did you mean 'method'?)" in result.stderr
    assert "(analyses → b → permutations): 1000000000 must be at most 100000" in result.stderr
    fixed = config.replace("    seed: -5\n", "").replace("    methd: DL\n    permutations: 1000000000\n", "")
    result = snakemake(tmp_path, fixed, "--dry-run")
    assert "analysis 2024: latin1.csv, line 2: byte 0xfc is not UTF-8" in result.stderr
    assert "analysis b: nowhere.csv: no such file" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.workflow
def test_duplicate_analysis_key_stops_the_run(tmp_path):
    config = "analyses:\n  a:\n    title: t\n    data: x.csv\n  a:\n    title: u\n    data: y.csv\n"
    result = snakemake(tmp_path, config, "--dry-run")
    assert result.returncode != 0
    # Snakemake's own notice of the workflow profile may precede it; ours is the one line that follows
    ours = [line for line in result.stderr.splitlines() if not line.startswith("Using workflow specific profile")]
    assert "\n".join(ours).strip() == (
        "metarepro: my.yaml, line 5: key 'a' appears twice in the same mapping (first at line 2); "
        "YAML would silently keep only the last. Rename or remove one."
    )


@pytest.mark.workflow
def test_a_metafor_export_runs_end_to_end_with_names_as_written(tmp_path):
    """write.csv2(dat.knapp2017) with a column mapping, an analysis named 001, moderators with NA."""
    shutil.copy(DATA / "knapp2017_write_csv2.csv", tmp_path / "knapp.csv")
    config = (
        "analyses:\n  001:\n    title: Knapp 2017\n    data: knapp.csv\n    measure: GEN\n"
        "    columns: {study_id: id, study: authors}\n    moderators: [difficulty]\n    permutations: 0\n"
    )
    result = snakemake(tmp_path, config, "--dry-run")  # the sheet has its own 'study' column already
    assert "knapp.csv, line 1 (header): column 'study' appears twice (columns 2 and 4) ('authors' is mapped" in (
        result.stderr
    )
    config = config.replace("study_id: id, study: authors", "study_id: id")
    result = snakemake(tmp_path, config, "results/001/metareg.csv", "results/summary.csv")
    assert result.returncode == 0, result.stderr[-3000:]
    metareg = pd.read_csv(tmp_path / "results/001/metareg.csv")
    assert metareg["coefficient"].tolist() == ["intrcpt", "difficulty"]
    assert metareg["k"].iloc[0] == REFERENCE["knapp2017_difficulty"]["k"] and metareg["left_out"].iloc[0] == 9
    assert (tmp_path / "results/summary.csv").read_text().splitlines()[1].startswith("001,")


@pytest.mark.workflow
def test_billion_laughs_through_snakemake_is_one_short_line(tmp_path):
    levels = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    config = "unknown:\n" + "\n".join("  " + line for line in levels) + "\nanalyses: {a: {title: t, data: x.csv}}\n"
    start = time.perf_counter()
    result = snakemake(tmp_path, config, "--dry-run")
    assert time.perf_counter() - start < 120 and result.returncode != 0
    assert "values through YAML aliases (*name), more than 100,000" in result.stderr and len(result.stderr) < 500


@pytest.mark.workflow
def test_one_study_and_equal_variances_run_with_the_parts_skipped(tmp_path):
    """k = 1 (no case diagnostics) and all vi equal (no Egger): the whole workflow runs and says why."""
    (tmp_path / "one.csv").write_text("study_id,study,year,yi,vi\na,A,2001,0.3,0.04\n")
    (tmp_path / "equal.csv").write_text("study_id,year,yi,vi\nb,2001,0.1,0.04\nc,2002,0.5,0.04\nd,2003,0.2,0.04\n")
    config = "defaults: {measure: GEN}\nanalyses:"
    config += "\n  one: {title: o, data: one.csv}\n  eq: {title: e, data: equal.csv}\n"
    result = snakemake(tmp_path, config)
    assert result.returncode == 0, result.stderr[-3000:]
    assert pd.read_csv(tmp_path / "results/one/influence.csv").empty
    bias = json.loads((tmp_path / "results/eq/bias.json").read_text())
    assert "Egger (mixed-effects): the predictor is constant (all vi equal)" in bias["skipped"]
    assert (tmp_path / "results/report.html").exists()


def test_too_few_rows_with_every_moderator_is_a_message_not_a_traceback():
    rows = included_rows([0.1, 0.3, 0.2, 0.5], [0.04, 0.05, 0.02, 0.03], dose=["1", "NA", "", "2"])
    message = error(sensitivity.metaregression, rows, Settings(), ["dose"], permutations=0)
    assert "moderators dose: 2 of 4 rows give every moderator, but the model has 2 coefficients" in message
    assert "lines 3 4" in message


def test_metaregression_of_equal_effects_reports_qm_as_na():
    """Every yi equal with knha (metafor: se 0, QM NA; tests/stats/test_metareg.py has its values): the meta-regression
    step and the bubble plot run, and the table says QM is not available instead of failing."""
    rows = pd.DataFrame({"line": range(2, 8), "study_id": list("abcdef"), "study": list("ABCDEF"), "yi": 0.3,
                         "vi": [0.01, 0.02, 0.03, 0.04, 0.05, 0.06],
                         "year": [2001, 2003, 2005, 2008, 2011, 2015]})  # fmt: skip
    settings = Settings(method="REML", test="knha", measure="GEN")
    table = sensitivity.metaregression(rows, settings, ["year"], permutations=0)
    assert table["coefficient"].tolist() == ["intrcpt", "year"]
    assert table["QM"].isna().all() and table["QM_p"].isna().all() and (table["se"] == 0).all()
    figure = sensitivity.bubble(rows, settings, "year", "equal effects")
    assert figure.axes  # drawn


def test_a_text_moderator_gets_a_figure_that_says_why_there_is_no_bubble_plot():
    """Bubble figures are declared for every moderator (the workflow reads no sheet before its jobs run): a moderator
    with text values is a factor in the meta-regression, and its figure says so instead of drawing points."""
    rows = pd.DataFrame({"line": range(2, 8), "study_id": list("abcdef"), "study": list("ABCDEF"),
                         "yi": [0.1, 0.4, 0.2, 0.6, 0.3, 0.5], "vi": [0.01, 0.02, 0.03, 0.04, 0.05, 0.06],
                         "sample": ["serum", "plasma", "serum", "NA", "plasma", "serum"]})  # fmt: skip
    figure = sensitivity.bubble(rows, Settings(measure="GEN"), "sample", "text moderator")
    (note,) = figure.texts
    assert " ".join(note.get_text().split()) == ("no bubble plot: moderator 'sample' has text values (plasma, serum); "
                                                 "it enters the meta-regression as a factor (see the meta-regression "
                                                 "table)")  # fmt: skip
    assert not figure.axes  # nothing plotted
    # the whole text is on the figure (a long note once ran off both edges)
    box, page = note.get_window_extent(figure.canvas.get_renderer()), figure.bbox
    assert page.x0 <= box.x0 and box.x1 <= page.x1 and page.y0 <= box.y0 and box.y1 <= page.y1


@pytest.mark.workflow
def test_an_alias_bomb_stops_before_any_job_writes_metadata(tmp_path):
    """200 aliases of one 50,000-character title: Snakemake stored each job's params (the analysis's settings)
    per output file, 211 MB. The strict reading in the Snakefile stops the run before the first job."""
    shutil.copy(DATA / "knapp2017_write_csv2.csv", tmp_path / "knapp.csv")
    titles = ["&t " + "x" * 50_000] + ["*t"] * 199
    config = "analyses:\n" + "".join(f"  a{i}:\n    title: {t}\n    data: knapp.csv\n" for i, t in enumerate(titles))
    result = snakemake(tmp_path, config)  # a real run, not --dry-run
    assert result.returncode != 0 and "Traceback" not in result.stderr
    # 'analyses' 8 + keys a0..a199 690 + 200 x ('title' 5 + 'data' 4 + 'knapp.csv' 9) + 200 x 50,000 characters
    assert "metarepro: my.yaml: holds 10,004,298 characters of keys and values once YAML aliases" in result.stderr
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p.name not in ("my.yaml", "knapp.csv")]
    assert sum(p.stat().st_size for p in written) < 100_000, written  # Snakemake's own log, no metadata, no results


@pytest.mark.workflow
def test_results_outside_the_working_directory_stops_the_run(tmp_path):
    (tmp_path / "work").mkdir()
    shutil.copy(DATA / "knapp2017_write_csv2.csv", tmp_path / "work/knapp.csv")
    config = "results: ../out\nanalyses:\n  a:\n    title: t\n    data: knapp.csv\n    columns: {study_id: id}\n"
    result = snakemake(tmp_path / "work", config)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "my.yaml, line 1 (results): '../out' leads outside the working directory" in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.workflow
def test_a_default_config_snakemake_cannot_read_is_named(tmp_path):
    """The default config is read by the Snakefile's configfile directive: metarepro reads it first."""
    (tmp_path / "config").mkdir()
    (tmp_path / "config/config.yaml").write_bytes((REPO / "config/config.yaml").read_text().encode("utf-16"))
    cmd = [*SNAKEMAKE, "--dry-run"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "metarepro: config/config.yaml: the file is UTF-16 (Windows 'Unicode') text, not UTF-8" in result.stderr
