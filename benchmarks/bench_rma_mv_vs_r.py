"""rma_mv against R metafor's rma.mv, structure by structure (run on demand; not a test).

    .venv/bin/python benchmarks/bench_rma_mv_vs_r.py [--repeats 5] [--min-seconds 0.2] [--only NAME ...]
                                                      [--r-json FILE]
    .venv/bin/python benchmarks/bench_rma_mv_vs_r.py --scale [--k 100000]   # k = 100,000: ours only (memory too)

One Rscript run loads (metadat) or simulates every data set, fits each model with metafor's defaults and times
it inside R (R start-up and package loading excluded), and writes the data, the design matrix and its estimates
as JSON; Python then fits the same data with ``rma_mv`` (defaults; import excluded). Each side times a batch of
n fits (n chosen on the first fit so that a batch lasts at least ``--min-seconds``) ``--repeats`` times; the
figure is the median seconds per fit. Printed per model: k, ours (s), metafor (s), ratio ours/metafor (below 1:
faster than metafor), and |Δ logLik| to metafor's optimum as a check that both fitted the same model.
``--r-json FILE`` keeps R's side (data, estimates, timings) in FILE and reuses it when it exists, so that two
versions of the package can be timed against the same R run.

``--scale`` times a three-level model and a multivariate UN model at k = 100,000 (ours only: metafor's dense
k×k marginal covariance does not fit in memory there), with peak memory traced by tracemalloc.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from metarepro import BlockV, rma_mv, robust


@dataclass
class Case:
    """One model: R code that leaves ``dat`` (and ``V`` when it is a matrix), the rma.mv call, and the
    ``rma_mv`` arguments as a function of the exported columns."""

    name: str
    prep: str
    call: str
    cols: list
    py: object
    v_cluster: str | None = None  # V is a block-diagonal matrix with blocks by this column
    extra: dict = field(default_factory=dict)


ASSINK = "dat <- dat.assink2016"
KONST = "dat <- dat.konstantopoulos2011"
BERKEY = """dat <- dat.berkey1998
V <- bldiag(lapply(split(dat[c("v1i", "v2i")], dat$trial), as.matrix))"""
KNAPP = """dat <- dat.knapp2017
V <- vcalc(vi, cluster = study, grp1 = group1, grp2 = group2, w1 = n_sz, w2 = n_hc, data = dat)"""
ISHAK = """dat <- reshape(dat.ishak2007, direction = "long", idvar = "study", v.names = c("yi", "vi"),
               varying = list(c(2, 4, 6, 8), c(3, 5, 7, 9)))
dat <- dat[order(dat$study, dat$time), ]
dat <- dat[!is.na(dat$yi), ]"""
SIM3 = """set.seed(20261206)
samples <- sample(1:3, 80, replace = TRUE)
study <- rep(seq_along(samples), samples)
effects <- sample(1:3, length(study), replace = TRUE)
sample_id <- rep(seq_along(study), effects)
dat <- data.frame(study = rep(study, effects), sample = sample_id, esid = seq_along(sample_id))
k <- nrow(dat)
dat$vi <- runif(k, 0.01, 0.1)
dat$x <- rnorm(k)
dat$yi <- 0.3 + 0.1 * dat$x + rnorm(max(dat$study), 0, sqrt(0.04))[dat$study] +
  rnorm(max(dat$sample), 0, sqrt(0.02))[dat$sample] + rnorm(k, 0, sqrt(0.01)) + rnorm(k) * sqrt(dat$vi)"""
SIM = """set.seed(20261205)
sizes <- sample(1:7, 500, replace = TRUE)
sizes <- sizes[cumsum(sizes) <= 2000]
sizes <- c(sizes, 2000 - sum(sizes))
sizes <- sizes[sizes > 0]
study <- rep(seq_along(sizes), sizes)
esid <- unlist(lapply(sizes, seq_len))
vi <- runif(2000, 0.01, 0.1)
x <- rnorm(2000)
yi <- 0.3 + 0.1 * x + rnorm(length(sizes), 0, sqrt(0.05))[study] + rnorm(2000, 0, sqrt(0.02)) + rnorm(2000) * sqrt(vi)
dat <- data.frame(study = study, esid = esid, yi = yi, vi = vi, x = x)"""


def _num(column):
    """An exported (character) column as numbers, so that AR's levels sort as R's factor() sorts numbers."""
    return column.astype(float)


def _X(d):
    return np.asarray(d["X"], dtype=float)


CASES = [
    Case("2-level ~ 1 | study (konstantopoulos2011)", KONST, "rma.mv(yi, vi, random = ~ 1 | study, data = dat)",
         ["study"], lambda d: {"nested": [d["study"]]}),
    Case("2-level ~ 1 | study/esid (assink2016)", ASSINK, "rma.mv(yi, vi, random = ~ 1 | study/esid, data = dat)",
         ["study", "esid"], lambda d: {"nested": [d["study"], d["esid"]]}),
    Case("3-level ~ 1 | study/sample/esid, mods (simulated)", SIM3,
         "rma.mv(yi, vi, mods = ~ x, random = ~ 1 | study/sample/esid, data = dat)",
         ["study", "sample", "esid"], lambda d: {"nested": [d["study"], d["sample"], d["esid"]]}),
    Case("knapp2017 ~ 1 | study/comp, V from vcalc", KNAPP, "rma.mv(yi, V, random = ~ 1 | study/comp, data = dat)",
         ["study", "comp"], lambda d: {"nested": [d["study"], d["comp"]]}, v_cluster="study"),
    *[Case(f"berkey1998 ~ outcome | trial, {s}", BERKEY,
           f'rma.mv(yi, V, mods = ~ outcome - 1, random = ~ outcome | trial, struct = "{s}", data = dat)',
           ["trial", "outcome"], lambda d, s=s: {"inner": d["outcome"], "outer": d["trial"], "struct": s},
           v_cluster="trial") for s in ("CS", "HCS", "UN")],  # fmt: skip
    *[Case(f"assink2016 ~1|study + ~ deltype | study, {s}", ASSINK,
           f'rma.mv(yi, vi, random = list(~ 1 | study, ~ deltype | study), struct = "{s}", data = dat)',
           ["study", "deltype"],
           lambda d, s=s: {"nested": [d["study"]], "inner": d["deltype"], "outer": d["study"], "struct": s})
      for s in ("CS", "HCS", "UN")],  # fmt: skip
    Case("ishak2007 ~ time | study, AR", ISHAK,
         'rma.mv(yi, vi, mods = ~ factor(time) - 1, random = ~ time | study, struct = "AR", data = dat)',
         ["study", "time"], lambda d: {"inner": _num(d["time"]), "outer": d["study"], "struct": "AR"}),
    Case("konst. ~ school | district, AR (11 levels)", KONST,
         'rma.mv(yi, vi, random = ~ school | district, struct = "AR", data = dat)',
         ["school", "district"], lambda d: {"inner": _num(d["school"]), "outer": d["district"], "struct": "AR"}),
    Case("konst. ~ factor(study) | district, CS (56 levels)", KONST,
         'rma.mv(yi, vi, random = ~ factor(study) | district, struct = "CS", data = dat)',
         ["study", "district"], lambda d: {"inner": d["study"], "outer": d["district"], "struct": "CS"}),
    # metafor's dense k×k default takes minutes a fit here; its sparse = TRUE is the fair (faster) comparison
    Case("simulated k = 2,000 ~ 1 | study/esid, mods (sparse)", SIM,
         "rma.mv(yi, vi, mods = ~ x, random = ~ 1 | study/esid, data = dat, sparse = TRUE)", ["study", "esid"],
         lambda d: {"nested": [d["study"], d["esid"]]}),
]  # fmt: skip

R_HEAD = r"""
suppressMessages({library(metafor); library(jsonlite)})
args <- commandArgs(trailingOnly = TRUE)
reps <- as.integer(args[2]); min_seconds <- as.numeric(args[3])
seconds_per_fit <- function(f) {
  t0 <- proc.time()[["elapsed"]]; f(); first <- proc.time()[["elapsed"]] - t0
  n <- max(1L, as.integer(ceiling(min_seconds / max(first, 1e-4))))
  batch <- function() {t0 <- proc.time()[["elapsed"]]; for (i in seq_len(n)) f(); proc.time()[["elapsed"]] - t0}
  median(replicate(reps, batch())) / n
}
out <- list()
"""

R_CASE = r"""
local({{
{prep}
fit <- {call}
rec <- list(k = fit$k, logLik = as.numeric(logLik(fit)), beta = as.numeric(fit$beta),
            sigma2 = if (fit$withS) fit$sigma2 else NULL, tau2 = if (fit$withG) fit$tau2 else NULL,
            rho = if (fit$withG) fit$rho else NULL, X = unname(model.matrix(fit)), yi = as.numeric(dat$yi))
rec$seconds <- seconds_per_fit(function() {call})
if (exists("V", inherits = FALSE)) {{
  rec$vi <- NULL
  rec$V <- lapply(split(seq_len(nrow(dat)), dat[[{v_cluster!r}]]), function(i) unname(V[i, i, drop = FALSE]))
}} else rec$vi <- as.numeric(dat$vi)
for (col in c({cols})) rec[[col]] <- as.character(dat[[col]])
out[[{name!r}]] <<- rec
}})
"""


def run_r(cases, repeats, min_seconds):
    """Rscript over all cases; returns {name: record} (None when Rscript/metafor is missing)."""
    if shutil.which("Rscript") is None:
        return None
    script = R_HEAD
    for c in cases:
        cols = ", ".join(repr(x) for x in c.cols)
        script += R_CASE.format(prep=c.prep, call=c.call, v_cluster=c.v_cluster, cols=cols, name=c.name)
    script += 'writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, null = "null"), args[1])\n'
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.R"
        path.write_text(script)
        out = Path(tmp) / "out.json"
        done = subprocess.run(["Rscript", str(path), str(out), str(repeats), str(min_seconds)],
                              capture_output=True, text=True)  # fmt: skip
        if done.returncode != 0:
            sys.exit(f"Rscript failed:\n{done.stderr}")
        return json.loads(out.read_text())


def block_v(rec, cluster):
    cluster = np.asarray(cluster)
    labels = list(dict.fromkeys(cluster.tolist()))
    blocks = {lab: np.atleast_2d(np.asarray(rec["V"][str(lab)], dtype=float)) for lab in labels}
    return BlockV(cluster, blocks)


def seconds_per_fit(fn, repeats, min_seconds):
    start = time.perf_counter()
    out = fn()
    first = time.perf_counter() - start
    n = max(1, int(np.ceil(min_seconds / max(first, 1e-4))))
    batches = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        batches.append((time.perf_counter() - start) / n)
    return out, float(np.median(batches))


def compare(args):
    cases = [c for c in CASES if not args.only or any(o.lower() in c.name.lower() for o in args.only)]
    if args.r_json and Path(args.r_json).exists():  # R's side from an earlier run (e.g. to time two commits)
        ref = json.loads(Path(args.r_json).read_text())
    else:
        ref = run_r(cases, args.repeats, args.min_seconds)
        if ref is None:
            sys.exit("Rscript with metafor is needed for the comparison (or run --scale)")
        if args.r_json:
            Path(args.r_json).write_text(json.dumps(ref))
    print(f"{'model':54s} {'k':>5s} {'ours s':>9s} {'metafor s':>10s} {'ratio':>7s} {'|dlogLik|':>10s} conv")
    for c in cases:
        rec = ref[c.name]
        d = {col: np.asarray(rec[col]) for col in c.cols}
        V = block_v(rec, d[c.v_cluster]) if c.v_cluster else np.asarray(rec["vi"], dtype=float)
        yi = np.asarray(rec["yi"], dtype=float)
        kwargs = c.py(d)
        try:
            fit, ours = seconds_per_fit(lambda V=V, yi=yi, kw=kwargs, rec=rec: rma_mv(yi, V, _X(rec), **kw),
                                        args.repeats, args.min_seconds)  # fmt: skip
        except ValueError as err:
            print(f"{c.name:54s} {rec['k']:5d} {'n/a':>9s} {rec['seconds']:10.4f}   ({err})")
            continue
        dll = abs(fit.logLik - rec["logLik"])
        print(f"{c.name:54s} {rec['k']:5d} {ours:9.4f} {rec['seconds']:10.4f} {ours / rec['seconds']:7.2f} "
              f"{dll:10.2e} {fit.converged}")  # fmt: skip


# ------------------------------------------------------------------------------------------------- scale (ours)
def simulate(k, max_cluster, rng):
    sizes = []
    while sum(sizes) < k:
        sizes.append(int(rng.integers(1, max_cluster + 1)))
    sizes[-1] -= sum(sizes) - k
    study = np.repeat(np.arange(len(sizes)), sizes)
    effect = np.concatenate([np.arange(s) for s in sizes])
    vi = rng.uniform(0.01, 0.1, size=k)
    yi = 0.3 + rng.normal(0, np.sqrt(0.05), len(sizes))[study] + rng.normal(0, np.sqrt(0.02), k)
    yi += rng.normal(size=k) * np.sqrt(vi)
    return yi, vi, study, effect


def simulate_multivariate(k, rng, m=4):
    n = k // m
    sample = np.repeat(np.arange(n), m)
    marker = np.tile(np.arange(m), n)
    G = 0.04 * (0.6 * np.ones((m, m)) + 0.4 * np.eye(m))
    u = rng.multivariate_normal(np.zeros(m), G, size=n).ravel()
    vi = rng.uniform(0.01, 0.1, size=n * m)
    blocks = {}
    for s in range(n):
        sd = np.sqrt(vi[s * m : (s + 1) * m])
        blocks[s] = (0.5 * np.ones((m, m)) + 0.5 * np.eye(m)) * sd[:, None] * sd[None, :]
    e = np.concatenate([rng.multivariate_normal(np.zeros(m), blocks[s]) for s in range(n)])
    X = np.eye(m)[marker]
    return 0.2 + u + e, BlockV(sample, blocks), X, marker, sample


def measured(fn, *args, **kwargs):
    """(result, seconds, peak MiB traced by tracemalloc) of one call."""
    tracemalloc.start()
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return out, seconds, peak


def scale(args):
    max_cluster = 10
    yi, vi, study, effect = simulate(args.k, max_cluster, np.random.default_rng(args.seed))
    print(f"k = {args.k:,} effects in {study.max() + 1:,} studies of 1-{max_cluster} effects")
    fit, seconds, peak = measured(rma_mv, yi, vi, nested=[study, effect])
    print(f"rma_mv three-level REML: {seconds:.2f} s, peak {peak:.0f} MB, {fit.iterations} iterations, "
          f"converged {fit.converged}; sigma2 = {fit.sigma2.round(5)}, estimate {fit.beta[0]:.5f}")  # fmt: skip
    for cs in (False, True):
        rob, seconds, peak = measured(robust, fit, study, clubSandwich=cs)
        print(f"robust {rob.vbest}: {seconds:.2f} s, peak {peak:.0f} MB; se {rob.se[0]:.5f}, df {rob.dfs[0]:.1f}")
    yi, V, X, marker, sample = simulate_multivariate(args.k, np.random.default_rng(args.seed))
    fit, seconds, peak = measured(rma_mv, yi, V, X, inner=marker, outer=sample, struct="UN")
    print(f"rma_mv multivariate UN (4 markers, {sample.max() + 1:,} samples): {seconds:.2f} s, peak {peak:.0f} MB, "
          f"{fit.iterations} iterations, converged {fit.converged}; tau2 = {fit.tau2.round(4)}")  # fmt: skip


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--min-seconds", type=float, default=0.2, help="shortest timed batch of fits")
    parser.add_argument("--only", nargs="*", help="models whose name contains one of these (case-insensitive)")
    parser.add_argument("--r-json", help="R's records: read from this file if it exists, else written to it")
    parser.add_argument("--scale", action="store_true", help="k = --k three-level and UN fits, ours only")
    parser.add_argument("--k", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    scale(args) if args.scale else compare(args)


if __name__ == "__main__":
    main()
