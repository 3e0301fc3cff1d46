"""ML/REML fits that miss the global maximum of the likelihood (run on demand; not a test).

    .venv/bin/python benchmarks/global_max_sweep.py [--fits 2000] [--seed 1]

Hard random meta-analyses as in the engine issue's sweep (k uniform on 3..10, vᵢ log-uniform on 1e-5..1e2, τ²
log-uniform on 1e-5..1e2, yᵢ = μ + N(0, vᵢ + τ²)), fitted in one batch per method. A fit misses the global
maximum when the (restricted) log-likelihood at its τ² is lower than the maximum over a dense grid (0 and 4,001
log-spaced τ² from 1e-4 min vᵢ to 10 (max vᵢ + 2Σ(y − ȳ)²)) by more than 1e-6; such a fit is counted as a false
boundary (τ² = 0) or a local maximum (τ² > 0), with the median and largest log-likelihood gap. Also printed:
how many fits warn that the likelihood has more than one local maximum, and the CPU time of the batch fit.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from metarepro import rma_batch
from metarepro._core.batch import Batch
from metarepro.stats.tau2 import loglik


def hard_cases(n, seed, width=10):
    rng = np.random.default_rng(seed)
    Y, V = np.full((n, width), np.nan), np.full((n, width), np.nan)
    for i in range(n):
        k = int(rng.integers(3, 11))
        v = 10.0 ** rng.uniform(-5, 2, k)
        tau2 = 10.0 ** rng.uniform(-5, 2)
        Y[i, :k], V[i, :k] = rng.normal() + rng.normal(size=k) * np.sqrt(v + tau2), v
    return Y, V


def dense_maximum(y, v, reml, points=4001):
    top = 10 * (v.max() + 2 * np.sum((y - y.mean()) ** 2))
    grid = np.concatenate([[0.0], np.geomspace(v.min() * 1e-4, top, points)])
    ll = loglik(Batch.from_arrays(np.tile(y, (grid.size, 1)), np.tile(v, (grid.size, 1))), grid, reml)
    return ll.max()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fits", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    Y, V = hard_cases(args.fits, args.seed)
    for method in ("ML", "REML"):
        rma_batch(Y, V, method=method)  # warm-up (compiles the kernels or loads them from the cache)
        start = time.process_time()
        fit = rma_batch(Y, V, method=method)
        cpu = time.process_time() - start
        gaps, boundary = [], 0
        for i in range(args.fits):
            used = np.isfinite(Y[i])
            y, v = Y[i, used], V[i, used]
            at_fit = loglik(Batch.from_arrays(y[None], v[None]), np.array([fit.tau2[i]]), method == "REML")[0]
            gap = dense_maximum(y, v, method == "REML") - at_fit
            if gap > 1e-6:
                gaps.append(gap)
                boundary += bool(fit.tau2[i] == 0)
        moved = sum(any("more than one local maximum" in w for w in ws) for ws in fit.warnings)
        summary = f"median gap {np.median(gaps):.3g}, largest {max(gaps):.3g}" if gaps else "no gap"
        print(f"{method}: {args.fits} fits (seed {args.seed}): {len(gaps)} below the global maximum "
              f"({boundary} false boundary, {len(gaps) - boundary} local maximum; {summary}); "
              f"{moved} with a 'more than one local maximum' warning; not converged {int((~fit.converged).sum())}; "
              f"batch CPU {cpu:.3f} s")  # fmt: skip


if __name__ == "__main__":
    main()
