"""Rule pool: one analysis's sheet -> effects.csv, pooled.json, estimators.csv."""

from typing import TYPE_CHECKING

from metarepro.steps import logged, run_analysis, write_analysis

if TYPE_CHECKING:
    from snakemake.script import snakemake

settings = snakemake.params.settings

with logged(snakemake.log[0]):
    result = run_analysis(snakemake.input.sheet, settings["analysis"], settings["defaults"])
    write_analysis(
        result,
        effects_path=snakemake.output.effects,
        pooled_path=snakemake.output.pooled,
        estimators_path=snakemake.output.estimators,
    )
