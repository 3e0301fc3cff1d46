# Reference values for Begg's rank test around metarepro's switch from the exact Kendall distribution to the
# normal approximation (metarepro._core.limits.BEGG_EXACT_MAX_K = 170): metafor's ranktest() at k = 170 and k = 171,
# each with metafor 3.8-1's default (cor.test(..., exact = TRUE): the exact p, no ties here) and with
# exact = FALSE (the normal approximation). metarepro must give the exact p at k = 170 and the approximate one
# at k = 171. R's exact p is NA from n = 171 on (pkendall divides by gamma(n + 1), which overflows a double),
# so metafor 3.8-1's ranktest() returns p = NA there: the stored "exact" pval of k = 171 shows it.
#
# How to run (from the repository root):
#     Rscript tests/reference/generate_begg_switch_reference.R
# Requirements: R with metafor (values were produced with 3.8-1) and jsonlite. Takes a few seconds.
#
# Writes: tests/reference/begg_switch_reference.json
#   {generator, R_version, metafor_version, datasets: [{name, k, yi, vi, exact: {tau, pval}, approx: {tau, pval}}]}

suppressPackageStartupMessages({
  library(metafor)
  library(jsonlite)
})
source(file.path("tests", "reference", "reference_json.R"))

OUT_FILE <- file.path("tests", "reference", "begg_switch_reference.json")

make <- function(k, seed) {
  set.seed(seed)
  vi <- runif(k, 0.01, 0.5)                    # continuous: no ties
  yi <- 0.3 + 0.4 * sqrt(vi) + rnorm(k, 0, sqrt(vi + 0.05))  # mild small-study effect
  rt_exact <- ranktest(yi, vi)                  # metafor's default: exact = TRUE
  rt_approx <- ranktest(yi, vi, exact = FALSE)
  list(name = sprintf("begg_k%d", k), k = k, yi = arr(yi), vi = arr(vi),
       exact = list(tau = unname(rt_exact$tau), pval = rt_exact$pval),
       approx = list(tau = unname(rt_approx$tau), pval = rt_approx$pval))
}

out <- list(
  generator = "tests/reference/generate_begg_switch_reference.R",
  R_version = R.version.string,
  metafor_version = as.character(packageVersion("metafor")),
  datasets = list(make(170, 170), make(171, 171))
)
write_json_file(out, OUT_FILE)
