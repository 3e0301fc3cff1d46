"""Time and peak memory of one analysis job at k = 10^3 .. 10^6 studies (issue 21 "Faults and scale", issue 22).

    .venv/bin/python benchmarks/bench_scale.py                       # k = 1e3, 1e4, 1e5, 1e6
    .venv/bin/python benchmarks/bench_scale.py --sizes 1000 10000 --profile 10000

Each size gets a synthetic sheet (group sizes, means and SDs of k studies, with a year, a sample type and a
medication column; seeded, so every run reads the same sheet) in a temporary folder, and one analysis of it: SMD,
REML, Knapp-Hartung, subgroups by sample, year as moderator, cumulative order by year (what the default il6_smd
analysis asks for, so every step of a job runs). The job is :func:`metarepro.jobs.run.analysis_job`, in a fresh
Python process per size, figures in the default figure_formats (SVG; SVG and PNG before issue 22), as the
workflow runs it. Printed per size: wall time,
CPU time, peak resident memory (the child's ru_maxrss from wait4), the sheet's size, the largest file written
and the size of section.html. ``--timeout`` and ``--mem-limit-gb`` (an address-space limit) stop a job that
would not finish; the row then says so. ``--profile K`` prints the 25 most expensive functions (cumulative time)
of the job at size K. Not a test: run on demand (a k = 10^6 job takes about 30 s).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
SIZES = (1_000, 10_000, 100_000, 1_000_000)


def make_sheet(k: int, path: Path, seed: int = 1) -> Path:
    """A sheet of k two-group studies with true SMDs around 0.4 (τ = 0.3)."""
    rng = np.random.default_rng(seed)
    n1, n2 = rng.integers(15, 200, k), rng.integers(15, 200, k)
    d = 0.4 + rng.normal(0, 0.3, k)
    m2, sd = rng.uniform(2, 5, k), rng.uniform(0.8, 2.0, k)
    m1 = m2 + d * sd + rng.normal(0, 1, k) * sd * np.sqrt(1 / n1 + 1 / n2)
    ids = np.char.add("s", np.arange(k).astype(str))
    pd.DataFrame({"study_id": ids, "study": np.char.add("Study ", np.arange(k).astype(str)),
                  "year": rng.integers(1990, 2025, k), "marker": "IL-6",
                  "n_cases": n1, "mean_cases": m1.round(4), "sd_cases": (sd * rng.uniform(0.9, 1.1, k)).round(4),
                  "n_controls": n2, "mean_controls": m2.round(4), "sd_controls": sd.round(4),
                  "sample": rng.choice(["serum", "plasma"], k), "medication": rng.choice(["free", "medicated"], k),
                  }).to_csv(path, index=False)  # fmt: skip
    return path


def analysis_config(sheet: Path) -> dict:
    return {"name": "scale", "defaults": {"measure": "SMD", "method": "REML", "test": "knha", "level": 95},
            "analysis": {"title": f"Synthetic SMD, {sheet.stem}", "data": str(sheet), "measure": "SMD",
                         "subgroups": ["sample"], "moderators": ["year"], "cumulative_order": "year"}}  # fmt: skip


CHILD = """
import json, sys, time
start = time.perf_counter()
from metarepro.jobs.run import analysis_job
config = json.loads(sys.argv[1])
profile = sys.argv[3] == "1"
if profile:
    import cProfile, pstats
    prof = cProfile.Profile()
    prof.enable()
analysis_job(config["analysis"]["data"], config, sys.argv[2])
if profile:
    prof.disable()
    pstats.Stats(prof, stream=sys.stderr).sort_stats("cumulative").print_stats(25)
print(json.dumps({"job_seconds": time.perf_counter() - start}))
"""


def run_job(config: dict, folder: Path, timeout: float, mem_gb: float, profile: bool) -> dict:
    def limits():
        if mem_gb:
            limit = int(mem_gb * 2**30)
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    start = time.perf_counter()
    command = [sys.executable, "-c", CHILD, json.dumps(config), str(folder), "1" if profile else "0"]
    errors = tempfile.TemporaryFile("w+")  # not a pipe: a job's warnings must not fill it and block the job
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=errors, preexec_fn=limits, env=env)
    deadline, status, usage = start + timeout, None, None
    while status is None:
        pid, status_code, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            status = status_code
            break
        if time.perf_counter() > deadline:
            os.kill(proc.pid, signal.SIGKILL)
            _, status, usage = os.wait4(proc.pid, 0)
            status = "timeout"
            break
        time.sleep(0.05)
    wall = time.perf_counter() - start
    proc.returncode = 0  # reaped by wait4 above
    errors.seek(0)
    err = errors.read()
    row = {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "peak_mb": usage.ru_maxrss / 1024}
    if status == "timeout":
        row["outcome"] = f"stopped after {timeout:.0f} s"
    elif os.WIFSIGNALED(status) or os.waitstatus_to_exitcode(status) != 0:
        last = (err.strip().splitlines() or ["?"])[-1]
        row["outcome"] = f"failed: {last[:100]}"
    else:
        row["outcome"] = "ok"
    if profile:
        print(err, file=sys.stderr)
    files = [p for p in folder.iterdir()] if folder.exists() else []
    if files:
        largest = max(files, key=lambda p: p.stat().st_size)
        row["largest_file"] = f"{largest.name} {largest.stat().st_size / 1e6:.1f} MB"
    section = folder / "section.html"
    row["section_mb"] = section.stat().st_size / 1e6 if section.exists() else float("nan")
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per job (default 900)")
    parser.add_argument("--mem-limit-gb", type=float, default=8.0, help="address-space limit per job (0: none)")
    parser.add_argument("--profile", type=int, default=None, help="print a cProfile of the job at this size")
    parser.add_argument("--keep", type=Path, default=None, help="write sheets and results here (kept)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench_scale_") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        print(f"{'k':>9} {'sheet MB':>9} {'wall s':>8} {'CPU s':>8} {'peak MB':>8} {'section MB':>10}  "
              f"largest file / outcome")  # fmt: skip
        for k in args.sizes:
            sheet = make_sheet(k, work / f"synth_k{k}.csv")
            row = run_job(analysis_config(sheet), work / f"k{k}", args.timeout, args.mem_limit_gb, args.profile == k)
            print(f"{k:>9} {sheet.stat().st_size / 1e6:>9.1f} {row['wall_s']:>8.1f} {row['cpu_s']:>8.1f} "
                  f"{row['peak_mb']:>8.0f} {row['section_mb']:>10.2f}  {row.get('largest_file', '-')}; "
                  f"{row['outcome']}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
