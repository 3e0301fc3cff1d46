"""Rule analysis_<name> / analyses_<n>: each analysis's sheet -> all its tables and figures, one analysis after
another in this one process (metarepro.jobs.run.analysis_job), each into its own folder and its own log; an analysis
whose sheet, settings and code are as when its files were made gets those files back (metarepro.jobs.reuse)."""

from pathlib import Path
from typing import TYPE_CHECKING

from metarepro.jobs import end_job
from metarepro.jobs.reuse import run_or_reuse

if TYPE_CHECKING:
    from snakemake.script import snakemake

for position, (sheet, settings) in enumerate(zip(snakemake.input.sheets, snakemake.params.settings, strict=True)):
    folder = Path(snakemake.output[f"a{position}_pooled"]).parent  # every file of an analysis is in one folder
    run_or_reuse(sheet, settings, folder, snakemake.params.formats, snakemake.log[f"a{position}"],
                 reuse=snakemake.params.reuse)  # fmt: skip
end_job()  # the files are written; skip the interpreter's teardown
