"""File-level steps: what the workflow's rules call (one analysis's files; the files over all analyses).

Statistics on arrays live in the modules above (:mod:`metarepro.rma`, :mod:`metarepro.influence`, ...), figures
in :mod:`metarepro.plots`, the HTML page in :mod:`metarepro.report`; a step reads files, calls them and
returns what is written. Nothing here imports Snakemake.
"""

from .files import end_job, logged, read_effects, read_json, write_json
from .pool import AnalysisResult, forest_figure, run_analysis, without_flagged, write_analysis

__all__ = ["AnalysisResult", "end_job", "forest_figure", "logged", "read_effects", "read_json", "run_analysis",
           "without_flagged", "write_analysis", "write_json"]  # fmt: skip
