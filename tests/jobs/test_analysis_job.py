"""One analysis in memory (issue 18): an analysis job reads its sheet once, builds its settings once, fits each model
once and reads nothing it wrote; the files it writes are those metarepro.jobs.outputs names.

The job is watched from outside (a profile hook on the fitting functions, the interpreter's ``open``), so the
checks do not depend on how the job is written. The sheet is data/raw/normand1999_stroke_los.csv (nine studies) with
a constructed ``sample`` column for a subgroup analysis and its own ``year`` as moderator.
"""

import builtins
import io
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import REPO
from tolerances import ITERATIVE

import metarepro.inputs.sheet as sheet_module
import metarepro.pipeline.analysis as analysis_module
import metarepro.stats.metareg as metareg
import metarepro.stats.rma as rma_module
from metarepro.jobs.outputs import analysis_files
from metarepro.jobs.run import analysis_job

ANALYSIS = {"title": "LOS", "data": "sheet.csv", "measure": "MD", "subgroups": ["sample"], "moderators": ["year"],
            "permutations": 0}  # fmt: skip
CONFIG = {"name": "los", "defaults": {"method": "REML", "test": "knha"}, "analysis": ANALYSIS}


@pytest.fixture(scope="module")
def watched(tmp_path_factory):
    """Run the job once, recording every fit (function and data), every sheet read and every file opened."""
    folder = tmp_path_factory.mktemp("job")
    sheet = pd.read_csv(REPO / "data/raw/normand1999_stroke_los.csv")
    sheet["sample"] = ["a", "b"] * 4 + ["a"]
    sheet["year"] = np.arange(1990, 1999)
    sheet.to_csv(folder / "sheet.csv", index=False)
    out = folder / "out"
    calls, opened = [], []
    # rma_batch_tests: every rma_batch call is one, and the estimator table's fit of both tests
    codes = {rma_module.rma_batch_tests.__code__: "rma_batch", metareg.rma_mods.__code__: "rma_mods",
             sheet_module.read_sheet.__code__: "read_sheet",
             analysis_module.Settings.from_config.__func__.__code__: "Settings"}  # fmt: skip

    def profile(frame, event, arg):
        if event == "call" and frame.f_code in codes:
            calls.append((codes[frame.f_code], dict(frame.f_locals)))

    real_open = builtins.open

    def watching_open(file, mode="r", *args, **kwargs):
        if isinstance(file, str | Path) and "r" in mode and "+" not in mode:
            opened.append(Path(file).resolve())
        return real_open(file, mode, *args, **kwargs)

    builtins.open, io.open = watching_open, watching_open
    sys.setprofile(profile)
    try:
        analysis_job(folder / "sheet.csv", CONFIG, out, formats=("svg",))
    finally:
        sys.setprofile(None)
        builtins.open, io.open = real_open, real_open
    return {"calls": calls, "opened": opened, "out": out.resolve(), "sheet": (folder / "sheet.csv").resolve()}


def test_the_job_writes_the_files_outputs_names(watched):
    assert sorted(p.name for p in watched["out"].iterdir()) == sorted(analysis_files(ANALYSIS, ("svg",)))


def test_the_job_reads_nothing_it_wrote(watched):
    assert [p for p in watched["opened"] if p.is_relative_to(watched["out"])] == []


def test_the_sheet_is_read_once_and_the_settings_built_once(watched):
    counts = Counter(name for name, _ in watched["calls"])
    assert counts["read_sheet"] == 1 and counts["Settings"] == 1


def _key(name, args):
    """What a fit fitted: the function, its data (bytes of every array, a refit batch by its arrays) and options."""
    parts = [name]
    for key in ("yi", "vi", "X"):
        value = args.get(key)
        if hasattr(value, "y") and hasattr(value, "mask"):  # a prepared batch of refits
            value = np.where(value.mask, value.y, np.nan), np.where(value.mask, value.v, np.nan)
        parts.append(None if value is None else b"".join(np.ascontiguousarray(np.asarray(v, dtype=float)).tobytes()
                                                         for v in (value if isinstance(value, tuple) else (value,))))
    parts += [str(args.get(key)) for key in ("method", "test", "tests", "level", "control", "tau2_ci", "btt")]
    return tuple(parts)


def test_the_primary_model_is_fitted_once(watched):
    """The primary fit (nine studies, REML, Knapp-Hartung) serves the estimator table, influence, Baujat, the funnel
    and trim-and-fill (k0 = 0): before issue 18 the job fitted it five more times."""
    fits = [(name, args) for name, args in watched["calls"] if name == "rma_batch"]
    primary = _key(*fits[0])
    assert np.asarray(fits[0][1]["yi"]).shape == (1, 9) and fits[0][1]["method"] == "REML"
    assert sum(_key(*fit) == primary for fit in fits) == 1


def test_no_meta_regression_is_fitted_twice(watched):
    """Egger's mixed-effects regression is PET and gives trim-and-fill's side (both estimators); the subgroup test's
    regression serves the table and the figure; the single-moderator meta-regression is the bubble plot's: four
    regressions (Egger, PEESE, sample, year), each once (before issue 18: nine)."""
    regressions = [_key(name, args) for name, args in watched["calls"] if name == "rma_mods"]
    assert len(regressions) == 4 and len(set(regressions)) == 4


def test_each_estimator_is_fitted_once_for_both_tests(watched):
    """The estimator table (every τ² estimator × tests z and knha) fits each estimator once and derives both tests
    from that fit (before: one fit per estimator and test); each row is the fit of its own method and test."""
    from metarepro.stats.rma import TESTS, rma
    from metarepro.stats.tau2 import METHODS

    both = [args["method"] for name, args in watched["calls"] if name == "rma_batch" and args["tests"] == TESTS]
    assert sorted(both) == sorted(METHODS)
    table = pd.read_csv(watched["out"] / "estimators.csv")
    # every estimator under both tests, once (the loop below then checks each row)
    assert sorted(zip(table["method"], table["test"], strict=True)) == sorted(
        (method, test) for method in METHODS for test in TESTS)  # fmt: skip
    effects = pd.read_csv(watched["out"] / "effects.csv")
    yi, vi = effects.loc[effects["included"], "yi"], effects.loc[effects["included"], "vi"]
    for row in table.itertuples():  # the single fit solves τ² on its own: two iterative solves (tests/tolerances.py)
        fit = rma(yi, vi, row.method, row.test, row.level)
        np.testing.assert_allclose([row.estimate, row.se, row.pval, row.tau2], [fit.beta, fit.se, fit.pval, fit.tau2],
                                   **ITERATIVE, err_msg=str(row))  # fmt: skip
