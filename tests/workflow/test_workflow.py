"""End to end: the Snakemake workflow on a researcher's config in a temporary directory.

Expected numbers come from R metafor 3.8-1 (tests/reference/metafor_reference.json, case
normand1999_*), the same data as data/raw/normand1999_stroke_los.csv.
"""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import REPO, assert_close, load_reference, uncapped_reference
from figure_readback import svg_row_texts

from metarepro.present.plots.style import Scale

SNAKEMAKE = [sys.executable, "-m", "snakemake"]
POOLED_FIELDS = (
    "k", "estimate", "se", "ci_low", "ci_high", "pval", "tau2", "tau2_se", "tau2_ci_low", "tau2_ci_high",
    "tau", "i2", "i2_ci_low", "i2_ci_high", "h2", "q", "q_df", "q_p", "pi_low", "pi_high",
)  # fmt: skip
REFERENCE = {case["name"]: case for case in load_reference()["cases"]}
CONFIG = """
figure_formats: [svg, png, pdf]
analyses_per_job: 1  # one job per analysis (several analyses per job: test_analysis_jobs.py)
defaults: {method: REML, test: knha}
analyses:
  los_smd:
    title: "LOS, SMD"
    data: sheet.csv
    where: {marker: length_of_stay}
  los_md_dl:
    title: "LOS, MD"
    data: sheet.csv
    measure: MD
    method: DL
    test: z
"""


def reference_fit(case, method, test):
    return next(f for f in REFERENCE[case]["fits"] if f["method"] == method and f["test"] == test)


def run(workdir, *args):
    """Run as a researcher does: from their own directory, with their config (paths relative to it)."""
    cmd = [*SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--cores", "2", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=workdir)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("wf")
    shutil.copy(REPO / "data/raw/normand1999_stroke_los.csv", workdir / "sheet.csv")
    (workdir / "my.yaml").write_text(CONFIG)
    result = run(workdir, "--configfile", "my.yaml")
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir


@pytest.mark.workflow
def test_runs_exactly_the_researchers_analyses(finished):
    analyses = sorted(p.name for p in (finished / "results").iterdir() if p.is_dir())
    assert analyses == ["los_md_dl", "los_smd"]
    summary = pd.read_csv(finished / "results/summary.csv")
    assert summary["analysis"].tolist() == ["los_smd", "los_md_dl"]


@pytest.mark.workflow
@pytest.mark.parametrize(
    ("analysis", "case", "method", "test"),
    [("los_smd", "normand1999_SMD_LS", "REML", "knha"), ("los_md_dl", "normand1999_MD", "DL", "z")],
)
def test_outputs_match_metafor(finished, analysis, case, method, test):
    out = finished / "results" / analysis
    pooled = json.loads((out / "pooled.json").read_text())
    reference = reference_fit(case, method, test)
    expected = uncapped_reference(case, reference)  # metafor's "> 2054" is found: 2889.45
    for field in POOLED_FIELDS:
        assert_close(pooled[field], expected[field], f"{analysis} {field}")
    assert pooled["converged"] is True and pooled["method"] == method and pooled["test"] == test
    assert pooled["tau2_ci_high_capped"] is False and pooled["tau2_ci_low_capped"] is False
    assert pooled["warnings"] == []
    effects = pd.read_csv(out / "effects.csv")
    assert_close(effects["yi"], REFERENCE[case]["escalc"]["yi"], "yi")
    assert_close(effects["weight"], reference["weights"], "weights")
    estimators = pd.read_csv(out / "estimators.csv")
    assert len(estimators) == 18
    pm = estimators[(estimators["method"] == "PM") & (estimators["test"] == "knha")].iloc[0]
    assert_close(pm["tau2"], reference_fit(case, "PM", "knha")["tau2"], "PM tau2")
    for fmt in ("svg", "png", "pdf"):
        assert (out / f"forest.{fmt}").stat().st_size > 1000


@pytest.mark.workflow
def test_report_is_self_contained(finished):
    page = (finished / "results/report.html").read_text()
    # per analysis: forest, funnel, cumulative, baujat, leave1out and (each is its question's primary analysis)
    # the quality traffic light and the PRISMA section's flow diagram; and the atlas, one figure per scale (SMD, MD)
    assert page.count('<figure class="figure"><svg') == 2 * 7 + 2
    for loads_something in ('src="http', 'href="http', "url(http", "@import", "<script src", "<link "):
        assert loads_something not in page
    assert "LOS, SMD" in page and "LOS, MD" in page


@pytest.mark.workflow
def test_report_assembled_from_sections_is_the_page_rendered_whole(finished, monkeypatch):
    """Each analysis job renders its section (section.html) from its objects, reading nothing it wrote, and the
    report job puts the sections together, drawing the overview figures in two processes: the same section as
    rendering it from the analysis's files (so the objects are what the files hold), and the same page."""
    from metarepro.jobs import overview
    from metarepro.jobs.outputs import REPORT_INPUTS, analysis_files
    from metarepro.present.report import analysis_section

    analyses = yaml.safe_load((finished / "my.yaml").read_text())["analyses"]
    folders = [finished / "results" / name for name in analyses]
    for name, folder in zip(analyses, folders, strict=True):
        whole = overview.read_section(name, analyses[name], folder, analysis_files(analyses[name]))
        assert (folder / "section.html").read_text() == analysis_section(whole)
        assert len(whole.figures) == 4 and not whole.effects.empty  # leave1out, cumulative, baujat, funnel
    inputs = {kind: [folder / file for folder in folders] for kind, file in REPORT_INPUTS.items()}
    monkeypatch.chdir(finished)  # the config's paths as Snakemake gave them
    pages = [overview.build_report(list(analyses), analyses, inputs, reproduction_path="results/reproduction.csv",
                                   config_files=[finished / "my.yaml"], sheets=["sheet.csv"], repo_dir=REPO,
                                   workers=workers) for workers in (1, 2)]  # fmt: skip
    assert pages[0] == pages[1] == (finished / "results/report.html").read_text()


@pytest.mark.workflow
@pytest.mark.parametrize("figure", ["cumulative", "leave1out"])
def test_figures_show_the_rows_of_their_tables(finished, figure):
    """The SVG written by the workflow labels row i with the study of row i of the table written beside it."""
    out = finished / "results/los_smd"
    table = pd.read_csv(out / f"{figure}.csv")
    texts = svg_row_texts((out / f"{figure}.svg").read_text())
    prefix = "+" if figure == "cumulative" else "−"
    assert [texts[f"row{i}-label"] for i in range(len(table))] == [f"{prefix} {s}" for s in table["study"]]
    shown = [texts[f"row{i}-text"] for i in range(len(table))]
    assert shown == [Scale("SMD").text(e, a, b) for e, a, b in zip(table["estimate"], table["ci_low"],
                                                                    table["ci_high"], strict=True)]  # fmt: skip


@pytest.mark.workflow
def test_forest_svg_shows_effects_rows(finished):
    out = finished / "results/los_smd"
    effects = pd.read_csv(out / "effects.csv")
    used = effects[effects["included"]]
    texts = svg_row_texts((out / "forest.svg").read_text())
    assert [texts[f"row{i}-label"] for i in range(len(used))] == used["study"].tolist()
    assert [texts[f"row{i}-text"] for i in range(len(used))] == [
        Scale("SMD").text(*v) for v in used[["yi", "ci_low", "ci_high"]].to_numpy()
    ]


@pytest.mark.workflow
def test_bad_sheet_fails_with_a_clear_message(tmp_path):
    sheet = (REPO / "data/raw/normand1999_stroke_los.csv").read_text().replace("155,55,47", "155,55 days,47", 1)
    (tmp_path / "sheet.csv").write_text(sheet)
    (tmp_path / "my.yaml").write_text(CONFIG)
    result = run(tmp_path, "--configfile", "my.yaml")
    assert result.returncode != 0
    assert "sheet.csv, line 2 (study_id normand_1), column 'mean_cases': '55 days' is not a number" in result.stderr
    # found by the pre-run check of every sheet (issue 21): no job ran, so no job log and no traceback
    assert "Traceback" not in result.stderr and not (tmp_path / "logs/analysis/los_smd.log").exists()


@pytest.mark.workflow
def test_config_typo_fails_with_the_key_named(tmp_path):
    (tmp_path / "my.yaml").write_text(CONFIG.replace("method: DL", "methd: DL"))
    result = run(tmp_path, "--configfile", "my.yaml", "--dry-run")
    assert result.returncode != 0
    assert "methd" in result.stdout + result.stderr


BIAS_KEYS = {
    "egger_z", "egger_p", "egger_t", "egger_t_p", "begg_tau", "begg_p", "trimfill_k0", "trimfill_side",
    "trimfill_estimate", "trimfill_ci_low", "trimfill_ci_high", "fsn_rosenthal",
}  # fmt: skip


@pytest.mark.workflow
def test_sensitivity_moderators_and_bias_outputs(tmp_path):
    """The Passos 2015 example config: every issue-4 output appears and reaches the report."""
    shutil.copytree(REPO / "data", tmp_path / "data")
    result = run(tmp_path, "--configfile", str(REPO / "config/examples/passos2015_ptsd_il6.yaml"))
    assert result.returncode == 0, result.stderr[-3000:]
    out = tmp_path / "results/passos2015_ptsd_il6/passos2015_il6"
    bias = json.loads((out / "bias.json").read_text())
    assert BIAS_KEYS <= set(bias)
    assert bias["low_power_note"] is None and bias["k"] == 15
    small = json.loads((tmp_path / "results/passos2015_ptsd_il6/passos2015_il6_medication_free/bias.json").read_text())
    assert "Cochrane" in small["low_power_note"]  # k = 6 < 10
    assert len(pd.read_csv(out / "leave1out.csv")) == 15 and len(pd.read_csv(out / "influence.csv")) == 15
    assert pd.read_csv(out / "cumulative.csv")["study"].iloc[0] == "Maes 1999"  # earliest year (1999) first
    subgroups = pd.read_csv(out / "subgroups.csv")
    assert sorted(subgroups["subgroup"]) == ["free", "psychotropic"] and subgroups["k"].sum() == 15
    metareg = pd.read_csv(out / "metareg.csv")
    assert metareg["coefficient"].tolist() == ["intrcpt", "year"]
    for figure in ("funnel", "cumulative", "baujat", "leave1out", "forest_subgroups_medication", "bubble_year"):
        assert (out / f"{figure}.svg").exists(), figure  # the default figure_formats: SVG only
        assert not (out / f"{figure}.png").exists() and not (out / f"{figure}.pdf").exists()
    page = (tmp_path / "results/passos2015_ptsd_il6/report.html").read_text()
    assert "Small-study effects" in page and "Published vs reproduced" in page
    assert "Bubble plot of the meta-regression on year" in page


@pytest.mark.workflow
def test_run_config_from_python_writes_what_the_rules_write(finished, tmp_path, monkeypatch):
    """metarepro.jobs.run.run_config (no Snakemake): the same tables, byte for byte, and the same figures."""
    from metarepro.jobs.run import run_config

    shutil.copy(REPO / "data/raw/normand1999_stroke_los.csv", tmp_path / "sheet.csv")
    (tmp_path / "my.yaml").write_text(CONFIG)
    monkeypatch.chdir(tmp_path)
    report = run_config("my.yaml")
    assert report == Path("results/report.html") and report.stat().st_size > 10_000
    ours = {p.relative_to(tmp_path / "results") for p in (tmp_path / "results").rglob("*") if p.is_file()}
    rules = {p.relative_to(finished / "results") for p in (finished / "results").rglob("*")
             if p.is_file() and p.name != "report.zip"}  # fmt: skip
    assert ours == rules
    for path in sorted(p for p in ours if p.suffix in (".csv", ".json")):
        assert (tmp_path / "results" / path).read_text() == (finished / "results" / path).read_text(), path


@pytest.mark.workflow
def test_every_file_written_is_a_declared_output(finished):
    """A job writes exactly its rule's outputs (declared from metarepro.jobs.outputs): every file under results/ has
    Snakemake's record of an output, so nothing is written behind Snakemake's back."""
    import base64

    metadata = finished / ".snakemake/metadata"  # one record per output; a long name is split into "@" folders
    records = [p.relative_to(metadata).parts for p in metadata.rglob("*") if p.is_file()]
    declared = {base64.urlsafe_b64decode("".join(part.lstrip("@") for part in parts)).decode() for parts in records}
    written = {str(p.relative_to(finished)) for p in (finished / "results").rglob("*") if p.is_file()}
    assert written == {name for name in declared if name.startswith("results/")}


@pytest.mark.workflow
def test_editing_one_analysis_reruns_only_it_and_the_report(finished):
    """Snakemake's incremental behaviour: a changed setting of one analysis plans that analysis's job and the report,
    not the other analysis (dry run of the finished folder)."""
    (finished / "edited.yaml").write_text(CONFIG.replace("method: DL", "method: PM"))
    result = run(finished, "--configfile", "edited.yaml", "--dry-run")
    assert result.returncode == 0, result.stderr[-3000:]
    planned = dict(re.findall(r"^(\w+) +(\d+)$", result.stdout, flags=re.M))
    assert planned == {"analysis_los_md_dl": "1", "report": "1", "all": "1", "total": "3"}
    unchanged = run(finished, "--configfile", "my.yaml", "--dry-run")
    assert "Nothing to be done" in unchanged.stdout + unchanged.stderr


BINARY_EXAMPLES = {  # analysis -> case of tests/reference/binary_pipeline_reference.json (metafor 3.8-1)
    "linde2005_or_mh": "linde_or_mh", "linde2005_rr_mh": "linde_rr_mh", "linde2005_or_iv": "linde_or_rma",
    "moore1998_or_peto": "moore_or_peto", "moore1998_rd_mh": "moore_rd_mh",
}  # fmt: skip


@pytest.mark.workflow
@pytest.mark.parametrize("example", ["linde2005", "moore1998"])
def test_binary_example_configs_run_end_to_end(tmp_path, example):
    """The binary-outcome examples through Snakemake: pooled.json as metafor's rma.mh / rma.peto / rma (generated by
    tests/reference/generate_binary_pipeline_reference.R), on the natural scale, and the report says so."""
    shutil.copytree(REPO / "data", tmp_path / "data")
    result = run(tmp_path, "--configfile", str(REPO / f"config/examples/{example}.yaml"))
    assert result.returncode == 0, result.stderr[-3000:]
    reference = json.loads((REPO / "tests/reference/binary_pipeline_reference.json").read_text())["fits"]
    out = tmp_path / "results" / example
    for analysis, case in BINARY_EXAMPLES.items():
        if not analysis.startswith(example):
            continue
        pooled, ref = json.loads((out / analysis / "pooled.json").read_text()), reference[case]
        assert pooled["k"] == ref["k"] and pooled["fit"] == ref["fit"]
        for ours, theirs in (("estimate", "beta"), ("se", "se"), ("ci_low", "ci_lb"), ("ci_high", "ci_ub"),
                             ("i2", "I2"), ("q", "QE")):  # fmt: skip
            assert_close(pooled[ours], ref[theirs], f"{analysis} {ours}")
        if ref["measure"] != "RD":
            assert_close(pooled["estimate_ratio"], ref["back"][0], f"{analysis} estimate_ratio")
        assert (out / analysis / "forest.svg").exists() and (out / analysis / "metafor.R").exists()
    page = (out / "report.html").read_text()
    assert "log scale" in page and "Events/total" in page
