"""Sentences of the report that were wrong (issue 20, "Wrong today"): each test names what it caught.

Expected values come from R metafor (``tests/reference/generate_bias_reference.R`` → ``bias_reference.json``,
whose regtest entries carry the test line ``print.regtest`` printed), from the Cochrane Handbook's wording
(quoted where used), or from constructed inputs whose answer is visible in the test.
"""

import re

import numpy as np
import pandas as pd
import pytest
from conftest import load_reference

from metarepro.analysis import Settings
from metarepro.report import _bias
from metarepro.steps import sensitivity

BIAS = load_reference("bias_reference.json")


def included_rows(yi, vi):
    k = len(yi)
    ids = [f"s{i}" for i in range(k)]
    return pd.DataFrame({"line": np.arange(2, k + 2), "study_id": ids, "study": ids, "yi": yi, "vi": vi,
                         "weight": 100 / k})  # fmt: skip


def _egger_cases():
    return [pytest.param(ds, a, id=f"{ds['name']}-{a['method']}-{a['test']}")
            for ds in BIAS["datasets"] if ds["name"] in ("bcg_logRR", "normand1999_SMD")
            for a in ds["analyses"] if a["method"] in ("REML", "DL")]  # fmt: skip


def _row(page, test):
    """The (result, p) cells of one row of the bias table."""
    match = re.search(rf'<td class="text">{re.escape(test)}</td><td class="text">([^<]*)</td><td>([^<]*)</td>', page)
    assert match, test
    return match.group(1), match.group(2)


def _printed_cells(printed):
    """metafor's "t = -0.7812, df = 11, p = 0.4512" as our cells: ("t = -0.7812, df = 11", "0.4512");
    "p < .0001" becomes the table's "<.0001"."""
    statistic, p = printed.split(", p ")
    return statistic, p.removeprefix("= ").replace("< ", "<")


@pytest.mark.parametrize(("ds", "a"), _egger_cases())
def test_egger_tests_are_labelled_as_metafor_prints_them(ds, a):
    """Caught: the mixed-effects Egger test was labelled "z = 3.4" under Knapp–Hartung, where metafor prints
    "t = 3.3968, df = 18, p = 0.0032" (bias.json gave no kind or df); the classic test's "t(18) = 2.13" is now
    metafor's form too. Expected: the test line R's print.regtest wrote into bias_reference.json."""
    rows = included_rows(np.array(ds["yi"]), np.array(ds["vi"]))
    record = sensitivity.publication_bias(rows, Settings(method=a["method"], test=a["test"])).record
    assert record["egger_statistic"] == ("t" if a["test"] == "knha" else "z")
    assert (record["egger_df"] is None) == (a["test"] == "z")
    page = _bias(record)
    assert _row(page, "Egger (mixed-effects, sei as predictor)") == _printed_cells(a["regtest"]["rma_sei"]["printed"])
    assert _row(page, "Egger (classic weighted regression)") == _printed_cells(a["regtest"]["lm_sei"]["printed"])
