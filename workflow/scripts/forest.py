"""Rule forest: effects.csv + pooled.json (+ the sheet's group summaries) -> the analysis forest plot."""

from typing import TYPE_CHECKING

from metarepro.plots import save_figure
from metarepro.steps import forest_figure, logged, read_effects, read_json

if TYPE_CHECKING:
    from snakemake.script import snakemake

with logged(snakemake.log[0]):
    effects = read_effects(snakemake.input.effects)
    figure = forest_figure(snakemake.input.sheet, snakemake.params.settings, effects, read_json(snakemake.input.pooled))
    save_figure(figure, snakemake.output)
