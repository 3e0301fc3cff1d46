"""Figures for moderator analyses: the bubble plot of a meta-regression and the subgroup forest plot.

Both follow the look of ``forest.py`` (its axis labels, number formats and sizes are reused); save them with
``forest.save_figure``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.patches import Polygon

from .forest import AXIS_LABELS, FIXED_INCHES, ROW_INCHES, _fmt, _p_text, plt
from .metareg import MetaregResult
from .subgroups import SubgroupResult

POINT_COLOR = "#2b5d8a"
POOLED_COLOR = "#8a2b2b"
GRID_POINTS = 200


def bubble_plot(yi, vi, x, fit: MetaregResult, moderator_name: str, measure: str = "SMD", title: str = ""):
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

    fig, ax = plt.subplots(figsize=(7, 5))
    ax.scatter(x, yi, s=sizes, color=POINT_COLOR, alpha=0.6, edgecolors="black", linewidths=0.6, zorder=3,
               label="study (area ∝ weight)")  # fmt: skip
    grid = np.linspace(x.min(), x.max(), GRID_POINTS)
    pred = fit.predict(np.column_stack([np.ones_like(grid), grid]))
    ax.fill_between(grid, pred["ci_low"], pred["ci_high"], color=POOLED_COLOR, alpha=0.15, linewidth=0,
                    label=f"{fit.level:g}% CI")  # fmt: skip
    ax.plot(grid, pred["pred"], color=POOLED_COLOR, linewidth=1.5, label="meta-regression")
    ax.axhline(0, color="grey", linewidth=0.8, zorder=1)
    ax.set_xlabel(moderator_name)
    ax.set_ylabel(AXIS_LABELS.get(measure, "Effect size"))
    slope = (
        f"slope = {_fmt(fit.beta[1], 3)} [{_fmt(fit.ci_low[1], 3)}, {_fmt(fit.ci_high[1], 3)}], "
        f"p {_p_text(fit.pval[1])};  τ² = {_fmt(fit.tau2, 3)},  R² = {_fmt(fit.R2, 1)}%  "
        f"({fit.method}, test {fit.test}, k = {int(fit.k)})"
    )
    ax.set_title(f"{title}\n{slope}" if title else slope, fontsize=9, loc="left")
    ax.legend(fontsize=8, loc="best")
    for side in ("right", "top"):
        ax.spines[side].set_visible(False)
    fig.tight_layout()
    return fig


def _diamond(ax, y, est, lo, hi, label=None):
    ax.add_patch(Polygon([(lo, y), (est, y + 0.35), (hi, y), (est, y - 0.35)], closed=True, color=POOLED_COLOR,
                         zorder=3, label=label))  # fmt: skip


def differences_text(result: SubgroupResult) -> str:
    """The two tests of subgroup differences, as printed under the subgroup forest plot."""
    df1, df2 = result.QM_df
    if result.test == "knha":
        qm = f"F({_fmt(df1, 0)}, {_fmt(df2, 0)}) = {_fmt(result.QM)}"
    else:
        qm = f"QM = {_fmt(result.QM)} (df = {_fmt(df1, 0)})"
    return (
        f"Test for subgroup differences (mixed-effects model, common τ²): {qm}, p {_p_text(result.QM_p)}\n"
        f"Between-subgroup Q (separate τ² per subgroup): Q = {_fmt(result.Q_between)} "
        f"(df = {result.Q_between_df}), p {_p_text(result.Q_between_p)}"
    )


def subgroup_forest_plot(effects: pd.DataFrame, groups, subgroup_result: SubgroupResult, title: str = "",
                         measure: str = "SMD"):  # fmt: skip
    """Forest plot with the studies in one block per subgroup, each closed by its pooled diamond.

    ``effects`` has the columns of ``compute_effects`` (study, yi, vi, ci_low, ci_high; rows with ``included``
    False are skipped); ``groups`` is a column name of ``effects`` or one label per row. Marker areas are the
    within-subgroup weights 1/(vᵢ + τ̂²_g). The tests of subgroup differences are printed at the bottom.
    """
    labels = effects[groups] if isinstance(groups, str) else pd.Series(list(groups), index=effects.index)
    keep = np.isfinite(effects["yi"].to_numpy(dtype=float)) & labels.notna().to_numpy()
    if "included" in effects:
        keep &= effects["included"].to_numpy(dtype=bool)
    rows = effects[keep].assign(_group=labels[keep].astype(str).to_numpy()).reset_index(drop=True)
    fits = subgroup_result.fits
    blocks = []
    for i, level in enumerate(subgroup_result.levels):
        block = rows[rows["_group"] == level]
        if len(block) != int(fits.k[i]):
            raise ValueError(f"subgroup {level!r}: {len(block)} rows here but {int(fits.k[i])} in the fit")
        blocks.append(block)

    n_lines = sum(len(b) + 3 for b in blocks)
    height = FIXED_INCHES + 0.4 + ROW_INCHES * (n_lines + 2)
    fig = plt.figure(figsize=(10, height))
    grid = fig.add_gridspec(1, 3, width_ratios=[3.0, 4.2, 2.8], wspace=0.02)
    left, mid, right = (fig.add_subplot(grid[0, i]) for i in range(3))
    text = {"fontsize": 9, "va": "center"}
    y = float(n_lines)
    left.text(0.02, y + 0.8, "Study", fontweight="bold", **text)
    right.text(0.05, y + 0.8, "Estimate [95% CI]", fontweight="bold", **text)
    right.text(0.97, y + 0.8, "Weight", fontweight="bold", ha="right", **text)
    for i, (level, block) in enumerate(zip(subgroup_result.levels, blocks, strict=True)):
        left.text(0.02, y, str(level), fontweight="bold", fontstyle="italic", **text)
        y -= 1
        w = 1 / (block["vi"].to_numpy(dtype=float) + fits.tau2[i])
        weight = 100 * w / w.sum()
        ys = y - np.arange(len(block))
        mid.hlines(ys, block["ci_low"], block["ci_high"], color="black", linewidth=0.8)
        mid.scatter(block["yi"], ys, s=12 + 180 * weight / 100, marker="s", color=POINT_COLOR, zorder=3,
                    label="study estimate" if i == 0 else None)  # fmt: skip
        for yy, row, wt in zip(ys, block.itertuples(), weight, strict=True):
            left.text(0.06, yy, str(row.study), **text)
            right.text(0.05, yy, f"{_fmt(row.yi)} [{_fmt(row.ci_low)}, {_fmt(row.ci_high)}]", family="monospace",
                       **text)  # fmt: skip
            right.text(0.97, yy, f"{_fmt(wt, 1)}%", ha="right", family="monospace", **text)
        y -= len(block)
        est, lo, hi = fits.estimate[i], fits.ci_low[i], fits.ci_high[i]
        _diamond(mid, y, est, lo, hi, label="subgroup estimate" if i == 0 else None)
        left.text(0.06, y, f"Subgroup ({subgroup_result.method}, k = {int(fits.k[i])}, "
                           f"I² = {_fmt(fits.i2[i], 1)}%)", fontweight="bold", **text)  # fmt: skip
        right.text(0.05, y, f"{_fmt(est)} [{_fmt(lo)}, {_fmt(hi)}]", family="monospace", fontweight="bold", **text)
        y -= 2
    ylim = (y + 0.5, n_lines + 1.4)
    for ax in (left, right):
        ax.set_xlim(0, 1)
        ax.axis("off")
    for ax in (left, mid, right):
        ax.set_ylim(*ylim)
    mid.axvline(0, color="grey", linewidth=0.8, zorder=1)
    mid.set_yticks([])
    mid.set_xlabel(AXIS_LABELS.get(measure, "Effect size"))
    for side in ("left", "right", "top"):
        mid.spines[side].set_visible(False)
    fig.text(0.02, 0.3 / height, differences_text(subgroup_result), fontsize=9)
    if title:
        fig.suptitle(title, fontsize=12, fontweight="bold", x=0.02, ha="left", y=1 - 0.25 / height)
    fig.subplots_adjust(top=1 - 0.7 / height, bottom=1.5 / height, left=0.01, right=0.99)
    return fig


__all__ = ["bubble_plot", "subgroup_forest_plot", "differences_text"]
