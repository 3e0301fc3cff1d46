"""Read what the analyses wrote (results/<analysis>/) into :class:`metarepro.pipeline.findings.AnalysisRecords`,
and build a config's summary of findings, sensitivity summaries and reporter sentences from them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from metarepro.jobs.files import read_effects, read_json, read_table
from metarepro.pipeline import findings as fd


def read_records(results_dir, name: str) -> fd.AnalysisRecords:
    """One analysis's files; those an analysis does not write (bias.json for k < 3 ...) are None."""
    base = Path(results_dir) / name

    def table(file, reader=read_table):
        return reader(base / file) if (base / file).is_file() else None

    return fd.AnalysisRecords(
        name=name,
        pooled=read_json(base / "pooled.json"),
        bias=read_json(base / "bias.json") if (base / "bias.json").is_file() else None,
        effects=table("effects.csv", read_effects),
        estimators=table("estimators.csv"),
        leave1out=table("leave1out.csv", read_effects),
        influence=table("influence.csv", read_effects),
    )


@dataclass
class Findings:
    """A config's findings: the SoF table, per question its sensitivity table and sentence, and per primary
    analysis its reporter sentences."""

    sof: pd.DataFrame
    sof_rows: list
    sensitivity: dict[str, pd.DataFrame]
    sensitivity_sentences: dict[str, str]
    reporter: dict[str, list[str]]


def findings(config: dict, results_dir="results") -> Findings:
    """Everything :mod:`metarepro.pipeline.findings` builds, for every question of ``config`` whose primary
    analysis has been written under ``results_dir``. ``decision_threshold`` is read from the primary analysis."""
    analyses, defaults = config["analyses"], config.get("defaults") or {}
    labels = defaults.get("labels")
    rows, tables, sentences, reporter = [], {}, {}, {}
    for question, roles in fd.questions(analyses, defaults).items():
        records = {name: read_records(results_dir, name) for name in roles.values()
                   if (Path(results_dir) / name / "pooled.json").is_file()}  # fmt: skip
        primary = records.get(roles["primary"])
        if primary is None:
            continue
        threshold = {**defaults, **analyses[primary.name]}.get("decision_threshold")
        rows.append(fd.sof_row(question, primary.name, primary.pooled, primary.bias, primary.effects, threshold))
        sens = fd.sensitivity_rows(roles, records)
        tables[question] = fd.sensitivity_table(sens)
        sentences[question] = fd.sensitivity_sentence(question, sens, labels)
        reporter[primary.name] = fd.reporter_sentences(primary.pooled, primary.bias, primary.influence,
                                                       primary.effects)  # fmt: skip
    return Findings(fd.sof_table(rows), rows, tables, sentences, reporter)
