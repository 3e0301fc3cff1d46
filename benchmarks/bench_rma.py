"""Speed and memory of the engine against the targets of the engine issue (run on demand; not a test).

    .venv/bin/python benchmarks/bench_rma.py [--batch 10000] [--k 20] [--big 1000000] [--repeats 7] [--r-fits 200]

Figures (each the median of ``--repeats`` runs, since the machine is shared and noisy; where given, the
process CPU time beside the wall-clock time shows how much of the latter is waiting for a busy machine):

1. batch: B meta-analyses of k studies, REML + knha, all fields (Q-profile τ² CI included); target ≥ 100k fits/s;
2. single fit, REML + knha with the τ² CI, at k = 5, 20, 100, 1,000; target ≤ 1 ms for k ≤ 1,000;
3. one REML fit of k = 1,000,000 studies; target ≤ 0.5 s within 200 MB (peak traced by tracemalloc);
4. leave-one-out + influence at k = 1,000; target ≤ 0.1 s;
5. if Rscript with metafor is available, the same per-fit work in R (rma + confint + predict) on a subset,
   and the throughput ratio.
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
from metarepro.stats.influence import influence, leave1out

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


def median_seconds(fn, repeats, cpu=False):
    """Median wall-clock seconds of ``repeats`` calls (or, with ``cpu``, (wall, process CPU) medians)."""
    walls, cpus = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        out = fn()
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - start_cpu)
    if cpu:
        return out, float(np.median(walls)), float(np.median(cpus))
    return out, float(np.median(walls))


def peak_mib(fn):
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


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


def verdict(ok):
    return "target met" if ok else "TARGET MISSED"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--big", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--r-fits", type=int, default=200, help="fits timed in R (0 to skip)")
    args = parser.parse_args()
    rng = np.random.default_rng(20261126)
    reps = args.repeats

    yi, vi = simulate(args.batch, args.k, rng)
    rma_batch(yi[:10], vi[:10], method="REML", test="knha")  # warm-up (imports, caches)
    fits, seconds, cpu = median_seconds(lambda: rma_batch(yi, vi, method="REML", test="knha"), reps, cpu=True)
    rate = args.batch / seconds
    peak = peak_mib(lambda: rma_batch(yi, vi, method="REML", test="knha"))
    print(f"batch: {args.batch} fits of k = {args.k}, REML + knha + Q-profile CI: {seconds:.3f} s (CPU {cpu:.3f} s), "
          f"{rate:,.0f} fits/s, peak {peak:.0f} MiB, all converged: {bool(fits.converged.all())}, "
          f"max iterations {int(fits.iterations.max())} [{verdict(rate >= 100_000)}: >= 100,000 fits/s]")  # fmt: skip

    for k in (5, 20, 100, 1000):
        y1, v1 = simulate(1, k, rng)
        _, seconds = median_seconds(lambda y1=y1, v1=v1: rma(y1[0], v1[0], method="REML", test="knha"), 5 * reps)
        print(f"single fit: k = {k}, REML + knha + Q-profile CI: {1e3 * seconds:.2f} ms "
              f"[{verdict(seconds <= 1e-3)}: <= 1 ms]")  # fmt: skip

    big_y, big_v = simulate(1, args.big, rng)
    fit, seconds = median_seconds(lambda: rma(big_y[0], big_v[0], method="REML"), max(3, reps // 2))
    peak = peak_mib(lambda: rma(big_y[0], big_v[0], method="REML"))
    print(f"single: k = {args.big:,}, REML: {seconds:.3f} s, peak {peak:.0f} MiB, tau2 = {fit.tau2:.6g}, "
          f"converged: {bool(fit.converged)}, iterations {int(fit.iterations)} "
          f"[{verdict(seconds <= 0.5 and peak <= 200)}: <= 0.5 s within 200 MB]")  # fmt: skip

    y3, v3 = simulate(1, 1000, rng)
    _, seconds, cpu = median_seconds(lambda: (leave1out(y3[0], v3[0]), influence(y3[0], v3[0])), reps, cpu=True)
    print(f"leave1out + influence: k = 1,000, REML: {seconds:.3f} s (CPU {cpu:.3f} s) "
          f"[{verdict(seconds <= 0.1)}: <= 0.1 s]")  # fmt: skip

    if args.r_fits:
        n_r = min(args.r_fits, args.batch)
        measured_r = r_seconds_per_fit(yi, vi, n_r)
        if measured_r is None:
            print("R metafor: not available (Rscript with metafor not found); no ratio printed")
        else:
            per_fit, failed = measured_r
            print(f"R metafor (rma + confint + predict, first {n_r} data sets): {1 / per_fit:,.0f} fits/s "
                  f"({failed} failed to converge with metafor's defaults); "
                  f"metarepro is {rate * per_fit:,.0f}x faster "
                  f"[{verdict(rate * per_fit >= 1000)}: >= 1,000x]")  # fmt: skip


if __name__ == "__main__":
    main()
