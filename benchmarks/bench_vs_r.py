"""metarepro's pipeline side by side with an R user's script (issue 22): CPU and wall time per run, and the ratios.

    .venv/bin/python benchmarks/bench_vs_r.py                          # 22, 100, 400 analyses and k = 10,000
    .venv/bin/python benchmarks/bench_vs_r.py --sizes 22 100 --repeats 3 --no-large-k

The R side is ``benchmarks/r_side/r_analyses.R``: one R process that loops metafor (and clubSandwich) over the
same analyses with the same outputs (escalc, rma + confint + predict, the nine estimators with both tests,
leave1out, influence, cumul, the bias tests, trim-and-fill, fail-safe N, PET/PEESE, subgroups, meta-regression
with permutations, rma.mv + CR2 for the multilevel analysis, and every figure in the formats metarepro writes
by default: the timed tree's ``metarepro.jobs.outputs.FORMATS``, SVG since issue 22, SVG and PNG before).
``benchmarks/r_side/make_inputs.py`` writes both sides' inputs from one default run of this tree: configs of
22/100/400 analyses (the default analyses, replicated) and the R script's spec files with each analysis's rows
as group summaries that reproduce our yi and vi exactly, and a synthetic sheet of k = 10,000 studies.

Each repeat copies the working tree to a temporary folder (as bench_pipeline.py does), runs the default config
once (make_inputs reads its results), then times, alternating which side goes first: ``snakemake --cores 2
--configfile config_N.yaml`` (a cold run: its results folder is new) and ``Rscript r_analyses.R spec_N.csv``.
CPU is user + system of the command and its children. Printed: medians [range] per side, the ratios ours / R,
and the CPU per added analysis ((CPU at the largest N - CPU at 22) / (N - 22)). Targets (issue 22): CPU per added
analysis <= 1.0x R's; the default 22 analyses ahead in wall and CPU; 100 and 400 analyses ahead in wall time;
k = 10,000 under a minute. Not a test: the full run takes about an hour on 2 cores; R must be installed
(``apt-get install -y r-cran-metafor r-cran-clubsandwich``).
"""

from __future__ import annotations

import argparse
import math
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_pipeline import main_job_python, timed, tree

HERE = Path(__file__).resolve().parent
TARGET_K = 10_000


def prepare(folder: Path, python: str) -> tuple[Path, Path]:
    """A copy of the working tree with one default run, and the inputs make_inputs.py writes from it."""
    work = tree(None, folder / "tree")
    timed([python, "-m", "snakemake", "--cores", "2"], work)
    inputs = folder / "inputs"
    done = subprocess.run([python, str(HERE / "r_side" / "make_inputs.py"), str(inputs)], cwd=work,
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0:
        sys.exit(f"make_inputs.py failed:\n{done.stderr[-3000:]}")
    return work, inputs


def both_sides(work: Path, inputs: Path, python: str, tag: str, r_first: bool,
               r_timeout: float | None = None) -> dict[str, tuple[float, float]]:
    """(wall, CPU) of metarepro and of the R loop on one input set ("22", "k10000", ...), each from cold; the R loop
    is stopped after ``r_timeout`` seconds (its wall time is then inf)."""
    ours = [python, "-m", "snakemake", "--cores", "2", "--configfile", str(inputs / f"config_{tag}.yaml")]
    r_out = inputs / f"r_out_{tag}"
    shutil.rmtree(r_out, ignore_errors=True)
    theirs = ["Rscript", str(HERE / "r_side" / "r_analyses.R"), str(inputs / f"spec_{tag}.csv"), str(r_out),
              ",".join(default_formats(work))]
    for results in work.glob("results_*"):  # every run starts from nothing, as a first run does
        shutil.rmtree(results)
    # nor from the analyses' kept copies of an earlier repeat (metarepro.jobs.reuse.REUSE_FOLDER)
    shutil.rmtree(work / ".snakemake" / "metarepro-reuse", ignore_errors=True)
    order = [("R", theirs), ("metarepro", ours)] if r_first else [("metarepro", ours), ("R", theirs)]
    return {side: timed(cmd, work, timeout=r_timeout if side == "R" else None) for side, cmd in order}


def default_formats(work: Path) -> tuple[str, ...]:
    """The figure formats of a run without figure_formats in the timed tree (its jobs/outputs.py, plain Python)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("outputs", work / "src/metarepro/jobs/outputs.py")
    outputs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(outputs)
    return outputs.FORMATS


def summary(runs: list[dict], side: str, index: int) -> tuple[float, float, float]:
    values = [run[side][index] for run in runs]
    return statistics.median(values), min(values), max(values)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[22, 100, 400], choices=[22, 100, 400])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-large-k", action="store_true", help=f"skip the k = {TARGET_K:,} analysis")
    parser.add_argument("--r-timeout-large-k", type=float, default=300.0,
                        help="stop the R loop at k = 10,000 after this many seconds (it took over 20 minutes)")
    parser.add_argument("--python", help="time with this interpreter's Snakemake (default: a fresh main-job venv)")
    args = parser.parse_args()
    if not shutil.which("Rscript"):
        sys.exit("Rscript not found: apt-get install -y r-cran-metafor r-cran-clubsandwich")
    tags = [str(n) for n in args.sizes] + ([] if args.no_large_k else [f"k{TARGET_K}"])
    runs: dict[str, list[dict]] = {tag: [] for tag in tags}
    with tempfile.TemporaryDirectory() as tmp:
        python = args.python or main_job_python(Path(tmp) / "venv")
        work, inputs = prepare(Path(tmp), python)
        for repeat in range(args.repeats):
            for tag in tags:
                r_timeout = args.r_timeout_large_k if tag.startswith("k") else None
                runs[tag].append(both_sides(work, inputs, python, tag, r_first=repeat % 2 == 1, r_timeout=r_timeout))
                print(f"repeat {repeat + 1} {tag}: {runs[tag][-1]}", flush=True)
    print(f"\n{args.repeats} repeats, medians [range]; CPU = user + system of all processes; ratio = metarepro / R")
    print(f"{'analyses':<10} {'metarepro wall':>22} {'R wall':>22} {'ratio':>6}   {'metarepro CPU':>22} "
          f"{'R CPU':>22} {'ratio':>6}")  # fmt: skip
    cpu = {}
    for tag, results in runs.items():
        cells = []
        for index in (0, 1):
            ours, theirs = summary(results, "metarepro", index), summary(results, "R", index)
            cells.append(f"{ours[0]:8.1f} [{ours[1]:.1f}-{ours[2]:.1f}] {theirs[0]:8.1f} [{theirs[1]:.1f}-"
                         f"{theirs[2]:.1f}] {ours[0] / theirs[0]:6.2f}")  # fmt: skip
            if index == 1:
                cpu[tag] = (ours[0], theirs[0])
        print(f"{tag:<10} " + "   ".join(cells))
    sizes = sorted(n for n in args.sizes)
    if len(sizes) > 1 and sizes[0] == 22:
        n = sizes[-1]
        ours, theirs = ((cpu[str(n)][i] - cpu["22"][i]) / (n - 22) for i in (0, 1))
        verdict = "met" if ours <= theirs else "missed"
        print(f"\nCPU per added analysis (22 -> {n}): metarepro {ours:.2f} s, R {theirs:.2f} s, ratio "
              f"{ours / theirs:.2f} (target <= 1.0: {verdict})")  # fmt: skip
    if f"k{TARGET_K}" in runs:
        wall = summary(runs[f"k{TARGET_K}"], "metarepro", 0)[0]
        r_wall = summary(runs[f"k{TARGET_K}"], "R", 0)[0]
        stopped = f"not finished in {args.r_timeout_large_k:g} s (stopped)"
        r_text = f"{r_wall:.1f} s" if math.isfinite(r_wall) else stopped
        print(f"k = {TARGET_K:,}: metarepro {wall:.1f} s wall (target < 60 s: {'met' if wall < 60 else 'missed'}); "
              f"R loop {r_text}")


if __name__ == "__main__":
    main()
