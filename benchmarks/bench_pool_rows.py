"""Time the pool step (read_sheet → compute_effects → fit) on a synthetic sheet of N rows.

Usage: python benchmarks/bench_pool_rows.py [N]   (default 200000). The numbers are random; only the
time matters. Every tenth row repeats an earlier row's numbers, so the duplicate check has work to do.
"""

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from metarepro.jobs import run_analysis

n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
rng = np.random.default_rng(1)
sheet = pd.DataFrame(
    {
        "study_id": [f"s{i}" for i in range(n)],
        "study": [f"Study {i}" for i in range(n)],
        "year": 2000 + rng.integers(0, 20, n),
        "marker": "IL-6",
        "n_cases": rng.integers(10, 100, n),
        "mean_cases": rng.normal(5, 1, n).round(2),
        "sd_cases": rng.uniform(1, 2, n).round(2),
        "n_controls": rng.integers(10, 100, n),
        "mean_controls": rng.normal(4.8, 1, n).round(2),
        "sd_controls": rng.uniform(1, 2, n).round(2),
    }
)
repeat = np.arange(10, n, 10)
for column in ("mean_cases", "sd_cases", "mean_controls", "sd_controls"):
    sheet.loc[repeat, column] = sheet.loc[repeat - 10, column].to_numpy()
with tempfile.TemporaryDirectory() as tmp:
    path = Path(tmp) / "sheet.csv"
    sheet.to_csv(path, index=False)
    start = time.perf_counter()
    result = run_analysis(path, {"title": "bench", "data": str(path), "method": "DL"})
    elapsed = time.perf_counter() - start
print(f"{n} rows: {elapsed:.2f} s (k = {result.pooled['k']})")
