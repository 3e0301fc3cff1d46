"""Structure of the diagnostic figures (labels, number of markers, filled points), not pixels.

Data: dat.molloy2014 (k = 16) from tests/reference/metafor_reference_extra.json, where R metafor's trimfill (L0)
fills 2 studies on the left (generate_metafor_reference_extra.R).
"""

import numpy as np
import pytest
from conftest import load_reference
from matplotlib.colors import to_rgba

from metarepro.bias import trimfill
from metarepro.diagnostic_plots import baujat_plot, cumulative_forest_plot, funnel_plot, leave1out_plot
from metarepro.forest import save_figure
from metarepro.influence import baujat, cumul, leave1out

pytest.importorskip("metarepro.metareg", reason="trim-and-fill's side choice needs rma_mods")

MOLLOY = next(d for d in load_reference("metafor_reference_extra.json")["datasets"] if d["name"] == "molloy2014_ZCOR")
YI, VI = np.array(MOLLOY["escalc"]["yi"]), np.array(MOLLOY["escalc"]["vi"])
K = YI.size
LABELS = [f"S{i + 1:02d}" for i in range(K)]


def _collection(ax, label):
    found = [c for c in ax.collections if c.get_label() == label]
    return found[0] if found else None


def test_funnel_with_trimfill_marks_filled_studies_open(tmp_path):
    tf = trimfill(YI, VI, "L0")
    assert tf.k0 == MOLLOY["analyses"][0]["trimfill_L0"]["k0"] == 2
    fig = funnel_plot(YI, VI, estimate=0.15, trimfill=tf, measure="ZCOR")
    ax = fig.axes[0]
    observed = _collection(ax, "observed studies")
    filled = _collection(ax, "filled studies")
    assert observed.get_offsets().shape == (K, 2)
    assert filled.get_offsets().shape == (2, 2)
    np.testing.assert_allclose(filled.get_offsets()[:, 0], tf.yi[tf.fill])
    np.testing.assert_allclose(filled.get_facecolors()[0], to_rgba("white"))  # open symbols
    np.testing.assert_allclose(observed.get_offsets()[:, 1], np.sqrt(VI))
    low, high = ax.get_ylim()
    assert low > high == 0  # standard error axis inverted, 0 at the top
    line_labels = [line.get_label() for line in ax.get_lines()]
    assert any(lbl.startswith("pooled estimate") for lbl in line_labels)
    assert any(lbl.startswith("trim-and-fill estimate") and "k0 = 2" in lbl for lbl in line_labels)
    legend_texts = {t.get_text() for legend in ax.findobj(lambda a: a.__class__.__name__ == "Legend")
                    for t in legend.get_texts()}  # fmt: skip
    assert {"p > 0.1", "0.05 < p < 0.1", "0.01 < p < 0.05", "p < 0.01"} <= legend_texts
    assert ax.get_ylabel() == "Standard error"
    save_figure(fig, [tmp_path / "funnel.png"])
    assert (tmp_path / "funnel.png").stat().st_size > 0


def test_funnel_without_trimfill_has_no_filled_points():
    fig = funnel_plot(YI, VI)
    ax = fig.axes[0]
    assert _collection(ax, "filled studies") is None
    assert _collection(ax, "observed studies").get_offsets().shape == (K, 2)


def test_cumulative_forest_rows_follow_order():
    years = MOLLOY["moderators"]["year"]
    table = cumul(YI, VI, years)
    fig = cumulative_forest_plot(table, labels=LABELS, measure="ZCOR")
    ax = fig.axes[0]
    ticks = [t.get_text() for t in ax.get_yticklabels()]
    assert ticks == [f"+ {LABELS[j]}" for j in table.order]
    assert _collection(ax, "estimate").get_offsets().shape == (K, 2)
    np.testing.assert_allclose(_collection(ax, "estimate").get_offsets()[:, 0], table.estimate)


def test_leave1out_plot_labels():
    table = leave1out(YI, VI)
    fig = leave1out_plot(table, estimate=0.15, labels=LABELS)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == [f"− {name}" for name in LABELS]
    assert _collection(ax, "estimate").get_offsets().shape == (K, 2)
    assert any(line.get_label().startswith("all studies") for line in ax.get_lines())


def test_baujat_plot_labels_every_study():
    result = baujat(YI, VI)
    fig = baujat_plot(result, labels=LABELS)
    ax = fig.axes[0]
    assert sorted(t.get_text() for t in ax.texts) == sorted(LABELS)
    np.testing.assert_allclose(_collection(ax, "studies").get_offsets(), np.column_stack([result.x, result.y]))
    assert ax.get_xlabel() == "Squared Pearson residual"
