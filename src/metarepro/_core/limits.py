"""Sizes beyond which an analysis changes how it computes or shows something, because the plain way grows faster
than k log k (k: studies, or rows of a figure or table). Every switch is said where it happens: in the table or
JSON record, in the figure's title or note, and in the report section. Measured on this project's 2-core machine
(``benchmarks/bench_scale.py``; the numbers quoted are from there and from README "Large analyses").

Each step reads its limit as a keyword argument defaulting to the constant here, so tests can inject a small one.
"""

from __future__ import annotations

# Begg's rank test: the exact null distribution of Kendall's τ costs O(k³) (0.03 s at k = 200, 1 s at 1,000,
# ~17 min at 10,000). metafor 3.8-1 asks R's cor.test for it at every k without ties, but R's exact p is NA from
# n = 171 on (pkendall divides by gamma(n + 1), which overflows a double; R's cor.test itself uses the normal
# approximation from n = 50 unless asked): metafor returns p = NA there, and later metafor versions fall back to
# exact = FALSE. So up to k = 170 we give the exact p, as metafor, and above it the normal approximation with the
# tie-corrected variance, as ``ranktest(..., exact = FALSE)`` (tests/reference/generate_begg_switch_reference.R).
# At k = 170 the two p values differ by 2% of p; from k = 200 on by < 0.2% (bench: exact vs approximate).
BEGG_EXACT_MAX_K = 170

# Leave-one-out, influence (and Baujat) and cumulative meta-analysis refit the model k times: O(k²) time (the
# refits are batched in row chunks, so memory stays O(k)). Measured (REML, Knapp-Hartung, both together): 0.4 s at
# k = 2,000, 2 s at 5,000, 26 s at 10,000 (the chunks then no longer fit the CPU caches). Above this k they are
# not computed: each of their tables is one row whose ``note`` says why, and so do their figures and the report.
REFIT_MAX_K = 5_000

# metafor's permutation test of a meta-regression refits the model ``permutations`` (default 1,000) times:
# 3 s at k = 2,000, 12 s at 5,000, 28-72 s at 10,000 and ~1,000 × 0.1 s at 10^6. Above this k the meta-regression
# table says it was skipped (``permutation_note``); the model's own test is reported as always.
PERMUTATION_MAX_K = 5_000

# Forest-type figures (forest, leave-one-out, cumulative, subgroup forest) draw one row per study, 0.2 inch each:
# drawing and saving took 23 ms per row (68 s for 3,000 rows) and the PNG grows 30 px per row. Above this many
# study rows a figure switches to a summary form, said in a line under its title (PNG then ~1,100 px tall).
FIGURE_MAX_ROWS = 200

# Rows of a study-level table written into the report section (the row account, the influence table): each
# row is ~0.5-2 kB of HTML (17.5 MB at k = 5,000). Above this many rows the section gives the counts and names
# the CSV file that holds every row.
SECTION_MAX_ROWS = 200

# Scatter plots (funnel, Baujat, bubble) draw one vector marker per study up to this many studies: 150 bytes of
# SVG per funnel or Baujat point, 740 per bubble-plot point (each its own size), so at most ~0.4 MB per figure.
# Beyond, they draw the studies' density (hexagonal bins, one embedded image), which costs the same at any k
# (drawing 10^5 markers took 12 s).
VECTOR_MAX_POINTS = 500

# pooled.json's lists of one value per pooled study (``study_years``; ``without_flagged``'s ``excluded_lines``) take
# ~6-8 bytes a study (24 MB and 8 MB at k = 10^6, and the report job reads the record whole). Above this many
# studies the record holds their summary instead (``study_year_counts``: [year, count] pairs; ``k_flagged``: the
# count); the per-study values are in effects.csv.
RECORD_LIST_MAX_K = 10_000

# metafor.R holds the values it needs per row beside effects.csv's (escalc's group data, the subgroup, moderator
# and cumulative-order values) as R vectors: ~90 bytes a row (91.5 MB and ~20 s to write at k = 10^6). Above this
# many rows (analyses without a dependence model) effects.csv carries them as extra columns, which the script reads.
SCRIPT_INLINE_MAX_ROWS = 10_000

# How many refit rows x studies one batch of refits may hold at once (float64 arrays: ~32 MB each).
REFIT_CHUNK_ELEMENTS = 2**22
