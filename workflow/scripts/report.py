"""Rule report: every analysis's files -> summary.csv, reproduction.csv and the self-contained HTML report."""

from pathlib import Path
from typing import TYPE_CHECKING

from metarepro.jobs import end_job, logged
from metarepro.jobs.outputs import OVERVIEW_TABLES
from metarepro.jobs.run import overview_job

if TYPE_CHECKING:
    from snakemake.script import snakemake

with logged(snakemake.log[0]):
    params, out = snakemake.params, snakemake.output
    folders = [Path(pooled).parent for pooled in snakemake.input.pooled]  # each analysis's folder, as given
    overview_job(
        params.analyses, params.config, folders,
        {"summary": out.summary, "reproduction": out.reproduction, "report": out.report,
         **{kind: getattr(out, kind) for kind in OVERVIEW_TABLES}},
        published=snakemake.input.published or None, config_files=params.configfiles, sheets=snakemake.input.sheets,
        labels=params.labels, repo_dir=params.repo, workers=snakemake.threads, data_note=params.data_note,
        study_levels=list(snakemake.input.study_level), prisma=params.prisma,
    )  # fmt: skip
end_job()  # the files are written; skip the interpreter's teardown
