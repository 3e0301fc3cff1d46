"""Speed and memory of the multilevel engine (run on demand; not a test).

    .venv/bin/python benchmarks/bench_rma_mv.py [--k 100000] [--max-cluster 10] [--seed 1]

1. a three-level model (effects within studies, ``nested=[study, effect]``, REML) on k simulated effects in
   studies of 1 to ``max-cluster`` effects; then CR1 and CR2 robust tests by study;
2. a multivariate model (``~ marker | sample``, struct UN over 4 markers, known V with correlation 0.5 within a
   sample, one moderator per marker) on the same number of effects.
Peak memory is measured with tracemalloc around each call (numpy allocations are traced).
"""

from __future__ import annotations

import argparse

import numpy as np
from bench_rma import measured

from metarepro import BlockV, rma_mv, robust


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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=100_000)
    parser.add_argument("--max-cluster", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    yi, vi, study, effect = simulate(args.k, args.max_cluster, np.random.default_rng(args.seed))
    print(f"k = {args.k:,} effects in {study.max() + 1:,} studies of 1-{args.max_cluster} effects")
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


if __name__ == "__main__":
    main()
