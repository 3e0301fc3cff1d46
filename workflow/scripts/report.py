"""Rule report: summary, fits, rows and forest plots -> one self-contained results/report.html."""

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from metarepro.pipeline import logged, read_json
from metarepro.report import AnalysisSection, render_report

if TYPE_CHECKING:
    from snakemake.script import snakemake

with logged(snakemake.log[0]):
    sections = [
        AnalysisSection(name, title, read_json(pooled), pd.read_csv(effects), Path(svg).read_text())
        for name, title, pooled, effects, svg in zip(
            snakemake.params.analyses,
            snakemake.params.titles,
            snakemake.input.pooled,
            snakemake.input.effects,
            snakemake.input.forest,
            strict=True,
        )
    ]
    reproduction = pd.read_csv(snakemake.input.reproduction)
    page = render_report(pd.read_csv(snakemake.input.summary), sections, reproduction)
    Path(snakemake.output[0]).write_text(page)
