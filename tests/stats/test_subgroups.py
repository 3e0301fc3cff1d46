"""Subgroup analysis against R metafor 3.8-1.

Reference: tests/reference/metafor_reference_extra.json, written by tests/reference/generate_metafor_reference_extra.R
(dat.bcg, RR, subgroups by alloc): per-subgroup ``rma(yi, vi, subset = alloc == g, method, test)``, the mixed-effects
test ``rma(yi, vi, mods = ~ factor(alloc))`` and the between-subgroup Q that script computes in R from the separate
subgroup fits (Q = Σ w_g (est_g − est_FE)², w_g = 1/se_g²).
"""

import numpy as np
import pytest
from conftest import assert_close, load_reference

from metarepro.stats.subgroups import between_q, subgroup_analysis

EXTRA = load_reference("metafor_reference_extra.json")
BCG = EXTRA["datasets"][0]
ANALYSES = [a for a in BCG["analyses"] if "subgroups" in a]
PER_GROUP = {"estimate": "estimate", "se": "se", "zval": "zval", "pval": "pval", "ci_low": "ci_lb",
             "ci_high": "ci_ub", "tau2": "tau2", "i2": "I2", "q": "QE", "q_p": "QEp", "k": "k"}  # fmt: skip


def fit(analysis):
    return subgroup_analysis(BCG["escalc"]["yi"], BCG["escalc"]["vi"], BCG["moderators"]["alloc"],
                             method=analysis["method"], test=analysis["test"])  # fmt: skip


def test_reference_has_subgroups():
    assert EXTRA["metafor_version"] == "3.8.1"
    assert len(ANALYSES) == 4


@pytest.mark.parametrize("analysis", ANALYSES, ids=lambda a: f"{a['method']}-{a['test']}")
def test_subgroup_fits_match_metafor(analysis):
    result = fit(analysis)
    assert result.levels == ("alternate", "random", "systematic")
    for level in analysis["subgroups"]["levels"]:
        i = result.levels.index(level["level"])
        for ours, theirs in PER_GROUP.items():
            assert_close(getattr(result.fits, ours)[i], level[theirs], f"{level['level']} {ours}")
    table = result.table()
    assert list(table.index) == list(result.levels)


@pytest.mark.parametrize("analysis", ANALYSES, ids=lambda a: f"{a['method']}-{a['test']}")
def test_tests_of_subgroup_differences_match(analysis):
    result = fit(analysis)
    between = analysis["subgroups"]["between"]
    assert_close(result.Q_between, between["Q"], "Q_between")
    assert result.Q_between_df == between["df"]
    assert_close(result.Q_between_p, between["pval"], "Q_between p")
    assert_close(result.estimate_pooled, between["est_FE"], "pooled")
    mixed = analysis["metareg_subgroup"]
    assert_close(result.QM, mixed["QM"], "QM")
    assert_close(result.QM_df, mixed["QMdf"], "QM df")
    assert_close(result.QM_p, mixed["QMp"], "QM p")
    assert_close(result.moderator_test.tau2, mixed["tau2"], "common tau2")


def test_between_q_closed_form():
    """est = (0, 1), se = (1, 1): pooled 0.5, Q = 0.25 + 0.25 = 0.5 on 1 df, p = P(χ²₁ > 0.5) = 0.4795001221869535."""
    q, df, p, pooled = between_q([0.0, 1.0], [1.0, 1.0])
    assert (q, df, pooled) == (0.5, 1, 0.5)
    assert_close(p, 0.4795001221869535, "p")


def test_single_study_subgroup_under_knha_uses_z():
    """A subgroup of one study: estimate yᵢ, se √vᵢ, z-based CI (metafor switches to test = 'z' when k = 1)."""
    yi, vi = [0.1, 0.3, 0.2, 0.5], [0.04, 0.05, 0.06, 0.09]
    result = subgroup_analysis(yi, vi, ["a", "a", "a", "b"], method="REML", test="knha")
    i = result.levels.index("b")
    assert result.fits.k[i] == 1
    assert_close(result.fits.estimate[i], 0.5, "estimate")
    assert_close(result.fits.se[i], 0.3, "se")
    assert_close(result.fits.ci_high[i], 0.5 + 1.959963984540054 * 0.3, "ci_high")
    assert np.isfinite(result.QM)
