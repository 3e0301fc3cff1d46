"""Speed and memory of the engine (run on demand; not a test).

    .venv/bin/python benchmarks/bench_rma.py [--batch 10000] [--k 20] [--big 1000000] [--r-fits 200]

1. one batch of B meta-analyses of k studies, REML + knha, all fields (Q-profile CI included);
2. one REML fit of k = 1,000,000 studies;
3. if Rscript with metafor is available, the same per-fit work in R (rma + confint + predict) on a
   subset, and the throughput ratio.
Peak memory is measured with tracemalloc around each call (numpy allocations are traced).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

from metarepro import rma, rma_batch

R_SCRIPT = """
suppressMessages(library(metafor))
d <- read.csv("{path}")
ids <- unique(d$id)
failed <- 0
t0 <- proc.time()[["elapsed"]]
for (i in ids) {{
  s <- d[d$id == i, ]
  # metafor's default Fisher scoring (maxiter 100) fails on some simulated data sets; time them anyway
  fit <- try(rma(s$yi, s$vi, method = "REML", test = "knha"), silent = TRUE)
  if (!inherits(fit, "try-error")) {{
    ci <- confint(fit)
    pr <- predict(fit)
  }} else failed <- failed + 1
}}
cat(failed, (proc.time()[["elapsed"]] - t0) / length(ids), "\\n")
"""


def simulate(batch, k, rng):
    vi = rng.uniform(0.01, 0.2, size=(batch, k))
    tau2 = rng.uniform(0.0, 0.1, size=(batch, 1))
    yi = 0.3 + rng.normal(size=(batch, k)) * np.sqrt(vi + tau2)
    return yi, vi


def measured(fn, *args, **kwargs):
    tracemalloc.start()
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return out, seconds, peak / 2**20


def r_seconds_per_fit(yi, vi, n_fits):
    if shutil.which("Rscript") is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.csv"
        ids = np.repeat(np.arange(n_fits), yi.shape[1])
        rows = np.column_stack([ids, yi[:n_fits].ravel(), vi[:n_fits].ravel()])
        np.savetxt(path, rows, delimiter=",", header="id,yi,vi", comments="", fmt=["%d", "%.17g", "%.17g"])
        done = subprocess.run(["Rscript", "-e", R_SCRIPT.format(path=path)], capture_output=True, text=True)
        if done.returncode != 0:
            return None
        failed, per_fit = done.stdout.split()[-2:]
        return float(per_fit), int(failed)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--big", type=int, default=1_000_000)
    parser.add_argument("--r-fits", type=int, default=200, help="fits timed in R (0 to skip)")
    args = parser.parse_args()
    rng = np.random.default_rng(20261126)

    yi, vi = simulate(args.batch, args.k, rng)
    rma_batch(yi[:10], vi[:10], method="REML", test="knha")  # warm-up (imports, caches)
    fits, seconds, peak = measured(rma_batch, yi, vi, method="REML", test="knha")
    rate = args.batch / seconds
    print(f"batch: {args.batch} fits of k = {args.k}, REML + knha: {seconds:.3f} s, {rate:,.0f} fits/s, "
          f"peak {peak:.0f} MiB, all converged: {bool(fits.converged.all())}, "
          f"max iterations {int(fits.iterations.max())}")  # fmt: skip

    big_y, big_v = simulate(1, args.big, rng)
    fit, seconds, peak = measured(rma, big_y[0], big_v[0], method="REML")
    print(f"single: k = {args.big:,}, REML: {seconds:.3f} s, peak {peak:.0f} MiB, "
          f"tau2 = {fit.tau2:.6g}, converged: {bool(fit.converged)}, iterations {int(fit.iterations)}")  # fmt: skip

    if args.r_fits:
        n_r = min(args.r_fits, args.batch)
        measured_r = r_seconds_per_fit(yi, vi, n_r)
        if measured_r is None:
            print("R metafor: not available (Rscript with metafor not found); no ratio printed")
        else:
            per_fit, failed = measured_r
            print(f"R metafor (rma + confint + predict, first {n_r} data sets): {1 / per_fit:,.0f} fits/s "
                  f"({failed} failed to converge with metafor's defaults); "
                  f"metarepro is {rate * per_fit:,.0f}x faster")  # fmt: skip


if __name__ == "__main__":
    main()
