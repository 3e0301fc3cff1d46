# metafor's rma() called as a new user calls it, for tests/stats/test_api.py (metarepro.rma with sei=, mods=, intercept=).
#
# How to run (from the repository root):
#     Rscript tests/reference/generate_api_reference.R
#
# Requirements: R with metafor (values produced with 3.8-1), metadat, jsonlite.
#
# Writes tests/reference/api_reference.json: {generator, R_version, metafor_version, control, data: {...},
# fits: {name: {call, confint: {rows, estimate, ci_lb, ci_ub} (confint(res)$random), names, b, se, zval, pval, ci_lb, ci_ub, tau2, se_tau2, QE, QEp, QM, QMp, QMdf, I2, H2, R2,
# k, p}}}. Fits use control = list(threshold = 1e-13, tol = 1e-13, maxiter = 10000).

suppressPackageStartupMessages({
  library(metafor)
  library(metadat)
  library(jsonlite)
})
source(file.path("tests", "reference", "reference_json.R"))

CTRL <- list(threshold = 1e-13, tol = 1e-13, maxiter = 10000)
norm <- escalc("SMD", m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i, n2i = n2i, data = dat.normand1999)
knapp <- dat.knapp2017[!is.na(dat.knapp2017$difficulty), ]
difficulty <- knapp$difficulty
year <- knapp$year

record <- function(call, res) {
  ci <- confint(res, control = CTRL)$random  # Q-profile CIs of tau^2, tau, I^2 and H^2
  list(call = call, confint = list(rows = rownames(ci), estimate = arr(ci[, "estimate"]), ci_lb = arr(ci[, "ci.lb"]),
                                   ci_ub = arr(ci[, "ci.ub"])), names = rownames(res$beta), b = arr(as.numeric(res$beta)), se = arr(res$se),
       zval = arr(res$zval), pval = arr(res$pval), ci_lb = arr(res$ci.lb), ci_ub = arr(res$ci.ub), tau2 = res$tau2,
       se_tau2 = res$se.tau2, QE = res$QE, QEp = res$QEp, QM = res$QM, QMp = res$QMp, QMdf = arr(res$QMdf),
       I2 = res$I2, H2 = res$H2, R2 = if (is.null(res$R2)) NA else res$R2, k = res$k, p = res$p)
}

fits <- list(
  sei_reml = record("rma(yi, sei = sqrt(vi), data = norm)", rma(yi, sei = sqrt(vi), data = norm, control = CTRL)),
  sei_dl_knha = record("rma(yi, sei = sqrt(vi), data = norm, method = 'DL', test = 'knha')",
                       rma(yi, sei = sqrt(vi), data = norm, method = "DL", test = "knha", control = CTRL)),
  mods_vector_reml_knha = record("rma(yi, vi, mods = difficulty, test = 'knha')",
                                 rma(knapp$yi, knapp$vi, mods = difficulty, test = "knha", control = CTRL)),
  mods_vector_reml_z = record("rma(yi, vi, mods = difficulty)", rma(knapp$yi, knapp$vi, mods = difficulty, control = CTRL)),
  mods_vector_no_intercept = record("rma(yi, vi, mods = difficulty, intercept = FALSE)",
                                    rma(knapp$yi, knapp$vi, mods = difficulty, intercept = FALSE, control = CTRL)),
  mods_matrix_sei_ml = record("rma(yi, sei = sqrt(vi), mods = cbind(difficulty, year), method = 'ML')",
                              rma(knapp$yi, sei = sqrt(knapp$vi), mods = cbind(difficulty, year), method = "ML",
                                  control = CTRL))
)

write_json_file(list(
  generator = "tests/reference/generate_api_reference.R",
  R_version = R.version.string,
  metafor_version = as.character(packageVersion("metafor")),
  control = CTRL,
  data = list(normand1999 = list(yi = arr(as.numeric(norm$yi)), vi = arr(as.numeric(norm$vi))),
              knapp2017 = list(yi = arr(knapp$yi), vi = arr(knapp$vi), difficulty = arr(difficulty), year = arr(year))),
  fits = fits
), file.path("tests", "reference", "api_reference.json"))
