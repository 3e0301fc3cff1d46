"""Diagnostic figures: the contour-enhanced funnel plot and the Baujat plot.

Styled like :mod:`metarepro.present.plots.forest`.
Artists carry ``label``s ("observed studies", "filled studies", ...) or
``gid``s so their content can be checked against the tables they are drawn from.
"""

from __future__ import annotations

import textwrap

import numpy as np
from matplotlib.patches import Rectangle

from metarepro._core import dist
from metarepro.present.plots.style import (
    POOLED_COLOR,
    STUDY_COLOR,
    Scale,
    axis_label,
    fmt,
    new_figure,
    study_points,
    tight_layout,
)

CONTOUR_LEVELS = (90, 95, 99)  # significance contours around 0: two-sided p = 0.10, 0.05, 0.01 (metafor's funnel)
BAUJAT_LABELS = 8  # label at most this many studies: the most extreme on either axis


def contour_shades(n):
    """White for the non-significant band, then n greys darkening towards p < the smallest alpha."""
    return ["white"] + [str(g) for g in np.linspace(0.9, 0.6, n)]


def _labels(labels, k, prefix="Study"):
    return [f"{prefix} {i + 1}" for i in range(k)] if labels is None else [str(x) for x in labels]


def _shown(scale, x) -> str:
    """One analysis-scale value as the reader reads it: a proportion in percent, else two decimals."""
    return scale.tick_text(scale.show(x)) if scale.percent else fmt(scale.show(x))


def funnel_plot(yi, vi, estimate=None, trimfill=None, measure="SMD", levels=CONTOUR_LEVELS, title="", labels=None,
                scale=None):
    """Contour-enhanced funnel plot (Peters et al. 2008): effect against standard error (0 at the top).

    Shaded regions are where a study's two-sided p of a z test against 0 falls: white p > 0.10, then
    0.05 < p < 0.10, 0.01 < p < 0.05 and p < 0.01 (darkest) for the default ``levels`` (90, 95, 99)%.
    ``estimate``: pooled line (vertical, solid). ``trimfill``: a :class:`metarepro.stats.bias.Trimfill`; its filled
    studies are added as open circles and its adjusted estimate as a dashed line. ``scale``: the :class:`Scale` of
    the ticks and printed estimates (default ``Scale(measure)``; PFT's needs the studies' harmonic-mean n).
    """
    yi, vi = np.asarray(yi, dtype=float), np.asarray(vi, dtype=float)
    sei = np.sqrt(vi)
    fill_y = fill_se = np.empty(0)
    if trimfill is not None:
        fill_y, fill_se = trimfill.yi[trimfill.fill], np.sqrt(trimfill.vi[trimfill.fill])
    se_max = max(sei.max(), fill_se.max() if fill_se.size else 0.0) * 1.05
    fig = new_figure((7, 6.2))
    ax = fig.subplots()
    se_grid = np.array([0.0, se_max])  # the contours are straight lines through 0
    levels = sorted(levels)
    alphas = [1 - lv / 100 for lv in levels]  # ascending levels: alphas descending, e.g. 0.10, 0.05, 0.01
    crits = dist.norm_isf(np.asarray(alphas) / 2)
    shades = contour_shades(len(levels))
    reach = max(np.abs(np.concatenate([yi, fill_y])).max(), crits[-1] * se_max) * 1.05
    ax.set_facecolor(shades[-1])  # outside the widest contour: p < smallest alpha
    # paint from the widest (most significant) contour inwards; the innermost band (p > largest alpha) is white
    for i in range(len(levels) - 1, -1, -1):
        ax.fill_betweenx(se_grid, -crits[i] * se_grid, crits[i] * se_grid, color=shades[i], linewidth=0)
    scale = scale or Scale(measure)
    scale.apply(ax, -reach, reach)
    ax.set_ylim(se_max, 0)
    ax.axvline(0, color="grey", linewidth=0.8)
    if estimate is not None:
        ax.axvline(estimate, color=POOLED_COLOR, linewidth=1.2, label=f"pooled estimate {_shown(scale, estimate)}")
    study_points(ax, yi, sei, "observed studies", s=28, color=STUDY_COLOR, edgecolor="black", linewidth=0.5, zorder=3)
    if trimfill is not None:
        if fill_y.size:
            study_points(ax, fill_y, fill_se, "filled studies", s=28, facecolor="white", edgecolor="black",
                         linewidth=0.9, zorder=3)  # fmt: skip  # fmt: skip
        adjusted = _shown(scale, trimfill.fit.estimate)
        ax.axvline(trimfill.fit.estimate, color=POOLED_COLOR, linestyle="--", linewidth=1.0,
                   label=f"trim-and-fill estimate {adjusted} (k0 = {trimfill.k0})")  # fmt: skip
    bounds = [f"{a:g}" for a in alphas]
    between = [f"{lo} < p < {hi}" for hi, lo in zip(bounds[:-1], bounds[1:], strict=True)]
    names = [f"p > {bounds[0]}", *between, f"p < {bounds[-1]}"]
    handles = [Rectangle((0, 0), 1, 1, facecolor=c, edgecolor="grey", linewidth=0.5) for c in shades]
    # both legends below the axes, so they never cover studies
    legend = ax.legend(loc="upper right", bbox_to_anchor=(1.0, -0.1), fontsize=8, frameon=False)
    ax.add_artist(legend)
    ax.legend(handles, names, loc="upper left", bbox_to_anchor=(0.0, -0.1), fontsize=8, frameon=False,
              title="two-sided p (z test of 0)", title_fontsize=8)  # fmt: skip
    ax.set_xlabel(axis_label(measure, labels, scale=scale))
    ax.set_ylabel("Standard error")
    if title:
        ax.set_title(title, loc="left", fontsize=12, fontweight="bold", parse_math=False)
    fig.subplots_adjust(left=0.12, right=0.97, top=0.93, bottom=0.27)
    return fig


def _extreme(x, y, n, share=0.15):
    """Indices of the points worth a label: at least ``share`` of the largest value on either axis, the most
    extreme (distance from the origin on the plot's own scales) first, at most ``n`` and at least 3."""
    sx, sy = (np.nanmax(np.abs(v)) or 1.0 for v in (x, y))
    order = np.argsort(-np.hypot(x / sx, y / sy), kind="stable")
    notable = order[(np.abs(x[order]) >= share * sx) | (np.abs(y[order]) >= share * sy)]
    return notable[:n] if notable.size >= 3 else order[: min(3, n)]


def _place_labels(ax, fig, points, names):
    """Annotate ``points`` with ``names``: each label goes to the first of several positions around its point
    where it stays inside the axes and overlaps no label already placed; a label with no such position is left
    out (so no two labels ever collide). Returns the placed labels."""
    renderer = fig.canvas.get_renderer()
    placed, artists = [], []
    offsets = [(dx * r, dy * r, ha, va) for r in (1, 2.5)
               for dx, dy, ha, va in ((0, 4, "center", "bottom"), (5, 0, "left", "center"), (-5, 0, "right", "center"),
                                      (0, -4, "center", "top"), (5, 5, "left", "bottom"), (-5, -5, "right", "top"),
                                      (5, -5, "left", "top"), (-5, 5, "right", "bottom"))]  # fmt: skip
    for (x, y), name in zip(points, names, strict=True):
        for dx, dy, ha, va in offsets:
            text = ax.annotate(name, (x, y), xytext=(dx, dy), textcoords="offset points", ha=ha, va=va,
                               fontsize=8, parse_math=False)  # fmt: skip
            box = text.get_window_extent(renderer).expanded(1.04, 1.08)
            inside = ax.bbox.x0 <= box.x0 and box.x1 <= ax.bbox.x1 and ax.bbox.y0 <= box.y0 and box.y1 <= ax.bbox.y1
            if inside and not any(box.overlaps(other) for other in placed):
                placed.append(box)
                artists.append(text)
                break
            text.remove()
    return artists


def _short(name, width=24):
    """A study label on at most two lines of ``width`` characters, broken at spaces (never inside a word)."""
    lines = textwrap.wrap(name, width=width, break_long_words=False)
    return "\n".join(lines[:2]) + (" …" if len(lines) > 2 else "")


def baujat_plot(result, labels=None, title="", n_labels=BAUJAT_LABELS):
    """Baujat plot (metafor ``baujat``): contribution to heterogeneity (x) against influence on the pooled result (y).

    Every study is a point; the ``n_labels`` most extreme are labelled (with their label, or their row number
    when ``labels`` is None), placed so that no two labels overlap.
    """
    x, y = np.asarray(result.x, dtype=float), np.asarray(result.y, dtype=float)
    names = [str(i + 1) for i in range(x.size)] if labels is None else [str(v) for v in labels]
    fig = new_figure((7, 5.5))
    ax = fig.subplots()
    study_points(ax, x, y, "studies", s=18, color=STUDY_COLOR, alpha=0.6, zorder=2)
    ax.grid(color="lightgray", linewidth=0.6)
    ax.set_axisbelow(True)
    ax.set_xlabel("Contribution to overall heterogeneity" if result.fit.method == "EE" else "Squared Pearson residual")
    ax.set_ylabel("Influence on overall result")
    ax.set_title(title or "Baujat plot", loc="left", fontsize=12, fontweight="bold", parse_math=False)
    ax.margins(0.12)
    tight_layout(fig, rect=(0, 0.05, 1, 1))
    candidates = _extreme(x, y, n_labels)
    texts = _place_labels(ax, fig, list(zip(x[candidates], y[candidates], strict=True)),
                          [_short(names[i]) for i in candidates])  # fmt: skip
    if len(texts) < x.size:
        fig.text(0.01, 0.01, f"Labelled: the {len(texts)} most extreme of {x.size} studies (all are in influence.csv).",
                 fontsize=8, color="#6b6b6b")  # fmt: skip
    return fig


__all__ = ["funnel_plot", "baujat_plot", "contour_shades", "CONTOUR_LEVELS"]
