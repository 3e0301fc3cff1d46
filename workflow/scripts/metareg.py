"""Rule metareg: joint meta-regression on the configured moderators, with a permutation test -> metareg.csv."""

from typing import TYPE_CHECKING

import pandas as pd

from metarepro.analysis import Settings
from metarepro.pipeline import logged
from metarepro.sensitivity import analysis_rows, metaregression

if TYPE_CHECKING:
    from snakemake.script import snakemake

config = snakemake.params.settings
analysis = config["analysis"]
with logged(snakemake.log[0]):
    settings = Settings.from_config(analysis, config["defaults"])
    rows = analysis_rows(snakemake.input.sheet, analysis, pd.read_csv(snakemake.input.effects))
    table = metaregression(
        rows, settings, analysis["moderators"], analysis.get("permutations", 1000), analysis.get("seed", 1)
    )
    table.to_csv(snakemake.output[0], index=False)
