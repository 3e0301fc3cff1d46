"""Forest plots: one row per included study, the pooled diamond, the prediction interval and the
heterogeneity line, readable from k = 2 to k = 150 (the figure grows with k)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # files only; never a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Polygon  # noqa: E402

AXIS_LABELS = {
    "SMD": "Hedges' g (cases − controls)",
    "MD": "Mean difference (cases − controls)",
    "ROM": "log ratio of means (cases / controls)",
    "ZCOR": "Fisher's z",
    "GEN": "Effect size",
}
ROW_INCHES = 0.24
FIXED_INCHES = 2.2


LABEL_CHARS = 38  # longer study labels are shortened so they never run into the plot


def short_label(text, limit=LABEL_CHARS):
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _fmt(x, digits=2):
    return "NA" if x is None or not np.isfinite(x) else f"{x:.{digits}f}"


def _p_text(p):
    if p is None or not np.isfinite(p):
        return "NA"
    return "< 0.0001" if p < 1e-4 else f"= {p:.4f}"


def heterogeneity_text(pooled: dict) -> str:
    return (
        f"{pooled['method']} model, test {pooled['test']}:  τ² = {_fmt(pooled['tau2'], 3)},  "
        f"I² = {_fmt(pooled['i2'], 1)}%,  Q = {_fmt(pooled['q'])} (df = {int(pooled['q_df'])}), "
        f"p {_p_text(pooled['q_p'])}"
    )


def forest_plot(effects, pooled: dict, title: str = "", measure: str = "SMD"):
    """Build the forest plot of the included rows of ``effects`` (columns study, yi, ci_low, ci_high, weight)."""
    rows = effects[effects["included"]].reset_index(drop=True)
    k = len(rows)
    height = FIXED_INCHES + ROW_INCHES * (k + 3)
    fig = plt.figure(figsize=(10, height))
    grid = fig.add_gridspec(1, 3, width_ratios=[3.0, 4.2, 2.8], wspace=0.02)
    left, mid, right = (fig.add_subplot(grid[0, i]) for i in range(3))
    y_study = np.arange(k, 0, -1, dtype=float)
    y_pooled = -0.6
    ylim = (y_pooled - 1.4, k + 1.2)
    for ax in (left, right):
        ax.set_xlim(0, 1)
        ax.axis("off")
    for ax in (left, mid, right):
        ax.set_ylim(*ylim)

    mid.hlines(y_study, rows["ci_low"], rows["ci_high"], color="black", linewidth=0.8)
    weights = rows["weight"].to_numpy(dtype=float)
    sizes = 12 + 180 * weights / np.nanmax(weights) if k else []
    mid.scatter(rows["yi"], y_study, s=sizes, marker="s", color="#2b5d8a", zorder=3, label="study estimate")
    est, lo, hi = pooled["estimate"], pooled["ci_low"], pooled["ci_high"]
    diamond = Polygon(
        [(lo, y_pooled), (est, y_pooled + 0.35), (hi, y_pooled), (est, y_pooled - 0.35)],
        closed=True, color="#8a2b2b", zorder=3, label="pooled estimate",
    )  # fmt: skip
    mid.add_patch(diamond)
    if pooled.get("pi_low") is not None and np.isfinite(pooled["pi_low"]):
        mid.hlines(y_pooled, pooled["pi_low"], pooled["pi_high"], color="#8a2b2b", linestyle=":", linewidth=1.2,
                   zorder=2, label="prediction interval")  # fmt: skip
    mid.axvline(0, color="grey", linewidth=0.8, zorder=1)
    mid.axhline(0.2, color="black", linewidth=0.6)
    mid.set_yticks([])
    mid.set_xlabel(AXIS_LABELS.get(measure, "Effect size"))
    for side in ("left", "right", "top"):
        mid.spines[side].set_visible(False)

    text = {"fontsize": 9, "va": "center"}
    header_y = k + 0.8
    left.text(0.02, header_y, "Study", fontweight="bold", **text)
    right.text(0.05, header_y, "Estimate [95% CI]", fontweight="bold", **text)
    right.text(0.97, header_y, "Weight", fontweight="bold", ha="right", **{k_: v for k_, v in text.items()})
    for y, row in zip(y_study, rows.itertuples(), strict=True):
        left.text(0.02, y, short_label(row.study), **text)
        right.text(0.05, y, f"{_fmt(row.yi)} [{_fmt(row.ci_low)}, {_fmt(row.ci_high)}]", family="monospace", **text)
        right.text(0.97, y, f"{_fmt(row.weight, 1)}%", ha="right", family="monospace", **text)
    label = f"Pooled ({pooled['method']}, k = {k})"
    left.text(0.02, y_pooled, label, fontweight="bold", **text)
    right.text(0.05, y_pooled, f"{_fmt(est)} [{_fmt(lo)}, {_fmt(hi)}]", family="monospace", fontweight="bold", **text)
    right.text(0.97, y_pooled, "100%", ha="right", family="monospace", fontweight="bold", **text)
    if pooled.get("pi_low") is not None and np.isfinite(pooled["pi_low"]):
        pi = f"Prediction interval [{_fmt(pooled['pi_low'])}, {_fmt(pooled['pi_high'])}]"
        right.text(0.05, y_pooled - 0.8, pi, fontsize=8, va="center")
    fig.text(0.02, 0.35 / height, heterogeneity_text(pooled), fontsize=9)
    if title:
        fig.suptitle(title, fontsize=12, fontweight="bold", x=0.02, ha="left", y=1 - 0.25 / height)
    fig.subplots_adjust(top=1 - 0.7 / height, bottom=1.2 / height, left=0.01, right=0.99)
    return fig


def save_figure(fig, paths):
    """Write one figure to several files (format from each suffix), then release it."""
    for path in paths:
        suffix = str(path).rsplit(".", 1)[-1]
        # no creation dates: the same inputs give the same files
        metadata = {"svg": {"Date": None}, "pdf": {"CreationDate": None}}.get(suffix)
        fig.savefig(path, dpi=150 if suffix == "png" else None, metadata=metadata)
    plt.close(fig)
