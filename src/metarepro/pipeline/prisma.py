"""The PRISMA 2020 frame of a report, from what the analyses already wrote: per question the flow of rows (sheet
rows → rows for the question → usable → pooled in the primary fit → without flagged rows), the characteristics of
the studies in the primary fit, what the sheets say of their own extraction (the ``verification``,
``eligibility_second_pass`` and ``extracted_by`` columns, counted), and a methods paragraph per analysis written
from its settings. Pure functions: records in (``pooled.json``, ``bias.json`` as dicts, ``effects.csv`` and the
sheet as DataFrames, the analysis's config entry), tables and sentences out.

Page, MJ et al. (2021). The PRISMA 2020 statement: an updated guideline for reporting systematic reviews. BMJ
372:n71 (items 5–13 and 16a–17; the flow diagram). The flow here counts rows of an extraction sheet, not records
of a database search: the search itself is described by the config's ``prisma`` texts (data/raw/README.md for
the default sheets), never inferred.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from metarepro.quality import flagged_included

# ------------------------------------------------------------------------------------------------------------
# the flow of rows

# Why a row with a computable effect is not pooled (the later steps of pipeline.analysis.compute_effects: every
# other reason means the row gives no usable effect).
NOT_POOLED = {
    "converted row": "converted (this analysis uses reported means and SDs only)",
    "study_id ": "another row of the same study_id is pooled (one row per independent sample)",
    "'": "the dependence model cannot place the row (a grouping cell is empty)",
    "shared_controls needs": "shared controls need both group sizes",
}
# The reasons a row gives no usable effect, grouped (the row-specific part, e.g. which cells are empty, dropped).
NOT_USABLE = {
    "incomplete": "incomplete: cells the measure needs are empty",
    "contradictory numbers": "contradictory numbers",
    "arithmetically impossible": "arithmetically impossible numbers",
    "no unit given": "no unit given",
    "unit '": "unit cannot be converted",
    "an SD is 0": "an SD is 0",
    "the effect size or its variance is not finite": "effect or variance not finite",
}
STAGES = ("sheet rows", "other rows of the sheet", "rows for the question", "not usable", "usable",
          "usable, not pooled", "pooled", "flagged", "without flagged rows")  # fmt: skip
FLOW_COLUMNS = ["question", "analysis", "role", "stage", "reason", "rows"]


def reason_group(reason: str) -> tuple[bool, str]:
    """(usable, group) of an exclusion reason of effects.csv: whether the row had a computable effect that a later
    step left out (:data:`NOT_POOLED`), and the reason without its row-specific part."""
    for prefix, text in NOT_POOLED.items():
        if reason.startswith(prefix) and (prefix != "'" or "dependence model" in reason):
            return True, text
    for prefix, text in NOT_USABLE.items():
        if reason.startswith(prefix):
            return False, text
    text = re.sub(r"'[^']*'", "'…'", re.sub(r"\d+(\.\d+)?", "…", reason.split(";")[0]))
    return False, text.strip()


def flow_rows(question: str, analysis: str, role: str, effects: pd.DataFrame, sheet_rows: int) -> pd.DataFrame:
    """The flow of one analysis's rows in the long form of :data:`FLOW_COLUMNS` (one row per stage and reason):
    ``sheet_rows`` rows in its sheet, ``len(effects)`` selected by its ``where``, those without a usable effect by
    reason, those usable but not pooled by reason, the pooled rows, the flagged ones and what is left without them."""
    included = effects["included"].astype(bool).to_numpy()
    reasons = effects["reason"].astype(object).fillna("").astype(str).to_numpy()
    groups = [reason_group(r) for r in reasons[~included]]
    flagged = int(flagged_included(effects).sum())
    out = [("sheet rows", "", sheet_rows), ("other rows of the sheet", "not selected by 'where'",
                                             sheet_rows - len(effects)), ("rows for the question", "", len(effects))]
    for usable_stage, usable in (("not usable", False), ("usable, not pooled", True)):
        counts = pd.Series([g for u, g in groups if u == usable], dtype=object).value_counts(sort=False)
        ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        out += [(usable_stage, "", int(counts.sum()))] + [(usable_stage, g, int(n)) for g, n in ordered]
        if not usable:
            out.append(("usable", "", int(included.sum()) + sum(u for u, _ in groups)))
    out += [("pooled", "", int(included.sum())), ("flagged", "by a pre-specified quality rule", flagged),
            ("without flagged rows", "", int(included.sum()) - flagged)]  # fmt: skip
    return pd.DataFrame([(question, analysis, role, stage, reason, n) for stage, reason, n in out],
                        columns=FLOW_COLUMNS)  # fmt: skip


@dataclass(frozen=True)
class Flow:
    """One question's flow as the diagram draws it: main boxes (stage, rows) and beside each arrow the rows that
    leave there, by reason."""

    question: str
    analysis: str
    sheet: str
    where: str
    counts: dict  # stage -> rows
    reasons: dict  # stage -> [(reason, rows)]

    @classmethod
    def from_rows(cls, rows: pd.DataFrame, sheet: str = "", where: str = "") -> Flow:
        total = rows[rows["reason"] == ""]
        counts = dict(zip(total["stage"], total["rows"].astype(int), strict=True))
        counts["other rows of the sheet"] = int(rows.loc[rows["stage"] == "other rows of the sheet", "rows"].iloc[0])
        counts["flagged"] = int(rows.loc[rows["stage"] == "flagged", "rows"].iloc[0])
        reasons = {stage: [(r, int(n)) for r, n in zip(block["reason"], block["rows"], strict=True) if r]
                   for stage, block in rows.groupby("stage", sort=False)
                   if stage in ("not usable", "usable, not pooled")}  # fmt: skip
        first = rows.iloc[0]
        return cls(first["question"], first["analysis"], sheet, where, counts, reasons)


def where_text(where: dict | None) -> str:
    """A config's ``where`` as the page says it: "marker = IL-6", "sample = serum, plasma and marker = CRP"."""
    if not where:
        return "every row"
    parts = [f"{c} = {', '.join(map(str, v)) if isinstance(v, list) else v}" for c, v in where.items()]
    return " and ".join(parts)


# ------------------------------------------------------------------------------------------------------------
# study characteristics

# The descriptive columns of a sheet (data/raw/README.md, "Description and provenance"), in the order shown; a
# sheet shows those it has.
CHARACTERISTICS = ("year", "country", "n_cases", "n_controls", "age_cases", "age_controls", "female_pct_cases",
                   "female_pct_controls", "sample", "assay", "medication", "unit", "verification",
                   "eligibility_second_pass")  # fmt: skip
CHARACTERISTIC_NAMES = {
    "female_pct_cases": "female % cases", "female_pct_controls": "female % controls",
    "eligibility_second_pass": "eligibility (2nd pass)", "n_cases": "n cases", "n_controls": "n controls",
    "age_cases": "age cases", "age_controls": "age controls",
}  # fmt: skip


def characteristics(question: str, analysis: str, effects: pd.DataFrame, sheet: pd.DataFrame,
                    line_column: str = "_line") -> pd.DataFrame:  # fmt: skip
    """The rows pooled in ``analysis`` with the sheet's descriptive columns (:data:`CHARACTERISTICS` that the sheet
    has; cells as the sheet gives them, empty where it says nothing) and how the effect was obtained (``input``,
    ``conversion`` of effects.csv). Rows are matched by their sheet line."""
    used = effects[effects["included"].astype(bool)]
    columns = [c for c in CHARACTERISTICS if c in sheet.attrs.get("columns", sheet.columns)]
    by_line = sheet.set_index(line_column)
    rows = by_line.loc[used["line"].astype(int).to_numpy(), columns].reset_index(drop=True)
    out = pd.DataFrame({"question": question, "analysis": analysis, "line": used["line"].astype(int).to_numpy(),
                        "study_id": used["study_id"].to_numpy(), "study": used["study"].to_numpy()})  # fmt: skip
    out = pd.concat([out, rows], axis=1)
    out["input"] = used["input"].astype(object).fillna("").to_numpy()
    out["conversion"] = used["conversion"].astype(object).fillna("").to_numpy()
    return out


# ------------------------------------------------------------------------------------------------------------
# what a sheet says of its own extraction

EXTRACTION_COLUMNS = {
    "verification": "independent second extraction (verification)",
    "eligibility_second_pass": "second extractor's eligibility judgement (eligibility_second_pass)",
    "extracted_by": "extraction pass (extracted_by)",
}


def extraction_counts(sheet: pd.DataFrame) -> list[tuple[str, list[tuple[str, int]]]]:
    """Per column of :data:`EXTRACTION_COLUMNS` the sheet has: its values with their row counts (most rows first;
    an empty cell counted as "(empty)"). Counted from the sheet, so the page never states a number the sheet does
    not hold."""
    out = []
    for column, text in EXTRACTION_COLUMNS.items():
        if column not in sheet:
            continue
        values = sheet[column].astype(object).fillna("").astype(str).str.strip().replace("", "(empty)")
        counts = values.value_counts()
        out.append((text, sorted(((str(v), int(n)) for v, n in counts.items()), key=lambda item: (-item[1], item[0]))))
    return out


# ------------------------------------------------------------------------------------------------------------
# methods per analysis, from its settings

CONVERSIONS = (  # (the start of effects.csv's conversion label, a short name, the formula)
    ("SD cells read as SEMs", "SD cells proven to be SEMs",
     "SD cells proven by the row's printed test to be SEMs: SD = SEM·√n"),
    ("SEM→SD", "SEM→SD", "SD = SEM·√n"),
    ("CI→SD", "CI→SD", "SD = √n·(upper − lower)/(2·t(0.975, n − 1)) from a 95% CI of the mean (Cochrane Handbook "
                       "§6.5.2.2)"),
    ("median→mean,SD", "median→mean, SD", "mean and SD from the median with quartiles and/or range (Luo et al. "
                                          "2018 for the mean; Wan et al. 2014 / Shi et al. 2020 for the SD; metafor "
                                          "conv.fivenum)"),
    ("t→d", "t→d", "d = t·√(1/n1 + 1/n2), then the small-sample correction"),
    ("Cohen's d→g", "Cohen's d→g", "Cohen's d as printed, with the small-sample correction"),
    ("z as t→d", "z as t→d", "a z statistic used as t (sign from the direction), d = t·√(1/n1 + 1/n2)"),
    ("√F as t→d", "√F as t→d", "|t| = √F for an F with one numerator df (sign from the direction), "
                               "d = t·√(1/n1 + 1/n2)"),
    ("two-sided p→t→d", "p→t→d", "|t| = qt(1 − p/2, n1 + n2 − 2) from an exact two-sided p (sign from the "
                                 "direction), d = t·√(1/n1 + 1/n2)"),
    ("point-biserial r→d", "point-biserial r→d", "d = √(m/n1 + m/n2)·r/√(1 − r²), m = n1 + n2 − 2, from a "
                                                 "point-biserial r"),
)  # fmt: skip
MEASURE_FORMULAS = {
    "MD": "The raw mean difference m1 − m2 with variance sd1²/n1 + sd2²/n2 (metafor escalc measure \"MD\")",
    "ROM": "The log ratio of means ln(m1/m2) with variance sd1²/(n1·m1²) + sd2²/(n2·m2²) (metafor escalc measure "
           "\"ROM\"), pooled on the log scale and shown as ratios",
    "ZCOR": "Fisher's z = atanh(r) with variance 1/(n − 3) (metafor escalc measure \"ZCOR\"), shown as r",
    "GEN": "The effect yi given in the sheet with its variance vi (or sei², or from a 95% CI: "
           "((ci_high − ci_low)/(2·1.96))²)",
    # metafor 3.8-1's escalc (stats/effects.py and effects_binary.py, checked against it); the methods table named
    # these measures by their code alone
    "VR": "The log variability ratio ln(sd1/sd2) + 1/(2(n1 − 1)) − 1/(2(n2 − 1)) with variance 1/(2(n1 − 1)) + "
          "1/(2(n2 − 1)) (Nakagawa et al. 2015; metafor escalc measure \"VR\"), pooled on the log scale and shown "
          "as ratios",
    "CVR": "The log coefficient-of-variation ratio ln((sd1/m1)/(sd2/m2)) + 1/(2(n1 − 1)) − 1/(2(n2 − 1)) with "
           "variance 1/(2(n1 − 1)) + sd1²/(n1·m1²) + 1/(2(n2 − 1)) + sd2²/(n2·m2²) (Nakagawa et al. 2015; metafor "
           "3.8-1 escalc measure \"CVR\"), pooled on the log scale and shown as ratios",
    "OR": "The log odds ratio ln(a·d/(b·c)) of each 2×2 table with variance 1/a + 1/b + 1/c + 1/d (metafor escalc "
          "measure \"OR\"; zero cells as the config's add and to, by default 1/2 added to every cell of a table "
          "with a zero cell), pooled on the log scale and shown as ratios",
    "RR": "The log risk ratio ln((a/n1)/(c/n2)) of each 2×2 table with variance 1/a − 1/n1 + 1/c − 1/n2 (metafor "
          "escalc measure \"RR\"; zero cells as the config's add and to, by default 1/2 added to every cell of a "
          "table with a zero cell), pooled on the log scale and shown as ratios",
    "RD": "The risk difference a/n1 − c/n2 with variance p1(1 − p1)/n1 + p2(1 − p2)/n2 (metafor escalc measure "
          "\"RD\")",
    "PETO": "Peto's log odds ratio (O − E)/V of each 2×2 table with variance 1/V, V the hypergeometric variance "
            "of the events in group 1 (metafor escalc measure \"PETO\"), pooled on the log scale and shown as "
            "ratios",
    "PR": "The raw proportion p = x/n with variance p(1 − p)/n (metafor escalc measure \"PR\")",
    "PLN": "The log proportion ln(x/n) with variance 1/x − 1/n (metafor escalc measure \"PLN\"), pooled on the "
           "log scale and shown as proportions",
    "PLO": "The logit ln(p/(1 − p)) of the proportion p = x/n with variance 1/x + 1/(n − x) (metafor escalc "
           "measure \"PLO\"), pooled on the logit scale and shown as proportions",
    "PAS": "The arcsine square root asin(√(x/n)) with variance 1/(4n) (metafor escalc measure \"PAS\"), shown as "
           "proportions",
    "PFT": "The Freeman–Tukey double arcsine (asin(√(x/(n + 1))) + asin(√((x + 1)/(n + 1))))/2 with variance "
           "1/(4n + 2) (metafor escalc measure \"PFT\"), shown as proportions (back-transformed with the "
           "harmonic mean of the n, metafor's transf.ipft.hm)",
}
SMD_VARIANCES = {
    "LS": "the large-sample variance 1/n1 + 1/n2 + g²/(2(n1 + n2)) (metafor vtype \"LS\")",
    "UB": "the unbiased variance estimate (metafor vtype \"UB\")",
    "RM5": "Review Manager 5's approximate correction J = 1 − 3/(4(n1 + n2) − 9) and variance "
           "(n1 + n2)/(n1·n2) + g²/(2(n1 + n2 − 3.94)) (Deeks & Higgins 2010)",
}
TAU2_WORDS = {
    "DL": "the DerSimonian–Laird estimator", "REML": "restricted maximum likelihood (REML)",
    "ML": "maximum likelihood", "PM": "the Paule–Mandel estimator", "SJ": "the Sidik–Jonkman estimator",
    "HE": "the Hedges estimator", "HS": "the Hunter–Schmidt estimator", "EB": "the empirical Bayes estimator",
}  # fmt: skip


def _measure_sentence(pooled: dict) -> str:
    measure, vtype = pooled.get("measure"), pooled.get("vtype") or "LS"
    if measure == "SMD":
        correction = ("" if vtype == "RM5" else "the exact small-sample correction J = Γ(m/2)/(√(m/2)·Γ((m − 1)/2)), "
                      "m = n1 + n2 − 2, and ")  # fmt: skip
        text = (f"Hedges' g, the standardized mean difference (m1 − m2)/s_pooled with {correction}"
                f"{SMD_VARIANCES.get(vtype, vtype)}")  # fmt: skip
    else:
        text = MEASURE_FORMULAS.get(measure, str(measure))
        if measure in ("RD", "PR", "PLN", "PLO") and vtype != "LS":  # the variances above are vtype "LS"'s
            text += f"; variances as metafor's vtype \"{vtype}\""
    if measure == "MD" and pooled.get("unit"):
        text += f"; every row in {pooled['unit']} (mass concentrations converted, other units excluded)"
    # the sheet format's convention for two-group rows (data/raw/README.md); a given yi keeps the sign it has
    two_groups = ("SMD", "MD", "ROM", "VR", "CVR")  # on the log scale, VR and CVR are differences too
    return text + ("; every difference is cases minus controls." if measure in two_groups else ".")


def conversion_counts(effects: pd.DataFrame) -> list[tuple[int, int]]:
    """(index into :data:`CONVERSIONS`, pooled rows) of every conversion the pooled rows used."""
    used = effects[effects["included"].astype(bool)]
    labels = used["conversion"].astype(object).fillna("").astype(str)
    # a row's label joins its groups' conversions with "; " (e.g. "SEM→SD; CI→SD"): each part is matched by its
    # start, so "t→d" does not count "z as t→d"
    parts_of = [[part.strip() for part in label.split("; ")] for label in labels]
    counts = [(i, int(sum(any(part.startswith(start) for part in row) for row in parts_of)))
              for i, (start, _, _) in enumerate(CONVERSIONS)]  # fmt: skip
    return [(i, n) for i, n in counts if n]


def _conversion_sentences(effects: pd.DataFrame) -> list[tuple[str, str]]:
    counts = conversion_counts(effects)
    if not counts:
        return [("Conversions", "None (every pooled row reports what the measure needs).")]
    used = "; ".join(f"{CONVERSIONS[i][1]} {n} row{'s' if n > 1 else ''}" for i, n in counts)
    return [("Conversions", f"{used} (each row's conversion is named in its row account)."),
            ("Conversion formulas", "; ".join(CONVERSIONS[i][2] for i, _ in counts) + ".")]


def _model_sentence(pooled: dict) -> str:
    method, test, level = pooled.get("method"), pooled.get("test"), pooled.get("level", 95)
    dep = pooled.get("dependence")
    if dep and dep.get("model") in ("multilevel", "multivariate"):
        tests = dep.get("test_note") or f"test = \"{test}\""
        return (f"Variance components estimated by {TAU2_WORDS.get(method, method)} in metafor rma.mv, with "
                f"{level:g}% profile-likelihood CIs and I² per level; tests and CIs of the pooled estimate: {tests}; "
                "residual heterogeneity by the QE test.")  # fmt: skip
    stat = ("the Knapp–Hartung method (t with k − 1 df)" if test == "knha"
            else "t tests with model-based df" if test == "t" else "Wald z tests")  # fmt: skip
    if method == "EE":
        return (f"An equal-effects (common-effect) model, inverse-variance weights; {stat} for the pooled "
                f"estimate and its {level:g}% CI; heterogeneity by Cochran's Q test and I².")  # fmt: skip
    preset = " (preset revman: Review Manager 5's settings)" if pooled.get("preset") == "revman" else ""
    pi = "t with k − 1 df" if test == "knha" else "the normal distribution"
    return (f"Random effects, τ² estimated by {TAU2_WORDS.get(method, method)}{preset}; {stat} for the "
            f"pooled estimate and its {level:g}% CI; heterogeneity by Cochran's Q test and I², the {level:g}% CI of "
            f"τ² (and I²) by the Q-profile method (Viechtbauer 2007); a {level:g}% prediction interval from "
            f"{pi}.")  # fmt: skip


def _bias_sentences(pooled: dict, bias: dict | None) -> list[tuple[str, str]]:
    if not bias or bias.get("note"):
        return [("Small-study effects", f"Not assessed ({bias['note'] if bias else 'no bias record'}).")]
    egger = "t with k − 2 df" if bias.get("egger_statistic") == "t" else "z"  # metafor regtest: dfs = k − p
    begg = f", {bias['begg_method']} p" if bias.get("begg_method") else ""
    text = (f"Egger's regression test as a mixed-effects meta-regression on the standard error (metafor regtest, "
            f"model \"rma\", predictor \"sei\"; statistic {egger}) and as the classic weighted regression (model "
            f"\"lm\"); Begg's rank correlation (ranktest{begg}); fail-safe N (Rosenthal, Orwin, Rosenberg; for "
            "comparison only) and PET-PEESE. Asymmetry is read at p < 0.10 (Egger et al. 1997)")  # fmt: skip
    if bias.get("low_power_note"):
        text += "; with fewer than 10 studies these tests have low power"
    if bias.get("skipped"):
        text += f"; not computed: {bias['skipped']}"
    out = [("Small-study effects", text + ".")]
    estimator = bias.get("trimfill_estimator", "L0")
    side = bias.get("trimfill_side")
    if side:
        out.append(("Trim-and-fill", f"Estimator {estimator} ({'R0' if estimator == 'L0' else 'L0'} beside it), "
                                     f"the model's τ² estimator; studies imputed on the {side} side, chosen as "
                                     "metafor does from the sign of the slope of yi on √vi."))  # fmt: skip
    return out


def _influence_sentence(pooled: dict) -> str:
    if pooled.get("k", 0) < 3:
        return "Not assessed (fewer than 3 studies)."
    return ("metafor influence.rma.uni (p = 1 coefficient): a study is marked influential when |DFFITS| > "
            "3√(p/(k − p)), its Cook's distance exceeds the median of χ²(p), its hat value exceeds 3p/k, or "
            "|DFBETAS| > 1; leave-one-out refits each drop one study; outliers are studentized residuals beyond the "
            "Bonferroni-corrected normal value (metafor reporter()).")  # fmt: skip


def _cumulative_sentence(analysis: dict, sheet_columns) -> str:
    column = analysis.get("cumulative_order", "year")
    if column not in sheet_columns:
        return (f"The sheet has no column '{column}' (cumulative_order), so rows are "
                "added in the sheet's order.")  # fmt: skip
    default = " (config cumulative_order; default year)" if "cumulative_order" not in analysis else \
        " (config cumulative_order)"  # fmt: skip
    return (f"Studies added in increasing order of '{column}'{default}; rows without a "
            "readable value are added last, and the figure says how many.")  # fmt: skip


def _flagged_sentence(effects: pd.DataFrame, analysis: dict) -> str:
    flagged = int(flagged_included(effects).sum())
    if not flagged:
        return ("No pooled row is flagged by a pre-specified quality rule, so there is no such "
                "sensitivity fit.")  # fmt: skip
    pooled = int(effects["included"].astype(bool).sum())
    return (f"The same model refitted without the {flagged} of {pooled} pooled rows that a pre-specified quality "
            "rule flags (the rules under Risk of bias); rows with only a soft check (checks column) stay; the primary "
            "fit stays primary.")  # fmt: skip


def _dependence_sentence(pooled: dict, analysis: dict, effects: pd.DataFrame) -> str:
    dep = pooled.get("dependence")
    if dep:
        text = (f"A {dep['model']} model ({dep.get('formula', '')}) over "
                f"{dep['clusters'][dep['cluster_column']]} clusters of {dep['cluster_column']}")
        if dep.get("shared_controls"):
            text += ", with the covariance of case groups sharing one control group (vcalc with the group sizes)"
        if dep.get("vcalc_rho") is not None:
            text += f", sampling errors within a cluster correlated with ρ = {dep['vcalc_rho']:g}"
        if dep.get("robust"):
            text += f"; cluster-robust inference {dep['robust']['type']}"
        return text + "; the diagnostics run on the effects aggregated to one per cluster."
    repeated = int(sum(str(r).startswith("study_id ") for r in effects["reason"].astype(object).fillna("")))
    return (f"One row per study_id (independent sample) is pooled, the first usable one in sheet order; "
            f"{repeated} further row{'s' if repeated != 1 else ''} of a pooled study_id "
            f"{'are' if repeated != 1 else 'is'} excluded (config dependence would model them instead).")  # fmt: skip


def _selection_sentence(analysis: dict) -> str:
    where = where_text(analysis.get("where"))
    text = f"Those of {analysis.get('data', 'the sheet')} with {where}"
    if analysis.get("exclude_converted"):
        text += ", only rows that report means and SDs (exclude_converted: converted rows are excluded)"
    return text + "."


def _extra_sentences(analysis: dict) -> list[tuple[str, str]]:
    out = []
    if analysis.get("subgroups"):
        out.append(("Subgroups", f"By {', '.join(analysis['subgroups'])}: a fit per subgroup, the test of subgroup "
                   "differences in a meta-regression (common τ²) and Cochran's Q between subgroups (separate τ²); "
                   "rows without a value are in no subgroup and are named."))  # fmt: skip
    if analysis.get("moderators"):
        n = analysis.get("permutations", 1000)
        perm = f"a permutation test ({n} permutations, seed {analysis.get('seed', 1)})" if n else "no permutation test"
        out.append(("Meta-regression", f"On {', '.join(analysis['moderators'])} (jointly), with {perm}."))
    return out


def methods_table(methods: list[tuple[str, list[tuple[str, str]]]]) -> list[tuple[str, list[str], str]]:
    """Every analysis's :func:`methods_sentences` (``methods``: (analysis, sentences)) as (topic, analyses, text):
    each distinct text of a topic once, with the analyses it describes, topics in their order."""
    groups: dict[tuple[str, str], list[str]] = {}
    for name, sentences in methods:
        for topic, text in sentences:
            groups.setdefault((topic, text), []).append(name)
    order = list(dict.fromkeys(topic for _, sentences in methods for topic, _ in sentences))
    return sorted(((topic, names, text) for (topic, text), names in groups.items()),
                  key=lambda row: order.index(row[0]))  # fmt: skip


def methods_sentences(pooled: dict, bias: dict | None, effects: pd.DataFrame, analysis: dict,
                      sheet_columns=("year",)) -> list[tuple[str, str]]:  # fmt: skip
    """One analysis's methods, (topic, sentence) per topic, written from its settings (pooled.json's measure, method,
    test, level, vtype, preset, unit, dependence; bias.json's tests and trim-and-fill estimator and side; the config
    entry's where, exclude_converted, cumulative_order, subgroups, moderators) and its rows (the conversions used,
    the rows flagged or excluded as repeats). ``sheet_columns``: the sheet's columns (whether the cumulative order's
    column exists)."""
    return [("Rows", _selection_sentence(analysis)), ("Effect measure", _measure_sentence(pooled)),
            *_conversion_sentences(effects), ("Model", _model_sentence(pooled)),
            ("Dependence", _dependence_sentence(pooled, analysis, effects)),
            *_bias_sentences(pooled, bias), ("Influence", _influence_sentence(pooled)),
            ("Cumulative order", _cumulative_sentence(analysis, sheet_columns)),
            ("Without flagged rows", _flagged_sentence(effects, analysis)), *_extra_sentences(analysis)]  # fmt: skip


def participants_text(effects: pd.DataFrame) -> str:
    """"1,131 cases and 812 controls" in the pooled rows (rows without n not counted, and said)."""
    used = effects[effects["included"].astype(bool)]
    n1, n2 = (used[c].to_numpy(dtype=float) for c in ("n_cases", "n_controls"))
    missing = int((~np.isfinite(n1) | ~np.isfinite(n2)).sum())
    if missing == len(used):
        return "the sheet gives no group sizes for these rows"
    text = f"{np.nansum(n1):,.0f} cases and {np.nansum(n2):,.0f} controls"
    return text + (f" ({missing} row{'s' if missing > 1 else ''} without group sizes)" if missing else "")
