# Helpers shared by the rules: which analyses exist and which files each one writes (named once, in
# metarepro.jobs.outputs, which the jobs read too). Plain Python and Snakemake only: the workflow is parsed
# without metarepro (e.g. by a Snakemake that runs jobs in --sdm conda environments), and nothing here reads a
# sheet.


wildcard_constraints:
    analysis="[A-Za-z0-9_-]+",


def load_outputs():
    """metarepro.jobs.outputs, the one list of the files an analysis writes and the report reads (the jobs
    read the same module); without metarepro, the workflow's own copy of that file (plain Python).
    """
    try:
        from metarepro.jobs import outputs
    except ImportError:
        import importlib.util

        path = workflow.source_path("../../src/metarepro/jobs/outputs.py")
        spec = importlib.util.spec_from_file_location("metarepro_outputs", path)
        outputs = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(outputs)
    return outputs


OUTPUTS = load_outputs()
ANALYSES = list(config["analyses"])
# Figure formats of every figure (config figure_formats; the report embeds the SVG).
FIGURE_FORMATS = config.get("figure_formats", list(OUTPUTS.FORMATS))
# Every output lives under the config's `results` folder (default results/), so a researcher's run given its own
# folder never overwrites the default reproduction. Paths are relative, so a module `prefix` applies to them.
RESULTS = config.get("results", "results").rstrip("/")


def result_path(path):
    return f"{RESULTS}/{path}"


def analysis_rule(name):
    """Rule name of one analysis's job (`snakemake analysis_il6_smd` runs just that analysis)."""
    return f"analysis_{name.replace('-', '_')}"


def analysis_settings(name):
    return {
        "name": name,
        "defaults": config.get("defaults", {}),
        "analysis": config["analyses"][name],
    }


def analysis_files(name):
    """Every file of one analysis's job (metarepro.jobs.outputs.analysis_files)."""
    return OUTPUTS.analysis_files(config["analyses"][name], FIGURE_FORMATS)


def report_inputs():
    """What the report job reads of each analysis, by kind ({"pooled": [...pooled.json of each analysis], ...})."""
    return {
        kind: [result_path(f"{name}/{file}") for name in ANALYSES]
        for kind, file in OUTPUTS.REPORT_INPUTS.items()
    }


def study_level_sheet(name):
    """The compare_studies sheet of an analysis (a list: empty without one)."""
    studies = config["analyses"][name].get("compare_studies")
    return [local(studies["sheet"])] if studies else []


# `snakemake --report`: the tables over all analyses and the HTML page under "Overview", each analysis's
# tables and figures under "Per analysis" (one subcategory per analysis); only the SVG of a figure (the PNG
# and PDF are the same drawing). Captions: workflow/report/.
CAPTIONS = {
    "effects": "effects",
    "pooled": "pooled",
    "estimators": "estimators",
    **dict.fromkeys(OUTPUTS.DIAGNOSTIC_TABLES, "diagnostics"),
    "bias": "bias",
    "subgroups": "subgroups",
    "metareg": "metareg",
    "study_level": "study_level",
}


def caption(file):
    """The caption of a file (captions read the analysis from the rule's params: a rule has no wildcards)."""
    stem = file.rsplit(".", 1)[0]
    for kind in ("forest_subgroups", "bubble"):
        if stem.startswith(f"{kind}_"):
            return kind
    return CAPTIONS.get(stem, stem)


def analysis_outputs(name):
    """The outputs of one analysis's rule, named by file stem ({"forest_svg": ..., "effects": ...})."""
    outputs = {}
    for file in analysis_files(name):
        stem, ext = file.rsplit(".", 1)
        path = result_path(f"{name}/{file}")
        key = stem if ext in ("csv", "json") else f"{stem}_{ext}"
        # a PNG or PDF is the SVG's drawing; section.html is part of the report page
        if ext in ("png", "pdf", "html"):
            outputs[key] = path
            continue
        outputs[key] = report(
            path,
            caption=f"../report/{caption(file)}.rst",
            category="Per analysis",
            subcategory=name,
            labels={"analysis": name, "result": file},
        )
    return outputs


def overview_result(path, caption, result):
    return report(
        path,
        caption=f"../report/{caption}.rst",
        category="Overview",
        labels={"result": result},
    )


def input_sheets():
    """Every extraction sheet the analyses read (and the published-results sheet): hashed in the report."""
    sheets = sorted({analysis["data"] for analysis in config["analyses"].values()})
    return [local(sheet) for sheet in sheets] + (
        [published_sheet()] if config.get("published") else []
    )


def published_sheet():
    return local(config["published"]) if config.get("published") else []


def all_analysis_outputs():
    return [
        result_path(f"{name}/{file}")
        for name in ANALYSES
        for file in analysis_files(name)
    ]


def run_summary():
    """The last lines of a run: where the report is, then k, estimate and CI per analysis (read with csv only)."""
    import csv
    from pathlib import Path

    summary, page = Path(result_path("summary.csv")), Path(result_path("report.html"))
    if not (summary.exists() and page.exists()):
        return ""
    lines = [f"Report: {page.resolve()}"]
    with summary.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    # names are [A-Za-z0-9_-]+; one starting with '-' is written after a quote, for spreadsheets (write_table)
    for row in rows:
        row["analysis"] = row["analysis"].removeprefix("'")
    width = max(len(row["analysis"]) for row in rows)
    for row in rows:
        # ROM, OR, RR, ZCOR and transformed proportions read best back-transformed (ratio, r, proportion in %), as
        # the figures show them
        scale = next(
            (s for s in ("_ratio", "_r", "_prop") if row.get(f"estimate{s}")), ""
        )
        values = [
            float(row[f"{field}{scale}"]) for field in ("estimate", "ci_low", "ci_high")
        ]
        ratio = "ratio" if row["measure"] == "ROM" else row["measure"]
        label = {"_ratio": ratio, "_r": "r", "_prop": "proportion"}.get(
            scale, row["measure"]
        )
        if scale == "_prop" or row["measure"] == "PR":
            values, unit = [100 * v for v in values], "%"
        else:
            unit = ""
        lines.append(
            f"  {row['analysis']:<{width}}  k={row['k']:>3}  {label} {values[0]:.3f}{unit}"
            f" ({values[1]:.3f}{unit} to {values[2]:.3f}{unit})"
        )
    return "\n".join(lines)


def release_rate_limiter():
    """Cancel the timers of Snakemake's job-rate limiter (--max-jobs-per-timespan, 100/1s by default).

    Each scheduling pass starts a one-second threading.Timer that only wakes the scheduler, and the
    interpreter waits for the last of them before it exits: one second after the last job for nothing.
    Called when the run is over (onsuccess, onerror), when no pass follows."""
    import threading

    for thread in threading.enumerate():
        if isinstance(thread, threading.Timer):
            thread.cancel()


def defer_sigterm_handler():
    """Run Snakemake's SIGTERM handler in a thread of its own, not inside the signal (called by onstart).

    Snakemake 9.27.1 (the newest release; 9.25.2's code is the same) handles SIGTERM with
    JobScheduler.exit_gracefully, which takes the scheduler's lock (scheduling/job_scheduler.py:575; a
    threading.Lock, not reentrant). Python runs a signal handler in the main thread, and the main thread holds
    that lock while it records a finished job (schedule -> _finish_jobs, job_scheduler.py:231): a SIGTERM then (a
    CI cancel, scancel) waits for a lock its own thread holds, forever. Here the signal only queues itself
    (SimpleQueue.put is reentrant, so safe in a handler) and a thread calls Snakemake's handler, which waits until
    the main thread lets go of the lock: the run then stops as Snakemake means it to (no new job after the current
    scheduling pass; running jobs waited for). Only the public signal API is used: if a later Snakemake installs
    no Python handler, nothing is changed (tests/workflow/test_workflow_faults.py tells whether a cancel still ends).
    """
    import queue
    import signal
    import threading

    snakemake_handler = signal.getsignal(signal.SIGTERM)
    # SIG_DFL, SIG_IGN or a handler set outside Python: nothing that could deadlock
    if not callable(snakemake_handler):
        return
    pending = queue.SimpleQueue()

    def deliver():
        while True:
            snakemake_handler(pending.get(), None)

    threading.Thread(target=deliver, name="metarepro-sigterm", daemon=True).start()
    signal.signal(signal.SIGTERM, lambda signum, frame: pending.put(signum))
