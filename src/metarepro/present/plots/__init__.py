"""Every figure of metarepro: forest-type plots from one drawing function (:mod:`.forest`), the funnel and
Baujat plots (:mod:`.diagnostics`), the bubble plot (:mod:`.bubble`), the report's overview figures
(:mod:`.overview`), the robvis-style traffic light (:mod:`.traffic_light`) and what they share (:mod:`.style`).
Each function returns a matplotlib Figure; write it with :func:`save_figure`."""

from metarepro.present.plots.bubble import bubble_plot
from metarepro.present.plots.diagnostics import baujat_plot, funnel_plot
from metarepro.present.plots.forest import (
    cumulative_forest_plot,
    differences_text,
    draw_forest,
    forest,
    forest_plot,
    leave1out_plot,
    rows_table,
    subgroup_forest_plot,
)
from metarepro.present.plots.style import axis_label, save_figure
from metarepro.present.plots.traffic_light import traffic_light_plot

__all__ = [
    "axis_label", "baujat_plot", "bubble_plot", "cumulative_forest_plot", "differences_text", "draw_forest",
    "forest", "forest_plot", "funnel_plot", "leave1out_plot", "rows_table", "save_figure", "subgroup_forest_plot",
    "traffic_light_plot",
]  # fmt: skip
