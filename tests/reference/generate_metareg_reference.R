# Golden reference values from R metafor for the Python meta-regression (mixed-effects models with moderators)
# and the exact permutation tests (permutest).
#
# How to run (from the repository root):
#     Rscript tests/reference/generate_metareg_reference.R
# (about a minute: the exact permutation tests refit the model a few thousand times).
#
# Requirements: R with metafor (values produced with 3.8-1), metadat, jsonlite.
#
# Writes: tests/reference/metareg_reference.json
#   {generator, R_version, metafor_version, metadat_version, rma_control, notes,
#    cases: [{name, source, measure, yi, vi, moderators: {column: values}, mods, btt, level,
#             X: {names, rows}, fits: [{method, test, <model record>}]}],
#    permutest: [{name, source, yi, vi, moderators, mods, method, test, fit: <model record>,
#                 exact_iter, pval, QMp}]}
#
# All rma() fits use control = list(threshold = 1e-13, tol = 1e-13, maxiter = 10000). Numbers are written with
# 17 significant digits ("%.17g"); NA/NaN/Inf -> null.

suppressPackageStartupMessages({
  library(metafor)
  library(jsonlite)
})

OUT_FILE <- file.path("tests", "reference", "metareg_reference.json")
RMA_CONTROL <- list(threshold = 1e-13, tol = 1e-13, maxiter = 10000)
METHODS <- c("EE", "DL", "REML", "ML", "PM", "SJ", "HE", "HS", "EB")
TESTS <- c("z", "knha")

num <- function(x) {
  x <- as.numeric(unname(unclass(x)))
  s <- ifelse(is.finite(x), sprintf("%.17g", x), "null")
  structure(paste0("[", paste(s, collapse = ","), "]"), class = "json")
}
scalar <- function(x) {
  if (is.null(x) || length(x) == 0) return(structure("null", class = "json"))
  x <- as.numeric(x)[1]
  structure(if (is.finite(x)) sprintf("%.17g", x) else "null", class = "json")
}

model_record <- function(res) {
  list(
    k = scalar(res$k), p = scalar(res$p),
    names = I(rownames(res$beta)),
    b = num(res$beta), se = num(res$se), zval = num(res$zval), pval = num(res$pval),
    ci_lb = num(res$ci.lb), ci_ub = num(res$ci.ub),
    vb = num(t(res$vb)),  # row-major p x p
    btt = num(res$btt),
    QM = scalar(res$QM), QMdf = num(res$QMdf), QMp = scalar(res$QMp),
    tau2 = scalar(res$tau2), se_tau2 = scalar(res$se.tau2),
    I2 = scalar(res$I2), H2 = scalar(res$H2), R2 = scalar(res$R2),
    QE = scalar(res$QE), QEp = scalar(res$QEp))
}

fit_all <- function(yi, vi, mods, data, btt = NULL, level = 95, methods = METHODS) {
  out <- list()
  for (m in methods) for (t in TESTS) {
    args <- list(yi = yi, vi = vi, mods = mods, data = data, method = m, test = t, level = level,
                 control = RMA_CONTROL)
    if (!is.null(btt)) args$btt <- btt
    warns <- character(0)
    res <- withCallingHandlers(do.call(rma, args), warning = function(w) {
      warns <<- c(warns, conditionMessage(w)); invokeRestart("muffleWarning")
    })
    rec <- c(list(method = m, test = t), model_record(res), list(warnings = I(warns)))
    out[[length(out) + 1]] <- rec
  }
  out
}

case_record <- function(name, source, measure, dat, mods, columns, btt = NULL, level = 95) {
  message("  ", name)
  res <- rma(yi, vi, mods = mods, data = dat, method = "REML", control = RMA_CONTROL)
  list(name = name, source = source, measure = measure,
       yi = num(dat$yi), vi = num(dat$vi),
       moderators = setNames(lapply(columns, function(cn) {
         x <- dat[[cn]]; if (is.numeric(x)) num(x) else I(as.character(x)) }), columns),
       mods = paste(deparse(mods), collapse = ""),
       btt = if (is.null(btt)) NULL else num(btt), level = scalar(level),
       X = list(names = I(colnames(res$X)), rows = lapply(seq_len(nrow(res$X)), function(i) num(res$X[i, ]))),
       fits = fit_all(dat$yi, dat$vi, mods, dat, btt = btt, level = level))
}

permutest_record <- function(name, source, dat, mods, columns, method, test) {
  message("  permutest ", name, " / ", method, " / ", test)
  res <- if (is.null(mods)) rma(yi, vi, data = dat, method = method, test = test, control = RMA_CONTROL) else
    rma(yi, vi, mods = mods, data = dat, method = method, test = test, control = RMA_CONTROL)
  pt <- permutest(res, exact = TRUE, progbar = FALSE)
  list(name = name, source = source, yi = num(dat$yi), vi = num(dat$vi),
       moderators = if (length(columns)) setNames(lapply(columns, function(cn) {
         x <- dat[[cn]]; if (is.numeric(x)) num(x) else I(as.character(x)) }), columns) else NULL,
       mods = if (is.null(mods)) NULL else paste(deparse(mods), collapse = ""),
       method = method, test = test, fit = model_record(res),
       exact_iter = scalar(pt$exact.iter), pval = num(pt$pval), QMp = scalar(pt$QMp))
}

main <- function() {
  bcg <- escalc(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)
  bcg$alloc <- as.character(bcg$alloc)
  ml <- escalc(measure = "ZCOR", ri = ri, ni = ni, data = dat.molloy2014)
  ml$design <- as.character(ml$design)
  ml$controls <- as.character(ml$controls)
  bd <- dat.bangertdrowns2004
  bd <- bd[complete.cases(bd[, c("yi", "vi", "length", "imag", "meta")]), ]
  src_bcg <- "metadat::dat.bcg (13 rows); escalc(measure='RR', ai=tpos, bi=tneg, ci=cpos, di=cneg)"
  src_ml <- "metadat::dat.molloy2014 (16 rows); escalc(measure='ZCOR', ri=ri, ni=ni)"
  src_bd <- "metadat::dat.bangertdrowns2004 (SMD yi/vi as shipped), rows complete in length/imag/meta"

  cases <- list(
    case_record("bcg_ablat_year", src_bcg, "RR", bcg, ~ ablat + year, c("ablat", "year")),
    case_record("bcg_alloc", src_bcg, "RR", bcg, ~ factor(alloc), c("alloc")),
    case_record("bcg_ablat_alloc_btt2_level90", src_bcg, "RR", bcg, ~ ablat + factor(alloc), c("ablat", "alloc"),
                btt = 2, level = 90),
    case_record("molloy_meanage_design", src_ml, "ZCOR", ml, ~ meanage + factor(design), c("meanage", "design")),
    case_record("molloy_controls_boundary", paste(src_ml, "; tau2 estimates at or near the boundary 0"), "ZCOR", ml,
                ~ factor(controls), c("controls")),
    case_record("bangertdrowns_length_imag_meta", src_bd, "SMD", bd, ~ length + imag + meta,
                c("length", "imag", "meta"))
  )

  b10 <- bcg[1:10, ]; b7 <- bcg[1:7, ]; b9 <- bcg[1:9, ]
  perms <- list()
  for (m in c("REML", "DL")) for (t in TESTS) {
    perms[[length(perms) + 1]] <- permutest_record("bcg1-10_intercept", "dat.bcg rows 1-10, RR", b10, NULL,
                                                   character(0), m, t)
    perms[[length(perms) + 1]] <- permutest_record("bcg1-7_ablat", "dat.bcg rows 1-7, RR", b7, ~ ablat,
                                                   c("ablat"), m, t)
  }
  perms[[length(perms) + 1]] <- permutest_record("bcg1-9_alloc", "dat.bcg rows 1-9, RR", b9, ~ factor(alloc),
                                                 c("alloc"), "REML", "z")
  perms[[length(perms) + 1]] <- permutest_record("bcg1-7_ablat_year", "dat.bcg rows 1-7, RR", b7, ~ ablat + year,
                                                 c("ablat", "year"), "PM", "knha")

  out <- list(
    generator = "tests/reference/generate_metareg_reference.R",
    R_version = R.version.string,
    metafor_version = as.character(packageVersion("metafor")),
    metadat_version = as.character(packageVersion("metadat")),
    rma_control = list(threshold = scalar(1e-13), tol = scalar(1e-13), maxiter = scalar(10000)),
    notes = paste(
      "I2, H2, R2 in percent as metafor reports them. For test = knha, zval is a t statistic and QM an F statistic",
      "(QM/m) on QMdf = (m, k - p). vb is row-major. permutest: exact = TRUE (all distinct row permutations of X,",
      "or all 2^k sign flips for the intercept-only model)."),
    cases = cases, permutest = perms)
  txt <- toJSON(out, auto_unbox = TRUE, json_verbatim = TRUE, null = "null", na = "null", pretty = TRUE, digits = NA)
  writeLines(txt, OUT_FILE, useBytes = TRUE)
  message("wrote ", OUT_FILE)
}

main()
