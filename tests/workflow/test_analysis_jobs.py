"""Several analyses per Snakemake job (config analyses_per_job): each analysis in its own folder, the same files as
one job per analysis, and Snakemake's incremental behaviour per job (dry runs of a finished folder).

Three analyses with analyses_per_job: 2 are two jobs, blocks in config order: ``analyses_1`` runs los_smd (it reads
sheet.csv) and los_md (other.csv), ``analysis_los_smd_dl`` runs los_smd_dl alone (sheet.csv).
"""

import json
import re
import shutil
import subprocess
import sys

import pytest
from conftest import REPO

pytestmark = pytest.mark.workflow

SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--cores", "2"]
CONFIG = """
figure_formats: [svg]
analyses_per_job: 2
analyses:
  los_smd:
    title: "LOS, SMD"
    data: sheet.csv
    where: {marker: length_of_stay}
  los_md:
    title: "LOS, MD"
    data: other.csv
    measure: MD
  los_smd_dl:
    title: "LOS, SMD, DL"
    data: sheet.csv
    method: DL
"""
ADDED = """  los_md_pm:
    title: "LOS, MD, PM"
    data: other.csv
    measure: MD
    method: PM
"""
ROW = "normand_10,Added,2001,length_of_stay,40,30,12,41,36,14,days,added,added\n"  # a valid row of the sheet


def snakemake(cwd, config, *args):
    (cwd / "run.yaml").write_text(config)
    done = subprocess.run([*SNAKEMAKE, "--configfile", "run.yaml", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout + done.stderr


def planned(cwd, config, *targets):
    """The jobs a dry run plans ({rule: count}), without the total."""
    jobs = dict(re.findall(r"^(\w+) +(\d+)$", snakemake(cwd, config, "--dry-run", *targets), flags=re.M))
    jobs.pop("total", None)
    return jobs


def workdir(path, config):
    path.mkdir()
    shutil.copy(REPO / "data/raw/normand1999_stroke_los.csv", path / "sheet.csv")
    shutil.copy(REPO / "data/raw/normand1999_stroke_los.csv", path / "other.csv")
    snakemake(path, config)
    return path


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    return workdir(tmp_path_factory.mktemp("jobs") / "chunked", CONFIG)


def test_two_jobs_run_three_analyses_each_in_its_own_folder_and_log(finished):
    assert planned(finished, CONFIG, "--forceall") == {"analyses_1": "1", "analysis_los_smd_dl": "1", "report": "1",
                                                       "all": "1"}  # fmt: skip
    for name in ("los_smd", "los_md", "los_smd_dl"):
        folder = finished / "results" / name
        assert (folder / "pooled.json").exists() and (folder / "forest.svg").exists()
        assert not (folder / "forest.png").exists()  # the default figure_formats: SVG only
        assert (finished / f"logs/analysis/{name}.log").exists()


def test_the_files_are_those_of_one_job_per_analysis_byte_for_byte(finished, tmp_path):
    """Analyses run one after another in one process leave nothing behind that changes the next one's files."""
    alone = workdir(tmp_path / "alone", CONFIG.replace("analyses_per_job: 2", "analyses_per_job: 1"))
    files = sorted(p.relative_to(alone) for p in (alone / "results").rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(finished) for p in (finished / "results").rglob("*") if p.is_file())
    for file in files:
        if file.name != "report.html":  # the page names the config file and its hash, which differ
            assert (alone / file).read_bytes() == (finished / file).read_bytes(), file


def test_a_change_reruns_the_job_of_the_changed_analysis_only(finished):
    """Editing one analysis's settings plans its job (and the report), not the other job; so does its own target
    rule; adding an analysis plans the job it joins; editing a sheet plans the jobs of the analyses that read it."""
    assert "Nothing to be done" in snakemake(finished, CONFIG, "--dry-run")
    edited = CONFIG.replace("method: DL", "method: PM")
    assert planned(finished, edited) == {"analysis_los_smd_dl": "1", "report": "1", "all": "1"}
    assert planned(finished, edited, "analysis_los_smd_dl") == {"analysis_los_smd_dl": "1"}
    assert planned(finished, CONFIG.replace("measure: MD", "measure: MD\n    test: knha")) == {
        "analyses_1": "1", "report": "1", "all": "1"}  # fmt: skip
    # a fourth analysis joins the last block (los_smd_dl's): the first job keeps its analyses
    assert planned(finished, CONFIG + ADDED) == {"analyses_2": "1", "report": "1", "all": "1"}
    # two more make a third job, and still no other job reruns (dealt round robin, all five would move: [1, 4],
    # [2, 5], [3])
    fifth = ADDED.replace("los_md_pm", "los_md_sj").replace("method: PM", "method: SJ")
    assert planned(finished, CONFIG + ADDED + fifth) == {"analyses_2": "1", "analysis_los_md_sj": "1", "report": "1",
                                                          "all": "1"}  # fmt: skip
    with (finished / "other.csv").open("a") as handle:
        handle.write(ROW)
    assert planned(finished, CONFIG) == {"analyses_1": "1", "report": "1", "all": "1"}


def test_a_rerun_job_reuses_its_unchanged_analyses_and_computes_the_changed_ones(tmp_path):
    """Adding los_md_pm reruns the job of los_smd_dl (analyses_2): los_smd_dl gets its kept files back (same bytes,
    newer files, a log that says so), los_md_pm is computed; an edit of other.csv reruns analyses_1, where los_md
    (reads other.csv) is computed again and los_smd (sheet.csv) reused; reuse_unchanged=False computes all."""
    path = workdir(tmp_path / "reuse", CONFIG)

    def state(name):
        folder = path / "results" / name
        return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.iterdir()}

    def reused(name):
        return "its files were copied from" in (path / f"logs/analysis/{name}.log").read_text()

    before = {name: state(name) for name in ("los_smd", "los_md", "los_smd_dl")}
    snakemake(path, CONFIG + ADDED)
    after = state("los_smd_dl")
    assert reused("los_smd_dl") and not reused("los_md_pm")
    assert {f: b for f, (b, _) in after.items()} == {f: b for f, (b, _) in before["los_smd_dl"].items()}
    assert all(after[f][1] > before["los_smd_dl"][f][1] for f in after)  # newer than the sheet, as written files are
    assert state("los_smd") == before["los_smd"]  # the other job did not run
    assert "Nothing to be done" in snakemake(path, CONFIG + ADDED, "--dry-run")

    with (path / "other.csv").open("a") as handle:
        handle.write(ROW)
    snakemake(path, CONFIG + ADDED)
    assert reused("los_smd") and not reused("los_md")
    assert json.loads((path / "results/los_md/pooled.json").read_text())["k"] == 10  # the added row (9 before)

    snakemake(path, CONFIG + ADDED, "--forceall", "--config", "reuse_unchanged=False")
    assert not any(reused(name) for name in ("los_smd", "los_md", "los_smd_dl", "los_md_pm"))
