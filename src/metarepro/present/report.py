"""The HTML report: one self-contained page (inline SVG and CSS, no network requests) that answers the question
in its first screen and keeps every number traceable below it.

Order: headline (atlas figure and one sentence per marker), published vs reproduced (figure and verdicts), one
collapsible section per analysis (forest plot, the fit as metafor prints it, estimator sensitivity, subgroups,
meta-regression, bias, influence, the row account), the PRISMA 2020 section (:mod:`metarepro.present.prisma`),
methods (written from the settings), provenance.

The markup is in Jinja2 templates (``templates/``: the page, one file per part, ``report.css`` and ``report.js``);
this module computes what they show (numbers formatted, sentences written) as plain text. The templates
autoescape: every string is escaped when it is put into the page unless it is markup made here (a rendered part, an
SVG drawn by :mod:`metarepro.present.plots`), so no user-supplied string can become markup.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from metarepro import __version__
from metarepro._core.limits import SECTION_MAX_ROWS
from metarepro._core.printing import SIGNIF
from metarepro._core.printing import _f as f4
from metarepro._core.printing import _p as pval
from metarepro._core.printing import _results as results_table
from metarepro.pipeline.findings import CORRELATION_MEASURES, GENERIC_MEASURES
from metarepro.quality import RULES, flagged_included
from metarepro.stats.effects import transform_back

TEMPLATES = Path(__file__).with_name("templates")


# autoescape: {{ value }} is escaped (MarkupSafe) unless it is Markup; None prints as nothing; an undefined name
# is an error, not an empty string
ENV = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, undefined=StrictUndefined, trim_blocks=True,
                  lstrip_blocks=True, keep_trailing_newline=True, finalize=lambda v: "" if v is None else v)


def _part(template: str, macro: str, **context) -> Markup:
    """One part of the page: ``macro`` of ``templates/<template>``, as markup to put into another part."""
    return getattr(ENV.get_template(template).module, macro)(**context)


def _asset(name: str) -> Markup:
    """The page's stylesheet or script (``templates/report.css``, ``report.js``), inlined as is."""
    return Markup((TEMPLATES / name).read_text())


ATLAS_CAPTION = ("The primary estimate of every analysis on this scale with its CI, one row per analysis; the numbers "
                 "are in the sentences above and in each analysis's section.")
REPRODUCTION_CAPTION = ("Our primary estimate beside each published one it is compared with, with their CIs; the "
                        "numbers and verdicts are in the table below.")
FIGURE_TITLES = {
    "funnel": "Contour-enhanced funnel plot", "cumulative": "Cumulative meta-analysis",
    "leave1out": "Leave-one-out", "baujat": "Baujat plot", "forest": "Forest plot",
    "study_level": "Study by study, ours vs published", "forest_subgroups": "Forest plot by {}",
    "bubble": "Bubble plot of the meta-regression on {}",
}  # fmt: skip
# what each figure of an analysis shows, said under it (its text alternative, with its title and the tables)
FIGURE_CAPTIONS = {
    "forest": "Each pooled row's estimate with its CI, and the pooled estimate",
    "funnel": "Each study's estimate against its standard error, with the regions where a study's own test is "
              "significant shaded; asymmetry can mean small-study effects or publication bias",
    "cumulative": "The pooled estimate as the studies are added one at a time (order: the config's "
                  "cumulative_order, default year)",
    "leave1out": "The pooled estimate with each study left out in turn",
    "baujat": "Each study's contribution to the heterogeneity statistic Q against its influence on the pooled estimate",
    "forest_subgroups": "A pooled estimate per subgroup of {}, with the test of subgroup differences",
    "bubble": "Meta-regression on {}: each study's estimate against the moderator, with the fitted line",
    "study_level": "Per study, the published estimate and ours, each with its CI, over the band in which ours "
                   "would agree",
}  # fmt: skip
MEASURE_WORDS = {
    "SMD": "Hedges' g", "MD": "mean difference", "ROM": "ratio of means", "ZCOR": "correlation r", "GEN": "effect",
    "OR": "odds ratio", "RR": "risk ratio", "RD": "risk difference", "PETO": "Peto odds ratio",
    **dict.fromkeys(("PR", "PLN", "PLO", "PAS", "PFT"), "proportion"),
    "VR": "variability ratio", "CVR": "coefficient of variation ratio",
}  # fmt: skip
# measures pooled as a ratio (no difference: 1) and the proportions (shown in percent, no "no difference" value)
RATIO_SHOWN = ("ROM", "OR", "RR", "PETO", "VR", "CVR")
PROPORTION_SHOWN = ("PR", "PLN", "PLO", "PAS", "PFT")
METHOD_WORDS = {
    "EE": "an equal-effects model", "DL": "the DerSimonian–Laird estimator", "REML": "restricted maximum likelihood",
    "ML": "maximum likelihood", "PM": "the Paule–Mandel estimator", "SJ": "the Sidik–Jonkman estimator",
    "HE": "the Hedges estimator", "HS": "the Hunter–Schmidt estimator", "EB": "the empirical Bayes estimator",
}  # fmt: skip
REFERENCES = {
    "metafor": "Viechtbauer W (2010). Conducting meta-analyses in R with the metafor package. J Stat Softw 36(3):1–48.",
    "REML": "Viechtbauer W (2005). Bias and efficiency of meta-analytic variance estimators in the random-effects "
            "model. J Educ Behav Stat 30:261–293.",
    "DL": "DerSimonian R, Laird N (1986). Meta-analysis in clinical trials. Control Clin Trials 7:177–188.",
    "PM": "Paule RC, Mandel J (1982). Consensus values and weighting factors. J Res Natl Bur Stand 87:377–385.",
    "knha": "Knapp G, Hartung J (2003). Improved tests for a random effects meta-regression with a single covariate. "
            "Stat Med 22:2693–2710.",
    "qprofile": "Viechtbauer W (2007). Confidence intervals for the amount of heterogeneity in meta-analysis. "
                "Stat Med 26:37–52.",
    "I2": "Higgins JPT, Thompson SG (2002). Quantifying heterogeneity in a meta-analysis. Stat Med 21:1539–1558.",
    "handbook": "Deeks JJ, Higgins JPT, Altman DG (eds) (2023). Chapter 10: Analysing data and undertaking "
                "meta-analyses (§10.10.2, Identifying and measuring heterogeneity). In: Higgins JPT, Thomas J, "
                "Chandler J, et al. (eds). Cochrane Handbook for Systematic Reviews of Interventions, version 6.4. "
                "Cochrane.",
    "PI": "Riley RD, Higgins JPT, Deeks JJ (2011). Interpretation of random effects meta-analyses. BMJ 342:d549.",
    "SMD": "Hedges LV (1981). Distribution theory for Glass's estimator of effect size and related estimators. "
           "J Educ Stat 6:107–128.",
    "ROM": "Hedges LV, Gurevitch J, Curtis PS (1999). The meta-analysis of response ratios in experimental ecology. "
           "Ecology 80:1150–1156.",
    "VR": "Nakagawa S, Poulin R, Mengersen K, Reinhold K, Engqvist L, Lagisz M, Senior AM (2015). Meta-analysis "
          "of variation: ecological and evolutionary applications and beyond. Methods Ecol Evol 6:143–152.",
    "multilevel": "Konstantopoulos S (2011). Fixed effects and variance components estimation in three-level "
                  "meta-analysis. Res Synth Methods 2:61–76.",
    "multilevel2": "Van den Noortgate W, López-López JA, Marín-Martínez F, Sánchez-Meca J (2013). Three-level "
                   "meta-analysis of dependent effect sizes. Behav Res Methods 45:576–594.",
    "multivariate": "Berkey CS, Hoaglin DC, Antczak-Bouckoms A, Mosteller F, Colditz GA (1998). Meta-analysis of "
                    "multiple outcomes by regression with random effects. Stat Med 17:2537–2550.",
    "shared_controls": "Gleser LJ, Olkin I (2009). Stochastically dependent effect sizes. In: Cooper H, Hedges LV, "
                       "Valentine JC (eds). The Handbook of Research Synthesis and Meta-Analysis, 2nd ed. "
                       "Russell Sage Foundation, 357–376.",
    "CR1": "Hedges LV, Tipton E, Johnson MC (2010). Robust variance estimation in meta-regression with dependent "
           "effect size estimates. Res Synth Methods 1:39–65.",
    "CR2": "Pustejovsky JE, Tipton E (2018). Small-sample methods for cluster-robust variance estimation and "
           "hypothesis testing in fixed effects models. J Bus Econ Stat 36:672–683.",
    "CR2b": "Tipton E (2015). Small sample adjustments for robust variance estimation with meta-regression. "
            "Psychol Methods 20:375–393.",
}  # fmt: skip


@dataclass
class AnalysisSection:
    name: str
    title: str
    pooled: dict
    effects: pd.DataFrame
    forest_svg: str
    config: dict = field(default_factory=dict)  # the analysis's config entry (where, subgroups, ...)
    estimators: pd.DataFrame | None = None
    bias: dict | None = None
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)  # subgroups, metareg, influence, ...
    figures: dict[str, str] = field(default_factory=dict)  # name -> SVG text
    script: str = ""  # link to the analysis's metafor.R (relative to the page), "" for none

    @property
    def marker(self) -> str:
        where = self.config.get("where") or {}
        value = where.get("marker")
        return str(value if not isinstance(value, list) else ", ".join(map(str, value))) if value else self.title

    @property
    def titled(self) -> bool:
        """Named by its title (no ``where: marker``): a headline sentence cannot make the title its subject."""
        return not (self.config.get("where") or {}).get("marker")


# ------------------------------------------------------------------------------------------------------------
# small formatting helpers (4-decimal numbers and metafor's p-values: f4 and pval, from metarepro._core.printing)


def _finite(x) -> bool:
    try:
        return x is not None and np.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def num(value, digits=None) -> str:
    """A table cell: NA for missing, yes/no for booleans, 4 significant digits for floats."""
    if value is None or (isinstance(value, float | np.floating) and not np.isfinite(value)):
        return "NA"
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return str(value)
    if isinstance(value, float | np.floating):
        if digits is not None:
            return f"{value:.{digits}f}"
        return f"{value:.4g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2e}"
    return str(value)


def _p(p) -> str:
    if not _finite(p):
        return "p = NA"
    return "p < 0.0001" if p < 1e-4 else f"p = {p:.2g}" if p < 0.001 else f"p = {p:.3f}"


def _shown(record: dict, name: str) -> float:
    """A pooled value on the reader's scale: the ratio for ROM, OR, RR, r for ZCOR, the proportion for PLN, PLO, PAS,
    PFT (pooled.json's *_ratio, *_r, *_prop)."""
    for suffix in ("_ratio", "_r", "_prop"):
        if record.get(name + suffix) is not None:
            return record[name + suffix]
    return record.get(name)


def estimate_text(record: dict, digits=2) -> str:
    est, lo, hi = (_shown(record, n) for n in ("estimate", "ci_low", "ci_high"))
    if not _finite(est):
        return "NA"
    if record.get("measure") in PROPORTION_SHOWN:  # in percent
        est, lo, hi, digits = 100 * est, 100 * lo, 100 * hi, max(digits - 1, 1)
        return f"{est:.{digits}f}% ({record.get('level', 95):g}% CI {lo:.{digits}f}% to {hi:.{digits}f}%)"
    return f"{est:.{digits}f} ({record.get('level', 95):g}% CI {lo:.{digits}f} to {hi:.{digits}f})"


def _measure_name(record: dict) -> str:
    name = MEASURE_WORDS.get(record.get("measure"), "effect")
    if record.get("measure") == "MD" and record.get("unit"):
        name += f" in {record['unit']}"
    return name


def _cell(value, text: bool) -> str:
    """A table cell's text: a number by :func:`num`; in a text column the value as it is (missing: empty)."""
    if not text:
        return num(value)
    return value if isinstance(value, str) else "" if pd.isna(value) else str(value)


def table_html(frame: pd.DataFrame, text_columns=(), classes="") -> Markup:
    columns = [(c, c in text_columns) for c in frame.columns]
    rows = [[(_cell(v, text), text) for (_, text), v in zip(columns, row, strict=True)]
            for row in frame.itertuples(index=False)]  # fmt: skip
    return _part("macros.html", "table", columns=columns, rows=rows, classes=classes)


def compact_svg(svg: str) -> str:
    """An SVG file as an inline element: no XML prolog, DOCTYPE or metadata, no indentation, coordinates to 0.1 pt
    (a tenth of a pixel at 96 dpi; together a third smaller)."""
    svg = re.sub(r"^.*?(<svg\b)", r"\1", svg, count=1, flags=re.S)
    svg = re.sub(r"<metadata>.*?</metadata>", "", svg, flags=re.S)
    svg = re.sub(r">\s+<", "><", svg)
    svg = re.sub(r' transform="rotate\(-?0 [^)]*\)"', "", svg)  # a rotation by 0 degrees
    # round numbers inside attribute values only (coordinates), never in the text a reader sees
    return re.sub(r'="[^"]*"', lambda m: re.sub(r"(\d+\.\d)\d+", r"\1", m.group(0)), svg)


def shared_styles(page: str) -> tuple[str, str]:
    """Replace each distinct inline ``style="..."`` of the page's SVGs by a class, defined once in CSS: the same
    few dozen styles repeat thousands of times across the figures."""
    classes: dict[str, str] = {}

    def to_class(match):
        css = match.group(1)
        name = classes.setdefault(css, f"s{len(classes)}")
        return f'class="{name}"'

    page = re.sub(r'style="([^"]*)"', to_class, page)
    return page, "".join(f".{name}{{{css}}}" for css, name in classes.items())


# a reference to an element of the same SVG: xlink:href="#id" (markers), url(#id) (clip paths)
SVG_REFERENCE = re.compile(r'(href="#|url\(#)([^")]+)')


def unique_ids(svg: str, uid: str) -> str:
    """An SVG's ids made unique on the page: matplotlib numbers the elements of every figure alike (figure_1,
    patch_1, ...) and names markers and clip paths by a hash of their content (alike in alike figures), so the
    inlined figures repeated each other's ids. Ids nothing refers to are dropped; the others become
    ``<uid>-1``, ``<uid>-2``, ... with their references (shorter, too)."""
    names: dict[str, str] = {}
    for _, old in SVG_REFERENCE.findall(svg):
        names.setdefault(old, f"{uid}-{len(names) + 1}")
    svg = re.sub(r' id="([^"]*)"', lambda m: f' id="{names[m.group(1)]}"' if m.group(1) in names else "", svg)
    return SVG_REFERENCE.sub(lambda m: m.group(1) + names[m.group(2)], svg)


def figure_html(svg: str, uid: str, title: str, caption: str = "") -> Markup:
    """A figure drawn by :mod:`metarepro.present.plots` (SVG text: markup we made), inlined with its ids prefixed
    by ``uid`` (unique on the page, :func:`unique_ids`), ``title`` as the image's accessible name (its ``<title>``)
    and ``caption`` (what it shows; default the title) under it."""
    head, closed, body = re.match(r"(<svg\b[^>]*?)\s*(/?)>(.*)", unique_ids(compact_svg(svg), uid), re.S).groups()
    return _part("macros.html", "figure", head=Markup(head), body=Markup("</svg>" if closed else body), uid=uid,
                 title=title, caption=caption or title)


def _figure_kind(name: str) -> tuple[str, str]:
    """A figure's file stem as (kind, column): ("bubble", "year") for bubble_year, ("funnel", "") for funnel."""
    for kind in ("forest_subgroups", "bubble"):
        if name.startswith(kind + "_"):
            return kind, name[len(kind) + 1:]
    return name, ""


def figure_title(name: str) -> str:
    """A figure of an analysis by its file stem: "Contour-enhanced funnel plot", "Forest plot by sample"."""
    kind, column = _figure_kind(name)
    return FIGURE_TITLES.get(kind, name.replace("_", " ").capitalize()).format(column)


def _section_figure(section: AnalysisSection, name: str) -> Markup:
    """One figure of an analysis's section (``forest`` or a stem of ``section.figures``), titled with the analysis
    and captioned with what it shows (the forest plot also with the pooled estimate)."""
    kind, column = _figure_kind(name)
    caption = FIGURE_CAPTIONS.get(kind, figure_title(name)).format(column)
    if name == "forest":
        r = section.pooled
        caption += f": {_measure_name(r)} {estimate_text(r)}, {k_text(r)}"
    svg = section.forest_svg if name == "forest" else section.figures[name]
    return figure_html(svg, f"{section.name}-{name}", f"{figure_title(name)}: {section.title}", caption + ".")


# ------------------------------------------------------------------------------------------------------------
# the fit, as metafor's print.rma shows it


NOT_APPLICABLE_K1 = "not applicable (k = 1: one study has no between-study variability)"
K1_CELL = "n/a (k = 1)"  # a table cell of τ², I² or Q for a fit to one study


@dataclass(frozen=True)
class _Coefficients:
    """Coefficients of a pooled.json record in a fit's names, for metafor's table of model results."""

    test: str
    beta: list
    se: list
    zval: list
    pval: list
    ci_lb: list
    ci_ub: list


def _model_results(coefficients: list[dict], test: str, df=None, names=None) -> list[str]:
    """"Model Results:" as metafor prints them (:func:`metarepro._core.printing.model_text`'s table, checked against
    R): one row per coefficient record (``estimate``, ``se``, ``zval``, ``pval``, ``ci_low``, ``ci_high``), the
    ``df`` column under a t test, the significance codes."""

    def column(name):
        return [np.nan if c.get(name) is None else float(c[name]) for c in coefficients]

    fit = _Coefficients(test, column("estimate"), column("se"), column("zval"), column("pval"), column("ci_low"),
                        column("ci_high"))  # fmt: skip
    return ["Model Results:", "", results_table(names, fit, df), "", SIGNIF]


def _dependent_blocks(record: dict) -> list[tuple[str, str]]:
    """A dependent analysis's fit in the spirit of metafor's ``print.rma.mv``: model, variance components with their
    profile CIs and I², QE, coefficients, the robust result."""
    dep = record["dependence"]

    level = record.get("level", 95)
    clusters = ", ".join(f"{n} {c}" for c, n in dep["clusters"].items())
    lines = [f"{dep['model'].capitalize()} model: {dep['k_effects']} effects in {clusters} clusters", dep["formula"]]
    if dep["model"] == "aggregate":
        return [*_fit_blocks({**record, "dependence": None}), ("pre", "\n".join(lines)), *_robust_blocks(dep)]
    lines += ["", f"  logLik = {f4(dep['logLik'])}, AIC = {f4(dep['AIC'])}, BIC = {f4(dep['BIC'])}, "
              f"AICc = {f4(dep['AICc'])} ({record['method']})", "",
              f"Variance Components (profile-likelihood {level:g}% CIs; I² as in Viechtbauer's FAQ):"]  # fmt: skip

    def ci(c):
        return f"[{f4(c.get('ci_low'))}, {f4(c.get('ci_high'))}]" if "ci_low" in c else ""

    for c in dep.get("sigma2", []):
        lines.append(f"  sigma^2 {c['formula_level']:<28} {f4(c['estimate'])} {ci(c)}  nlvls {c['nlevels']}  "
                     f"I² = {num(c['I2'], 1)}%")  # fmt: skip
    if "I2_total" in dep:
        lines.append(f"  I² total = {num(dep['I2_total'], 1)}%")
    for c in dep.get("tau2", []):
        lines.append(f"  tau^2 ({c['level']})  {f4(c['estimate'])} {ci(c)}  I² = {num(c['I2'], 1)}%")
    for c in dep.get("rho", []):
        lines.append(f"  rho ({c['pair']})  {f4(c['estimate'])} {ci(c)}")
    lines += ["", "Test for Residual Heterogeneity:",
              f"QE(df = {dep['QE_df']}) = {f4(dep['QE'])}, p-val {pval(dep['QE_p'], sep=True)}", ""]  # fmt: skip
    coefs = dep.get("coefficients")  # none: the intercept alone, which metafor prints without a row name
    t = record["test"] == "t"
    df = [np.nan if c.get("df") is None else c["df"] for c in coefs or [record]] if t else None
    lines += _model_results(coefs or [record], record["test"], df, [str(c["name"]) for c in coefs] if coefs else None)
    after = []
    if dep.get("primary"):
        after.append(f"(primary: {dep['primary']}, the estimate the summary and headline report)")
    if _finite(record.get("pi_low")):
        after.append(f"Prediction interval: [{f4(_shown(record, 'pi_low'))}, {f4(_shown(record, 'pi_high'))}]")
    if dep.get("test_note"):
        after.append(f"Note: {dep['test_note']}.")
    if not dep.get("converged", True):
        after.append("Warning: the rma.mv optimiser did not converge.")
    return [("pre", "\n".join([*lines, *([""] if after else []), *after])), *_robust_blocks(dep)]


def _robust_blocks(dep: dict) -> list[tuple[str, str]]:
    """The cluster-robust result of a dependent analysis (metafor ``robust()``), or why there is none."""
    r = dep.get("robust")
    if not r:
        return []
    if "se" not in r:
        return [("p", f"Cluster-robust {r['type']}: not computed ({r.get('note', '')}).")]
    text = (f"Cluster-robust inference ({r['type']}, {r['clusters']} clusters of {dep['cluster_column']}):\n"
            f"estimate {r['estimate']:.4f}, se {r['se']:.4f}, t = {r['tval']:.4f}, df = {r['df']:.2f}, "
            f"p-val {pval(r['pval'], sep=True)}, CI [{r['ci_low']:.4f}, {r['ci_high']:.4f}]")
    return [("pre", text)]


def _fit_blocks(record: dict) -> list[tuple[str, str]]:
    """The fit's blocks of text, each ("pre", printed text) or ("p", a sentence)."""
    if record.get("dependence"):
        return _dependent_blocks(record)
    if record.get("printed"):  # rma.mh / rma.peto: metafor's print.rma.mh / print.rma.peto, as the library prints it
        after = [f"Warning: {warning}" for warning in record.get("warnings") or []]
        return [("pre", "\n".join([record["printed"], *([""] if after else []), *after]))]
    k, method, test = record["k"], record["method"], record["test"]
    model = "Equal-Effects Model" if method == "EE" else "Random-Effects Model"
    lines = [f"{model} (k = {k}; tau^2 estimator: {method})" if method != "EE" else f"{model} (k = {k})", ""]

    if method != "EE" and k == 1:  # metafor prints tau^2 = 0, I^2 = 0%: values no single study can give
        lines += [f"tau^2, tau, I^2, H^2: {NOT_APPLICABLE_K1}", ""]
    elif method != "EE":
        # a bound not found within the search limit is shown as "> limit" / "< limit", never as a found number
        low = ("< " if record.get("tau2_ci_low_capped") else "") + f4(record.get("tau2_ci_low"))
        high = ("> " if record.get("tau2_ci_high_capped") else "") + f4(record.get("tau2_ci_high"))
        lines += [
            f"tau^2 (estimated amount of total heterogeneity): {f4(record.get('tau2'))} "
            f"(SE = {f4(record.get('tau2_se'))})",
            f"tau (square root of estimated tau^2 value):      {f4(record.get('tau'))}",
            f"I^2 (total heterogeneity / total variability):   {num(record.get('i2'), 2)}%",
            f"H^2 (total variability / sampling variability):  {num(record.get('h2'), 2)}",
            f"tau^2 {record.get('level', 95):g}% CI (Q-profile): [{low}, {high}]; "
            f"I^2 [{low[:2] if low.startswith('<') else ''}{num(record.get('i2_ci_low'), 2)}%, "
            f"{high[:2] if high.startswith('>') else ''}{num(record.get('i2_ci_high'), 2)}%]",
            "",
        ]  # fmt: skip
    q_df = record.get("q_df")
    q_text = f"Q(df = {int(q_df) if _finite(q_df) else 'NA'}) = {f4(record.get('q'))}"
    q_line = f"Q: {NOT_APPLICABLE_K1}" if k == 1 else f"{q_text}, p-val {pval(record.get('q_p'), sep=True)}"
    lines += ["Test for Heterogeneity:", q_line, ""]
    knha = test == "knha" and k > 1  # with one study metafor sets test = "z" (the record's warning says so)
    lines += _model_results([record], "knha" if knha else "z", [k - 1] if knha else None)
    after = []
    back = record.get("measure") in (*RATIO_SHOWN, "ZCOR")
    if back:
        words = "r" if record["measure"] == "ZCOR" else MEASURE_WORDS[record["measure"]]
        after += [f"Back-transformed ({words}): {estimate_text(record, 4)}"]
    if _finite(record.get("pi_low")):
        after += [f"Prediction interval: [{f4(_shown(record, 'pi_low'))}, {f4(_shown(record, 'pi_high'))}]"
                  + (" (back-transformed)" if back else "")]  # fmt: skip
    after += [f"Warning: {warning}" for warning in record.get("warnings") or []]
    if record.get("converged") is False:
        after.append("Warning: the estimator did not converge.")
    return [("pre", "\n".join([*lines, *([""] if after else []), *after]))]


def fit_block(record: dict) -> Markup:
    """The primary fit in metafor's ``print.rma`` layout (plain text), from a pooled.json record."""
    return _part("macros.html", "fit", blocks=_fit_blocks(record))


# ------------------------------------------------------------------------------------------------------------
# headline


# The Cochrane Handbook's ranges for I² (§10.10.2), closed and overlapping, and what it says of each.
I2_RANGES = ((0, 40, "might not be important"), (30, 60, "moderate"), (50, 90, "substantial"),
             (75, 100, "considerable"))  # fmt: skip
I2_PHRASES = {  # with the Handbook's own hedging ("might not be", "may represent")
    ("might not be important",): "heterogeneity that might not be important",
    ("might not be important", "moderate"): "heterogeneity that might not be important or may be moderate",
    ("moderate",): "heterogeneity that may be moderate",
    ("moderate", "substantial"): "heterogeneity that may be moderate to substantial",
    ("substantial",): "heterogeneity that may be substantial",
    ("substantial", "considerable"): "substantial to considerable heterogeneity",
    ("considerable",): "considerable heterogeneity",
}
I2_NOTE = ("Heterogeneity is described by the Cochrane Handbook's overlapping ranges for I² (Deeks, Higgins & Altman "
           "2023, §10.10.2; see References): 0–40% might "
           "not be important, 30–60% may represent moderate, 50–90% substantial and 75–100% considerable "
           "heterogeneity; the Handbook warns that such thresholds can mislead, as the importance of inconsistency "
           "depends on the size and direction of effects and the strength of evidence for heterogeneity (Q's p, "
           "the CI of I²).")  # fmt: skip


def heterogeneity_words(i2) -> str:
    """I² in the Handbook's words, every range it falls in: "moderate to substantial heterogeneity (I² = 55%)".
    The ranges are read at the I² shown (whole percent), so the words agree with the number beside them."""
    if not _finite(i2):
        return "heterogeneity not estimable"
    shown = float(f"{i2:.0f}")
    words = tuple(word for low, high, word in I2_RANGES if low <= shown <= high)
    overlap = ", in overlapping Handbook ranges" if len(words) > 1 else ""
    return f"{I2_PHRASES[words]} (I² = {shown:.0f}%{overlap})"


def marker_sentence(section: AnalysisSection, others: list[AnalysisSection], labels: dict) -> Markup:
    """One sentence (with its caveats) on the first analysis of a marker; the marker's other analyses after it. The
    group names are the analysis's own ``labels`` where its config sets them (a trial's arms, not cases/controls)."""
    r = section.pooled
    labels = {**labels, **(section.config.get("labels") or {})}
    verdict = _conclusion(r, labels)
    caveats = []
    counts_fit = r.get("fit") not in (None, "rma")  # rma.mh, rma.peto (equal effects) still report I²
    if r["k"] > 1 and (r.get("method") != "EE" or counts_fit):
        caveats.append(heterogeneity_words(r.get("i2")))
        if _finite(r.get("pi_low")) and r.get("method") != "EE":
            pl, ph = _shown(r, "pi_low"), _shown(r, "pi_high")
            percent = r.get("measure") in PROPORTION_SHOWN
            caveats.append(f"prediction interval {100 * pl:.1f}% to {100 * ph:.1f}%" if percent else
                           f"prediction interval {pl:.2f} to {ph:.2f}")  # fmt: skip
    if _clusters(r) < 10:
        caveats.append(f"only {_clusters(r)} {'study' if _clusters(r) == 1 else 'studies'}")
    caveats += _small_study_caveat(section.bias)
    if r.get("dependence") and r["dependence"].get("primary"):
        caveats.append(f"the estimate of {r['dependence']['primary']} in a multivariate model")
    for warning in r.get("warnings") or []:
        caveats.append(warning.rstrip("."))  # the sentence ends with its own period
    return _part("headline.html", "marker_sentence", marker=section.marker, titled=section.titled, verdict=verdict,
                 fit=_fit_words(section), p=_p(r.get("pval")), k=k_text(r), n=_participants(r),
                 # the fit without the rows a quality rule flags, with the same weight as the primary (issue 17)
                 without_flagged=_without_flagged_sentence(section.effects, r, verdict, labels),
                 caveats=caveats, others=[_fit_words(o) for o in others])  # fmt: skip


def _fit_words(section: AnalysisSection) -> dict:
    """An analysis's name and its estimate in words: "Hedges' g 0.50 (95% CI 0.20 to 0.80)"."""
    return {"name": section.name, "measure": _measure_name(section.pooled), "estimate": estimate_text(section.pooled)}


FLAG_DEFINITION = (
    f"A row is flagged when it trips one of the pre-specified quality rules ({', '.join(RULES)}; thresholds in "
    "data/raw/README.md); flagged rows stay in the primary fit and are left out of the fit \"without flagged "
    "rows\". The row account's other checks (e.g. SD > mean) are not flags."
)  # fmt: skip


def _conclusion(record, labels) -> str:
    """What a fit's CI says, after "<marker> is" (and "also"/"then"), in the words of its measure's family: "higher
    in MDD than in controls" / "not clearly different between ..." for a two-group comparison; "positively
    correlated (the CI excludes r = 0)" for a correlation, which has no cases or controls; for a generic effect
    (GEN), whose direction means what the sheet's yi means, only the measure: "associated with an effect above 0
    (the CI excludes 0)"."""
    cases, controls = labels.get("cases", "cases"), labels.get("controls", "controls")
    measure = record.get("measure")
    if measure in PROPORTION_SHOWN:  # one group: nothing to compare
        return "the pooled proportion"
    null = 1.0 if measure in RATIO_SHOWN else 0.0
    est, lo, hi = (_shown(record, n) for n in ("estimate", "ci_low", "ci_high"))
    above = _finite(est) and est > null
    clear = _finite(lo) and (lo > null or hi < null)
    if measure in CORRELATION_MEASURES:
        if clear:
            return f"{'positively' if above else 'negatively'} correlated (the CI excludes r = 0)"
        return "not clearly correlated (the CI includes r = 0)"
    if measure in GENERIC_MEASURES:
        name = MEASURE_WORDS.get(measure, "effect")
        if clear:
            return f"associated with an {name} {'above' if above else 'below'} 0 (the CI excludes 0)"
        return f"associated with an {name} not clearly different from 0 (the CI includes 0)"
    if clear:
        return f"{'higher' if above else 'lower'} in {cases} than in {controls}"
    return f"not clearly different between {cases} and {controls}"


def _without_flagged_sentence(effects: pd.DataFrame, record: dict, verdict: str, labels: dict) -> list[str]:
    """How many pooled rows a quality rule flagged, and the fit without exactly those rows (pooled.json's
    ``without_flagged`` drops the same rows, :func:`metarepro.quality.flagged_included`), with its conclusion."""
    flagged = int(flagged_included(effects).sum())
    if not flagged:
        return []
    pooled = int(effects["included"].astype(bool).sum())
    text = f"{flagged} of {pooled} pooled rows are flagged by a pre-specified quality rule (see the row account)"
    without = record.get("without_flagged")
    if isinstance(without, dict) and _finite(without.get("estimate")):
        fit = {**record, **without}
        other = _conclusion(fit, labels)
        said = f"also {other}" if other == verdict else f"then {other}"
        text += (f"; without them: {_measure_name(record)} {estimate_text(fit)}, {_p(without.get('pval'))}; "
                 f"k = {without.get('k')}, {said}.")
    elif isinstance(without, dict) and without.get("k") == 0:
        text += "; no row is left without them."
    else:
        text += "."
    return [text]


EGGER_ALPHA = 0.10  # Egger et al. 1997 (BMJ 315:629) read funnel asymmetry at p < 0.10: the test has low power


def _small_study_caveat(bias: dict | None) -> list[str]:
    """Funnel asymmetry by Egger's (mixed-effects) test at p < 0.10, with the test as metafor prints it, and the
    Cochrane Handbook's low-power warning when k < 10."""
    if not bias or not _finite(bias.get("egger_p")) or bias["egger_p"] >= EGGER_ALPHA:
        return []
    test = regtest_statistic(bias.get("egger_statistic") or "z", bias.get("egger_z"), bias.get("egger_df"))
    text = f"funnel asymmetry by Egger's test ({test}, {_p(bias['egger_p'])}): small-study effects or publication bias"
    if bias.get("low_power_note"):
        text += " (fewer than 10 studies: the test has low power)"
    return [text]


def k_text(record) -> str:
    """"k = 20"; for a dependent analysis "k = 22 effects in 20 clusters" (aggregate: "20 clusters of 22 effects")."""
    dep = record.get("dependence")
    if not dep:
        return f"k = {record['k']}"
    clusters = dep["clusters"][dep["cluster_column"]]
    if dep["model"] == "aggregate":
        return f"k = {clusters} clusters of {dep['k_effects']} effects"
    return f"k = {dep['k_effects']} effects in {clusters} clusters"


def _clusters(record) -> int:
    dep = record.get("dependence")
    return dep["clusters"][dep["cluster_column"]] if dep else record["k"]


def _participants(record) -> str:
    n1, n2 = record.get("n_cases"), record.get("n_controls")
    return f", {int(n1 + n2):,} participants" if _finite(n1) and _finite(n2) else ""


def headline(sections: list[AnalysisSection], atlas: list, labels: dict) -> Markup:
    by_marker: dict[str, list[AnalysisSection]] = {}
    for s in sections:
        by_marker.setdefault(s.marker, []).append(s)
    sentences = [marker_sentence(group[0], group[1:], labels) for group in by_marker.values()]
    figures = [figure_html(svg, f"atlas{i}", title, ATLAS_CAPTION)
               for i, (title, svg) in enumerate(map(_titled, atlas), 1)]  # fmt: skip
    return _part("headline.html", "headline", sentences=sentences, figures=figures,
                 note=f"{I2_NOTE} {FLAG_DEFINITION}")


def _titled(figure) -> tuple[str, str]:
    """An overview figure as (title, SVG text); given as SVG text alone, a generic title."""
    return figure if isinstance(figure, tuple) else ("Pooled estimates", figure)


# ------------------------------------------------------------------------------------------------------------
# published vs reproduced


def _ci_text(est, lo, hi) -> str:
    if not _finite(est):
        return "NA"
    return f"{est:.2f} ({lo:.2f} to {hi:.2f})" if _finite(lo) and _finite(hi) else f"{est:.2f} (no CI)"


def _verdict(verdict) -> tuple[str, str]:
    """A verdict's text and CSS class (its colour)."""
    verdict = "" if verdict is None or (isinstance(verdict, float) and np.isnan(verdict)) else str(verdict)
    return verdict, "verdict-" + re.sub(r"[^a-z]+", "-", verdict.lower()).strip("-")


def reproduction_counts(table: pd.DataFrame, study_sentences=()) -> str:
    """The reproduction section's first sentence: the verdicts counted, how many pairs are updates, and each
    study-level comparison's counts."""
    verdicts = table["verdict"].fillna("").value_counts()
    from metarepro.pipeline.reproduction import VERDICTS

    counted = ", ".join(f"{verdicts[v]} {v}" for v in VERDICTS if verdicts.get(v))
    plural = "s" if len(table) != 1 else ""
    text = f"{len(table)} comparison{plural} of our primary fits with published results: {counted}"
    if "comparison_type" in table:
        updates = int((table["comparison_type"] == "update").sum())
        if updates:
            text += (f"; {updates} of them are updates (some of our pooled studies appeared after the published "
                     "search ended)")
    text += "."
    for name, sentence in study_sentences:
        text += f" Study by study ({name}): {sentence}"
    return text


def reproduction_section(table: pd.DataFrame | None, figures: list[str], study_sentences=()) -> Markup | str:
    if table is None or table.empty:
        return ""
    rows = []
    for r in table.itertuples():
        published_k = f", k = {num(r.k_published)}" if _finite(r.k_published) else ""
        without = None
        if _finite(getattr(r, "estimate_without_flagged", None)):
            without = (f"{_ci_text(r.estimate_without_flagged, r.ci_low_without_flagged, r.ci_high_without_flagged)}"
                       f", k = {num(r.k_without_flagged)}", _verdict(r.verdict_without_flagged))  # fmt: skip
        rows.append({
            "analysis": r.analysis, "source": r.source, "marker": r.marker,
            "ours": f"{r.measure_ours} {_ci_text(r.estimate_ours, r.ci_low_ours, r.ci_high_ours)}, k = {num(r.k_ours)}",
            "published": f"{r.measure_published} "
                         f"{_ci_text(r.estimate_published, r.ci_low_published, r.ci_high_published)}{published_k}",
            "verdict": _verdict(getattr(r, "verdict", "")), "why": getattr(r, "verdict_reason", "") or "",
            "without_flagged": without,
        })  # fmt: skip
    return _part("reproduction.html", "reproduction", counts=reproduction_counts(table, study_sentences),
                 figures=[figure_html(svg, f"reproduction{i}", title, REPRODUCTION_CAPTION)
                          for i, (title, svg) in enumerate(map(_titled, figures), 1)], rows=rows)


# ------------------------------------------------------------------------------------------------------------
# one analysis


FSN_NOTE = ("Not recommended: the Cochrane Handbook (v5.1.0, §10.4.4.3) advises against fail-safe N, whose value "
            "depends heavily on the effect assumed for the unpublished studies and which asks whether p crosses a "
            "threshold rather than how large the effect is; shown for comparison with published reviews.")


def regtest_statistic(statistic: str, value, df) -> str:
    """An Egger test's statistic as metafor's ``print.regtest`` shows it: "t = 3.4000, df = 18" under
    Knapp–Hartung and for the classic test, "z = 3.4000" otherwise (its p follows in the p column)."""
    shown_df = statistic == "t" and _finite(df)  # a bias.json without df (an older metarepro) shows none
    return f"{statistic} = {f4(value)}" + (f", df = {round(float(df), 2):g}" if shown_df else "")


def _bias(bias: dict | None, measure: str | None = None) -> Markup | str:
    """The small-study tests in one short table: test, result, p. Adjusted estimates (trim-and-fill, PET-PEESE) are
    shown on the reader's scale (ratios for ROM, r for ZCOR), as the pooled estimate is, not on the log scale."""
    if not bias:
        return ""
    b = bias.get
    back = measure != "PFT" and transform_back(measure, 0.0) is not None  # PFT's needs the n: on its own scale

    def ci(prefix):
        values = [b(prefix + suffix) for suffix in ("_estimate", "_ci_low", "_ci_high")]
        if back:
            values = [transform_back(measure, v) if _finite(v) else v for v in values]
        return f"{num(values[0])} [{num(values[1])}, {num(values[2])}]"

    rows = []  # (test, result, p, a caveat after the result)
    if "egger_z" in bias:
        rows += [
            ("Egger (mixed-effects, sei as predictor)",
             regtest_statistic(b("egger_statistic"), b("egger_z"), b("egger_df")), pval(b("egger_p")), ""),
            ("Egger (classic weighted regression)", regtest_statistic("t", b("egger_t"), b("egger_t_df")),
             pval(b("egger_t_p")), ""),
            ("Begg rank correlation", f"Kendall's τ = {num(b('begg_tau'))}" + (
                f"; p: {b('begg_method')}" if b("begg_method") else ""), pval(b("begg_p")), ""),
            ("Trim-and-fill (L0)", f"{num(b('trimfill_k0'))} missing on the {b('trimfill_side')}; "
             f"adjusted {ci('trimfill')}", "", ""),
            ("Trim-and-fill (R0)", f"{num(b('trimfill_r0_k0'))} missing; adjusted {ci('trimfill_r0')}", "", ""),
            ("Fail-safe N", f"Rosenthal {num(b('fsn_rosenthal'))}, Orwin {num(b('fsn_orwin'))}, "
             f"Rosenberg {num(b('fsn_rosenberg'))}. ", "", FSN_NOTE),
            ("PET-PEESE", f"uses {b('pet_peese_uses')}: {ci('pet_peese')}", "", ""),
        ]  # fmt: skip
    for model, name in (("rma", "mixed-effects"), ("lm", "weighted regression")):  # config regtest_predictor
        if f"regtest_{model}_z" in bias:
            rows.append((f"Regression test ({name}, predictor {b('regtest_predictor')})",
                         regtest_statistic(b(f"regtest_{model}_statistic"), b(f"regtest_{model}_z"),
                                           b(f"regtest_{model}_df")), pval(b(f"regtest_{model}_p")), ""))  # fmt: skip
    scale = {"ROM": "adjusted estimates as ratios of means", "VR": "adjusted estimates as variability ratios",
             "CVR": "adjusted estimates as CV ratios", "ZCOR": "adjusted estimates as r"}.get(
        measure if back else "", "analysis scale")
    return _part("analysis.html", "bias", k=bias.get("k", "NA"), rows=rows, scale=scale,
                 notes=[bias[k] for k in ("low_power_note", "odds_ratio_note", "note", "skipped") if bias.get(k)])


def _subgroups(table: pd.DataFrame) -> Markup:
    parts = []
    for column, block in table.groupby("column", sort=False):
        shown = pd.DataFrame({
            "subgroup": block["subgroup"], "k": block["k"],
            "estimate [CI]": [f"{num(e)} [{num(a)}, {num(b)}]" for e, a, b in
                              zip(block["estimate"], block["ci_low"], block["ci_high"], strict=True)],
            "p": block["pval"], "τ²": block["tau2"], "I² (%)": block["i2"],
        })  # fmt: skip
        one_study = block["k"].to_numpy() == 1
        for statistic in ("τ²", "I² (%)"):  # not `column`: that names the grouping column in the heading below
            shown[statistic] = shown[statistic].astype(object).where(~one_study, K1_CELL)
        first = block.iloc[0]
        qm = moderator_test(first["test_moderator_QM"], first["test_moderator_df"], first.get("test_moderator_df2"))
        tests = (f"Test of subgroup differences (common τ²): {qm}, p = {num(first['test_moderator_p'])}; "
                 f"between-subgroup Q (separate τ²) = {num(first['test_between_Q'])} "
                 f"(df = {num(first['test_between_df'])}), p = {num(first['test_between_p'])}.")  # fmt: skip
        left_out = str(first.get("left_out_lines")).split() if (first.get("left_out") or 0) > 0 else []
        if left_out:  # rows without a value are in no subgroup: say which, rather than drop them silently
            tests += (f" {len(left_out)} pooled row(s) have no {column} and are in no subgroup: line(s) "
                      f"{' '.join(left_out)}.")  # fmt: skip
        parts.append((column, table_html(shown, ("subgroup", "estimate [CI]")), tests))
    return _part("analysis.html", "subgroups", parts=parts)


def moderator_test(value, df1, df2=None) -> str:
    """The omnibus test of moderators as metafor prints it: under Knapp–Hartung an F on (df1, df2),
    "F(df1 = 1, df2 = 44) = 3.859"; otherwise a chi-square, "QM(df = 3) = 1.878"."""
    if _finite(df2):
        return f"F(df1 = {num(df1)}, df2 = {num(df2)}) = {num(value)}"
    return f"QM(df = {num(df1)}) = {num(value)}"


# An exact permutation p is a count over every distinct permutation; metafor's permutest leaves a permutation whose
# refit stops with an error out of the count (issue 20: under a strict convergence threshold R gave 11/15 where
# every refit gives 11/24; tests/stats/test_permutation.py). metarepro fits every permutation.
EXACT_PERMUTATION_NOTE = (
    ": exact, every distinct permutation refitted; metafor's permutest leaves out a permutation whose refit stops "
    "with an error, so R's p differs when one does, and metafor.R refits them with a convergence threshold R reaches"
)


def _exact(value) -> bool:
    return value is True or (isinstance(value, (bool, np.bool_)) and bool(value)) or str(value) == "True"


def _metareg(table: pd.DataFrame) -> Markup:
    shown = table[[c for c in ("coefficient", "estimate", "se", "ci_low", "ci_high", "pval", "permutation_p")
                   if c in table]]  # fmt: skip
    first = table.iloc[0]
    left_out = str(first.get("left_out_lines") or "").split()
    model = (f"k = {num(first['k'])}; residual τ² = {num(first['tau2'])}; R² = {num(first['R2'])}%; "
             f"{moderator_test(first['QM'], first['QM_df'], first.get('QM_df2'))}, p = {num(first['QM_p'])}"
             + (f", permutation p = {num(first['QM_permutation_p'])} ({num(first['permutations'])} permutations"
                f"{EXACT_PERMUTATION_NOTE if _exact(first.get('permutation_exact')) else ''})"
                if _finite(first.get("QM_permutation_p")) else "")
             + (f"; {first['permutation_note']}" if isinstance(first.get("permutation_note"), str) else "")
             + f"; QE = {num(first['QE'])} (df = {num(first['QE_df'])})."
             + (f" Left out for a missing moderator: line(s) {' '.join(left_out)}." if left_out
                else ""))  # fmt: skip
    return _part("analysis.html", "metareg", table=table_html(shown, ("coefficient",)), model=model)


def _reason_category(reason: str) -> str:
    """Exclusion reasons grouped for counting: row-specific parts (ids, line numbers, quoted values) removed."""
    text = reason.split(";")[0]
    text = re.sub(r"study_id \S+", "study_id …", text)
    text = re.sub(r"lines? [\d, ]+", "line …", text)
    text = re.sub(r"'[^']*'", "'…'", text)
    return text.strip()


def _rows_html(frame: pd.DataFrame, text_columns, file: str, what: str, max_rows: int, css: str = "") -> Markup:
    """A study-level table, or beyond ``max_rows`` rows (:data:`~metarepro._core.limits.SECTION_MAX_ROWS`) a sentence
    naming the CSV file that holds them: the section stays a few hundred kB whatever k."""
    if len(frame) <= max_rows:
        return table_html(frame.astype(object).fillna(""), text_columns, css)
    return _part("analysis.html", "not_listed", n=f"{len(frame):,}", what=what, max_rows=f"{max_rows:,}", file=file)


def row_account(effects: pd.DataFrame, max_rows: int = SECTION_MAX_ROWS) -> Markup:
    """PRISMA-like: counts per reason; included rows (with their flags) first, excluded rows collapsed; each list
    only up to ``max_rows`` rows (then named by its file, effects.csv)."""
    included = effects[effects["included"].astype(bool)]
    excluded = effects[~effects["included"].astype(bool)]
    counts = excluded["reason"].astype(object).fillna("").astype(str).map(_reason_category).value_counts()
    flags = [c for c in ("checks", "flags") if c in effects]
    inc_cols = [c for c in ("line", "study_id", "study", "input", "conversion", "yi", "vi", "weight", *flags)
                if c in effects]  # fmt: skip
    exc_cols = [c for c in ("line", "study_id", "study", "input", "reason", *flags) if c in effects]
    text_cols = ("study_id", "study", "input", "conversion", "reason", "checks", "flags")
    excluded_rows = (_rows_html(excluded[exc_cols], text_cols, "effects.csv (included = False)", "excluded rows",
                                max_rows) if len(excluded) else None)  # fmt: skip
    return _part("analysis.html", "row_account", selected=len(effects), pooled=len(included),
                 reasons=list(counts.items()), excluded=len(excluded), excluded_rows=excluded_rows,
                 included_rows=_rows_html(included[inc_cols], text_cols, "effects.csv", "pooled rows", max_rows))


ESTIMATOR_COLUMNS = ("method", "test", "estimate", "ci_low", "ci_high", "pval", "tau2", "i2", "converged")


def _outside_pi(record: dict, effects: pd.DataFrame) -> str:
    """"leaves out 6 of 11 observed studies": the pooled rows whose estimate lies outside the prediction interval."""
    used = effects[effects["included"].astype(bool)]
    yi = used["yi"].to_numpy(dtype=float)
    outside = int(((yi < record["pi_low"]) | (yi > record["pi_high"])).sum())
    return f"leaves out {outside} of {len(yi)} observed studies"


def tau2_outside_ci_note(record: dict, effects: pd.DataFrame, estimators: pd.DataFrame | None) -> Markup | str:
    """Said beside a fit whose τ² lies outside its own Q-profile CI (a moment estimator such as DerSimonian–Laird
    can fall far below it, and its CI and prediction interval are then too narrow), with the REML fit of the same
    rows and test next to it (from the estimator table), as a reader should weigh both (issue 20)."""
    tau2, low, high = (record.get(n) for n in ("tau2", "tau2_ci_low", "tau2_ci_high"))
    if not (_finite(tau2) and _finite(low) and _finite(high)) or low <= tau2 <= high or record.get("k", 0) < 2:
        return ""
    side = "below" if tau2 < low else "above"
    method = METHOD_WORDS.get(record.get("method"), record.get("method"))
    text = (f"τ² = {tau2:.4g} ({method}) lies {side} its own Q-profile {record.get('level', 95):g}% CI "
            f"({low:.4g} to {high:.4g}), so this fit's CI and prediction interval are "
            f"{'too narrow' if side == 'below' else 'too wide'}")
    if _finite(record.get("pi_low")):
        text += f" (its prediction interval {_outside_pi(record, effects)})"
    rows = pd.DataFrame() if estimators is None else estimators
    reml = rows[(rows["method"] == "REML") & (rows["test"] == record.get("test"))] if len(rows) else rows
    if record.get("method") != "REML" and len(reml):
        fit = {**record, **reml.iloc[0].to_dict()}
        text += (f". REML on the same rows ({fit['test']} test): {_measure_name(record)} {estimate_text(fit)}, "
                 f"{_p(fit.get('pval'))}, τ² = {fit['tau2']:.4g}")
        if _finite(fit.get("pi_low")):
            text += f"; its prediction interval {_outside_pi(fit, effects)}"
    return _part("analysis.html", "caveat", text=text)


def _estimators(table: pd.DataFrame | None, record: dict) -> Markup | str:
    if table is None or table.empty:
        return ""
    shown = table[[c for c in ESTIMATOR_COLUMNS if c in table]].copy()
    if record.get("k") == 1:
        shown[[c for c in ("tau2", "i2") if c in shown]] = K1_CELL
    suffix = next((s for s in ("_ratio", "_r", "_prop") if f"estimate{s}" in table), None)
    if suffix:  # ROM, OR, RR as ratios, ZCOR as r, proportions (as the pooled record back-transforms them)
        for c in ("estimate", "ci_low", "ci_high"):
            shown[c] = table[c + suffix].to_numpy(dtype=float)
    which = ("REML and ML (what rma.mv estimates)" if (record.get("dependence") or {}).get("model") in
             ("multilevel", "multivariate") else f"all {table['method'].nunique()} τ² estimators")  # fmt: skip
    return _part("analysis.html", "estimators", which=which, table=table_html(shown, ("method", "test")))


def _extras(section: AnalysisSection, max_rows: int = SECTION_MAX_ROWS) -> Markup:
    notes = [t["dependence"].iloc[0] for t in section.tables.values() if "dependence" in t and len(t)]
    notes += [section.bias["dependence"]] if section.bias and section.bias.get("dependence") else []
    tables = {name: t.drop(columns="dependence") if "dependence" in t else t for name, t in section.tables.items()}
    parts = []  # (kind, what the part's macro shows)
    for name, table in tables.items():
        if name == "influence" and "note" in table:  # not computed (too many studies): the table says why
            parts.append(("influence_note", str(table["note"].iloc[0]).capitalize()))
            continue
        if name == "influence":
            flagged = table[table["influential"].astype(bool)]
            names = flagged["study"].astype(str)
            text = "none" if flagged.empty else ", ".join(names) if len(names) <= max_rows // 10 else (
                f"{len(names):,} studies (flagged in the column 'influential' of influence.csv)")  # fmt: skip
            table = table.drop(columns=[c for c in ("line",) if c in table])
            # text (object or pandas' str dtype) left-aligned and wrapping; numbers and yes/no right-aligned
            text_columns = [c for c in table.columns if not pd.api.types.is_numeric_dtype(table[c])]
            shown = _rows_html(table, text_columns, "influence.csv", "rows of the influence table", max_rows)
            parts.append(("influence", (text, shown)))
        elif name == "subgroups":
            parts.append(("subgroups", _subgroups(table)))
        elif name == "metareg":
            parts.append(("metareg", _metareg(table)))
    figures = [(figure_title(name), _section_figure(section, name)) for name in section.figures
               if name != "study_level"]  # shown with its table by study_level_section  # fmt: skip
    return _part("analysis.html", "extras", note=notes[0] if notes else "",
                 bias=_bias(section.bias, section.pooled.get("measure")), parts=parts, figures=figures)


STUDY_LEVEL_SHOWN = ["study", "matched_by", "estimate_published", "estimate_ours", "difference", "status",
                     "suggested_error", "note"]  # fmt: skip


def study_level_section(section: AnalysisSection) -> Markup | str:
    """The study-level reproduction (config ``compare_studies``): one sentence with the counts, the figure and the
    table of study_level.csv; empty for an analysis without it."""
    from metarepro.pipeline.study_level import study_counts, summary_sentence

    table = section.tables.get("study_level")
    if table is None:
        return ""
    settings = section.config.get("compare_studies") or {}
    name = settings.get("published_id") or settings.get("sheet") or "the published meta-analysis"
    sentence = summary_sentence(study_counts(table), section.pooled.get("measure", ""), name)
    svg = section.figures.get("study_level")
    text_columns = ("study", "matched_by", "status", "suggested_error", "note")
    return _part("analysis.html", "study_level", name=name, sentence=sentence,
                 figure=_section_figure(section, "study_level") if svg else "",
                 table=table_html(table[STUDY_LEVEL_SHOWN], text_columns))


def analysis_section(section: AnalysisSection) -> Markup:
    r = section.pooled
    keys = ("measure", "preset", "method", "test", "level", "vtype", "unit")
    settings = ", ".join(f"{key} = {r[key]}" for key in keys if r.get(key) is not None)
    dep = r.get("dependence")
    if dep:
        settings += f", dependence = {dep['model']}" + (f", robust = {dep['robust']['type']}" if dep.get("robust")
                                                         else "")  # fmt: skip
    return _part("analysis.html", "analysis", name=section.name, title=section.title, settings=settings,
                 script=section.script, summary=f"{_measure_name(r)} {estimate_text(r)},", k=k_text(r),
                 forest=_section_figure(section, "forest"), fit=fit_block(r),
                 tau2_note=tau2_outside_ci_note(r, section.effects, section.estimators),
                 estimators=_estimators(section.estimators, r), extras=_extras(section),
                 study_level=study_level_section(section), row_account=row_account(section.effects))


# ------------------------------------------------------------------------------------------------------------
# methods and provenance


MODEL_WORDS = {
    "multilevel": "a multilevel (three-level) random-effects model, metafor's rma.mv with nested random intercepts",
    "multivariate": "a multivariate random-effects model, metafor's rma.mv with one coefficient per outcome",
    "aggregate": "a random-effects model on effects aggregated to one per cluster (metafor's aggregate())",
}


def _dependent_methods(members, measure, vtype, level, cited) -> dict:
    """The methods paragraph of analyses with dependent effects (one paragraph per model signature)."""
    r = members[0].pooled
    dep = r["dependence"]
    names = ", ".join(s.name for s in members)
    cited |= {"metafor", "multilevel", "multilevel2"} if dep["model"] == "multilevel" else {"metafor"}
    cited |= {"multivariate"} if dep["model"] == "multivariate" else set()
    cited |= {measure} if measure in REFERENCES else set()
    parts = [f"The analysis pooled {MEASURE_WORDS.get(measure, measure)} of {dep['k_effects']} effects from "
             f"{dep['clusters'][dep['cluster_column']]} clusters ({dep['cluster_column']}) with "
             f"{MODEL_WORDS[dep['model']]}: {dep['formula']}."]  # fmt: skip
    if dep["model"] != "aggregate":
        parts.append(f"Variance components were estimated by {METHOD_WORDS.get(r['method'], r['method'])}, with "
                     f"{level:g}% profile-likelihood CIs and I² per level as in Viechtbauer's FAQ.")  # fmt: skip
    if dep.get("shared_controls"):
        cited.add("shared_controls")
        parts.append("Effects of case groups compared with one control group were given the covariance implied by "
                     "the shared controls (Gleser & Olkin 2009; metafor vcalc with the group sizes).")  # fmt: skip
    if dep.get("vcalc_rho") is not None:
        parts.append(f"Sampling errors of rows of one cluster measured on the same participants were assumed to "
                     f"correlate with ρ = {dep['vcalc_rho']:g}.")  # fmt: skip
    if dep.get("test_note"):
        parts.append(f"Tests and CIs use t distributions ({dep['test_note'].split('; ')[-1]}).")
    robust = dep.get("robust")
    if robust:
        cited |= {"CR1"} if robust["type"] == "CR1" else {"CR1", "CR2", "CR2b"}
        parts.append(f"Cluster-robust inference over {dep['cluster_column']} used {robust['type']}"
                     + (" with Satterthwaite degrees of freedom (clubSandwich)" if robust["type"] == "CR2" else "")
                     + ".")  # fmt: skip
    parts.append("Leave-one-out, influence, cumulative, small-study, subgroup and meta-regression analyses ran on the "
                 "effects aggregated to one per cluster with the same sampling covariance.")  # fmt: skip
    return {"names": names, "text": " ".join(parts)}


COUNTS_MEASURES = {
    "OR": "log odds ratios", "RR": "log risk ratios", "RD": "risk differences", "PETO": "Peto log odds ratios",
    "PR": "raw proportions", "PLN": "log-transformed proportions", "PLO": "logit-transformed proportions",
    "PAS": "arcsine square root transformed proportions",
    "PFT": "Freeman–Tukey double arcsine transformed proportions (back-transformed with the harmonic mean of the "
           "sample sizes, Miller 1978)",
}  # fmt: skip
COUNTS_FITS = {
    "rma.mh": "The tables were pooled by the Mantel–Haenszel method (equal effects; metafor's rma.mh)",
    "rma.peto": "The tables were pooled by Peto's one-step method (equal effects; metafor's rma.peto)",
    "rma.glmm": "A generalized linear mixed model was fitted by {method} (metafor's rma.glmm, model {model})",
}  # fmt: skip


def _counts_methods(members, measure, method, test, level) -> dict:
    """The methods paragraph of binary-outcome analyses (one fit and zero-cell handling)."""
    r = members[0].pooled
    fit = str(r["fit"])
    zero = r.get("zero_cells") or {}
    model = fit.split(" ", 1)[1].strip("()") if " " in fit else "for proportions"
    if fit == "rma":
        text = (f"An {'equal-effects' if method == 'EE' else 'random-effects'} model was fitted to the "
                f"{COUNTS_MEASURES.get(measure, measure)} by inverse variance"
                + ("" if method == "EE" else f"; τ² was estimated by {METHOD_WORDS.get(method, method)}"))
    else:
        text = COUNTS_FITS[fit.split(" ")[0]].format(method=METHOD_WORDS.get(method, method), model=model)
        text += f" on the {COUNTS_MEASURES.get(measure, measure)}"
    text += (f", with {'Knapp–Hartung' if test == 'knha' else 'Wald z'} tests and {level:g}% confidence intervals. "
             f"Zero cells: add = {zero.get('add')}, to = {zero.get('to')}"
             + (f", drop00 = {zero.get('drop00')}" if measure in ("OR", "RR", "RD", "PETO") else "")
             + " (metafor's defaults unless the config sets them); estimates are shown back-transformed.")
    return {"names": ", ".join(s.name for s in members), "text": text}


def methods_section(sections: list[AnalysisSection]) -> Markup:
    """A paragraph per distinct set of settings, in the words of metafor's ``reporter()``, to paste into a paper."""
    groups: dict[tuple, list[AnalysisSection]] = {}
    for s in sections:
        r = s.pooled
        dep = r.get("dependence") or {}
        signature = (dep.get("formula"), dep.get("shared_controls"), dep.get("vcalc_rho"),
                     (dep.get("robust") or {}).get("type"), dep.get("cluster_column")) if dep else None  # fmt: skip
        if r.get("fit") is not None:  # binary outcomes: how the counts were pooled, with the zero-cell handling
            signature = ("counts", r["fit"], repr(r.get("zero_cells")))
        key = (r.get("measure"), r.get("method"), r.get("test"), r.get("level"), r.get("preset"), r.get("vtype"),
               signature)  # fmt: skip
        groups.setdefault(key, []).append(s)
    paragraphs, cited = [], {"metafor", "qprofile", "I2", "handbook"}  # handbook: the headline's I² words
    for (measure, method, test, level, preset, vtype, signature), members in groups.items():
        if signature is not None and signature[0] == "counts":
            paragraphs.append(_counts_methods(members, measure, method, test, level))
            continue
        if signature is not None:
            paragraphs.append(_dependent_methods(members, measure, vtype, level, cited))
            continue
        measure_text = {
            "SMD": "standardized mean differences (Hedges' g with the exact small-sample correction"
                   + (", variances as in Review Manager 5" if vtype == "RM5" else ", large-sample variances")
                   + ")",
            "MD": "raw mean differences (rows converted to one unit)", "ROM": "log-transformed ratios of means",
            "ZCOR": "Fisher r-to-z transformed correlations", "GEN": "the effect sizes given in the sheet",
            "VR": "log variability ratios (lnVR, metafor 3.8-1)",
            "CVR": "log coefficient-of-variation ratios (lnCVR, metafor 3.8-1)",
        }.get(measure, measure)  # fmt: skip
        cited |= {"VR" if measure == "CVR" else measure} & REFERENCES.keys()  # one paper defines VR and CVR
        if method == "EE":
            model = "An equal-effects model was fitted"
        else:
            model = f"A random-effects model was fitted; τ² was estimated by {METHOD_WORDS.get(method, method)}"
            cited |= {method} if method in REFERENCES else set()
        test_text = ("the Knapp–Hartung method (t with k − 1 degrees of freedom) for tests and confidence intervals"
                     if test == "knha" else "Wald z tests and confidence intervals")  # fmt: skip
        if test == "knha":
            cited.add("knha")
        paragraphs.append({"names": ", ".join(s.name for s in members), "measure": measure_text, "model": model,
                           "test": test_text, "knha": test == "knha", "level": f"{level:g}",
                           "revman": preset == "revman"})  # fmt: skip
    cited.add("PI")
    return _part("methods.html", "methods", paragraphs=paragraphs, version=__version__,
                 references=[REFERENCES[key] for key in REFERENCES if key in cited])


def provenance_section(provenance: dict | None) -> Markup | str:
    if not provenance:
        return ""
    return _part("methods.html", "provenance", software=list(provenance.get("software", {}).items()),
                 files=list(provenance.get("files", {}).items()))


# ------------------------------------------------------------------------------------------------------------


def data_paragraph(sheets: list[dict], note: str = "") -> Markup:
    """What the data are, once, near the top: per sheet its rows, samples, sources and markers
    (:func:`metarepro.jobs.overview.data_summary`), and the config's ``data_note`` (what the data are and cannot
    show)."""
    def one(s):
        markers = f", markers {', '.join(s['markers'])}" if s["markers"] else ""
        sources = f" from {s['sources']:,} sources" if s["sources"] else ""
        return f"{s['rows']:,} rows ({s['samples']:,} samples{sources}{markers}) in {s['sheet']}"

    return _part("page_parts.html", "data_paragraph", counts="; ".join(one(s) for s in sheets), note=note)


# ------------------------------------------------------------------------------------------------------------
# summary of findings, and each question's interpretation and sensitivity (metarepro.pipeline.findings)

SOF_NOTE = (
    "GRADE domains as the numbers of each question's primary analysis suggest them: every entry is a suggestion "
    "that a person confirms or overrides, with the rule and the numbers that led to it; indirectness is not "
    "computed. Rules: risk of bias, rows flagged by a quality rule carry ≥ 50% of the weight, or leaving them out "
    "changes the conclusion (GRADE 4, Guyatt et al. 2011); inconsistency, I² ≥ 50% or a prediction interval that "
    "includes the null while the CI does not (GRADE 7); imprecision, a CI that includes the null or the config's "
    "decision_threshold, or fewer participants than the optimal information size of one trial with α = 0.05 and "
    "power 0.8 (GRADE 6); publication bias, Egger's test p < 0.10 with k ≥ 10, or trim-and-fill changing the "
    "conclusion (GRADE 5; Cochrane Handbook §13.3.5.4). Estimates on the reader's scale (ratios for ROM, r for "
    "correlations). Cochrane Handbook ch. 14."
)
GRADE_MARKS = {True: ("concern", "⚠ consider rating down"), False: ("ok", "✓ no serious concern"),
               None: ("na", "? not assessable")}  # fmt: skip


def sof_section(found) -> Markup | str:
    """The summary-of-findings table (:class:`metarepro.jobs.findings.Findings`), one row per question."""
    from metarepro.pipeline.findings import num as fnum

    if found is None or not found.sof_rows:
        return ""
    rows = []
    for r in found.sof_rows:
        measure = MEASURE_WORDS.get(r.measure, r.measure)
        marks = [dict(zip(("kind", "mark"), GRADE_MARKS[s.concern], strict=True), reason=s.reason)
                 for s in r.suggestions]  # fmt: skip
        rows.append({"name": r.analysis, "question": r.question, "k": r.k,
                     "estimate": f"{measure} {fnum(r.estimate)} [{fnum(r.ci_low)}, {fnum(r.ci_high)}] "
                                 f"({r.level:g}% CI)",
                     "participants": f"{r.participants:.0f}" if _finite(r.participants) else "NA",
                     "suggestions": marks})  # fmt: skip
    domains = [s.domain.capitalize() for s in found.sof_rows[0].suggestions]
    return _part("findings.html", "sof", rows=rows, domains=domains, note=SOF_NOTE)


def findings_part(found, row, labels: dict) -> Markup:
    """One question's part, after its primary analysis: the reporter()-like sentences, the sensitivity table and
    sentence, and the traffic light of the primary analysis's quality flags."""
    from metarepro.pipeline.findings import conclusion_text
    from metarepro.pipeline.findings import num as fnum

    table = found.sensitivity[row.question]
    rows = [{"label": r.label, "analysis": r.analysis, "k": "" if pd.isna(r.k) else int(r.k),
             "estimate": f"{fnum(r.estimate)} [{fnum(r.low)}, {fnum(r.high)}]",
             "what": "range of estimates" if r.kind == "range" else "CI",
             "said": "conclusions differ" if pd.isna(r.conclusion)
             else conclusion_text(int(r.conclusion), labels, r.measure), "note": r.note}
            for r in table.itertuples(index=False)]  # fmt: skip
    svg = found.figures.get(row.analysis)
    figure = (figure_html(svg, f"{row.analysis}-quality", f"Quality rules per pooled row: {row.question}",
                          f"{row.question}, {row.analysis}: which pre-specified quality rule flags each pooled row "
                          "(red !: flagged; green +: not); overall: any flag, the rows the fit without flagged rows "
                          "leaves out.") if svg else "")  # fmt: skip
    return _part("findings.html", "part", name=row.analysis, question=row.question,
                 reporter=found.reporter.get(row.analysis, []), sentence=found.sensitivity_sentences[row.question],
                 rows=rows, figure=figure)  # fmt: skip


def render_report(sections: list[AnalysisSection], reproduction: pd.DataFrame | None = None, *,
                  atlas_svgs=(), reproduction_svgs=(), provenance: dict | None = None, labels=None,
                  title="metarepro report", bodies=None, data=None, study_sentences=(),
                  findings=None, prisma=None) -> str:  # fmt: skip
    """The whole page. ``atlas_svgs``/``reproduction_svgs``: the overview figures, each (title, SVG text) or SVG
    text alone, drawn by :mod:`metarepro.present.plots.overview` from the same records and table shown here.
    ``bodies``: each section's :func:`analysis_section`, when already rendered (by the analysis's own job: HTML);
    else they are rendered here. ``findings``: the summary of findings and each question's part
    (:class:`metarepro.jobs.findings.Findings`; None: neither). ``prisma``: the PRISMA 2020 section's frame
    (:class:`metarepro.jobs.prisma.Frame`, its flow diagrams drawn; None: no such section)."""
    from metarepro.present.prisma import prisma_section

    labels = labels or {}
    body = list(map(Markup, bodies) if bodies is not None else map(analysis_section, sections))
    # each question's interpretation and sensitivity after its primary analysis (``findings``: a
    # metarepro.jobs.findings.Findings)
    own = {s.name: {**labels, **(s.config.get("labels") or {})} for s in sections}  # an analysis's own group names
    parts = {row.analysis: findings_part(findings, row, own.get(row.analysis, labels))
             for row in (findings.sof_rows if findings else [])}  # fmt: skip
    body = [b + parts.get(s.name, "") for s, b in zip(sections, body, strict=True)]
    content = _part("page_parts.html", "content", headline=headline(sections, list(atlas_svgs), labels),
                    findings=sof_section(findings),
                    reproduction=reproduction_section(reproduction, list(reproduction_svgs), study_sentences),
                    body=body)  # fmt: skip
    # the PRISMA section's figures share the content's style classes (appended after them: the content's own
    # classes keep their names)
    mark = Markup("<!--prisma-->")  # Markup: not escaped when joined
    content, svg_css = shared_styles(content + mark + prisma_section(prisma))
    content, prisma_html = content.split(str(mark))
    return ENV.get_template("report.html").render(
        title=title, css=_asset("report.css"), js=_asset("report.js"), svg_css=Markup(svg_css), sections=sections,
        version=__version__, data=data_paragraph(*data) if data else "", content=Markup(content),
        has_reproduction=reproduction is not None and not reproduction.empty, provenance=provenance,
        has_findings=bool(findings and findings.sof_rows),
        methods=methods_section(sections), provenance_section=provenance_section(provenance),
        prisma=Markup(prisma_html))  # fmt: skip
