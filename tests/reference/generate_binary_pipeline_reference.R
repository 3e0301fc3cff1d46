# References for binary-outcome analyses run from a config (tests/pipeline/test_binary_pipeline.py and the example
# configs config/examples/linde2005.yaml, config/examples/moore1998.yaml): the pooled results that metarepro's
# pipeline (compute_effects -> fit_analysis -> pooled.json) must give for the sheets as the examples read them, with
# metafor's defaults (zero cells: escalc's add = 1/2, to = "only0"; rma.mh/rma.peto's add = c(1/2, 0),
# to = c("only0", "none"), drop00 = c(TRUE, FALSE); rma.glmm's drop00 = TRUE), back-transformed as metafor's transf
# (exp; transf.ilogit; transf.iarcsin; transf.ipft.hm with the studies' ni), and leave1out()/cumul() of the
# rma.mh and rma.peto fits (each subset refitted by MH or Peto; cumul ordered by year).
#
# How to run (from the repository root):
#     Rscript tests/reference/generate_binary_pipeline_reference.R
#
# Requirements: R with metafor (output produced with 3.8-1), lme4 and BiasedUrn (rma.glmm), jsonlite.
# Data: data/raw/linde2005_st_johns_wort.csv and data/raw/moore1998_topical_nsaids.csv (R's write.csv of metadat's
# dat.linde2005 and dat.moore1998; rows without counts are dropped, as the pipeline excludes them).
# Writes tests/reference/binary_pipeline_reference.json (numbers as "%.17g"). rma() fits use
# control = list(threshold = 1e-13, tol = 1e-13, maxiter = 10000).

suppressPackageStartupMessages({
  library(metafor)
  library(jsonlite)
})
source(file.path("tests", "reference", "reference_json.R"))

CTRL <- list(threshold = 1e-13, tol = 1e-13, maxiter = 10000)

linde <- read.csv(file.path("data", "raw", "linde2005_st_johns_wort.csv"))
linde <- linde[!is.na(linde$ai), ]
moore <- read.csv(file.path("data", "raw", "moore1998_topical_nsaids.csv"))
tab <- list(
  linde2005 = with(linde, list(ai = ai, n1i = n1i, ci = ci, n2i = n2i, year = year, id = id)),
  moore1998 = with(moore, list(ai = Ee, n1i = Ne, ci = Ec, n2i = Nc, year = year, id = id)))

back <- function(measure, x, ni) {
  switch(measure, OR = , RR = , PETO = , PLN = exp(x), PLO = transf.ilogit(x), PAS = transf.iarcsin(x),
         PFT = transf.ipft.hm(x, targs = list(ni = ni)), NULL)
}

record <- function(res, measure, ni = NULL) {
  pred <- predict(res)
  out <- list(k = res$k, beta = as.numeric(res$beta), se = res$se, zval = res$zval, pval = res$pval,
              ci_lb = res$ci.lb, ci_ub = res$ci.ub, tau2 = if (is.null(res$tau2)) 0 else res$tau2,
              I2 = res$I2, H2 = res$H2, pi_lb = if (is.null(pred$pi.lb)) pred$ci.lb else pred$pi.lb,
              pi_ub = if (is.null(pred$pi.ub)) pred$ci.ub else pred$pi.ub,
              QE = if (is.null(res$QE.Wld)) res$QE else res$QE.Wld,
              QEp = if (is.null(res$QEp.Wld)) res$QEp else res$QEp.Wld,
              weights = if (inherits(res, "rma.glmm")) NULL else arr(as.numeric(weights(res))))
  b <- back(measure, c(out$beta, out$ci_lb, out$ci_ub, out$pi_lb, out$pi_ub), ni)
  if (!is.null(b)) out$back <- arr(b)
  out
}

fits <- list()
run <- function(name, data, measure, fit, ...) {
  t <- tab[[data]]
  if (fit == "rma") {
    es <- escalc(measure, ai = t$ai, n1i = t$n1i, ci = t$ci, n2i = t$n2i)
    res <- rma(es$yi, es$vi, method = "REML", control = CTRL)
  } else if (fit == "rma.mh") {
    res <- rma.mh(ai = t$ai, n1i = t$n1i, ci = t$ci, n2i = t$n2i, measure = measure)
  } else if (fit == "rma.peto") {
    res <- rma.peto(ai = t$ai, n1i = t$n1i, ci = t$ci, n2i = t$n2i)
  } else {
    res <- rma.glmm(ai = t$ai, n1i = t$n1i, ci = t$ci, n2i = t$n2i, measure = measure, model = "UM.FS")
  }
  out <- record(res, measure)
  if (fit %in% c("rma.mh", "rma.peto")) {
    loo <- leave1out(res)
    cu <- cumul(res, order = t$year)
    pick <- function(x) list(estimate = arr(as.numeric(x$estimate)), se = arr(as.numeric(x$se)),
                             ci_lb = arr(as.numeric(x$ci.lb)), ci_ub = arr(as.numeric(x$ci.ub)),
                             Q = arr(as.numeric(x$Q)), I2 = arr(as.numeric(x$I2)), slab = arr(as.character(x$slab)))
    out$leave1out <- pick(loo)
    out$cumul <- pick(cu)
  }
  fits[[name]] <<- c(list(data = data, measure = measure, fit = fit), out)
}

run("linde_or_rma", "linde2005", "OR", "rma")
run("linde_rr_rma", "linde2005", "RR", "rma")
run("linde_or_mh", "linde2005", "OR", "rma.mh")
run("linde_rr_mh", "linde2005", "RR", "rma.mh")
run("linde_or_peto", "linde2005", "PETO", "rma.peto")
run("linde_or_glmm", "linde2005", "OR", "rma.glmm")
run("moore_or_mh", "moore1998", "OR", "rma.mh")
run("moore_rd_mh", "moore1998", "RD", "rma.mh")
run("moore_rr_rma", "moore1998", "RR", "rma")
run("moore_or_peto", "moore1998", "PETO", "rma.peto")

# proportions: the NSAID arms of dat.moore1998 (successes Ee of Ne)
for (m in c("PR", "PLN", "PLO", "PAS", "PFT")) {
  es <- escalc(m, xi = moore$Ee, ni = moore$Ne)
  res <- rma(es$yi, es$vi, method = "REML", control = CTRL)
  fits[[paste0("moore_", tolower(m), "_rma")]] <- c(list(data = "moore1998_treated", measure = m, fit = "rma"),
                                                     record(res, m, moore$Ne))
}
res <- rma.glmm(xi = moore$Ee, ni = moore$Ne, measure = "PLO")
fits$moore_plo_glmm <- c(list(data = "moore1998_treated", measure = "PLO", fit = "rma.glmm"), record(res, "PLO"))

write_json_file(list(
  generator = "tests/reference/generate_binary_pipeline_reference.R",
  metafor_version = as.character(packageVersion("metafor")),
  lme4_version = as.character(packageVersion("lme4")),
  R_version = R.version.string,
  fits = fits
), file.path("tests", "reference", "binary_pipeline_reference.json"))
