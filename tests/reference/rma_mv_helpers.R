# Helpers shared by the rma.mv reference generators (source()d after reference_json.R, from the repository root):
# tight fits (nlminb, then polish() to the root of the score equation), and the records of fits, profile CIs,
# robust() / clubSandwich results and anova() that the Python tests read.

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

