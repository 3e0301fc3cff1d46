"""Rule subgroups: a fit per subgroup and both tests of subgroup differences -> subgroups.csv."""

from typing import TYPE_CHECKING

import pandas as pd

from metarepro.analysis import Settings
from metarepro.pipeline import logged
from metarepro.sensitivity import analysis_rows, subgroups

if TYPE_CHECKING:
    from snakemake.script import snakemake

config = snakemake.params.settings
with logged(snakemake.log[0]):
    settings = Settings.from_config(config["analysis"], config["defaults"])
    rows = analysis_rows(snakemake.input.sheet, config["analysis"], pd.read_csv(snakemake.input.effects))
    subgroups(rows, settings, config["analysis"]["subgroups"]).to_csv(snakemake.output[0], index=False)
