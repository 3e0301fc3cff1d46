"""Rule analysis_<name>: one analysis's sheet -> all its tables and figures (metarepro.jobs.run.analysis_job)."""

from pathlib import Path
from typing import TYPE_CHECKING

from metarepro.jobs import end_job, logged
from metarepro.jobs.run import analysis_job

if TYPE_CHECKING:
    from snakemake.script import snakemake

with logged(snakemake.log[0]):
    folder = Path(snakemake.output.pooled).parent  # every output of the rule is in this one folder
    analysis_job(snakemake.input.sheet, snakemake.params.settings, folder, snakemake.params.formats)
end_job()  # the files are written; skip the interpreter's teardown
