"""Read what the analyses wrote (results/<analysis>/) into :class:`metarepro.pipeline.findings.AnalysisRecords`,
and build a config's summary of findings, sensitivity summaries and reporter sentences from them."""

from __future__ import annotations

from dataclasses import dataclass, field
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
    """A config's findings: the SoF table, per question its sensitivity table and sentence, per primary analysis
    its reporter sentences, and (filled by the report) per primary analysis a traffic-light figure (SVG)."""

    sof: pd.DataFrame
    sof_rows: list
    sensitivity: dict[str, pd.DataFrame]
    sensitivity_sentences: dict[str, str]
    reporter: dict[str, list[str]]
    figures: dict[str, str] = field(default_factory=dict)


def findings_from_records(analyses: dict, records: dict[str, fd.AnalysisRecords], defaults: dict | None = None,
                          labels: dict | None = None) -> Findings:  # fmt: skip
    """Everything :mod:`metarepro.pipeline.findings` builds, for every question of ``analyses`` whose primary
    analysis is in ``records``. Each analysis's measure is the one its pooled.json records (config defaults
    resolved); ``decision_threshold`` is read from the primary analysis's config."""
    defaults = defaults or {}
    resolved = {name: {**a, **({"measure": records[name].pooled.get("measure")} if name in records else {})}
                for name, a in analyses.items()}  # fmt: skip
    rows, tables, sentences, reporter = [], {}, {}, {}
    for question, roles in fd.questions(resolved, defaults).items():
        primary = records.get(roles["primary"])
        if primary is None:
            continue
        own = {name: records[name] for name in roles.values() if name in records}
        threshold = {**defaults, **analyses[primary.name]}.get("decision_threshold")
        rows.append(fd.sof_row(question, primary.name, primary.pooled, primary.bias, primary.effects, threshold))
        sens = fd.sensitivity_rows(roles, own)
        tables[question] = fd.sensitivity_table(sens)
        own_labels = {**(labels or {}), **(analyses[primary.name].get("labels") or {})}  # e.g. a trial's two arms
        sentences[question] = fd.sensitivity_sentence(question, sens, own_labels)
        reporter[primary.name] = fd.reporter_sentences(
            primary.pooled, primary.bias, primary.influence, primary.effects
        )
    return Findings(fd.sof_table(rows), rows, tables, sentences, reporter)


def findings(config: dict, results_dir="results") -> Findings:
    """:func:`findings_from_records` for a config whose analyses were written under ``results_dir``."""
    analyses, defaults = config["analyses"], config.get("defaults") or {}
    records = {name: read_records(results_dir, name) for name in analyses
               if (Path(results_dir) / name / "pooled.json").is_file()}  # fmt: skip
    return findings_from_records(analyses, records, defaults, defaults.get("labels"))
