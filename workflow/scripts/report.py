"""Rule report: every analysis's results, the reproduction table and provenance -> one self-contained HTML page."""

from pathlib import Path
from typing import TYPE_CHECKING

from metarepro.steps import logged
from metarepro.steps.overview import build_report

if TYPE_CHECKING:
    from snakemake.script import snakemake

with logged(snakemake.log[0]):
    params = snakemake.params
    inputs = {kind: list(getattr(snakemake.input, kind)) for kind in ("pooled", "effects", "estimators", "forest")}
    inputs["extras"] = list(snakemake.input.extras)
    page = build_report(
        params.analyses, params.config, inputs, reproduction_path=snakemake.input.reproduction,
        config_files=params.configfiles, sheets=snakemake.input.sheets, repo_dir=params.repo, labels=params.labels,
    )  # fmt: skip
    Path(snakemake.output[0]).write_text(page)
