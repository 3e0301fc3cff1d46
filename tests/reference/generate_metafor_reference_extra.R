# Generate golden reference values from R metafor for the Python meta-analysis engine:
# meta-regression, subgroups, permutation tests, case diagnostics and small-study / publication-bias methods.
#
# How to run (from the repository root):
#     Rscript tests/reference/generate_metafor_reference_extra.R
# (takes ~10 minutes because of the exact permutation tests; set METAFOR_REF_SKIP_PERMUTEST=1 to skip them
#  during development -- the "permutest" entries are then null).
#
# Requirements: R with metafor (reference values were produced with 3.8-1), metadat, jsonlite.
#
# Writes: tests/reference/metafor_reference_extra.json
#   {generator, R_version, metafor_version, metadat_version, generated, notes,
#    datasets: [{name, source, measure, input, moderators, escalc: {yi, vi}, fsn: {...},
#                analyses: [{method, test, fit, metareg, metareg_subgroup, subgroups, permutest,
#                            leave1out, influence, cumul, baujat, regtest_rma, regtest_lm, ranktest,
#                            trimfill_L0, trimfill_R0}, ...]}, ...],
#    permutest_small: [...]}
#
# All rma() fits use control = list(threshold = 1e-13, tol = 1e-13, maxiter = 10000); every function that refits
# (leave1out, influence, cumul, baujat, regtest, trimfill, permutest) reuses the model's method/test/control.
# Numbers are written with 17 significant digits ("%.17g"); NA/NaN/Inf -> null. Warnings/errors are stored
# in "warnings"/"error" next to the affected result.

suppressPackageStartupMessages({
  library(metafor)
  library(jsonlite)
})

OUT_FILE <- file.path("tests", "reference", "metafor_reference_extra.json")
RMA_CONTROL <- list(threshold = 1e-13, tol = 1e-13, maxiter = 10000)
SKIP_PERMUTEST <- nzchar(Sys.getenv("METAFOR_REF_SKIP_PERMUTEST"))
TESTS <- c("z", "knha")

# ----------------------------------------------------------------------------------------------
# JSON helpers: tests/reference/reference_json.R
# ----------------------------------------------------------------------------------------------

source(file.path("tests", "reference", "reference_json.R"))

# run an expression, collecting warnings and catching errors
capture <- function(expr) {
  warns <- character(0)
  value <- withCallingHandlers(
    tryCatch(expr, error = function(e) structure(list(msg = conditionMessage(e)), class = "captured_error")),
    warning = function(w) {
      warns <<- c(warns, conditionMessage(w))
      invokeRestart("muffleWarning")
    })
  list(value = value, warnings = warns, error = if (inherits(value, "captured_error")) value$msg else NULL)
}

# evaluate `expr` and turn it into a record via `extract(value)`; attach warnings/error
safely <- function(label, expr, extract) {
  r <- capture(expr)
  if (!is.null(r$error)) {
    message(sprintf("    [%s] ERROR: %s", label, r$error))
    return(list(error = r$error, warnings = arr(r$warnings)))
  }
  if (length(r$warnings)) message(sprintf("    [%s] warning(s): %s", label, paste(unique(r$warnings), collapse = " | ")))
  out <- extract(r$value)
  out$warnings <- arr(r$warnings)
  out
}

# numeric vector (names dropped) -> JSON array
num_vec <- function(x) arr(unname(as.numeric(x)))

# ----------------------------------------------------------------------------------------------
# Model fitting
# ----------------------------------------------------------------------------------------------

fit <- function(yi, vi, method, test, mods = NULL, data = NULL, subset = NULL) {
  args <- list(yi = yi, vi = vi, method = method, test = test, control = RMA_CONTROL)
  if (!is.null(mods)) { args$mods <- mods; args$data <- data }
  if (!is.null(subset)) args$subset <- subset
  do.call(rma, args)
}

# coefficient table and model-level statistics of an rma.uni fit
model_record <- function(res) {
  out <- list(
    k = res$k, p = res$p,
    coefficients = list(
      names = arr(rownames(res$beta)),
      b = num_vec(res$beta), se = num_vec(res$se), zval = num_vec(res$zval), pval = num_vec(res$pval),
      ci_lb = num_vec(res$ci.lb), ci_ub = num_vec(res$ci.ub)),
    QM = res$QM, QMdf = arr(as.numeric(res$QMdf)), QMp = res$QMp,
    tau2 = res$tau2, se_tau2 = if (is.null(res$se.tau2)) NA else res$se.tau2,
    I2 = res$I2, H2 = res$H2, R2 = if (is.null(res$R2)) NA else res$R2,
    QE = res$QE, QEdf = res$k - res$p, QEp = res$QEp)
  if (!is.null(res$formula.mods)) out$mods <- paste(deparse(res$formula.mods), collapse = "")
  out
}

# ----------------------------------------------------------------------------------------------
# Subgroups
# ----------------------------------------------------------------------------------------------

subgroup_record <- function(yi, vi, groups, method, test, varname) {
  levs <- unique(as.character(groups))
  per <- lapply(levs, function(lv) {
    sel <- as.character(groups) == lv
    safely(paste("subgroup", lv), fit(yi[sel], vi[sel], method, test), function(r) list(
      level = lv, k = r$k, estimate = as.numeric(coef(r)), se = r$se, zval = r$zval, pval = r$pval,
      ci_lb = r$ci.lb, ci_ub = r$ci.ub, tau2 = r$tau2, I2 = r$I2, QE = r$QE, QEp = r$QEp))
  })
  est <- vapply(per, function(p) if (is.null(p$estimate)) NA_real_ else p$estimate, numeric(1))
  se <- vapply(per, function(p) if (is.null(p$se)) NA_real_ else p$se, numeric(1))
  w <- 1 / se^2
  est_fe <- sum(w * est) / sum(w)
  Q <- sum(w * (est - est_fe)^2)
  df <- length(levs) - 1
  list(variable = varname, levels = per,
       between = list(
         note = paste("computed in R from the separately fitted subgroups: Q = sum(w_g*(est_g - est_FE)^2),",
                      "w_g = 1/se_g^2, est_FE = sum(w_g*est_g)/sum(w_g), df = G - 1, p = pchisq(Q, df, lower=FALSE);",
                      "se_g is the subgroup fit's SE (Knapp-Hartung-scaled when test = knha)"),
         Q = Q, df = df, pval = pchisq(Q, df, lower.tail = FALSE), est_FE = est_fe))
}

# ----------------------------------------------------------------------------------------------
# Permutation tests (exact)
# ----------------------------------------------------------------------------------------------

permutest_record <- function(res) {
  if (SKIP_PERMUTEST) return(NULL)
  safely("permutest", permutest(res, exact = TRUE, progbar = FALSE), function(p) list(
    exact = TRUE, n_permutations = p$exact.iter,
    coef_names = arr(rownames(res$beta)),
    zval = num_vec(p$zval), pval = num_vec(p$pval),
    QM = p$QM, QMp = p$QMp))
}

# ----------------------------------------------------------------------------------------------
# Case diagnostics
# ----------------------------------------------------------------------------------------------

# numeric/character columns of length k from a list.rma-like object
list_columns <- function(x, k, drop = c("digits", "transf")) {
  x <- unclass(x)
  keep <- names(x)[vapply(names(x), function(n) !(n %in% drop) && length(x[[n]]) == k &&
                            (is.numeric(x[[n]]) || is.character(x[[n]]) || is.logical(x[[n]])), logical(1))]
  out <- lapply(x[keep], function(v) if (is.numeric(v)) num_vec(v) else arr(as.vector(v)))
  names(out) <- keep
  out
}

leave1out_record <- function(res) safely("leave1out", leave1out(res), function(l) list_columns(l, res$k))

influence_record <- function(res) safely("influence", influence(res), function(inf) list(
  inf = list_columns(inf$inf, res$k),
  dfbs = list_columns(inf$dfbs, res$k),
  is_infl = arr(as.logical(inf$is.infl)),
  tau2 = inf$tau2, QE = inf$QE))

cumul_record <- function(res, order_var, order_name) {
  # do.call splices the values into the call (cumul() looks the 'order' argument up non-standardly)
  safely("cumul", do.call(cumul, list(res, order = order_var)), function(cu) c(
    list(order_by = order_name,
         note = "rows are in cumulative order (studies sorted by order_by, ties kept in original order); slab = original study index"),
    list_columns(cu, res$k)))
}

baujat_record <- function(res) {
  pdf(NULL)
  on.exit(dev.off())
  safely("baujat", baujat(res), function(b) list(x = num_vec(b$x), y = num_vec(b$y), ids = num_vec(b$ids)))
}

# ----------------------------------------------------------------------------------------------
# Small-study effects / publication bias
# ----------------------------------------------------------------------------------------------

regtest_record <- function(res, model) {
  safely(paste("regtest", model), regtest(res, model = model, ret.fit = TRUE), function(r) {
    f <- r$fit
    cf <- if (model == "lm") summary(f)$coefficients else cbind(f$beta, f$se, f$zval, f$pval)
    list(model = r$model, predictor = r$predictor,
         zval = r$zval, pval = r$pval, dfs = if (is.null(r$dfs)) NA else r$dfs,
         limit_estimate = as.numeric(r$est), limit_ci_lb = r$ci.lb, limit_ci_ub = r$ci.ub,
         fit_coef_names = arr(rownames(cf)),
         fit_b = num_vec(cf[, 1]), fit_se = num_vec(cf[, 2]),
         fit_tau2 = if (model == "lm") NA else f$tau2,
         note = if (model == "lm") "classic Egger: lm(yi ~ sei, weights = 1/vi); zval is a t statistic on dfs df; limit_estimate = intercept" else
           "meta-regression yi ~ sei with the model's method/test; zval/pval for the sei coefficient; limit_estimate = intercept")
  })
}

ranktest_record <- function(res) safely("ranktest", ranktest(res), function(r) list(tau = unname(r$tau), pval = r$pval))

trimfill_record <- function(res, estimator) {
  safely(paste("trimfill", estimator), trimfill(res, estimator = estimator), function(tf) list(
    estimator = estimator, k0 = tf$k0, side = tf$side, se_k0 = tf$se.k0,
    p_k0 = if (is.null(tf$p.k0)) NA else tf$p.k0,
    k = tf$k, estimate = as.numeric(coef(tf)), se = tf$se, zval = tf$zval, pval = tf$pval,
    ci_lb = tf$ci.lb, ci_ub = tf$ci.ub, tau2 = tf$tau2, I2 = tf$I2, QE = tf$QE, QEp = tf$QEp,
    yi = num_vec(tf$yi), vi = num_vec(tf$vi), fill = arr(as.logical(tf$fill))))
}

fsn_record <- function(yi, vi) {
  one <- function(type) safely(paste("fsn", type), fsn(yi, vi, type = type), function(f) list(
    type = f$type, fsnum = f$fsnum, alpha = f$alpha, pval = f$pval, meanes = f$meanes, target = f$target))
  list(Rosenthal = one("Rosenthal"), Orwin = one("Orwin"), Rosenberg = one("Rosenberg"))
}

# ----------------------------------------------------------------------------------------------
# One dataset x method x test
# ----------------------------------------------------------------------------------------------

analysis_record <- function(ds, method, test) {
  message(sprintf("  %s / %s / %s", ds$name, method, test))
  yi <- ds$yi; vi <- ds$vi; dat <- ds$data
  base <- capture(fit(yi, vi, method, test))
  if (!is.null(base$error)) return(list(method = method, test = test, error = base$error))
  res <- base$value
  out <- list(method = method, test = test,
              fit = c(model_record(res), list(warnings = arr(base$warnings))))

  if (!is.null(ds$mods)) {
    out$metareg <- safely("metareg", fit(yi, vi, method, test, mods = ds$mods, data = dat), model_record)
  }
  if (!is.null(ds$subgroup)) {
    sg_formula <- as.formula(paste0("~ factor(", ds$subgroup, ")"))
    out$metareg_subgroup <- safely("metareg_subgroup", fit(yi, vi, method, test, mods = sg_formula, data = dat),
                                   model_record)
    out$subgroups <- subgroup_record(yi, vi, dat[[ds$subgroup]], method, test, ds$subgroup)
  }
  if (isTRUE(ds$permutest_intercept)) {
    out$permutest <- permutest_record(res)
    if (!is.null(out$permutest)) out$permutest$model <- "intercept-only (exact: all 2^k sign flips)"
  }

  out$leave1out <- leave1out_record(res)
  out$influence <- influence_record(res)
  out$cumul <- cumul_record(res, ds$cumul_order, ds$cumul_order_name)
  out$baujat <- baujat_record(res)
  out$regtest_rma <- regtest_record(res, "rma")
  out$regtest_lm <- regtest_record(res, "lm")
  out$ranktest <- ranktest_record(res)
  out$trimfill_L0 <- trimfill_record(res, "L0")
  out$trimfill_R0 <- trimfill_record(res, "R0")
  out
}

dataset_record <- function(ds) {
  analyses <- list()
  for (m in ds$methods) for (t in TESTS) analyses[[length(analyses) + 1]] <- analysis_record(ds, m, t)
  list(name = ds$name, source = ds$source, measure = ds$measure,
       input = lapply(ds$input, arr),
       moderators = if (is.null(ds$moderators)) NULL else lapply(ds$moderators, arr),
       mods = if (is.null(ds$mods)) NULL else paste(deparse(ds$mods), collapse = ""),
       subgroup = ds$subgroup,
       escalc = list(yi = num_vec(ds$yi), vi = num_vec(ds$vi)),
       fsn = fsn_record(ds$yi, ds$vi),
       analyses = analyses)
}

# ----------------------------------------------------------------------------------------------
# Datasets
# ----------------------------------------------------------------------------------------------

dataset_specs <- function() {
  bcg <- escalc(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)
  nd <- escalc(measure = "SMD", m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i, n2i = n2i,
               data = dat.normand1999)
  ml <- escalc(measure = "ZCOR", ri = ri, ni = ni, data = dat.molloy2014)
  list(
    list(name = "bcg_logRR",
         source = "metadat::dat.bcg (all 13 rows, no NA); escalc(measure='RR', ai=tpos, bi=tneg, ci=cpos, di=cneg)",
         measure = "RR", data = bcg, yi = as.numeric(bcg$yi), vi = as.numeric(bcg$vi),
         input = list(tpos = bcg$tpos, tneg = bcg$tneg, cpos = bcg$cpos, cneg = bcg$cneg),
         moderators = list(ablat = bcg$ablat, year = bcg$year, alloc = as.character(bcg$alloc)),
         methods = c("REML", "DL"), mods = ~ ablat + year, subgroup = "alloc",
         permutest_intercept = TRUE,
         cumul_order = bcg$year, cumul_order_name = "year"),
    list(name = "normand1999_SMD",
         source = "metadat::dat.normand1999 (all 9 rows, no NA); escalc(measure='SMD', vtype='LS'); cases = m1i/sd1i/n1i",
         measure = "SMD", data = nd, yi = as.numeric(nd$yi), vi = as.numeric(nd$vi),
         input = list(n_cases = nd$n1i, mean_cases = nd$m1i, sd_cases = nd$sd1i,
                      n_controls = nd$n2i, mean_controls = nd$m2i, sd_controls = nd$sd2i),
         methods = c("REML"), permutest_intercept = TRUE,
         cumul_order = nd$study, cumul_order_name = "study (dataset has no year column)"),
    list(name = "molloy2014_ZCOR",
         source = "metadat::dat.molloy2014 (all 16 rows, no NA); escalc(measure='ZCOR', ri=ri, ni=ni)",
         measure = "ZCOR", data = ml, yi = as.numeric(ml$yi), vi = as.numeric(ml$vi),
         input = list(r = ml$ri, n = ml$ni),
         moderators = list(year = ml$year),
         methods = c("REML"), permutest_intercept = FALSE,  # 2^16 = 65536 refits per test: skipped
         cumul_order = ml$year, cumul_order_name = "year")
  )
}

# exact permutation test for a meta-regression on a small subset (8! / ties = 10080 distinct permutations)
permutest_small <- function() {
  bcg <- escalc(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)
  d8 <- bcg[1:8, ]
  out <- list()
  for (m in c("REML", "DL")) for (t in TESTS) {
    message(sprintf("  permutest bcg[1:8] ~ ablat / %s / %s", m, t))
    res <- fit(d8$yi, d8$vi, m, t, mods = ~ ablat, data = d8)
    out[[length(out) + 1]] <- list(
      name = "bcg_rows1-8_ablat",
      source = "metadat::dat.bcg rows 1-8, escalc(measure='RR'), mods = ~ ablat",
      yi = num_vec(d8$yi), vi = num_vec(d8$vi), ablat = num_vec(d8$ablat),
      method = m, test = t,
      fit = model_record(res),
      permutest = permutest_record(res))
  }
  out
}

# ----------------------------------------------------------------------------------------------

main <- function() {
  datasets <- lapply(dataset_specs(), dataset_record)
  out <- list(
    generator = "tests/reference/generate_metafor_reference_extra.R",
    R_version = R.version.string,
    metafor_version = as.character(packageVersion("metafor")),
    metadat_version = as.character(packageVersion("metadat")),
    jsonlite_version = as.character(packageVersion("jsonlite")),
    generated = format(Sys.time(), "%Y-%m-%dT%H:%M:%SZ", tz = "UTC"),
    rma_control = RMA_CONTROL,
    permutest_skipped = SKIP_PERMUTEST,
    notes = paste(
      "Diagnostics (leave1out, influence, cumul, baujat, regtest, ranktest, trimfill) are for the intercept-only model",
      "of each analysis. I2/weights in percent. For test = knha, zval is a t statistic and QMp is from F(QMdf[1], QMdf[2]) with QM",
      "reported as an F statistic. Permutation p values are exact (all distinct permutations / sign flips), so they are",
      "reproducible. fsn is computed from yi/vi (independent of method/test)."),
    datasets = datasets,
    permutest_small = permutest_small()
  )
  dir.create(dirname(OUT_FILE), showWarnings = FALSE, recursive = TRUE)
  write_json_file(out, OUT_FILE)
  message("wrote ", OUT_FILE)
}

main()
