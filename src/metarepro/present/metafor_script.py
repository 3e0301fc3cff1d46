"""The R metafor script behind an analysis's numbers (``metafor.R`` in its results folder).

:func:`metafor_script` is a pure function: the analysis's settings and what it ran (its effects table, the rows its
sensitivity steps used, its bias record) in, the text of an R script out. Run from the directory the workflow ran in
(``Rscript results/<name>/metafor.R``), the script reads ``effects.csv`` beside it, refits everything with metafor
exactly as the analysis did (same rows in the same order, method, test, level, tight convergence control), prints
each result, and writes its numbers as JSON (``metafor_check.json`` beside it, or the path given as its argument)
under the names of ``pooled.json``, ``bias.json`` and the tables, so that a test can compare them
(``tests/present/test_metafor_script.py``).

What metafor cannot express is said in a comment of the script (and a line it prints), never left out silently:
RevMan 5's approximate Hedges' g (``preset: revman`` with SMD), rows whose effect metarepro converted (SEM, CI,
median, t, p, ... or another unit) and which therefore enter with effects.csv's yi and vi instead of ``escalc``,
permutation p-values that depend on the random number generator, and the between-subgroup Q over separately fitted
subgroups (R meta's test, computed in the script by its formula).

The values the script needs per row beyond effects.csv's own columns (escalc's group data, the subgroup, moderator
and cumulative-order values) are R vectors in the script, up to ``SCRIPT_INLINE_MAX_ROWS`` rows
(:mod:`metarepro._core.limits`). Above it (analyses without a dependence model) they are extra columns of effects.csv
(:func:`script_columns`, which the analysis job appends) and the script reads them from there.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd

from metarepro._core.limits import BEGG_EXACT_MAX_K, REFIT_MAX_K, SCRIPT_INLINE_MAX_ROWS
from metarepro.inputs.config import analysis_option
from metarepro.inputs.sheet import MISSING
from metarepro.pipeline.analysis import Settings

# The convergence settings of every fit (the committed R references use the same: tests/reference/generate_*.R).
RMA_CONTROL = "list(threshold = 1e-13, tol = 1e-13, maxiter = 10000)"
CONFINT_CONTROL = "list(tol = 1e-13, maxiter = 10000)"
# the refits of a permutation test: a threshold Fisher scoring reaches at any tau^2 (see _metareg_block)
PERMUTATION_CONTROL = "list(threshold = 1e-10, tol = 1e-13, maxiter = 10000)"
MV_CONTROL = 'list(optimizer = "nlminb", iter.max = 10000, eval.max = 10000)'
# escalc's measure and argument names for the rows computed from group data
ESCALC_GROUPS = {"SMD": "SMD", "MD": "MD", "ROM": "ROM", "VR": "VR", "CVR": "CVR"}
# what a row's input form means, for the rows that enter with effects.csv's yi and vi
GIVEN = {"yi+vi": "yi with vi given", "yi+sei": "yi with its SE given",
         "yi+ci": "yi with a 95% CI given (vi from its width)"}
SCRIPT_NAME = "metafor.R"
CHECK_NAME = "metafor_check.json"

# A JSON writer in base R (no jsonlite needed): numbers with 17 significant digits (an exact double round trip),
# NA/NaN/Inf as null; I() marks a vector that is always an array.
_JSON_R = r"""json <- function(x) {
  if (is.null(x)) return("null")
  if (is.list(x)) {
    inner <- vapply(x, json, "")
    if (is.null(names(x))) return(paste0("[", paste(inner, collapse = ", "), "]"))
    return(paste0("{", paste0("\"", names(x), "\": ", inner, collapse = ", "), "}"))
  }
  v <- if (is.character(x)) ifelse(is.na(x), "null", paste0("\"", gsub("([\"\\\\])", "\\\\\\1", x), "\""))
       else if (is.logical(x)) ifelse(is.na(x), "null", tolower(as.character(x)))
       else ifelse(is.finite(x), sprintf("%.17g", as.numeric(x)), "null")
  if (length(x) == 1 && !inherits(x, "AsIs")) v else paste0("[", paste(v, collapse = ", "), "]")
}
# the fields of a fit as metarepro's tables name them (leave1out, cumul: t statistic under knha is tval)
fit_columns <- function(l) list(
  estimate = I(l$estimate), se = I(l$se), zval = I(if (is.null(l$zval)) l$tval else l$zval),
  pval = I(l$pval), ci_low = I(l$ci.lb), ci_high = I(l$ci.ub), q = I(l$Q), q_p = I(l$Qp),
  tau2 = I(if (is.null(l$tau2)) rep(0, length(l$estimate)) else l$tau2), i2 = I(l$I2), h2 = I(l$H2))
"""


def r_string(text) -> str:
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def r_value(value) -> str:
    """One R literal: numbers exactly (Python's shortest round-trip repr), NA for missing, text quoted."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "NA"
    if isinstance(value, bool | np.bool_):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return repr(float(value)) if math.isfinite(value) else ("Inf" if value > 0 else "-Inf")
    return r_string(value)


def r_vector(values, width: int = 100) -> str:
    """``c(...)`` wrapped at ``width`` characters."""
    items = [r_value(v) for v in values]
    lines, line = [], ""
    for item in items:
        if line and len(line) + len(item) + 2 > width:
            lines.append(line + ",")
            line = ""
        line = f"{line}, {item}" if line else item
    return "c(" + "\n    ".join([*lines, line]) + ")"


def r_name(column: str) -> str:
    """A column in an R formula: backquoted unless it is a syntactic name."""
    return column if re.fullmatch(r"[A-Za-z][A-Za-z0-9._]*", column) else f"`{column}`"


def _text(values: pd.Series) -> pd.Series:
    """A text column of the effects table with its empty cells as "" (read back, an all-empty column is float NaN)."""
    return values.astype(object).where(values.notna(), "")


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or str(value).strip().lower() in MISSING


def _group_rows(effects: pd.DataFrame, rows: pd.DataFrame, settings: Settings, unit) -> tuple[pd.DataFrame, str]:
    """The pooled rows whose yi and vi escalc computes from the group data as the sheet gives them (reported means
    and SDs, or r and n for ZCOR), and a sentence on why the other rows are not among them."""
    used = effects[effects["included"]].assign(
        input=lambda f: _text(f["input"]), conversion=lambda f: _text(f["conversion"]))
    if settings.measure == "ZCOR":
        plain = used["input"] == "r+n"
        names = {"ri": "r", "ni": "n"}
    elif settings.measure in ESCALC_GROUPS and not (settings.measure == "SMD" and settings.vtype == "RM5"):
        plain = (used["input"] == "summary") & (used["conversion"] == "")
        names = {"n1i": "n_cases", "m1i": "mean_cases", "sd1i": "sd_cases",
                 "n2i": "n_controls", "m2i": "mean_controls", "sd2i": "sd_controls"}  # fmt: skip
    else:
        why = ("RevMan 5's approximate Hedges' g and its variance (preset revman) are not one of escalc's SMD "
               "variants" if settings.vtype == "RM5" else f"measure {settings.measure} is given as yi")  # fmt: skip
        return pd.DataFrame(), f"{why}: every row enters with effects.csv's yi and vi."
    sheet = rows.set_index("line")
    lines = used.loc[plain, "line"].to_numpy()
    if settings.measure == "MD" and "unit" in sheet:  # rows converted to the analysis's unit are not plain
        from metarepro.stats.conversions import normalize_unit

        target = normalize_unit(str(unit or ""))
        units = [normalize_unit(str(sheet.loc[line, "unit"])) if not _missing(sheet.loc[line, "unit"]) else ""
                 for line in lines]  # fmt: skip
        lines = np.array([line for line, unit in zip(lines, units, strict=True) if unit in ("", target)])
    table = pd.DataFrame({"line": lines.astype(int)})
    for ours, theirs in names.items():
        table[ours] = sheet.loc[lines, theirs].to_numpy(dtype=float) if len(lines) else []
    other = used[~used["line"].isin(lines)]
    if not len(other):
        return table, ""
    forms = (other["conversion"].where(other["conversion"] != "", other["input"])
             .replace({"summary": "summary data in another unit"}).value_counts())  # fmt: skip
    forms = forms.rename(index=lambda form: GIVEN.get(form, form))
    listed = "; ".join(f"{form} ({count})" for form, count in forms.items())
    return table, (f"{len(other)} row(s) enter with effects.csv's yi and vi, as metarepro computed them from what "
                   f"the sheet gives (escalc here takes reported group means and SDs): {listed}.")  # fmt: skip


def reads_effects(sens: pd.DataFrame, settings: Settings, max_rows: int | None = None) -> bool:
    """Whether metafor.R reads its per-row values from effects.csv's extra columns (:func:`script_columns`) rather
    than holding them: above ``max_rows`` (default ``SCRIPT_INLINE_MAX_ROWS``) sensitivity rows, which are then
    effects.csv's included rows (no dependence model)."""
    limit = SCRIPT_INLINE_MAX_ROWS if max_rows is None else max_rows
    return settings.dependence is None and len(sens) > limit


def _values_used(values: pd.DataFrame | None, sens: pd.DataFrame, analysis: dict) -> bool:
    """Whether the script reads the sheet's values of the sensitivity steps (``values``)."""
    diagnostics = 2 <= len(sens) <= REFIT_MAX_K
    columns = values.columns if values is not None else ()
    return bool(len(columns) and diagnostics or analysis.get("subgroups") or analysis.get("moderators"))


def script_columns(config: dict, effects: pd.DataFrame, rows: pd.DataFrame, sens: pd.DataFrame,
                   values: pd.DataFrame | None, settings: Settings, unit: str | None = None,
                   max_rows: int | None = None) -> pd.DataFrame | None:  # fmt: skip
    """The columns effects.csv carries for metafor.R above the size limit (:func:`reads_effects`), one value per row
    of ``effects`` (arguments as for :func:`metafor_script`): escalc's group data on the rows escalc recomputes
    (``n1i``, ``m1i``, ... or ``ri``, ``ni``; empty elsewhere), and ``values``' columns (``subgroup_<column>``,
    ``mod_<moderator>``, ``order_key``) on the included rows. None when the script holds these values itself."""
    if not reads_effects(sens, settings, max_rows):
        return None
    out = pd.DataFrame(index=effects.index)
    groups, _ = _group_rows(effects, rows, settings, unit)
    at = pd.Index(effects["line"]).get_indexer(groups["line"]) if len(groups) else []
    for column in groups.columns.drop("line") if len(groups) else ():
        out[column] = np.full(len(effects), np.nan)
        out.iloc[at, out.columns.get_loc(column)] = groups[column].to_numpy()
    if _values_used(values, sens, config["analysis"]):
        included = effects["included"].to_numpy(dtype=bool)  # the sensitivity rows, in order
        for column in values.columns:
            given = values[column].to_numpy()
            text = column in values.attrs.get("levels", {})
            out[column] = np.full(len(effects), None if text else np.nan, dtype=object if text else float)
            out.iloc[np.flatnonzero(included), out.columns.get_loc(column)] = given
    return out


def metafor_script(name: str, config: dict, effects: pd.DataFrame, rows: pd.DataFrame, sens: pd.DataFrame,
                   bias: dict, values: pd.DataFrame | None = None, folder: str | None = None,
                   unit: str | None = None, settings: Settings | None = None,
                   max_rows: int | None = None) -> str:  # fmt: skip
    """The R code that reproduces analysis ``name``'s numbers with metafor.

    ``config``: the analysis's ``analysis`` entry and the config's ``defaults`` (as the analysis job gets them);
    ``effects``: its effects table (every selected row, ``included`` marking the pooled ones); ``rows``: the pooled
    rows with the sheet's columns (for the group data escalc reads); ``sens``: the rows the sensitivity steps used
    (the pooled rows, or one aggregated row per cluster for ``dependence``); ``bias``: its bias.json record (which
    small-study tests ran); ``values``: the sheet's values the sensitivity steps read, one row per ``sens`` row
    (:func:`metarepro.jobs.sensitivity.script_values`: ``subgroup_<column>``, ``mod_<moderator>``, ``order_key``;
    ``values.attrs["levels"]`` the factor levels of its text columns; None: none); ``folder``: the results folder,
    for a script that is ``source()``d rather than run with Rscript (default ``results/<name>``); ``unit``: an MD
    analysis's unit (pooled.json's ``unit``); ``settings``: the analysis's Settings (built from ``config`` if not
    given). ``max_rows``: the size above which the per-row values are read from effects.csv's extra columns
    (default ``SCRIPT_INLINE_MAX_ROWS``; see :func:`script_columns`).
    """
    analysis = config["analysis"]
    settings = settings or Settings.from_config(analysis, config.get("defaults"))  # the job passes its own
    from_effects = reads_effects(sens, settings, max_rows)
    dep = settings.dependence
    folder = folder or f"results/{name}"
    s = _Script()
    test = settings.test
    common = f'method = "{settings.method}", test = "{test}", level = {settings.level:g}, control = CTRL'

    s.comment(f"metafor.R: the R metafor code behind analysis {name}")
    s.comment(f'"{analysis.get("title", name)}"')
    s.comment("")
    s.comment("Reproduces the numbers of pooled.json, bias.json and the tables beside this file from effects.csv (the")
    s.comment("analysis's own output), with the same rows in the same order and the same settings:")
    s.comment(f"  measure {settings.measure}, method {settings.method}, test {test}, level {settings.level:g}%"
              + (f", vtype {settings.vtype}" if settings.measure == "SMD" else "")
              + (f", preset {settings.preset}" if settings.preset != "metafor" else ""))  # fmt: skip
    s.comment("Run it from the directory the workflow ran in:")
    s.comment(f"  Rscript {folder}/{SCRIPT_NAME} [out.json]")
    s.comment(f"It prints each result and writes its numbers to out.json (default: {CHECK_NAME} beside this file).")
    s.comment("Needs R with metafor (>= 3.8)" + ("and clubSandwich" if dep and dep.robust == "CR2" else "") + ".")
    s.comment("Convergence: tighter than metafor's defaults (threshold 1e-5, tol ~1.2e-4), as metarepro's fits.")
    s.line("")
    s.line("suppressPackageStartupMessages(library(metafor))")
    s.line("script <- sub(\"^--file=\", \"\", grep(\"^--file=\", commandArgs(FALSE), value = TRUE))")
    s.line(f"here <- if (length(script) == 1) dirname(script) else {r_string(folder)}  # source()d: as written")
    s.line("out_file <- if (length(commandArgs(TRUE))) commandArgs(TRUE)[1] else file.path(here, "
           f"{r_string(CHECK_NAME)})")  # fmt: skip
    s.line(f"CTRL <- {RMA_CONTROL}")
    s.line(_JSON_R.rstrip())
    text_columns = ["study_id", "study", "included", "input", "conversion", "flags", "checks", "reason",
                    *(dep.columns if dep else ())]  # fmt: skip
    if from_effects and values is not None and _values_used(values, sens, analysis):
        text_columns += list(values.attrs.get("levels", {}))  # the text values beside effects.csv's columns
    s.line("")
    s.comment("The analysis's rows: effects.csv lists every selected row; 'included' marks the pooled ones, in order.")
    s.comment("Only empty cells are missing (a study called NA stays NA); a text cell that a spreadsheet would run as")
    s.comment("a formula was written after a ' (metarepro's write_table), which is removed here.")
    s.line("effects <- read.csv(file.path(here, \"effects.csv\"), check.names = FALSE, na.strings = \"\",\n"
           "                    colClasses = c("
           + ", ".join(f"{r_string(c)} = \"character\"" for c in dict.fromkeys(text_columns)) + "))")  # fmt: skip
    s.line("for (column in names(effects)[sapply(effects, is.character)])")
    s.line("  effects[[column]] <- sub(\"^'('*[-=+@\\\\t\\\\r])\", \"\\\\1\", effects[[column]])")
    s.line('dat <- effects[effects$included == "True", ]')
    s.line(f"stopifnot(nrow(dat) == {int(effects['included'].sum())})")
    s.line("out <- list(analysis = " + r_string(name) + ", R_version = R.version.string, "
           "metafor_version = as.character(packageVersion(\"metafor\")))")  # fmt: skip

    tables = None
    if settings.binary:  # counts: escalc from the 2x2 tables or proportions, the fit metafor's function names
        _counts_escalc_block(s, effects, settings)
    else:
        _escalc_block(s, effects, rows, settings, unit, from_effects)
    s.line("")
    if settings.binary and settings.fit != "rma":
        _counts_pooled_block(s, settings, effects)
        sens_name, sens_fit = "dat", "res"
        if settings.fit in ("rma.mh", "rma.peto"):  # inverse-variance steps use the rows with a yi of their own
            tables, sens_name, sens_fit = sens.attrs.get("tables", sens), "est", "res_iv"
            s.comment("Influence diagnostics and small-study tests (as metarepro): an equal-effects inverse-variance "
                      "model of the rows with a yi of their own")
            s.line('est <- dat[!is.na(dat$yi), ]')
            s.line(f'res_iv <- rma(yi, vi, data = est, method = "EE", level = {settings.level:g})')
    elif dep is None:
        _pooled_block(s, settings, common)
        sens_name, sens_fit = "dat", "res"
    else:
        _dependence_block(s, settings, common)
        sens_name, sens_fit = "sens", "res_sens"

    diagnostics = 2 <= len(sens) <= REFIT_MAX_K
    extra = values if values is not None else pd.DataFrame(index=range(len(sens)))
    levels = extra.attrs.get("levels", {})
    if _values_used(values, sens, analysis):
        s.line("")
        s.comment("Columns of the sheet the sensitivity steps read, one value per row above (subgroups as text, "
                  "moderators as")
        s.comment("numbers or text, order_key = the cumulative order's sort key: 2001a after 2001, NA last).")
        if from_effects:
            limit = SCRIPT_INLINE_MAX_ROWS if max_rows is None else max_rows
            s.comment(f"For these {len(sens):,} rows (more than {limit:,}) they are effects.csv's columns "
                      + ", ".join(extra.columns) + ", read above.")  # fmt: skip
        else:
            key = "line" if dep is None else dep.cluster
            keys = sens["line"] if dep is None else sens[dep.cluster].astype(str)
            s.line(f"stopifnot(identical(as.character({sens_name}${r_name(key)}), "
                   f"{r_vector([str(k) for k in keys])}))")  # fmt: skip
        for column in extra.columns:
            if not from_effects:
                s.line(f"{sens_name}${column} <- {r_vector(extra[column].tolist())}")
            if column in levels:
                s.line(f"{sens_name}${column} <- factor({sens_name}${column}, levels = {r_vector(levels[column])})")
    if diagnostics and tables is not None:
        _tables_diagnostics_block(s, sens_name, sens_fit, tables, analysis_option(analysis, "cumulative_order"))
    elif diagnostics:
        _diagnostics_block(s, sens_name, sens_fit, ordered="order_key" in extra)
    else:
        s.comment(f"Leave-one-out, influence and cumulative analyses: not run (k = {len(sens)}; metarepro runs them "
                  f"for 2 <= k <= {REFIT_MAX_K:,}).")  # fmt: skip
    _bias_block(s, sens_name, sens_fit, bias, len(sens))
    if analysis.get("subgroups"):
        _subgroups_block(s, sens_name, analysis["subgroups"], common)
    if analysis.get("moderators"):
        _metareg_block(s, sens_name, analysis, levels, common)
    s.line("")
    s.line("writeLines(json(out), out_file)")
    s.line('cat("\\nwrote", out_file, "\\n")')
    return s.text()


class _Script:
    def __init__(self):
        self.lines: list[str] = []

    def line(self, text: str) -> None:
        self.lines.append(text)

    def comment(self, text: str) -> None:
        import textwrap

        self.lines += textwrap.wrap(text, 116, initial_indent="# ", subsequent_indent="# ", break_on_hyphens=False,
                                    break_long_words=False) or ["#"]

    def heading(self, text: str) -> None:
        self.lines += ["", f"# ---- {text} " + "-" * max(0, 110 - len(text))]

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _escalc_block(s: _Script, effects, rows, settings: Settings, unit, from_effects: bool = False) -> None:
    groups, note = _group_rows(effects, rows, settings, unit)
    s.heading("effect sizes")
    if len(groups):
        measure = ESCALC_GROUPS.get(settings.measure, settings.measure)
        s.comment(f"escalc recomputes yi and vi of the {len(groups)} row(s) that report the group data below, as the "
                  "sheet gives them")
        s.comment("(by line of the sheet), and the largest difference from effects.csv is printed and written.")
        if note:
            s.comment(note)
        if from_effects:  # above the size limit, effects.csv's columns (script_columns), empty on the other rows
            columns = ", ".join(r_string(c) for c in groups.columns)
            s.line(f"groups <- dat[!is.na(dat${groups.columns[1]}), c({columns})]")
        else:
            s.line("groups <- data.frame(")
            s.line(",\n".join(f"  {c} = {r_vector(groups[c].tolist())}" for c in groups.columns) + ")")
        args = ", ".join(f"{c} = {c}" for c in groups.columns if c != "line")
        vtype = f', vtype = "{settings.vtype}"' if settings.measure == "SMD" else ""
        s.line(f'es <- escalc(measure = "{measure}", {args}{vtype}, data = groups)')
        s.line("table_rows <- match(groups$line, dat$line)")
        s.line("out$escalc <- list(rows = nrow(groups), max_abs_diff_yi = max(abs(es$yi - dat$yi[table_rows])),")
        s.line("                   max_abs_diff_vi = max(abs(es$vi - dat$vi[table_rows])))")
        s.line('cat(sprintf("escalc: %d rows from group data; largest difference from effects.csv: %s\\n",')
        s.line('            nrow(groups), sprintf("yi %.3g, vi %.3g", out$escalc$max_abs_diff_yi, '
               "out$escalc$max_abs_diff_vi)))")
    else:
        s.comment(f"No escalc: {note}")
        s.line(f"cat({r_string('escalc: not used (' + note.rstrip('.') + ')')}, \"\\n\")")
    if len(groups) and note:
        s.line(f"cat({r_string('escalc: ' + note)}, \"\\n\")")


def _pooled_block(s: _Script, settings: Settings, common: str) -> None:
    s.heading("the pooled fit (pooled.json)")
    s.line(f"res <- rma(yi, vi, data = dat, {common})")
    s.line("print(res)")
    s.line("pred <- predict(res)  # the prediction interval (its distribution follows the test)")
    s.line("print(pred)")
    s.line("out$pooled <- c(list(k = res$k, estimate = c(res$beta), se = res$se, zval = res$zval, pval = res$pval,")
    s.line("  ci_low = res$ci.lb, ci_high = res$ci.ub, tau2 = res$tau2, tau2_se = if (is.null(res$se.tau2)) NA else "
           "res$se.tau2,")
    s.line("  i2 = res$I2, h2 = res$H2, q = res$QE, q_df = res$k - res$p, q_p = res$QEp, pi_low = pred$pi.lb, "
           "pi_high = pred$pi.ub,")
    s.line("  weight = I(weights(res))))")
    if settings.method != "EE":
        s.comment("Q-profile CIs of tau^2 and I^2 (none for k = 1). metafor's confint searches tau^2 only up to "
                  "max(100, 10 tau^2)")
        s.comment("and then reports that limit (\"> 100\"); metarepro searches until it finds the bound, up to "
                  "1e12 x (max vi + the")
        s.comment("variance of yi): the same limit here.")
        s.line("if (res$k > 1) {")
        s.line("  cap <- 1e12 * (max(dat$vi) + mean((dat$yi - mean(dat$yi))^2))")
        s.line(f"  ci <- confint(res, control = {CONFINT_CONTROL[:-1]}, tau2.max = cap))")
        s.line("  print(ci)")
        s.line('  out$pooled[c("tau2_ci_low", "tau2_ci_high")] <- as.list(ci$random["tau^2", c("ci.lb", "ci.ub")])')
        s.line('  out$pooled[c("i2_ci_low", "i2_ci_high")] <- as.list(ci$random["I^2(%)", c("ci.lb", "ci.ub")])')
        s.line("}")
    s.comment("The same model without the rows a quality rule flagged (pooled.json's without_flagged)")
    s.line('flagged <- !is.na(dat$flags) & trimws(dat$flags) != ""')
    s.line("if (any(flagged) && !all(flagged)) {")
    s.line(f"  res_nf <- rma(yi, vi, data = dat, subset = !flagged, {common})")
    s.line('  cat("\\nWithout the", sum(flagged), "flagged rows:\\n"); print(res_nf)')
    s.line("  out$without_flagged <- list(k = res_nf$k, estimate = c(res_nf$beta), se = res_nf$se, "
           "ci_low = res_nf$ci.lb,")
    s.line("                              ci_high = res_nf$ci.ub, pval = res_nf$pval, tau2 = res_nf$tau2, "
           "i2 = res_nf$I2, q = res_nf$QE)")
    s.line("}")


def _dependence_block(s: _Script, settings: Settings, common: str) -> None:
    dep = settings.dependence
    cluster = r_name(dep.cluster)
    s.heading(f"the {dep.model} model (pooled.json, its 'dependence' record)")
    s.line("dat$effect <- seq_len(nrow(dat))  # each row its own innermost level")
    s.line("dat <- escalc(measure = \"GEN\", yi = yi, vi = vi, data = dat)  # an escalc object, for aggregate()")
    if dep.rho is None and not dep.shared_controls:
        s.comment("Sampling errors independent (no rho, no shared_controls): V is diag(vi)")
        s.line("V <- diag(dat$vi)")
    else:
        args = [f"cluster = {cluster}"]
        if dep.shared_controls:
            s.comment("Case groups compared with one control group: the covariance of the shared controls (Gleser "
                      "& Olkin 2009)")
            grp1 = r_name(dep.case_group) if dep.case_group else "effect"
            args += [f"grp1 = {grp1}", 'grp2 = rep("controls", nrow(dat))', "w1 = n_cases", "w2 = n_controls"]
            if dep.model == "multivariate":
                args += [f"obs = {r_name(dep.inner)}", f"rho = {r_value(float(dep.rho or 0.0))}"]
        else:
            args += ["obs = effect", f"rho = {r_value(float(dep.rho))}"]  # any two rows of a cluster correlate rho
        s.line(f"V <- vcalc(vi, {', '.join(args)}, data = dat)")
    mv_test = "t" if settings.test == "knha" else settings.test
    if dep.model == "aggregate":
        s.line(f"agg <- aggregate(dat, cluster = {cluster}, V = V)")
        s.line(f"agg <- agg[match(unique(dat${cluster}), agg${cluster}), ]  # clusters in order of first appearance")
        s.line(f"res <- rma(yi, vi, data = agg, {common})")
        s.line("print(res)")
        s.line("pred <- predict(res)")
        s.line("out$pooled <- list(k = res$k, estimate = c(res$beta), se = res$se, zval = res$zval, pval = res$pval,")
        s.line("  ci_low = res$ci.lb, ci_high = res$ci.ub, tau2 = res$tau2, i2 = res$I2, q = res$QE, q_p = res$QEp,")
        s.line("  pi_low = pred$pi.lb, pi_high = pred$pi.ub)")
        s.line("out$aggregated <- list(yi = I(c(agg$yi)), vi = I(c(agg$vi)))")
        fit = "res"
        if dep.robust:
            cluster_values = f"agg${cluster}"
            if dep.robust == "CR1":
                s.line(f'res_z <- rma(yi, vi, data = agg, method = "{settings.method}", test = "z", '
                       f"level = {settings.level:g}, control = CTRL)")  # fmt: skip
                fit = "res_z"
    else:
        if settings.test == "knha":
            s.comment(f"metafor's rma.mv has no Knapp-Hartung adjustment: test knha is its test = \"t\" with "
                      f"dfs = \"{dep.dfs}\"")  # fmt: skip
        dfs = f', dfs = "{dep.dfs}"' if mv_test == "t" else ""
        mv_common = (f'method = "{settings.method}", test = "{mv_test}"{dfs}, level = {settings.level:g}, '
                     "control = MV_CTRL")  # fmt: skip
        s.comment("nlminb finds the maximum from log-likelihood values alone, so its variance components agree with "
                  "metarepro's (which solves the score equation) to about 1e-6 relative, not to the last digit; a "
                  "tighter rel.tol than nlminb's 1e-10 makes it report non-convergence on these data.")
        s.line(f"MV_CTRL <- {MV_CONTROL}")
        if dep.model == "multilevel":
            random = "~ 1 | " + "/".join([*(r_name(c) for c in dep.levels), "effect"])
            s.line(f"res <- rma.mv(yi, V, random = {random}, data = dat, {mv_common})")
            s.line("print(res)")
            s.line("pred <- predict(res)")
            j = 1
        else:
            inner = r_name(dep.inner)
            primary = r_string(dep.primary) if dep.primary else "NULL"
            s.comment(f"One coefficient per {dep.inner} (levels in metarepro's order: bytes); the primary one is "
                      + (f"{dep.primary}" if dep.primary else "the level with the most effects (ties: the first)"))
            s.line("fit_mv <- function(d, V) {")
            s.line(f"  inner_levels <- sort(unique(as.character(d${inner})), method = \"radix\")")
            s.line(f"  d$inner_factor <- factor(d${inner}, levels = inner_levels)")
            s.line("  mods <- if (length(inner_levels) > 1) ~ 0 + inner_factor else ~ 1")
            s.line(f"  res <- rma.mv(yi, V, mods = mods, random = ~ inner_factor | {cluster}, "
                   f'struct = "{dep.struct}", data = d, {mv_common})')  # fmt: skip
            s.line(f"  primary <- {primary}")
            s.line("  if (is.null(primary)) primary <- inner_levels[which.max(table(d$inner_factor))]")
            s.line("  list(res = res, j = match(primary, inner_levels))")
            s.line("}")
            s.line("fit <- fit_mv(dat, V); res <- fit$res; j <- fit$j")
            s.line("print(res)")
            s.line("x <- if (res$p > 1) diag(res$p)[j, ] else NULL")
            s.line("pred <- if (length(res$tau2) > 1) predict(res, newmods = x, tau2.levels = j) else "
                   "predict(res, newmods = x)")
            j = "j"
        s.line("print(pred)")
        s.comment("I^2 as in Viechtbauer's FAQ (\"I^2 for multilevel and multivariate models\")")
        s.line("W <- solve(res$V); X <- model.matrix(res)")
        s.line("P <- W - W %*% X %*% solve(t(X) %*% W %*% X) %*% t(X) %*% W")
        s.line("typical <- (res$k - res$p) / sum(diag(P))")
        if dep.model == "multilevel":
            s.line("tau2 <- sum(res$sigma2); i2 <- 100 * tau2 / (tau2 + typical)")
        else:
            s.line("tau2 <- if (length(res$tau2) > 1) res$tau2[j] else res$tau2[1]; i2 <- 100 * tau2 / "
                   "(tau2 + typical)")
        s.line(f"out$pooled <- list(k = res$k, estimate = res$beta[{j}], se = res$se[{j}], zval = res$zval[{j}], "
               f"pval = res$pval[{j}],")
        s.line(f"  ci_low = res$ci.lb[{j}], ci_high = res$ci.ub[{j}], tau2 = tau2, i2 = i2, q = res$QE, q_p = res$QEp,")
        s.line("  pi_low = pred$pi.lb, pi_high = pred$pi.ub)")
        s.line("out$dependence <- list(QE = res$QE, logLik = as.numeric(logLik(res)), AIC = AIC(res), BIC = BIC(res),")
        s.line("  sigma2 = I(if (res$withS) res$sigma2 else numeric(0)), tau2 = I(if (res$withG) res$tau2 else "
               "numeric(0)))")
        fit, cluster_values = "res", f"dat${cluster}"
    if dep.robust:
        sandwich = ", clubSandwich = TRUE" if dep.robust == "CR2" else ""
        s.comment(f"Cluster-robust inference ({dep.robust}) with {dep.cluster} as clusters")
        s.line(f"rob <- robust({fit}, cluster = {cluster_values}{sandwich})")
        s.line("print(rob)")
        jj = "j" if dep.model == "multivariate" else "1"
        s.line(f"out$robust <- list(estimate = rob$beta[{jj}], se = rob$se[{jj}], df = rep_len(rob$ddf, rob$p)[{jj}], "
               f"ci_low = rob$ci.lb[{jj}], ci_high = rob$ci.ub[{jj}],")
        s.line(f"                   tval = rob$zval[{jj}], pval = rob$pval[{jj}])")
    s.comment("The same model without the rows a quality rule flagged (pooled.json's without_flagged)")
    s.line('flagged <- !is.na(dat$flags) & trimws(dat$flags) != ""')
    s.line("if (any(flagged) && !all(flagged)) {")
    if dep.model == "aggregate":
        s.line(f"  agg_nf <- aggregate(dat[!flagged, ], cluster = {cluster}, V = V[!flagged, !flagged])")
        s.line(f"  agg_nf <- agg_nf[match(unique(dat${cluster}[!flagged]), agg_nf${cluster}), ]")
        s.line(f"  res_nf <- rma(yi, vi, data = agg_nf, {common})")
        s.line("  j_nf <- 1")
    elif dep.model == "multivariate":
        s.line("  fit_nf <- fit_mv(dat[!flagged, ], V[!flagged, !flagged]); res_nf <- fit_nf$res; j_nf <- fit_nf$j")
    else:
        s.line("  res_nf <- update(res, subset = !flagged); j_nf <- 1")
    s.line("  out$without_flagged <- list(k = res_nf$k, estimate = res_nf$beta[j_nf], se = res_nf$se[j_nf], "
           "ci_low = res_nf$ci.lb[j_nf],")
    s.line("                              ci_high = res_nf$ci.ub[j_nf], pval = res_nf$pval[j_nf])")
    s.line("}")
    s.line("")
    s.comment("Leave-one-out, influence, cumulative, small-study tests, subgroups and meta-regression are univariate: "
              "metarepro")
    s.comment(f"runs them on the rows aggregated to one per {dep.cluster} with the same V (metafor aggregate.escalc), "
              "as here.")
    if dep.model == "aggregate":
        s.line("sens <- agg")
    else:
        s.line(f"sens <- aggregate(dat, cluster = {cluster}, V = V)")
        s.line(f"sens <- sens[match(unique(dat${cluster}), sens${cluster}), ]  # clusters in order of first "
               "appearance")
    s.line(f"res_sens <- rma(yi, vi, data = sens, {common})")


# ---- binary outcomes: escalc from counts, rma.mh / rma.peto / rma.glmm, MH/Peto leave-one-out and cumulative ------
COUNT_ARGS = {"tables": {"ai": "events_cases", "n1i": "n_cases", "ci": "events_controls", "n2i": "n_controls"},
              "proportions": {"xi": "events", "ni": "n"}}  # fmt: skip


def _count_args(settings: Settings) -> dict:
    return COUNT_ARGS["tables" if settings.measure in ("OR", "RR", "RD", "PETO") else "proportions"]


def _r_pair(value) -> str:
    return r_vector(list(value)) if isinstance(value, tuple | list) else r_value(value)


def _zero_args(settings: Settings, first_only: bool = False) -> str:
    """metafor's add, to (and drop00 for tables) as the analysis used them (Settings.zero_cells)."""
    zero = settings.zero_cells()
    if first_only:
        zero = {k: v[0] if isinstance(v, tuple) else v for k, v in zero.items()}
    if settings.measure not in ("OR", "RR", "RD", "PETO"):
        zero.pop("drop00")
    return ", ".join(f"{k} = {_r_pair(v)}" for k, v in zero.items())


def _counts_escalc_block(s: _Script, effects, settings: Settings) -> None:
    s.heading("effect sizes from the counts")
    measure = "PETO" if settings.fit == "rma.peto" else settings.measure
    args = _count_args(settings)
    vtype = f', vtype = "{settings.vtype}"' if settings.measure in ("RD", "PR", "PLN", "PLO") else ""
    s.comment(f"escalc recomputes yi and vi of every pooled row from its counts ({', '.join(args)} = metarepro's "
              f"{', '.join(args.values())}), with the zero-cell handling the analysis used; the largest difference "
              "from effects.csv is printed and written.")
    s.line(f'es <- escalc(measure = "{measure}", '
           + ", ".join(f"{ours} = {r_name(theirs)}" for ours, theirs in args.items())
           + f", {_zero_args(settings, first_only=True)}{vtype}, data = dat)")  # fmt: skip
    s.line("stopifnot(identical(is.na(es$yi), is.na(dat$yi)))")
    s.line("out$escalc <- list(rows = sum(!is.na(es$yi)), max_abs_diff_yi = max(abs(es$yi - dat$yi), na.rm = TRUE),")
    s.line("                   max_abs_diff_vi = max(abs(es$vi - dat$vi), na.rm = TRUE))")
    s.line('cat(sprintf("escalc: %d rows from counts; largest difference from effects.csv: yi %.3g, vi %.3g\\n",')
    s.line("            out$escalc$rows, out$escalc$max_abs_diff_yi, out$escalc$max_abs_diff_vi))")


def _counts_pooled_block(s: _Script, settings: Settings, effects) -> None:
    fit = settings.fit
    s.heading(f"the pooled fit (pooled.json): metafor's {fit}")
    counts = ", ".join(f"{ours} = {r_name(theirs)}" for ours, theirs in _count_args(settings).items())
    level = f"level = {settings.level:g}"
    if fit == "rma.mh":
        call = f'rma.mh({counts}, data = dat, measure = "{settings.measure}", {_zero_args(settings)}, {level})'
    elif fit == "rma.peto":
        call = f"rma.peto({counts}, data = dat, {_zero_args(settings)}, {level})"
    else:
        model = f', model = "{settings.model}"' if settings.measure == "OR" else ""
        test = "t" if settings.test == "knha" else "z"
        call = (f'rma.glmm({counts}, data = dat, measure = "{settings.measure}"{model}, method = "{settings.method}", '
                f'test = "{test}", {_zero_args(settings)}, {level})')  # fmt: skip
    s.line(f"res <- {call}")
    s.line("print(res)")
    glmm = fit == "rma.glmm"
    s.line("out$pooled <- list(k = res$k, estimate = c(res$beta), se = c(res$se), zval = c(res$zval), "
           "pval = c(res$pval),")
    s.line("  ci_low = c(res$ci.lb), ci_high = c(res$ci.ub), i2 = res$I2, h2 = res$H2, "
           + ("tau2 = res$tau2, q = res$QE.Wld, q_p = res$QEp.Wld)" if glmm else "q = res$QE, q_p = res$QEp,")
           )  # fmt: skip
    if not glmm:
        s.line("  weight = I(weights(res)))")
    back = {"OR": "exp", "RR": "exp", "PETO": "exp", "PLO": "transf.ilogit"}.get(settings.measure)
    if back:
        suffix = "prop" if settings.measure == "PLO" else "ratio"
        s.comment(f"on the reader's scale ({back}), as pooled.json's *_{suffix}")
        s.line(f'out$pooled[paste0(c("estimate", "ci_low", "ci_high"), "_{suffix}")] <- '
               f"as.list({back}(c(c(res$beta), res$ci.lb, res$ci.ub)))")
    if not glmm:
        s.comment("The same fit without the rows a quality rule flagged (pooled.json's without_flagged)")
        s.line('flagged <- !is.na(dat$flags) & trimws(dat$flags) != ""')
        s.line("if (any(flagged) && !all(flagged)) {")
        s.line(f"  res_nf <- {call[:-1]}, subset = !flagged)")
        s.line("  out$without_flagged <- list(k = res_nf$k, estimate = c(res_nf$beta), se = res_nf$se, "
               "ci_low = res_nf$ci.lb,")
        s.line("                              ci_high = res_nf$ci.ub, pval = res_nf$pval, i2 = res_nf$I2, "
               "q = res_nf$QE)")
        s.line("}")


def _tables_diagnostics_block(s: _Script, data: str, fit_iv: str, tables, order_column: str) -> None:
    """metafor's leave1out.rma.mh / cumul.rma.mh (and rma.peto): MH or Peto refitted on every subset of all the
    pooled tables; influence on the inverse-variance model of the rows with a yi."""
    from metarepro.inputs.sheet import order_key

    s.heading("leave-one-out and cumulative (MH/Peto refits), influence (leave1out.csv, influence.csv, "
              "cumulative.csv)")
    s.line("l1o <- leave1out(res)")
    s.line("print(l1o)")
    s.line("out$leave1out <- fit_columns(l1o)")
    s.line(f"inf <- influence({fit_iv})")
    s.line("out$influence <- list(rstudent = I(inf$inf$rstudent), dffits = I(inf$inf$dffits), "
           "cook_d = I(inf$inf$cook.d),")
    s.line("  cov_r = I(inf$inf$cov.r), tau2_del = I(inf$inf$tau2.del), qe_del = I(inf$inf$QE.del), "
           "hat = I(inf$inf$hat),")
    s.line("  weight = I(inf$inf$weight), dfbetas = I(inf$dfbs$intrcpt), influential = I(as.logical(inf$is.infl)))")
    key = order_key(tables[order_column])[0] if order_column in tables else np.arange(len(tables), dtype=float)
    s.comment(f"cumulative order: {order_column} as a sort key (2001a after 2001), ties in the given order, NA last")
    s.line(f"dat$order_key <- {r_vector(list(key))}")
    s.line("cum <- cumul(res, order = dat$order_key)")
    s.line("print(cum)")
    s.line("out$cumulative <- fit_columns(cum)")


def _diagnostics_block(s: _Script, data: str, fit: str, ordered: bool) -> None:
    s.heading("leave-one-out, influence, cumulative (leave1out.csv, influence.csv, cumulative.csv)")
    s.line(f"l1o <- leave1out({fit})")
    s.line("print(l1o)")
    s.line("out$leave1out <- fit_columns(l1o)")
    s.line(f"inf <- influence({fit})")
    s.line("print(inf)")
    s.line("out$influence <- list(rstudent = I(inf$inf$rstudent), dffits = I(inf$inf$dffits), "
           "cook_d = I(inf$inf$cook.d),")
    s.line("  cov_r = I(inf$inf$cov.r), tau2_del = I(inf$inf$tau2.del), qe_del = I(inf$inf$QE.del), "
           "hat = I(inf$inf$hat),")
    s.line("  weight = I(inf$inf$weight), dfbetas = I(inf$dfbs$intrcpt), influential = I(as.logical(inf$is.infl)))")
    if ordered:
        s.comment("cumulative order: order_key ascending, ties in the given order, rows without a key last")
    s.line(f"cum <- cumul({fit}{f', order = {data}$order_key' if ordered else ''})")
    s.line("print(cum)")
    s.line("out$cumulative <- fit_columns(cum)")


def _bias_block(s: _Script, data: str, fit: str, bias: dict, k: int) -> None:
    s.heading("small-study effects and publication bias (bias.json)")
    if k < 3:
        s.comment(f"Not run: k = {k} (metarepro runs the small-study tests for k >= 3).")
        return
    if bias.get("skipped"):
        s.comment(f"metarepro skipped (so does this script): {bias['skipped']}")
    s.line("out$bias <- list()")
    if "egger_z" in bias:
        s.comment("Egger's test, mixed-effects version (metafor's default: the model's method and test, "
                  "predictor sei)")
        s.line(f"eg <- regtest({fit})")
        s.line("print(eg)")
        s.line("out$bias[c(\"egger_z\", \"egger_df\", \"egger_p\", \"egger_limit_estimate\", \"egger_limit_ci_low\", "
               "\"egger_limit_ci_high\")] <-")
        s.line("  list(eg$zval, if (is.null(eg$dfs)) NA else eg$dfs, eg$pval, c(eg$est), eg$ci.lb, eg$ci.ub)")
    if "egger_t" in bias:
        s.comment("Egger's classic test (weighted least squares, t on k - 2 df)")
        s.line(f"eg_lm <- regtest({fit}, model = \"lm\")")
        s.line("print(eg_lm)")
        s.line("out$bias[c(\"egger_t\", \"egger_t_df\", \"egger_t_p\")] <- list(eg_lm$zval, eg_lm$dfs, eg_lm$pval)")
    if "begg_tau" in bias:
        exact = "" if k <= BEGG_EXACT_MAX_K else ", exact = FALSE"
        s.comment("Begg and Mazumdar's rank correlation test")
        s.line(f"rt <- ranktest({fit}{exact})")
        s.line("print(rt)")
        s.line("out$bias[c(\"begg_tau\", \"begg_p\")] <- list(unname(rt$tau), rt$pval)")
    for prefix, estimator in (("trimfill", "L0"), ("trimfill_r0", "R0")):
        if f"{prefix}_k0" not in bias:
            continue
        s.comment(f"Trim and fill ({estimator}); the refits use this model's control and test (metafor 3.8's own "
                  "default would refit with test \"z\")")
        var = f"tf_{estimator}"
        s.line(f"{var} <- trimfill({fit}, estimator = \"{estimator}\", control = CTRL, test = {fit}$test)")
        s.line(f"print({var})")
        s.line(f"out$bias[paste0(\"{prefix}_\", c(\"k0\", \"estimate\", \"ci_low\", \"ci_high\", \"tau2\"))] <- "
               f"list({var}$k0, c({var}$beta), {var}$ci.lb, {var}$ci.ub, {var}$tau2)")  # fmt: skip
        s.line(f"out$bias${prefix}_side <- {var}$side")
    for name in ("Rosenthal", "Orwin", "Rosenberg"):
        if f"fsn_{name.lower()}" in bias:
            s.line(f"out$bias$fsn_{name.lower()} <- fsn(yi, vi, data = {data}, type = \"{name}\")$fsnum")
    if "pet_estimate" in bias:
        s.comment("PET-PEESE: the limit estimates of regtest on sei (PET) and on vi (PEESE); PEESE when PET's "
                  "intercept has p < 0.05")
        s.line(f"pet <- regtest({fit}, predictor = \"sei\", ret.fit = TRUE)")
        s.line(f"peese <- regtest({fit}, predictor = \"vi\", ret.fit = TRUE)")
        s.line("chosen <- if (pet$fit$pval[1] < 0.05) peese else pet")
        s.line("out$bias[c(\"pet_estimate\", \"peese_estimate\", \"pet_peese_uses\", \"pet_peese_estimate\", "
               "\"pet_peese_ci_low\", \"pet_peese_ci_high\")] <-")
        s.line("  list(c(pet$est), c(peese$est), if (pet$fit$pval[1] < 0.05) \"PEESE\" else \"PET\", c(chosen$est), "
               "chosen$ci.lb, chosen$ci.ub)")


def _subgroups_block(s: _Script, data: str, columns, common: str) -> None:
    s.heading("subgroups (subgroups.csv)")
    s.comment("Per subgroup its own fit (a subgroup of one study is fitted with test z, as metafor switches); the")
    s.comment("moderator test with a common tau^2: rma(mods = ~ factor); and Q between separately fitted subgroups,")
    s.comment("sum w_g (est_g - pooled)^2 with w_g = 1/se_g^2 (R meta's test for random-effects subgroups, RevMan's):")
    s.comment("metafor has no function for it, so its formula is written out.")
    s.line("out$subgroups <- list()")
    s.line(f"for (column in {r_vector([f'subgroup_{c}' for c in columns])}) {{")
    s.line(f"  g <- {data}[[column]]")
    s.line("  fits <- lapply(levels(g), function(level) {")
    s.line("    subset <- !is.na(g) & g == level")
    s.line(f"    suppressWarnings(rma(yi, vi, data = {data}, subset = subset, {common}))")
    s.line("  })")
    s.line("  est <- sapply(fits, function(f) c(f$beta)); se <- sapply(fits, function(f) f$se)")
    s.line("  w <- 1 / se^2; pooled <- sum(w * est) / sum(w); q_between <- sum(w * (est - pooled)^2)")
    s.line("  keep <- !is.na(g)")
    s.line("  moderator <- if (nlevels(g) > 1 && sum(keep) > nlevels(g))")
    s.line(f"    rma(yi, vi, mods = ~ g, data = {data}, subset = keep, {common}) else NULL")
    s.line("  cat(\"\\nSubgroups of\", sub(\"^subgroup_\", \"\", column), \"\\n\")")
    s.line("  for (i in seq_along(fits)) { cat(levels(g)[i], \"\\n\"); print(fits[[i]]) }")
    s.line("  if (!is.null(moderator)) print(moderator)")
    s.line("  out$subgroups[[sub(\"^subgroup_\", \"\", column)]] <- list(subgroup = I(levels(g)),")
    s.line("    k = I(sapply(fits, function(f) f$k)), estimate = I(est), se = I(se),")
    s.line("    ci_low = I(sapply(fits, function(f) f$ci.lb)), ci_high = I(sapply(fits, function(f) f$ci.ub)),")
    s.line("    pval = I(sapply(fits, function(f) f$pval)), tau2 = I(sapply(fits, function(f) f$tau2)),")
    s.line("    i2 = I(sapply(fits, function(f) f$I2)), q = I(sapply(fits, function(f) f$QE)),")
    s.line("    q_p = I(sapply(fits, function(f) f$QEp)),")
    s.line("    test_moderator_QM = if (is.null(moderator)) NA else moderator$QM,")
    s.line("    test_moderator_p = if (is.null(moderator)) NA else moderator$QMp,")
    s.line("    test_between_Q = q_between, test_between_df = length(fits) - 1,")
    s.line("    test_between_p = if (length(fits) > 1) pchisq(q_between, length(fits) - 1, lower.tail = FALSE) "
           "else NA)")
    s.line("}")


def _metareg_block(s: _Script, data: str, analysis: dict, levels: dict, common: str) -> None:
    moderators = analysis["moderators"]
    permutations, seed = analysis_option(analysis, "permutations"), analysis_option(analysis, "seed")
    s.heading("meta-regression (metareg.csv)")
    s.comment("All moderators jointly; rows missing a moderator leave the model (metafor's na.omit). Text moderators "
              "are factors")
    s.comment("with metarepro's level order (the first is the reference).")
    formula = " + ".join(r_name(f"mod_{m}") for m in moderators)
    s.line(f"mr <- rma(yi, vi, mods = ~ {formula}, data = {data}, {common})")
    s.line("print(mr)")
    s.line("out$metareg <- list(estimate = I(c(mr$beta)), se = I(mr$se), zval = I(mr$zval), pval = I(mr$pval),")
    s.line("  ci_low = I(mr$ci.lb), ci_high = I(mr$ci.ub), k = mr$k, tau2 = mr$tau2, R2 = mr$R2, QM = mr$QM, "
           "QM_p = mr$QMp,")
    s.line("  QE = mr$QE, QE_p = mr$QEp, I2 = mr$I2)")
    if permutations:
        s.comment(f"Permutation test ({permutations} permutations, seed {seed} in metarepro). R's random permutations "
                  "are not numpy's:")
        s.comment("the p-values agree only where the test is exact (every distinct permutation: permutation_exact in "
                  "metareg.csv).")
        s.comment("permutest refits each permutation with the model's control and leaves a refit that stops with an "
                  "error out of its p. Under threshold = 1e-13 (an absolute change in tau^2) Fisher scoring can stall "
                  "below the rounding of its update (9 of 24 permutations of template.yaml's il6_drug_free; "
                  "tests/reference/generate_permutest_failed_refits_reference.R), so the permutations are refitted "
                  "with threshold 1e-10: R then fits every one, as metarepro does.")
        s.line(f"set.seed({seed})")
        s.line(f"pt <- permutest(update(mr, control = {PERMUTATION_CONTROL}), iter = {permutations}, progbar = FALSE, "
               "control = CTRL)")
        s.line("print(pt)")
        s.line("out$metareg$permutation_p <- I(pt$pval)")
        s.line("out$metareg$QM_permutation_p <- pt$QMp")
        s.line(f"out$metareg$permutation_exact <- pt$exact.iter <= {permutations}  # metafor enumerates every "
               "permutation then")
        s.comment("metafor leaves a permutation whose refit fails (e.g. REML not converging) out of the p-value; "
                  "metarepro fits every one")
        s.line("out$metareg$permutations_failed <- sum(is.na(pt$QM.perm))")
        s.line("if (out$metareg$permutations_failed > 0)")
        s.line("  cat(\"permutest:\", out$metareg$permutations_failed, \"permutation(s) could not be fitted and are "
               "left out of R's p-value\\n\")")
