# metafor's meta-regression when every yi is equal (residual sum of squares 0): with test = "knha" the
# Knapp-Hartung scale s2 is 0, so every se is 0, t is Inf, p is 0, the CI is the estimate, and metafor
# reports the omnibus QM and its p as NA (the scaled covariance matrix cannot be inverted).
#
# How to run (from the repository root):
#     Rscript tests/reference/generate_degenerate_metareg_reference.R
#
# Writes: tests/reference/degenerate_metareg_reference.json
#   {generator, R_version, metafor_version, generated, fits: [{name, yi, vi, x, method, test, beta, se, zval,
#    pval, ci_lb, ci_ub, tau2, QE, QM, QMp, s2w}]}

suppressPackageStartupMessages({
  library(metafor)
  library(jsonlite)
})
source(file.path("tests", "reference", "reference_json.R"))

OUT_FILE <- file.path("tests", "reference", "degenerate_metareg_reference.json")
RMA_CONTROL <- list(threshold = 1e-13, tol = 1e-13, maxiter = 10000)

cases <- list(
  list(name = "equal_yi_slope", yi = rep(0.3, 6), vi = c(0.01, 0.02, 0.03, 0.04, 0.05, 0.06), x = 0:5),
  list(name = "equal_yi_negative", yi = rep(-1.25, 5), vi = c(0.2, 0.1, 0.4, 0.3, 0.25), x = c(1990, 1995, 2003, 2010, 2021))
)
fits <- list()
for (case in cases) {
  for (method in c("REML", "DL")) {
    for (test in c("knha", "z")) {
      r <- rma(case$yi, case$vi, mods = ~ case$x, method = method, test = test, control = RMA_CONTROL)
      fits[[length(fits) + 1]] <- list(
        name = case$name, yi = arr(case$yi), vi = arr(case$vi), x = arr(case$x), method = method, test = test,
        beta = arr(as.numeric(r$beta)), se = arr(r$se), zval = arr(r$zval), pval = arr(r$pval),
        ci_lb = arr(r$ci.lb), ci_ub = arr(r$ci.ub), tau2 = r$tau2, QE = r$QE, QM = r$QM, QMp = r$QMp,
        s2w = r$s2w
      )
    }
  }
}
write_json_file(list(
  generator = "tests/reference/generate_degenerate_metareg_reference.R",
  R_version = R.version.string, metafor_version = as.character(packageVersion("metafor")),
  generated = format(Sys.Date()), fits = fits
), OUT_FILE)
