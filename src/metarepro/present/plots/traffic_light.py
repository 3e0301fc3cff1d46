"""robvis-style traffic-light figure (McGuinness & Higgins 2021, Res Synth Methods 12:55–61): one row per study,
one column per domain, a coloured circle with a symbol per judgement, so that the figure reads in grey too.

Drawn from a judgement table (:func:`metarepro.pipeline.findings.rob_judgements` for the sheet's risk-of-bias
columns, else :func:`metarepro.pipeline.findings.flag_judgements` for the quality rules)."""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from metarepro._core.limits import FIGURE_MAX_ROWS
from metarepro.present.plots.style import FONT_SIZE, TEXT, new_figure, tight_layout

# robvis's colours and symbols: low "+", some concerns "−", high "X", no information "?"
JUDGEMENTS = {
    "low": ("#02C100", "+"),
    "some concerns": ("#E2DF07", "−"),
    "high": ("#BF0000", "X"),
    "no information": ("#4EA1F7", "?"),
    "not flagged": ("#02C100", "+"),
    "flagged": ("#BF0000", "!"),
}


# the symbols as markers (mathtext paths, defined once per figure in SVG)
SYMBOL_MARKERS = {"+": "P", "−": "_", "X": "X", "?": "$?$", "!": "$!$"}


def traffic_light_plot(table: pd.DataFrame, title: str = "", domain_labels: dict | None = None,
                       max_rows: int = FIGURE_MAX_ROWS):  # fmt: skip
    """Circles for ``table`` (index: studies; columns: domains, the last one ``overall`` when present; cells: keys
    of :data:`JUDGEMENTS`). The circles of one judgement are one scatter with ``gid`` "judgement-<judgement>" at
    (column, row), so a test can read the figure back against the table. Beyond ``max_rows`` studies
    (:data:`~metarepro._core.limits.FIGURE_MAX_ROWS`), robvis's summary plot instead: per domain one bar, the share
    of studies with each judgement (:func:`summary_plot`)."""
    unknown = sorted({str(v) for v in table.to_numpy().ravel()} - set(JUDGEMENTS))
    if unknown:
        raise ValueError(f"traffic_light_plot: unknown judgement(s) {unknown}; use {sorted(JUDGEMENTS)}")
    k, d = table.shape
    labels = [str((domain_labels or {}).get(c, c)).replace("_", " ") for c in table.columns]
    if k > max_rows:
        return summary_plot(table, labels, title, max_rows)
    fig = new_figure((3.2 + 0.4 * d, 2.4 + 0.3 * k))
    ax = fig.subplots()
    # one scatter per judgement (and one for its symbols): in SVG a marker is defined once and each circle is a
    # <use> of it, a tenth of the bytes of a circle patch per cell
    cells = table.astype(str).to_numpy()
    for value, (colour, symbol) in JUDGEMENTS.items():
        rows, cols = np.nonzero(cells == value)
        if not len(rows):
            continue
        ax.scatter(cols, rows, s=260, c=colour, edgecolors="black", linewidths=0.5, gid=f"judgement-{value}",
                   label=value, zorder=2)  # fmt: skip
        marker = SYMBOL_MARKERS[symbol]
        ax.scatter(cols, rows, s=130 if marker.startswith("$") else 60, c="black", marker=marker, linewidths=0,
                   zorder=3)  # fmt: skip
    ax.set_xlim(-0.6, d - 0.4)
    ax.set_ylim(k - 0.5, -0.5)
    ax.set_aspect("equal")
    ax.set_xticks(range(d), labels, fontsize=FONT_SIZE - 1, rotation=50, ha="left", rotation_mode="anchor")
    ax.xaxis.tick_top()
    ax.set_yticks(range(k), [textwrap.shorten(str(s), 44, placeholder="…") for s in table.index], fontsize=FONT_SIZE)
    for side in ax.spines.values():
        side.set_visible(False)
    ax.tick_params(length=0)
    _legend_and_title(fig, ax, [v for v in JUDGEMENTS if (cells == v).any()], "o", -0.02, title)
    # room on the left: in an inline SVG the browser draws the labels in its own font, often wider than DejaVu's
    tight_layout(fig, rect=(0.06, 0, 1, 1))
    return fig


def summary_plot(table: pd.DataFrame, labels: list[str], title: str, max_rows: int):
    """robvis's summary plot (unweighted): per domain a horizontal bar split into the share of studies with each
    judgement, each segment a rectangle with ``gid`` "share-<domain index>-<judgement>" whose width is that share."""
    cells = table.astype(str).to_numpy()
    k, d = cells.shape
    fig = new_figure((7.0, 1.6 + 0.35 * d))
    ax = fig.subplots()
    used = [v for v in JUDGEMENTS if (cells == v).any()]
    for j in range(d):
        left = 0.0
        for value in used:
            share = float((cells[:, j] == value).mean())
            if share:
                ax.barh(j, share, left=left, color=JUDGEMENTS[value][0], edgecolor="black", linewidth=0.5,
                        gid=f"share-{j}-{value}")  # fmt: skip
            left += share
    ax.set_xlim(0, 1)
    ax.set_xticks(np.linspace(0, 1, 5), [f"{p:.0%}" for p in np.linspace(0, 1, 5)], fontsize=FONT_SIZE - 1)
    ax.set_yticks(range(d), labels, fontsize=FONT_SIZE)
    ax.set_ylim(d - 0.5, -0.5)
    ax.set_xlabel(f"Share of the {k:,} studies (one row per study above {max_rows:,} would not be legible)",
                  fontsize=FONT_SIZE - 1)  # fmt: skip
    _legend_and_title(fig, ax, used, "s", -0.35, title)
    tight_layout(fig)
    return fig


def _legend_and_title(fig, ax, used: list[str], marker: str, below: float, title: str):
    """The judgements drawn, as coloured ``marker`` keys with their symbols, in one row under the axes."""
    handles = [Line2D([], [], ls="", marker=marker, markersize=8, markerfacecolor=JUDGEMENTS[v][0],
                      markeredgecolor="black", markeredgewidth=0.5) for v in used]  # fmt: skip
    ax.legend(handles, [f"{JUDGEMENTS[v][1]}  {v}" for v in used], loc="upper center", ncol=len(used),
              bbox_to_anchor=(0.5, below), frameon=False, fontsize=FONT_SIZE - 1, handlelength=1)  # fmt: skip
    if title:
        fig.suptitle(title, fontsize=FONT_SIZE + 1, **{k: v for k, v in TEXT.items() if k == "parse_math"})
