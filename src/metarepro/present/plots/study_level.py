"""The study-level reproduction figure: per study, the published estimate and ours, each with its CI, over the
band in which ours would agree (drawn from ``study_level.csv``,
:func:`metarepro.pipeline.study_level.compare_studies`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from metarepro.pipeline.reproduction import RELATIVE_TOLERANCE, STANDARDIZED_TOLERANCE, _standardized
from metarepro.present.plots.style import MUTED, POOLED_COLOR, STUDY_COLOR, TEXT, axis_label, fmt, new_figure

OFFSET = 0.18  # the two estimates of a study sit this far above (published) and below (ours) its row


def row_text(row) -> str:
    """What the right-hand column says for one study: the difference and status, or why nothing is compared."""
    if row.status in ("agrees", "differs"):
        text = f"Δ {fmt(row.difference)} {row.status}"
        return text + (f" ({row.suggested_error})" if row.status == "differs" else "")
    return str(row.status)


def agreement_band(published: float, measure: str) -> tuple[float, float]:
    """The interval around a published estimate in which ours agrees (the verdict scale's threshold)."""
    half = STANDARDIZED_TOLERANCE if _standardized(measure) else RELATIVE_TOLERANCE * abs(published)
    return published - half, published + half


def study_level_plot(table: pd.DataFrame, measure: str = "SMD", title: str = "", labels=None):
    """One row per study of ``table``: the published estimate (open circle) above, ours (filled square) below,
    each with its CI, and the agreement band around the published one. Every artist of row i carries a gid
    ``row{i}-{part}`` (label, band, published, published-ci, ours, ours-ci, text), as the forest plots do."""
    k = len(table)
    height = 1.5 + 0.42 * max(k, 1)
    fig = new_figure((9.0, height))
    ax = fig.add_subplot(111)
    values = table[["estimate_published", "ci_low_published", "ci_high_published", "estimate_ours", "ci_low_ours",
                    "ci_high_ours"]].to_numpy(dtype=float)  # fmt: skip
    finite = values[np.isfinite(values)]
    low, high = (min(finite.min(), 0.0), max(finite.max(), 0.0)) if finite.size else (-1.0, 1.0)
    pad = 0.05 * (high - low or 1.0)
    low, high = low - pad, high + pad
    for i, row in enumerate(table.itertuples(index=False)):
        y = k - 1 - i
        ax.text(low - 0.02 * (high - low), y, str(row.study), ha="right", gid=f"row{i}-label", **TEXT)
        ax.text(high + 0.02 * (high - low), y, row_text(row), ha="left", gid=f"row{i}-text", **TEXT)
        if np.isfinite(row.estimate_published):
            a, b = agreement_band(row.estimate_published, measure)
            ax.fill_betweenx([y - 0.4, y + 0.4], a, b, color="#e8e8e8", lw=0, zorder=0, gid=f"row{i}-band")
        for side, dy, marker, face, colour in (("published", OFFSET, "o", "white", POOLED_COLOR),
                                                ("ours", -OFFSET, "s", STUDY_COLOR, STUDY_COLOR)):  # fmt: skip
            estimate = getattr(row, f"estimate_{side}")
            lo, hi = getattr(row, f"ci_low_{side}"), getattr(row, f"ci_high_{side}")
            if np.isfinite(lo) and np.isfinite(hi):
                ax.plot([lo, hi], [y + dy, y + dy], color=colour, lw=1.2, gid=f"row{i}-{side}-ci")
            if np.isfinite(estimate):
                ax.plot([estimate], [y + dy], marker=marker, ms=6, mfc=face, mec=colour, ls="none", zorder=3,
                        gid=f"row{i}-{side}")  # fmt: skip
    ax.axvline(0.0, color=MUTED, lw=0.8, ls=":")
    ax.set_xlim(low, high)
    ax.set_ylim(-0.8, k - 0.2)
    ax.set_yticks([])
    for spine in ("left", "right", "top"):
        ax.spines[spine].set_visible(False)
    ax.plot([], [], marker="o", mfc="white", mec=POOLED_COLOR, ls="-", color=POOLED_COLOR, label="published")
    ax.plot([], [], marker="s", mfc=STUDY_COLOR, mec=STUDY_COLOR, ls="-", color=STUDY_COLOR, label="ours")
    ax.fill_between([], [], color="#e8e8e8", label="agreement band")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=3, frameon=False, fontsize=TEXT["fontsize"])
    ax.set_xlabel(axis_label(measure, labels))
    if title:
        ax.set_title(title, fontsize=TEXT["fontsize"] + 1, loc="left")
    # fixed margins: the study labels on the left, the differences on the right (outside the axes)
    fig.subplots_adjust(left=0.22, right=0.62, bottom=1.0 / height, top=1 - 0.45 / height)
    return fig
