"""The bubble plot of a meta-regression on one continuous moderator (metafor ``regplot``)."""

from __future__ import annotations

import numpy as np

from metarepro.present.plots.style import (
    POOLED_COLOR,
    STUDY_COLOR,
    axis_label,
    fmt,
    new_figure,
    p_text,
    study_points,
    tight_layout,
)

GRID_POINTS = 200


def bubble_plot(yi, vi, x, fit, moderator_name: str, measure: str = "SMD", title: str = "", labels=None):
    """Effect sizes against one moderator, with the fitted regression line and its confidence band.

    ``fit`` is the single fit of ``rma_mods(yi, vi, [1, x])`` (intercept and this moderator, p = 2). Point areas are
    proportional to the model weights 1/(vᵢ + τ̂²), as metafor's ``regplot``; the band is the pointwise
    ``fit.level``% CI of x·β̂ (Knapp–Hartung-scaled under knha).
    """
    if fit.p != 2 or np.ndim(fit.beta) != 1:
        raise ValueError("bubble_plot needs a single fit with an intercept and one moderator (p = 2)")
    yi, vi, x = (np.asarray(a, dtype=float) for a in (yi, vi, x))
    ok = np.isfinite(yi) & np.isfinite(vi) & np.isfinite(x)
    yi, vi, x = yi[ok], vi[ok], x[ok]
    weights = 1 / (vi + fit.tau2)
    sizes = 15 + 300 * weights / weights.max()

    fig = new_figure((7, 5))
    ax = fig.subplots()
    study_points(ax, x, yi, "study (area ∝ weight)", s=sizes, color=STUDY_COLOR, alpha=0.6, edgecolors="black",
                 linewidths=0.6, zorder=3)  # fmt: skip
    grid = np.linspace(x.min(), x.max(), GRID_POINTS)
    pred = fit.predict(np.column_stack([np.ones_like(grid), grid]))
    ax.fill_between(grid, pred["ci_low"], pred["ci_high"], color=POOLED_COLOR, alpha=0.15, linewidth=0,
                    label=f"{fit.level:g}% CI")  # fmt: skip
    ax.plot(grid, pred["pred"], color=POOLED_COLOR, linewidth=1.5, label="meta-regression")
    ax.axhline(0, color="grey", linewidth=0.8, zorder=1)
    ax.set_xlabel(moderator_name, parse_math=False)
    ax.set_ylabel(axis_label(measure, labels))
    slope = (
        f"slope = {fmt(fit.beta[1], 3)} [{fmt(fit.ci_low[1], 3)}, {fmt(fit.ci_high[1], 3)}], "
        f"p {p_text(fit.pval[1])};  τ² = {fmt(fit.tau2, 3)},  R² = {fmt(fit.R2, 1)}%  "
        f"({fit.method}, test {fit.test}, k = {int(fit.k)})"
    )
    ax.set_title(f"{title}\n{slope}" if title else slope, fontsize=9, loc="left", parse_math=False)
    ax.legend(fontsize=8, loc="best")
    for side in ("right", "top"):
        ax.spines[side].set_visible(False)
    tight_layout(fig)
    return fig
