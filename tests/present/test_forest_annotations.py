"""What a forest plot says besides its rows (issue 20): the test for the overall effect and the heterogeneity line
(read back from the figure and compared with pooled.json), the markers of flagged and converted rows with their
legend, the multilevel figure's two labelled diamonds and its weights, the atlas's k = 2 Knapp-Hartung pools.

Data: the default config's IL-6 analyses on data/raw/cytokines_mdd.csv, computed here as the workflow does
(jobs.pool.run_analysis, forest_figure, write_analysis). Their numbers are tested against R metafor elsewhere
(tests/present/test_metafor_script.py); here the test is that the figure prints exactly them. The printed p of
each overall test is also checked against its statistic in closed form (2·(1 − Φ(|z|)), or the t tail with df).
"""

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REPO
from figure_readback import (
    assert_printed,
    assert_rows_match,
    drawn_rows,
    figure_texts,
    heterogeneity,
    overall_effect,
    renumber,
    row_mark_texts,
)
from matplotlib.colors import to_rgba
from matplotlib.lines import Line2D
from matplotlib.patches import Polygon
from tolerances import FORMULA

from metarepro._core import dist
from metarepro.jobs.pool import forest_figure, run_analysis, write_analysis
from metarepro.present.plots.forest import MARK_LEGEND, forest_plot, forest_rows
from metarepro.present.plots.overview import atlas_plot, atlas_rows
from metarepro.quality import flagged_included

CONFIG = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
SHEET = REPO / "data" / "raw" / "cytokines_mdd.csv"


def _run(name):
    analysis = CONFIG["analyses"][name]
    result = run_analysis(SHEET, analysis, CONFIG["defaults"])
    config = {"name": name, "analysis": analysis, "defaults": CONFIG["defaults"]}
    return result, config


@pytest.fixture(scope="module")
def analyses():
    return {name: _run(name) for name in ("il6_smd", "il6_md", "il6_smd_multilevel", "il6_smd_reported")}


def _pooled_json(result, tmp_path) -> dict:
    write_analysis(result, tmp_path / "effects.csv", tmp_path / "pooled.json", tmp_path / "estimators.csv")
    return json.loads((tmp_path / "pooled.json").read_text())


# ------------------------------------------------------------------------------------------------------------
# 1. test for the overall effect and heterogeneity, read back against pooled.json


@pytest.mark.parametrize("name, test", [("il6_smd", "t"), ("il6_md", "z"), ("il6_smd_multilevel", "t")])
def test_overall_effect_and_heterogeneity_read_back_equal_pooled_json(analyses, tmp_path, name, test):
    result, config = analyses[name]
    pooled = _pooled_json(result, tmp_path)
    fig = forest_figure(result.rows, config, result.effects, result.pooled)
    shown = overall_effect(fig)
    assert shown["test"] == test
    assert_printed(pooled["zval"], shown["statistic"], 2, "statistic")
    if test == "t":  # Knapp-Hartung: df = k - 1; rma.mv's t: the record's residual df
        assert shown["df"] == pooled.get("df", pooled["k"] - 1)
        p_closed = 2 * dist.t_sf(abs(pooled["zval"]), shown["df"])
    else:
        assert shown["df"] is None
        p_closed = 2 * dist.norm_sf(abs(pooled["zval"]))
    np.testing.assert_allclose(p_closed, pooled["pval"], rtol=FORMULA)  # the record's p from the same statistic
    if shown["p_bound"] == "<":
        assert shown["p"] == 0.0001 and pooled["pval"] < 1e-4
    else:
        assert_printed(pooled["pval"], shown["p"], 4, "P")
    if pooled.get("dependence"):  # σ² per level and QE: the multilevel line; its test is the model's own
        assert any(line.startswith("Test for overall effect (model-based): ") for line in figure_texts(fig))
        return
    het = heterogeneity(fig)
    assert_printed(pooled["tau2"], het["tau2"], 3, "tau2")
    assert_printed(pooled["i2"], het["i2"], 1, "I2")
    assert_printed(pooled["q"], het["q"], 2, "Q")
    assert het["df"] == pooled["q_df"] == pooled["k"] - 1
    assert (het["p_bound"] == "<") == (pooled["q_p"] < 1e-4)


def test_overall_effect_of_a_one_study_and_an_equal_effects_fit():
    """RevMan prints the test whatever k: "Z = 2.50 (P = 0.0124)" for one study with yi = 0.5, vi = 0.04
    (z = 0.5 / 0.2 = 2.5, p = 2·(1 − Φ(2.5)) = 0.01242)."""
    effects = pd.DataFrame({"study": ["Only"], "yi": [0.5], "vi": [0.04], "ci_low": [0.108], "ci_high": [0.892],
                            "weight": [100.0], "included": [True]})  # fmt: skip
    from metarepro.stats.rma import rma

    fit = rma([0.5], [0.04], "EE")
    fig = forest_plot(effects, {**fit.to_dict(), "measure": "SMD"})
    assert "Test for overall effect: Z = 2.50 (P = 0.0124)" in figure_texts(fig)


# ------------------------------------------------------------------------------------------------------------
# 2. flagged and converted rows marked, with a legend


def test_marked_rows_are_exactly_the_flagged_and_converted_rows(analyses):
    result, config = analyses["il6_smd"]
    effects = result.effects
    used = effects[effects["included"].astype(bool)].reset_index(drop=True)
    fig = forest_figure(result.rows, config, effects, result.pooled)
    marks = row_mark_texts(fig)
    # flagged: the rows the fit "without flagged rows" leaves out (its k is the rest)
    flagged = set(used.loc[flagged_included(used), "line"])
    assert len(used) - len(flagged) == result.pooled["without_flagged"]["k"]
    # converted: the rows the reported-only analysis (exclude_converted) leaves out as converted
    reported, _ = analyses["il6_smd_reported"]
    converted = set(reported.effects.loc[reported.effects["reason"].str.startswith("converted row"), "line"])
    assert converted and flagged
    for i, line in enumerate(used["line"]):
        expected = ("†" if line in flagged else "") + ("‡" if line in converted else "")
        assert marks.get(i, "") == expected, (i, line, marks.get(i))
    assert not any(i >= len(used) for i in marks)  # the pooled row carries none
    texts = figure_texts(fig)
    assert MARK_LEGEND["flagged"] in " ".join(texts) and MARK_LEGEND["converted"] in " ".join(texts)
    # the marks are a column of their own: the labels and numbers still read back as the table's
    table = pd.DataFrame({"estimate": used["yi"], "ci_low": used["ci_low"], "ci_high": used["ci_high"]})
    assert_rows_match_studies(fig, table, list(used["study"].astype(str)))


def assert_rows_match_studies(fig, table, labels):
    drawn = drawn_rows(fig)
    assert [drawn[i]["label"] for i in range(len(labels))] == labels
    np.testing.assert_allclose([drawn[i]["point"] for i in range(len(labels))], table["estimate"], rtol=FORMULA)


def test_no_marks_and_no_legend_when_no_row_is_flagged_or_converted():
    yi, vi = np.array([0.1, 0.4, 0.3]), np.array([0.02, 0.03, 0.05])
    from metarepro.stats.rma import rma

    fit = rma(yi, vi)
    effects = pd.DataFrame({"study": ["A", "B", "C"], "yi": yi, "vi": vi, "ci_low": yi - 0.3, "ci_high": yi + 0.3,
                            "weight": fit.weights, "included": True, "flags": ["", np.nan, ""],
                            "conversion": ["", "", np.nan]})  # fmt: skip
    fig = forest_plot(effects, {**fit.to_dict(), "measure": "SMD"})
    assert row_mark_texts(fig) == {}
    assert not any(line.startswith(("†", "‡")) for line in figure_texts(fig))


# ------------------------------------------------------------------------------------------------------------
# 4. the multilevel figure: a model-based and a CR2 diamond, each labelled; the weights said


def test_multilevel_figure_labels_its_model_based_and_cr2_intervals_and_its_weights(analyses):
    result, config = analyses["il6_smd_multilevel"]
    pooled, dep = result.pooled, result.pooled["dependence"]
    robust = dep["robust"]
    assert config["analysis"]["robust"] == "CR2" and robust["type"] == "CR2"
    rows = forest_rows(result.effects, pooled)
    summary = rows[rows["kind"] == "summary"].reset_index(drop=True)
    assert list(summary["label"]) == [
        f"Multilevel model (REML, k = {dep['k_effects']} effects in {dep['clusters']['study_id']} clusters): "
        "model-based CI",
        f"CR2 cluster-robust CI ({robust['clusters']} clusters, t with df = {robust['df']:.1f})"]  # fmt: skip
    np.testing.assert_array_equal(summary[["estimate", "ci_low", "ci_high"]].to_numpy(),
                                  [[pooled["estimate"], pooled["ci_low"], pooled["ci_high"]],
                                   [robust["estimate"], robust["ci_low"], robust["ci_high"]]])  # fmt: skip
    fig = forest_figure(result.rows, config, result.effects, pooled)
    drawn = drawn_rows(fig)
    first = len(rows) - 2
    assert_rows_match(renumber(fig, [first, first + 1]), summary, list(summary["label"]))
    assert drawn[first]["weight"] == "100.0%" and "weight" not in drawn[first + 1]
    texts = figure_texts(fig)
    assert "Weight*" in texts
    assert any(t.startswith("* Weight: the row's sum of W = M⁻¹") and 'type = "rowsum"' in t for t in texts)
    weights = result.effects.loc[result.effects["included"].astype(bool), "weight"]
    np.testing.assert_allclose(weights.sum(), 100.0, rtol=FORMULA)  # row sums of W, as percentages of their total


# ------------------------------------------------------------------------------------------------------------
# 3. the atlas: k = 2 Knapp-Hartung pools drawn faint, labelled, explained


def _record(k, test, estimate=0.3, half=0.2):
    return {"k": k, "test": test, "measure": "SMD", "estimate": estimate, "ci_low": estimate - half,
            "ci_high": estimate + half, "i2": 50.0, "pi_low": None, "pi_high": None}  # fmt: skip


def test_atlas_draws_two_study_t_pools_faint_and_says_why():
    """t with 1 df: the 97.5% quantile is tan(π/2 · 0.95) = 12.706 (the Cauchy distribution), the critical value
    the footer prints; a k = 2 z-test pool and a k = 3 Knapp-Hartung pool are drawn as usual."""
    records = {"a": {**_record(5, "knha"), "without_flagged": _record(2, "knha", 0.5, 6.0)},
               "b": _record(2, "z"), "c": _record(3, "knha"), "d": _record(2, "knha", 0.1, 5.0)}  # fmt: skip
    rows = atlas_rows(records, {n: n.upper() for n in records})[("SMD", "")]
    assert list(rows["label"]) == ["A", "without flagged rows (k = 2: t(1) interval)", "B", "C",
                                   "D (k = 2: t(1) interval)"]  # fmt: skip
    fig = atlas_plot(rows, ("SMD", ""))
    faint = {1, 4}
    for artist in fig.findobj(lambda a: isinstance(a, (Line2D, Polygon)) and (a.get_gid() or "").endswith("-point")):
        i = int(artist.get_gid()[3:].split("-")[0])
        if isinstance(artist, Polygon):  # a diamond: hollow when faint
            assert artist.get_fill() == (i not in faint), i
        else:  # a square: white inside when faint
            assert (to_rgba(artist.get_markerfacecolor()) == to_rgba("white")) == (i in faint), i
    for artist in fig.findobj(lambda a: isinstance(a, Line2D) and (a.get_gid() or "").endswith("-ci")):
        i = int(artist.get_gid()[3:].split("-")[0])
        assert (to_rgba(artist.get_color()) != to_rgba("black")) == (i in faint), i
    critical = np.tan(np.pi / 2 * 0.95)
    assert f"critical value {critical:.2f}" in " ".join(figure_texts(fig))
    # the numbers are printed in full
    assert drawn_rows(fig)[1]["text"] == "0.50 [−5.50, 6.50]"
    # without such a pool the footer is the usual one
    plain = atlas_plot(atlas_rows({"c": records["c"]}, {"c": "C"})[("SMD", "")], ("SMD", ""))
    assert not any("critical value" in t for t in figure_texts(plain))
