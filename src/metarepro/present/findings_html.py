"""HTML fragments of the findings (:mod:`metarepro.pipeline.findings`): the summary-of-findings table, a question's
sensitivity table with its sentence, and the reporter()-like sentences. Each returns a self-contained fragment
(escaped text, ids unique per question) for the report to place."""

from __future__ import annotations

import re
from html import escape

import pandas as pd

from metarepro.pipeline.findings import SofRow, conclusion_text, num
from metarepro.present.plots.style import MEASURE_NAMES

SOF_NOTE = (
    "GRADE domains as the numbers of each question's primary analysis suggest them: every entry is a suggestion "
    "that a person confirms or overrides, with the rule and the numbers that led to it. Indirectness is not "
    "computed. Rules: risk of bias, flagged rows carry ≥ 50% of the weight or leaving them out changes the "
    "conclusion (GRADE 4, Guyatt et al. 2011); inconsistency, I² ≥ 50% or a prediction interval that includes "
    "the null while the CI does not (GRADE 7); imprecision, a CI that includes the null or the decision "
    "threshold, or fewer participants than the optimal information size (GRADE 6); publication bias, Egger's "
    "test p < 0.10 with k ≥ 10, or trim-and-fill changing the conclusion (GRADE 5; Cochrane Handbook §13.3.5.4). "
    "Estimates on the reader's scale (ratios for ROM, r for correlations). Cochrane Handbook ch. 14."
)
# Text cells read left-aligned (the page aligns table cells right, for numbers); the suggestion's colour is only a
# cue beside its words and symbol.
FINDINGS_STYLE = """
table.sof td, table.sof th[scope=row], table.sensitivity td:last-child, table.sensitivity th[scope=row] {
  text-align: left; vertical-align: top; }
table.sof td.grade-concern strong { color: #8a2b00; }
table.sof td.grade-ok strong { color: #1d6b1d; }
table.sof td.grade-na strong { color: #555; }
"""
MARK = {True: "⚠ consider rating down", False: "✓ no serious concern", None: "? not assessable"}


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "q"


def sof_html(rows: list[SofRow]) -> str:
    """The SoF table: question, estimate [CI] on the reader's scale, k, participants, then per GRADE domain the
    suggestion (to be confirmed) over its reason."""
    if not rows:
        return ""
    domains = [s.domain for s in rows[0].suggestions]
    head = "".join(f"<th scope='col'>{escape(h)}</th>" for h in ["Question", "Estimate [CI]", "k", "Participants"])
    head += "".join(f"<th scope='col'>{escape(d.capitalize())} (suggestion)</th>" for d in domains)
    body = []
    for r in rows:
        measure = MEASURE_NAMES.get(r.measure, r.measure)
        cells = [
            f"<th scope='row'>{escape(r.question)}<br><small>{escape(r.analysis)}</small></th>",
            f"<td>{escape(measure)} {num(r.estimate)} [{num(r.ci_low)}, {num(r.ci_high)}]"
            f"<br><small>{r.level:g}% CI</small></td>",
            f"<td>{r.k}</td>",
            f"<td>{int(r.participants) if r.participants == r.participants else 'NA'}</td>",
        ]
        for s in r.suggestions:
            cls = {True: "concern", False: "ok", None: "na"}[s.concern]
            cells.append(
                f"<td class='grade-{cls}'><strong>{escape(MARK[s.concern])}</strong>"
                f"<br><small>{escape(s.reason)}</small></td>"
            )
        body.append(f"<tr>{''.join(cells)}</tr>")
    return (
        "<table class='sof'><caption>Summary of findings: GRADE domain suggestions, each to be confirmed by a "
        f"person</caption><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
        f"<p class='note'>{escape(SOF_NOTE)}</p>"
    )


def sensitivity_html(question: str, table: pd.DataFrame, sentence: str, labels: dict | None = None) -> str:
    """A question's sensitivity table (one line per analysis or range) and its sentence."""
    rows = []
    for r in table.itertuples(index=False):
        what = "range of estimates" if r.kind == "range" else "CI"
        said = "conclusions differ" if pd.isna(r.conclusion) else conclusion_text(int(r.conclusion), labels, r.measure)
        k = "" if pd.isna(r.k) else int(r.k)
        rows.append(
            f"<tr><th scope='row'>{escape(r.label)}</th><td>{escape(r.analysis)}</td><td>{k}</td>"
            f"<td>{num(r.estimate)} [{num(r.low)}, {num(r.high)}] <small>({what})</small></td>"
            f"<td>{escape(said)}</td><td><small>{escape(r.note)}</small></td></tr>"
        )
    head = "".join(
        f"<th scope='col'>{h}</th>" for h in ("Sensitivity analysis", "Analysis", "k", "Estimate", "Conclusion", "")
    )
    return (
        f"<section id='sensitivity-{_slug(question)}' aria-label='Sensitivity summary, {escape(question)}'>"
        f"<p>{escape(sentence)}</p><table class='sensitivity'><caption>Sensitivity summary: {escape(question)} "
        f"(each estimate on its analysis's reader scale)</caption><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></section>"
    )


def reporter_html(sentences: list[str]) -> str:
    """The reporter()-like sentences as one paragraph."""
    return f"<p class='reporter'>{escape(' '.join(sentences))}</p>" if sentences else ""
