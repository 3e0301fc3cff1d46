"""What every figure shares: colours, number formats, axis labels in the analysis's own words, the
back-transformed scales of ROM and ZCOR (metafor's ``atransf``), and deterministic file output."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

import matplotlib
import numpy as np
from matplotlib import font_manager
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from metarepro.stats.effects import transform_back

STUDY_COLOR = "#2b5d8a"
POOLED_COLOR = "#8a2b2b"
MUTED = "#6b6b6b"
FONT_SIZE = 9

# Fonts tried in order for every glyph (matplotlib >= 3.6 falls back per glyph): Latin, then CJK where installed
# (Debian fonts-noto-cjk), so Chinese or Japanese study labels are drawn rather than shown as empty boxes.
_FALLBACK_FONTS = ("Noto Sans CJK JP", "Noto Sans CJK SC", "WenQuanYi Zen Hei")
_FALLBACK_FILES = tuple(f"/usr/share/fonts/opentype/noto/NotoSansCJK-{w}.ttc" for w in ("Regular", "Bold"))


def _font_family():
    installed = {f.name for f in font_manager.fontManager.ttflist}
    if not installed & set(_FALLBACK_FONTS):  # installed after matplotlib cached its font list
        for path in _FALLBACK_FILES:
            if os.path.exists(path):
                font_manager.fontManager.addfont(path)
        installed = {f.name for f in font_manager.fontManager.ttflist}
    return ["DejaVu Sans", *[name for name in _FALLBACK_FONTS if name in installed]]


matplotlib.rcParams.update(
    {
        "font.family": _font_family(),
        "svg.fonttype": "none",  # text stays text in SVG: small files, searchable, selectable
        "svg.hashsalt": "metarepro",  # stable element ids, so the same inputs give byte-identical SVG
        "axes.unicode_minus": True,
    }
)



def study_points(ax, x, y, label="studies", **scatter):
    """One marker per study (``ax.scatter(x, y, label=label, **scatter)``) up to
    :data:`~metarepro._core.limits.VECTOR_MAX_POINTS` studies; beyond, their density: hexagonal bins shaded by the
    count (log scale), rasterised into one embedded image, and the label says so. Drawing 10^5 markers took 12 s
    and an SVG of 10^6 vector markers would be ~100 MB; the density costs the same at any k."""
    from metarepro._core.limits import VECTOR_MAX_POINTS

    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.size <= VECTOR_MAX_POINTS:
        return ax.scatter(x, y, label=label, **scatter)
    density = f"{label}: {x.size:,}, shown as their density (more than {VECTOR_MAX_POINTS:,})"
    return ax.hexbin(x, y, gridsize=70, bins="log", mincnt=1, cmap="Blues", linewidths=0, rasterized=True,
                     zorder=scatter.get("zorder", 2), gid="study-density", label=density)  # fmt: skip


def new_figure(figsize) -> Figure:
    """A figure drawn by Agg (for PNG; SVG and PDF switch canvas when saved), as pyplot's with the Agg backend but
    not registered with pyplot: no global state, nothing to close, and no ``matplotlib.pyplot`` import (0.3 s)."""
    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def tight_layout(fig, **kwargs):
    """``fig.tight_layout(**kwargs)`` once, now. Matplotlib then leaves a placeholder layout engine on the figure,
    and ``savefig`` redraws the whole figure (every text laid out) before drawing it for real, once per format:
    a no-op costing a third of the saving time. Without an engine nothing is redrawn; the file is the same."""
    fig.tight_layout(**kwargs)
    fig.set_layout_engine(None)


def _close(fig):
    """A figure made with pyplot (by a caller) leaves pyplot's registry; ours are simply garbage."""
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        pyplot.close(fig)


# Text drawn from user data is never parsed as mathtext: "$5" stays "$5" and "$\frac$" is not an error.
TEXT = {"fontsize": FONT_SIZE, "va": "center", "parse_math": False}

MEASURE_NAMES = {
    "SMD": "Hedges' g",
    "MD": "Mean difference",
    "ROM": "Ratio of means",
    "VR": "Variability ratio (SD)",
    "CVR": "Coefficient of variation ratio",
    "ZCOR": "Correlation r",
    "GEN": "Effect size",
    "OR": "Odds ratio",
    "RR": "Risk ratio",
    "RD": "Risk difference",
    "PETO": "Odds ratio (Peto)",
    **dict.fromkeys(("PR", "PLN", "PLO", "PAS", "PFT"), "Proportion"),
}
# counts measures drawn on a log axis with ratio ticks, and the proportions shown in % (on their own scale)
TABLE_RATIOS = ("OR", "RR", "PETO")
LOG_RATIOS = ("ROM", "VR", "CVR", *TABLE_RATIOS)  # drawn on a log axis with ratio ticks (PLN is a proportion)
PROPORTIONS = ("PR", "PLN", "PLO", "PAS", "PFT")
PROPORTION_SCALES = {"PR": "", "PLN": "log scale", "PLO": "logit scale", "PAS": "arcsine scale",
                     "PFT": "Freeman-Tukey scale"}  # fmt: skip
DEFAULT_GROUPS = {"cases": "cases", "controls": "controls"}


def group_labels(labels: dict | None = None) -> dict:
    """Group names and "favours" texts; defaults are the sheet's own words ("cases", "controls")."""
    out = {**DEFAULT_GROUPS, **{k: v for k, v in (labels or {}).items() if v}}
    out.setdefault("left", f"lower in {out['cases']}")
    out.setdefault("right", f"higher in {out['cases']}")
    return out


def axis_label(measure: str, labels: dict | None = None, unit: str | None = None, scale=None) -> str:
    """x-axis label, e.g. "Hedges' g (MDD − controls)", "Ratio of means (MDD / controls)", "Correlation r".

    ``scale``: the figure's :class:`Scale` (default ``Scale(measure)``). A PFT figure without the studies' n (an
    atlas of several analyses) stays on the Freeman-Tukey scale and says so instead of "%"."""
    if measure == "PFT" and not (scale or Scale(measure)).percent:
        return "Freeman-Tukey transformed proportion (double arcsine; not %)"
    g = group_labels(labels)
    name = MEASURE_NAMES.get(measure, "Effect size")
    if measure in ("SMD", "MD"):
        name += f" ({g['cases']} − {g['controls']})"
    elif measure in LOG_RATIOS:
        name += f" ({g['cases']} / {g['controls']}, log scale)"
    elif measure == "RD":
        name += f" ({g['cases']} − {g['controls']})"
    elif measure in PROPORTIONS:
        name += f" (%{', ' + PROPORTION_SCALES[measure] if PROPORTION_SCALES[measure] else ''})"
    if measure == "MD" and unit:
        name += f", {unit}"
    return name


@dataclass(frozen=True)
class Scale:
    """How numbers of one measure are shown: the axis stays on the analysis scale (log ratio, Fisher's z), its
    ticks and the printed estimates are back-transformed (ratio, r), as metafor's ``atransf``."""

    measure: str = "SMD"
    ni: float | None = None  # PFT: the harmonic mean of the studies' n (metafor's transf.ipft.hm)

    @property
    def null(self) -> float:
        if self.measure in PROPORTIONS:
            return float("nan")  # a proportion has no "no effect" value to draw
        return 0.0  # no effect: log ratio 0 (ratio 1), z 0 (r 0), difference 0

    @property
    def percent(self) -> bool:
        """Proportions in percent; a PFT figure drawn without the studies' n (leave-one-out, funnel, ...) stays on
        the Freeman-Tukey scale, whose back-transformation needs them."""
        return self.measure in PROPORTIONS and not (self.measure == "PFT" and self.ni is None)

    def show(self, x):
        """Analysis-scale value(s) as the reader sees them."""
        x = np.asarray(x, dtype=float)
        if self.measure == "PFT" and self.ni is None:
            return x
        back = transform_back(self.measure, x, ni=None if self.ni is None else np.array([self.ni]))
        return x if back is None else back

    def ticks(self, low: float, high: float):
        """Tick positions on the analysis scale, or None for matplotlib's own."""
        if self.percent:
            return _thin(*_proportion_ticks(self.measure, self.ni, low, high))
        if self.measure in LOG_RATIOS:
            nice = np.array([0.01, 0.02, 0.05, 0.1, 0.2, 0.25, 0.5, 0.67, 1, 1.5, 2, 4, 5, 10, 20, 50, 100])
        elif self.measure == "ZCOR":
            nice = np.array([-0.99, -0.9, -0.75, -0.5, -0.25, 0, 0.25, 0.5, 0.75, 0.9, 0.99])
        else:
            return None
        pos = np.arctanh(nice) if self.measure == "ZCOR" else np.log(nice)
        return _thin(pos, pos >= low, pos <= high)

    def apply(self, ax, low: float, high: float):
        ticks = self.ticks(low, high)
        if ticks is not None:
            ax.set_xticks(ticks)
            ax.set_xticklabels([self.tick_text(v) for v in self.show(ticks)])
        ax.set_xlim(low, high)

    def tick_text(self, value) -> str:
        if self.percent:
            return f"{100 * value:.3g}%"
        return fmt(value, 2).rstrip("0").rstrip(".")

    def text(self, est, lo, hi, digits=2) -> str:
        if self.percent:  # in percent, one decimal
            e, a, b = 100 * self.show([est, lo, hi])
            if not (np.isfinite(a) and np.isfinite(b)):
                return f"{fmt(e, 1)}% [no CI]"
            return f"{fmt(e, 1)}% [{fmt(a, 1)}%, {fmt(b, 1)}%]"
        e, a, b = self.show([est, lo, hi])
        if not (np.isfinite(a) and np.isfinite(b)):  # a published estimate printed without its CI
            return f"{fmt(e, digits)} [no CI]"
        return f"{fmt(e, digits)} [{fmt(a, digits)}, {fmt(b, digits)}]"


def _thin(pos, above, below):
    """The ticks within the axis, thinned evenly around the null so that the labels never collide."""
    keep = above & below
    while keep.sum() > 7:
        idx = np.flatnonzero(keep)
        centre = idx[np.argmin(np.abs(pos[idx]))]
        drop = [i for n, i in enumerate(idx) if (i - centre) % 2]
        keep[drop] = False
        if not drop:
            break
    return pos[keep]


def _proportion_ticks(measure, ni, low, high):
    """Ticks at round proportions, placed on the measure's own scale (metafor's transformations)."""
    from metarepro.stats import effects_binary as eb

    nice = np.array([0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99])
    with np.errstate(divide="ignore"):
        pos = {"PR": nice, "PLN": np.log(nice), "PLO": np.log(nice / (1 - nice)), "PAS": np.arcsin(np.sqrt(nice)),
               "PFT": eb.transf_pft(nice, ni if ni is not None else 100.0)}[measure]  # fmt: skip
    return pos, pos >= low, pos <= high


def fmt(x, digits=2) -> str:
    if x is None:
        return "NA"
    try:
        x = float(x)
    except (TypeError, ValueError):
        return "NA"
    if not np.isfinite(x):
        return "NA"
    return f"{x:.{digits}f}".replace("-", "−")


def p_text(p) -> str:
    if p is None or not np.isfinite(p):
        return "= NA"
    return "< 0.0001" if p < 1e-4 else f"= {p:.4f}"


def level_text(level) -> str:
    return f"{float(level):g}% CI"


def svg_text(fig) -> str:
    """The figure as SVG text (for inlining in the report), deterministic as :func:`save_figure`; closes it."""
    import io

    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None})
    _close(fig)
    return buffer.getvalue()


# zlib level 3 instead of Pillow's 6: the same pixels, a third less encoding time (0.5 s against 0.77 s of CPU
# for the 18 PNGs of three analyses), files 2% larger (benchmarks/bench_imports.py).
PNG_COMPRESSION = {"compress_level": 3}


def save_figure(fig, paths) -> str | None:
    """Write one figure to several files (format from each suffix), then release it; returns the SVG text written
    (None when no path is an SVG), which the report inlines.

    No creation dates (unless SOURCE_DATE_EPOCH asks for one) and fixed SVG ids: the same inputs give the same
    bytes, so CI can diff reports.
    """
    import io

    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    svg = None
    for path in paths:
        suffix = str(path).rsplit(".", 1)[-1].lower()
        metadata = {"svg": {"Date": None}, "pdf": {"CreationDate": None, "ModDate": None}}.get(suffix)
        if epoch and suffix in ("svg", "pdf"):
            metadata = None  # matplotlib then writes the SOURCE_DATE_EPOCH date itself
        if suffix == "png":
            fig.savefig(path, dpi=150, metadata=metadata, pil_kwargs=PNG_COMPRESSION)
        elif suffix == "svg":  # drawn once into text, written as matplotlib writes an SVG file (UTF-8)
            buffer = io.StringIO()
            fig.savefig(buffer, format="svg", metadata=metadata)
            svg = buffer.getvalue()
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(svg)
        else:
            fig.savefig(path, metadata=metadata)
    _close(fig)
    return svg
