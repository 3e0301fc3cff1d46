"""Sampling covariances (``vcalc``) and aggregation (``aggregate``) against R metafor 3.8-1.

Reference: tests/reference/rma_mv_reference.json (tests/reference/generate_rma_mv_reference.R), dat.knapp2017 as
in metafor's help page for vcalc: patient groups sharing one control group (``grp1``/``grp2``, sizes
``n_sz``/``n_hc``) and tasks/difficulties within studies with the help page's correlation matrix R; plus one
assumed rho = 0.6 and ``aggregate(escalc, cluster = study, V = V)`` / ``rho = 0.6`` / ``weighted = FALSE``.
vcalc is closed form (a few operations per entry): FORMULA. aggregate solves with each block: FORMULA relative
to the block's condition number, well below 1e-12 here.
"""

import numpy as np
import pytest
from conftest import assert_close
from test_rma_mv import CASES, knapp_V
from tolerances import FORMULA

from metarepro.stats.vcalc import aggregate, vcalc

CASE = CASES["knapp2017"]
D = CASE["data"]
R_MATRIX = (CASE["R"]["names"], np.array(CASE["R"]["rows"], dtype=float))


def blocks_close(ours, which):
    ref = knapp_V(CASE, which)
    assert list(ours.blocks) == list(ref.blocks)
    for c, block in ref.blocks.items():
        np.testing.assert_allclose(ours.blocks[c], block, rtol=FORMULA, atol=0, err_msg=f"{which} study {c}")


def test_shared_control_and_task_correlations():
    V = vcalc(D["vi"], D["study"], obs=D["task_diff"], rho=R_MATRIX, grp1=D["group1"], grp2=D["group2"],
              w1=D["n_sz"], w2=D["n_hc"])  # fmt: skip
    blocks_close(V, "shared_R")


def test_shared_control_only():
    V = vcalc(D["vi"], D["study"], grp1=D["group1"], grp2=D["group2"], w1=D["n_sz"], w2=D["n_hc"])
    blocks_close(V, "shared")
    # study 3: four patient groups against one control group of 37 (hand check of one entry)
    b = V.blocks[3]
    n_sz, vi = np.array(D["n_sz"])[3:5], np.array(D["vi"])[3:5]
    r = (1 / 37) / np.sqrt((1 / n_sz[0] + 1 / 37) * (1 / n_sz[1] + 1 / 37))
    assert_close(b[0, 1], r * np.sqrt(vi[0] * vi[1]), "cov", rtol=FORMULA, atol=0)


def test_one_assumed_correlation():
    blocks_close(vcalc(D["vi"], D["study"], obs=D["task_diff"], rho=0.6), "rho")


@pytest.mark.parametrize("name", ["V", "rho", "unweighted"])
def test_aggregate_matches_metafor(name):
    ref = CASE["aggregate"][name]
    if name == "rho":
        _, y, v = aggregate(D["yi"], D["vi"], D["study"], rho=0.6)
    else:
        _, y, v = aggregate(D["yi"], knapp_V(CASE), weighted=name == "V")
    assert_close(y, ref["yi"], f"{name} yi", rtol=1e-12, atol=0)
    assert_close(v, ref["vi"], f"{name} vi", rtol=1e-12, atol=0)


def test_missing_rho_is_an_error():
    with pytest.raises(ValueError, match="give rho"):
        vcalc(D["vi"], D["study"], obs=D["task_diff"])
    with pytest.raises(ValueError, match="no row/column for 3.1"):
        vcalc([0.1, 0.1], [1, 1], obs=["1.1", "3.1"], rho=R_MATRIX)
