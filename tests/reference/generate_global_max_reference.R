# The global maximum of the ML / REML likelihood over tau2 >= 0, from R metafor, for data whose likelihood has
# more than one maximum (or is higher inside while metafor's default start stops at tau2 = 0) and for ordinary data.
#
# How to run (from the repository root):
#     Rscript tests/reference/generate_global_max_reference.R
#
# Cases: hard random meta-analyses drawn here (set.seed below; k uniform on 3..10, vi log-uniform on 1e-5..1e2,
# tau2 log-uniform on 1e-5..1e2, yi = mu + N(0, vi + tau2) with mu ~ N(0, 1)), screened with the closed-form
# (restricted) log-likelihood of the random-effects model on a log grid of 2,001 tau2 values: a case is "hard"
# for a method when that grid's maximum exceeds the log-likelihood of metafor's default fit by more than 1e-6.
# The corpus keeps the first N_HARD_ML hard ML cases, the first N_HARD_REML hard REML cases and the first
# N_ORDINARY cases that are hard for neither, plus dat.bcg (log risk ratios) ordered by year, its first 6
# studies (the cumulative fit at which metafor's default ML start stops at tau2 ~ 0), and the default pipeline's
# IL-10 mean differences (where its default REML start stops at a lower maximum).
#
# Reference per case and method: rma(yi, vi, method, control = list(tau2.init = s, threshold = 1e-13,
# tol = 1e-13, maxiter = 10000)) for every start s in {0, the default (no tau2.init), a log grid of 4 starts per
# decade from 1e-3 min vi to 10 (max vi + var(yi))}; the converged fit with the highest logLik is kept, and
# optimize() of metafor's logLik at fixed tau2 around the best grid value is recorded as a cross-check of that
# maximum (optimize_tau2, optimize_logLik). Also recorded: metafor's default fit (default_tau2,
# default_logLik), the thing a plain rma() comparison sees.
#
# Writes: tests/reference/global_max_reference.json
#   {generator, R_version, metafor_version, generated, seed, n_screened, control, cases: [{name, kind, yi, vi,
#    fits: {ML: {...}, REML: {...}}}]} with per fit: tau2, logLik, estimate, se, ci_lb, ci_ub, start,
#   default_tau2, default_logLik, hard (TRUE if the default fit's logLik is lower by more than 1e-6),
#   optimize_tau2, optimize_logLik.

suppressPackageStartupMessages({
  library(metafor)
  library(jsonlite)
})
source(file.path("tests", "reference", "reference_json.R"))

OUT_FILE <- file.path("tests", "reference", "global_max_reference.json")
SEED <- 20261205
N_SCREEN <- 3000
N_HARD_ML <- 12
N_HARD_REML <- 5
N_ORDINARY <- 10
CONTROL <- list(threshold = 1e-13, tol = 1e-13, maxiter = 10000)
METHODS <- c("ML", "REML")

# closed-form log-likelihood (for the screen only): ML  -1/2 (sum log(v + t) + Q(t)) + c,
# REML additionally -1/2 log(sum w); Q(t) = sum w (y - mu_w)^2, w = 1 / (v + t)
ll_closed <- function(yi, vi, t, method) {
  w <- 1 / outer(vi, t, "+")  # k x length(t)
  sw <- colSums(w)
  mu <- colSums(w * yi) / sw
  ll <- -0.5 * (colSums(log(1 / w)) + colSums(w * (yi - rep(mu, each = length(yi)))^2))
  if (method == "REML") ll <- ll - 0.5 * log(sw)
  ll
}

grid_of <- function(yi, vi, per_decade) {
  lo <- 1e-3 * min(vi)
  hi <- 10 * (max(vi) + var(yi))
  c(0, 10^seq(log10(lo), log10(hi), length.out = ceiling(per_decade * log10(hi / lo)) + 1))
}

fit_at <- function(yi, vi, method, start = NULL) {
  control <- if (is.null(start)) CONTROL else c(CONTROL, list(tau2.init = start))
  res <- try(suppressWarnings(rma(yi, vi, method = method, control = control)), silent = TRUE)
  if (inherits(res, "try-error")) NULL else res
}

screen_gap <- function(yi, vi, method) {
  default <- fit_at(yi, vi, method)
  if (is.null(default)) return(NA)
  grid <- grid_of(yi, vi, 200)
  best <- max(ll_closed(yi, vi, grid, method))
  best - ll_closed(yi, vi, default$tau2, method)
}

reference_fit <- function(yi, vi, method) {
  default <- fit_at(yi, vi, method)
  starts <- c(list(NULL), as.list(grid_of(yi, vi, 4)))
  best <- NULL
  best_start <- NA
  for (s in starts) {
    res <- fit_at(yi, vi, method, s)
    if (is.null(res)) next
    if (is.null(best) || logLik(res) > logLik(best)) {
      best <- res
      best_start <- if (is.null(s)) NA else s
    }
  }
  # optimize() of metafor's own logLik at fixed tau2, within a factor 10 of the best fit (or near 0)
  profile <- function(t) as.numeric(logLik(rma(yi, vi, method = method, tau2 = t)))
  upper <- max(10 * best$tau2, 10 * min(vi))
  opt <- optimize(profile, c(0, upper), maximum = TRUE, tol = 1e-12 * upper)
  list(tau2 = best$tau2, logLik = as.numeric(logLik(best)), estimate = as.numeric(coef(best)),
       se = best$se, ci_lb = best$ci.lb, ci_ub = best$ci.ub, start = best_start,
       default_tau2 = default$tau2, default_logLik = as.numeric(logLik(default)),
       hard = as.numeric(logLik(best)) - as.numeric(logLik(default)) > 1e-6,
       optimize_tau2 = opt$maximum, optimize_logLik = opt$objective)
}

set.seed(SEED)
hard_ml <- list()
hard_reml <- list()
ordinary <- list()
for (i in seq_len(N_SCREEN)) {
  k <- sample(3:10, 1)
  vi <- 10^runif(k, -5, 2)
  tau2 <- 10^runif(1, -5, 2)
  yi <- rnorm(1) + rnorm(k) * sqrt(vi + tau2)
  gap <- vapply(METHODS, function(m) screen_gap(yi, vi, m), 0.0)
  if (anyNA(gap)) next
  case <- list(name = sprintf("random_%04d", i), yi = yi, vi = vi)
  if (gap[["ML"]] > 1e-6 && length(hard_ml) < N_HARD_ML) {
    hard_ml[[length(hard_ml) + 1]] <- c(case, kind = "hard_ML")
  } else if (gap[["REML"]] > 1e-6 && length(hard_reml) < N_HARD_REML) {
    hard_reml[[length(hard_reml) + 1]] <- c(case, kind = "hard_REML")
  } else if (all(gap <= 1e-6) && length(ordinary) < N_ORDINARY) {
    ordinary[[length(ordinary) + 1]] <- c(case, kind = "ordinary")
  }
  if (length(hard_ml) == N_HARD_ML && length(hard_reml) == N_HARD_REML && length(ordinary) == N_ORDINARY) break
}
n_screened <- i

bcg <- escalc(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)
bcg <- bcg[order(bcg$year), ][1:6, ]
# the default pipeline's IL-10 mean differences (results/il10_md/effects.csv: the 4 included rows, yi and vi as
# the pipeline computes them from data/raw, written with 17 significant digits): metafor's default REML start
# stops at tau2 = 2605.7 (logLik -16.72), the global maximum is at tau2 = 0.487 (logLik -12.81)
il10 <- list(yi = c(-1.5, 141.03901925, -0.15000000000000002, -1.2376809090909093),
             vi = c(0.008144614443084456, 1639.4948556213642, 0.04359853801169591, 0.08138134098066767))
cases <- c(hard_ml, hard_reml, ordinary,
           list(list(name = "bcg_logRR_first6_by_year", yi = as.numeric(bcg$yi), vi = as.numeric(bcg$vi),
                     kind = "dataset"),
                list(name = "pipeline_il10_md", yi = il10$yi, vi = il10$vi, kind = "dataset")))

out <- list()
for (case in cases) {
  fits <- list()
  for (m in METHODS) fits[[m]] <- reference_fit(case$yi, case$vi, m)
  out[[length(out) + 1]] <- list(name = case$name, kind = case$kind, yi = arr(case$yi), vi = arr(case$vi),
                                 fits = fits)
  cat(case$name, case$kind, sprintf("ML %.6g (default %.6g)  REML %.6g (default %.6g)\n", fits$ML$tau2,
                                    fits$ML$default_tau2, fits$REML$tau2, fits$REML$default_tau2))
}

write_json_file(list(
  generator = "tests/reference/generate_global_max_reference.R",
  R_version = R.version.string,
  metafor_version = as.character(packageVersion("metafor")),
  generated = format(Sys.time(), "%Y-%m-%d"),
  seed = SEED, n_screened = n_screened, control = CONTROL,
  cases = out
), OUT_FILE)
cat("wrote", OUT_FILE, "with", length(out), "cases after screening", n_screened, "random cases\n")
