# References for binary outcomes, proportions and variability ratios (tests/stats/test_binary.py): metafor's escalc()
# for OR, RR, RD, PETO, PR, PLN, PLO, PAS, PFT, VR, CVR (with the zero-cell options add/to/drop00 and vtype), rma()
# on them (REML and DL, z and knha), rma.mh() (OR, RR, RD), rma.peto(), weights(), the pooled Freeman-Tukey
# proportion back-transformed by transf.ipft.hm, and what print() shows for rma.mh and rma.peto fits.
#
# How to run (from the repository root, after data/raw/export_metadat_binary.R):
#     Rscript tests/reference/generate_binary_reference.R
#
# Requirements: R with metafor (output produced with 3.8-1), metadat (1.2-0), jsonlite.
# Data: metadat's dat.bcg, dat.linde2005, dat.nielweise2007, dat.collins1985a, dat.collins1985b, dat.pritz1997,
# dat.normand1999; dat.moore1998 from data/raw/moore1998_topical_nsaids.csv (not in metadat 1.2-0); and small
# edge cases written below (a zero cell, a double-zero table, tables with only events, an empty arm).
#
# Writes tests/reference/binary_reference.json (every input and value, numbers as "%.17g") and
# tests/reference/print/{mh_*,peto_*}.txt. rma() fits use control = list(threshold = 1e-13, tol = 1e-13,
# maxiter = 10000); rma.mh, rma.peto and escalc are closed forms.

suppressPackageStartupMessages({
  library(metafor)
  library(metadat)
  library(jsonlite)
})
source(file.path("tests", "reference", "reference_json.R"))

CTRL <- list(threshold = 1e-13, tol = 1e-13, maxiter = 10000)
PRINTS <- file.path("tests", "reference", "print")
options(width = 200)

moore <- read.csv(file.path("data", "raw", "moore1998_topical_nsaids.csv"))
edge <- data.frame(  # zero cell, double zero (no events), only events in both arms, an empty arm, plain tables
  ai = c(0, 0, 9, 0, 2, 7, 12), bi = c(10, 12, 0, 0, 8, 3, 30),
  ci = c(3, 0, 11, 3, 4, 0, 20), di = c(7, 15, 0, 7, 6, 10, 25))

tables <- list(
  bcg = with(dat.bcg, list(ai = tpos, bi = tneg, ci = cpos, di = cneg)),
  linde2005 = with(dat.linde2005, list(ai = ai, bi = n1i - ai, ci = ci, di = n2i - ci)),
  moore1998 = with(moore, list(ai = Ee, bi = Ne - Ee, ci = Ec, di = Nc - Ec)),
  nielweise2007 = with(dat.nielweise2007, list(ai = ai, bi = n1i - ai, ci = ci, di = n2i - ci)),
  collins1985a = with(dat.collins1985a, list(ai = b.xti, bi = nti - b.xti, ci = b.xci, di = nci - b.xci)),
  collins1985b = with(dat.collins1985b, list(ai = pre.xti, bi = pre.nti - pre.xti, ci = pre.xci,
                                             di = pre.nci - pre.xci)),
  edge = as.list(edge))
proportions <- list(
  pritz1997 = with(dat.pritz1997, list(xi = xi, ni = ni)),
  nielweise2007_treated = with(dat.nielweise2007, list(xi = ai, ni = n1i)),
  edge = list(xi = c(0, 10, 3, 5, 1), ni = c(10, 10, 12, 20, 40)))
groups <- list(normand1999 = with(dat.normand1999, list(n1i = n1i, m1i = m1i, sd1i = sd1i, n2i = n2i, m2i = m2i,
                                                        sd2i = sd2i)))

# escalc settings: NULL = metafor's default for that argument
table_settings <- list(list(), list(to = "all"), list(to = "if0all"), list(to = "none"), list(drop00 = TRUE),
                       list(add = 1, to = "all"), list(vtype = "UB"), list(vtype = "AV"))
proportion_settings <- list(list(), list(to = "all"), list(to = "if0all"), list(to = "none"), list(add = 0.5),
                            list(vtype = "UB"), list(vtype = "AV"))
vtypes <- list(RD = c("LS", "UB", "AV"), PR = c("LS", "UB", "AV"), PLN = c("LS", "AV"), PLO = c("LS", "AV"))

allowed <- function(measure, s) is.null(s$vtype) || s$vtype %in% vtypes[[measure]]

fit_fields <- function(res) list(beta = as.numeric(res$beta), se = res$se, zval = res$zval, pval = res$pval,
                                 ci.lb = res$ci.lb, ci.ub = res$ci.ub, QE = res$QE, QEp = res$QEp, I2 = res$I2,
                                 H2 = res$H2, k = res$k)

escalcs <- list()
fits <- list()
add_escalc <- function(kind, dataset, measure, data, s) {
  es <- suppressWarnings(do.call(escalc, c(list(measure = measure), data, s)))
  escalcs[[length(escalcs) + 1]] <<- list(kind = kind, dataset = dataset, measure = measure, settings = s,
                                          yi = arr(as.numeric(es$yi)), vi = arr(as.numeric(es$vi)))
  if (length(s) == 0 && sum(!is.na(es$yi)) >= 3) {  # rma on metafor's default effect sizes
    for (method in c("REML", "DL")) for (test in c("z", "knha")) {
      res <- rma(yi, vi, data = es, method = method, test = test, control = CTRL)
      f <- c(list(dataset = dataset, measure = measure, method = method, test = test, tau2 = res$tau2),
             fit_fields(res))
      if (measure == "PFT") {  # the pooled proportion and its CI, back-transformed as metafor advises
        p <- predict(res, transf = transf.ipft.hm, targs = list(ni = data$ni))
        f$back <- list(pred = p$pred, ci.lb = p$ci.lb, ci.ub = p$ci.ub)
      }
      fits[[length(fits) + 1]] <<- f
    }
  }
}

for (d in names(tables)) for (m in c("OR", "RR", "RD", "PETO")) for (s in table_settings)
  if (allowed(m, s)) add_escalc("table", d, m, tables[[d]], s)
for (d in names(proportions)) for (m in c("PR", "PLN", "PLO", "PAS", "PFT")) for (s in proportion_settings)
  if (allowed(m, s)) add_escalc("proportion", d, m, proportions[[d]], s)
for (d in names(groups)) for (m in c("VR", "CVR")) add_escalc("groups", d, m, groups[[d]], list())

# rma.mh and rma.peto: metafor's defaults, then other zero-cell choices
pooled_settings <- list(list(), list(correct = FALSE), list(add = c(1/2, 1/2), to = c("only0", "only0")),
                        list(drop00 = c(FALSE, FALSE)), list(to = c("all", "if0all"), add = c(1, 1/2)),
                        list(drop00 = c(TRUE, TRUE)))
weights_of <- function(res) {
  op <- options(na.action = "na.exclude")  # one weight per input table (NA for one left out)
  on.exit(options(op))
  arr(as.numeric(weights(res)))
}
mh <- list()
peto <- list()
for (d in names(tables)) for (s in pooled_settings) {
  for (m in c("OR", "RR", "RD")) {
    res <- tryCatch(suppressWarnings(do.call(rma.mh, c(tables[[d]], list(measure = m), s))), error = function(e) NULL)
    if (is.null(res)) next
    mh[[length(mh) + 1]] <- c(list(dataset = d, measure = m, settings = s), fit_fields(res),
                              list(k.yi = res$k.yi, k.pos = res$k.pos, CO = res$CO, COp = res$COp, MH = res$MH,
                                   MHp = res$MHp, BD = res$BD, BDp = res$BDp, TA = res$TA, TAp = res$TAp,
                                   weights = weights_of(res)))
  }
  if (is.null(s$correct)) {
    res <- tryCatch(suppressWarnings(do.call(rma.peto, c(tables[[d]], s))), error = function(e) NULL)
    if (!is.null(res))
      peto[[length(peto) + 1]] <- c(list(dataset = d, settings = s), fit_fields(res),
                                    list(k.yi = res$k.yi, k.pos = res$k.pos, weights = weights_of(res)))
  }
}

save <- function(name, x) writeLines(capture.output(print(x)), file.path(PRINTS, paste0(name, ".txt")),
                                     useBytes = TRUE)
pooled <- function(f, d, ...) suppressWarnings(do.call(f, c(tables[[d]], list(...))))
save("mh_or_bcg", pooled(rma.mh, "bcg"))
save("mh_or_nielweise2007", pooled(rma.mh, "nielweise2007"))
save("mh_or_edge", pooled(rma.mh, "edge"))
save("mh_rr_linde2005", pooled(rma.mh, "linde2005", measure = "RR"))
save("mh_rd_moore1998", pooled(rma.mh, "moore1998", measure = "RD"))
save("peto_bcg", pooled(rma.peto, "bcg"))
save("peto_collins1985a", pooled(rma.peto, "collins1985a"))

write_json_file(list(
  generator = "tests/reference/generate_binary_reference.R",
  metafor_version = as.character(packageVersion("metafor")),
  metadat_version = packageDescription("metadat")$Version,
  R_version = R.version.string,
  tables = lapply(tables, function(t) lapply(t, function(x) arr(as.numeric(x)))),
  proportions = lapply(proportions, function(t) lapply(t, function(x) arr(as.numeric(x)))),
  groups = lapply(groups, function(t) lapply(t, function(x) arr(as.numeric(x)))),
  escalc = escalcs, rma = fits, rma_mh = mh, rma_peto = peto
), file.path("tests", "reference", "binary_reference.json"))
