# Uncapped Q-profile CIs of tau^2 / I^2 from R metafor, for the fits of metafor_reference.json and
# metafor_reference_extra.json, and metafor's k = 1 fallback with test = "knha".
#
# How to run (from the repository root, after generate_metafor_reference*.R):
#     Rscript tests/reference/generate_qprofile_reference.R
#
# confint() searches tau^2 on [0, max(100, 10 tau2)] by default and reports that limit (with ub.sign ">")
# when the bound lies beyond it. Here the search range is tau2.max = 1e12, far above every bound of these
# data, so the values are the roots themselves (tol = 1e-13, maxiter = 10000; fits with the tight rma
# control of the other generators).
#
# Writes: tests/reference/qprofile_reference.json
#   {generator, R_version, metafor_version, generated, tau2_max, fits: [{case, file, method, test,
#    tau2, tau2_ci_low, tau2_ci_high, i2_ci_low, i2_ci_high, lb_sign, ub_sign}], k1: [{...}]}

suppressPackageStartupMessages({
  library(metafor)
  library(jsonlite)
})
source(file.path("tests", "reference", "reference_json.R"))

OUT_FILE <- file.path("tests", "reference", "qprofile_reference.json")
RMA_CONTROL <- list(threshold = 1e-13, tol = 1e-13, maxiter = 10000)
TAU2_MAX <- 1e12
CONFINT_CONTROL <- list(tol = 1e-13, maxiter = 10000, tau2.max = TAU2_MAX)
METHODS <- c("DL", "REML", "ML", "PM", "SJ", "HE", "HS", "EB")

fits <- list()
for (file in c("metafor_reference.json", "metafor_reference_extra.json")) {
  ref <- fromJSON(file.path("tests", "reference", file), simplifyVector = FALSE)
  for (case in ref$cases) {
    if (is.null(case$escalc)) next
    yi <- as.numeric(unlist(case$escalc$yi))
    vi <- as.numeric(unlist(case$escalc$vi))
    if (length(yi) < 2) next
    for (m in METHODS) {
      res <- try(suppressWarnings(rma(yi, vi, method = m, control = RMA_CONTROL)), silent = TRUE)
      if (inherits(res, "try-error")) next
      ci <- try(suppressWarnings(confint(res, control = CONFINT_CONTROL)), silent = TRUE)
      if (inherits(ci, "try-error")) next
      r <- ci$random
      fits[[length(fits) + 1]] <- list(
        case = case$name, file = file, method = m, tau2 = res$tau2,
        tau2_ci_low = unname(r["tau^2", "ci.lb"]), tau2_ci_high = unname(r["tau^2", "ci.ub"]),
        i2_ci_low = unname(r["I^2(%)", "ci.lb"]), i2_ci_high = unname(r["I^2(%)", "ci.ub"]),
        lb_sign = ci$lb.sign, ub_sign = ci$ub.sign)
    }
  }
}

# k = 1 with test = "knha": metafor switches to the z test and warns
k1 <- list()
for (case in list(list(yi = 0.3, vi = 0.1), list(yi = -1.2, vi = 0.04))) {
  warns <- character(0)
  res <- withCallingHandlers(rma(case$yi, case$vi, test = "knha"),
                             warning = function(w) { warns <<- c(warns, conditionMessage(w)); invokeRestart("muffleWarning") })
  k1[[length(k1) + 1]] <- list(yi = case$yi, vi = case$vi, estimate = as.numeric(coef(res)), se = res$se,
                               zval = res$zval, pval = res$pval, ci_low = res$ci.lb, ci_high = res$ci.ub,
                               test = res$test, warnings = arr(warns))
}

out <- list(generator = "tests/reference/generate_qprofile_reference.R",
            R_version = R.version.string, metafor_version = as.character(packageVersion("metafor")),
            generated = format(Sys.time(), "%Y-%m-%d"), tau2_max = TAU2_MAX, fits = fits, k1 = k1)
write_json_file(out, OUT_FILE)
message("wrote ", OUT_FILE, ": ", length(fits), " fits")
