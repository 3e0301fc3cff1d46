"""What every pipeline job pays before and besides its statistics: imports, and writing figures.

    .venv/bin/python benchmarks/bench_imports.py [--baseline REV] [--repeats 7] [--saves 5]

Everything runs in fresh interpreters (each pipeline job is one), the median over ``--repeats`` processes:

1. import time of the modules a job needs: the time of the import statement itself, and the whole process's
   wall time (interpreter start and exit included), with the heavy modules that the import loaded;
2. one small job end to end: import, the il6_smd analysis of ``config/config.yaml`` and its forest plot
   written as SVG and PNG (numba's kernels included, where a job needs them);
3. ``save_figure`` of the il6_smd forest to each format alone (a new figure each time, as a job draws once),
   the median over ``--saves`` figures in one process.

``--baseline REV`` measures the source tree of a git revision too (``git archive`` into a temporary folder,
run with the same interpreter and packages), alternating between the two trees so that both see the same
load: the machine is shared and noisy, so compare the two columns of one run (medians), not runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMPORTS = {
    "import metarepro (the API)": "metarepro",
    "pool job (metarepro.jobs)": "metarepro.jobs",
    "figures (metarepro.present.plots)": "metarepro.present.plots",
    "sensitivity jobs (metarepro.jobs.sensitivity)": "metarepro.jobs.sensitivity",
    "report job (metarepro.jobs.overview)": "metarepro.jobs.overview",
    "steps.run + steps.sensitivity + plots": "metarepro.jobs.run, metarepro.jobs.sensitivity, metarepro.present.plots",
}
HEAVY = ("matplotlib.pyplot", "numba", "pandas", "scipy.stats", "scipy.optimize", "scipy.sparse", "scipy.linalg")
FORMATS = ("svg", "png", "pdf")

TIME_IMPORT = """
import sys, time
start = time.perf_counter()
import {modules}
elapsed = time.perf_counter() - start
print(elapsed, ",".join(m for m in {heavy!r} if m in sys.modules) or "-")
"""

JOB = """
import sys, time
start = time.perf_counter()
sys.path.insert(0, {bench!r})
from bench_imports import il6_forest
from metarepro.present.plots import save_figure
save_figure(il6_forest(), [{out!r} + "/forest.svg", {out!r} + "/forest.png"])
print(time.perf_counter() - start, "numba" in sys.modules)
"""

SAVES = """
import statistics, sys, time
sys.path.insert(0, {bench!r})
from bench_imports import il6_forest
from metarepro.present.plots import save_figure
for suffix in {formats!r}:
    times = []
    for _ in range({saves}):
        fig = il6_forest()
        start = time.perf_counter()
        save_figure(fig, [{out!r} + "/forest." + suffix])
        times.append(time.perf_counter() - start)
    print(statistics.median(times))
"""


def il6_forest():
    """The il6_smd forest plot of the default config, drawn as the forest rule draws it."""
    import yaml

    from metarepro.jobs import forest_figure, run_analysis

    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    analysis = config["analyses"]["il6_smd"]
    result = run_analysis(ROOT / analysis["data"], analysis, config["defaults"])
    settings = {"name": "il6_smd", "defaults": config["defaults"], "analysis": analysis}
    return forest_figure(result.rows, settings, result.effects, result.pooled)


def fresh(code: str, src: Path | None) -> tuple[float, list[str]] | None:
    """Run code in a new interpreter (on the source tree ``src``, default this checkout): its wall time and
    printed words, or None if it failed (a module that tree does not have)."""
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(src), env.get("PYTHONPATH", "")])
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env)
    if done.returncode:
        return None
    return time.perf_counter() - start, done.stdout.split()


def medians(code: str, trees: dict, repeats: int) -> dict:
    """Per tree: (median printed first number, median wall time, the other words of the first run), or None."""
    runs = {name: [] for name in trees}
    for _ in range(repeats):  # alternate, so both trees see the same load
        for name, src in trees.items():
            runs[name].append(fresh(code, src))
    out = {}
    for name, got in runs.items():
        ok = [r for r in got if r is not None]
        out[name] = (statistics.median(float(w[0]) for _, w in ok), statistics.median(t for t, _ in ok),
                     ok[0][1][1:]) if ok else None  # fmt: skip
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", help="a git revision to measure beside this checkout (e.g. main)")
    parser.add_argument("--repeats", type=int, default=7, help="fresh processes per measurement (median)")
    parser.add_argument("--saves", type=int, default=5, help="figures per format (median)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        trees = {"this checkout": None}
        if args.baseline:
            archive = Path(tmp) / "baseline.tar"
            subprocess.run(["git", "archive", "-o", archive, args.baseline, "src"], cwd=ROOT, check=True)
            with tarfile.open(archive) as tar:
                tar.extractall(Path(tmp) / "baseline", filter="data")
            trees = {args.baseline: Path(tmp) / "baseline" / "src", **trees}
        out = Path(tmp) / "figures"
        out.mkdir()
        job = JOB.format(bench=str(Path(__file__).parent), out=str(out))
        for src in trees.values():
            fresh(job, src)  # warm-up: numba compiles a fresh tree's kernels into its cache once
        names = list(trees)
        print(f"medians of {args.repeats} fresh processes; columns: {' | '.join(names)}")

        def row(label, result):
            cells = []
            for name in names:
                r = result[name]
                note = f"  {r[2][0]}" if r and r[2] else ""
                cells.append("n/a" if r is None else f"{r[0]:6.3f} / {r[1]:6.3f} s{note}")
            print(f"  {label:48s} " + "  |  ".join(cells))

        print("import statement / whole process, and what it loaded:")
        for label, modules in IMPORTS.items():
            row(label, medians(TIME_IMPORT.format(modules=modules, heavy=HEAVY), trees, args.repeats))
        print("one job, from interpreter start / whole process, and whether numba was imported:")
        row("il6_smd pool + forest (SVG, PNG)", medians(job, trees, args.repeats))

        print(f"save_figure of the il6_smd forest, median of {args.saves} figures:")
        code = SAVES.format(bench=str(Path(__file__).parent), out=str(out), formats=FORMATS, saves=args.saves)
        per_tree = {name: [] for name in names}
        for _ in range(max(1, args.repeats // 3)):
            for name, src in trees.items():
                got = fresh(code, src)
                if got is not None:
                    per_tree[name].append([float(w) for w in got[1]])
        for i, suffix in enumerate(FORMATS):
            cells = []
            for name in names:
                times = [run[i] for run in per_tree[name]]
                cells.append(f"{statistics.median(times):6.3f} s" if times else "n/a")
            print(f"  {suffix:48s} " + "  |  ".join(cells))


if __name__ == "__main__":
    main()
