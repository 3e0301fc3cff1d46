"""Rule summary: every analysis's pooled.json -> results/summary.csv."""

from typing import TYPE_CHECKING

from metarepro.steps import logged
from metarepro.steps.overview import summary_table

if TYPE_CHECKING:
    from snakemake.script import snakemake

with logged(snakemake.log[0]):
    summary_table(snakemake.params.analyses, snakemake.input.pooled).to_csv(snakemake.output[0], index=False)
