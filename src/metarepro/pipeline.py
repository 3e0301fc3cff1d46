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
from .sheet import SheetError, read_sheet, select_rows


@dataclass
class AnalysisResult:
    settings: Settings
    effects: pd.DataFrame
    pooled: dict
    estimators: pd.DataFrame


def run_analysis(sheet_path, analysis: dict, defaults: dict | None = None) -> AnalysisResult:
    """Read the sheet, select the analysis's rows, compute effects, fit the primary model and all estimators."""
    settings = Settings.from_config(analysis, defaults)
    rows = select_rows(read_sheet(sheet_path), analysis.get("where"))
    if rows.empty:
        raise SheetError(
            f"{sheet_path}: no row matches where={analysis.get('where')}; check the filter values against the sheet."
        )
    effects = compute_effects(rows, settings)
    try:
        fit = fit_analysis(effects, settings)
    except ValueError as err:
        reasons = "; ".join(f"line {ln}: {r}" for ln, r in zip(effects["line"], effects["reason"], strict=True))
        raise SheetError(f"{sheet_path}: {err}. Rows: {reasons}") from err
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
