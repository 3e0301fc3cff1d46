# metafor's pooled SMD of the default config's treatment_smd analysis (issue 19): anti-inflammatory agents vs placebo
# in adults with MDD, depression score, from data/raw/antiinflammatory_mdd_trials.csv.
#
# How to run (from the repository root):
#     Rscript tests/reference/generate_treatment_reference.R
#
# Requirements: R with metafor (values produced with 3.8-1), jsonlite.
#
# The rows that can be pooled as an SMD (config/config.yaml, treatment_smd; data/raw/README.md): Mischoulon 2009
# (endpoint HDRS-17 means, SDs and n per arm: escalc SMD) and Husain 2017 (a standardised effect size -1.21 with
# n 21/20 read as Cohen's d: escalc SMD with di=, which applies Hedges' correction as metarepro does). Treatment is
# group 1. The test (tests/pipeline/test_treatment.py) checks that metarepro pools exactly these lines.
#
# Writes tests/reference/treatment_reference.json. Fits use control = list(threshold = 1e-13, tol = 1e-13,
# maxiter = 10000).

suppressPackageStartupMessages({
  library(metafor)
  library(jsonlite)
})
source(file.path("tests", "reference", "reference_json.R"))

OUT_FILE <- file.path("tests", "reference", "treatment_reference.json")
CTRL <- list(threshold = 1e-13, tol = 1e-13, maxiter = 10000)

sheet <- read.csv(file.path("data", "raw", "antiinflammatory_mdd_trials.csv"), stringsAsFactors = FALSE,
                  check.names = FALSE)
sheet$line <- seq_len(nrow(sheet)) + 1L  # the header is line 1 (no cell of this sheet spans lines)
score <- sheet[sheet$outcome == "score" & sheet$eligible_mdd == "yes", ]
mis <- score[score$study_id == "Mischoulon2009", ]
hus <- score[score$study_id == "Husain2017", ]
stopifnot(nrow(mis) == 1, nrow(hus) == 1)

summary_es <- escalc("SMD", m1i = mean_treatment, sd1i = sd_treatment, n1i = n_treatment, m2i = mean_placebo,
                     sd2i = sd_placebo, n2i = n_placebo, data = mis)
d_es <- escalc("SMD", di = smd, n1i = n_treatment, n2i = n_placebo, data = hus)
es <- rbind(d_es[, c("line", "study_id", "yi", "vi")], summary_es[, c("line", "study_id", "yi", "vi")])
es <- es[order(es$line), ]

record <- function(test, method = "REML") {
  fit <- rma(yi, vi, data = es, method = method, test = test, control = CTRL)
  list(k = fit$k, beta = as.numeric(fit$beta), se = fit$se, pval = fit$pval, ci_lb = fit$ci.lb, ci_ub = fit$ci.ub,
       tau2 = fit$tau2, I2 = fit$I2, QE = fit$QE)
}

write_json_file(list(
  generator = "tests/reference/generate_treatment_reference.R",
  R_version = R.version.string,
  metafor_version = as.character(packageVersion("metafor")),
  rma_control = CTRL,
  lines = arr(es$line), study_id = arr(es$study_id), yi = arr(as.numeric(es$yi)), vi = arr(as.numeric(es$vi)),
  reml_knha = record("knha"),
  reml_z = record("z")
), OUT_FILE)
