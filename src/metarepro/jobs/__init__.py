"""File-level steps: what the workflow's rules call (one analysis's files; the files over all analyses).

Statistics on arrays live in :mod:`metarepro.stats` (:mod:`~metarepro.stats.rma`, :mod:`~metarepro.stats.influence`,
...), figures in :mod:`metarepro.present.plots`, the HTML page in :mod:`metarepro.present.report`; a step
reads files, calls them and returns what is written. Nothing here imports Snakemake. :mod:`.outputs` names the files
of an analysis and the report's inputs (plain Python: the workflow's rules read it too); an analysis job
(:func:`.run.analysis_job`) is one computation in memory that writes each file once and reads none back.
"""

from metarepro._core.lazy import lazy_exports

__all__ = ["AnalysisResult", "end_job", "forest_figure", "logged", "read_effects", "read_json", "run_analysis",
           "without_flagged", "write_analysis", "write_json"]  # fmt: skip

# Imported when first used (metarepro._core.lazy): the report job needs the files' helpers, not the pooling.
lazy_exports(__name__, {
    **dict.fromkeys(["end_job", "logged", "read_effects", "read_json", "write_json"], "files"),
    **dict.fromkeys(["AnalysisResult", "forest_figure", "run_analysis", "without_flagged", "write_analysis"], "pool"),
})  # fmt: skip
