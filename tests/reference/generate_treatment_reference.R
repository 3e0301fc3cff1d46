# metafor's pooled SMD of the default config's treatment_smd analysis (issue 19): anti-inflammatory agents vs placebo
# in adults with MDD, depression score, from data/raw/antiinflammatory_mdd_trials.csv.
#
# How to run (from the repository root):
#     Rscript tests/reference/generate_treatment_reference.R
#
# Requirements: R with metafor (values produced with 3.8-1), jsonlite.
#
# The one row that can be pooled as an SMD (config/config.yaml, treatment_smd, says why the others cannot):
# Mischoulon 2009, endpoint HDRS-17 means, SDs and n per arm (escalc SMD), treatment as group 1. With k = 1 metafor
# sets test = "z" (and tau2 = 0), as metarepro does. For comparison, the pool the sheet's printed effect sizes would
# give if Husain 2017's -1.21 (n 21/20) were read as Cohen's d (escalc SMD with di=) is written as
# with_husain2017 (not the default analysis: see the config's comment). The test (tests/pipeline/test_treatment.py)
# checks that metarepro pools exactly Mischoulon 2009's line.
#
# The response analyses (treatment_response_rr, treatment_response_or): the adult-MDD response rows with events and
# n in both arms, leaving out rows whose analysis_set starts with "subgroup" (data/raw/README.md: not the randomised
# comparison; Raison 2013's hs-CRP > 5 mg/L subgroup); escalc RR and OR (add = 1/2, to = "only0": no zero cell
# here), rma REML with test knha and z; and rma.mh for comparison.
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
both <- rbind(d_es[, c("line", "study_id", "yi", "vi")], summary_es[, c("line", "study_id", "yi", "vi")])
both <- both[order(both$line), ]
es <- summary_es

record <- function(test, method = "REML", data = es) {
  fit <- suppressWarnings(rma(yi, vi, data = data, method = method, test = test, control = CTRL))
  list(k = fit$k, beta = as.numeric(fit$beta), se = fit$se, pval = fit$pval, ci_lb = fit$ci.lb, ci_ub = fit$ci.ub,
       tau2 = fit$tau2, I2 = fit$I2, QE = fit$QE)
}

resp <- sheet[sheet$outcome == "response" & sheet$eligible_mdd == "yes", ]
resp <- resp[!is.na(resp$events_treatment) & !is.na(resp$events_placebo) & !is.na(resp$n_treatment) &
             !is.na(resp$n_placebo) & !startsWith(resp$analysis_set, "subgroup"), ]
response <- function(measure) {
  es_b <- escalc(measure, ai = events_treatment, n1i = n_treatment, ci = events_placebo, n2i = n_placebo,
                 data = resp)
  mh <- rma.mh(ai = events_treatment, n1i = n_treatment, ci = events_placebo, n2i = n_placebo, data = resp,
               measure = measure)
  list(lines = arr(es_b$line), study_id = arr(es_b$study_id), yi = arr(as.numeric(es_b$yi)),
       vi = arr(as.numeric(es_b$vi)), reml_knha = record("knha", data = es_b), reml_z = record("z", data = es_b),
       mh = list(k = mh$k, beta = as.numeric(mh$beta), se = mh$se, ci_lb = mh$ci.lb, ci_ub = mh$ci.ub,
                 pval = mh$pval, QE = mh$QE, I2 = mh$I2))
}

write_json_file(list(
  generator = "tests/reference/generate_treatment_reference.R",
  R_version = R.version.string,
  metafor_version = as.character(packageVersion("metafor")),
  rma_control = CTRL,
  lines = arr(es$line), study_id = arr(es$study_id), yi = arr(as.numeric(es$yi)), vi = arr(as.numeric(es$vi)),
  reml_knha = record("knha"),
  reml_z = record("z"),
  with_husain2017 = c(list(lines = arr(both$line), yi = arr(as.numeric(both$yi)), vi = arr(as.numeric(both$vi))),
                      list(reml_knha = record("knha", data = both), reml_z = record("z", data = both))),
  response_RR = response("RR"),
  response_OR = response("OR")
), OUT_FILE)
