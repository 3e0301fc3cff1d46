"""Rule forest: effects.csv + pooled.json -> forest plot in SVG, PNG and PDF."""

from typing import TYPE_CHECKING

import pandas as pd

from metarepro.forest import forest_plot, save_figure
from metarepro.pipeline import logged, read_json

if TYPE_CHECKING:
    from snakemake.script import snakemake

with logged(snakemake.log[0]):
    effects = pd.read_csv(snakemake.input.effects)
    pooled = read_json(snakemake.input.pooled)
    title = snakemake.params.settings["analysis"]["title"]
    figure = forest_plot(effects, pooled, title=title, measure=pooled["measure"])
    save_figure(figure, snakemake.output)
