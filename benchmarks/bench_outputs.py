"""What each output of an analysis costs (issue 22): CPU seconds per output kind per analysis, in one process as
an analysis job runs them.

    .venv/bin/python benchmarks/bench_outputs.py                      # the default config, SVG + PNG + PDF
    .venv/bin/python benchmarks/bench_outputs.py --config my.yaml --formats svg png

Runs :func:`metarepro.jobs.run.analysis_job` for every analysis of the config, one after another in this process
(as one job of ``analyses_per_job`` analyses does, so first-call loading is paid once, by the first), into a
temporary folder, and times with CPU time (``time.process_time``: steadier than wall time on a loaded machine)
each kind of output where it is written: each figure format (matplotlib's ``savefig``: rendering and encoding;
building the figure is counted with the statistics), the CSV and JSON tables, the report's section
(section.html), metafor.R. The rest of the job's time is the statistics and building the figures. Not a test.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
spent: dict[str, float] = defaultdict(float)
depth = [0]  # a timed step inside another (a table written by the section) counts once, for the outer


@contextmanager
def timing(kind):
    depth[0] += 1
    start = time.process_time()
    try:
        yield
    finally:
        depth[0] -= 1
        if depth[0] == 0:
            spent[kind] += time.process_time() - start


def timed(kind_of, function):
    def wrapper(*args, **kwargs):
        with timing(kind_of(*args, **kwargs)):
            return function(*args, **kwargs)

    return wrapper


def figure_format(fig, path, *args, format=None, **kwargs):  # noqa: A002 (matplotlib's name)
    return f"figure .{format or str(path).rsplit('.', 1)[-1].lower()}"


def instrument() -> None:
    """Time every writer where the analysis job finds it (module attributes, looked up when the job runs)."""
    import matplotlib.figure

    from metarepro.jobs import files, overview, pool
    from metarepro.present import metafor_script

    matplotlib.figure.Figure.savefig = timed(figure_format, matplotlib.figure.Figure.savefig)
    for module in (files, pool):
        for name in ("write_table", "write_json"):
            if hasattr(module, name):
                setattr(module, name, timed(lambda *a, **k: "tables (CSV, JSON)", getattr(files, name)))
    pool.write_analysis = timed(lambda *a, **k: "tables (CSV, JSON)", pool.write_analysis)
    overview.write_section = timed(lambda *a, **k: "section.html", overview.write_section)
    metafor_script.metafor_script = timed(lambda *a, **k: "metafor.R", metafor_script.metafor_script)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(REPO / "config/config.yaml"))
    parser.add_argument("--formats", nargs="+", default=["svg", "png", "pdf"], choices=["svg", "png", "pdf"])
    args = parser.parse_args()
    from metarepro.jobs.run import analysis_job, read_checked_config

    config = read_checked_config(args.config)
    instrument()
    analyses, total = config["analyses"], 0.0
    with tempfile.TemporaryDirectory() as out:
        for name, analysis in analyses.items():
            settings = {"name": name, "defaults": config.get("defaults", {}), "analysis": analysis}
            start = time.process_time()
            analysis_job(analysis["data"], settings, Path(out) / name, tuple(args.formats))
            total += time.process_time() - start
    n = len(analyses)
    spent["statistics and building figures (the rest)"] = total - sum(spent.values())
    print(f"{n} analyses of {args.config} in one process, figures in {', '.join(args.formats)}; CPU seconds")
    print(f"{'output':<45} {'per analysis':>12} {'all':>8} {'share':>6}")
    for kind, seconds in sorted(spent.items(), key=lambda item: -item[1]):
        print(f"{kind:<45} {seconds / n:12.3f} {seconds:8.2f} {seconds / total:6.0%}")
    print(f"{'whole analysis job (after start-up)':<45} {total / n:12.3f} {total:8.2f} {1:6.0%}")


if __name__ == "__main__":
    sys.exit(main())
