"""Rule publication_bias: Egger, Begg, trim-and-fill, fail-safe N, PET-PEESE -> bias.json; funnel plot."""

from typing import TYPE_CHECKING

import pandas as pd

from metarepro.analysis import Settings
from metarepro.forest import save_figure
from metarepro.pipeline import logged, write_json
from metarepro.sensitivity import analysis_rows, publication_bias

if TYPE_CHECKING:
    from snakemake.script import snakemake

config = snakemake.params.settings
with logged(snakemake.log[0]):
    settings = Settings.from_config(config["analysis"], config["defaults"])
    rows = analysis_rows(snakemake.input.sheet, config["analysis"], pd.read_csv(snakemake.input.effects))
    out = publication_bias(rows, settings)
    write_json(out.record, snakemake.output.bias)
    save_figure(out.figures["funnel"], snakemake.output.funnel)
