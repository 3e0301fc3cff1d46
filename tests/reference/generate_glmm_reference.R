# Reference values from R metafor's rma.glmm (generalized linear mixed models for 2x2 tables and proportions).
#
# How to run (from the repository root):
#     Rscript tests/reference/generate_glmm_reference.R
# Requirements: R with metafor (values were produced with 3.8-1), metadat, lme4, BiasedUrn, numDeriv, jsonlite.
# Takes a minute or two (CM.EL with random effects integrates every study's likelihood at every step).
#
# Writes: tests/reference/glmm_reference.json
#   {generator, R_version, metafor_version, lme4_version, BiasedUrn_version, notes,
#    datasets: {name: {source, measure, ai, bi, ci, di | xi, mi}},
#    fits: [{dataset, measure, model, method, control: "default" | "tight" | "exact_pmf" (CM.EL only),
#            fit: {glmer: {FE, QE, ML: {fixef, theta, logLik, deviance, nAGQ} or null}, beta, se, ..., printed}}],
#    dnchg: [{dataset, beta, tau2, random, value}]}
#
# Each fit is run twice: with metafor's default control (what a user gets; lme4's own stopping rules: bobyqa
# then Nelder-Mead, tolPwrss 1e-7; nlminb rel.tol 1e-10; integrate rel.tol .Machine$double.eps^0.25) and with
# a "tight" control that asks the inner solvers for ~1e-10 (see TIGHT), so the comparison can tell the model's
# optimum from an optimizer's stopping point. "dnchg" holds metafor:::.dnchg -- CM.EL's minus log-likelihood --
# at fixed parameters, with integrate()'s rel.tol 1e-12: the exact likelihood, free of any optimizer.
# Numbers are written with "%.17g"; NA/NaN/Inf -> null. Errors are stored as {"error": message}.

suppressPackageStartupMessages({
  library(metafor)
  library(metadat)
  library(jsonlite)
})

OUT_FILE <- file.path("tests", "reference", "glmm_reference.json")
source(file.path("tests", "reference", "reference_json.R"))  # write_json_file, num, safely

INT_TIGHT <- list(lower = -Inf, upper = Inf, rel.tol = 1e-12, subdivisions = 1000L)
# glmer: PIRLS to 1e-10 and nlopt's BOBYQA (nloptwrap) for both stages with tight tolerances (the closest of
# the optimizers tried to the optimum: Nelder-Mead with FtolAbs = 1e-12 stops ~1e-5 away on dat.bcg, minqa's
# bobyqa with rhoend = 1e-11 fails on UM.FS); nlminb (CM.EL) keeps its defaults (rel.tol 1e-10) because tighter
# ones end in "false convergence" (convergence = 1) on these data.
TIGHT <- list(
  glmerCtrl = list(optimizer = "nloptwrap", tolPwrss = 1e-10,
                   optCtrl = list(ftol_abs = 1e-14, ftol_rel = 1e-14, xtol_rel = 1e-12, maxeval = 1e5)),
  intCtrl = INT_TIGHT
)

# CM.EL with metafor's own exact pmf (dnchgcalc = "dnoncenhypergeom", no truncation): the numDeriv Hessians
# behind se and QE.Wld are then free of BiasedUrn's 1e-10 truncation noise, which numDeriv's Richardson steps
# (hessianCtrl r = 16, down to ~3e-9) amplify (on dat.bcg: se 1.4e-4 relative, QE.Wld 268.6 instead of 162.9)
EXACT_PMF <- list(dnchgcalc = "dnoncenhypergeom", intCtrl = INT_TIGHT)

# lme4's own view of a glmer fit: its parameters and logLik (nAGQ > 1: -deviance/2 of the quadrature, without
# the saturated log-likelihood; nAGQ = 1: the full Laplace log-likelihood), so a test can evaluate ours there
merfit <- function(m) {
  if (!inherits(m, "merMod")) return(NULL)
  list(fixef = num(lme4::fixef(m)), theta = num(lme4::getME(m, "theta")), logLik = c(logLik(m)),
       deviance = deviance(m), nAGQ = m@devcomp$dims[["nAGQ"]])
}

extract_fit <- function(res) list(
  glmer = list(FE = merfit(res$res.FE), QE = merfit(res$res.QE), ML = merfit(res$res.ML)),
  beta = num(res$beta), se = num(res$se), zval = num(res$zval), pval = num(res$pval),
  ci_lb = num(res$ci.lb), ci_ub = num(res$ci.ub), tau2 = res$tau2, se_tau2 = res$se.tau2,
  sigma2 = res$sigma2, I2 = res$I2, H2 = res$H2, vt = res$vt,
  QE_Wld = res$QE.Wld, QEp_Wld = res$QEp.Wld, QE_LRT = res$QE.LRT, QEp_LRT = res$QEp.LRT, QE_df = res$QE.df,
  QM = res$QM, QMp = res$QMp, k = res$k, k_eff = res$k.eff, p = res$p, parms = res$parms,
  fit_stats = num(res$fit.stats$ML), yi = num(res$yi), vi = num(res$vi),
  printed = paste(capture.output(print(res)), collapse = "\n"))

bcg <- dat.bcg
niel <- dat.nielweise2007
pritz <- dat.pritz1997
datasets <- list(
  bcg = list(source = "metadat::dat.bcg (Colditz et al. 1994): BCG vaccine, tpos/tneg/cpos/cneg",
             measure = "OR", ai = num(bcg$tpos), bi = num(bcg$tneg), ci = num(bcg$cpos), di = num(bcg$cneg)),
  nielweise2007 = list(source = "metadat::dat.nielweise2007: anti-infective catheters, ai/n1i/ci/n2i (zero cells, one double zero)",
                       measure = "OR", ai = num(niel$ai), bi = num(niel$n1i - niel$ai),
                       ci = num(niel$ci), di = num(niel$n2i - niel$ci)),
  bcg_first3 = list(source = "metadat::dat.bcg, its first 3 trials: tau^2 on the boundary (0)",
                    measure = "OR", ai = num(bcg$tpos[1:3]), bi = num(bcg$tneg[1:3]), ci = num(bcg$cpos[1:3]),
                    di = num(bcg$cneg[1:3])),
  pritz1997 = list(source = "metadat::dat.pritz1997: proportion of good outcome, xi/ni",
                   measure = "PLO", xi = num(pritz$xi), mi = num(pritz$ni - pritz$xi)))

fit_one <- function(name, model, method, ctl) {
  d <- datasets[[name]]
  control <- switch(ctl, tight = TIGHT, exact_pmf = EXACT_PMF, default = list())
  cat(name, model, method, ctl, "\n")
  if (d$measure == "OR") {
    out <- safely(rma.glmm(measure = "OR", ai = as.numeric(d$ai), bi = as.numeric(d$bi), ci = as.numeric(d$ci),
                           di = as.numeric(d$di), model = model, method = method, control = control, retfit = TRUE),
                  extract_fit)
  } else {
    out <- safely(rma.glmm(measure = "PLO", xi = as.numeric(d$xi), mi = as.numeric(d$mi), method = method,
                           control = control, retfit = TRUE), extract_fit)
  }
  list(dataset = name, measure = d$measure, model = model, method = method, control = ctl, fit = out)
}

fits <- list()
for (ctl in c("tight", "default")) {
  for (name in c("bcg", "nielweise2007")) for (model in c("UM.FS", "UM.RS", "CM.AL", "CM.EL"))
    for (method in c("EE", "ML")) fits[[length(fits) + 1]] <- fit_one(name, model, method, ctl)
  for (method in c("EE", "ML")) fits[[length(fits) + 1]] <- fit_one("pritz1997", "UM.FS", method, ctl)
}
for (model in c("UM.FS", "UM.RS", "CM.AL")) fits[[length(fits) + 1]] <- fit_one("bcg_first3", model, "ML", "default")
# (ML only on nielweise2007: with R's own pmf, integrate() over dat.bcg's tables of up to 1,000 events takes hours)
for (name in c("bcg", "nielweise2007")) fits[[length(fits) + 1]] <- fit_one(name, "CM.EL", "EE", "exact_pmf")
fits[[length(fits) + 1]] <- fit_one("nielweise2007", "CM.EL", "ML", "exact_pmf")

# CM.EL's exact (integrated) likelihood at fixed parameters; nielweise2007 without its double-zero study
dnchg <- list()
for (name in c("bcg", "nielweise2007")) {
  d <- datasets[[name]]
  keep <- !((d$ai == 0 & d$ci == 0) | (d$bi == 0 & d$di == 0))
  a <- as.numeric(d$ai)[keep]; b <- as.numeric(d$bi)[keep]; c_ <- as.numeric(d$ci)[keep]; dd <- as.numeric(d$di)[keep]
  X <- matrix(1, nrow = sum(keep), ncol = 1)
  for (beta in c(-0.8, 0.3)) {
    v <- metafor:::.dnchg(c(beta, 0), a, b, c_, dd, X.fit = X, random = FALSE, dnchgcalc = "dFNCHypergeo",
                          dnchgprec = 1e-10, intCtrl = INT_TIGHT)
    dnchg[[length(dnchg) + 1]] <- list(dataset = name, beta = beta, tau2 = 0, random = FALSE, value = v)
    for (tau2 in c(0.05, 0.4, 1.5)) {
      v <- metafor:::.dnchg(c(beta, log(tau2)), a, b, c_, dd, X.fit = X, random = TRUE, dnchgcalc = "dFNCHypergeo",
                            dnchgprec = 1e-10, intCtrl = INT_TIGHT)
      dnchg[[length(dnchg) + 1]] <- list(dataset = name, beta = beta, tau2 = tau2, random = TRUE, value = v)
    }
  }
}

write_json_file(list(
  generator = "tests/reference/generate_glmm_reference.R",
  R_version = R.version.string,
  metafor_version = as.character(packageVersion("metafor")),
  lme4_version = as.character(packageVersion("lme4")),
  BiasedUrn_version = as.character(packageVersion("BiasedUrn")),
  tight_control = TIGHT,
  datasets = datasets, fits = fits, dnchg = dnchg), OUT_FILE)
