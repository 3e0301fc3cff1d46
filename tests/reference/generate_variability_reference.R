# metafor's lnCVR and lnVR of the default config's CRP rows, and their pooled fits (issue 19: measure CVR/VR from a
# config, checked against R).
#
# How to run (from the repository root):
#     Rscript tests/reference/generate_variability_reference.R
#
# Requirements: R with metafor (values produced with 3.8-1; metafor >= 5.0 adds a bias correction to CVR's yi by
# default, see src/metarepro/stats/effects.py), jsonlite.
#
# Rows: data/raw/cytokines_mdd.csv, marker CRP, those reporting n, mean and SD in both groups as the sheet prints them
# (what an analysis with exclude_converted: true pools), without CaoJ2021, which metarepro excludes because its SD
# is below what its own subgroup means allow (data/raw/README.md, "arithmetic impossibilities"). No two of these rows
# share a study_id (checked below). The test (tests/pipeline/test_variability.py) checks that metarepro pools the same
# lines.
#
# Writes tests/reference/variability_reference.json. Fits use control = list(threshold = 1e-13, tol = 1e-13,
# maxiter = 10000).

suppressPackageStartupMessages({
  library(metafor)
  library(jsonlite)
})
source(file.path("tests", "reference", "reference_json.R"))

OUT_FILE <- file.path("tests", "reference", "variability_reference.json")
CTRL <- list(threshold = 1e-13, tol = 1e-13, maxiter = 10000)
SUMMARY <- c("n_cases", "mean_cases", "sd_cases", "n_controls", "mean_controls", "sd_controls")

sheet <- read.csv(file.path("data", "raw", "cytokines_mdd.csv"), stringsAsFactors = FALSE, check.names = FALSE)
sheet$line <- seq_len(nrow(sheet)) + 1L  # the header is line 1 (no cell of this sheet spans lines)
crp <- sheet[sheet$marker == "CRP" & complete.cases(sheet[, SUMMARY]) & sheet$study_id != "CaoJ2021", ]
stopifnot(!anyDuplicated(crp$study_id))

fit_record <- function(measure, test) {
  es <- escalc(measure, n1i = n_cases, m1i = mean_cases, sd1i = sd_cases, n2i = n_controls, m2i = mean_controls,
               sd2i = sd_controls, data = crp)
  fit <- rma(yi, vi, data = es, method = "REML", test = test, control = CTRL)
  back <- predict(fit, transf = exp)
  list(lines = arr(crp$line), yi = arr(as.numeric(es$yi)), vi = arr(as.numeric(es$vi)), k = fit$k,
       beta = as.numeric(fit$beta), se = fit$se, pval = fit$pval, ci_lb = fit$ci.lb, ci_ub = fit$ci.ub,
       tau2 = fit$tau2, I2 = fit$I2, QE = fit$QE, pred_ratio = back$pred, ci_lb_ratio = back$ci.lb,
       ci_ub_ratio = back$ci.ub, pi_lb_ratio = back$pi.lb, pi_ub_ratio = back$pi.ub)
}

write_json_file(list(
  generator = "tests/reference/generate_variability_reference.R",
  R_version = R.version.string,
  metafor_version = as.character(packageVersion("metafor")),
  rma_control = CTRL,
  crp_cvr_knha = fit_record("CVR", "knha"),
  crp_cvr_z = fit_record("CVR", "z"),
  crp_vr_knha = fit_record("VR", "knha")
), OUT_FILE)
