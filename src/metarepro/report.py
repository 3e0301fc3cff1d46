"""The HTML report: one self-contained page (inline SVG, inline CSS, no network requests)."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from . import __version__

STYLE = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:0.9em}
th,td{border:1px solid #ccc;padding:0.25em 0.6em;text-align:right}
th{background:#f2f2f2} td.text,th.text{text-align:left}
.excluded{color:#8a2b2b} .figure svg{max-width:100%;height:auto}
"""
SUMMARY_COLUMNS = (
    "analysis", "measure", "preset", "method", "test", "k", "n_cases", "n_controls", "estimate", "ci_low",
    "ci_high", "pval", "tau2", "i2", "q", "q_p", "pi_low", "pi_high",
)  # fmt: skip
FIT_FIELDS = (
    "estimate", "se", "zval", "pval", "ci_low", "ci_high", "pi_low", "pi_high", "tau2", "tau2_se",
    "tau2_ci_low", "tau2_ci_high", "tau", "i2", "i2_ci_low", "i2_ci_high", "h2", "q", "q_df", "q_p",
)  # fmt: skip


@dataclass
class AnalysisSection:
    name: str
    title: str
    pooled: dict
    effects: pd.DataFrame
    forest_svg: str
    bias: dict | None = None
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)  # subgroups, metareg, influence, ...
    figures: dict[str, str] = field(default_factory=dict)  # name -> SVG text


BIAS_FIELDS = (
    ("Egger (mixed-effects, sei as predictor): z", "egger_z"), ("p", "egger_p"),
    ("Egger (classic weighted regression): t", "egger_t"), ("df", "egger_t_df"), ("p", "egger_t_p"),
    ("Begg rank correlation: Kendall's tau", "begg_tau"), ("p", "begg_p"),
    ("Trim-and-fill (L0): missing studies", "trimfill_k0"), ("side", "trimfill_side"),
    ("adjusted estimate", "trimfill_estimate"), ("CI low", "trimfill_ci_low"), ("CI high", "trimfill_ci_high"),
    ("Trim-and-fill (R0): missing studies", "trimfill_r0_k0"), ("adjusted estimate", "trimfill_r0_estimate"),
    ("Fail-safe N: Rosenthal", "fsn_rosenthal"), ("Orwin", "fsn_orwin"), ("Rosenberg", "fsn_rosenberg"),
    ("PET-PEESE: uses", "pet_peese_uses"), ("estimate", "pet_peese_estimate"),
    ("CI low", "pet_peese_ci_low"), ("CI high", "pet_peese_ci_high"),
)  # fmt: skip
FIGURE_TITLES = {
    "funnel": "Contour-enhanced funnel plot", "cumulative": "Cumulative meta-analysis",
    "leave1out": "Leave-one-out", "baujat": "Baujat plot",
}  # fmt: skip


def _bias(bias: dict | None) -> str:
    if not bias:
        return ""
    rows = [(label, bias.get(key)) for label, key in BIAS_FIELDS if key in bias]
    body = "".join(f'<tr><td class="text">{html.escape(label)}</td><td>{_num(v)}</td></tr>' for label, v in rows)
    note = f"<p><em>{html.escape(bias['low_power_note'])}</em></p>" if bias.get("low_power_note") else ""
    return f"<h3>Small-study effects and publication bias (k = {bias['k']})</h3>{note}<table>{body}</table>"


def _extras(section: AnalysisSection) -> str:
    parts = [_bias(section.bias)]
    for name, table in section.tables.items():
        if name == "influence":
            flagged = table[table["influential"].astype(bool)]
            text = "none" if flagged.empty else ", ".join(flagged["study"].astype(str))
            parts.append(f"<h3>Influence diagnostics</h3><p>Influential by metafor's rule: {html.escape(text)}.</p>")
            table = table.drop(columns=["line"])
        else:
            parts.append(f"<h3>{html.escape(name.capitalize())}</h3>")
        text_columns = [c for c in table.columns if table[c].dtype == object]
        parts.append(_table(table, text_columns=text_columns))
    for name, svg in section.figures.items():
        title = FIGURE_TITLES.get(name, name.replace("_", " ").capitalize())
        parts.append(f'<h4>{html.escape(title)}</h4><div class="figure">{_inline_svg(svg)}</div>')
    return "".join(parts)


def _num(value):
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "NA"
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return str(value)
    if isinstance(value, float | np.floating):
        return f"{value:.4g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2e}"
    return html.escape(str(value))


def _table(frame: pd.DataFrame, text_columns=()) -> str:
    head = "".join(f'<th class="{"text" if c in text_columns else ""}">{html.escape(str(c))}</th>' for c in frame)
    body = []
    for row in frame.itertuples(index=False):
        cells = "".join(
            f'<td class="text">{html.escape(str(v))}</td>' if c in text_columns else f"<td>{_num(v)}</td>"
            for c, v in zip(frame.columns, row, strict=True)
        )
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _inline_svg(svg: str) -> str:
    # drop the XML prolog and DOCTYPE so the SVG can sit inside HTML
    return re.sub(r"^.*?(<svg\b)", r"\1", svg, count=1, flags=re.S)


def _section(section: AnalysisSection) -> str:
    pooled = section.pooled
    fit = pd.DataFrame([{name: pooled.get(name) for name in FIT_FIELDS}])
    columns = ["line", "study_id", "study", "input", "conversion", "yi", "vi", "weight", "reason", "checks"]
    effects = section.effects[[c for c in columns if c in section.effects]].fillna("")
    excluded = int((~section.effects["included"]).sum())
    keys = ("measure", "preset", "method", "test", "level", "vtype", "unit")
    settings = ", ".join(f"{key} = {pooled[key]}" for key in keys if pooled.get(key) is not None)
    return f"""
<section id="{html.escape(section.name)}">
<h2>{html.escape(section.title)} <small>({html.escape(section.name)})</small></h2>
<p>{html.escape(settings)}; k = {pooled["k"]} of {len(section.effects)} selected rows
({excluded} excluded, reasons below). Converged: {_num(pooled.get("converged"))}.</p>
<div class="figure">{_inline_svg(section.forest_svg)}</div>
<h3>Pooled fit</h3>{_table(fit)}
<h3>Rows</h3>{_table(effects, text_columns=("study_id", "study", "input", "conversion", "reason", "checks"))}
{_extras(section)}
</section>"""


REPRODUCTION_COLUMNS = (
    "analysis", "source", "marker", "measure_ours", "measure_published", "estimate_ours", "ci_low_ours",
    "ci_high_ours", "estimate_published", "ci_low_published", "ci_high_published", "difference", "ci_overlap",
    "k_ours", "k_published", "n_cases_ours", "n_cases_published", "n_controls_ours", "n_controls_published",
)  # fmt: skip


def _reproduction(table: pd.DataFrame | None) -> str:
    if table is None or table.empty:
        return ""
    columns = [c for c in REPRODUCTION_COLUMNS if c in table.columns]
    return f"""<h2>Reproduction of published meta-analyses</h2>
<p>Our pooled estimate beside each published one it is compared with (config <code>compare_with</code>).
The difference and CI overlap are given only where both are on the same scale (standardized, or raw in the
same unit); Cohen's d and Hedges' g are set side by side. Published values: data/raw/published_meta_analyses.csv.</p>
{_table(table[columns], text_columns=("analysis", "source", "marker", "measure_ours", "measure_published"))}"""


def render_report(summary: pd.DataFrame, sections: list[AnalysisSection], reproduction=None) -> str:
    columns = [c for c in SUMMARY_COLUMNS if c in summary.columns]
    body = "".join(_section(s) for s in sections)
    toc = "".join(f'<li><a href="#{html.escape(s.name)}">{html.escape(s.title)}</a></li>' for s in sections)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>metarepro report</title><style>{STYLE}</style></head>
<body>
<h1>metarepro report</h1>
<p>metarepro {__version__}. Random-effects estimates follow R metafor's definitions (I² is τ²-based;
Q uses inverse-variance weights; the τ² CI is the Q-profile interval).</p>
<h2>Summary</h2>{_table(summary[columns], text_columns=("analysis", "measure", "preset", "method", "test"))}
{_reproduction(reproduction)}
<ul>{toc}</ul>
{body}
</body></html>
"""
