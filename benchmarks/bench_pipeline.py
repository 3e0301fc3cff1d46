"""Wall time of the default pipeline as a new user meets it: cold run, no-op rerun, one added analysis.

    .venv/bin/python benchmarks/bench_pipeline.py                 # the working tree, 3 repeats
    .venv/bin/python benchmarks/bench_pipeline.py --ref 3c652df   # and an older commit in the same run

Snakemake runs from a virtual environment set up as the README's main-job command sets one up
(``pip install -c requirements.lock -e ".[workflow]"``, made once per benchmark run; ``--python`` reuses an
interpreter instead): the test extras (e.g. the slurm executor plugin, which Snakemake imports at every start)
are not what a new user has. Each repeat copies the tree (tracked and untracked files that git does not
ignore: what a fresh clone would hold, plus your uncommitted changes) into a temporary folder, then times
(the workflow profile, profiles/default, gives --cores 2):

- cold: the default config from nothing (no results/, no .snakemake/);
- no-op: the same command again (nothing to do);
- added: the default config plus one analysis of 10 studies (CRP, raw mean difference with REML and
  Knapp-Hartung; crp_md's rows), given as --configfile: that analysis and the report run.

Targets of issue 10 on this machine's 2 cores: cold <= 30 s, no-op <= 3 s, added <= 5 s. The machine is shared,
so repeats alternate between the trees and the medians are printed, with CPU time (user + system of all
processes) and the largest resident memory of one process.
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
TARGETS = {"cold": 30.0, "no-op": 3.0, "added": 5.0}  # wall seconds, issue 10
ADDED = {
    "title": "CRP, mean difference in mg/L (REML, Knapp-Hartung)",
    "data": "data/raw/cytokines_mdd.csv",
    "where": {"marker": "CRP"},
    "measure": "MD",
    "unit": "mg/L",
}


def tree(ref: str | None, into: Path) -> Path:
    """The working tree (ref None) or a commit's tree, copied to ``into``."""
    into.mkdir(parents=True)
    if ref is None:
        listed = subprocess.run(["git", "-C", str(REPO), "ls-files", "-co", "--exclude-standard", "-z"],
                                capture_output=True, check=True).stdout.decode().split("\0")  # fmt: skip
        for name in filter(None, listed):
            source = REPO / name
            if source.is_file():
                (into / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, into / name)
    else:
        archive = subprocess.run(["git", "-C", str(REPO), "archive", ref], capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def timed(cmd, cwd, keep_env=False, timeout=None) -> tuple[float, float]:
    """Wall and CPU seconds of one command (CPU: user + system of it and its children). The tree's own library
    (its src/) comes first on the path, so an older commit is timed with its own metarepro. Python writes its
    bytecode cache (__pycache__) as on a user's machine, unless keep_env: an environment that sets
    PYTHONDONTWRITEBYTECODE (this sandbox does) makes every job compile metarepro's modules again. A command still
    running after ``timeout`` seconds is killed; its wall time is then ``inf`` (it did not finish)."""
    env = {**os.environ, "PYTHONPATH": str(Path(cwd) / "src")}
    if not keep_env:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    try:
        done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        return math.inf, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed in {cwd}:\n{done.stderr[-3000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main_job_python(into: Path) -> str:
    """An interpreter with the README's main-job set-up (the working tree's requirements.lock)."""
    subprocess.run([sys.executable, "-m", "venv", str(into)], check=True)
    python = str(into / "bin" / "python")
    subprocess.run([python, "-m", "pip", "install", "-q", "-c", str(REPO / "requirements.lock"), "-e",
                    f"{REPO}[workflow]"], check=True, capture_output=True)  # fmt: skip
    return python


def one_repeat(ref, folder: Path, python: str, keep_env: bool) -> dict:
    work = tree(ref, folder)
    snakemake = [python, "-m", "snakemake", "--cores", "2"]
    config = yaml.safe_load((work / "config/config.yaml").read_text())
    config["analyses"]["bench_crp_md_reml"] = ADDED
    (work / "config/added.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    times = {
        "cold": timed(snakemake, work, keep_env),
        "no-op": timed(snakemake, work, keep_env),
        "added": timed([*snakemake, "--configfile", "config/added.yaml"], work, keep_env),
    }
    k = next(line for line in (work / "results/summary.csv").read_text().splitlines() if line.startswith("bench_"))
    times["added k"] = int(k.split(",")[1])
    times["jobs"] = len(list((work / ".snakemake/metadata").iterdir()))
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref", help="also time this commit (e.g. the one before a change)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--python", help="time with this interpreter's Snakemake (default: a fresh main-job venv)")
    parser.add_argument("--keep-env", action="store_true", help="keep PYTHONDONTWRITEBYTECODE if it is set")
    args = parser.parse_args()
    trees = {"working tree": None} | ({f"commit {args.ref}": args.ref} if args.ref else {})
    runs: dict[str, list[dict]] = {name: [] for name in trees}
    with tempfile.TemporaryDirectory() as tmp:
        python = args.python or main_job_python(Path(tmp) / "venv")
        for repeat in range(args.repeats):
            for name, ref in trees.items():
                folder = Path(tmp) / f"{repeat}-{len(runs[name])}-{ref or 'tree'}"
                runs[name].append(one_repeat(ref, folder, python, args.keep_env))
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    bytecode = "not written (PYTHONDONTWRITEBYTECODE kept)" if args.keep_env and os.environ.get(
        "PYTHONDONTWRITEBYTECODE") else "cached as usual"  # fmt: skip
    print(f"{args.repeats} repeats, medians (wall s [range] / CPU s); largest process {peak:.0f} MiB; "
          f"bytecode {bytecode}")  # fmt: skip
    for name, results in runs.items():
        cells = []
        for step in ("cold", "no-op", "added"):
            walls = [r[step][0] for r in results]
            wall, cpu = statistics.median(walls), statistics.median(r[step][1] for r in results)
            verdict = "met" if wall <= TARGETS[step] else "missed"
            cells.append(f"{step} {wall:5.1f} [{min(walls):.1f}-{max(walls):.1f}] / {cpu:4.1f} "
                         f"(<= {TARGETS[step]:g} s: {verdict})")  # fmt: skip
        print(f"  {name:<22} " + "   ".join(cells) + f"   (output files: {results[0]['jobs']}, "
              f"added analysis k = {results[0]['added k']})")  # fmt: skip


if __name__ == "__main__":
    main()
