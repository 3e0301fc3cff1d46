"""print(result) reads as metafor's print: the text of tests/reference/print/*.txt, written by
tests/reference/generate_print_reference.R (metafor 3.8-1) on the same data.

Lines are compared token by token with whitespace collapsed (column alignment is cosmetic); numbers
are printed with 4 decimals, so two printed numbers may differ by one unit in the last place when the
value lies at a rounding boundary (e.g. 5.69866860 shown as 5.6986 by metafor): tolerance 1.5e-4.
"""

import json

import numpy as np
import pandas as pd
import pytest
from print_reference import DATA, assert_prints_like_metafor

from metarepro import rma
from metarepro.stats import bias, influence
from metarepro.stats.metareg import design_matrix, rma_mods


def knapp_fit(test):
    data = DATA["knapp2017"]
    X = design_matrix(pd.DataFrame({"difficulty": data["difficulty"]}), ["difficulty"])
    return rma_mods(data["yi"], data["vi"], X, test=test)


NORMAND, HACKSHAW = DATA["normand1999"], DATA["hackshaw1998"]
CASES = {
    "rma_reml_z": lambda: rma(NORMAND["yi"], NORMAND["vi"]),
    "rma_reml_knha": lambda: rma(NORMAND["yi"], NORMAND["vi"], test="knha"),
    "rma_ee": lambda: rma(NORMAND["yi"], NORMAND["vi"], method="FE"),  # metafor's older name of EE
    "mods_reml_z": lambda: knapp_fit("z"),
    "mods_reml_knha": lambda: knapp_fit("knha"),
    "regtest_rma": lambda: bias.regtest(HACKSHAW["yi"], HACKSHAW["vi"]),
    "regtest_lm": lambda: bias.regtest(HACKSHAW["yi"], HACKSHAW["vi"], model="lm"),
    "trimfill_l0": lambda: bias.trimfill(HACKSHAW["yi"], HACKSHAW["vi"], method="EE"),
    "leave1out": lambda: influence.leave1out(NORMAND["yi"], NORMAND["vi"]),
}


@pytest.mark.parametrize("case", CASES)
def test_prints_like_metafor(case):
    result = CASES[case]()
    assert_prints_like_metafor(result, case)
    assert repr(result) == str(result)
    assert result._repr_html_().startswith("<pre>") and "&lt;" not in str(result)


def test_to_frame_and_to_dict():
    fit = rma(NORMAND["yi"], NORMAND["vi"])
    frame = fit.to_frame()
    assert frame.shape[0] == 1 and frame["estimate"].iloc[0] == fit.estimate
    assert knapp_fit("z").to_frame().index.tolist() == ["intrcpt", "difficulty"]
    loo = influence.leave1out(NORMAND["yi"], NORMAND["vi"])
    assert len(loo.to_frame()) == 9 and loo.to_dict()["estimate"] == list(loo.estimate)
    filled = bias.trimfill(HACKSHAW["yi"], HACKSHAW["vi"], method="EE")
    assert filled.to_frame()["fill"].sum() == filled.k0 == 7
    assert filled.to_dict()["fit"]["k"] == 44
    json.dumps(bias.regtest(HACKSHAW["yi"], HACKSHAW["vi"]).to_dict())  # plain values only


def test_rma_drops_missing_rows_with_a_note_as_metafor():
    yi, vi = np.array([*NORMAND["yi"], np.nan]), np.array([*NORMAND["vi"], 0.1])
    with pytest.warns(UserWarning, match="1 studies with NAs omitted from model fitting"):
        fit = rma(yi, vi)
    assert fit.k == 9 and fit.estimate == rma(NORMAND["yi"], NORMAND["vi"]).estimate


def test_level_as_a_proportion_is_read_as_metafor_reads_it():
    assert rma(NORMAND["yi"], NORMAND["vi"], level=0.95).ci_low == rma(NORMAND["yi"], NORMAND["vi"]).ci_low
    with pytest.raises(ValueError, match="level 0.05 is ambiguous"):
        rma(NORMAND["yi"], NORMAND["vi"], level=0.05)


def test_a_batch_prints_a_one_line_summary():
    from metarepro import rma_batch

    fits = rma_batch(np.array([NORMAND["yi"], HACKSHAW["yi"][:9]]), np.array([NORMAND["vi"], HACKSHAW["vi"][:9]]))
    assert str(fits).startswith("RmaResult: a batch of 2 fits") and len(fits.to_frame()) == 2
    assert_prints_like_metafor(fits[0], "rma_reml_z")
