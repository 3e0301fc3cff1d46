"""Rule moderator_figure: forest plot by subgroup, or bubble plot of a numeric moderator."""

from typing import TYPE_CHECKING

from metarepro.plots import save_figure
from metarepro.steps import logged
from metarepro.steps.sensitivity import bubble, figure_labels, load_analysis, subgroup_figure

if TYPE_CHECKING:
    from snakemake.script import snakemake

config = snakemake.params.settings
analysis = config["analysis"]
with logged(snakemake.log[0]):
    settings, rows = load_analysis(snakemake.input.sheet, snakemake.input.effects, config)
    draw = subgroup_figure if snakemake.wildcards.kind == "forest_subgroups" else bubble
    figure = draw(rows, settings, snakemake.wildcards.column, title=analysis["title"], labels=figure_labels(config))
    save_figure(figure, snakemake.output)
