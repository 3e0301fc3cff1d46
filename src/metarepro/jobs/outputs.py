"""The files of a run, named once: what an analysis job writes into its folder and what the report job reads of it.

Read by the jobs (:mod:`metarepro.jobs.run`) and by the workflow (``workflow/rules/common.smk`` declares the rules'
outputs and inputs from it), so that the two agree by construction. Plain Python, no numpy or pandas: Snakemake
imports it while it parses the workflow (when metarepro is not installed there, common.smk loads this file by its
path; see ``tests/test_imports.py``).
"""

from __future__ import annotations

# Figure formats when the config gives no figure_formats: the SVG, which the report embeds (a PNG of every figure
# cost about half of each analysis's time and nobody read it; config figure_formats: [svg, png] asks for one).
FORMATS = ("svg",)
# Analyses run by one job when the config gives no analyses_per_job (workflow/rules/analysis.smk; config/README.md).
ANALYSES_PER_JOB = 12
# The case-diagnostics tables and figures of every analysis (metarepro.jobs.sensitivity.diagnostics).
DIAGNOSTIC_TABLES = ("leave1out", "influence", "cumulative")
DIAGNOSTIC_FIGURES = ("leave1out", "cumulative", "baujat")
# What the report job reads of each analysis (kind -> file in the analysis's folder); the report rule's inputs.
# bias.json: the headline names a significant small-study test among a marker's caveats; estimators, leave1out and
# influence: the summary of findings and each marker's sensitivity summary and interpretation.
REPORT_INPUTS = {"pooled": "pooled.json", "effects": "effects.csv", "section": "section.html", "bias": "bias.json",
                 "estimators": "estimators.csv", "leave1out": "leave1out.csv", "influence": "influence.csv"}
# The tables the report job writes beside summary.csv, reproduction.csv and report.html (kind -> file in the results
# folder): the summary of findings and the sensitivity summaries the page shows, and its PRISMA frame's flow of rows
# and study characteristics (metarepro.jobs.prisma).
OVERVIEW_TABLES = {"sof": "summary_of_findings.csv", "sensitivity": "sensitivity_summary.csv",
                   "prisma_flow": "prisma_flow.csv", "characteristics": "study_characteristics.csv"}


def analysis_tables(analysis: dict) -> list[str]:
    """The tables and records (CSV, JSON, the report's HTML section) an analysis job writes for ``analysis``
    (its config entry), in its folder."""
    tables = ["effects.csv", "pooled.json", "estimators.csv", *[f"{t}.csv" for t in DIAGNOSTIC_TABLES], "bias.json",
              "metafor.R", "section.html"]  # fmt: skip
    if analysis.get("subgroups"):
        tables.append("subgroups.csv")
    if analysis.get("moderators"):
        tables.append("metareg.csv")
    if analysis.get("compare_studies"):
        tables.append("study_level.csv")
    return tables


def analysis_figures(analysis: dict) -> list[str]:
    """The stems of the figures an analysis job draws, in the order its report section shows them."""
    figures = ["forest", "leave1out", "cumulative", "baujat", "funnel"]
    figures += [f"forest_subgroups_{column}" for column in analysis.get("subgroups") or []]
    figures += [f"bubble_{moderator}" for moderator in analysis.get("moderators") or []]
    if analysis.get("compare_studies"):
        figures.append("study_level")
    return figures


def analysis_inputs(analysis: dict) -> list[str]:
    """Every file an analysis job reads for ``analysis`` (its config entry): its sheet (``data``), then its
    compare_studies sheet if it has one."""
    studies = analysis.get("compare_studies")
    return [analysis["data"]] + ([studies["sheet"]] if studies else [])


def analysis_files(analysis: dict, formats=FORMATS) -> list[str]:
    """The names of every file an analysis job writes for ``analysis`` (its config entry), in its folder: the
    tables, then each figure in each of ``formats`` (default SVG only)."""
    return analysis_tables(analysis) + [f"{figure}.{fmt}" for figure in analysis_figures(analysis) for fmt in formats]
