"""Rule publication_bias: Egger, Begg, trim-and-fill, fail-safe N, PET-PEESE -> bias.json; funnel plot."""

from typing import TYPE_CHECKING

from metarepro.plots import save_figure
from metarepro.steps import logged, write_json
from metarepro.steps.sensitivity import figure_labels, load_analysis, publication_bias

if TYPE_CHECKING:
    from snakemake.script import snakemake

config = snakemake.params.settings
with logged(snakemake.log[0]):
    settings, rows = load_analysis(snakemake.input.sheet, snakemake.input.effects, config)
    out = publication_bias(rows, settings, labels=figure_labels(config))
    write_json(out.record, snakemake.output.bias)
    save_figure(out.figures["funnel"], snakemake.output.funnel)
