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
# Figure formats of every figure (config figure_formats; the report embeds the SVG). The config was checked
# against the schema in the Snakefile, which filled in its defaults (figure_formats, results, defaults).
FIGURE_FORMATS = config["figure_formats"]
# Every output lives under the config's `results` folder (default results/), so a researcher's run given its own
# folder never overwrites the default reproduction. Paths are relative, so a module `prefix` applies to them.
RESULTS = config["results"].rstrip("/")


def result_path(path):
    return f"{RESULTS}/{path}"


def analysis_rule(name):
    """Rule name of one analysis (`snakemake analysis_il6_smd` runs its job)."""
    return f"analysis_{name.replace('-', '_')}"


def analysis_settings(name):
    return {
        "name": name,
        "defaults": config.get("defaults", {}),
        "analysis": config["analyses"][name],
    }


def analysis_chunks():
    """The analyses of each analysis job (config analyses_per_job, default jobs/outputs.py ANALYSES_PER_JOB): blocks
    of that many in config order, the last one smaller. An analysis added at the end of the config joins the last
    block (or starts a new one) and leaves every other job as it was; dealing them round robin would give jobs of
    even size but move every analysis to another job whenever the number of jobs changes (and so rerun them all).
    """
    per_job = config.get("analyses_per_job", OUTPUTS.ANALYSES_PER_JOB)
    return [
        ANALYSES[first : first + per_job] for first in range(0, len(ANALYSES), per_job)
    ]


def chunk_rule(index, names):
    """Rule name of one analysis job: the analysis's own rule name when the job runs one analysis."""
    return analysis_rule(names[0]) if len(names) == 1 else f"analyses_{index + 1}"


def analysis_memory(input):
    """MB of memory of an analysis job: 1 GB + 40 times its largest input file in MB (the analyses run one after
    another, so the largest sheet sets the peak)."""
    largest = max((os.path.getsize(path) for path in input), default=0)
    return 1000 + 40 * largest / 1024**2


def analysis_runtime(input):
    """Minutes of an analysis job: 10 per analysis, and one per 10 MB it reads."""
    return 10 * len(input.sheets) + int(input.size_mb / 10)


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
    """The compare_studies sheet of an analysis (a list: empty without one; metarepro.jobs.outputs.analysis_inputs
    after the analysis's own sheet)."""
    return [
        local(path) for path in OUTPUTS.analysis_inputs(config["analyses"][name])[1:]
    ]


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
    """The caption (workflow/report/<caption>.rst) of a file of an analysis."""
    stem = file.rsplit(".", 1)[0]
    for kind in ("forest_subgroups", "bubble"):
        if stem.startswith(f"{kind}_"):
            return kind
    return CAPTIONS.get(stem, stem)


def analysis_caption(name, kind):
    """The caption file of one kind of result of one analysis: workflow/report/<kind>.rst with the analysis's
    settings set first. A caption is rendered with its job's params only, and a job runs several analyses, so each
    analysis gets its own copy (under .snakemake/metarepro/captions/, rewritten only when it changes).
    """
    import json
    from pathlib import Path

    analysis = config["analyses"][name]
    settings = {
        "name": name,
        "analysis": {
            key: analysis.get(key) or [] for key in ("subgroups", "moderators")
        },
    }
    preface = "{%% set settings = %s -%%}\n" % json.dumps(settings)
    text = preface + caption_template(kind)
    path = Path(f".snakemake/metarepro/captions/{name}/{kind}.rst").absolute()
    if not (path.exists() and path.read_text() == text):
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}")
        partial.write_text(text)
        partial.replace(path)  # whole, for a job parsing the workflow at the same time
    return str(path)


CAPTION_TEMPLATES = {}


def caption_template(kind):
    if kind not in CAPTION_TEMPLATES:
        with open(workflow.source_path(f"../report/{kind}.rst")) as handle:
            CAPTION_TEMPLATES[kind] = handle.read()
    return CAPTION_TEMPLATES[kind]


def analysis_outputs(name, key=lambda stem: stem):
    """The outputs of one analysis, named by file stem ({"forest_svg": ..., "effects": ...}) passed through
    ``key`` (a job of several analyses names each one's outputs apart)."""
    outputs = {}
    for file in analysis_files(name):
        stem, ext = file.rsplit(".", 1)
        path = result_path(f"{name}/{file}")
        name_ = key(stem if ext in ("csv", "json") else f"{stem}_{ext}")
        # a PNG or PDF is the SVG's drawing; section.html is part of the report page
        if ext in ("png", "pdf", "html"):
            outputs[name_] = path
            continue
        outputs[name_] = report(
            path,
            caption=analysis_caption(name, caption(file)),
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
