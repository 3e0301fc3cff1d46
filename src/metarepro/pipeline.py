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
from .sheet import SheetError, mapping_hint, read_sheet, select_rows, unrecognised_columns


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
    return AnalysisResult(settings, effects, pooled, estimator_table(effects, settings))


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
