"""Rule diagnostics: leave-one-out, influence (with Baujat coordinates), cumulative meta-analysis, figures."""

from typing import TYPE_CHECKING

from metarepro.plots import save_figure
from metarepro.steps import logged
from metarepro.steps.sensitivity import diagnostics, figure_labels, load_analysis

if TYPE_CHECKING:
    from snakemake.script import snakemake

config = snakemake.params.settings
with logged(snakemake.log[0]):
    settings, rows = load_analysis(snakemake.input.sheet, snakemake.input.effects, config)
    order = config["analysis"].get("cumulative_order", "year")
    out = diagnostics(rows, settings, order_column=order, labels=figure_labels(config))
    for name, table in out.tables.items():
        table.to_csv(getattr(snakemake.output, name), index=False)
    for name, figure in out.figures.items():
        save_figure(figure, [path for path in snakemake.output.figures if f"/{name}." in path])
