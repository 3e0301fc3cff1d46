"""Extraction sheets: reading, validating and selecting rows.

One CSV row per comparison. Identity columns ``study_id, study, year, marker`` are required; every
other column is either one of the numeric input columns below or a free grouping column (kept as
text). Problems that can only be extraction errors (text in a numeric cell, a negative SD, a
non-integer n) stop the run with :class:`SheetError`, naming file, line, column and the fix. Rows
that are merely incomplete are kept and later excluded with a reason (see :mod:`metarepro.analysis`).

Line numbers are those of the CSV file as an editor shows them: the header is line 1.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

IDENTITY = ("study_id", "study", "year", "marker")
SUMMARY = ("n_cases", "mean_cases", "sd_cases", "n_controls", "mean_controls", "sd_controls")
# what else a paper may report for a group: SEM, a 95% CI of the mean, median with quartiles/range
GROUP_EXTRA = tuple(
    f"{stat}_{group}"
    for group in ("cases", "controls")
    for stat in ("sem", "ci_low", "ci_high", "median", "q1", "q3", "min", "max")
)
PRECOMPUTED = ("yi", "vi", "sei", "ci_low", "ci_high")
CORRELATION = ("r", "n")
STATISTICS = ("t", "p", "d", "z", "F")  # d: Cohen's d; z and F (one numerator df) with direction
NUMERIC = SUMMARY + GROUP_EXTRA + PRECOMPUTED + CORRELATION + STATISTICS
COUNTS = ("n_cases", "n_controls", "n")
NONNEGATIVE = ("sd_cases", "sd_controls", "sem_cases", "sem_controls", "vi", "sei")
DIRECTIONS = ("cases_higher", "cases_lower")
LINE = "_line"  # CSV line of each row, kept for messages and the report


class SheetError(ValueError):
    """A problem in an extraction sheet; the message says where and how to fix it."""


def _where(path, line, row, column):
    study = row.get("study_id", "") if row is not None else ""
    who = f" (study_id {study})" if study else ""
    return f"{path}, line {line}{who}, column '{column}'"


def _check_numeric(path, raw: pd.DataFrame, problems: list[str]) -> pd.DataFrame:
    values = {}
    for column in [c for c in NUMERIC if c in raw.columns]:
        text = raw[column].str.strip()
        parsed = pd.to_numeric(text.where(text != ""), errors="coerce")
        for idx in np.flatnonzero(parsed.isna() & (text != "")):
            row = raw.iloc[idx]
            problems.append(
                f"{_where(path, row[LINE], row, column)}: {row[column]!r} is not a number. "
                "Write a plain number with '.' as the decimal mark (no units, no '±'), or leave the cell empty."
            )
        for idx in np.flatnonzero(parsed < 0):
            row = raw.iloc[idx]
            if column in COUNTS or column in NONNEGATIVE:
                problems.append(
                    f"{_where(path, row[LINE], row, column)}: {row[column]} is negative; "
                    f"a {column} cannot be. Check the source and correct the cell."
                )
        if column in COUNTS:
            for idx in np.flatnonzero(parsed.notna() & (parsed != np.floor(parsed))):
                row = raw.iloc[idx]
                problems.append(
                    f"{_where(path, row[LINE], row, column)}: {row[column]} is not a whole number of participants."
                )
        if column == "p":
            for idx in np.flatnonzero((parsed <= 0) | (parsed > 1)):
                row = raw.iloc[idx]
                problems.append(
                    f"{_where(path, row[LINE], row, column)}: {row[column]} is not a p-value in (0, 1]. "
                    "Give an exact two-sided p; write bounds such as 'p<0.001' in a notes column instead."
                )
        values[column] = parsed.astype(float)
    if "direction" in raw.columns:
        direction = raw["direction"].str.strip()
        for idx in np.flatnonzero(~direction.isin(("", *DIRECTIONS))):
            row = raw.iloc[idx]
            problems.append(
                f"{_where(path, row[LINE], row, 'direction')}: {row['direction']!r} is not one of "
                f"{', '.join(DIRECTIONS)} (or empty)."
            )
    return pd.DataFrame(values, index=raw.index)


def read_sheet(path) -> pd.DataFrame:
    """Read and validate one extraction sheet; numeric input columns become floats.

    Raises :class:`SheetError` listing every problem found (not just the first).
    """
    path = Path(path)
    if not path.exists():
        raise SheetError(f"{path}: no such file. Check the 'data' path of the analysis in your config.")
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise SheetError(f"{path}: not a readable CSV file ({err}). Save it as UTF-8 CSV with a header row.") from err
    raw.columns = [c.strip() for c in raw.columns]
    missing = [c for c in IDENTITY if c not in raw.columns]
    if missing:
        raise SheetError(
            f"{path}, line 1 (header): missing column(s) {', '.join(missing)}. "
            f"Every sheet needs {', '.join(IDENTITY)}; see data/raw/README.md."
        )
    duplicated = sorted({c for c in raw.columns if list(raw.columns).count(c) > 1})
    if duplicated:
        raise SheetError(f"{path}, line 1 (header): column(s) {', '.join(duplicated)} appear twice; rename one.")
    raw.insert(0, LINE, np.arange(len(raw)) + 2)
    problems: list[str] = []
    for idx in np.flatnonzero(raw["study_id"].str.strip() == ""):
        row = raw.iloc[idx]
        problems.append(f"{path}, line {row[LINE]}, column 'study_id': empty. Give every row its sample's study_id.")
    numeric = _check_numeric(path, raw, problems)
    if problems:
        shown = "\n  ".join(problems[:50])
        more = f"\n  ... and {len(problems) - 50} more" if len(problems) > 50 else ""
        raise SheetError(f"{len(problems)} problem(s) in {path}:\n  {shown}{more}")
    sheet = raw.copy()
    for column in NUMERIC:
        sheet[column] = numeric[column] if column in numeric else math.nan
    sheet.attrs["path"] = str(path)
    return sheet


def select_rows(sheet: pd.DataFrame, where: dict | None) -> pd.DataFrame:
    """Rows matching every ``where`` filter: ``{column: value}`` or ``{column: [values]}``.

    Values are compared as text, so ``{year: 2010}`` matches the cell "2010". An unknown column is an
    error rather than an empty selection.
    """
    selected = sheet
    for column, wanted in (where or {}).items():
        if column not in sheet.columns:
            raise SheetError(
                f"{sheet.attrs.get('path', 'sheet')}: the filter 'where: {{{column}: ...}}' names a column "
                f"that the sheet does not have. Columns are: {', '.join(c for c in sheet.columns if c != LINE)}."
            )
        options = {_as_text(v) for v in (wanted if isinstance(wanted, list) else [wanted])}
        cells = selected[column].map(_as_text)
        selected = selected[cells.isin(options)]
    return selected


def _as_text(value) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def numeric_columns(path, columns) -> list[str]:
    """Those of ``columns`` whose non-empty cells are all numbers (continuous moderators)."""
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    numeric = []
    for column in [c for c in columns if c in raw.columns]:
        text = raw[column].str.strip()
        given = text[text != ""]
        if len(given) and pd.to_numeric(given, errors="coerce").notna().all():
            numeric.append(column)
    return numeric
