# Golden reference values from R metafor (rma.mv, vcalc, aggregate.escalc, robust, anova, confint) and
# clubSandwich (coef_test, Wald_test HTZ) for the Python dependent-effects engine (rma_mv.py, vcalc.py, robust.py).
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
RMA_MV_CONTROL <- list(optimizer = "nlminb", iter.max = 10000, eval.max = 10000)  # tightened by polish()
RMA_CONTROL <- list(threshold = 1e-13, tol = 1e-13, maxiter = 10000)

mat_rows <- function(m) lapply(seq_len(nrow(m)), function(i) arr(unname(m[i, ])))

fit_record <- function(res) {
  free <- res$free_fit
  pol <- res$polish
  fs <- res$fit.stats
  rec <- list(
    method = res$method, test = res$test, dfs = if (is.null(res$dfs)) NA else res$dfs,
    k = res$k, p = res$p, X_names = I(colnames(res$X)), X = mat_rows(res$X),
    b = arr(res$beta), se = arr(res$se), zval = arr(res$zval), pval = arr(res$pval),
    ci_lb = arr(res$ci.lb), ci_ub = arr(res$ci.ub), vb = mat_rows(res$vb),
    ddf = arr(res$ddf), btt = arr(res$btt),
    QM = res$QM, QMdf = arr(res$QMdf), QMp = res$QMp, QE = res$QE, QEp = res$QEp,
    sigma2 = if (res$withS) arr(res$sigma2) else NULL, s_nlevels = if (res$withS) arr(res$s.nlevels) else NULL,
    tau2 = if (res$withG) arr(res$tau2) else NULL, rho = if (res$withG) arr(res$rho) else NULL,
    G = if (res$withG) mat_rows(res$G) else NULL, g_levels_f = if (res$withG) I(res$g.levels.f[[1]]) else NULL,
    fit_stats = list(ML = as.list(setNames(fs$ML, rownames(fs))), REML = as.list(setNames(fs$REML, rownames(fs)))),
    free = list(sigma2 = if (res$withS) arr(free$sigma2) else NULL, tau2 = if (res$withG) arr(free$tau2) else NULL,
                rho = if (res$withG) arr(free$rho) else NULL, b = arr(free$beta), se = arr(free$se),
                logLik = as.numeric(logLik(free)), AIC = AIC(free), BIC = BIC(free), AICc = fitstats(free)[["AICc:", 1]],
                parms = free$parms),
    polish = list(iterations = pol$iterations, score = arr(pol$score), last_step = pol$last_step),
    logLik = as.numeric(logLik(res)))
  # predictions at every row of the design (newmods without the intercept column when there is one), with
  # each inner level's tau^2 for HCS/DIAG/UN
  Xn <- if (res$int.incl) res$X[, -1, drop = FALSE] else res$X
  lv <- if (res$withG && length(res$tau2) > 1) seq_len(nrow(Xn)) %% length(res$tau2) + 1 else NULL
  pr <- if (res$int.only) predict(res, tau2.levels = lv[1]) else predict(res, newmods = unname(Xn), tau2.levels = lv)
  rec$predict <- list(tau2_level = if (is.null(lv)) NULL else arr(lv), pred = arr(pr$pred), se = arr(pr$se),
                      ci_lb = arr(pr$ci.lb), ci_ub = arr(pr$ci.ub), pi_lb = arr(pr$pi.lb), pi_ub = arr(pr$pi.ub))
  # I2 as in Viechtbauer's FAQ ("I^2 for multilevel and multivariate models"): per sigma^2 level and in total
  # for multilevel models, per tau^2 for multivariate ones
  W <- solve(res$V)
  X <- model.matrix(res)
  P <- W - W %*% X %*% solve(t(X) %*% W %*% X) %*% t(X) %*% W
  typical <- (res$k - res$p) / sum(diag(P))
  if (res$withS && !res$withG)
    rec$I2 <- list(total = 100 * sum(res$sigma2) / (sum(res$sigma2) + typical),
                   levels = arr(100 * res$sigma2 / (sum(res$sigma2) + typical)), typical_vi = typical)
  if (res$withG && !res$withS)
    rec$I2 <- list(levels = arr(100 * res$tau2 / (res$tau2 + typical)), typical_vi = typical)
  rec
}

# nlminb uses only log-likelihood values, which fix the optimum only to about sqrt(EPS) relative (optimizers
# differ in the 8th digit). polish() therefore solves the score equation: Newton steps on the free variance
# components (log variances, atanh correlations) with the gradient and Hessian of metafor's own log-likelihood
# from Richardson-extrapolated central differences (refits with the components fixed), until the step is
# below 1e-11. The polished record is metafor's fit with the components fixed at that root.
free_rho <- function(res) res$withG && length(res$rho) && !all(res$vc.fix$rho)  # ID/DIAG fix rho at 0
vc_free <- function(res) {
  th <- c(if (res$withS) log(res$sigma2), if (res$withG) log(res$tau2), if (free_rho(res)) atanh(res$rho))
  th
}
vc_fixed_fit <- function(res, th) {
  ns <- if (res$withS) length(res$sigma2) else 0
  nt <- if (res$withG) length(res$tau2) else 0
  args <- list()
  if (ns) args$sigma2 <- exp(th[seq_len(ns)])
  if (nt) args$tau2 <- exp(th[ns + seq_len(nt)])
  if (free_rho(res)) args$rho <- tanh(th[-seq_len(ns + nt)])
  do.call(update, c(list(res), args), envir = globalenv())
}
polish <- function(res) {
  th <- vc_free(res)
  q <- length(th)
  ll <- function(t) as.numeric(logLik(vc_fixed_fit(res, t)))
  grad_hess <- function(t, h = 1e-3) {
    d1 <- function(t, i, h) { e <- replace(numeric(q), i, h); (ll(t + e) - ll(t - e)) / (2 * h) }
    g <- sapply(seq_len(q), function(i) (4 * d1(t, i, h / 2) - d1(t, i, h)) / 3)
    H <- matrix(0, q, q)
    for (i in seq_len(q)) for (j in seq_len(q)) {
      ei <- replace(numeric(q), i, h); ej <- replace(numeric(q), j, h)
      H[i, j] <- (ll(t + ei + ej) - ll(t + ei - ej) - ll(t - ei + ej) + ll(t - ei - ej)) / (4 * h^2)
    }
    list(g = g, H = (H + t(H)) / 2)
  }
  # the difference quotients carry ~EPS*|ll|/h of rounding, so the attainable step is ~1e-11..1e-10
  for (it in 1:30) {
    gh <- grad_hess(th)
    step <- -solve(gh$H, gh$g)
    th <- th + step
    if (max(abs(step)) < 1e-11) break
  }
  if (max(abs(step)) >= 1e-9) stop("polish() did not converge")
  if (ll(th) < as.numeric(logLik(res)) - 1e-12 * abs(as.numeric(logLik(res)))) stop("polish() lowered the likelihood")
  fit <- vc_fixed_fit(res, th)
  list(fit = fit, score = gh$g, iterations = it, last_step = max(abs(step)))
}
# The polished fit (components fixed at the root of the score equation) with the free nlminb fit attached.
fit_mv <- function(...) {
  free <- eval.parent(substitute(rma.mv(..., control = RMA_MV_CONTROL)))  # keeps rma.mv's lookup in data
  pol <- polish(free)
  res <- pol$fit
  res$free_fit <- free
  res$polish <- pol[c("score", "iterations", "last_step")]
  res
}

profile_record <- function(res) {
  ci <- confint(res$free_fit, control = list(tol = 1e-12))
  one <- function(x) list(estimate = x$random[, "estimate"], ci_lb = x$random[, "ci.lb"],
                          ci_ub = x$random[, "ci.ub"], names = I(rownames(x$random)))
  parts <- if (!is.null(ci$random)) list(ci) else Filter(function(x) is.list(x) && !is.null(x$random), unclass(ci))
  lapply(parts, one)
}

robust_record <- function(res, cluster) {
  cr1 <- robust(res, cluster = cluster)
  cr2 <- robust(res, cluster = cluster, clubSandwich = TRUE)
  one <- function(r) list(vbest = r$vbest, b = arr(r$beta), se = arr(r$se), zval = arr(r$zval), pval = arr(r$pval),
                          ci_lb = arr(r$ci.lb), ci_ub = arr(r$ci.ub), vb = mat_rows(r$vb), dfs = arr(r$dfs),
                          QM = r$QM, QMdf = arr(r$QMdf), QMp = r$QMp, n = r$n)
  vcr2 <- vcovCR(res, cluster = cluster, type = "CR2")
  ct <- coef_test(res, vcov = vcr2, cluster = cluster, test = "Satterthwaite")
  out <- list(CR1 = one(cr1), CR2 = one(cr2),
              coef_test = list(beta = arr(ct$beta), SE = arr(ct$SE), tstat = arr(ct$tstat), df = arr(ct$df_Satt),
                               p_Satt = arr(ct$p_Satt)),
              vcovCR2 = mat_rows(as.matrix(vcr2)))
  if (!res$int.only) {
    wt <- Wald_test(res, constraints = constrain_zero(res$btt), vcov = vcr2, cluster = cluster, test = "HTZ")
    out$Wald_test <- list(btt = arr(res$btt), Fstat = wt$Fstat, delta = wt$delta, df_num = wt$df_num,
                          df_denom = wt$df_denom, p_val = wt$p_val)
  }
  out
}

anova_record <- function(full, reduced) {
  a <- anova(full$free_fit, reduced$free_fit)
  list(LRT = a$LRT, df = a$parms.f - a$parms.r, pval = a$pval, ll_f = a$fit.stats.f[["ll"]], ll_r = a$fit.stats.r[["ll"]])
}

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
cases$konstantopoulos2011 <- list(
  source = "metadat::dat.konstantopoulos2011",
  data = list(yi = arr(dat$yi), vi = arr(dat$vi), district = arr(dat$district), school = arr(dat$school),
              study = arr(dat$study), year = arr(dat$year)),
  fits = lapply(k3, fit_record),
  profile = list(reml_z = profile_record(k3$reml_z), ml_z = profile_record(k3$ml_z)),
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
for (st in c("UN", "CS", "HCS")) for (m in c("REML", "ML")) {
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
