# What metafor's exact permutation test does with a permutation whose refit fails, on the case that made R and
# metarepro disagree (issue 20): config/examples/template.yaml's il6_drug_free meta-regression, IL-6 ~ year on
# 4 studies (4! = 24 distinct permutations), REML + Knapp-Hartung.
#
# How to run (from the repository root):
#     Rscript tests/reference/generate_permutest_failed_refits_reference.R
# Requirements: R with metafor (values produced with 3.8-1), jsonlite.
#
# Inputs: yi, vi of the 4 pooled rows as metarepro computes them (results/template/il6_drug_free/effects.csv:
# Jangpangi 2014 from a two-sided p, Miller 2002 from SEMs, Nishuty 2019 and Rawdin 2013 from means and SDs),
# written with 17 significant digits, and their publication years.
#
# metafor's permutest.rma.uni refits every permutation inside try(); a refit that stops with an error leaves NA and
# the p-value is mean(..., na.rm = TRUE) over the others (the same code in metafor 3.8-1 and in the current
# source, github.com/wviechtb/metafor R/permutest.rma.uni.r). Here Fisher scoring under threshold = 1e-13 (the
# absolute change in tau^2 between iterations) stops in 9 of the 24 permutations with "Fisher scoring algorithm
# did not converge": their tau^2 is about 2.56, where a step below 1e-13 is under the rounding of the update.
# With metafor's default control, or any threshold down to 1e-12, every permutation is fitted.
#
# Writes: tests/reference/permutest_failed_refits_reference.json
#   {generator, R_version, metafor_version, yi, vi, year, permutations: [[row order]],
#    by_control: [{name, control, pval, QMp, failed, refit: [{tau2, zval, error}] per permutation}]}

suppressPackageStartupMessages({
  library(metafor)
  library(jsonlite)
})
source(file.path("tests", "reference", "reference_json.R"))

OUT_FILE <- file.path("tests", "reference", "permutest_failed_refits_reference.json")
d <- data.frame(
  yi = c(0.4990809744377519, 0.60548660261232656, 3.0361625275622401, 0.16574960785103876),
  vi = c(0.0687423484920478, 0.041833070129715086, 0.049480862000648163, 0.10591704150953941),
  year = c(2014, 2002, 2019, 2013)
)
CONTROLS <- list(
  default = list(),
  threshold_1e10 = list(threshold = 1e-10, tol = 1e-13, maxiter = 10000),
  threshold_1e13 = list(threshold = 1e-13, tol = 1e-13, maxiter = 10000)
)
perms <- metafor:::.genuperms(seq_len(nrow(d)))  # the order permutest's exact test enumerates

by_control <- lapply(names(CONTROLS), function(name) {
  ctrl <- CONTROLS[[name]]
  mr <- rma(yi, vi, mods = ~ year, data = d, test = "knha", control = ctrl)
  pt <- permutest(mr, exact = TRUE, progbar = FALSE)
  refit <- lapply(seq_len(nrow(perms)), function(i) {
    r <- try(suppressWarnings(rma(d$yi, d$vi, mods = ~ d$year[perms[i, ]], test = "knha", control = ctrl)),
             silent = TRUE)
    if (inherits(r, "try-error"))
      return(list(tau2 = NA_real_, zval = NA_real_, error = conditionMessage(attr(r, "condition"))))
    list(tau2 = r$tau2, zval = r$zval[2], error = "")
  })
  list(name = name, control = ctrl, pval = arr(pt$pval), QMp = pt$QMp, failed = sum(is.na(pt$QM.perm)),
       refit = refit)
})

write_json_file(list(
  generator = "tests/reference/generate_permutest_failed_refits_reference.R",
  R_version = R.version.string, metafor_version = as.character(packageVersion("metafor")),
  yi = arr(d$yi), vi = arr(d$vi), year = arr(d$year),
  permutations = lapply(seq_len(nrow(perms)), function(i) arr(perms[i, ])),
  by_control = by_control
), OUT_FILE)
cat("wrote", OUT_FILE, "\n")
