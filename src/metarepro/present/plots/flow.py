"""A PRISMA 2020-style flow diagram of one question's rows (Page et al. 2021, BMJ 372:n71, figure 1): boxes down
the left for the rows that go on (sheet rows → rows for the question → usable → pooled → without flagged rows),
and beside each step a box with the rows that leave there, by reason.

Drawn from :class:`metarepro.pipeline.prisma.Flow` (the rows of ``prisma_flow.csv``). Every box's text carries
the gid ``flow-<stage>`` (``flow-usable``, ``flow-not-usable`` ...) so a test can read the numbers back."""

from __future__ import annotations

import textwrap

from matplotlib.patches import FancyArrowPatch, Rectangle

from metarepro.present.plots.style import FONT_SIZE, MUTED, STUDY_COLOR, new_figure

BOX = {"linewidth": 0.8}
MAIN_X, SIDE_X, MAIN_W, SIDE_W = 0.02, 0.53, 0.42, 0.45  # left edges and widths, in axes fractions
WRAP = 50  # characters per line in a box


def _gid(stage: str) -> str:
    return "flow-" + stage.replace(", ", "-").replace(" ", "-")


def _box(ax, x, y, w, h, text, stage, colour):
    ax.add_patch(Rectangle((x, y - h), w, h, facecolor="white", edgecolor=colour, **BOX))
    ax.text(x + 0.012, y - h / 2, text, fontsize=FONT_SIZE - 0.5, va="center", ha="left", gid=_gid(stage),
            parse_math=False, linespacing=1.25)  # fmt: skip


def _arrow(ax, start, end):
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=9, color=MUTED, linewidth=0.8))


def _lines(text: str) -> list[str]:
    return textwrap.wrap(text, WRAP) or [""]


def _reasons(title: str, items) -> str:
    lines = _lines(title)
    for reason, n in items:
        lines += _lines(f"• {reason}: {n:,}")
    return "\n".join(lines)


def flow_plot(flow, title: str = ""):
    """The flow diagram of ``flow`` (:class:`~metarepro.pipeline.prisma.Flow`): main boxes and, beside each step
    where rows leave, the reasons with their counts."""
    c = flow.counts
    main = [  # each paragraph wrapped to the box (a question named by a long title takes several lines)
        ("sheet rows", [f"Sheet rows: {c['sheet rows']:,}", f"({flow.sheet})" if flow.sheet else ""]),
        ("rows for the question", [f"Rows for {flow.question}: {c['rows for the question']:,}", f"({flow.where})"]),
        ("usable", [f"Usable rows (an effect can be computed): {c['usable']:,}"]),
        ("pooled", [f"Pooled in the primary fit ({flow.analysis}): {c['pooled']:,}"]),
        ("without flagged rows", [f"Fit without flagged rows: {c['without flagged rows']:,}"]),
    ]
    main = [(stage, "\n".join(line for p in paragraphs if p for line in _lines(p))) for stage, paragraphs in main]
    side = {
        "sheet rows": ("other rows of the sheet", f"Other rows of the sheet: {c['other rows of the sheet']:,}\n"
                                                  "(not selected by 'where')"),
        "rows for the question": ("not usable", _reasons(f"Not usable: {c['not usable']:,}",
                                                         flow.reasons.get("not usable", []))),
        "usable": ("usable, not pooled", _reasons(f"Usable, not pooled: {c['usable, not pooled']:,}",
                                                  flow.reasons.get("usable, not pooled", []))),
        "pooled": ("flagged", "\n".join(_lines(f"Flagged by a pre-specified quality rule: {c['flagged']:,}")
                                        + _lines("(kept in the primary fit, left out of the fit without flagged "
                                                 "rows)"))),
    }  # fmt: skip
    # box heights from their lines (main and side box of a step share one row of the diagram)
    line_h = 0.16  # inches per line
    heights = []
    for stage, text in main:
        n = text.count("\n") + 1
        m = side[stage][1].count("\n") + 1 if stage in side else 0
        heights.append(max(n, m) * line_h + 0.16)
    gap = 0.3
    total = sum(heights) + gap * (len(main) - 1) + 0.1
    fig = new_figure((7.6, total + (0.35 if title else 0.05)))
    ax = fig.add_axes((0, 0, 1, total / (total + (0.35 if title else 0.05))))
    ax.set_xlim(0, 1)
    ax.set_ylim(0, total)
    ax.axis("off")
    y = total - 0.05
    previous = None
    for (stage, text), h in zip(main, heights, strict=True):
        _box(ax, MAIN_X, y, MAIN_W, h, text, stage, STUDY_COLOR)
        if previous is not None:
            _arrow(ax, (MAIN_X + MAIN_W / 2, previous), (MAIN_X + MAIN_W / 2, y))
        if stage in side:
            side_stage, side_text = side[stage]
            _box(ax, SIDE_X, y, SIDE_W, h, side_text, side_stage, MUTED)
            _arrow(ax, (MAIN_X + MAIN_W, y - h / 2), (SIDE_X, y - h / 2))
        previous = y - h
        y -= h + gap
    if title:
        fig.suptitle(title, fontsize=FONT_SIZE + 1, y=1 - 0.12 / (total + 0.35))
    return fig
