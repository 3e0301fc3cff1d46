"""The PRISMA-style flow diagram (metarepro.present.plots.flow) read back against the table it is drawn from
(prisma_flow.csv's rows, metarepro.pipeline.prisma.flow_rows): every box's number, in the figure's artists and in
the SVG file, is the table's; the page's caption (the text alternative) says the same numbers."""

import re

import pandas as pd
from figure_readback import svg_gid_texts

from metarepro.pipeline.prisma import Flow, flow_rows
from metarepro.present.plots.flow import flow_plot
from metarepro.present.plots.style import svg_text
from metarepro.present.prisma import flow_caption

# 12 rows of one question in a sheet of 40: 2 incomplete, 1 with contradictory numbers, 1 more of a pooled study_id,
# 1 converted (reported-only), 7 pooled of which 3 flagged (hand count: 12 − 3 = 9 usable, 9 − 2 = 7 pooled)
REASONS = ["incomplete: mean_cases is empty", "incomplete: n_cases is empty", "contradictory numbers (yi > ci_high)",
           "study_id s1 already contributes line 2; pool one row", "converted row; reported means and SDs only",
           *[""] * 7]  # fmt: skip
EFFECTS = pd.DataFrame({"included": [r == "" for r in REASONS], "reason": REASONS,
                        "flags": [""] * 5 + ["likely_sem: x", "", "overlap: y", "", "extreme_effect: z", "", ""]})
EXPECTED = {"sheet-rows": 40, "other-rows-of-the-sheet": 28, "rows-for-the-question": 12, "not-usable": 3,
            "usable": 9, "usable-not-pooled": 2, "pooled": 7, "flagged": 3, "without-flagged-rows": 4}  # fmt: skip


def table():
    return flow_rows("IL-6", "il6_smd", "primary", EFFECTS, 40)


def count(text: str) -> int:
    return int(re.search(r": ([\d,]+)", text).group(1).replace(",", ""))


def test_the_table_counts_by_hand():
    rows = table()
    totals = rows[rows["reason"].eq("") | rows["stage"].isin(["other rows of the sheet", "flagged"])]
    got = {stage.replace(", ", "-").replace(" ", "-"): n for stage, n in zip(totals["stage"], totals["rows"],
                                                                          strict=True)}  # fmt: skip
    assert got == EXPECTED
    reasons = rows[(rows["reason"] != "") & rows["stage"].isin(["not usable", "usable, not pooled"])]
    assert list(zip(reasons["stage"], reasons["reason"], reasons["rows"], strict=True)) == [
        ("not usable", "incomplete: cells the measure needs are empty", 2),
        ("not usable", "contradictory numbers", 1),
        ("usable, not pooled", "another row of the same study_id is pooled (one row per independent sample)", 1),
        ("usable, not pooled", "converted (this analysis uses reported means and SDs only)", 1),
    ]


def test_every_box_shows_the_tables_number_in_the_figure_and_its_svg():
    rows = table()
    flow = Flow.from_rows(rows, "data/raw/x.csv", "marker = IL-6")
    fig = flow_plot(flow, "Flow of rows: IL-6")
    drawn = {t.get_gid(): t.get_text() for t in fig.findobj() if (getattr(t, "get_gid", lambda: None)() or "")
             .startswith("flow-") and hasattr(t, "get_text")}  # fmt: skip
    svg = svg_gid_texts(svg_text(fig), "flow-")
    assert set(drawn) == set(svg) == {f"flow-{stage}" for stage in EXPECTED}
    for stage, n in EXPECTED.items():
        for texts in (drawn, svg):
            # the box's count follows its label's colon ("Rows for IL-6: 12"; the question's name has digits)
            assert count(texts[f"flow-{stage}"]) == n, (stage, texts[f"flow-{stage}"])
    for stage in ("not-usable", "usable-not-pooled"):  # each reason with its count, as in the table
        listed = rows[(rows["stage"] == stage.replace("-not-", ", not ").replace("-", " ")) & (rows["reason"] != "")]
        text = " ".join(svg[f"flow-{stage}"].split())
        for reason, n in zip(listed["reason"], listed["rows"], strict=True):
            assert f"• {reason}: {n}" in text, (reason, text)


def test_the_caption_says_every_number_of_the_figure():
    flow = Flow.from_rows(table(), "data/raw/x.csv", "marker = IL-6")
    caption = flow_caption(flow)
    for phrase in ("40 sheet rows", "28 not selected", "12 rows for the question", "3 not usable", "9 usable",
                   "2 usable but not pooled", "7 pooled in the primary fit (il6_smd), 3 of them flagged",
                   "4 in the fit without flagged rows", "contradictory numbers: 1"):  # fmt: skip
        assert phrase in caption, phrase


def test_a_long_question_wraps_inside_its_box():
    """Caught on the Qin 2016 example, whose question is named by a title of 90 characters: the box's text ran
    into the box beside it. Every line of every box is at most the wrap width."""
    from metarepro.present.plots.flow import WRAP

    question = "IL-6 in Parkinson's disease, Qin 2016 forest plot (DerSimonian-Laird, as published)"
    rows = flow_rows(question, "qin2016_il6", "primary", EFFECTS, 40)
    svg = svg_gid_texts(svg_text(flow_plot(Flow.from_rows(rows, "data/raw/qin2016_pd_il6.csv", "every row"))), "flow-")
    assert max(len(line) for text in svg.values() for line in text.split("\n")) <= WRAP
    assert count(svg["flow-rows-for-the-question"].replace("\n", " ")) == 12
