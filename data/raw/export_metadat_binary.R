# Two binary-outcome datasets of R package metadat, written with R's write.csv for example configs and the
# binary-outcome references (tests/reference/generate_binary_reference.R).
#
# How to run (from the repository root):
#     Rscript data/raw/export_metadat_binary.R [path of a metadat source checkout]
#
# * linde2005_st_johns_wort.csv: dat.linde2005 (metadat >= 1.0-0; written with 1.2-0): Linde K, Berner M,
#   Egger M, Mulrow C (2005). St John's wort for depression: meta-analysis of randomised controlled trials.
#   Br J Psychiatry 186:99-107, doi:10.1192/bjp.186.2.99 (Table 1 and Figure 3).
# * moore1998_topical_nsaids.csv: dat.moore1998 (metadat >= 1.6-0, added in GitHub wviechtb/metadat commit
#   a6362a5, 2025-08-01): Moore RA, Tramer MR, Carroll D, Wiffen PJ, McQuay HJ (1998). Quantitive systematic
#   review of topically applied non-steroidal anti-inflammatory drugs. BMJ 316:333-338,
#   doi:10.1136/bmj.316.7128.333. With an older metadat, give the path of a metadat source checkout: its
#   data/dat.moore1998.rda is loaded (the one used here: commit 0cb96ce, metadat 1.7-2).
#
# The datasets' columns are written unchanged (write.csv, without row names); two columns are appended so that
# every row names its source: `source` and `location` (the dataset and its row).

suppressPackageStartupMessages(library(metadat))

OUT <- file.path("data", "raw")
args <- commandArgs(trailingOnly = TRUE)

with_source <- function(dat, name, source) {
  dat$source <- source
  dat$location <- sprintf("%s row %d", name, seq_len(nrow(dat)))
  dat
}

linde <- with_source(dat.linde2005, "dat.linde2005", paste0(
  "Linde K et al. (2005) Br J Psychiatry 186:99-107, doi:10.1192/bjp.186.2.99, Table 1 and Figure 3; ",
  "R package metadat ", packageDescription("metadat")$Version, " dat.linde2005"))
write.csv(linde, file.path(OUT, "linde2005_st_johns_wort.csv"), row.names = FALSE)

if (exists("dat.moore1998")) {
  moore <- dat.moore1998
  from <- paste0("R package metadat ", packageDescription("metadat")$Version, " dat.moore1998")
} else {
  if (length(args) < 1) stop("dat.moore1998 needs metadat >= 1.6-0, or the path of a metadat source checkout")
  load(file.path(args[1], "data", "dat.moore1998.rda"))
  moore <- dat.moore1998
  from <- "R package metadat 1.7-2 (GitHub wviechtb/metadat, commit 0cb96ce) dat.moore1998"
}
moore <- with_source(moore, "dat.moore1998", paste0(
  "Moore RA et al. (1998) BMJ 316:333-338, doi:10.1136/bmj.316.7128.333; ", from))
write.csv(moore, file.path(OUT, "moore1998_topical_nsaids.csv"), row.names = FALSE)
