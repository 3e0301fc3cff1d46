"""The PRISMA frame of a config's report (:mod:`metarepro.pipeline.prisma`) from the files the analyses wrote and
the sheets they read, and the tables the report job writes beside the page: the flow of rows
(``prisma_flow.csv``), the study characteristics (``study_characteristics.csv``), the summary of findings
(``summary_of_findings.csv``) and the sensitivity summaries (``sensitivity_summary.csv``)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from metarepro.jobs.files import analysis_sheet, write_table
from metarepro.pipeline import findings as fd
from metarepro.pipeline import prisma as pr

# The config's texts of the PRISMA frame (config key ``prisma``), in the order the page shows them, with the
# PRISMA 2020 item each answers.
TEXTS = {
    "eligibility": "Eligibility criteria (PRISMA item 5)",
    "sources": "Information sources and search (items 6–7)",
    "selection": "Selection process (item 8)",
    "extraction": "Data collection process (item 9)",
}


@dataclass
class Question:
    """One question's part of the frame: its primary analysis's flow (drawn) and pooled rows' characteristics."""

    question: str
    analysis: str
    flow: pr.Flow
    characteristics: pd.DataFrame
    participants: str
    svg: str = ""


@dataclass
class Frame:
    """Everything the page's PRISMA section shows."""

    texts: list[tuple[str, str, str]]  # (key, heading, text or "" when the config states none)
    sheets: list[tuple[str, int, list]]  # (sheet, rows, pr.extraction_counts)
    questions: list[Question]
    methods: list[tuple[str, str, list[tuple[str, str]]]]  # (analysis, title, (topic, sentence) ...)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)  # prisma_flow, characteristics (CSV)


def prisma_frame(names, analyses: dict, sections, texts: dict | None = None, defaults: dict | None = None,
                 sheets: dict | None = None) -> Frame:  # fmt: skip
    """The frame for the analyses ``names`` (config entries ``analyses``; ``sections``: each one's
    :class:`~metarepro.present.report.AnalysisSection`, with pooled, effects and bias), ``texts`` the config's
    ``prisma`` mapping. ``sheets``: each sheet already read (path -> DataFrame); the others are read here."""
    texts, sheets = texts or {}, dict(sheets or {})
    by_name = dict(zip(names, sections, strict=True))
    for name in names:
        path = analyses[name]["data"]
        if path not in sheets:
            sheets[path] = analysis_sheet(path, analyses[name])
    resolved = {name: {**analyses[name], "measure": by_name[name].pooled.get("measure")} for name in names}
    flows, questions = [], []
    for question, roles in fd.questions(resolved, defaults).items():
        own = {role: pr.flow_rows(question, name, role, by_name[name].effects, len(sheets[analyses[name]["data"]]))
               for role, name in roles.items()}  # fmt: skip
        flows += own.values()
        primary = roles["primary"]
        config, effects = analyses[primary], by_name[primary].effects
        flow = pr.Flow.from_rows(own["primary"], str(config["data"]), pr.where_text(config.get("where")))
        table = pr.characteristics(question, primary, effects, sheets[config["data"]])
        questions.append(Question(question, primary, flow, table, pr.participants_text(effects)))
    methods = []
    for name in names:
        s = by_name[name]
        columns = sheets[analyses[name]["data"]].attrs.get("columns", [])
        methods.append((name, s.title, pr.methods_sentences(s.pooled, s.bias, s.effects, analyses[name], columns)))
    counts = [(path, len(sheet), pr.extraction_counts(sheet)) for path, sheet in sheets.items()]
    flow_table = pd.concat(flows, ignore_index=True) if flows else pd.DataFrame(columns=pr.FLOW_COLUMNS)
    tables = {"prisma_flow": flow_table, "characteristics": _characteristics_table([q.characteristics
                                                                                   for q in questions])}
    return Frame([(key, heading, str(texts.get(key) or "").strip()) for key, heading in TEXTS.items()], counts,
                 questions, methods, tables)  # fmt: skip


def _characteristics_table(tables: list[pd.DataFrame]) -> pd.DataFrame:
    """The questions' characteristics in one table, columns in :data:`~metarepro.pipeline.prisma.CHARACTERISTICS`
    order whichever sheet has them (empty where a sheet has no such column)."""
    if not tables:
        return pd.DataFrame()
    table = pd.concat(tables, ignore_index=True)
    head, tail = ["question", "analysis", "line", "study_id", "study"], ["input", "conversion"]
    return table[head + [c for c in pr.CHARACTERISTICS if c in table] + tail]


def findings_tables(found) -> dict[str, pd.DataFrame]:
    """The summary of findings (one row per question) and every question's sensitivity summary (a ``question``
    column first) as the tables the report job writes (:class:`metarepro.jobs.findings.Findings`)."""
    if found is None:
        return {"sof": pd.DataFrame(), "sensitivity": pd.DataFrame()}
    sensitivity = [table.assign(question=question)[["question", *table.columns]]
                   for question, table in found.sensitivity.items()]  # fmt: skip
    return {"sof": found.sof, "sensitivity": pd.concat(sensitivity, ignore_index=True) if sensitivity
            else pd.DataFrame()}  # fmt: skip


def write_tables(tables: dict[str, pd.DataFrame], out: dict) -> None:
    """Each table whose kind ``out`` names a file for (:data:`metarepro.jobs.outputs.OVERVIEW_TABLES`)."""
    for kind, path in out.items():
        if kind in tables:
            write_table(tables[kind], path)
