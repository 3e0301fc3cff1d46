# Reference values for the SMD input forms Cohen's d, z and F (metarepro.pipeline.analysis / metarepro.stats.conversions).
#
# How to run (from the repository root):
#     Rscript tests/reference/generate_escalc_forms_reference.R
# Requirements: R with metafor (reference values were produced with 3.8-1), jsonlite.
#
# Writes: tests/reference/escalc_forms_reference.json
#   {generator, R_version, metafor_version, generated, notes, cases: [{name, call, input, vtype, yi, vi}]}
#
# Inputs are the statistics of data/raw/cytokines_mdd.csv that these forms were added for (Dhabhar 2009 d,
# El-Neely 2020 Z, Li 2026 z, Ryan 2022 F(1,112), Zhu 2022 F) plus two constructed rows. metafor takes d as
# di= and a t as ti=; metarepro uses a z (signed by the direction) as a t, and |t| = sqrt(F) for F(1, df).

suppressPackageStartupMessages({
  library(metafor)
  library(jsonlite)
})
source(file.path("tests", "reference", "reference_json.R"))

OUT_FILE <- file.path("tests", "reference", "escalc_forms_reference.json")
sign_of <- function(direction) ifelse(direction == "cases_higher", 1, -1)

d <- list(d = c(-0.96, 0.5, 1.2), n_cases = c(12, 25, 31), n_controls = c(11, 25, 30))
z <- list(z = c(4.71, -2.12, 1.5), direction = c("cases_higher", "cases_higher", "cases_lower"),
          n_cases = c(60, 63, 20), n_controls = c(30, 63, 22))
f <- list(F = c(7.94, 19.38, 2.25), direction = c("cases_higher", "cases_lower", "cases_higher"),
          n_cases = c(86, 57, 15), n_controls = c(57, 101, 18))

cases <- list()
for (vtype in c("LS", "UB")) {
  es <- escalc("SMD", di = d$d, n1i = d$n_cases, n2i = d$n_controls, vtype = vtype)
  cases[[length(cases) + 1]] <- list(name = paste0("SMD_from_d_", vtype), vtype = vtype,
    call = "escalc('SMD', di = d, n1i = n_cases, n2i = n_controls, vtype = vtype)",
    input = lapply(d, arr), yi = arr(as.numeric(es$yi)), vi = arr(as.numeric(es$vi)))
  es <- escalc("SMD", ti = sign_of(z$direction) * abs(z$z), n1i = z$n_cases, n2i = z$n_controls, vtype = vtype)
  cases[[length(cases) + 1]] <- list(name = paste0("SMD_from_z_", vtype), vtype = vtype,
    call = "escalc('SMD', ti = sign(direction) * abs(z), n1i = n_cases, n2i = n_controls, vtype = vtype)",
    input = lapply(z, arr), yi = arr(as.numeric(es$yi)), vi = arr(as.numeric(es$vi)))
  es <- escalc("SMD", ti = sign_of(f$direction) * sqrt(f$F), n1i = f$n_cases, n2i = f$n_controls, vtype = vtype)
  cases[[length(cases) + 1]] <- list(name = paste0("SMD_from_F_", vtype), vtype = vtype,
    call = "escalc('SMD', ti = sign(direction) * sqrt(F), n1i = n_cases, n2i = n_controls, vtype = vtype)",
    input = lapply(f, arr), yi = arr(as.numeric(es$yi)), vi = arr(as.numeric(es$vi)))
}

write_json_file(list(
  generator = "tests/reference/generate_escalc_forms_reference.R",
  R_version = R.version.string,
  metafor_version = as.character(packageVersion("metafor")),
  generated = format(Sys.time(), "%Y-%m-%d %H:%M:%S %Z"),
  notes = "SMD (Hedges' g, exact correction) from Cohen's d (di=), from z used as t (ti=), from F(1, df) via |t| = sqrt(F) (ti=)",
  cases = cases), OUT_FILE)
message("wrote ", OUT_FILE)
