# Golden reference values from R metafor (rma.mv, vcalc, aggregate.escalc, robust, anova, confint) and
# clubSandwich (coef_test, Wald_test HTZ) for the Python dependent-effects engine (stats/mv/, vcalc.py, robust.py).
#
# How to run (from the repository root):
#     Rscript tests/reference/generate_rma_mv_reference.R
#
# Requirements: R with metafor (values produced with 3.8-1), metadat, clubSandwich, jsonlite.
#
# Writes: tests/reference/rma_mv_reference.json
#   {generator, R_version, metafor_version, metadat_version, clubSandwich_version, rma_mv_control, notes,
#    cases: {name: {source, data: {column: values}, V_blocks (optional), fits: {fit name: <fit record>},
#            robust: {...}, anova: {...}, ...}}}
#
# rma.mv is fitted with nlminb (control = RMA_MV_CONTROL), then polished to the root of the score equation (see
# polish()); profile-likelihood CIs use confint(..., control = list(tol = 1e-12)) (uniroot). Numbers are
# written with 17 significant digits ("%.17g"); NA/NaN/Inf -> null.

suppressPackageStartupMessages({
  library(metafor)
  library(clubSandwich)
  library(jsonlite)
})
source(file.path("tests", "reference", "reference_json.R"))

OUT_FILE <- file.path("tests", "reference", "rma_mv_reference.json")
source(file.path("tests", "reference", "rma_mv_helpers.R"))

cases <- list()

## dat.konstantopoulos2011: schools within districts (three-level)
message("konstantopoulos2011")
dat <- dat.konstantopoulos2011
dat$year_c <- dat$year - 1985
k3 <- list()
k3$reml_z <- fit_mv(yi, vi, random = ~ 1 | district/school, data = dat)
k3$ml_z <- fit_mv(yi, vi, random = ~ 1 | district/school, data = dat, method = "ML")
k3$reml_t <- fit_mv(yi, vi, random = ~ 1 | district/school, data = dat, test = "t")
k3$reml_t_contain <- fit_mv(yi, vi, random = ~ 1 | district/school, data = dat, test = "t", dfs = "contain")
k3$year_reml_z <- fit_mv(yi, vi, mods = ~ year_c, random = ~ 1 | district/school, data = dat)
k3$year_ml_z <- fit_mv(yi, vi, mods = ~ year_c, random = ~ 1 | district/school, data = dat, method = "ML")
k3$year_reml_t_contain <- fit_mv(yi, vi, mods = ~ year_c, random = ~ 1 | district/school, data = dat,
                                 test = "t", dfs = "contain")
k3$two_level_reml <- fit_mv(yi, vi, random = ~ 1 | study, data = dat)
k3$two_level_ml <- fit_mv(yi, vi, random = ~ 1 | study, data = dat, method = "ML")
# issue 18's slow case: compound symmetry over 56 inner levels (each study its own level within its district)
k3$cs_study_district_reml <- fit_mv(yi, vi, random = ~ factor(study) | district, struct = "CS", data = dat)
# struct AR over 11 inner levels (lags 1..10): schools numbered within their district as the ordered levels
k3$ar_school_district_reml <- fit_mv(yi, vi, random = ~ school | district, struct = "AR", data = dat)
cases$konstantopoulos2011 <- list(
  source = "metadat::dat.konstantopoulos2011",
  data = list(yi = arr(dat$yi), vi = arr(dat$vi), district = arr(dat$district), school = arr(dat$school),
              study = arr(dat$study), year = arr(dat$year)),
  fits = lapply(k3, fit_record),
  profile = list(reml_z = profile_record(k3$reml_z), ml_z = profile_record(k3$ml_z),
                 ar_school_district_reml = profile_record(k3$ar_school_district_reml)),
  robust = list(reml_z = robust_record(k3$reml_z, dat$district),
                year_reml_z = robust_record(k3$year_reml_z, dat$district)),
  anova = list(three_vs_two_reml = anova_record(k3$reml_z, k3$two_level_reml),
               three_vs_two_ml = anova_record(k3$ml_z, k3$two_level_ml),
               year_vs_none_ml = anova_record(k3$year_ml_z, k3$ml_z)))

## dat.assink2016: effect sizes within studies (three-level) with moderators
message("assink2016")
dat <- dat.assink2016
a3 <- list()
a3$reml_z <- fit_mv(yi, vi, random = ~ 1 | study/esid, data = dat)
a3$ml_z <- fit_mv(yi, vi, random = ~ 1 | study/esid, data = dat, method = "ML")
a3$reml_t <- fit_mv(yi, vi, random = ~ 1 | study/esid, data = dat, test = "t")
a3$reml_t_contain <- fit_mv(yi, vi, random = ~ 1 | study/esid, data = dat, test = "t", dfs = "contain")
a3$deltype_reml_z <- fit_mv(yi, vi, mods = ~ factor(deltype), random = ~ 1 | study/esid, data = dat)
a3$deltype_ml_z <- fit_mv(yi, vi, mods = ~ factor(deltype), random = ~ 1 | study/esid, data = dat, method = "ML")
a3$deltype_reml_t_contain <- fit_mv(yi, vi, mods = ~ factor(deltype), random = ~ 1 | study/esid, data = dat,
                                    test = "t", dfs = "contain")
a3$year_reml_t <- fit_mv(yi, vi, mods = ~ year, random = ~ 1 | study/esid, data = dat, test = "t")
a3$year_reml_t_contain <- fit_mv(yi, vi, mods = ~ year, random = ~ 1 | study/esid, data = dat, test = "t",
                                 dfs = "contain")
# nested intercepts and ~ inner | outer together: study intercepts plus delinquency type within study
a3$both_id_reml <- fit_mv(yi, vi, random = list(~ 1 | study, ~ deltype | study), struct = "ID", data = dat)
a3$both_id_ml <- fit_mv(yi, vi, random = list(~ 1 | study, ~ deltype | study), struct = "ID", data = dat,
                        method = "ML")
uni <- rma(yi, vi, data = dat, control = RMA_CONTROL)
uni_mods <- rma(yi, vi, mods = ~ year, data = dat, control = RMA_CONTROL)
cases$assink2016 <- list(
  source = "metadat::dat.assink2016",
  data = list(yi = arr(dat$yi), vi = arr(dat$vi), study = arr(dat$study), esid = arr(dat$esid),
              year = arr(dat$year), deltype = I(dat$deltype)),
  fits = lapply(a3, fit_record),
  profile = list(reml_z = profile_record(a3$reml_z), deltype_reml_z = profile_record(a3$deltype_reml_z)),
  robust = list(reml_z = robust_record(a3$reml_z, dat$study),
                deltype_reml_z = robust_record(a3$deltype_reml_z, dat$study),
                rma_uni = robust_record(uni, dat$study),
                rma_uni_year = robust_record(uni_mods, dat$study)),
  rma_uni = list(intercept = list(tau2 = uni$tau2, b = arr(uni$beta)),
                 year = list(tau2 = uni_mods$tau2, b = arr(uni_mods$beta), X = mat_rows(uni_mods$X))),
  anova = list(deltype_vs_none_ml = anova_record(a3$deltype_ml_z, a3$ml_z)))

## dat.berkey1998: two outcomes per trial with known sampling covariances (multivariate)
message("berkey1998")
dat <- dat.berkey1998
V <- bldiag(lapply(split(dat[c("v1i", "v2i")], dat$trial), as.matrix))
b2 <- list()
for (st in c("UN", "CS", "HCS", "AR")) for (m in c("REML", "ML")) {
  b2[[paste0(tolower(st), "_", tolower(m))]] <- fit_mv(yi, V, mods = ~ outcome - 1, random = ~ outcome | trial,
                                                       struct = st, data = dat, method = m)
}
b2$un_reml_t_contain <- fit_mv(yi, V, mods = ~ outcome - 1, random = ~ outcome | trial, struct = "UN", data = dat,
                               test = "t", dfs = "contain")
dat$year_c <- dat$year - 1983
b2$un_year_reml <- fit_mv(yi, V, mods = ~ outcome + outcome:year_c - 1, random = ~ outcome | trial, struct = "UN",
                          data = dat)
cases$berkey1998 <- list(
  source = "metadat::dat.berkey1998",
  data = list(yi = arr(dat$yi), trial = arr(dat$trial), outcome = I(dat$outcome), year = arr(dat$year),
              v1i = arr(dat$v1i), v2i = arr(dat$v2i)),
  fits = lapply(b2, fit_record),
  profile = list(un_reml = profile_record(b2$un_reml), cs_reml = profile_record(b2$cs_reml)),
  robust = list(un_reml = robust_record(b2$un_reml, dat$trial)),
  anova = list(un_vs_cs_reml = anova_record(b2$un_reml, b2$cs_reml),
               hcs_vs_cs_ml = anova_record(b2$hcs_ml, b2$cs_ml)))

## dat.knapp2017: several patient groups against one control group (vcalc), task/difficulty correlations
message("knapp2017")
dat <- dat.knapp2017
dat$task.diff <- unlist(lapply(split(dat, dat$study), function(x) {
  task.int <- as.integer(factor(x$task))
  diff.int <- as.integer(factor(x$difficulty))
  diff.int[is.na(diff.int)] <- 1
  paste0(task.int, ".", diff.int)}))
R <- matrix(0.4, nrow = 8, ncol = 8)
R[5:8, 1:4] <- R[1:4, 5:8] <- 0.28
diag(R[1:4, 5:8]) <- 0.7
diag(R[5:8, 1:4]) <- 0.7
diag(R) <- 1
rownames(R) <- colnames(R) <- paste0(rep(1:2, each = 4), ".", 1:4)
V_R <- vcalc(vi, cluster = study, grp1 = group1, grp2 = group2, w1 = n_sz, w2 = n_hc, obs = task.diff, rho = R,
             data = dat)
V_shared <- vcalc(vi, cluster = study, grp1 = group1, grp2 = group2, w1 = n_sz, w2 = n_hc, data = dat)
V_rho <- vcalc(vi, cluster = study, obs = task.diff, rho = 0.6, data = dat)
blocks <- function(V) lapply(split(seq_len(nrow(dat)), dat$study), function(i) mat_rows(V[i, i, drop = FALSE]))
nk <- list()
nk$reml_z <- fit_mv(yi, V_R, random = ~ 1 | study/comp, data = dat)
nk$reml_t <- fit_mv(yi, V_R, random = ~ 1 | study/comp, data = dat, test = "t")
es <- escalc(measure = "SMD", yi = yi, vi = vi, data = dat)
agg_V <- aggregate(es, cluster = study, V = V_R)
agg_rho <- aggregate(es, cluster = study, rho = 0.6)
agg_unw <- aggregate(es, cluster = study, V = V_R, weighted = FALSE)
cases$knapp2017 <- list(
  source = "metadat::dat.knapp2017 (vcalc example of metafor's help page)",
  data = list(yi = arr(dat$yi), vi = arr(dat$vi), study = arr(dat$study), comp = arr(dat$comp),
              group1 = I(dat$group1), group2 = I(dat$group2), n_sz = arr(dat$n_sz), n_hc = arr(dat$n_hc),
              task_diff = I(dat$task.diff)),
  R = list(names = I(rownames(R)), rows = mat_rows(R)),
  vcalc = list(shared_R = blocks(V_R), shared = blocks(V_shared), rho = blocks(V_rho)),
  fits = lapply(nk, fit_record),
  robust = list(reml_z = robust_record(nk$reml_z, dat$study)),
  aggregate = list(V = list(yi = arr(agg_V$yi), vi = arr(agg_V$vi)),
                   rho = list(yi = arr(agg_rho$yi), vi = arr(agg_rho$vi)),
                   unweighted = list(yi = arr(agg_unw$yi), vi = arr(agg_unw$vi))))

out <- list(
  generator = "tests/reference/generate_rma_mv_reference.R",
  R_version = R.version.string,
  metafor_version = as.character(packageVersion("metafor")),
  metadat_version = as.character(packageVersion("metadat")),
  clubSandwich_version = as.character(packageVersion("clubSandwich")),
  rma_mv_control = RMA_MV_CONTROL, rma_control = RMA_CONTROL,
  notes = "rma.mv fits with nlminb under rma_mv_control; confint() with control = list(tol = 1e-12)",
  cases = cases)
write_json_file(out, OUT_FILE)
message("wrote ", OUT_FILE)
