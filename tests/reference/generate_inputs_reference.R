# Sheets as R writes them, and metafor's fits of them, for the input-handling tests (issue 9).
#
# How to run (from the repository root):
#     Rscript tests/reference/generate_inputs_reference.R
#
# Requirements: R with metafor (values produced with 3.8-1), metadat, jsonlite.
#
# Writes:
#   tests/data/inputs/normand1999_metafor_names.csv  write.csv(dat.normand1999): metafor's column names
#   tests/data/inputs/knapp2017_write_csv2.csv       write.csv2 (';' and decimal comma), NA in 'difficulty'
#   tests/data/inputs/mcdaniel1994_write_csv.csv     write.csv, NA in 'type'
#   tests/reference/inputs_reference.json            the fits below
#
# All rma() fits use control = list(threshold = 1e-13, tol = 1e-13, maxiter = 10000); metafor drops rows
# with a missing moderator (na.action = "na.omit"), which is what the tests compare against.

suppressPackageStartupMessages({
  library(metafor)
  library(metadat)
  library(jsonlite)
})
source(file.path("tests", "reference", "reference_json.R"))

DATA_DIR <- file.path("tests", "data", "inputs")
OUT_FILE <- file.path("tests", "reference", "inputs_reference.json")
CTRL <- list(threshold = 1e-13, tol = 1e-13, maxiter = 10000)
dir.create(DATA_DIR, showWarnings = FALSE, recursive = TRUE)

model_record <- function(fit) {
  list(k = fit$k, coefficients = arr(names(coef(fit))), beta = arr(as.numeric(fit$beta)), se = arr(fit$se),
       pval = arr(fit$pval), tau2 = fit$tau2, QM = fit$QM, QMdf = arr(fit$QMdf), QMp = fit$QMp,
       QE = fit$QE, ci_lb = arr(fit$ci.lb), ci_ub = arr(fit$ci.ub))
}

# 1. dat.normand1999 as exported, metafor's names (n1i, m1i, sd1i, ...): SMD, REML; and level = 0.95
norm <- dat.normand1999
write.csv(norm, file.path(DATA_DIR, "normand1999_metafor_names.csv"), row.names = FALSE)
es <- escalc("SMD", m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i, n2i = n2i, data = norm)
normand <- list(percent = model_record(rma(yi, vi, data = es, control = CTRL)),
                proportion = model_record(rma(yi, vi, data = es, level = 0.95, control = CTRL)))

# 2. dat.knapp2017 with write.csv2 (European Excel's format); 'id' added because 'study' repeats
knapp <- cbind(id = paste0("knapp_", seq_len(nrow(dat.knapp2017))), dat.knapp2017)
write.csv2(knapp, file.path(DATA_DIR, "knapp2017_write_csv2.csv"), row.names = FALSE)
knapp_fit <- rma(yi, vi, mods = ~ difficulty, data = knapp, control = CTRL)
knapp_rec <- c(model_record(knapp_fit), list(dropped = arr(knapp$id[is.na(knapp$difficulty)])))

# 3. dat.mcdaniel1994 (correlations, ZCOR) with write.csv; 'type' is NA in some rows
mcd <- dat.mcdaniel1994
write.csv(mcd, file.path(DATA_DIR, "mcdaniel1994_write_csv.csv"), row.names = FALSE)
mes <- escalc("ZCOR", ri = ri, ni = ni, data = mcd)
mcd_rec <- list(
  subgroups = lapply(setNames(sort(unique(na.omit(mes$type))), sort(unique(na.omit(mes$type)))), function(level)
    model_record(rma(yi, vi, data = mes, subset = type == level & !is.na(type), control = CTRL))),
  moderator = model_record(rma(yi, vi, mods = ~ factor(type), data = mes, control = CTRL)),
  dropped_studies = arr(mes$study[is.na(mes$type)])
)

# 4. dat.bcg, log risk ratios: a model without intercept codes every level of a factor (model.matrix)
bcg <- escalc("RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)
bcg_fit <- rma(yi, vi, mods = ~ 0 + factor(alloc) + ablat, data = bcg, control = CTRL)
bcg_rec <- c(list(yi = arr(as.numeric(bcg$yi)), vi = arr(as.numeric(bcg$vi)), alloc = arr(bcg$alloc),
                  ablat = arr(bcg$ablat), X = arr(unname(split(model.matrix(~ 0 + factor(alloc) + ablat, bcg),
                                                                 seq_len(nrow(bcg)))))),
             model_record(bcg_fit))

write_json_file(list(
  generator = "tests/reference/generate_inputs_reference.R",
  R_version = R.version.string,
  metafor_version = as.character(packageVersion("metafor")),
  metadat_version = as.character(packageVersion("metadat")),
  rma_control = CTRL,
  normand1999_smd = normand,
  knapp2017_difficulty = knapp_rec,
  mcdaniel1994_type = mcd_rec,
  bcg_no_intercept = bcg_rec
), OUT_FILE)
