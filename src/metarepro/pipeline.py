"""File-level steps of the workflow, so that each Snakemake script is a few lines of I/O.

Everything here is plain Python (no Snakemake), usable from a notebook:

    >>> from metarepro.pipeline import run_analysis
    >>> result = run_analysis("data/raw/normand1999.csv", {"title": "LOS", "data": "...", "measure": "SMD"})
    >>> result.pooled["estimate"]  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .analysis import Settings, compute_effects, estimator_table, fit_analysis, pooled_record
from .reproduction import read_published, reproduction_table
from .rma import rma
from .sheet import LINE, SheetError, mapping_hint, read_sheet, select_rows, unrecognised_columns


@dataclass
class AnalysisResult:
    settings: Settings
    effects: pd.DataFrame
    pooled: dict
    estimators: pd.DataFrame


def run_analysis(sheet_path, analysis: dict, defaults: dict | None = None) -> AnalysisResult:
    """Read the sheet, select the analysis's rows, compute effects, fit the primary model and all estimators."""
    settings = Settings.from_config(analysis, defaults)
    sheet = read_sheet(sheet_path, analysis.get("columns"))
    rows = select_rows(sheet, analysis.get("where"))
    effects = compute_effects(rows, settings)
    if not effects["included"].any():
        raise SheetError(_unusable(sheet_path, sheet, effects))
    fit = fit_analysis(effects, settings)
    used = effects[effects["included"]]
    pooled = {
        **pooled_record(fit, settings, effects.attrs.get("unit")),
        "k_input": len(effects),
        "k_excluded": int((~effects["included"]).sum()),
        # participants in the pooled rows (NaN when a row gives no group sizes, e.g. a precomputed yi)
        "n_cases": used["n_cases"].sum(min_count=len(used)),
        "n_controls": used["n_controls"].sum(min_count=len(used)),
    }
    sensitivity = without_flagged(effects, settings)
    if sensitivity is not None:
        pooled["without_flagged"] = sensitivity
    return AnalysisResult(settings, effects, pooled, estimator_table(effects, settings))


def without_flagged(effects: pd.DataFrame, settings: Settings) -> dict | None:
    """The primary model refitted without the included rows that a quality rule flagged (``flags``).

    None when no included row is flagged. With every row flagged, only ``k = 0`` and the lines.
    """
    included = effects["included"].to_numpy(dtype=bool)
    flagged = effects["flags"].fillna("").astype(str).str.strip().to_numpy() != ""
    if not (included & flagged).any():
        return None
    keep = included & ~flagged
    excluded = [int(line) for line in effects.loc[included & flagged, "line"]]
    if not keep.any():
        return {"k": 0, "excluded_lines": excluded}
    fit = rma(effects.loc[keep, "yi"], effects.loc[keep, "vi"], settings.method, settings.test, settings.level)
    return {**pooled_record(fit, settings, effects.attrs.get("unit")), "excluded_lines": excluded}


def _unusable(sheet_path, sheet, effects, shown=5) -> str:
    """Why no row of an analysis can be pooled: the first rows' reasons and the columns not read."""
    reasons = "; ".join(f"line {ln}: {r}" for ln, r in zip(effects["line"], effects["reason"][:shown], strict=False))
    more = f"; ... and {len(effects) - shown} more rows" if len(effects) > shown else ""
    message = f"{sheet_path}: no row of this analysis can be used (nothing was written). {reasons}{more}."
    other = unrecognised_columns(sheet)
    if other:
        listed = ", ".join(other[:12]) + (", ..." if len(other) > 12 else "")
        hint = mapping_hint(sheet)
        message += f" Columns metarepro does not read as inputs: {listed}" + (
            f"; to use them, map them in the analysis's config: {hint}." if hint else "."
        )
    return message


def _jsonable(value):
    if isinstance(value, dict):
        return {key: _jsonable(v) for key, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(obj, path):
    """JSON with NaN/inf written as null (strict JSON), full float precision."""
    Path(path).write_text(json.dumps(_jsonable(obj), indent=2, allow_nan=False) + "\n")


def read_json(path):
    return json.loads(Path(path).read_text())


def read_effects(path) -> pd.DataFrame:
    """``effects.csv`` as written: only empty cells are missing (a study called "NA" stays "NA")."""
    return pd.read_csv(path, keep_default_na=False, na_values=[""], dtype={"study_id": str, "study": str})


def forest_figure(sheet_path, config: dict, effects: pd.DataFrame, pooled: dict):
    """The analysis forest plot, with each group's n and, where the sheet reports them, mean (SD)."""
    from .plots import forest_plot  # plotting is imported only by the steps that draw
    from .sensitivity import figure_labels

    summaries = [f"{stat}_{group}" for group in ("cases", "controls") for stat in ("mean", "sd")]
    sheet = read_sheet(sheet_path).rename(columns={LINE: "line"})
    columns = ["line", *[c for c in summaries if c in sheet]]
    rows = effects.merge(sheet[columns], on="line", how="left") if len(columns) > 1 else effects
    analysis = config["analysis"]
    return forest_plot(rows, pooled, title=analysis.get("title", config.get("name", "")), labels=figure_labels(config))


def write_analysis(result: AnalysisResult, effects_path, pooled_path, estimators_path):
    result.effects.to_csv(effects_path, index=False)
    write_json(result.pooled, pooled_path)
    result.estimators.to_csv(estimators_path, index=False)


def reproduction(published_path, compare: dict, names, pooled_paths) -> pd.DataFrame:
    """The reproduction table for the analyses that name published results (config ``compare_with``)."""
    ours = {name: read_json(path) for name, path in zip(names, pooled_paths, strict=True)}
    if not published_path or not compare:
        return pd.DataFrame(columns=["analysis", "published_id"])
    return reproduction_table(ours, read_published(published_path), compare)


def summary_table(names, pooled_paths) -> pd.DataFrame:
    """One row per analysis with its primary fit."""
    rows = [{"analysis": name, **read_json(path)} for name, path in zip(names, pooled_paths, strict=True)]
    return pd.DataFrame.from_records(rows)


@contextmanager
def logged(log_path):
    """Send warnings and errors of a workflow step to its log; a SheetError ends the step with its message only.

    Bad input deserves the message that says how to fix it, not a traceback.
    """
    with open(log_path, "w") as log:
        stderr = sys.stderr
        sys.stderr = log
        try:
            yield
        except SheetError as err:
            print(f"metarepro: {err}", file=log)
            print(f"metarepro: {err}", file=stderr)
            raise SystemExit(1) from None
        finally:
            sys.stderr = stderr


REPORT_TABLES = ("subgroups", "metareg", "influence")
PACKAGES = ("numpy", "scipy", "pandas", "statsmodels", "matplotlib", "snakemake")


def provenance(config_files=(), sheets=(), repo_dir=None) -> dict:
    """Versions of metarepro (and its git commit, when run from a checkout), Python and key packages, and the
    sha256 of every config file and input sheet."""
    import hashlib
    import platform
    import subprocess
    from importlib import metadata

    from . import __version__

    software = {"metarepro": __version__}
    if repo_dir is not None:
        try:
            commit = subprocess.run(["git", "-C", str(repo_dir), "rev-parse", "HEAD"], capture_output=True,
                                    text=True, timeout=10, check=True).stdout.strip()  # fmt: skip
            dirty = subprocess.run(["git", "-C", str(repo_dir), "status", "--porcelain", "--untracked-files=no"],
                                   capture_output=True, text=True, timeout=10).stdout.strip()  # fmt: skip
            software["metarepro git commit"] = commit + (" (with uncommitted changes)" if dirty else "")
        except (OSError, subprocess.SubprocessError):
            pass  # not a git checkout (an installed package): the version says it
    software["Python"] = platform.python_version()
    for name in PACKAGES:
        try:
            software[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    files = {str(p): hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in [*config_files, *sheets]}
    return {"software": software, "files": files}


def build_report(names, analyses: dict, inputs: dict, reproduction_path=None, config_files=(), sheets=(),
                 repo_dir=None, labels=None) -> str:  # fmt: skip
    """The HTML report from the workflow's files. ``inputs`` holds, per kind, one path per analysis (``pooled``,
    ``effects``, ``estimators``, ``forest``) and ``extras`` (every other table/figure; matched to its analysis by
    folder), so nothing depends on where the results live."""
    from .plots import overview
    from .plots.style import svg_text
    from .report import AnalysisSection, render_report

    sections, records = [], {}
    for i, name in enumerate(names):
        folder = Path(inputs["pooled"][i]).parent
        extras = [Path(p) for p in inputs.get("extras", []) if Path(p).parent == folder]
        bias = next((read_json(p) for p in extras if p.name == "bias.json"), None)
        record = read_json(inputs["pooled"][i])
        records[name] = record
        sections.append(AnalysisSection(
            name, analyses[name].get("title", name), record, read_effects(inputs["effects"][i]),
            Path(inputs["forest"][i]).read_text(), config=analyses[name],
            estimators=pd.read_csv(inputs["estimators"][i]), bias=bias,
            tables={p.stem: pd.read_csv(p) for p in extras if p.stem in REPORT_TABLES and p.suffix == ".csv"},
            figures={p.stem: p.read_text() for p in extras if p.suffix == ".svg"},
        ))  # fmt: skip
    titles = {name: analyses[name].get("title", name) for name in names}
    atlas = [svg_text(overview.atlas_plot(rows, key, labels=labels))
             for key, rows in overview.atlas_rows(records, titles).items()]  # fmt: skip
    table = pd.read_csv(reproduction_path) if reproduction_path else None
    repro = [svg_text(overview.reproduction_plot(rows, key, labels=labels))
             for key, rows in overview.reproduction_rows(table, titles).items()]  # fmt: skip
    return render_report(sections, table, atlas_svgs=atlas, reproduction_svgs=repro, labels=labels or {},
                         provenance=provenance(config_files, sheets, repo_dir))  # fmt: skip
