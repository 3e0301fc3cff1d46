"""robvis-style traffic-light figure (McGuinness & Higgins 2021, Res Synth Methods 12:55–61): one row per study,
one column per domain, a coloured circle with a symbol per judgement, so that the figure reads in grey too.

Drawn from a judgement table (:func:`metarepro.pipeline.findings.rob_judgements` for the sheet's risk-of-bias
columns, else :func:`metarepro.pipeline.findings.flag_judgements` for the quality rules)."""

from __future__ import annotations

import textwrap

import pandas as pd
from matplotlib.patches import Circle

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


def traffic_light_plot(table: pd.DataFrame, title: str = "", domain_labels: dict | None = None):
    """Circles for ``table`` (index: studies; columns: domains, the last one ``overall`` when present; cells: keys
    of :data:`JUDGEMENTS`). Each circle's ``gid`` is "judgement-<row>-<column>" and its label the judgement, so a
    test can read the figure back against the table."""
    unknown = sorted({str(v) for v in table.to_numpy().ravel()} - set(JUDGEMENTS))
    if unknown:
        raise ValueError(f"traffic_light_plot: unknown judgement(s) {unknown}; use {sorted(JUDGEMENTS)}")
    k, d = table.shape
    labels = [str((domain_labels or {}).get(c, c)).replace("_", " ") for c in table.columns]
    fig = new_figure((3.2 + 0.4 * d, 2.4 + 0.3 * k))
    ax = fig.subplots()
    for i in range(k):
        for j in range(d):
            value = str(table.iat[i, j])
            colour, symbol = JUDGEMENTS[value]
            ax.add_patch(Circle((j, i), 0.36, facecolor=colour, edgecolor="black", linewidth=0.5,
                                gid=f"judgement-{i}-{j}", label=value))  # fmt: skip
            ax.text(j, i, symbol, ha="center", fontsize=FONT_SIZE, fontweight="bold", va="center", parse_math=False)
    ax.set_xlim(-0.6, d - 0.4)
    ax.set_ylim(k - 0.5, -0.5)
    ax.set_aspect("equal")
    ax.set_xticks(range(d), labels, fontsize=FONT_SIZE - 1, rotation=50, ha="left", rotation_mode="anchor")
    ax.xaxis.tick_top()
    ax.set_yticks(range(k), [textwrap.shorten(str(s), 44, placeholder="…") for s in table.index], fontsize=FONT_SIZE)
    for side in ax.spines.values():
        side.set_visible(False)
    ax.tick_params(length=0)
    used = [v for v in JUDGEMENTS if (table == v).to_numpy().any()]
    handles = [Circle((0, 0), 1, facecolor=JUDGEMENTS[v][0], edgecolor="black", linewidth=0.5) for v in used]
    ax.legend(handles, [f"{JUDGEMENTS[v][1]}  {v}" for v in used], loc="upper center", ncol=len(used),
              bbox_to_anchor=(0.5, -0.02), frameon=False, fontsize=FONT_SIZE - 1, handlelength=1)  # fmt: skip
    if title:
        fig.suptitle(title, fontsize=FONT_SIZE + 1, **{k: v for k, v in TEXT.items() if k == "parse_math"})
    # room on the left: in an inline SVG the browser draws the labels in its own font, often wider than DejaVu's
    tight_layout(fig, rect=(0.06, 0, 1, 1))
    return fig
