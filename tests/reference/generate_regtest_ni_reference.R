# metafor's regtest with the sample-size predictors (ni, ninv, sqrtni, sqrtninv; Peters-type tests of funnel asymmetry
# for 2x2 tables, issue 19) on dat.linde2005's response counts (data/raw/linde2005_st_johns_wort.csv), log odds ratios
# from escalc (add = 1/2, to = "only0"), ni = n1i + n2i (the sizes escalc attaches), both models: "rma" (REML, z) and
# "lm" (weighted least squares, weights 1/vi).
#
# How to run (from the repository root):
#     Rscript tests/reference/generate_regtest_ni_reference.R
#
# Requirements: R with metafor (values produced with 3.8-1), jsonlite. Writes tests/reference/regtest_ni_reference.json.
# Fits use control = list(threshold = 1e-13, tol = 1e-13, maxiter = 10000).

suppressPackageStartupMessages({
  library(metafor)
  library(jsonlite)
})
source(file.path("tests", "reference", "reference_json.R"))

OUT_FILE <- file.path("tests", "reference", "regtest_ni_reference.json")
CTRL <- list(threshold = 1e-13, tol = 1e-13, maxiter = 10000)

dat <- read.csv(file.path("data", "raw", "linde2005_st_johns_wort.csv"))
es <- escalc("OR", ai = ai, n1i = n1i, ci = ci, n2i = n2i, data = dat)
es <- es[!is.na(es$yi), ]
ni <- es$n1i + es$n2i

cases <- list()
for (model in c("rma", "lm")) {
  for (predictor in c("ni", "ninv", "sqrtni", "sqrtninv")) {
    r <- if (model == "rma") {
      regtest(rma(yi, vi, data = es, method = "REML", control = CTRL), model = "rma", predictor = predictor, ni = ni)
    } else {
      regtest(es$yi, es$vi, ni = ni, model = "lm", predictor = predictor)
    }
    cases[[paste(model, predictor, sep = "_")]] <- list(
      zval = r$zval, pval = r$pval, dfs = if (is.null(r$dfs)) NA else r$dfs,
      est = if (is.null(r$est)) NA else r$est, ci_lb = if (is.null(r$ci.lb)) NA else r$ci.lb,
      ci_ub = if (is.null(r$ci.ub)) NA else r$ci.ub)
  }
}

write_json_file(list(
  generator = "tests/reference/generate_regtest_ni_reference.R",
  R_version = R.version.string,
  metafor_version = as.character(packageVersion("metafor")),
  rma_control = CTRL,
  yi = arr(as.numeric(es$yi)), vi = arr(as.numeric(es$vi)), ni = arr(ni),
  cases = cases
), OUT_FILE)
