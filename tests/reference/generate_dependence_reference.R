# Reference values from R metafor (rma.mv, vcalc, aggregate.escalc, confint, robust) and clubSandwich for the
# pipeline's dependent analyses (config key dependence; src/metarepro/jobs/dependence.py), fitted to exactly the
# rows the pipeline pools.
#
# How to run (from the repository root):
#     .venv/bin/python tests/reference/export_dependence_rows.py   # the pipeline's rows -> tests/data/dependence_*.csv
#     Rscript tests/reference/generate_dependence_reference.R
#
# Requirements: R with metafor (values produced with 3.8-1), clubSandwich, jsonlite.
#
# Writes: tests/reference/dependence_reference.json
#   {generator, R_version, metafor_version, clubSandwich_version, cases: {name: {rows, model, fit, profile, robust,
#    (aggregated)}}}
#
# Cases:
#   il6_smd_multilevel (config/config.yaml): rma.mv(yi, V, random = ~ 1 | study_id/line, test = "t") with
#     V = vcalc(vi, cluster = study_id, grp1 = line, grp2 = "controls", w1 = n_cases, w2 = n_controls)
#     (each row its own case group, all rows of a study against one control group), robust CR1 and CR2;
#   il6_aggregate: the same rows, aggregate(cluster = study_id, rho = 0.6), rma(method = "REML", test = "knha"),
#     robust(clubSandwich = TRUE) over the aggregated studies;
#   multivariate_il6_tnf_crp: rma.mv(yi, V, mods = ~ 0 + marker, random = ~ marker | study_id, struct = "HCS")
#     with V = vcalc(vi, cluster = study_id, obs = line, rho = 0.5), robust CR1.
# rma.mv fits are polished to the root of the score equation (rma_mv_helpers.R); rma uses RMA_CONTROL.

suppressPackageStartupMessages({
  library(metafor)
  library(clubSandwich)
  library(jsonlite)
})
source(file.path("tests", "reference", "reference_json.R"))
source(file.path("tests", "reference", "rma_mv_helpers.R"))

OUT_FILE <- file.path("tests", "reference", "dependence_reference.json")
read_rows <- function(name) {
  d <- read.csv(file.path("tests", "data", paste0("dependence_", name, ".csv")),
                colClasses = c(study_id = "character", marker = "character"))
  d$line <- factor(d$line)
  d
}
cases <- list()

message("il6_smd_multilevel")
d <- read_rows("il6_smd_multilevel")
V <- vcalc(vi, cluster = study_id, grp1 = line, grp2 = rep("controls", nrow(d)), w1 = n_cases, w2 = n_controls,
           data = d)
ml <- fit_mv(yi, V, random = ~ 1 | study_id/line, data = d, test = "t")
cases$il6_smd_multilevel <- list(rows = nrow(d), fit = fit_record(ml), profile = profile_record(ml),
                                 robust = robust_record(ml, d$study_id),
                                 weights_rowsum = arr(weights(ml$free_fit, type = "rowsum")))

message("il6_aggregate")
es <- escalc(measure = "SMD", yi = yi, vi = vi, data = d)
agg <- aggregate(es, cluster = study_id, rho = 0.6)
ra <- rma(yi, vi, data = agg, method = "REML", test = "knha", control = RMA_CONTROL)
rb <- robust(ra, cluster = agg$study_id, clubSandwich = TRUE)
cases$il6_aggregate <- list(
  rows = nrow(d), aggregated = list(study_id = I(agg$study_id), yi = arr(agg$yi), vi = arr(agg$vi)),
  fit = list(b = ra$b[[1]], se = ra$se, pval = ra$pval, ci_lb = ra$ci.lb, ci_ub = ra$ci.ub, tau2 = ra$tau2,
             I2 = ra$I2, QE = ra$QE, pi_lb = predict(ra)$pi.lb, pi_ub = predict(ra)$pi.ub),
  robust = list(b = rb$beta[[1]], se = rb$se, dfs = rb$dfs, pval = rb$pval, ci_lb = rb$ci.lb, ci_ub = rb$ci.ub))

message("multivariate_il6_tnf_crp")
d <- read_rows("multivariate_il6_tnf_crp")
V <- vcalc(vi, cluster = study_id, obs = line, rho = 0.5, data = d)
mv <- fit_mv(yi, V, mods = ~ 0 + marker, random = ~ marker | study_id, struct = "HCS", data = d)
cases$multivariate_il6_tnf_crp <- list(rows = nrow(d), fit = fit_record(mv), profile = profile_record(mv),
                                       robust = robust_record(mv, d$study_id))

write_json_file(list(generator = "tests/reference/generate_dependence_reference.R", R_version = R.version.string,
                     metafor_version = as.character(packageVersion("metafor")),
                     clubSandwich_version = as.character(packageVersion("clubSandwich")), cases = cases), OUT_FILE)
message("wrote ", OUT_FILE)
