"""Rule metareg: joint meta-regression on the configured moderators, with a permutation test -> metareg.csv."""

from typing import TYPE_CHECKING

from metarepro.steps import logged
from metarepro.steps.sensitivity import load_analysis, metaregression

if TYPE_CHECKING:
    from snakemake.script import snakemake

config = snakemake.params.settings
analysis = config["analysis"]
with logged(snakemake.log[0]):
    settings, rows = load_analysis(snakemake.input.sheet, snakemake.input.effects, config)
    table = metaregression(
        rows, settings, analysis["moderators"], analysis.get("permutations", 1000), analysis.get("seed", 1)
    )
    table.to_csv(snakemake.output[0], index=False)
