"""Workflow tests of faults during a run, on one small analysis (each runs the workflow two or three times, 10-20 s).

A cancelled run (SIGTERM to Snakemake's process group, what a CI cancel or scancel sends) ends, and the same command
afterwards completes with the results of an uninterrupted run. Snakemake 9.27.1's SIGTERM handler takes the
scheduler's lock, which the main thread holds while it records a finished job; a SIGTERM then deadlocked the run
(before the workaround in workflow/rules/common.smk, defer_sigterm_handler, this test hung in 6 of 7 tries).

A sheet edited while its analysis runs fails the run, and the next run analyses the edited sheet (before: exit 0,
and `snakemake -n` planned nothing).
"""

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO

pytestmark = pytest.mark.workflow

SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--cores", "2"]
CONFIG = """
figure_formats: [svg]
analyses:
  los_smd:
    title: "LOS, SMD"
    data: sheet.csv
    where: {marker: length_of_stay}
"""
ENDS_WITHIN = 60  # seconds; the cancelled run takes about 2 s


def workdir(path: Path) -> Path:
    path.mkdir()
    shutil.copy(REPO / "data/raw/normand1999_stroke_los.csv", path / "sheet.csv")
    (path / "my.yaml").write_text(CONFIG)
    return path


def snakemake(cwd, *args):
    done = subprocess.run([*SNAKEMAKE, "--configfile", "my.yaml", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]


def cancel_while_recording_a_job(cwd) -> tuple[float, str]:
    """Start the workflow in its own process group and SIGTERM the group when Snakemake writes its first record of
    a finished job's outputs (.snakemake/metadata: it holds the scheduler's lock then). Returns the seconds from the
    signal to the end, and the log. A run that has not ended after ENDS_WITHIN seconds is dumped (faulthandler) and
    killed, and the test fails."""
    log_path = cwd / "snakemake.log"
    with open(log_path, "w") as log:
        run = subprocess.Popen([*SNAKEMAKE, "--configfile", "my.yaml"], cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True, env={**os.environ, "PYTHONFAULTHANDLER": "1"})  # fmt: skip
        metadata, started = cwd / ".snakemake/metadata", time.monotonic()
        while not (metadata.is_dir() and any(metadata.iterdir())):
            assert run.poll() is None, f"the run ended before a job finished:\n{log_path.read_text()[-3000:]}"
            assert time.monotonic() - started < 300, "no job finished in 300 s"
            time.sleep(0.001)
        os.killpg(run.pid, signal.SIGTERM)
        signalled = time.monotonic()
        try:
            run.wait(timeout=ENDS_WITHIN)
        except subprocess.TimeoutExpired:
            os.kill(run.pid, signal.SIGABRT)  # faulthandler writes every thread's stack into the log
            time.sleep(1)
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
            pytest.fail(f"the cancelled run had not ended after {ENDS_WITHIN} s:\n{log_path.read_text()[-6000:]}")
    return time.monotonic() - signalled, log_path.read_text()


def test_a_cancelled_run_ends_and_the_same_command_completes_it(tmp_path):
    cancelled = workdir(tmp_path / "cancelled")
    seconds, log = cancel_while_recording_a_job(cancelled)
    assert seconds < ENDS_WITHIN
    assert "Will exit after finishing currently running jobs" in log  # Snakemake's own SIGTERM handling ran

    # what a user does after a cancel (README): unlock (needed only if the run was killed), then the same command
    snakemake(cancelled, "--unlock")
    snakemake(cancelled)
    uninterrupted = workdir(tmp_path / "uninterrupted")
    snakemake(uninterrupted)
    files = sorted(p.relative_to(uninterrupted) for p in (uninterrupted / "results").rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(cancelled) for p in (cancelled / "results").rglob("*") if p.is_file())
    for file in files:
        assert (cancelled / file).read_bytes() == (uninterrupted / file).read_bytes(), file


def test_a_sheet_edited_while_its_analysis_runs_is_analysed_again(tmp_path):
    edited = workdir(tmp_path / "edited")
    sheet = edited / "sheet.csv"
    with open(edited / "snakemake.log", "w") as log:
        run = subprocess.Popen([*SNAKEMAKE, "--configfile", "my.yaml"], cwd=edited, stdout=log,
                               stderr=subprocess.STDOUT)  # fmt: skip
        first_table, started = edited / "results/los_smd/effects.csv", time.monotonic()
        while not first_table.exists():  # the job wrote its first table and now draws its figures
            assert run.poll() is None and time.monotonic() - started < 300, (edited / "snakemake.log").read_text()
            time.sleep(0.001)
        with sheet.open("a") as handle:
            handle.write("normand_10,Added,2001,length_of_stay,40,30,12,41,36,14,days,added,added\n")
        assert run.wait(timeout=300) != 0
    output = (edited / "snakemake.log").read_text()
    # the analysis job notices (or, on a slow machine where it had just ended, the report job)
    assert re.search(r"metarepro: sheet\.csv changed (while analysis los_smd ran|after analysis los_smd read it) "
                     r"\(sha256 read \w{12}\.\.\., now \w{12}\.\.\.\); its results describe the old sheet: run again",
                     output), output[-3000:]  # fmt: skip

    planned = subprocess.run([*SNAKEMAKE, "--configfile", "my.yaml", "--dry-run"], cwd=edited, capture_output=True,
                             text=True, timeout=300)  # fmt: skip
    assert re.search(r"^analysis_los_smd +1$", planned.stdout, flags=re.M), planned.stdout + planned.stderr
    snakemake(edited)
    pooled = json.loads((edited / "results/los_smd/pooled.json").read_text())
    assert pooled["sheet_sha256"] == hashlib.sha256(sheet.read_bytes()).hexdigest() and pooled["k"] == 10
