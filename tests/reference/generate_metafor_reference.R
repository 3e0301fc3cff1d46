# Generate golden reference values from R metafor for the Python meta-analysis engine.
#
# How to run (from the repository root):
#     Rscript tests/reference/generate_metafor_reference.R
#
# Requirements: R with the packages metafor (reference values were produced with 3.8-1),
# metadat and jsonlite (Debian/Ubuntu: apt-get install r-cran-metafor r-cran-metadat r-cran-jsonlite).
#
# Writes: tests/reference/metafor_reference.json
#   {generator, R_version, metafor_version, metadat_version, generated, notes,
#    cases: [{name, source, measure, vtype, input, escalc: {yi, vi},
#             fits: [{method, test, k, estimate, se, ..., weights}, ...]}, ...],
#    escalc_extra: [...]}
#
# Every rma() fit uses control = list(threshold = 1e-13, tol = 1e-13, maxiter = 10000) and the
# Q-profile CI for tau^2 / I^2 uses confint(res, control = list(tol = 1e-13, maxiter = 10000)), so
# the values are the (numerically) exact solutions, not metafor's default-tolerance output.
# Numbers are written with 17 significant digits ("%.17g", exact double round-trip); NA/NaN/Inf -> null.
# Any warnings/errors raised by metafor are stored next to the affected fit ("warnings", "error").

suppressPackageStartupMessages({
  library(metafor)
  library(jsonlite)
})

OUT_FILE <- file.path("tests", "reference", "metafor_reference.json")
RMA_CONTROL <- list(threshold = 1e-13, tol = 1e-13, maxiter = 10000)
CONFINT_CONTROL <- list(tol = 1e-13, maxiter = 10000)
METHODS <- c("EE", "DL", "REML", "ML", "PM", "SJ", "HE", "HS", "EB")
TESTS <- c("z", "knha")

# ----------------------------------------------------------------------------------------------
# JSON helpers: jsonlite caps numbers at 15 significant digits, so numeric vectors are
# serialised here with "%.17g" and spliced in verbatim.
# ----------------------------------------------------------------------------------------------

source(file.path("tests", "reference", "reference_json.R"))

tag <- function(prefix, msgs) if (length(msgs)) paste0(prefix, ": ", msgs) else character(0)

na_if_null <- function(x) if (is.null(x) || length(x) == 0) NA_real_ else x

# run an expression, collecting warnings (returned alongside the value) and catching errors
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

# ----------------------------------------------------------------------------------------------
# Effect sizes (escalc) from the sheet-style input columns
# ----------------------------------------------------------------------------------------------

# Returns list(yi, vi) computed by metafor::escalc (or, for CI input, the documented formula).
compute_escalc <- function(measure, input, vtype = "LS") {
  if (measure %in% c("SMD", "MD", "ROM")) {
    es <- escalc(measure = measure,
                 m1i = input$mean_cases, sd1i = input$sd_cases, n1i = input$n_cases,
                 m2i = input$mean_controls, sd2i = input$sd_controls, n2i = input$n_controls,
                 vtype = vtype)
  } else if (measure == "ZCOR") {
    es <- escalc(measure = "ZCOR", ri = input$r, ni = input$n, vtype = vtype)
  } else if (measure == "GEN") {
    if (!is.null(input$vi)) {
      es <- escalc(measure = "GEN", yi = input$yi, vi = input$vi)
    } else if (!is.null(input$sei)) {
      es <- escalc(measure = "GEN", yi = input$yi, sei = input$sei)
    } else if (!is.null(input$ci_low)) {
      # 95% CI of the effect: vi = ((ci_high - ci_low) / (2 * qnorm(0.975)))^2, yi used as given
      vi <- ((input$ci_high - input$ci_low) / (2 * qnorm(0.975)))^2
      es <- escalc(measure = "GEN", yi = input$yi, vi = vi)
    } else stop("GEN input needs vi, sei or ci_low/ci_high")
  } else stop("unknown measure ", measure)
  list(yi = as.numeric(es$yi), vi = as.numeric(es$vi))
}

# ----------------------------------------------------------------------------------------------
# rma() with a documented fallback ladder for Fisher-scoring non-convergence
# ----------------------------------------------------------------------------------------------

# With threshold = 1e-13 the Fisher scoring (ML/REML/EB) can fail for two reasons:
#  * tau^2 is large (e.g. ~685 for normand1999 MD), so |change| <= 1e-13 is below the floating-point
#    resolution of tau^2 (ulp(685) ~ 1.1e-13) -> loosen the threshold (still ~1e-15 relative);
#  * the undamped step oscillates forever (EB on the extreme-variance-ratio case) -> halve the step
#    (control$stepadj = 0.5), which converges to the same fixed point as PM.
# The first control that works is used and recorded in the fit record ("fallback").
FALLBACK_CONTROLS <- list(
  list(threshold = 1e-12),
  list(threshold = 1e-11),
  list(threshold = 1e-10),
  list(threshold = 1e-13, stepadj = 0.5),
  list(threshold = 1e-12, stepadj = 0.5),
  list(threshold = 1e-13, stepadj = 0.25)
)

fit_rma <- function(yi, vi, method, test) {
  run <- function(ctrl) capture(rma(yi, vi, method = method, test = test, control = ctrl))
  fit <- run(RMA_CONTROL)
  if (is.null(fit$error)) return(fit)
  first_error <- fit$error
  for (fc in FALLBACK_CONTROLS) {
    ctrl <- modifyList(RMA_CONTROL, fc)
    fit <- run(ctrl)
    if (is.null(fit$error)) {
      default_run <- capture(rma(yi, vi, method = method, test = test))  # metafor's default control, for info
      fit$fallback <- list(error_with_standard_control = first_error, control_used = ctrl,
                           converges_with_metafor_default_control = is.null(default_run$error),
                           tau2_with_metafor_default_control =
                             if (is.null(default_run$error)) default_run$value$tau2 else NA)
      message(sprintf("  fallback for %s/%s: %s -> control %s", method, test, first_error,
                      paste(names(ctrl), unlist(ctrl), sep = "=", collapse = ", ")))
      return(fit)
    }
  }
  fit$error <- first_error
  fit
}

# ----------------------------------------------------------------------------------------------
# One rma() fit -> flat record
# ----------------------------------------------------------------------------------------------

fit_record <- function(yi, vi, method, test) {
  rec <- list(method = method, test = test)
  fit <- fit_rma(yi, vi, method, test)
  warns <- fit$warnings
  if (!is.null(fit$error)) {
    rec$error <- fit$error
    rec$warnings <- arr(warns)
    return(rec)
  }
  res <- fit$value
  if (!is.null(fit$fallback)) rec$fallback <- fit$fallback

  # Q-profile CI for tau^2 / I^2 (not available for the equal-effects model)
  ci <- if (method == "EE") NULL else {
    cc <- capture(confint(res, control = CONFINT_CONTROL))
    warns <- c(warns, tag("confint", cc$warnings))
    if (!is.null(cc$error)) { warns <- c(warns, paste0("confint error: ", cc$error)); NULL } else cc$value
  }
  rnd <- if (is.null(ci)) NULL else ci$random
  ci_val <- function(row, col) if (is.null(rnd)) NA_real_ else unname(rnd[row, col])

  pr <- capture(predict(res))
  warns <- c(warns, tag("predict", pr$warnings))
  p <- pr$value
  pi_lb <- if (!is.null(p$pi.lb)) p$pi.lb else p$ci.lb
  pi_ub <- if (!is.null(p$pi.ub)) p$pi.ub else p$ci.ub

  rec <- c(rec, list(
    k = res$k,
    estimate = unname(as.numeric(coef(res))),
    se = res$se, zval = res$zval, pval = res$pval,
    ci_low = res$ci.lb, ci_high = res$ci.ub,
    tau2 = res$tau2,
    tau2_se = na_if_null(res$se.tau2),
    tau2_ci_low = ci_val("tau^2", "ci.lb"), tau2_ci_high = ci_val("tau^2", "ci.ub"),
    tau = sqrt(res$tau2),
    tau_ci_low = ci_val("tau", "ci.lb"), tau_ci_high = ci_val("tau", "ci.ub"),
    i2 = res$I2,
    i2_ci_low = ci_val("I^2(%)", "ci.lb"), i2_ci_high = ci_val("I^2(%)", "ci.ub"),
    h2 = res$H2,
    h2_ci_low = ci_val("H^2", "ci.lb"), h2_ci_high = ci_val("H^2", "ci.ub"),
    confint_ci_null = if (is.null(ci)) NA else ci$ci.null,
    confint_lb_sign = if (is.null(ci)) NA else ci$lb.sign,
    confint_ub_sign = if (is.null(ci)) NA else ci$ub.sign,
    q = res$QE, q_df = res$k - res$p, q_p = res$QEp,
    pi_low = unname(pi_lb), pi_high = unname(pi_ub),
    weights = arr(unname(as.numeric(weights(res)))),
    warnings = arr(warns)
  ))
  rec
}

make_case <- function(name, source, measure, input, vtype = "LS", notes = NULL) {
  es <- compute_escalc(measure, input, vtype)
  fits <- list()
  for (m in METHODS) for (t in TESTS) fits[[length(fits) + 1]] <- fit_record(es$yi, es$vi, m, t)
  n_err <- sum(vapply(fits, function(f) !is.null(f$error), logical(1)))
  n_warn <- sum(vapply(fits, function(f) length(f$warnings) > 0, logical(1)))
  message(sprintf("case %-32s k=%3d  fits=%d  errors=%d  fits-with-warnings=%d",
                  name, length(es$yi), length(fits), n_err, n_warn))
  case <- list(name = name, source = source, measure = measure, vtype = vtype,
               input = lapply(input, arr), escalc = list(yi = arr(es$yi), vi = arr(es$vi)))
  if (!is.null(notes)) case$notes <- notes
  case$fits <- fits
  case
}

# ----------------------------------------------------------------------------------------------
# Input builders (sheet column names)
# ----------------------------------------------------------------------------------------------

group_input <- function(d) {
  list(n_cases = d$n1i, mean_cases = d$m1i, sd_cases = d$sd1i,
       n_controls = d$n2i, mean_controls = d$m2i, sd_controls = d$sd2i)
}

drop_na_rows <- function(d, cols) {
  keep <- complete.cases(d[, cols, drop = FALSE])
  list(data = d[keep, , drop = FALSE], dropped = which(!keep))
}

na_note <- function(n_total, dropped) {
  if (length(dropped) == 0) sprintf("all %d rows; no NA rows", n_total)
  else sprintf("rows with NA in the used columns dropped: %s (%d of %d kept)",
               paste(dropped, collapse = ","), n_total - length(dropped), n_total)
}

build_cases <- function() {
  cases <- list()
  add <- function(x) cases[[length(cases) + 1]] <<- x
  grp_cols <- c("m1i", "sd1i", "n1i", "m2i", "sd2i", "n2i")

  # --- dat.normand1999: SMD (LS, UB), MD, ROM --------------------------------------------
  nd <- drop_na_rows(dat.normand1999, grp_cols)
  src <- sprintf("metadat::dat.normand1999 (%s); cases = experimental group (m1i, sd1i, n1i)",
                 na_note(nrow(dat.normand1999), nd$dropped))
  add(make_case("normand1999_SMD_LS", src, "SMD", group_input(nd$data), vtype = "LS"))
  add(make_case("normand1999_SMD_UB", src, "SMD", group_input(nd$data), vtype = "UB"))
  add(make_case("normand1999_MD", src, "MD", group_input(nd$data)))
  add(make_case("normand1999_ROM", src, "ROM", group_input(nd$data),
                notes = "metafor 3.8-1 ROM has no bias correction (escalc correct=TRUE default only from 5.0-1)"))

  # --- dat.curtis1998: ROM ----------------------------------------------------------------
  cd <- drop_na_rows(dat.curtis1998, grp_cols)
  add(make_case("curtis1998_ROM",
                sprintf("metadat::dat.curtis1998 (%s); cases = elevated CO2 (m1i, sd1i, n1i)",
                        na_note(nrow(dat.curtis1998), cd$dropped)),
                "ROM", group_input(cd$data),
                notes = "metafor 3.8-1 ROM has no bias correction (escalc correct=TRUE default only from 5.0-1)"))

  # --- dat.molloy2014: ZCOR ---------------------------------------------------------------
  md <- drop_na_rows(dat.molloy2014, c("ri", "ni"))
  add(make_case("molloy2014_ZCOR",
                sprintf("metadat::dat.molloy2014 (%s); r = ri, n = ni", na_note(nrow(dat.molloy2014), md$dropped)),
                "ZCOR", list(r = md$data$ri, n = md$data$ni)))

  # --- dat.bangertdrowns2004: GEN from yi/vi ----------------------------------------------
  bd <- drop_na_rows(dat.bangertdrowns2004, c("yi", "vi"))
  add(make_case("bangertdrowns2004_GEN_yi_vi",
                sprintf("metadat::dat.bangertdrowns2004 (%s; NAs in moderator columns ignored); yi, vi as given (SMDs)",
                        na_note(nrow(dat.bangertdrowns2004), bd$dropped)),
                "GEN", list(yi = as.numeric(bd$data$yi), vi = as.numeric(bd$data$vi))))

  # --- dat.bcg: log risk ratio given as yi + sei ------------------------------------------
  bcg <- escalc(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)
  add(make_case("bcg_logRR_GEN_yi_sei",
                sprintf("metadat::dat.bcg (%s); yi = log RR from escalc(measure='RR', ai=tpos, bi=tneg, ci=cpos, di=cneg), sei = sqrt(vi)",
                        na_note(nrow(dat.bcg), integer(0))),
                "GEN", list(yi = as.numeric(bcg$yi), sei = sqrt(as.numeric(bcg$vi)))))

  # --- dat.hackshaw1998: reported odds ratio with 95% CI -> GEN from yi + CI --------------
  hd <- drop_na_rows(dat.hackshaw1998, c("or", "or.lb", "or.ub"))
  add(make_case("hackshaw1998_logOR_GEN_yi_ci",
                sprintf(paste0("metadat::dat.hackshaw1998 (%s); reported OR with 95%% CI (columns or, or.lb, or.ub) ",
                               "on the log scale: yi = log(or), ci_low = log(or.lb), ci_high = log(or.ub); ",
                               "vi = ((ci_high - ci_low)/(2*qnorm(0.975)))^2 computed in R"),
                        na_note(nrow(dat.hackshaw1998), hd$dropped)),
                "GEN", list(yi = log(hd$data$or), ci_low = log(hd$data$or.lb), ci_high = log(hd$data$or.ub)),
                notes = "the dataset's own yi/vi columns are rounded to 4 decimals and are NOT used"))

  # --- edge cases -------------------------------------------------------------------------
  add(make_case("edge_k2_normand1999_SMD",
                "constructed edge case: k = 2, metadat::dat.normand1999 rows 1-2, SMD (vtype LS)",
                "SMD", group_input(dat.normand1999[1:2, ])))
  add(make_case("edge_homogeneous_GEN",
                "constructed edge case: homogeneous effects (tau^2 = 0 for all estimators), yi=c(0.10,0.12,0.11,0.09,0.105), vi=c(0.02,0.03,0.025,0.04,0.035)",
                "GEN", list(yi = c(0.10, 0.12, 0.11, 0.09, 0.105), vi = c(0.02, 0.03, 0.025, 0.04, 0.035))))
  add(make_case("edge_extreme_variance_ratio_GEN",
                "constructed edge case: extreme variance ratio (1e5), yi=c(0.2,0.5,-0.1,0.8,0.3), vi=c(1e-4,10,1e-4,10,0.5)",
                "GEN", list(yi = c(0.2, 0.5, -0.1, 0.8, 0.3), vi = c(1e-4, 10, 1e-4, 10, 0.5))))
  cases
}

# ----------------------------------------------------------------------------------------------
# escalc_extra: SMD from t statistics / signed p values, d from point-biserial r, ZCOR from r
# ----------------------------------------------------------------------------------------------

build_escalc_extra <- function() {
  n1 <- c(20, 35, 50); n2 <- c(22, 30, 48)
  ti <- c(2.1, -0.5, 3.3)
  pvals <- c(0.04, -0.5, 0.001)   # signed two-sided p values; sign = direction of the effect
  rpb <- c(0.3, -0.1, 0.45)
  rz <- c(0.187, -0.35, 0.62); nz <- c(109, 40, 25)
  extra <- list()

  es <- escalc(measure = "SMD", ti = ti, n1i = n1, n2i = n2)
  extra[[length(extra) + 1]] <- list(
    name = "SMD_from_t", measure = "SMD", vtype = "LS",
    call = "escalc(measure='SMD', ti=ti, n1i=n_cases, n2i=n_controls)",
    input = list(t = arr(ti), n_cases = arr(n1), n_controls = arr(n2)),
    yi = arr(as.numeric(es$yi)), vi = arr(as.numeric(es$vi)))

  es <- escalc(measure = "SMD", ti = ti, n1i = n1, n2i = n2, vtype = "UB")
  extra[[length(extra) + 1]] <- list(
    name = "SMD_from_t_UB", measure = "SMD", vtype = "UB",
    call = "escalc(measure='SMD', ti=ti, n1i=n_cases, n2i=n_controls, vtype='UB')",
    input = list(t = arr(ti), n_cases = arr(n1), n_controls = arr(n2)),
    yi = arr(as.numeric(es$yi)), vi = arr(as.numeric(es$vi)))

  # escalc(pi=) does not exist in metafor 3.8-1 (added later); convert the signed p value to t
  # exactly as later metafor versions do, t = sign(p) * qt(1 - |p|/2, df = n1 + n2 - 2), then escalc(ti=).
  t_from_p <- sign(pvals) * qt(1 - abs(pvals) / 2, df = n1 + n2 - 2)
  es <- escalc(measure = "SMD", ti = t_from_p, n1i = n1, n2i = n2)
  extra[[length(extra) + 1]] <- list(
    name = "SMD_from_signed_p", measure = "SMD", vtype = "LS",
    call = "t = sign(p)*qt(1-|p|/2, n1+n2-2) computed in R (escalc(pi=) not available in metafor 3.8-1); escalc(measure='SMD', ti=t, n1i, n2i)",
    input = list(p = arr(pvals), n_cases = arr(n1), n_controls = arr(n2)),
    t = arr(t_from_p),
    yi = arr(as.numeric(es$yi)), vi = arr(as.numeric(es$vi)))

  # escalc(measure='SMD', ri=) is not supported in metafor 3.8-1; use the later-version conversion
  # d = sqrt(h) * r / sqrt(1 - r^2), h = m/n1 + m/n2, m = n1 + n2 - 2, then escalc(di=) (bias correction + LS variance).
  m <- n1 + n2 - 2
  d_from_r <- sqrt(m / n1 + m / n2) * rpb / sqrt(1 - rpb^2)
  es <- escalc(measure = "SMD", di = d_from_r, n1i = n1, n2i = n2)
  extra[[length(extra) + 1]] <- list(
    name = "SMD_from_point_biserial_r", measure = "SMD", vtype = "LS",
    call = "d = sqrt(m/n1 + m/n2)*r/sqrt(1-r^2), m = n1+n2-2, computed in R (escalc SMD ri= not available in metafor 3.8-1); escalc(measure='SMD', di=d, n1i, n2i)",
    input = list(r = arr(rpb), n_cases = arr(n1), n_controls = arr(n2)),
    d = arr(d_from_r),
    yi = arr(as.numeric(es$yi)), vi = arr(as.numeric(es$vi)))

  es <- escalc(measure = "ZCOR", ri = rz, ni = nz)
  extra[[length(extra) + 1]] <- list(
    name = "ZCOR_from_r", measure = "ZCOR", vtype = "LS",
    call = "escalc(measure='ZCOR', ri=r, ni=n)",
    input = list(r = arr(rz), n = arr(nz)),
    yi = arr(as.numeric(es$yi)), vi = arr(as.numeric(es$vi)))
  extra
}

# ----------------------------------------------------------------------------------------------

main <- function() {
  cases <- build_cases()
  out <- list(
    generator = "tests/reference/generate_metafor_reference.R",
    R_version = R.version.string,
    metafor_version = as.character(packageVersion("metafor")),
    metadat_version = as.character(packageVersion("metadat")),
    jsonlite_version = as.character(packageVersion("jsonlite")),
    generated = format(Sys.time(), "%Y-%m-%dT%H:%M:%SZ", tz = "UTC"),
    rma_control = RMA_CONTROL,
    confint_control = CONFINT_CONTROL,
    notes = paste(
      "weights and i2 in percent; tau = sqrt(tau2); q_df = k - p; tau2/tau/I2/H2 CIs are Q-profile (confint.rma.uni),",
      "null for EE; pi_low/pi_high from predict(res) (for EE the CI of the estimate);",
      "knha fits: se/zval/pval/ci and PI use the Knapp-Hartung scale and t_{k-1}; zval is then a t statistic."),
    cases = cases,
    escalc_extra = build_escalc_extra()
  )
  dir.create(dirname(OUT_FILE), showWarnings = FALSE, recursive = TRUE)
  write_json_file(out, OUT_FILE)
  message("wrote ", OUT_FILE)
}

main()
