"""Every statistic of every estimator and test against R metafor 3.8-1.

Reference: tests/reference/metafor_reference.json, written by tests/reference/generate_metafor_reference.R
(real metadat datasets plus the edge cases k = 2, tau2 = 0 and an extreme variance ratio).
"""

import numpy as np
import pytest
from conftest import assert_close, load_reference, sheet_from_columns, uncapped_reference

from metarepro import rma, rma_batch
from metarepro.pipeline.analysis import Settings, compute_effects

REFERENCE = load_reference()
CASES = {case["name"]: case for case in REFERENCE["cases"]}
FIELDS = (
    "k", "estimate", "se", "zval", "pval", "ci_low", "ci_high", "tau2", "tau2_se", "tau2_ci_low", "tau2_ci_high",
    "tau", "i2", "i2_ci_low", "i2_ci_high", "h2", "q", "q_df", "q_p", "pi_low", "pi_high",
)  # fmt: skip
FITS = [(name, i) for name, case in CASES.items() for i in range(len(case["fits"]))]
FIT_IDS = [f"{n}-{CASES[n]['fits'][i]['method']}-{CASES[n]['fits'][i]['test']}" for n, i in FITS]


def uncapped(name, reference, fit):
    """The reference with metafor's capped Q-profile bounds (sign ">") replaced by the roots themselves;
    ours lie beyond metafor's search limit, and are found (not capped)."""
    for side, sign in (("high", "confint_ub_sign"), ("low", "confint_lb_sign")):
        if reference.get(sign) == ">":
            assert np.all(getattr(fit, f"tau2_ci_{side}") > reference[f"tau2_ci_{side}"])
        assert not np.any(getattr(fit, f"tau2_ci_{side}_capped"))
    return uncapped_reference(name, reference)


def effects_of(case):
    settings = Settings(measure=case["measure"], vtype=case.get("vtype") or "LS")
    return compute_effects(sheet_from_columns(case["input"]), settings)


def test_reference_provenance():
    assert REFERENCE["metafor_version"].startswith("3.8")
    assert len(CASES) >= 5
    measures = {case["measure"] for case in CASES.values()}
    assert {"SMD", "MD", "ROM", "ZCOR", "GEN"} <= measures


@pytest.mark.parametrize("name", CASES)
def test_escalc(name):
    case = CASES[name]
    effects = effects_of(case)
    assert effects["included"].all(), effects["reason"].tolist()
    assert_close(effects["yi"], case["escalc"]["yi"], f"{name} yi")
    assert_close(effects["vi"], case["escalc"]["vi"], f"{name} vi")


@pytest.mark.parametrize(
    ("name", "index"), FITS, ids=[f"{n}-{CASES[n]['fits'][i]['method']}-{CASES[n]['fits'][i]['test']}" for n, i in FITS]
)
def test_fit_matches_metafor(name, index):
    case = CASES[name]
    reference = case["fits"][index]
    effects = effects_of(case)
    fit = rma(effects["yi"], effects["vi"], method=reference["method"], test=reference["test"])
    assert fit.converged
    expected = uncapped(name, reference, fit)
    for field in FIELDS:
        assert_close(getattr(fit, field), expected[field], f"{name} {reference['method']}/{reference['test']} {field}")
    assert_close(fit.weights, reference["weights"], f"{name} weights")


@pytest.mark.parametrize("method", ["REML", "PM", "DL", "EE"])
def test_batch_equals_single_fits(method):
    """A ragged batch (NaN-padded) gives each analysis exactly its single fit, as fitted by metafor."""
    names = list(CASES)[:6]
    effects = [effects_of(CASES[n]) for n in names]
    width = max(len(e) for e in effects)
    yi = np.full((len(names), width), np.nan)
    vi = np.full((len(names), width), np.nan)
    for row, e in enumerate(effects):
        yi[row, : len(e)], vi[row, : len(e)] = e["yi"], e["vi"]
    batch = rma_batch(yi, vi, method=method, test="knha")
    for row, name in enumerate(names):
        reference = next(f for f in CASES[name]["fits"] if f["method"] == method and f["test"] == "knha")
        reference = uncapped(name, reference, batch[row])
        for field in ("estimate", "se", "tau2", "i2", "tau2_ci_high", "pi_low"):
            assert_close(getattr(batch, field)[row], reference[field], f"batch {name} {field}")
