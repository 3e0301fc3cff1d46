# Reference values from R metafor for case diagnostics and small-study-effect methods, complementing
# generate_metafor_reference_extra.R: every tau^2 method x test, trim-and-fill with tight convergence inside
# trimfill() itself, PEESE (regtest predictor = "vi"), cumul with tied order keys, leave1out/influence with
# k = 2 and 3 (single-study refits), ranktest with k = 60 (exact p, no ties) and with ties, fsn variants.
#
# How to run (from the repository root):
#     Rscript tests/reference/generate_bias_reference.R
# Requirements: R with metafor (values were produced with 3.8-1), metadat, jsonlite. Takes a few seconds.
#
# Writes: tests/reference/bias_reference.json
#   {generator, R_version, metafor_version, rma_control, notes,
#    datasets: [{name, source, yi, vi, order, ranktest, fsn,
#                analyses: [{method, test, fit, leave1out, influence, baujat, cumul,
#                            regtest: {rma_sei, rma_vi, lm_sei, lm_vi}, trimfill: {L0, R0}}]}]}
#   each regtest entry also has "printed": its test as print.regtest shows it, e.g. "t = 3.3968, df = 18, p = 0.0032"
#
# All rma() fits use control = list(threshold = 1e-13, tol = 1e-13, maxiter = 10000). leave1out, influence,
# baujat, cumul and regtest reuse the model's control. trimfill() does NOT (metafor 3.8-1 refits with its
# default control and default test = "z"), so here it is called as trimfill(res, estimator, control = <tight>,
# test = res$test): the '...' of trimfill() are passed to every internal rma.uni() call, so all trimmed fits
# and the final fit on the filled data use the tight control and the model's test.
# Numbers are written with "%.17g"; NA/NaN/Inf -> null. Errors are stored as {"error": message}.

suppressPackageStartupMessages({
  library(metafor)
  library(jsonlite)
})

OUT_FILE <- file.path("tests", "reference", "bias_reference.json")
RMA_CONTROL <- list(threshold = 1e-13, tol = 1e-13, maxiter = 10000)
METHODS <- c("EE", "DL", "REML", "ML", "PM", "SJ", "HE", "HS", "EB")
TESTS <- c("z", "knha")

# ---- JSON helpers: numbers as "%.17g", spliced in verbatim --------------------------------------------------

source(file.path("tests", "reference", "reference_json.R"))

# num() and safely() are in reference_json.R

# ---- records ---------------------------------------------------------------------------------------------

# leave1out/cumul tables: the t statistic is called tval for knha; tau2 is dropped for EE -> fill with 0
fit_table <- function(l, k) {
  stat <- if (!is.null(l$zval)) l$zval else l$tval
  list(estimate = num(l$estimate), se = num(l$se), zval = num(stat),
       pval = num(if (!is.null(l$pval)) l$pval else l$pvals),
       ci_lb = num(l$ci.lb), ci_ub = num(l$ci.ub), Q = num(l$Q), Qp = num(l$Qp),
       tau2 = num(if (is.null(l$tau2)) rep(0, k) else l$tau2), I2 = num(l$I2), H2 = num(l$H2))
}

fit_record <- function(res) list(
  k = res$k, estimate = as.numeric(res$beta), se = res$se, zval = res$zval, pval = res$pval,
  ci_lb = res$ci.lb, ci_ub = res$ci.ub, tau2 = res$tau2, I2 = res$I2, H2 = res$H2, QE = res$QE, QEp = res$QEp)

regtest_record <- function(res, model, predictor) safely(
  regtest(res, model = model, predictor = predictor, ret.fit = TRUE), function(r) {
    f <- r$fit
    cf <- if (model == "lm") summary(f)$coefficients else cbind(f$beta, f$se, f$zval, f$pval)
    # the test line as print.regtest shows it ("t = ..., df = ..., p = ..." or "z = ..., p = ...")
    shown <- grep("^Test for Funnel Plot Asymmetry: ", capture.output(print(r, ret.fit = FALSE)), value = TRUE)
    list(zval = r$zval, pval = r$pval, dfs = if (is.null(r$dfs)) NA else r$dfs,
         printed = sub("^Test for Funnel Plot Asymmetry: ", "", shown),
         limit_estimate = as.numeric(r$est), limit_ci_lb = r$ci.lb, limit_ci_ub = r$ci.ub,
         fit_b = num(cf[, 1]), fit_se = num(cf[, 2]), fit_zval = num(cf[, 3]), fit_pval = num(cf[, 4]),
         fit_tau2 = if (model == "lm") NA else f$tau2)
  })

trimfill_record <- function(res, estimator) safely(
  trimfill(res, estimator = estimator, control = RMA_CONTROL, test = res$test), function(tf) c(
    list(k0 = tf$k0, side = tf$side, se_k0 = tf$se.k0, p_k0 = if (is.null(tf$p.k0)) NA else tf$p.k0,
         yi = num(tf$yi), vi = num(tf$vi), fill = arr(as.logical(tf$fill))),
    fit_record(tf)))

analysis_record <- function(ds, method, test) {
  res <- tryCatch(rma(ds$yi, ds$vi, method = method, test = test, control = RMA_CONTROL),
                  error = function(e) e)
  if (inherits(res, "error")) return(list(method = method, test = test, error = conditionMessage(res)))
  k <- res$k
  out <- list(method = method, test = test, fit = fit_record(res))
  out$leave1out <- safely(leave1out(res), function(l) fit_table(l, k))
  out$influence <- safely(influence(res), function(inf) list(
    rstudent = num(inf$inf$rstudent), dffits = num(inf$inf$dffits), cook_d = num(inf$inf$cook.d),
    cov_r = num(inf$inf$cov.r), tau2_del = num(inf$inf$tau2.del), QE_del = num(inf$inf$QE.del),
    hat = num(inf$inf$hat), weight = num(inf$inf$weight), dfbs = num(inf$dfbs$intrcpt),
    is_infl = arr(as.logical(inf$is.infl))))
  out$baujat <- safely({ pdf(NULL); on.exit(dev.off()); baujat(res) }, function(b) list(x = num(b$x), y = num(b$y)))
  out$cumul <- safely(do.call(cumul, list(res, order = ds$order)),
                      function(cu) c(list(ids = num(cu$ids)), fit_table(cu, k)))
  if (k >= 4) {
    out$regtest <- list(rma_sei = regtest_record(res, "rma", "sei"), rma_vi = regtest_record(res, "rma", "vi"),
                        lm_sei = regtest_record(res, "lm", "sei"), lm_vi = regtest_record(res, "lm", "vi"))
    out$trimfill <- list(L0 = trimfill_record(res, "L0"), R0 = trimfill_record(res, "R0"))
  }
  out
}

fsn_record <- function(yi, vi) {
  one <- function(...) safely(fsn(yi, vi, ...), function(f) list(
    fsnum = f$fsnum, pval = f$pval, meanes = f$meanes, target = f$target))
  list(Rosenthal = one(type = "Rosenthal"), Rosenthal_alpha01 = one(type = "Rosenthal", alpha = 0.01),
       Orwin = one(type = "Orwin"), Orwin_weighted = one(type = "Orwin", weighted = TRUE),
       Orwin_target = one(type = "Orwin", target = 0.05),
       Rosenberg = one(type = "Rosenberg"), Rosenberg_alpha10 = one(type = "Rosenberg", alpha = 0.10))
}

dataset_record <- function(ds) {
  message("  ", ds$name)
  analyses <- list()
  for (m in ds$methods) for (t in TESTS) analyses[[length(analyses) + 1]] <- analysis_record(ds, m, t)
  list(name = ds$name, source = ds$source, yi = num(ds$yi), vi = num(ds$vi), order = num(ds$order),
       order_note = ds$order_note,
       ranktest = safely(ranktest(ds$yi, ds$vi), function(r) list(tau = unname(r$tau), pval = r$pval)),
       fsn = fsn_record(ds$yi, ds$vi),
       analyses = analyses)
}

# ---- datasets ----------------------------------------------------------------------------------------------

datasets <- function() {
  bcg <- escalc(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)
  nd <- escalc(measure = "SMD", m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i, n2i = n2i,
               data = dat.normand1999)
  ml <- escalc(measure = "ZCOR", ri = ri, ni = ni, data = dat.molloy2014)
  hk <- dat.hackshaw1998
  set.seed(20240601)
  k60 <- 60
  v60 <- round(runif(k60, 0.01, 0.3), 6)
  y60 <- round(0.2 + 0.8 * sqrt(v60) + rnorm(k60, 0, sqrt(v60 + 0.02)), 6)
  list(
    list(name = "bcg_logRR", source = "metadat::dat.bcg, escalc(measure='RR')", methods = METHODS,
         yi = as.numeric(bcg$yi), vi = as.numeric(bcg$vi), order = bcg$year,
         order_note = "publication year (ties kept in original order)"),
    list(name = "normand1999_SMD", source = "metadat::dat.normand1999, escalc(measure='SMD')",
         methods = c("REML", "DL", "PM", "EE"),
         yi = as.numeric(nd$yi), vi = as.numeric(nd$vi), order = -seq_len(nrow(nd)), order_note = "reverse order"),
    list(name = "molloy2014_ZCOR", source = "metadat::dat.molloy2014, escalc(measure='ZCOR')",
         methods = c("REML", "DL", "ML", "PM"),
         yi = as.numeric(ml$yi), vi = as.numeric(ml$vi), order = as.numeric(ml$vi),
         order_note = "sampling variance (tied values: studies with equal n)"),
    list(name = "hackshaw1998_logOR", source = "metadat::dat.hackshaw1998 (yi, vi as supplied)",
         methods = c("REML", "DL", "EE"),
         yi = as.numeric(hk$yi), vi = as.numeric(hk$vi), order = hk$year, order_note = "publication year"),
    list(name = "bcg_first3", source = "metadat::dat.bcg rows 1-3, escalc(measure='RR')", methods = c("REML", "DL", "EE"),
         yi = as.numeric(bcg$yi[1:3]), vi = as.numeric(bcg$vi[1:3]), order = c(3, 1, 2), order_note = "c(3, 1, 2)"),
    list(name = "bcg_first2", source = "metadat::dat.bcg rows 1-2, escalc(measure='RR')", methods = c("REML", "DL"),
         yi = as.numeric(bcg$yi[1:2]), vi = as.numeric(bcg$vi[1:2]), order = c(2, 1), order_note = "c(2, 1)"),
    list(name = "synthetic_k60", source = paste(
           "set.seed(20240601); v = round(runif(60, 0.01, 0.3), 6);",
           "y = round(0.2 + 0.8*sqrt(v) + rnorm(60, 0, sqrt(v + 0.02)), 6) (small-study effect built in)"),
         methods = c("REML", "DL"), yi = y60, vi = v60, order = seq_len(k60), order_note = "given order")
  )
}

main <- function() {
  out <- list(
    generator = "tests/reference/generate_bias_reference.R",
    R_version = R.version.string,
    metafor_version = as.character(packageVersion("metafor")),
    generated = format(Sys.time(), "%Y-%m-%dT%H:%M:%SZ", tz = "UTC"),
    rma_control = RMA_CONTROL,
    notes = paste(
      "Intercept-only models. trimfill called as trimfill(res, estimator, control = rma_control, test = res$test).",
      "regtest entries only for k >= 4. leave1out/cumul 'zval' is tval for knha; tau2 of EE fits is 0.",
      "ranktest and fsn depend only on yi/vi."),
    datasets = lapply(datasets(), dataset_record))
  write_json_file(out, OUT_FILE)
  message("wrote ", OUT_FILE)
}

main()
