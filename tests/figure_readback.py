"""Read a drawn forest-type figure back, row by row, from its matplotlib artists or from its SVG file.

Every row artist of metarepro.present.plots.forest carries a gid ``row{i}-{part}`` (label, ci, pi, point, text, weight,
ci-arrow-left/right); these helpers collect them so tests can compare each drawn row with its table row.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import defaultdict

import numpy as np
from matplotlib.lines import Line2D
from matplotlib.patches import Polygon
from matplotlib.text import Text

GID = re.compile(r"^row(\d+)-(.+)$")


def drawn_rows(fig) -> dict[int, dict]:
    """{row: {part: value}}: label/text/weight → str; ci/pi → (x0, x1, y); point → x (square) or (lo, est, hi)."""
    rows: dict[int, dict] = defaultdict(dict)
    for artist in fig.findobj():
        gid = artist.get_gid()
        match = GID.match(gid or "")
        if not match:
            continue
        i, part = int(match.group(1)), match.group(2)
        if isinstance(artist, Text):
            rows[i][part] = artist.get_text().replace("\n", " ")
        elif isinstance(artist, Line2D):
            x, y = artist.get_xdata(), artist.get_ydata()
            rows[i][part] = float(x[0]) if len(x) == 1 else (float(x[0]), float(x[-1]), float(y[0]))
            if part == "point":
                rows[i]["y"] = float(y[0])
        elif isinstance(artist, Polygon):
            xy = artist.get_xy()
            rows[i][part] = (float(xy[:, 0].min()), float(xy[1, 0]), float(xy[:, 0].max()))
            rows[i]["y"] = float(xy[0, 1])
    return dict(rows)


def svg_row_texts(svg: str) -> dict[str, str]:
    """{gid: text} of every ``row*`` text group in an SVG written with svg.fonttype 'none'."""
    root = ET.fromstring(re.sub(r"^.*?(<svg\b)", r"\1", svg, count=1, flags=re.S))
    out = {}
    for group in root.iter("{http://www.w3.org/2000/svg}g"):
        gid = group.get("id", "")
        if GID.match(gid):
            text = " ".join("".join(t.itertext()) for t in group.iter("{http://www.w3.org/2000/svg}text"))
            if text:
                out[gid] = text
    return out


def assert_rows_match(fig, table, labels, measure="SMD", digits=2, scale=None):
    """Each drawn study/summary row i shows ``labels[i]`` with the estimate and CI of ``table`` row i (columns
    estimate, ci_low, ci_high): square or diamond at the estimate, whiskers at the CI (clipped to the axis with
    an arrowhead), and the printed numbers (back-transformed for ROM/ZCOR; ``scale`` for PFT's harmonic-mean n)."""
    from metarepro.present.plots.style import Scale

    scale = scale or Scale(measure)
    drawn = drawn_rows(fig)
    ax = fig.axes[0]
    lo, hi = ax.get_xlim()
    assert len(labels) == len(table)
    for i, (label, row) in enumerate(zip(labels, table.itertuples(), strict=True)):
        got = drawn[i]
        assert got["label"] == label, (i, got["label"], label)
        assert got["text"] == scale.text(row.estimate, row.ci_low, row.ci_high, digits), (i, got["text"])
        point = got["point"]
        est = point if np.ndim(point) == 0 else point[1]
        np.testing.assert_allclose(est, row.estimate, rtol=1e-12, err_msg=f"row {i} estimate")
        if "ci" in got:
            x0, x1, _ = got["ci"]
            np.testing.assert_allclose([x0, x1], [max(row.ci_low, lo), min(row.ci_high, hi)], rtol=1e-12)
            assert ("ci-arrow-left" in got) == (row.ci_low < lo), f"row {i}: left arrow"
            assert ("ci-arrow-right" in got) == (row.ci_high > hi), f"row {i}: right arrow"
        else:  # a diamond spans the CI (drawn clipped to the axis, with arrowheads where it leaves it)
            np.testing.assert_allclose([point[0], point[2]], [row.ci_low, row.ci_high], rtol=1e-12)
            assert ("ci-arrow-left" in got) == (row.ci_low < lo), f"row {i}: left arrow"
            assert ("ci-arrow-right" in got) == (row.ci_high > hi), f"row {i}: right arrow"
    return drawn


NUMBER = r"(−?[\d.]+|NA)"
OVERALL = re.compile(rf"Test for overall effect(?: \(model-based\))?: (?:Z = {NUMBER}|t = {NUMBER}, df = {NUMBER}) "
                     rf"\(P ([=<]) {NUMBER}\)")  # fmt: skip
# τ² is left out for an equal-effects model (EE, Mantel-Haenszel, Peto), which assumes it is 0
HETEROGENEITY = re.compile(rf"(?:τ² = {NUMBER},  )?I² = {NUMBER}%,  Q = {NUMBER} \(df = (\d+)\), p ([=<]) {NUMBER}")


def figure_texts(fig) -> list[str]:
    """Every line of every text artist of ``fig`` (footers are one multi-line text)."""
    return [line for t in fig.findobj(Text) for line in t.get_text().split("\n")]


def _number(text: str) -> float:
    return float(text.replace("−", "-")) if text != "NA" else float("nan")


def overall_effect(fig) -> dict:
    """The forest plot's "Test for overall effect" line read back: {statistic, test ('z'|'t'), df, p, p_bound}
    (p_bound '<' when printed as "P < 0.0001")."""
    lines = [m for line in figure_texts(fig) if (m := OVERALL.search(line))]
    assert len(lines) == 1, f"{len(lines)} overall-effect lines"
    z, t, df, bound, p = lines[0].groups()
    return {"statistic": _number(z or t), "test": "z" if z else "t", "df": _number(df) if df else None,
            "p": _number(p), "p_bound": bound}  # fmt: skip


def heterogeneity(fig) -> dict:
    """The heterogeneity line of a univariate forest plot read back: {tau2, i2, q, df, p, p_bound}."""
    lines = [m for line in figure_texts(fig) if (m := HETEROGENEITY.search(line))]
    assert len(lines) == 1, f"{len(lines)} heterogeneity lines"
    tau2, i2, q, df, bound, p = lines[0].groups()
    return {"tau2": _number(tau2) if tau2 else None, "i2": _number(i2), "q": _number(q), "df": int(df), "p": _number(p),
            "p_bound": bound}  # fmt: skip


def assert_printed(value: float, printed: float, digits: int, what: str):
    """``printed`` is ``value`` rounded to ``digits`` decimals (half a unit of the last printed digit apart)."""
    assert abs(value - printed) <= 0.5 * 10.0**-digits * (1 + 1e-9), f"{what}: printed {printed}, value {value}"


def row_mark_texts(fig) -> dict[int, str]:
    """{row: marker text} of the rows that carry a quality/conversion marker (gid row{i}-mark)."""
    return {i: parts["mark"] for i, parts in drawn_rows(fig).items() if parts.get("mark")}


def renumber(fig, index):
    """Renumber the drawn rows ``index`` 0, 1, ... in place, so :func:`assert_rows_match` compares them with a table
    of those rows only (e.g. without the header rows); the other rows get gids it ignores."""
    where = {old: new for new, old in enumerate(index)}
    for artist in fig.findobj():
        match = GID.match(artist.get_gid() or "")
        if match:
            row = int(match.group(1))
            artist.set_gid(f"row{where[row]}-{match.group(2)}" if row in where else f"other{row}-{match.group(2)}")
    return fig


def svg_gid_texts(svg: str, prefix: str) -> dict[str, str]:
    """{gid: text} of every text group whose id starts with ``prefix`` in an SVG written with svg.fonttype 'none'
    (lines of one text joined by a newline), e.g. the boxes of metarepro.present.plots.flow ("flow-")."""
    root = ET.fromstring(re.sub(r"^.*?(<svg\b)", r"\1", svg, count=1, flags=re.S))
    out = {}
    for group in root.iter("{http://www.w3.org/2000/svg}g"):
        gid = group.get("id", "")
        if gid.startswith(prefix):
            lines = ["".join(t.itertext()) for t in group.iter("{http://www.w3.org/2000/svg}text")]
            out[gid] = "\n".join(lines)
    return out
