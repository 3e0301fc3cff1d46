"""Rule report: summary, reproduction table, fits, rows and every figure -> one self-contained report.html."""

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from metarepro.pipeline import logged, read_json
from metarepro.report import AnalysisSection, render_report

if TYPE_CHECKING:
    from snakemake.script import snakemake

TABLES = ("subgroups", "metareg", "influence")


def section(name, title):
    folder = Path("results") / name
    extras = [Path(p) for p in snakemake.input.extras if Path(p).parent == folder]
    return AnalysisSection(
        name, title, read_json(folder / "pooled.json"), pd.read_csv(folder / "effects.csv"),
        (folder / "forest.svg").read_text(),
        bias=read_json(folder / "bias.json"),
        tables={p.stem: pd.read_csv(p) for p in extras if p.stem in TABLES},
        figures={p.stem: p.read_text() for p in extras if p.suffix == ".svg"},
    )  # fmt: skip


with logged(snakemake.log[0]):
    sections = [
        section(name, title) for name, title in zip(snakemake.params.analyses, snakemake.params.titles, strict=True)
    ]
    reproduction = pd.read_csv(snakemake.input.reproduction)
    page = render_report(pd.read_csv(snakemake.input.summary), sections, reproduction)
    Path(snakemake.output[0]).write_text(page)
