"""The report's PRISMA 2020 section (``templates/prisma.html``) from a :class:`metarepro.jobs.prisma.Frame`: the
config's texts, the sheets' extraction counts, per question the flow diagram (its caption the same counts in
words, the figure's text alternative) and the characteristics table, and every analysis's methods."""

from __future__ import annotations

from markupsafe import Markup

from metarepro._core.limits import SECTION_MAX_ROWS
from metarepro.pipeline.prisma import CHARACTERISTIC_NAMES, methods_table
from metarepro.present.report import _part, _rows_html, figure_html
from metarepro.quality import RULES

FLOW_TITLE = "Flow of rows (PRISMA 2020-style): {}"


def flow_caption(flow) -> str:
    """The diagram's numbers in words: every box, in the order drawn."""
    c = flow.counts

    def reasons(stage):
        items = flow.reasons.get(stage, [])
        return f" ({'; '.join(f'{r}: {n:,}' for r, n in items)})" if items else ""

    return (f"{flow.question}: {c['sheet rows']:,} sheet rows in {flow.sheet}; {c['other rows of the sheet']:,} not "
            f"selected by 'where'; {c['rows for the question']:,} rows for the question ({flow.where}); "
            f"{c['not usable']:,} not usable{reasons('not usable')}; {c['usable']:,} usable; "
            f"{c['usable, not pooled']:,} usable but not pooled{reasons('usable, not pooled')}; {c['pooled']:,} "
            f"pooled in the primary fit ({flow.analysis}), {c['flagged']:,} of them flagged by a quality rule; "
            f"{c['without flagged rows']:,} in the fit without flagged rows. The same counts are in prisma_flow.csv.")


def prisma_section(frame, max_rows: int = SECTION_MAX_ROWS) -> Markup | str:
    """The section, or nothing when there is no frame (no analysis); a question's characteristics table beyond
    ``max_rows`` pooled rows is named by its file (study_characteristics.csv), as the sections' study tables are."""
    if frame is None:
        return ""
    questions = []
    for q in frame.questions:
        # on the page: no study_id (the study and line name the row) and no column the sheet leaves empty for
        # every pooled row (named under the table); the CSV keeps them all
        table = q.characteristics.drop(columns=["question", "analysis", "study_id"])
        empty = [c for c in table.columns if table[c].astype(object).fillna("").astype(str).str.strip().eq("").all()]
        table = table.drop(columns=empty).rename(columns=CHARACTERISTIC_NAMES)
        text = [c for c in table.columns if not c.startswith(("n ", "line", "year", "female", "age"))]
        uid = f"prisma-flow-{q.analysis}"
        figure = figure_html(q.svg, uid, FLOW_TITLE.format(q.question), flow_caption(q.flow)) if q.svg else ""
        questions.append({"question": q.question, "name": q.analysis, "figure": figure,
                          "pooled": len(q.characteristics), "participants": q.participants,
                          "empty": ", ".join(CHARACTERISTIC_NAMES.get(c, c) for c in empty),
                          "table": _rows_html(table, text, "study_characteristics.csv",
                                              "pooled rows and their characteristics", max_rows,
                                              "characteristics")})  # fmt: skip
    return _part("prisma.html", "prisma", texts=frame.texts, sheets=frame.sheets, questions=questions,
                 methods=methods_table([(name, sentences) for name, _, sentences in frame.methods]),
                 rules=", ".join(RULES))
