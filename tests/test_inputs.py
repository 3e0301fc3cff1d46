"""Inputs as researchers have them (issue 9): sheets written by R and Excel, configs with mistakes.

Each test trips one case with a sheet or config under tests/data/inputs/ (or a few lines written
here) and checks for the right result or a one-line message naming file, line, column and the fix.
"""

import time

import numpy as np
from conftest import sheet_from_columns

from metarepro.analysis import Settings, compute_effects


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
