# What metafor prints, for the tests of metarepro's printing (print(fit) in a notebook or console).
#
# How to run (from the repository root):
#     Rscript tests/reference/generate_print_reference.R
#
# Requirements: R with metafor (output produced with 3.8-1), metadat, clubSandwich (robust(..., clubSandwich = TRUE)).
#
# Writes tests/reference/print/<case>.txt (metafor's print output, UTF-8) and tests/reference/print/data.json
# (the yi, vi and moderators of every case, so the Python side fits the same data). Fits use
# control = list(threshold = 1e-13, tol = 1e-13, maxiter = 10000); printing rounds to 4 decimals.

suppressPackageStartupMessages({
  library(metafor)
  library(metadat)
  library(jsonlite)
  library(clubSandwich)
})
source(file.path("tests", "reference", "reference_json.R"))

OUT <- file.path("tests", "reference", "print")
CTRL <- list(threshold = 1e-13, tol = 1e-13, maxiter = 10000)
dir.create(OUT, showWarnings = FALSE)
options(width = 200)
save <- function(name, x) {
  force(x)  # fitted before the capture: permutest() reports its iterations while it runs
  writeLines(capture.output(print(x)), file.path(OUT, paste0(name, ".txt")), useBytes = TRUE)
}

norm <- escalc("SMD", m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i, n2i = n2i, data = dat.normand1999)
hack <- dat.hackshaw1998
knapp <- dat.knapp2017[!is.na(dat.knapp2017$difficulty), ]

save("rma_reml_z", rma(yi, vi, data = norm, control = CTRL))
save("rma_reml_knha", rma(yi, vi, data = norm, test = "knha", control = CTRL))
save("rma_ee", rma(yi, vi, data = norm, method = "EE", control = CTRL))
save("mods_reml_z", rma(yi, vi, mods = ~ difficulty, data = knapp, control = CTRL))
save("mods_reml_knha", rma(yi, vi, mods = ~ difficulty, data = knapp, test = "knha", control = CTRL))
save("regtest_rma", regtest(rma(yi, vi, data = hack, control = CTRL)))
save("regtest_lm", regtest(rma(yi, vi, data = hack, control = CTRL), model = "lm"))
save("trimfill_l0", trimfill(rma(yi, vi, data = hack, method = "EE", control = CTRL)))
save("leave1out", leave1out(rma(yi, vi, data = norm, control = CTRL)))
# a moderator given as a vector (metafor adds the intercept; the coefficient is named "mods")
save("mods_vector_knha", rma(yi, vi, mods = knapp$difficulty, data = knapp, test = "knha", control = CTRL))
# print.robust.rma: the model's heterogeneity, the clusters, then the cluster-robust tests with their footnote
knapp_re <- rma(yi, vi, data = knapp, control = CTRL)
save("robust_cr1", robust(knapp_re, cluster = knapp$study))
save("robust_cr2", robust(knapp_re, cluster = knapp$study, clubSandwich = TRUE))
save("robust_mods_cr1", robust(rma(yi, vi, mods = ~ difficulty, data = knapp, control = CTRL), cluster = knapp$study))
# the other diagnostics of a fit: influence, fail-safe N, permutation tests (exact), Begg's rank test
save("influence", influence(rma(yi, vi, data = norm, control = CTRL)))
save("fsn_rosenthal", fsn(yi, vi, data = norm))
save("fsn_orwin", fsn(yi, vi, data = norm, type = "Orwin"))
save("fsn_rosenberg", fsn(yi, vi, data = norm, type = "Rosenberg"))
save("permutest_mods", permutest(rma(yi, vi, mods = ~ difficulty, data = knapp[1:8, ], control = CTRL), exact = TRUE))
save("permutest_intercept", permutest(rma(yi, vi, data = norm, control = CTRL), exact = TRUE))
save("ranktest", ranktest(rma(yi, vi, data = norm, control = CTRL)))
# print.rma.mv: a three-level model (metafor's default optimizer; printing rounds to 4 decimals)
kon <- dat.konstantopoulos2011
save("rma_mv_multilevel", rma.mv(yi, vi, random = ~ 1 | district/school, data = kon))
kon$year_c <- kon$year - mean(kon$year)  # centred: metarepro's solver reports the raw year's fit as not converged
save("rma_mv_year", rma.mv(yi, vi, mods = ~ year_c, random = ~ 1 | district/school, data = kon, test = "t"))

write_json_file(list(
  generator = "tests/reference/generate_print_reference.R",
  metafor_version = as.character(packageVersion("metafor")),
  normand1999 = list(yi = arr(as.numeric(norm$yi)), vi = arr(as.numeric(norm$vi))),
  hackshaw1998 = list(yi = arr(hack$yi), vi = arr(hack$vi)),
  knapp2017 = list(yi = arr(knapp$yi), vi = arr(knapp$vi), difficulty = arr(knapp$difficulty), study = arr(knapp$study)),
  konstantopoulos2011 = list(yi = arr(kon$yi), vi = arr(kon$vi), district = arr(kon$district), school = arr(kon$school),
                             year = arr(kon$year))
), file.path(OUT, "data.json"))
