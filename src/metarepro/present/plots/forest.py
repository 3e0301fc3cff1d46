"""Forest plots, all drawn by one function from one table of rows.

Every forest-type figure (the analysis forest, subgroups, cumulative, leave-one-out, the report's atlas and its
published-vs-reproduced figure) is a :func:`rows_table` — one row per line of the figure with its label,
estimate and CI — drawn by :func:`draw_forest`. The table is made from the same table that the workflow writes
beside the figure (``effects.csv``, ``cumulative.csv``, ...), never from a separately ordered list, and every
drawn element carries the row's number in its ``gid`` (``row3-label``, ``row3-ci``, ``row3-point``,
``row3-text``), so tests and readers of the SVG can check each row against its table.

Conventions (meta/RevMan): square area proportional to the weight; CIs clipped at the axis limits are drawn to
the limit with an arrowhead; the x range comes from the data (estimates and pooled CIs always inside; study CIs
far outside are clipped rather than squeezing everything else); ROM and ZCOR axes and numbers are
back-transformed (ratio, r); labels wrap at word boundaries and are never cut.
"""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd
from matplotlib.patches import Polygon

from metarepro._core.limits import FIGURE_MAX_ROWS
from metarepro.present.plots.style import (
    MUTED,
    POOLED_COLOR,
    PROPORTIONS,
    STUDY_COLOR,
    TEXT,
    Scale,
    axis_label,
    fmt,
    group_labels,
    level_text,
    new_figure,
    p_text,
)

KINDS = ("study", "summary", "header", "note")
ROW_COLUMNS = ("label", "kind", "estimate", "ci_low", "ci_high", "weight", "pi_low", "pi_high")
CHAR_INCHES = 0.068  # mean advance of a 9 pt DejaVu Sans character
MONO_CHAR_INCHES = 0.075
LINE_INCHES = 0.2
MAX_LABEL_INCHES = 4.0
PLOT_INCHES = 3.6
MAX_MARKER = 11.0  # points: side of the square of the heaviest study


def rows_table(label, estimate, ci_low, ci_high, kind="study", weight=np.nan, **extra) -> pd.DataFrame:
    """A table of figure rows (one per line of the figure, top to bottom); ``extra`` columns are kept."""
    frame = pd.DataFrame({"label": pd.Series(label, dtype=object).astype(str).to_numpy()})
    n = len(frame)
    for name, value in (("kind", kind), ("estimate", estimate), ("ci_low", ci_low), ("ci_high", ci_high),
                        ("weight", weight)):  # fmt: skip
        frame[name] = np.broadcast_to(np.asarray(value, dtype=object if name == "kind" else float), n).copy()
    for name, value in extra.items():
        frame[name] = value
    for name in ("pi_low", "pi_high"):
        if name not in frame:
            frame[name] = np.nan
    return frame


def _wrap(text: str, width: int) -> str:
    # break_long_words=False: a word longer than the column stays whole (the column widens instead)
    return "\n".join(textwrap.wrap(text, width=width, break_long_words=False, break_on_hyphens=False)) or text


def x_range(rows: pd.DataFrame, null: float = 0.0):
    """Axis limits from the data: every estimate (and the null) inside; intervals too, unless that would shrink
    the estimates' own range below 40% of the axis — then the axis ends 60% of that range beyond them and the
    longer intervals are clipped with arrowheads."""
    est = rows["estimate"].to_numpy(dtype=float)
    core = np.concatenate([est, [null]])
    core = core[np.isfinite(core)]
    full = np.concatenate([core, rows[["ci_low", "ci_high", "pi_low", "pi_high"]].to_numpy(dtype=float).ravel()])
    full = full[np.isfinite(full)]
    lo, hi = core.min(), core.max()
    span = max(hi - lo, 1e-3 * max(1.0, abs(lo), abs(hi)))
    if not np.isfinite(null):  # a proportion: no null to keep in view, so every interval is
        lo, hi = full.min(), full.max()
    elif full.max() - full.min() <= 2.5 * span:
        lo, hi = full.min(), full.max()
    else:
        lo, hi = max(full.min(), lo - 0.6 * span), min(full.max(), hi + 0.6 * span)
    pad = 0.04 * (hi - lo)
    return lo - pad, hi + pad


def draw_forest(rows: pd.DataFrame, *, measure="SMD", level=95, xlabel=None, labels=None, title="", footer="",
                columns=(), estimate_header=None, weight_header="Weight", reference=None,
                reference_label=None, label_header="Study", note="", histogram=None,
                histogram_label="Studies", scale=None):  # fmt: skip
    """Draw a forest plot from ``rows`` (see :func:`rows_table`).

    ``columns``: extra text columns ``[(header, column_name), ...]`` shown between the labels and the plot
    (e.g. n and mean (SD) per group). ``reference``: a dashed vertical line (e.g. the full-data estimate).
    ``note``: a line under the title (gid ``summary-note``), e.g. why a summary form is drawn. ``histogram``:
    values on the analysis scale (e.g. every study's estimate) drawn as a histogram above the rows, on the same
    axis (bars with gid ``hist-bin{j}``; values beyond the axis are counted in its label). ``scale``: a
    :class:`Scale` other than ``Scale(measure)`` (PFT's, with the studies' harmonic-mean n).
    """
    rows = rows.reset_index(drop=True)
    scale = scale or Scale(measure)
    groups = group_labels(labels)
    texts = [str(x) for x in rows["label"]]
    is_bold = rows["kind"].isin(["summary", "header"]).to_numpy()
    widths = [len(t) * (1.12 if b else 1.0) for t, b in zip(texts, is_bold, strict=True)]  # bold text is wider
    longest = max(widths + [12])
    label_width = min(MAX_LABEL_INCHES, max(1.6, longest * CHAR_INCHES + 0.15))
    wrap_chars = int((label_width - 0.15) / (CHAR_INCHES * 1.12))
    wrapped = [_wrap(t, wrap_chars) if len(t) > wrap_chars else t for t in texts]
    longest_line = max(len(line) * (1.12 if b else 1.0) for t, b in zip(wrapped, is_bold, strict=True)
                       for line in t.split("\n"))  # fmt: skip
    label_width = max(label_width, longest_line * CHAR_INCHES + 0.15)
    col_widths = [  # headers are bold: about 12% wider
        max(1.12 * len(h), *(len(str(v)) for v in rows[c].fillna(""))) * CHAR_INCHES + 0.25 for h, c in columns
    ]  # fmt: skip
    show_weight = rows["weight"].notna().any()
    est_texts = [
        scale.text(e, a, b) if k in ("study", "summary") and np.isfinite(e) else ""
        for k, e, a, b in zip(rows["kind"], rows["estimate"], rows["ci_low"], rows["ci_high"], strict=True)
    ]
    est_header = estimate_header or _estimate_header(measure, level)
    longest_estimate = max([len(t) for t in est_texts] + [16]) * MONO_CHAR_INCHES
    est_width = max(longest_estimate, len(est_header) * CHAR_INCHES * 1.12) + 0.2
    weight_width = 0.75 if show_weight else 0.0
    margin = 0.15
    width = margin + label_width + sum(col_widths) + PLOT_INCHES + 0.15 + est_width + weight_width + margin

    lines = np.array([t.count("\n") + 1 for t in wrapped])
    heights = np.maximum(lines, 1) * 0.85 + 0.35  # in line units
    centres = np.cumsum(heights) - heights / 2 + 1.2  # below the header line
    bottom_units = centres[-1] + heights[-1] / 2 + 0.3 if len(rows) else 1.5
    note_lines = note.count("\n") + 1 if note else 0
    top_inches = 0.45 + (0.35 if title else 0) + 0.17 * note_lines + (HISTOGRAM_INCHES if histogram is not None else 0)
    bottom_inches = 0.95 + 0.2 * (footer.count("\n") + 1 if footer else 0)
    plot_height = bottom_units * LINE_INCHES
    height = top_inches + plot_height + bottom_inches

    fig = new_figure((width, height))
    x0 = (margin + label_width + sum(col_widths)) / width
    ax = fig.add_axes((x0, bottom_inches / height, PLOT_INCHES / width, plot_height / height))
    ax.set_ylim(bottom_units, 0)
    values = None
    if histogram is not None:
        values = np.asarray(histogram, dtype=float)
        values = values[np.isfinite(values)]
        # the bulk of the values inside the axis, not the most extreme one: those beyond it are counted
        bulk = pd.DataFrame({"estimate": np.quantile(values, [0.005, 0.995]) if values.size else [np.nan] * 2})
        lo, hi = x_range(pd.concat([rows, bulk], ignore_index=True), scale.null)
    else:
        lo, hi = x_range(rows, scale.null)
    scale.apply(ax, lo, hi)
    ax.set_yticks([])
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    if np.isfinite(scale.null):
        ax.axvline(scale.null, color="grey", linewidth=0.8, zorder=1)
    if reference is not None and np.isfinite(reference):
        ax.axvline(reference, color=POOLED_COLOR, linestyle="--", linewidth=0.9, zorder=1, label=reference_label)
    ax.set_xlabel(xlabel or axis_label(measure, labels, scale=scale), fontsize=TEXT["fontsize"])
    ax.tick_params(labelsize=8)
    if measure not in PROPORTIONS:  # a proportion is one group's: no side favours either group
        ax.annotate(f"← {groups['left']}", (0.0, 0), xycoords="axes fraction", xytext=(0, -34), ha="left",
                    textcoords="offset points", fontsize=7.5, color=MUTED, va="top", parse_math=False)  # fmt: skip
        ax.annotate(f"{groups['right']} →", (1.0, 0), xycoords="axes fraction", xytext=(0, -34), ha="right",
                    textcoords="offset points", fontsize=7.5, color=MUTED, va="top", parse_math=False)  # fmt: skip

    # text columns: x in inches from the figure's left edge, y in the plot's data units
    def at(inches):
        return (inches / width - x0) / (PLOT_INCHES / width)

    tx = ax.get_yaxis_transform()  # x in axes fraction, y in data
    label_x = at(margin)
    col_x = np.cumsum([margin + label_width, *col_widths])[:-1] if columns else []
    est_x = at(margin + label_width + sum(col_widths) + PLOT_INCHES + 0.15)
    weight_x = at(width - margin)
    header = {**TEXT, "fontweight": "bold", "transform": tx, "clip_on": False}
    ax.text(label_x, 0.55, label_header, **header)
    for (head, _), x in zip(columns, col_x, strict=True):
        ax.text(at(x + 0.1), 0.55, head, **header)
    ax.text(est_x, 0.55, est_header, **header)
    if show_weight:
        ax.text(weight_x, 0.55, weight_header, ha="right", **{k: v for k, v in header.items()})

    w = rows["weight"].to_numpy(dtype=float)
    wmax = np.nanmax(w) if show_weight else np.nan
    for i, row in rows.iterrows():
        y, kind = centres[i], row["kind"]
        bold = kind in ("summary", "header")
        style = {**TEXT, "transform": tx, "clip_on": False, "fontweight": "bold" if bold else "normal"}
        if kind == "header":
            style["fontstyle"] = "italic"
        indent = 0.1 / (PLOT_INCHES) if kind == "study" and (rows["kind"] == "header").any() else 0
        ax.text(label_x + indent, y, wrapped[i], gid=f"row{i}-label", **style)
        for (_, name), x in zip(columns, col_x, strict=True):
            value = row[name]
            ax.text(at(x + 0.1), y, "" if pd.isna(value) else str(value), gid=f"row{i}-{name.lstrip('_')}", **style)
        if kind not in ("study", "summary") or not np.isfinite(row["estimate"]):
            continue
        est, a, b = row["estimate"], row["ci_low"], row["ci_high"]
        faint = _is_faint(row)
        if kind == "study":
            _interval(ax, i, y, a, b, lo, hi, color=FAINT_COLOR if faint else "black")
            # a weight of 0 (e.g. a Mantel-Haenszel table with an empty cell off the diagonal) gets the smallest square
            size = MAX_MARKER * np.sqrt(max(row["weight"], 0.0) / wmax) if show_weight and np.isfinite(
                row["weight"]) else 5.0
            ax.plot([est], [y], marker="s", markersize=max(size, 2.0), color=STUDY_COLOR, linestyle="none",
                    zorder=3, gid=f"row{i}-point", **FAINT_MARKER if faint else {})  # fmt: skip
        else:
            ax.add_patch(Polygon([(a, y), (est, y - 0.4), (b, y), (est, y + 0.4)], closed=True, color=POOLED_COLOR,
                                 zorder=3, gid=f"row{i}-point", **FAINT_PATCH if faint else {}))  # fmt: skip
            _arrows(ax, i, y, a, b, lo, hi, "ci")
            if np.isfinite(row["pi_low"]):
                _interval(ax, i, y, row["pi_low"], row["pi_high"], lo, hi, kind="pi")
        ax.text(est_x, y, est_texts[i], family="monospace", gid=f"row{i}-text", **{**style, "fontsize": 8.5})
        if show_weight and np.isfinite(row["weight"]):
            ax.text(weight_x, y, f"{fmt(row['weight'], 1)}%", ha="right", family="monospace",
                    gid=f"row{i}-weight", **{**style, "fontsize": 8.5})  # fmt: skip
    if title:
        fig.text(margin / width, 1 - 0.25 / height, title, fontsize=11.5, fontweight="bold", va="center",
                 parse_math=False)  # fmt: skip
    if note:
        fig.text(margin / width, 1 - (0.45 if title else 0.12) / height, note, fontsize=8.5, color=MUTED, va="top",
                 parse_math=False, gid="summary-note")  # fmt: skip
    if values is not None:
        _histogram(fig, values, lo, hi, (x0, (bottom_inches + plot_height + 0.35) / height, PLOT_INCHES / width,
                                         (HISTOGRAM_INCHES - 0.35) / height), histogram_label)  # fmt: skip
    if footer:
        fig.text(margin / width, 0.12 / height, footer, fontsize=8.5, va="bottom", parse_math=False)
    return fig


HISTOGRAM_INCHES = 1.5
HISTOGRAM_BINS = 60


def _histogram(fig, values, lo, hi, rect, label):
    """Counts of ``values`` in HISTOGRAM_BINS equal bins over the forest's axis [lo, hi], drawn in ``rect``."""
    hax = fig.add_axes(rect)
    edges = np.linspace(lo, hi, HISTOGRAM_BINS + 1)
    counts, _ = np.histogram(values, bins=edges)
    bars = hax.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color=STUDY_COLOR, alpha=0.75, linewidth=0)
    for j, bar in enumerate(bars):
        bar.set_gid(f"hist-bin{j}")
    hax.set_xlim(lo, hi)
    hax.set_xticks([])
    hax.tick_params(labelsize=7)
    for side in ("right", "top"):
        hax.spines[side].set_visible(False)
    below, above = int((values < lo).sum()), int((values > hi).sum())
    beyond = f"; beyond the axis: {below:,} left, {above:,} right" if below or above else ""
    hax.set_title(f"{label}: {values.size:,} (histogram){beyond}", loc="left", fontsize=8, color=MUTED,
                  parse_math=False)  # fmt: skip
    return hax


def summary_note(k: int, max_rows: int, what: str = "studies") -> str:
    """The line under a summary figure's title that says why it is not one row per study."""
    return f"{k:,} {what}: more than {max_rows:,}, so not drawn one row each. "


def _estimate_header(measure, level):
    name = {"ROM": "Ratio", "VR": "VR", "CVR": "CVR", "ZCOR": "r", "SMD": "g", "MD": "MD"}.get(measure, "Estimate")
    return f"{name} [{level_text(level)}]"


def _interval(ax, i, y, a, b, lo, hi, kind="ci", color="black"):
    """A CI (or, for a summary, a prediction interval) clipped to the axis, with arrowheads where clipped."""
    if not (np.isfinite(a) and np.isfinite(b)):
        return
    left, right = max(a, lo), min(b, hi)
    dotted = kind == "pi"
    ax.plot([left, right], [y, y], color=POOLED_COLOR if dotted else color, linewidth=1.1 if dotted else 0.8,
            linestyle=":" if dotted else "-", zorder=2, gid=f"row{i}-{kind}")  # fmt: skip
    _arrows(ax, i, y, a, b, lo, hi, kind, color)


def _arrows(ax, i, y, a, b, lo, hi, kind, color="black"):
    for clipped, x, marker, side in ((a < lo, lo, "<", "left"), (b > hi, hi, ">", "right")):
        if clipped:
            ax.plot([x], [y], marker=marker, markersize=4, color=color, linestyle="none", clip_on=False,
                    gid=f"row{i}-{kind}-arrow-{side}")  # fmt: skip


# A row with a ``faint`` column that is True is drawn hollow with a grey CI: a result shown in full (its numbers are
# printed) but not to be read at the weight of the others, e.g. a k = 2 Knapp-Hartung pool in the atlas.
FAINT_COLOR = "#a8a8a8"  # the interval of a faint row: light grey
FAINT_MARKER = {"markerfacecolor": "white", "markeredgewidth": 1.0}
FAINT_PATCH = {"fill": False, "linewidth": 1.0}


def _is_faint(row) -> bool:
    value = row.get("faint", False)  # NaN where a table without the column was concatenated: not faint
    return isinstance(value, (bool, np.bool_)) and bool(value)


def heterogeneity_text(pooled: dict) -> str:
    df = pooled.get("q_df")
    dep = pooled.get("dependence")
    robust = _robust_text(dep, pooled.get("measure", "SMD")) if dep else ""
    if dep and dep["model"] != "aggregate":
        if "sigma2" in dep:
            parts = [f"σ²({c['level']}) = {fmt(c['estimate'], 3)}" for c in dep["sigma2"]]
        else:
            parts = [f"τ²({c['level']}) = {fmt(c['estimate'], 3)}" for c in dep["tau2"]]
            parts += [f"ρ = {fmt(c['estimate'], 2)}" for c in dep["rho"]][:1 if dep.get("struct") != "UN" else 3]
        text = (f"{pooled['method']}, test {pooled['test']}:  {',  '.join(parts)},  QE = {fmt(dep['QE'])} "
                f"(df = {dep['QE_df']}), p {p_text(dep['QE_p'])}")  # fmt: skip
        return text + robust
    if dep:
        return (f"{pooled['method']} model on {dep['clusters'][dep['cluster_column']]} aggregated clusters, test "
                f"{pooled['test']}:  τ² = {fmt(pooled.get('tau2'), 3)},  I² = {fmt(pooled.get('i2'), 1)}%,  "
                f"Q = {fmt(pooled.get('q'))} (df = {int(df)}), p {p_text(pooled.get('q_p'))}") + robust
    return _univariate_text(pooled, df)


def _robust_text(dep: dict, measure: str) -> str:
    r = dep.get("robust")
    if not r or "se" not in r:
        return ""
    shown = Scale(measure).text(r["estimate"], r["ci_low"], r["ci_high"])  # ratios / r, as the rows above
    return (f"\nCluster-robust ({r['type']}, {r['clusters']} clusters): {shown}, df = {fmt(r['df'], 1)}, "
            f"p {p_text(r['pval'])}")


def _univariate_text(pooled: dict, df) -> str:
    model = COUNTS_MODELS.get(str(pooled.get("fit", "")).split(" ")[0], f"{pooled['method']} model")
    if pooled.get("k") == 1:  # metafor gives τ² = 0, I² = 0%, Q = 0: values one study cannot show
        return f"{model}, one study (k = 1): τ², I² and Q not applicable"
    # an equal-effects model (EE, Mantel-Haenszel, Peto) assumes τ² = 0 rather than estimating it: metafor's print
    # then shows I², H² and Q only
    tau2 = "" if pooled.get("method") == "EE" else f"τ² = {fmt(pooled.get('tau2'), 3)},  "
    return (
        f"{model}, test {pooled['test']}:  {tau2}"
        f"I² = {fmt(pooled.get('i2'), 1)}%,  Q = {fmt(pooled.get('q'))} "
        f"(df = {int(df) if df is not None and np.isfinite(df) else 'NA'}), p {p_text(pooled.get('q_p'))}"
    )


def _group_columns(effects: pd.DataFrame, labels) -> list[tuple[str, str]]:
    """n (and mean (SD) where given) per group, when the rows have them."""
    g = group_labels(labels)
    columns = _count_columns(effects, g)
    if columns:
        return columns
    for group in ("cases", "controls"):
        if f"n_{group}" in effects and effects[f"n_{group}"].notna().any():
            columns.append((f"n {g[group]}", f"_n_{group}"))
        if {f"mean_{group}", f"sd_{group}"} <= set(effects) and effects[f"mean_{group}"].notna().any():
            columns.append((f"mean (SD) {g[group]}", f"_msd_{group}"))
    return columns


def _count_columns(effects: pd.DataFrame, g: dict) -> list[tuple[str, str]]:
    """Binary outcomes: events/total per group (2×2 tables) or events/n (a proportion), as RevMan and metafor's
    forest(ilab = ...) show them; [] for other rows."""
    if "events_cases" in effects and effects["events_cases"].notna().any():
        return [(f"Events/total {g[group]}", f"_events_{group}") for group in ("cases", "controls")]
    if "events" in effects and effects["events"].notna().any():
        return [("Events/n", "_events_")]
    return []


def _count_values(effects: pd.DataFrame) -> dict:
    out = {}
    for group, total in (("cases", "n_cases"), ("controls", "n_controls"), ("", "n")):
        events = f"events_{group}" if group else "events"
        if events in effects and total in effects:
            out[f"_events_{group}"] = [f"{int(e)}/{int(n)}" if np.isfinite(e) and np.isfinite(n) else ""
                                       for e, n in zip(effects[events].astype(float), effects[total].astype(float),
                                                       strict=True)]  # fmt: skip
    return out


def _group_values(effects: pd.DataFrame) -> dict:
    out = _count_values(effects)
    for group in ("cases", "controls"):
        if f"n_{group}" in effects:
            out[f"_n_{group}"] = [f"{int(n)}" if np.isfinite(n) else "" for n in effects[f"n_{group}"].astype(float)]
        if {f"mean_{group}", f"sd_{group}"} <= set(effects):
            out[f"_msd_{group}"] = [
                f"{m:.3g} ({s:.3g})" if np.isfinite(m) and np.isfinite(s) else ""
                for m, s in zip(effects[f"mean_{group}"].astype(float), effects[f"sd_{group}"].astype(float),
                                strict=True)
            ]  # fmt: skip
    return out


MODEL_NAMES = {"multilevel": "Multilevel model", "multivariate": "Multivariate model",
               "aggregate": "Random-effects model on aggregated clusters"}  # fmt: skip


def _member_labels(block: pd.DataFrame, dep: dict) -> list[str]:
    """Labels of the rows of one cluster under its header: what tells them apart (the inner level, the inner
    grouping levels, the study when it differs) and the sheet line."""
    parts = []
    if dep["model"] == "multivariate":
        parts.append(block[dep["inner"]].astype(str).to_numpy())
    for column in dep["levels"][1:]:
        parts.append(block[column].astype(str).to_numpy())
    if block["study"].nunique() > 1:
        parts.append(block["study"].fillna("").astype(str).to_numpy())
    parts.append(np.array([f"line {int(x)}" for x in block["line"]]))
    return [", ".join(p[i] for p in parts) for i in range(len(block))]


def _cluster_rows(used: pd.DataFrame, pooled: dict) -> pd.DataFrame:
    """The rows of a dependent analysis grouped by cluster (first appearance order): a cluster of one row is drawn as
    usual; a larger one gets a header (its study) and its rows below, for ``aggregate`` closed by the aggregated
    effect (a diamond with its weight)."""
    dep = pooled["dependence"]
    cluster = used[dep["cluster_column"]].astype(str)
    aggregated = {a["cluster"]: a for a in dep.get("aggregated", [])}
    crit = _norm_ppf(0.5 + pooled.get("level", 95) / 200)
    blocks = []
    for c in dict.fromkeys(cluster):
        block = used[(cluster == c).to_numpy()]
        values = {**_group_values(block), **_mark_values(block)}
        if len(block) == 1:
            blocks.append(rows_table(block["study"].fillna("").astype(str), block["yi"], block["ci_low"],
                                     block["ci_high"], weight=block["weight"], cluster=c, **values))  # fmt: skip
            continue
        studies = block["study"].fillna("").astype(str)
        head = studies.iloc[0] if studies.nunique() == 1 else c
        blocks += [rows_table([f"{head} ({len(block)} effects)"], np.nan, np.nan, np.nan, kind="header", cluster=c),
                   rows_table(_member_labels(block, dep), block["yi"], block["ci_low"], block["ci_high"],
                              weight=block["weight"], cluster=c, **values)]  # fmt: skip
        if c in aggregated:
            a = aggregated[c]
            half = crit * np.sqrt(a["vi"])
            how = ("shared controls" if dep.get("shared_controls") else f"ρ = {dep['vcalc_rho']:g}"
                   if dep.get("vcalc_rho") is not None else "independent errors")  # fmt: skip
            blocks.append(rows_table([f"aggregated ({how})"], a["yi"], a["yi"] - half, a["yi"] + half,
                                     kind="summary", weight=a["weight"], cluster=c))  # fmt: skip
    return pd.concat(blocks, ignore_index=True)


def _norm_ppf(q):
    from metarepro._core.dist import norm_ppf

    return float(norm_ppf(q))


def _dependent_pooled_rows(pooled: dict, k: int) -> pd.DataFrame:
    """The model's diamond(s): one per coefficient of a multivariate model (the primary first), else one."""
    dep = pooled["dependence"]
    clusters = dep["clusters"][dep["cluster_column"]]
    if dep["model"] == "aggregate":
        label = f"{MODEL_NAMES['aggregate']} ({pooled['method']}, k = {clusters} clusters of {k} effects)"
        return rows_table([label], pooled["estimate"], pooled["ci_low"], pooled["ci_high"], kind="summary",
                          weight=100.0, pi_low=pooled.get("pi_low"), pi_high=pooled.get("pi_high"))  # fmt: skip
    if dep["model"] == "multilevel":
        label = f"{MODEL_NAMES['multilevel']} ({pooled['method']}, k = {k} effects in {clusters} clusters)"
        model = rows_table([label + ": model-based CI"], pooled["estimate"], pooled["ci_low"], pooled["ci_high"],
                           kind="summary", weight=100.0, pi_low=pooled.get("pi_low"),
                           pi_high=pooled.get("pi_high"))  # fmt: skip
        return pd.concat([model, _robust_row(dep)], ignore_index=True)
    coefs = sorted(dep["coefficients"], key=lambda c: c["name"] != dep["primary"])
    labels = [f"{MODEL_NAMES['multivariate']}: {c['name']} ({pooled['method']}, k = {c['k']} of {k} effects, "
              f"{clusters} clusters)" for c in coefs]  # fmt: skip
    return rows_table(labels, [c["estimate"] for c in coefs], [c["ci_low"] for c in coefs],
                      [c["ci_high"] for c in coefs], kind="summary",
                      pi_low=[c.get("pi_low") for c in coefs], pi_high=[c.get("pi_high") for c in coefs])  # fmt: skip


def _robust_row(dep: dict) -> pd.DataFrame:
    """The cluster-robust diamond under a multilevel model's own: the same estimate with the robust (e.g. CR2) CI,
    so the figure shows both intervals, each labelled (none when the analysis has no robust inference)."""
    r = dep.get("robust")
    if not r or "ci_low" not in r:
        return rows_table([], [], [], [], kind="summary")
    label = f"{r['type']} cluster-robust CI ({r['clusters']} clusters, t with df = {fmt(r['df'], 1)})"
    return rows_table([label], r["estimate"], r["ci_low"], r["ci_high"], kind="summary")


def weights_note(pooled: dict) -> str:
    """What a dependent model's weight column is (the header then reads "Weight*"); empty for other fits, whose
    weights are metafor's usual 1/(vᵢ + τ²) shares."""
    dep = pooled.get("dependence") or {}
    if dep.get("model") == "multilevel":
        return ("* Weight: the row's sum of W = M⁻¹ (the inverse of the model's marginal covariance), as a percentage "
                "of the total; metafor's weights(fit, type = \"rowsum\")")
    if dep.get("model") == "multivariate":
        return ("* Weight: the row's share in the estimate of its own coefficient (row of (X'WX)⁻¹X'W, W = M⁻¹), "
                "as a percentage")
    return ""


def overall_effect_text(pooled: dict) -> str:
    """The test of the pooled estimate as RevMan and R's meta print it under a forest plot: "Test for overall
    effect: Z = 3.40 (P = 0.0007)"; with Knapp-Hartung (or rma.mv's t) a t with its df, "Test for overall effect:
    t = 3.37, df = 19 (P = 0.0032)" (df from the record, else k - 1). Empty when the record has no test."""
    z, p = pooled.get("zval"), pooled.get("pval")
    if z is None or not np.isfinite(z):
        return ""
    if pooled.get("test") in ("knha", "t"):
        df = pooled.get("df")
        df = pooled["k"] - 1 if df is None else df
        stat = f"t = {fmt(z)}, df = {fmt(df, 0) if float(df).is_integer() else fmt(df, 1)}"
    else:
        stat = f"Z = {fmt(z)}"
    # beside a cluster-robust line (heterogeneity_text) the model's own test says which it is
    which = " (model-based)" if (pooled.get("dependence") or {}).get("robust") else ""
    return f"Test for overall effect{which}: {stat} (P {p_text(p)})"


# Markers after a study's label (a column of their own, gid row{i}-mark) and the legend under the figure. A row can
# carry both. The rules are the pipeline's: flagged = a quality rule's entry in ``flags`` (metarepro.quality.
# flagged_included: the rows the fit "without flagged rows" leaves out; soft ``checks`` are not flags), converted =
# an entry in ``conversion`` (the rows ``exclude_converted`` leaves out).
MARKS = {"flagged": "†", "converted": "‡"}
MARK_LEGEND = {
    "flagged": "† flagged by a quality rule (flags in effects.csv; left out of the fit without flagged rows)",
    "converted": "‡ effect size converted from another reported form (e.g. median/IQR, SEM, t, p; conversion in "
                 "effects.csv)",
}


def _text_column(effects: pd.DataFrame, name: str) -> np.ndarray:
    if name not in effects:
        return np.zeros(len(effects), dtype=bool)
    return effects[name].astype(object).fillna("").astype(str).str.strip().to_numpy() != ""


def row_marks(effects: pd.DataFrame) -> list[str]:
    """The marker text of each row of ``effects`` ("", "†", "‡" or "†‡")."""
    flagged, converted = _text_column(effects, "flags"), _text_column(effects, "conversion")
    return [MARKS["flagged"] * int(f) + MARKS["converted"] * int(c) for f, c in zip(flagged, converted, strict=True)]


def _mark_values(effects: pd.DataFrame) -> dict:
    marks = row_marks(effects)
    return {"_mark": marks} if any(marks) else {}


def _mark_column(effects: pd.DataFrame) -> list[tuple[str, str]]:
    return [("", "_mark")] if any(row_marks(effects)) else []


def marks_legend(effects: pd.DataFrame) -> str:
    """The legend line of the markers present in ``effects`` (empty when none is)."""
    marks = "".join(row_marks(effects))
    return ";  ".join(text for key, text in MARK_LEGEND.items() if MARKS[key] in marks)


def forest_rows(effects: pd.DataFrame, pooled: dict) -> pd.DataFrame:
    """The rows of the analysis forest plot: the included rows of ``effects`` in their order, then the pool (for a
    dependent analysis: grouped by cluster, see :func:`_cluster_rows`)."""
    used = effects[effects["included"].astype(bool)].reset_index(drop=True)
    if pooled.get("dependence"):
        return pd.concat([_cluster_rows(used, pooled), _dependent_pooled_rows(pooled, len(used))], ignore_index=True)
    studies = rows_table(used["study"].fillna("").astype(str), used["yi"], used["ci_low"], used["ci_high"],
                         weight=used["weight"], **_group_values(used), **_mark_values(used))  # fmt: skip
    return pd.concat([studies, pooled_rows(pooled, len(used))], ignore_index=True)


def pooled_rows(pooled: dict, k: int) -> pd.DataFrame:
    """The forest plot's diamond row(s) of the model fitted to k included rows (``pooled.json``)."""
    if pooled.get("dependence"):
        return _dependent_pooled_rows(pooled, k)
    return rows_table(
        [_counts_model_label(pooled, k) or (f"Random-effects model ({pooled['method']}, k = {k})"
                                            if pooled["method"] != "EE" else f"Equal-effects model (k = {k})")],
        pooled["estimate"], pooled["ci_low"], pooled["ci_high"], kind="summary", weight=100.0,
        pi_low=pooled.get("pi_low"), pi_high=pooled.get("pi_high"),
    )  # fmt: skip


COUNTS_MODELS = {"rma.mh": "Mantel-Haenszel model", "rma.peto": "Peto model", "rma.glmm": "GLMM"}


def _counts_model_label(pooled: dict, k: int) -> str:
    """The diamond's label of a binary analysis pooled by rma.mh, rma.peto or rma.glmm ("" for rma)."""
    fit = str(pooled.get("fit", "rma"))
    name = COUNTS_MODELS.get(fit.split(" ")[0])
    if name is None:
        return ""
    detail = fit.split(" ", 1)[1].strip("()") + ", " if " " in fit else ""
    return f"{name} ({detail}{pooled['method']}, k = {k})" if fit.startswith("rma.glmm") else f"{name} (k = {k})"


def counts_scale(effects: pd.DataFrame, measure: str) -> Scale:
    """The scale of a forest plot: PFT's back-transformation needs the harmonic mean of the pooled rows' n (as
    metafor's ``transf.ipft.hm`` with ``targs = list(ni = dat$ni)``; the same n for the leave-one-out, cumulative and
    funnel figures of the analysis). Rows without ``included`` are all pooled rows."""
    if measure == "PFT" and "n" in effects:
        used = effects["included"].astype(bool) if "included" in effects else np.ones(len(effects), dtype=bool)
        n = effects.loc[used, "n"].to_numpy(dtype=float)
        return Scale(measure, ni=float(1 / np.mean(1 / n[np.isfinite(n)])))
    return Scale(measure)


def forest_plot(effects: pd.DataFrame, pooled: dict, title: str = "", measure: str | None = None, labels=None,
                max_rows: int = FIGURE_MAX_ROWS):  # fmt: skip
    """Forest plot of one analysis from ``effects.csv`` (columns study, yi, ci_low, ci_high, weight, included;
    optional n_cases, n_controls, mean_*, sd_* shown as columns) and ``pooled.json``.

    With more than ``max_rows`` included rows (:data:`~metarepro._core.limits.FIGURE_MAX_ROWS`) the summary form: the
    pooled diamond(s) with the prediction interval and a histogram of every included row's estimate, and a note
    under the title saying so."""
    measure = measure or pooled.get("measure", "SMD")
    included = effects["included"].astype(bool).to_numpy()
    footer = heterogeneity_text(pooled)
    scale = counts_scale(effects, measure)
    tables_fit = str(pooled.get("fit", "rma")).startswith(("rma.mh", "rma.peto"))  # equal effects: PI = CI
    if pooled.get("pi_low") is not None and np.isfinite(pooled["pi_low"]) and not tables_fit:
        interval = scale.text(0, pooled["pi_low"], pooled["pi_high"]).split(" ", 1)[1]
        footer += f"\nPrediction interval (dotted): {interval}"
    k = int(included.sum())
    drawn_one_each = k <= max_rows
    extra = [overall_effect_text(pooled), weights_note(pooled) if drawn_one_each else "",
             marks_legend(effects[included]) if drawn_one_each else ""]  # fmt: skip
    footer = "\n".join([footer, *(line for line in extra if line)])
    common = {"measure": measure, "level": pooled.get("level", 95), "labels": labels, "title": title,
              "footer": footer, "xlabel": axis_label(measure, labels, pooled.get("unit"), scale),
              "scale": scale}  # fmt: skip
    if not drawn_one_each:
        return draw_forest(pooled_rows(pooled, k), **common, histogram=effects.loc[included, "yi"],
                           note=summary_note(k, max_rows) + "The histogram shows every study's estimate "
                           "(all rows are in effects.csv).", histogram_label="Study estimates")  # fmt: skip
    return draw_forest(forest_rows(effects, pooled), **common, weight_header="Weight*" if weights_note(pooled)
                       else "Weight", columns=_mark_column(effects[included]) + _group_columns(effects[included],
                                                                                               labels))  # fmt: skip


def subgroup_rows(effects: pd.DataFrame, groups, result) -> pd.DataFrame:
    """Rows of the subgroup forest: per subgroup a header, its studies (weights within the subgroup) and its
    pooled diamond. ``effects`` has study, yi, vi, ci_low, ci_high (and ``included``)."""
    labels = effects[groups] if isinstance(groups, str) else pd.Series(list(groups), index=effects.index)
    keep = np.isfinite(effects["yi"].to_numpy(dtype=float)) & labels.notna().to_numpy()
    if "included" in effects:
        keep &= effects["included"].to_numpy(dtype=bool)
    rows = effects[keep].assign(_group=labels[keep].astype(str).to_numpy()).reset_index(drop=True)
    fits = result.fits
    diamonds = subgroup_summary_rows(result)
    blocks = []
    for i, level in enumerate(result.levels):
        block = rows[rows["_group"] == level]
        if len(block) != int(fits.k[i]):
            raise ValueError(f"subgroup {level!r}: {len(block)} rows here but {int(fits.k[i])} in the fit")
        w = 1 / (block["vi"].to_numpy(dtype=float) + fits.tau2[i])
        blocks += [
            rows_table([str(level)], np.nan, np.nan, np.nan, kind="header"),
            rows_table(block["study"].fillna("").astype(str), block["yi"], block["ci_low"], block["ci_high"],
                       weight=100 * w / w.sum()),
            diamonds.iloc[[i]],
        ]  # fmt: skip
    return pd.concat(blocks, ignore_index=True)


def differences_text(result) -> str:
    """The two tests of subgroup differences, as printed under the subgroup forest plot."""
    df1, df2 = result.QM_df
    if result.test == "knha":
        qm = f"F({fmt(df1, 0)}, {fmt(df2, 0)}) = {fmt(result.QM)}"
    else:
        qm = f"QM = {fmt(result.QM)} (df = {fmt(df1, 0)})"
    return (
        f"Test for subgroup differences (mixed-effects model, common τ²): {qm}, p {p_text(result.QM_p)}\n"
        f"Between-subgroup Q (separate τ² per subgroup): Q = {fmt(result.Q_between)} "
        f"(df = {result.Q_between_df}), p {p_text(result.Q_between_p)}"
    )


def subgroup_summary_rows(result) -> pd.DataFrame:
    """The subgroup forest's summary form: one diamond per subgroup (the rows of ``subgroups.csv``)."""
    fits = result.fits
    return rows_table([f"Subgroup {level} ({result.method}, k = {int(fits.k[i])}"
                       + (f", I² = {fmt(fits.i2[i], 1)}%)" if fits.k[i] > 1 else ")")  # no I² for one study
                       for i, level in enumerate(result.levels)], fits.estimate, fits.ci_low, fits.ci_high,
                      kind="summary")  # fmt: skip


def subgroup_forest_plot(effects, groups, result, title="", measure="SMD", labels=None, level=95,
                         max_rows: int = FIGURE_MAX_ROWS):  # fmt: skip
    """Forest plot with the studies in one block per subgroup, each closed by its pooled diamond; marker areas are
    the within-subgroup weights 1/(vᵢ + τ̂²_g); the tests of subgroup differences are printed at the bottom. With
    more than ``max_rows`` studies: the subgroups' diamonds only, a histogram of every study's estimate and a note."""
    common = {"measure": measure, "level": level, "labels": labels, "title": title, "footer": differences_text(result)}
    k = int(np.sum(result.fits.k))
    if k > max_rows:
        values = effects.loc[effects["included"].astype(bool), "yi"] if "included" in effects else effects["yi"]
        return draw_forest(subgroup_summary_rows(result), **common, histogram=values,
                           note=summary_note(k, max_rows) + "Drawn: each subgroup's pooled estimate; the histogram "
                           "shows every study's estimate.", histogram_label="Study estimates")  # fmt: skip
    return draw_forest(subgroup_rows(effects, groups, result), **common, weight_header="Weight*")


def _table_rows(table: pd.DataFrame, prefix: str, suffixes=None) -> pd.DataFrame:
    studies = table["study"].fillna("").astype(str)
    texts = [f"{prefix} {s}" for s in studies] if suffixes is None else [
        f"{prefix} {s} {x}" for s, x in zip(studies, suffixes, strict=True)]  # fmt: skip
    return rows_table(texts, table["estimate"], table["ci_low"], table["ci_high"])


SUMMARY_ROWS = 20  # rows a summary leave-one-out or cumulative figure draws


def cumulative_steps(k: int, n: int = SUMMARY_ROWS) -> np.ndarray:
    """The steps (1-based) a summary cumulative figure draws: about ``n`` spaced evenly on a log scale, from the
    first study to all k (the estimate moves most in the first steps)."""
    return np.unique(np.round(np.geomspace(1, k, n)).astype(int))


def cumulative_forest_plot(table: pd.DataFrame, measure="SMD", title="", labels=None, level=95, method="",
                           max_rows: int = FIGURE_MAX_ROWS, order=None, scale=None):  # fmt: skip
    """Cumulative meta-analysis (metafor ``forest(cumul(...))``) from ``cumulative.csv``: row i is the fit of the
    first i studies in the table's order and is labelled "+ <the study added at step i>". With more than
    ``max_rows`` steps, only the steps of :func:`cumulative_steps` (labelled with their number of studies). ``order``:
    (the column the studies were sorted by, how many had no value in it and were added last), said in the title
    when any. ``scale``: as :func:`draw_forest` (PFT's with the pooled rows' harmonic-mean n, :func:`counts_scale`)."""
    final = float(table["estimate"].iloc[-1]) if len(table) else np.nan
    title = title or f"Cumulative meta-analysis ({method})".replace(" ()", "")
    if order and order[1]:
        column, last = order
        title += f"; {last} {'study' if last == 1 else 'studies'} without a {column} added last"
    common = {"measure": measure, "level": level, "labels": labels, "reference": final, "title": title,
              "reference_label": "all studies", "scale": scale}  # fmt: skip
    if len(table) > max_rows:
        steps = cumulative_steps(len(table))
        note = (summary_note(len(table), max_rows, "steps") + f"Drawn: {len(steps)} steps spaced evenly on a log "
                "scale, the last with all studies (every step is in cumulative.csv).")  # fmt: skip
        return draw_forest(_table_rows(table.iloc[steps - 1], "+", [f"({n:,} studies)" for n in steps]), **common,
                           note=note)  # fmt: skip
    return draw_forest(_table_rows(table, "+"), **common)


def leave1out_extremes(table: pd.DataFrame, estimate, n: int = SUMMARY_ROWS) -> np.ndarray:
    """Rows (in table order) of the ``n`` omissions that move the estimate furthest from ``estimate``."""
    shift = np.abs(table["estimate"].to_numpy(dtype=float) - estimate)
    return np.sort(np.argsort(-np.nan_to_num(shift, nan=-1.0), kind="stable")[:n])


def leave1out_plot(table: pd.DataFrame, estimate=None, measure="SMD", title="", labels=None, level=95, method="",
                   max_rows: int = FIGURE_MAX_ROWS, scale=None):  # fmt: skip
    """Leave-one-out estimates (metafor ``forest(leave1out(...))``) from ``leave1out.csv``: row i omits study i.
    ``estimate``: the full-model estimate, drawn as a dashed reference line. With more than ``max_rows`` rows,
    only those of :func:`leave1out_extremes`, with a histogram of every leave-one-out estimate. ``scale``: as
    :func:`cumulative_forest_plot`."""
    common = {"measure": measure, "level": level, "labels": labels, "reference": estimate, "scale": scale,
              "title": title or f"Leave-one-out analysis ({method})".replace(" ()", ""),
              "reference_label": "all studies"}  # fmt: skip
    if len(table) > max_rows:
        reference = estimate if estimate is not None else float(np.nanmedian(table["estimate"]))
        shown = leave1out_extremes(table, reference)
        return draw_forest(_table_rows(table.iloc[shown], "−"), **common, histogram=table["estimate"],
                           note=summary_note(len(table), max_rows, "omissions") + f"Drawn: the {len(shown)} that "
                           "move the estimate most; the histogram shows every leave-one-out estimate "
                           "(all in leave1out.csv).", histogram_label="Leave-one-out estimates")  # fmt: skip
    return draw_forest(_table_rows(table, "−"), **common)


def forest(yi, vi, slab=None, fit=None, measure="GEN", method="REML", test="z", level=95, title="", labels=None):
    """A forest plot straight from effect sizes, as metafor's ``forest(rma(yi, vi))``: ``fit`` is the
    :func:`metarepro.stats.rma` result to draw (fitted here with ``method``/``test``/``level`` when None); ``slab``
    labels the studies (default "Study 1", ...). The CIs of the studies are z intervals at ``level``."""
    from metarepro._core import dist
    from metarepro.stats.rma import rma

    yi, vi = np.asarray(yi, dtype=float), np.asarray(vi, dtype=float)
    fit = rma(yi, vi, method, test, level) if fit is None else fit
    if np.ndim(fit.estimate) != 0:
        raise ValueError("forest() draws one fit; pass fits[i] of a batch")
    ok = np.isfinite(yi) & np.isfinite(vi)
    if int(fit.k) != int(ok.sum()):
        raise ValueError(f"the fit has k = {int(fit.k)} but {int(ok.sum())} studies have yi and vi")
    crit = dist.norm_ppf(0.5 + fit.level / 200)
    names = [f"Study {i + 1}" for i in range(len(yi))] if slab is None else [str(s) for s in slab]
    effects = pd.DataFrame({"study": names, "yi": yi, "vi": vi, "ci_low": yi - crit * np.sqrt(vi),
                            "ci_high": yi + crit * np.sqrt(vi), "included": ok})  # fmt: skip
    effects.loc[ok, "weight"] = fit.weights
    return forest_plot(effects, {**fit.to_dict(), "measure": measure}, title=title, measure=measure, labels=labels)
