"""Rule analysis_<name> / analyses_<n>: each analysis's sheet -> all its tables and figures, one analysis after
another in this one process (metarepro.jobs.run.analysis_job), each into its own folder and its own log."""

from pathlib import Path
from typing import TYPE_CHECKING

from metarepro.jobs import end_job, logged
from metarepro.jobs.run import analysis_job

if TYPE_CHECKING:
    from snakemake.script import snakemake

for position, (sheet, settings) in enumerate(zip(snakemake.input.sheets, snakemake.params.settings, strict=True)):
    with logged(snakemake.log[f"a{position}"]):
        folder = Path(snakemake.output[f"a{position}_pooled"]).parent  # every file of an analysis is in one folder
        analysis_job(sheet, settings, folder, snakemake.params.formats)
end_job()  # the files are written; skip the interpreter's teardown
