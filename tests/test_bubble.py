"""Structure of the moderator figures (labels, markers, diamonds, printed tests), not pixels.

Data: dat.bcg (RR) from tests/reference/metafor_reference_extra.json (generate_metafor_reference_extra.R);
the numbers printed on the figures are those of rma_mods / subgroup_analysis, tested against metafor elsewhere.
"""

import numpy as np
import pandas as pd
import pytest
from conftest import load_reference
from matplotlib.collections import PathCollection, PolyCollection
from matplotlib.patches import Polygon
from tolerances import difference_atol

from metarepro.bubble import bubble_plot, differences_text, subgroup_forest_plot
from metarepro.forest import AXIS_LABELS, save_figure
from metarepro.metareg import design_matrix, rma_mods
from metarepro.subgroups import subgroup_analysis

BCG = load_reference("metafor_reference_extra.json")["datasets"][0]
YI, VI = np.array(BCG["escalc"]["yi"]), np.array(BCG["escalc"]["vi"])
ABLAT = np.array(BCG["moderators"]["ablat"], dtype=float)
ALLOC = BCG["moderators"]["alloc"]


def all_text(fig):
    return [t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text") and a.get_text())]


def test_bubble_plot_structure():
    fit = rma_mods(YI, VI, design_matrix(pd.DataFrame({"ablat": ABLAT}), ["ablat"]))
    fig = bubble_plot(YI, VI, ABLAT, fit, "absolute latitude", measure="ZCOR")
    ax = fig.axes[0]
    points = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert len(points) == 1 and len(points[0].get_offsets()) == len(YI)
    sizes = points[0].get_sizes()
    weights = 1 / (VI + fit.tau2)
    assert np.argmax(sizes) == np.argmax(weights) and np.argmin(sizes) == np.argmin(weights)
    assert len([c for c in ax.collections if isinstance(c, PolyCollection)]) == 1  # the CI band
    line = ax.get_lines()[0]
    x, y = line.get_data()
    line_atol = difference_atol(fit.beta[0], fit.beta[1] * x)
    np.testing.assert_allclose(y, fit.beta[0] + fit.beta[1] * x, rtol=0, atol=line_atol)
    assert ax.get_xlabel() == "absolute latitude" and ax.get_ylabel() == AXIS_LABELS["ZCOR"]
    assert "slope = " in ax.get_title(loc="left")


def test_bubble_plot_needs_one_moderator():
    fit = rma_mods(YI, VI, design_matrix(pd.DataFrame({"ablat": ABLAT, "alloc": ALLOC}), ["ablat", "alloc"]))
    with pytest.raises(ValueError, match="one moderator"):
        bubble_plot(YI, VI, ABLAT, fit, "ablat")


def test_subgroup_forest_plot_structure(tmp_path):
    result = subgroup_analysis(YI, VI, ALLOC, method="REML", test="knha")
    effects = pd.DataFrame({"study": [f"trial {i + 1}" for i in range(len(YI))], "yi": YI, "vi": VI,
                            "ci_low": YI - 1.96 * np.sqrt(VI), "ci_high": YI + 1.96 * np.sqrt(VI),
                            "included": True, "alloc": ALLOC})  # fmt: skip
    fig = subgroup_forest_plot(effects, "alloc", result, title="BCG by allocation", measure="GEN")
    mid = fig.axes[1]
    diamonds = [p for p in mid.patches if isinstance(p, Polygon)]
    assert len(diamonds) == 3
    np.testing.assert_allclose(sorted(d.get_xy()[1, 0] for d in diamonds), sorted(result.fits.estimate))
    markers = sum(len(c.get_offsets()) for c in mid.collections if isinstance(c, PathCollection))
    assert markers == len(YI)
    texts = all_text(fig)
    for level in result.levels:
        assert level in texts
    assert sum("trial" in t for t in texts) == len(YI)
    assert differences_text(result) in texts
    assert "F(2, 10)" in differences_text(result) and "Between-subgroup Q" in differences_text(result)
    assert "BCG by allocation" in texts
    save_figure(fig, [tmp_path / "subgroups.png"])
    assert (tmp_path / "subgroups.png").stat().st_size > 0


def test_subgroup_forest_plot_checks_groups():
    result = subgroup_analysis(YI, VI, ALLOC)
    effects = pd.DataFrame({"study": range(len(YI)), "yi": YI, "vi": VI, "ci_low": YI, "ci_high": YI})
    with pytest.raises(ValueError, match="rows here"):
        subgroup_forest_plot(effects, ["random"] * len(YI), result)
