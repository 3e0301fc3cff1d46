# Reference values from R metafor for metarepro.pipeline.findings: metafor's influence() flag (the "*" column,
# is.infl) and the two rules of reporter.rma.uni (R/reporter.rma.uni.r): studentized residuals beyond the
# Bonferroni value qnorm(alpha/(2k), lower.tail = FALSE) ("potential outliers") and Cook's distances above
# median + 6 * IQR ("overly influential"), with the diagnostics they are read from.
#
# How to run (from the repository root):
#     Rscript tests/reference/generate_findings_reference.R
# Requirements: R with metafor, metadat, jsonlite, rmarkdown (reporter() renders its report). Takes ~30 s.
#
# Writes: tests/reference/findings_reference.json
#   {generator, R_version, metafor_version, rma_control,
#    datasets: [{name, source, measure, method, test, k, slab,
#                reporter_text, fit (as pooled.json), bias (as bias.json: ranktest, regtest), weight (%),
#                rstudent, dffits, cook_d, hat, dfbetas, is_infl, reporter_crit, reporter_outlier,
#                reporter_cook_spike}]}
# reporter_text: the Results sentences of metafor's reporter() (from the report.rmd it writes, 4 decimals).
# All rma() fits use control = list(threshold = 1e-13, tol = 1e-13, maxiter = 10000).

suppressPackageStartupMessages({
  library(metafor)
  library(jsonlite)
})
source(file.path("tests", "reference", "reference_json.R"))

RMA_CONTROL <- list(threshold = 1e-13, tol = 1e-13, maxiter = 10000)

one <- function(name, source, dat, measure, method, test) {
  res <- rma(yi, vi, data = dat, method = method, test = test, control = RMA_CONTROL)
  inf <- influence(res)
  # reporter.rma.uni: crit <- qnorm(x$level/(2*x$k), lower.tail=FALSE), x$level being alpha (0.05)
  crit <- qnorm(res$level / (2 * res$k), lower.tail = FALSE)
  cook <- inf$inf$cook.d
  # reporter() itself: its Results paragraphs (the .rmd it writes; rendering needs rmarkdown and pandoc)
  dir <- tempfile("reporter")
  dir.create(dir)
  suppressWarnings(try(reporter(res, dir = dir, filename = "report", open = FALSE, verbose = FALSE),
                       silent = TRUE))
  rmd <- readLines(file.path(dir, "report.rmd"))
  results <- "^(A total|According to the \\$Q|The \\$Q\\$-test for heterogeneity was|One study|Two studies|Several studies|An examination|A funnel plot)"
  text <- paste(grep(results, rmd, value = TRUE), collapse = "\n")
  pred <- predict(res)
  rank <- suppressWarnings(ranktest(res))
  reg <- regtest(res)
  fit <- list(k = res$k, estimate = c(res$beta), ci_low = res$ci.lb, ci_high = res$ci.ub, zval = res$zval,
              pval = res$pval, q = res$QE, q_df = res$k - 1, q_p = res$QEp, tau2 = res$tau2, i2 = res$I2,
              pi_low = pred$pi.lb, pi_high = pred$pi.ub, level = 95, method = method, test = test)
  bias <- list(k = res$k, begg_tau = unname(rank$tau), begg_p = rank$pval, egger_z = reg$zval, egger_p = reg$pval,
               egger_df = if (is.null(reg$ddf)) NA else reg$ddf, egger_statistic = if (test == "z") "z" else "t")
  list(name = name, source = source, measure = measure, method = method, test = test, k = res$k,
       reporter_text = text, fit = fit, bias = bias, weight = arr(weights(res)),
       slab = as.character(res$slab),
       rstudent = arr(inf$inf$rstudent), dffits = arr(inf$inf$dffits), cook_d = arr(cook),
       hat = arr(inf$inf$hat), dfbetas = arr(inf$dfbs[[1]]),
       is_infl = I(as.logical(inf$is.infl)),
       reporter_crit = crit,
       reporter_outlier = I(abs(inf$inf$rstudent) >= crit),
       reporter_cook_spike = I(cook > median(cook, na.rm = TRUE) + 6 * IQR(cook, na.rm = TRUE)))
}

bcg <- escalc(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg,
              slab = paste(author, year))
mag <- escalc(measure = "OR", ai = ai, n1i = n1i, ci = ci, n2i = n2i, data = dat.egger2001,
              slab = paste(study, year))
nor <- escalc(measure = "SMD", m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i, n2i = n2i,
              data = dat.normand1999, slab = source)

out <- list(
  generator = "tests/reference/generate_findings_reference.R",
  R_version = R.version.string,
  metafor_version = as.character(packageVersion("metafor")),
  rma_control = RMA_CONTROL,
  datasets = list(
    one("bcg_rr_reml_z", "metadat dat.bcg (Colditz et al. 1994)", bcg, "RR", "REML", "z"),
    one("bcg_rr_dl_knha", "metadat dat.bcg (Colditz et al. 1994)", bcg, "RR", "DL", "knha"),
    one("magnesium_or_reml_z", "metadat dat.egger2001 (Egger et al. 2001)", mag, "OR", "REML", "z"),
    one("magnesium_or_ee_z", "metadat dat.egger2001 (Egger et al. 2001)", mag, "OR", "EE", "z"),
    one("normand_smd_reml_knha", "metadat dat.normand1999 (Normand 1999)", nor, "SMD", "REML", "knha")
  )
)
write_json_file(out, file.path("tests", "reference", "findings_reference.json"))
