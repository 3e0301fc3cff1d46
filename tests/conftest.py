"""Shared test helpers: the committed R metafor reference values and sheet construction."""

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from metarepro.inputs.sheet import IDENTITY, LINE, NUMERIC

REFERENCE_DIR = Path(__file__).parent / "reference"
REPO = Path(__file__).parent.parent


def load_reference(name="metafor_reference.json"):
    """Values written by tests/reference/generate_*.R (R metafor 3.8-1, tight convergence)."""
    return json.loads((REFERENCE_DIR / name).read_text())


def uncapped_reference(name, reference):
    """A metafor fit record with its capped Q-profile bounds replaced by the roots themselves.

    metafor's confint stops at max(100, 10 tau2) and reports that limit with ub.sign/lb.sign ">"; the roots
    (searched up to tau2.max = 1e12) are in qprofile_reference.json, from generate_qprofile_reference.R.
    """
    expected = dict(reference)
    roots = {(f["case"], f["method"]): f for f in load_reference("qprofile_reference.json")["fits"]}
    for side, sign in (("high", "confint_ub_sign"), ("low", "confint_lb_sign")):
        if reference.get(sign) == ">":
            for field in (f"tau2_ci_{side}", f"i2_ci_{side}"):
                expected[field] = roots[(name, reference["method"])][field]
    return expected


def as_float(value):
    return math.nan if value is None else value


def assert_close(ours, reference, name, rtol=1e-8, atol=1e-10):
    """metafor agreement: relative 1e-8, absolute 1e-10 near zero; null in R must be NaN here."""
    expected = np.asarray([as_float(v) for v in np.atleast_1d(reference)], dtype=float)
    actual = np.atleast_1d(np.asarray(ours, dtype=float))
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, equal_nan=True, err_msg=name)


def sheet_from_columns(columns: dict) -> pd.DataFrame:
    """A parsed sheet (as read_sheet returns it) from column arrays."""
    k = len(next(iter(columns.values())))
    frame = pd.DataFrame({LINE: np.arange(k) + 2})
    for name in IDENTITY:
        frame[name] = [f"s{i + 1}" for i in range(k)] if name in ("study_id", "study") else ""
    for name in NUMERIC:
        frame[name] = np.asarray(columns[name], dtype=float) if name in columns else np.nan
    return frame


def run_config_in(workdir, config_text: str) -> Path:
    """metarepro.jobs.run.run_config on ``config_text`` (written to ``workdir/my.yaml``), run in ``workdir``; its
    results folder (the config's paths are relative to ``workdir``, as for the workflow)."""
    from metarepro.jobs.run import run_config

    workdir = Path(workdir)
    (workdir / "my.yaml").write_text(config_text)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(workdir)
        run_config("my.yaml")
    return workdir / "results"


# Fixtures that run the whole pipeline: a test using one is a workflow test whatever its module says.
WHOLE_PIPELINE_FIXTURES = {"default_run", "example_runs"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if WHOLE_PIPELINE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.workflow)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


@pytest.fixture(scope="session")
def default_run(tmp_path_factory):
    """The README's main job (the default config on the default data), run once in a temporary copy."""
    import shutil
    import subprocess
    import sys

    workdir = tmp_path_factory.mktemp("default")
    shutil.copytree(REPO / "data", workdir / "data")
    shutil.copytree(REPO / "config", workdir / "config")
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--cores", "2",
           "--configfile", "config/config.yaml"]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, cwd=workdir)
    assert result.returncode == 0, result.stderr[-3000:]
    # what the researcher saw (tests/workflow/test_snakemake_native.py)
    (workdir / "terminal.txt").write_text(result.stderr)
    return workdir
