"""What every pipeline job pays before and besides its statistics: imports, and writing figures.

    .venv/bin/python benchmarks/bench_imports.py [--repeats 7] [--saves 5]

1. import time of the modules a job needs, each in a fresh interpreter (``python -c "import ..."``), the
   median over ``--repeats`` processes: the time of the import statement itself, and the whole process's
   wall time (interpreter start and exit included);
2. one pool job's work in a fresh interpreter (import, the il6_smd analysis of ``config/config.yaml``, its
   forest plot written as SVG and PNG): what a small analysis costs end to end, numba's cached kernels
   included;
3. the il6_smd forest plot written by ``save_figure`` to each format alone (a new figure each time, as a job
   draws it once), the median over ``--saves`` figures.

The machine is shared and noisy: compare medians, and ratios within one run.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMPORTS = {
    "import metarepro (the API)": "metarepro",
    "pool job (metarepro.steps)": "metarepro.steps",
    "sensitivity jobs (metarepro.steps.sensitivity)": "metarepro.steps.sensitivity",
    "figures (metarepro.plots)": "metarepro.plots",
    "report job (metarepro.steps.overview)": "metarepro.steps.overview",
    "steps.run + steps.sensitivity + plots": "metarepro.steps.run, metarepro.steps.sensitivity, metarepro.plots",
}
HEAVY = ("matplotlib", "numba", "pandas", "scipy.stats", "scipy.optimize", "scipy.sparse", "scipy.linalg")

TIME_IMPORT = """
import sys, time
start = time.perf_counter()
import {modules}
elapsed = time.perf_counter() - start
print(elapsed, ",".join(m for m in {heavy!r} if m in sys.modules))
"""

# One small analysis as the pool and forest rules run it, timed from interpreter start (the caller adds
# the start-up it sees around this).
POOL_JOB = """
import sys, time
start = time.perf_counter()
sys.path.insert(0, {bench!r})
from bench_imports import il6_forest
from metarepro.plots import save_figure
fig = il6_forest()
save_figure(fig, [{out!r} + "/forest.svg", {out!r} + "/forest.png"])
print(time.perf_counter() - start)
"""


def il6_forest():
    """The il6_smd forest plot of the default config, drawn as the forest rule draws it."""
    import yaml

    from metarepro.steps import forest_figure, read_effects, run_analysis

    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    analysis = config["analyses"]["il6_smd"]
    sheet = ROOT / analysis["data"]
    result = run_analysis(sheet, analysis, config["defaults"])
    with tempfile.TemporaryDirectory() as tmp:
        result.effects.to_csv(Path(tmp) / "effects.csv", index=False)
        effects = read_effects(Path(tmp) / "effects.csv")
    settings = {"name": "il6_smd", "defaults": config["defaults"], "analysis": analysis}
    return forest_figure(sheet, settings, effects, result.pooled)


def fresh(code: str) -> tuple[float, list[str]]:
    """Run code in a new interpreter; its printed numbers and the whole process's wall time."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    return time.perf_counter() - start, done.stdout.split()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7, help="fresh processes per import (median)")
    parser.add_argument("--saves", type=int, default=5, help="figures per format (median)")
    args = parser.parse_args()

    print(f"import time, median of {args.repeats} fresh processes (import statement / whole process):")
    for label, modules in IMPORTS.items():
        runs = [fresh(TIME_IMPORT.format(modules=modules, heavy=HEAVY)) for _ in range(args.repeats)]
        inner = statistics.median(float(out[0]) for _, out in runs)
        outer = statistics.median(wall for wall, _ in runs)
        heavy = runs[0][1][1] if len(runs[0][1]) > 1 else "-"
        print(f"  {label:48s} {inner:6.3f} s / {outer:6.3f} s   loads: {heavy}")

    with tempfile.TemporaryDirectory() as out:
        code = POOL_JOB.format(bench=str(Path(__file__).parent), out=out)
        runs = [fresh(code) for _ in range(args.repeats)]
    inner = statistics.median(float(o[0]) for _, o in runs)
    outer = statistics.median(wall for wall, _ in runs)
    print(f"il6_smd pool + forest (SVG, PNG) in a fresh process: {inner:.3f} s / {outer:.3f} s")

    from metarepro.plots import save_figure

    print(f"save_figure of the il6_smd forest, median of {args.saves} figures:")
    with tempfile.TemporaryDirectory() as out:
        for suffix in ("svg", "png", "pdf"):
            times = []
            for _ in range(args.saves):
                fig = il6_forest()
                start = time.perf_counter()
                save_figure(fig, [Path(out) / f"forest.{suffix}"])
                times.append(time.perf_counter() - start)
            size = (Path(out) / f"forest.{suffix}").stat().st_size
            print(f"  {suffix}: {statistics.median(times):.3f} s  ({size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
