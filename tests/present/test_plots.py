"""What every figure shows, read back from its artists (or its SVG) and compared with the table it is drawn from.

Data: dat.molloy2014 (ZCOR, k = 16) and dat.bcg (RR) from tests/reference/metafor_reference_extra.json
(generate_metafor_reference_extra.R); the numbers in the tables are ours, tested against metafor elsewhere —
here the test is that the figure shows exactly the table's rows, labelled right.
"""

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import load_reference
from figure_readback import assert_rows_match, drawn_rows, svg_row_texts
from matplotlib.collections import PathCollection, PolyCollection
from matplotlib.colors import to_rgba
from matplotlib.text import Text
from tolerances import difference_atol

from metarepro.jobs.sensitivity import _fit_table
from metarepro.present.plots import (
    axis_label,
    baujat_plot,
    bubble_plot,
    cumulative_forest_plot,
    differences_text,
    forest_plot,
    funnel_plot,
    leave1out_plot,
    save_figure,
    subgroup_forest_plot,
)
from metarepro.present.plots.forest import forest_rows, subgroup_rows
from metarepro.present.plots.style import _FALLBACK_FILES, Scale
from metarepro.stats.bias import trimfill
from metarepro.stats.influence import baujat, cumul, leave1out
from metarepro.stats.metareg import design_matrix, rma_mods
from metarepro.stats.rma import rma
from metarepro.stats.subgroups import subgroup_analysis

DATASETS = {d["name"]: d for d in load_reference("metafor_reference_extra.json")["datasets"]}
MOLLOY, BCG = DATASETS["molloy2014_ZCOR"], DATASETS["bcg_logRR"]
YI, VI = np.array(MOLLOY["escalc"]["yi"]), np.array(MOLLOY["escalc"]["vi"])
K = YI.size
CJK_FONT = _FALLBACK_FILES[0]
LABELS = [f"Study {chr(65 + i)} {1990 + i}" for i in range(K)]
BYI, BVI = np.array(BCG["escalc"]["yi"]), np.array(BCG["escalc"]["vi"])
ABLAT = np.array(BCG["moderators"]["ablat"], dtype=float)
ALLOC = BCG["moderators"]["alloc"]


def effects_table(yi, vi, labels, z=1.959963984540054):
    fit = rma(yi, vi)
    return pd.DataFrame({"line": np.arange(len(yi)) + 2, "study_id": labels, "study": labels, "yi": yi, "vi": vi,
                         "ci_low": yi - z * np.sqrt(vi), "ci_high": yi + z * np.sqrt(vi), "weight": fit.weights,
                         "included": True, "n_cases": np.arange(len(yi)) + 10.0,
                         "n_controls": np.arange(len(yi)) + 20.0}), fit  # fmt: skip


def pooled_of(fit, measure):
    return {**fit.to_dict(), "measure": measure}


def all_text(fig):
    return [t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text") and a.get_text())]


# ------------------------------------------------------------------------------------------------------------
# The forest plot: rows = effects.csv's included rows, then the pooled row


def test_forest_rows_match_effects_and_pooled():
    effects, fit = effects_table(YI, VI, LABELS)
    pooled = pooled_of(fit, "ZCOR")
    fig = forest_plot(effects, pooled)
    table = pd.DataFrame({"estimate": [*YI, fit.estimate], "ci_low": [*effects["ci_low"], fit.ci_low],
                          "ci_high": [*effects["ci_high"], fit.ci_high]})  # fmt: skip
    drawn = assert_rows_match(fig, table, [*LABELS, f"Random-effects model (REML, k = {K})"], measure="ZCOR")
    for i in range(K):  # weights printed, square areas proportional to them
        assert drawn[i]["weight"] == f"{fit.weights[i]:.1f}%"
        assert drawn[i]["n_cases"] == str(10 + i) and drawn[i]["n_controls"] == str(20 + i)
    sizes = np.array([a.get_markersize() for a in fig.findobj() if (a.get_gid() or "").endswith("-point")
                      and hasattr(a, "get_markersize")])  # fmt: skip
    np.testing.assert_allclose(sizes**2 / sizes.max() ** 2, fit.weights / fit.weights.max(), rtol=1e-12)
    x0, x1, _ = drawn[K]["pi"]  # prediction interval on the pooled row
    lo, hi = fig.axes[0].get_xlim()
    np.testing.assert_allclose([x0, x1], [max(fit.pi_low, lo), min(fit.pi_high, hi)])


def test_forest_excluded_rows_are_not_drawn():
    effects, fit = effects_table(YI, VI, LABELS)
    effects.loc[[2, 5], "included"] = False
    rows = forest_rows(effects, pooled_of(fit, "ZCOR"))
    assert list(rows["label"][:-1]) == [lbl for i, lbl in enumerate(LABELS) if i not in (2, 5)]


def test_zcor_and_rom_are_back_transformed():
    """metafor's atransf: the axis stays on the z / log scale, its ticks and the printed numbers are r / ratios."""
    effects, fit = effects_table(YI, VI, LABELS)
    fig = forest_plot(effects, pooled_of(fit, "ZCOR"))
    drawn = drawn_rows(fig)
    r, lo, hi = np.tanh([fit.estimate, fit.ci_low, fit.ci_high])
    assert drawn[K]["text"] == f"{r:.2f} [{lo:.2f}, {hi:.2f}]".replace("-", "−")
    ax = fig.axes[0]
    ticks = [float(t.get_text().replace("−", "-")) for t in ax.get_xticklabels()]
    np.testing.assert_allclose(np.arctanh(ticks), ax.get_xticks(), atol=1e-12)
    assert ax.get_xlabel() == "Correlation r"

    yi = np.log([1.2, 1.8, 0.9, 1.5])
    effects, fit = effects_table(yi, np.full(4, 0.02), ["a", "b", "c", "d"])
    fig = forest_plot(effects, pooled_of(fit, "ROM"))
    drawn = drawn_rows(fig)
    assert drawn[0]["text"].startswith("1.20 [")
    ticks = [float(t.get_text()) for t in fig.axes[0].get_xticklabels()]
    assert 1.0 in ticks
    np.testing.assert_allclose(np.log(ticks), fig.axes[0].get_xticks(), atol=1e-12)
    assert "Ratio of means" in fig.axes[0].get_xlabel()


def test_far_intervals_are_clipped_with_arrows():
    yi = np.array([0.1, 0.3, 0.2, 0.25])
    vi = np.array([0.01, 0.01, 60.0, 0.02])  # one CI of ±15 would squeeze every other row
    effects, fit = effects_table(yi, vi, list("abcd"))
    fig = forest_plot(effects, pooled_of(fit, "SMD"))
    lo, hi = fig.axes[0].get_xlim()
    assert hi - lo < 5
    drawn = drawn_rows(fig)
    assert "ci-arrow-left" in drawn[2] and "ci-arrow-right" in drawn[2]
    assert "ci-arrow-left" not in drawn[0]
    assert drawn[2]["text"] == Scale("SMD").text(yi[2], effects["ci_low"][2], effects["ci_high"][2])


def test_labels_level_and_group_words_from_config():
    effects, fit = effects_table(BYI[:5], BVI[:5], ["x"] * 5)
    fit90 = rma(BYI[:5], BVI[:5], level=90)
    fig = forest_plot(effects, {**pooled_of(fit90, "SMD"), "level": 90},
                      labels={"cases": "MDD", "controls": "healthy controls"})  # fmt: skip
    texts = all_text(fig)
    assert "g [90% CI]" in texts and "n MDD" in texts and "n healthy controls" in texts
    assert fig.axes[0].get_xlabel() == "Hedges' g (MDD − healthy controls)"
    assert "← lower in MDD" in texts and "higher in MDD →" in texts
    assert axis_label("MD", None, "pg/mL") == "Mean difference (cases − controls), pg/mL"


def test_long_labels_wrap_at_words_and_special_characters_stay_literal():
    long = "Zhengzhou University First Affiliated Hospital Th17 cytokine study in adolescents (author not shown)"
    odd = ["$\\frac$ cost", "NA", "研究 2020", "a_b^c"]
    labels = [long, *odd]
    effects, fit = effects_table(BYI[:5], BVI[:5], labels)
    fig = forest_plot(effects, pooled_of(fit, "SMD"))
    drawn = drawn_rows(fig)
    assert [drawn[i]["label"] for i in range(5)] == labels  # every word kept, nothing parsed as mathtext
    wrapped = next(a for a in fig.findobj() if a.get_gid() == "row0-label").get_text()
    assert "\n" in wrapped and all(w in long.split() for line in wrapped.split("\n") for w in line.split())
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        fig.canvas.draw()  # mathtext would raise here for "$\frac$"
    missing = [str(w.message) for w in seen if "missing from font" in str(w.message)]
    if not Path(CJK_FONT).exists():
        pytest.skip(f"CJK glyphs need Debian's fonts-noto-cjk ({CJK_FONT}); apt-get install -y fonts-noto-cjk")
    assert not missing, missing


def test_svg_is_byte_identical_and_carries_row_ids(tmp_path):
    effects, fit = effects_table(YI, VI, LABELS)
    paths = []
    for name in ("a.svg", "b.svg"):
        save_figure(forest_plot(effects, pooled_of(fit, "ZCOR")), [tmp_path / name])
        paths.append(tmp_path / name)
    assert paths[0].read_bytes() == paths[1].read_bytes()
    texts = svg_row_texts(paths[0].read_text())
    assert [texts[f"row{i}-label"] for i in range(K)] == LABELS


# ------------------------------------------------------------------------------------------------------------
# Cumulative and leave-one-out: drawn from the tables the workflow writes (cumulative.csv, leave1out.csv)


def _cumulative_table(order):
    c = cumul(YI, VI, order)
    ident = pd.DataFrame({"study": LABELS}).iloc[c.order].reset_index(drop=True)
    return pd.concat([ident, _fit_table(c)], axis=1), c


def test_cumulative_rows_are_labelled_with_the_study_they_add():
    """Row i shows the fit of the first i studies and names the study added at step i (the bug in issue 7 put
    the labels through the order twice)."""
    years = np.array(MOLLOY["moderators"]["year"], dtype=float)
    table, c = _cumulative_table(years)
    assert not np.array_equal(c.order, np.arange(K))  # the order matters for this test
    fig = cumulative_forest_plot(table, measure="ZCOR")
    assert_rows_match(fig, table, [f"+ {LABELS[j]}" for j in c.order], measure="ZCOR")
    np.testing.assert_allclose(table["estimate"].iloc[-1], rma(YI, VI).estimate, rtol=1e-10)


def test_cumulative_axis_is_not_stretched_by_an_early_wide_step():
    yi, vi = np.array([0.2, 0.9, 0.4, 0.5, 0.45, 0.3]), np.array([0.04, 0.05, 0.03, 0.02, 0.03, 0.04])
    c = cumul(yi, vi, None, method="REML", test="knha")  # k = 2 with knha: t(1) gives a CI of about ±5
    table = pd.concat([pd.DataFrame({"study": list("abcdef")}), _fit_table(c)], axis=1)
    fig = cumulative_forest_plot(table)
    lo, hi = fig.axes[0].get_xlim()
    assert table["ci_high"][1] > hi and hi - lo < 4
    assert "ci-arrow-right" in drawn_rows(fig)[1]


def test_leave1out_rows_match_table():
    loo = leave1out(YI, VI)
    table = pd.concat([pd.DataFrame({"study": LABELS}), _fit_table(loo)], axis=1)
    fig = leave1out_plot(table, estimate=rma(YI, VI).estimate, measure="ZCOR")
    assert_rows_match(fig, table, [f"− {name}" for name in LABELS], measure="ZCOR")


# ------------------------------------------------------------------------------------------------------------
# Subgroups


def test_subgroup_rows_match_fits_and_studies():
    result = subgroup_analysis(BYI, BVI, ALLOC, method="REML", test="knha")
    effects, _ = effects_table(BYI, BVI, [f"trial {i + 1}" for i in range(len(BYI))])
    effects["alloc"] = ALLOC
    fig = subgroup_forest_plot(effects, "alloc", result, title="BCG by allocation", measure="ROM")
    rows = subgroup_rows(effects, "alloc", result)
    drawable = rows[rows["kind"] != "header"].reset_index(drop=True)
    drawn = drawn_rows(fig)
    drawn_rows_only = [drawn[i] for i in sorted(drawn) if rows["kind"][i] != "header"]
    scale = Scale("ROM")
    for got, row in zip(drawn_rows_only, drawable.itertuples(), strict=True):
        assert got["label"] == row.label
        assert got["text"] == scale.text(row.estimate, row.ci_low, row.ci_high)
        assert "NA" not in got["text"]
    studies = rows[rows["kind"] == "study"]
    assert sorted(studies["label"]) == sorted(effects["study"])
    summaries = rows[rows["kind"] == "summary"]
    np.testing.assert_allclose(summaries["estimate"], result.fits.estimate)
    np.testing.assert_allclose(summaries["ci_low"], result.fits.ci_low)
    for level in result.levels:  # each study sits under its own subgroup header
        header = rows.index[(rows["kind"] == "header") & (rows["label"] == level)][0]
        block = rows.iloc[header + 1 : header + 1 + int(result.fits.k[list(result.levels).index(level)])]
        assert set(block["label"]) == set(effects.loc[np.array(ALLOC) == level, "study"])
    assert differences_text(result) in all_text(fig)
    assert "F(2, 10)" in differences_text(result)


def test_subgroup_forest_plot_checks_groups():
    result = subgroup_analysis(BYI, BVI, ALLOC)
    effects = pd.DataFrame({"study": range(len(BYI)), "yi": BYI, "vi": BVI, "ci_low": BYI, "ci_high": BYI})
    with pytest.raises(ValueError, match="rows here"):
        subgroup_forest_plot(effects.iloc[1:], ["x"] * (len(BYI) - 1), result)  # no row of the fit's subgroups


# ------------------------------------------------------------------------------------------------------------
# Baujat, funnel, bubble


def test_baujat_points_match_table_and_labels_never_overlap():
    many = [f"A rather long study label number {i}" for i in range(K)]
    result = baujat(YI, VI)
    fig = baujat_plot(result, labels=many)
    ax = fig.axes[0]
    points = next(c for c in ax.collections if c.get_label() == "studies")
    np.testing.assert_allclose(points.get_offsets(), np.column_stack([result.x, result.y]))
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    labels = [t for t in ax.texts if t.get_text()]
    assert 3 <= len(labels) <= 8
    boxes = [t.get_window_extent(renderer) for t in labels]
    for i in range(len(boxes)):
        assert all(not boxes[i].overlaps(boxes[j]) for j in range(i + 1, len(boxes)))
    for t in labels:  # each label sits at the point of the study it names
        i = many.index(next(name for name in many if t.get_text().replace("\n", " ").rstrip(" …") in name))
        np.testing.assert_allclose(t.xy, (result.x[i], result.y[i]))


def test_funnel_with_trimfill_marks_filled_studies_open():
    tf = trimfill(YI, VI, "L0")
    assert tf.k0 == MOLLOY["analyses"][0]["trimfill_L0"]["k0"] == 2
    fig = funnel_plot(YI, VI, estimate=0.15, trimfill=tf, measure="ZCOR")
    ax = fig.axes[0]
    observed = next(c for c in ax.collections if c.get_label() == "observed studies")
    filled = next(c for c in ax.collections if c.get_label() == "filled studies")
    np.testing.assert_allclose(observed.get_offsets(), np.column_stack([YI, np.sqrt(VI)]))
    np.testing.assert_allclose(filled.get_offsets()[:, 0], tf.yi[tf.fill])
    np.testing.assert_allclose(filled.get_facecolors()[0], to_rgba("white"))
    low, high = ax.get_ylim()
    assert low > high == 0
    labels = [line.get_label() for line in ax.get_lines()]
    assert f"pooled estimate {np.tanh(0.15):.2f}" in labels  # r, not z
    legend_texts = {t.get_text() for legend in ax.findobj(lambda a: a.__class__.__name__ == "Legend")
                    for t in legend.get_texts()}  # fmt: skip
    assert {"p > 0.1", "0.05 < p < 0.1", "0.01 < p < 0.05", "p < 0.01"} <= legend_texts


def test_bubble_plot_structure():
    fit = rma_mods(BYI, BVI, design_matrix(pd.DataFrame({"ablat": ABLAT}), ["ablat"]))
    fig = bubble_plot(BYI, BVI, ABLAT, fit, "absolute latitude", measure="ZCOR")
    ax = fig.axes[0]
    points = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert len(points) == 1
    np.testing.assert_allclose(points[0].get_offsets(), np.column_stack([ABLAT, BYI]))
    sizes = points[0].get_sizes()
    weights = 1 / (BVI + fit.tau2)
    assert np.argmax(sizes) == np.argmax(weights) and np.argmin(sizes) == np.argmin(weights)
    assert len([c for c in ax.collections if isinstance(c, PolyCollection)]) == 1  # the CI band
    x, y = ax.get_lines()[0].get_data()
    line_atol = difference_atol(fit.beta[0], fit.beta[1] * x)
    np.testing.assert_allclose(y, fit.beta[0] + fit.beta[1] * x, rtol=0, atol=line_atol)
    assert ax.get_xlabel() == "absolute latitude" and ax.get_ylabel() == axis_label("ZCOR")


def test_bubble_plot_needs_one_moderator():
    fit = rma_mods(BYI, BVI, design_matrix(pd.DataFrame({"ablat": ABLAT, "alloc": ALLOC}), ["ablat", "alloc"]))
    with pytest.raises(ValueError, match="one moderator"):
        bubble_plot(BYI, BVI, ABLAT, fit, "ablat")


# ------------------------------------------------------------------------------------------------------------
# The report's overview figures: drawn from the pooled records and the reproduction table


def test_atlas_rows_match_records_and_split_by_scale():
    from metarepro.present.plots.overview import atlas_plot, atlas_rows

    smd = {**pooled_of(rma(BYI, BVI), "SMD"), "n_cases": 50.0, "n_controls": 40.0}
    smd["without_flagged"] = {**pooled_of(rma(BYI[:6], BVI[:6]), "SMD")}
    rom = {**pooled_of(rma(YI, VI), "ROM")}
    md = {**pooled_of(rma(YI, VI), "MD"), "unit": "pg/mL"}
    tables = atlas_rows({"a": smd, "b": rom, "c": md}, {"a": "Analysis A", "b": "B", "c": "C"})
    assert set(tables) == {("SMD", ""), ("ROM", ""), ("MD", "pg/mL")}
    rows = tables[("SMD", "")]
    assert rows["label"].tolist() == ["Analysis A", "without flagged rows"]
    assert rows["k"].tolist() == [str(smd["k"]), "6"] and rows["n"][0] == "90"
    fig = atlas_plot(rows, ("SMD", ""))
    assert_rows_match(fig, rows, rows["label"].tolist())
    fig = atlas_plot(tables[("ROM", "")], ("ROM", ""))
    assert drawn_rows(fig)[0]["text"] == Scale("ROM").text(rom["estimate"], rom["ci_low"], rom["ci_high"])


def test_reproduction_rows_show_every_comparison_with_its_verdict():
    """Every comparison is in the figure (issue 17): one on another scale as a labelled row, one without a CI as a
    square without whiskers; labels carry the verdict and a CI level other than 95%."""
    from metarepro.present.plots.overview import reproduction_plot, reproduction_rows

    table = pd.DataFrame({
        "analysis": ["a", "a", "a", "b"], "source": ["P1", "P2", "P3", "P4"], "marker": ["IL-6"] * 4,
        "measure_ours": ["SMD"] * 3 + ["MD"], "unit_ours": [None] * 3 + ["pg/mL"],
        "measure_published": ["d", "d", "WMD", "WMD"], "same_scale": [True, True, False, True],
        "estimate_ours": [0.5, 0.5, 0.5, 2.0], "ci_low_ours": [0.2, 0.2, 0.2, 1.0],
        "ci_high_ours": [0.8, 0.8, 0.8, 3.0],
        "k_ours": [12, 12, 12, 9], "estimate_published": [0.4, 0.3, 1.0, 1.78],
        "ci_low_published": [0.1, np.nan, 0.5, 1.23], "ci_high_published": [0.7, np.nan, 1.5, 2.33],
        "ci_level_published": [99, 95, 95, 95],
        "verdict": ["reproduced, approximately", "insufficient information", "not comparable",
                    "meaningfully different"],
    })  # fmt: skip
    tables = reproduction_rows(table, {"a": "A", "b": "B"})
    assert set(tables) == {("SMD", ""), ("MD", "pg/mL")}
    rows = tables[("SMD", "")]
    assert rows["label"].tolist() == [
        "IL-6: A", "ours (k = 12)", "published, 99% CI: P1 — reproduced, approximately",
        "published: P2 — insufficient information", "published, WMD: another scale, not drawn: P3 — not comparable",
    ]
    fig = reproduction_plot(rows, ("SMD", ""))
    drawn = drawn_rows(fig)
    for i in (1, 2, 3):
        row = rows.iloc[i]
        assert drawn[i]["label"] == row["label"]
        assert drawn[i]["text"] == Scale("SMD").text(row["estimate"], row["ci_low"], row["ci_high"])
    assert drawn[3]["text"] == "0.30 [no CI]" and "ci" not in drawn[3]  # a square without whiskers
    assert drawn[4]["label"] == rows["label"][4] and "text" not in drawn[4] and "point" not in drawn[4]
    md = reproduction_plot(tables[("MD", "pg/mL")], ("MD", "pg/mL"))
    footers = [t.get_text() for t in md.texts]
    assert not any("Hedges" in t for t in footers)  # the SMD footnote is for SMD figures only
    assert any("Hedges" in t.get_text() for t in fig.texts)
    # the column header claims no level: a published 99% CI (Hiles 2012) stood under "g [95% CI]" (issue 20)
    headers = [t.get_text() for t in fig.findobj(Text) if t.get_text().startswith("Hedges' g [")]
    assert headers == ["Hedges' g [CI]"]


def test_forest_from_arrays_and_a_fit_like_metafor():
    """metafor's forest(rma(yi, vi)): one call from effect sizes (or with the fit to draw)."""
    from metarepro.present.plots import forest

    fit = rma(BYI, BVI, "DL")
    fig = forest(BYI, BVI, slab=[f"trial {i}" for i in range(len(BYI))], fit=fit, measure="ROM")
    drawn = drawn_rows(fig)
    assert drawn[len(BYI)]["text"] == Scale("ROM").text(fit.estimate, fit.ci_low, fit.ci_high)
    assert drawn[0]["label"] == "trial 0" and drawn[0]["weight"] == f"{fit.weights[0]:.1f}%"
    with pytest.raises(ValueError, match="k = 13"):
        forest(BYI[:5], BVI[:5], fit=fit)


def test_atlas_shows_no_i2_for_one_study():
    """A one-study fit has no heterogeneity: the atlas printed "0%" for k = 1 (issue 20)."""
    from metarepro.present.plots.overview import atlas_rows

    one = {**pooled_of(rma(BYI[:1], BVI[:1]), "SMD")}
    many = {**pooled_of(rma(BYI, BVI), "SMD"), "without_flagged": one}
    rows = atlas_rows({"a": many}, {"a": "A"})[("SMD", "")]
    assert rows["i2"].tolist() == [f"{many['i2']:.0f}%", "–"]
