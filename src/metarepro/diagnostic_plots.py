"""Diagnostic figures: contour-enhanced funnel plot, cumulative and leave-one-out forest plots, Baujat plot.

Styled like :mod:`metarepro.forest` (same colours, fonts, axis labels and row height; its helpers are reused).
Every function takes result objects from :mod:`metarepro.influence` / :mod:`metarepro.bias` and returns a
matplotlib Figure; write it with :func:`metarepro.forest.save_figure`. Artists carry ``label``s ("observed
studies", "filled studies", ...) so their content can be inspected.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from .forest import AXIS_LABELS, FIXED_INCHES, ROW_INCHES, _fmt, plt

STUDY_COLOR = "#2b5d8a"
POOLED_COLOR = "#8a2b2b"
CONTOUR_LEVELS = (90, 95, 99)  # significance contours around 0: two-sided p = 0.10, 0.05, 0.01 (metafor's funnel)


def contour_shades(n):
    """White for the non-significant band, then n greys darkening towards p < the smallest alpha."""
    return ["white"] + [str(g) for g in np.linspace(0.9, 0.6, n)]


def _labels(labels, k, prefix="Study"):
    return [f"{prefix} {i + 1}" for i in range(k)] if labels is None else [str(x) for x in labels]


def funnel_plot(yi, vi, estimate=None, trimfill=None, measure="SMD", levels=CONTOUR_LEVELS, title=""):
    """Contour-enhanced funnel plot (Peters et al. 2008): effect against standard error (0 at the top).

    Shaded regions are where a study's two-sided p of a z test against 0 falls: white p > 0.10, then
    0.05 < p < 0.10, 0.01 < p < 0.05 and p < 0.01 (darkest) for the default ``levels`` (90, 95, 99)%.
    ``estimate``: pooled line (vertical, solid). ``trimfill``: a :class:`metarepro.bias.Trimfill`; its filled
    studies are added as open circles and its adjusted estimate as a dashed line.
    """
    yi, vi = np.asarray(yi, dtype=float), np.asarray(vi, dtype=float)
    sei = np.sqrt(vi)
    fill_y = fill_se = np.empty(0)
    if trimfill is not None:
        fill_y, fill_se = trimfill.yi[trimfill.fill], np.sqrt(trimfill.vi[trimfill.fill])
    se_max = max(sei.max(), fill_se.max() if fill_se.size else 0.0) * 1.05
    fig, ax = plt.subplots(figsize=(7, 6.2))
    se_grid = np.linspace(0, se_max, 200)
    levels = sorted(levels)
    alphas = [1 - lv / 100 for lv in levels]  # ascending levels: alphas descending, e.g. 0.10, 0.05, 0.01
    crits = stats.norm.isf(np.asarray(alphas) / 2)
    shades = contour_shades(len(levels))
    reach = max(np.abs(np.concatenate([yi, fill_y])).max(), crits[-1] * se_max) * 1.05
    ax.set_facecolor(shades[-1])  # outside the widest contour: p < smallest alpha
    # paint from the widest (most significant) contour inwards; the innermost band (p > largest alpha) is white
    for i in range(len(levels) - 1, -1, -1):
        ax.fill_betweenx(se_grid, -crits[i] * se_grid, crits[i] * se_grid, color=shades[i], linewidth=0)
    ax.set_xlim(-reach, reach)
    ax.set_ylim(se_max, 0)
    ax.axvline(0, color="grey", linewidth=0.8)
    if estimate is not None:
        ax.axvline(estimate, color=POOLED_COLOR, linewidth=1.2, label=f"pooled estimate {_fmt(estimate)}")
    ax.scatter(yi, sei, s=28, color=STUDY_COLOR, edgecolor="black", linewidth=0.5, zorder=3, label="observed studies")
    if trimfill is not None:
        if fill_y.size:
            ax.scatter(fill_y, fill_se, s=28, facecolor="white", edgecolor="black", linewidth=0.9, zorder=3,
                       label="filled studies")  # fmt: skip
        ax.axvline(trimfill.fit.estimate, color=POOLED_COLOR, linestyle="--", linewidth=1.0,
                   label=f"trim-and-fill estimate {_fmt(trimfill.fit.estimate)} (k0 = {trimfill.k0})")  # fmt: skip
    bounds = [f"{a:g}" for a in alphas]
    between = [f"{lo} < p < {hi}" for hi, lo in zip(bounds[:-1], bounds[1:], strict=True)]
    names = [f"p > {bounds[0]}", *between, f"p < {bounds[-1]}"]
    handles = [plt.Rectangle((0, 0), 1, 1, facecolor=c, edgecolor="grey", linewidth=0.5) for c in shades]
    # both legends below the axes, so they never cover studies
    legend = ax.legend(loc="upper right", bbox_to_anchor=(1.0, -0.1), fontsize=8, frameon=False)
    ax.add_artist(legend)
    ax.legend(handles, names, loc="upper left", bbox_to_anchor=(0.0, -0.1), fontsize=8, frameon=False,
              title="two-sided p (z test of 0)", title_fontsize=8)  # fmt: skip
    ax.set_xlabel(AXIS_LABELS.get(measure, "Effect size"))
    ax.set_ylabel("Standard error")
    if title:
        ax.set_title(title, loc="left", fontsize=12, fontweight="bold")
    fig.subplots_adjust(left=0.12, right=0.97, top=0.93, bottom=0.27)
    return fig


def _interval_rows(ax, labels, est, lo, hi, reference, reference_label, measure):
    """Shared body of the cumulative and leave-one-out plots: one estimate with CI per row."""
    k = len(labels)
    y = np.arange(k, 0, -1, dtype=float)
    ax.hlines(y, lo, hi, color="black", linewidth=0.8)
    ax.scatter(est, y, s=30, marker="s", color=STUDY_COLOR, zorder=3, label="estimate")
    ax.axvline(0, color="grey", linewidth=0.8, zorder=1)
    if reference is not None:
        ax.axvline(reference, color=POOLED_COLOR, linestyle="--", linewidth=1.0, label=reference_label)
    ax.set_yticks(y)
    ax.set_yticklabels(labels, fontsize=9)
    ax.set_ylim(0.3, k + 0.7)
    ax.set_xlabel(AXIS_LABELS.get(measure, "Effect size"))
    for side in ("right", "top"):
        ax.spines[side].set_visible(False)
    right = ax.secondary_yaxis("right")
    right.set_yticks(y)
    right.set_yticklabels([f"{_fmt(e)} [{_fmt(a)}, {_fmt(b)}]" for e, a, b in zip(est, lo, hi, strict=True)],
                          fontsize=9, family="monospace")  # fmt: skip
    right.tick_params(length=0)


def _table_figure(k):
    return plt.subplots(figsize=(9, FIXED_INCHES + ROW_INCHES * (k + 1)))


def cumulative_forest_plot(table, labels=None, measure="SMD", title=""):
    """Cumulative meta-analysis (metafor ``forest(cumul(...))``): row i is the fit of the first i studies.

    ``table``: :func:`metarepro.influence.cumul`'s result; ``labels``: study labels in **original** order (row i
    is labelled "+ <study added at step i>"). The last row equals the full fit.
    """
    names = _labels(labels, len(table.order))
    row_labels = [f"+ {names[j]}" for j in table.order]
    fig, ax = _table_figure(len(row_labels))
    _interval_rows(ax, row_labels, table.estimate, table.ci_low, table.ci_high, table.estimate[-1],
                   f"all studies {_fmt(table.estimate[-1])}", measure)  # fmt: skip
    ax.set_title(title or f"Cumulative meta-analysis ({table.method})", loc="left", fontsize=12, fontweight="bold")
    fig.tight_layout()
    return fig


def leave1out_plot(table, estimate=None, labels=None, measure="SMD", title=""):
    """Leave-one-out estimates (metafor ``forest(leave1out(...))``): row i omits study i.

    ``estimate``: the full-model estimate, drawn as a dashed reference line.
    """
    names = _labels(labels, len(table.order))
    row_labels = [f"− {names[j]}" for j in table.order]
    fig, ax = _table_figure(len(row_labels))
    _interval_rows(ax, row_labels, table.estimate, table.ci_low, table.ci_high, estimate,
                   None if estimate is None else f"all studies {_fmt(estimate)}", measure)  # fmt: skip
    ax.set_title(title or f"Leave-one-out analysis ({table.method})", loc="left", fontsize=12, fontweight="bold")
    fig.tight_layout()
    return fig


def baujat_plot(result, labels=None, title=""):
    """Baujat plot (metafor ``baujat``): contribution to heterogeneity (x) against influence on the pooled result (y),
    each study drawn as its label (metafor's ``symbol = "ids"``, or ``"slab"`` when ``labels`` are given)."""
    names = [str(i + 1) for i in range(result.x.size)] if labels is None else [str(x) for x in labels]
    fig, ax = plt.subplots(figsize=(7, 5.5))
    ax.scatter(result.x, result.y, s=10, color=STUDY_COLOR, alpha=0.35, zorder=2, label="studies")
    for x, y, name in zip(result.x, result.y, names, strict=True):
        ax.annotate(name, (x, y), fontsize=8, ha="center", va="bottom", xytext=(0, 3), textcoords="offset points")
    ax.grid(color="lightgray", linewidth=0.6)
    ax.set_axisbelow(True)
    equal_effects = result.fit.method == "EE"
    ax.set_xlabel("Contribution to overall heterogeneity" if equal_effects else "Squared Pearson residual")
    ax.set_ylabel("Influence on overall result")
    ax.set_title(title or "Baujat plot", loc="left", fontsize=12, fontweight="bold")
    fig.tight_layout()
    return fig


__all__ = ["funnel_plot", "cumulative_forest_plot", "leave1out_plot", "baujat_plot"]
