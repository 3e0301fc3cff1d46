# Copied from the project's shared benchmarks (shared/benchmarks/r_analyses.R): the R user's script that issue 22's
# side-by-side timing runs (benchmarks/bench_vs_r.py). One change: a step metafor refuses for an analysis (confint,
# leave1out, influence, cumul and their figures at k = 1, as the default il10_smd_reported has) is skipped, as
# metarepro skips it, instead of stopping the loop (safe(), keep(), and figure() closing its device).
# An R user's script for the same analyses as metarepro's analysis jobs, looped in one R process.
#   Rscript r_analyses.R SPEC.csv OUTDIR [formats]
# SPEC: one row per analysis (name, data, measure, method, test, subgroups, moderators, multilevel, robust,
# permutations); data: a CSV with n1i m1i sd1i n2i m2i sd2i (+ study, year, sample, medication, study_id).
# Per analysis: escalc; rma + confint (Q-profile) + predict; 9 estimators x (z, knha) with confint; leave1out,
# influence, cumul (by year); regtest (rma and lm), ranktest, trimfill (L0, R0), fsn (Rosenthal, Orwin,
# Rosenberg), PET/PEESE; forest, funnel (contour-enhanced), baujat, cumulative forest, leave-one-out forest,
# each to svg() and png(res = 150); with subgroups: a moderator test and a fit per level, and a subgroup forest;
# with moderators: rma(mods) + permutest(iter) + regplot; multilevel: vcalc (shared controls) + rma.mv
# ~ 1 | study_id/effect + clubSandwich CR2, the univariate steps on aggregate()d clusters. Tables to CSV.
suppressMessages({library(metafor); library(clubSandwich)})
args <- commandArgs(TRUE)
spec <- read.csv(args[1], stringsAsFactors = FALSE)
outdir <- args[2]
formats <- if (length(args) >= 3) strsplit(args[3], ",")[[1]] else c("svg", "png")
base <- dirname(normalizePath(args[1]))
ESTIMATORS <- c("EE", "DL", "REML", "ML", "PM", "SJ", "HE", "HS", "EB")

figure <- function(path, width, height, draw) {
  for (fmt in formats) {
    if (fmt == "svg") svg(paste0(path, ".svg"), width = width, height = height)
    else png(paste0(path, ".png"), width = width, height = height, units = "in", res = 150)
    tryCatch(draw(), error = function(e) NULL)
    dev.off()
  }
}
fitrow <- function(f) {
  p <- predict(f)
  ci <- if (f$method != "EE") tryCatch(confint(f)$random, error = function(e) NULL) else NULL
  data.frame(method = f$method, test = f$test, k = f$k, estimate = f$b[1], se = f$se, pval = f$pval,
             ci_low = f$ci.lb, ci_high = f$ci.ub, tau2 = f$tau2, i2 = f$I2, q = f$QE, pi_low = if (is.null(p$pi.lb)) NA else p$pi.lb,
             pi_high = if (is.null(p$pi.ub)) NA else p$pi.ub, tau2_ci_low = if (is.null(ci)) NA else ci[1, 2], tau2_ci_high = if (is.null(ci)) NA else ci[1, 3])
}
timing <- c()
steps <- c()
lap <- function(name) { now <- proc.time()[["elapsed"]]; steps[[name]] <<- (if (is.null(steps[[name]])) 0 else steps[[name]]) + now - last; last <<- now }
has <- function(x) !is.na(x) && nzchar(x)
safe <- function(expr) tryCatch(expr, error = function(e) NA)
keep <- function(x, f) if (!(length(x) == 1 && is.na(x)[1])) f(x)
merge_rows <- function(l) { cols <- unique(unlist(lapply(l, names)))
  do.call(rbind, lapply(l, function(r) { r[setdiff(cols, names(r))] <- NA; r[cols] })) }
for (i in seq_len(nrow(spec))) {
  s <- spec[i, ]
  t0 <- proc.time()[["elapsed"]]; last <- t0; steps <- list()
  out <- file.path(outdir, s$name); dir.create(out, recursive = TRUE, showWarnings = FALSE)
  raw <- read.csv(file.path(base, s$data), stringsAsFactors = FALSE)
  dat <- escalc(measure = s$measure, n1i = n1i, m1i = m1i, sd1i = sd1i, n2i = n2i, m2i = m2i, sd2i = sd2i,
                data = raw, vtype = "LS", slab = study)
  k <- nrow(dat); h <- max(4, 0.22 * k + 2)
  if (s$multilevel == 1) {
    dat$effect <- seq_len(k)
    V <- vcalc(vi, cluster = study_id, obs = rep(1, k), grp1 = effect, grp2 = rep(0, k), w1 = n1i, w2 = n2i,
               rho = 0, data = dat)
    mv <- rma.mv(yi, V, random = ~ 1 | study_id / effect, data = dat, method = s$method, test = "t")
    rob <- coef_test(mv, vcov = "CR2", cluster = dat$study_id)
    ml <- rma.mv(yi, V, random = ~ 1 | study_id / effect, data = dat, method = "ML", test = "t")
    write.csv(rbind(coef(summary(mv)), coef(summary(ml))), file.path(out, "pooled_mv.csv"))
    dat <- aggregate(dat, cluster = study_id, V = V)  # the univariate steps on one row per cluster
    k <- nrow(dat)
  }
  lap("effects+multilevel")
  res <- rma(yi, vi, data = dat, method = s$method, test = s$test, slab = study)
  ci <- safe(confint(res)); pr <- predict(res)
  write.csv(dat, file.path(out, "effects.csv"))
  lap("fit+confint")
  if (s$multilevel != 1) {
    est <- list()
    for (m in ESTIMATORS) for (t in c("z", "knha"))
      est[[length(est) + 1]] <- tryCatch(fitrow(rma(yi, vi, data = dat, method = m, test = t)),
                                         error = function(e) data.frame(method = m, test = t, k = NA))
    est <- merge_rows(est)
    write.csv(est, file.path(out, "estimators.csv"))
  }
  lap("estimators")
  l1o <- safe(leave1out(res)); lap("leave1out")
  inf <- safe(influence(res)); lap("influence")
  cum <- safe(cumul(res, order = dat$year)); lap("cumul")
  keep(l1o, function(x) write.csv(as.data.frame(x), file.path(out, "leave1out.csv")))
  keep(inf, function(x) write.csv(x$inf, file.path(out, "influence.csv")))
  keep(cum, function(x) write.csv(as.data.frame(x), file.path(out, "cumulative.csv")))
  bias <- list(egger = safe(regtest(res)$pval), egger_lm = safe(regtest(res, model = "lm")$pval),
               begg = safe(ranktest(res)$pval),
               tf_l0 = safe(trimfill(res, estimator = "L0")$k0), tf_r0 = safe(trimfill(res, estimator = "R0")$k0),
               fsn_rosenthal = safe(fsn(yi, vi, data = dat)$fsnum),
               fsn_orwin = safe(fsn(yi, vi, data = dat, type = "Orwin")$fsnum),
               fsn_rosenberg = safe(fsn(yi, vi, data = dat, type = "Rosenberg")$fsnum),
               pet = safe(rma(yi, vi, mods = ~ sqrt(vi), data = dat, method = s$method, test = s$test)$b[1]),
               peese = safe(rma(yi, vi, mods = ~ vi, data = dat, method = s$method, test = s$test)$b[1]))
  write.csv(as.data.frame(bias), file.path(out, "bias.csv"))
  lap("bias")
  figure(file.path(out, "forest"), 10, h, function() forest(res, addpred = TRUE, header = TRUE))
  figure(file.path(out, "funnel"), 7, 6, function() funnel(res, level = c(90, 95, 99),
         shade = c("white", "gray55", "gray75"), refline = 0, legend = TRUE))
  figure(file.path(out, "baujat"), 7, 5.5, function() baujat(res))
  figure(file.path(out, "cumulative"), 10, h, function() forest(cum, header = TRUE))
  figure(file.path(out, "leave1out"), 10, h, function() forest(l1o$estimate, ci.lb = l1o$ci.lb, ci.ub = l1o$ci.ub,
         slab = dat$study, refline = res$b[1], header = TRUE))
  lap("five figures")
  if (has(s$subgroups)) {
    rows <- list()
    for (col in strsplit(s$subgroups, ";")[[1]]) {
      d <- dat[!is.na(dat[[col]]) & nzchar(dat[[col]]), ]
      d <- d[order(d[[col]]), ]
      mod <- rma(yi, vi, mods = ~ factor(d[[col]]), data = d, method = s$method, test = s$test)
      levs <- unique(d[[col]])
      fits <- lapply(levs, function(l) rma(yi, vi, data = d[d[[col]] == l, ], method = s$method, test = s$test))
      rows[[col]] <- data.frame(column = col, subgroup = levs, estimate = sapply(fits, function(f) f$b[1]),
                                ci_low = sapply(fits, function(f) f$ci.lb), ci_high = sapply(fits, function(f) f$ci.ub),
                                QM = mod$QM, QMp = mod$QMp)
      # metafor's subgroup forest: the rows of each level, then that level's pooled polygon
      pos <- c(); polys <- c(); cur <- nrow(d) + 3 * length(levs)
      for (l in levs) {
        n <- sum(d[[col]] == l); pos <- c(pos, cur - seq_len(n) + 1); cur <- cur - n; polys <- c(polys, cur); cur <- cur - 3
      }
      all <- rma(yi, vi, data = d, method = s$method, test = s$test, slab = study)
      figure(file.path(out, paste0("forest_subgroups_", col)), 10, max(4, 0.22 * max(pos) + 2), function() {
        forest(all, rows = pos, ylim = c(-1, max(pos) + 3), header = TRUE)
        for (j in seq_along(levs)) addpoly(fits[[j]], row = polys[j], mlab = levs[j])
      })
    }
    write.csv(do.call(rbind, rows), file.path(out, "subgroups.csv"))
    lap("subgroups")
  }
  if (has(s$moderators)) {
    tabs <- list()
    for (m in strsplit(s$moderators, ";")[[1]]) {
      d <- dat[!is.na(dat[[m]]), ]
      mr <- rma(yi, vi, mods = as.formula(paste("~", m)), data = d, method = s$method, test = s$test)
      set.seed(1)
      pt <- permutest(mr, iter = s$permutations, progbar = FALSE)
      tabs[[m]] <- data.frame(coef = names(coef(mr)), estimate = coef(mr), pval = mr$pval, perm_p = pt$pval)
      figure(file.path(out, paste0("bubble_", m)), 7, 5.5, function() regplot(mr))
    }
    write.csv(do.call(rbind, tabs), file.path(out, "metareg.csv"))
    lap("metareg")
  }
  timing <- rbind(timing, data.frame(name = s$name, k = res$k, estimate = res$b[1], tau2 = res$tau2,
                                     estimate_ref = s$estimate_ref, seconds = proc.time()[["elapsed"]] - t0,
                                     steps = paste(names(steps), round(unlist(steps), 3), sep = "=", collapse = " ")))
}
write.csv(timing, file.path(outdir, "timing.csv"), row.names = FALSE)
