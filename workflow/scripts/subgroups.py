"""Rule subgroups: a fit per subgroup and both tests of subgroup differences -> subgroups.csv."""

from typing import TYPE_CHECKING

from metarepro.steps import logged
from metarepro.steps.sensitivity import load_analysis, subgroups

if TYPE_CHECKING:
    from snakemake.script import snakemake

config = snakemake.params.settings
with logged(snakemake.log[0]):
    settings, rows = load_analysis(snakemake.input.sheet, snakemake.input.effects, config)
    subgroups(rows, settings, config["analysis"]["subgroups"]).to_csv(snakemake.output[0], index=False)
