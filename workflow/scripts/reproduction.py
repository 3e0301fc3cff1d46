"""Rule reproduction: pooled results beside published ones -> results/reproduction.csv."""

from typing import TYPE_CHECKING

from metarepro.steps import logged
from metarepro.steps.overview import reproduction

if TYPE_CHECKING:
    from snakemake.script import snakemake

with logged(snakemake.log[0]):
    table = reproduction(
        snakemake.input.published or None,
        snakemake.params.compare,
        snakemake.params.analyses,
        snakemake.input.pooled,
    )
    table.to_csv(snakemake.output[0], index=False)
