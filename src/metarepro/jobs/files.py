"""Reading and writing the workflow's files: JSON records, tables (CSV), a step's log."""

from __future__ import annotations

import atexit
import csv
import hashlib
import json
import math
import os
import re
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from metarepro.inputs.sheet import SheetError, read_sheet

# The analyses of one job often read the same sheet (the default config: 26 of 29 read cytokines_mdd.csv; parsing
# and checking it takes about 40 ms): the last sheet parsed is kept for the next analysis while the file holds the
# same bytes. Above this size a sheet is parsed for each analysis (memory over time: a 10^6-row sheet is 79 MB).
SHEET_CACHE_MAX_BYTES = 8 * 2**20
_parsed: dict = {}  # (path, sha256 of its bytes, column mapping) -> the sheet parsed from those bytes


def analysis_sheet(sheet_path, analysis: dict) -> pd.DataFrame:
    """An analysis's sheet with the analysis's column mapping (config ``columns``); ``attrs["sha256"]`` is the sha256
    of the bytes read. An analysis job reads it once (:func:`metarepro.jobs.pool.run_analysis`); a later analysis
    of the same job that reads the same bytes with the same mapping gets a copy of that parse (what
    :func:`~metarepro.inputs.sheet.read_sheet` returns for those bytes)."""
    columns = analysis.get("columns")
    path = Path(sheet_path)
    key = None
    if path.is_file() and path.stat().st_size <= SHEET_CACHE_MAX_BYTES:
        key = (str(path.resolve()), file_sha256(path), json.dumps(columns, sort_keys=True))
        if key in _parsed:
            return _copy_sheet(_parsed[key])
    sheet = read_sheet(path, columns)
    _parsed.clear()
    if key is not None and sheet.attrs["sha256"] == key[1]:  # parsed from the bytes the key names
        _parsed[key] = _copy_sheet(sheet)
    return sheet


def _copy_sheet(sheet: pd.DataFrame) -> pd.DataFrame:
    import copy

    out = sheet.copy(deep=True)
    out.attrs = copy.deepcopy(sheet.attrs)
    return out


def file_sha256(path) -> str:
    """SHA-256 of a file's bytes, read a megabyte at a time (a sheet may be 80 MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_sheet_unchanged(sheet_path, read_sha256: str, when: str) -> None:
    """SheetError if the file no longer holds the bytes an analysis read (sha256 ``read_sha256``): its results
    describe the old sheet. Raised in a workflow job, it fails the job, so Snakemake deletes the job's outputs and
    the next run makes them again. ``when``: e.g. "while analysis x ran"."""
    try:
        now = file_sha256(sheet_path)
    except OSError:  # removed (or unreadable) since
        now = None
    if now != read_sha256:
        shown = f"now {now[:12]}..." if now else "now no such file"
        raise SheetError(f"{sheet_path} changed {when} (sha256 read {read_sha256[:12]}..., {shown}); its results "
                         "describe the old sheet: run again")


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


def as_json(obj):
    """``obj`` as :func:`write_json` writes it and :func:`read_json` returns it: plain Python values, NaN/inf as
    None, tuples as lists (so what is shown of a record in memory is what its file holds)."""
    return json.loads(json.dumps(_jsonable(obj), allow_nan=False))


def write_json(obj, path):
    """JSON with NaN/inf written as null (strict JSON), full float precision."""
    Path(path).write_text(json.dumps(_jsonable(obj), indent=2, allow_nan=False) + "\n")


def read_json(path):
    return json.loads(Path(path).read_text())


# OWASP's CSV injection guidance: a spreadsheet reads a cell that starts with one of = + - @ tab CR as a formula
# (=HYPERLINK(...)), so a text cell that does is written after a single quote, which shows it as text. A cell that
# already starts with quotes before such a character gets one more, so that reading removes exactly one quote and
# every label comes back as written.
_FORMULA = re.compile(r"^'*[=+\-@\t\r]")
_QUOTED_FORMULA = re.compile(r"^'+[=+\-@\t\r]")


_FORMULA_CELL = re.compile(r"\x00'*[=+\-@\t\r]")  # _FORMULA at the start of a cell of _scan_text


def _scan_text(values: pd.Series) -> tuple[bool, bool] | None:
    """Whether a text cell of a column may start a formula, and whether one holds a CR: the cells joined, each after
    a NUL, and scanned at once, ``_CSV_BLOCK`` at a time (for 10⁶ cells ~50 times faster than :func:`_text_cells`;
    a NUL inside a cell can only add a false "may"); None for a column of numbers, true/false or dates."""
    if not (values.dtype == object or isinstance(values.dtype, pd.StringDtype)):
        return None
    cells = np.asarray(values, dtype=object).tolist()
    formula_start = cr = False
    for start in range(0, len(cells), _CSV_BLOCK):
        block = cells[start : start + _CSV_BLOCK]
        try:
            joined = "\x00" + "\x00".join(block)
        except TypeError:  # missing values or numbers among the text
            joined = "\x00" + "\x00".join([cell for cell in block if isinstance(cell, str)])
        formula_start = formula_start or bool(_FORMULA_CELL.search(joined))
        cr = cr or "\r" in joined
    return formula_start, cr


def _text_cells(values: pd.Series, pattern: re.Pattern | str) -> pd.Series | None:
    """Where the text cells of a column contain ``pattern`` (a regular expression, or a str taken literally);
    None for a column of numbers, true/false or dates."""
    found = pattern.search if isinstance(pattern, re.Pattern) else lambda text: pattern in text
    if isinstance(values.dtype, pd.StringDtype):
        regex = isinstance(pattern, re.Pattern)
        return values.str.contains(pattern.pattern if regex else pattern, regex=regex, na=False)
    if values.dtype == object:  # text among other values: only the text
        return values.map(lambda v: isinstance(v, str) and bool(found(v))).astype(bool)
    return None


def write_table(frame: pd.DataFrame, path) -> None:
    """The one writer of the workflow's tables (CSV, no index): text cells that a spreadsheet would run as a
    formula are written after a ``'``; numbers are never changed (-0.5 stays a number). :func:`read_table`
    removes exactly that quote."""
    safe, carriage_return = frame, False
    for i in range(frame.shape[1]):
        values = frame.iloc[:, i]
        values = values.astype(object) if isinstance(values.dtype, pd.CategoricalDtype) else values
        scan = _scan_text(values)
        if scan is None:
            continue
        formula_start, cr = scan
        carriage_return = carriage_return or cr
        if not formula_start:  # no cell can start a formula (a NUL inside a cell: checked below)
            continue
        formulas = _text_cells(values, _FORMULA)
        if formulas.any():
            safe = frame.copy() if safe is frame else safe
            safe.isetitem(i, values.mask(formulas, "'" + values[formulas].astype(str)))
    # the csv module quotes a cell with a line break only if the break is in its line terminator ("\n"): a lone CR
    # would end the row in a spreadsheet. Such a table has every text cell quoted (numbers stay unquoted).
    if carriage_return or not _write_csv_fast(safe, path):
        safe.to_csv(path, index=False, quoting=csv.QUOTE_NONNUMERIC if carriage_return else csv.QUOTE_MINIMAL)


# Rows per block of the fast writer: a block's cells exist as Python strings at once (about 60 bytes each).
_CSV_BLOCK = 20_000
# Rows from which doubles are written by the compiled repr: at ~0.3 µs less per double, from here on a table's
# float columns repay loading numba (~0.5 s) several times.
COMPILED_REPR_ROWS = 200_000


def _csv_cells(values, compiled: bool = False) -> list[str] | None:
    """The cells ``DataFrame.to_csv`` (index=False, QUOTE_MINIMAL, default float format) writes for one column,
    or None for a column it would write another way (dates, 32-bit floats, non-text objects, a CR in a text).

    Its float format is numpy's ``astype(str)``, which is Python's ``repr`` (the shortest text that reads back
    as the same double); a missing value is an empty cell; a text with the delimiter, a quote or a line break
    is quoted, its quotes doubled (the csv module's QUOTE_MINIMAL with line terminator "\\n"). ``compiled``: doubles
    by the compiled equivalent of ``repr`` (:mod:`metarepro._core.shortest`; for a large table, where the cost of
    loading it is repaid)."""
    dtype = values.dtype
    if _doubles(dtype):
        return _float_cells(values.to_numpy(), compiled)
    if isinstance(dtype, np.dtype) and dtype.kind in "iub":
        return list(map(str, values.tolist()))
    numpy_object = isinstance(dtype, np.dtype) and dtype.kind == "O"
    if not (numpy_object or isinstance(dtype, pd.StringDtype | pd.CategoricalDtype)):
        return None
    cells = np.asarray(values, dtype=object)
    missing = pd.isna(cells)
    if missing.any():
        cells = cells.copy()
        cells[missing] = ""
    cells = cells.tolist()
    try:
        joined = "\x00".join(cells)  # one scan of all the text for what needs quoting (a TypeError: not all text)
    except TypeError:
        return None
    if "\r" in joined:
        return None
    if "," in joined or '"' in joined or "\n" in joined:
        return [('"' + c.replace('"', '""') + '"') if ("," in c or '"' in c or "\n" in c) else c for c in cells]
    return cells


def _doubles(dtype) -> bool:
    """A column of 64-bit floats (written by repr; pandas writes other floats its own way)."""
    return isinstance(dtype, np.dtype) and dtype.kind == "f" and dtype.itemsize == 8


def _float_cells(x: np.ndarray, compiled: bool = False) -> list[str]:
    """repr of each double ("" for NaN)."""
    if compiled:
        from metarepro._core.shortest import repr_cells

        return repr_cells(x)
    cells = list(map(repr, x.tolist()))
    for i in np.flatnonzero(np.isnan(x)).tolist():
        cells[i] = ""
    return cells


class _FewValues:
    """A column of doubles with few distinct values (group sizes, years, means to 4 decimals: at 10⁶ rows a few
    thousand), each formatted once for the whole column: its cells of rows ``start:stop`` are then looked up.
    pandas' factorize takes -0.0 for 0.0, so a column holding -0.0 is not one of these (None from :meth:`of`). Which
    columns are is only a matter of speed: their texts are repr's either way."""

    def __init__(self, codes, texts):
        self.codes, self.texts = codes, texts

    @classmethod
    def of(cls, values: pd.Series) -> _FewValues | None:
        if not _doubles(values.dtype):
            return None
        x = values.to_numpy()
        if len(x) > 2 * _CSV_BLOCK and 2 * len(pd.unique(x[:_CSV_BLOCK])) >= _CSV_BLOCK:
            return None  # its first block is mostly distinct (yi, CI bounds): not worth hashing the whole column
        codes, uniques = pd.factorize(x)
        if 2 * len(uniques) >= len(x) or (np.signbit(x) & (x == 0)).any():
            return None
        texts = np.array([*map(repr, uniques.tolist()), ""], dtype=object)  # code -1 (NaN) takes the last
        return cls(codes.astype(np.int32), texts)

    def cells(self, start: int, stop: int) -> list[str]:
        return self.texts[self.codes[start:stop]].tolist()


def _write_csv_fast(frame: pd.DataFrame, path) -> bool:
    """Write ``frame`` as pandas' ``to_csv`` (index=False) would, byte for byte, in blocks of rows joined as
    text (pandas passes every cell through the csv module, several times slower at 10⁶ rows). False for a frame
    whose columns it does not cover (see :func:`_csv_cells`): the caller then writes the whole file again."""
    names = list(frame.columns)
    if len(names) < 2 or not all(type(name) is str for name in names):  # one column: an empty cell is quoted
        return False
    few = [_FewValues.of(frame.iloc[:, i]) for i in range(frame.shape[1])]
    compiled = len(frame) >= COMPILED_REPR_ROWS
    with open(path, "w", encoding="utf-8", newline="") as out:
        out.write(",".join(_csv_cells(pd.Series(names, dtype=object))) + "\n")
        for start in range(0, len(frame), _CSV_BLOCK):
            stop = min(start + _CSV_BLOCK, len(frame))
            block = frame.iloc[start:stop]
            columns = [_csv_cells(block.iloc[:, i], compiled) if few[i] is None else few[i].cells(start, stop)
                       for i in range(block.shape[1])]  # fmt: skip
            if any(column is None for column in columns):
                return False
            out.write("\n".join(map(",".join, zip(*columns, strict=True))) + "\n")
    return True


def read_table(path, **options) -> pd.DataFrame:
    """A table :func:`write_table` wrote (``options`` as for :func:`pandas.read_csv`), its text as it was before
    writing: the quote before a formula-like cell is removed, and a column that is then all numbers is read as
    numbers, as it would have been without the quote (unless ``options`` give its dtype)."""
    frame = pd.read_csv(path, **options)
    given = options.get("dtype")
    for i, column in enumerate(frame.columns):
        values = frame.iloc[:, i]
        quoted = _text_cells(values, _QUOTED_FORMULA)
        if quoted is None or not quoted.any():
            continue
        values = values.mask(quoted, values[quoted].str[1:])
        if given is None or (isinstance(given, dict) and column not in given):
            try:
                values = pd.to_numeric(values)
            except (ValueError, TypeError):
                pass  # text, as read
        frame.isetitem(i, values)
    return frame


def read_effects(path) -> pd.DataFrame:
    """``effects.csv`` as written: only empty cells are missing (a study called "NA" stays "NA")."""
    return read_table(path, keep_default_na=False, na_values=[""], dtype={"study_id": str, "study": str})


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


def end_job() -> None:
    """End a workflow job's process once its files are written: run the exit handlers (logging's, matplotlib's
    removal of a temporary config folder, coverage's) and flush, then leave without the interpreter's teardown,
    which frees every object numpy, pandas and matplotlib made and writes nothing (about 0.3 s of each job; a
    run has one job per analysis). Only for the workflow's scripts, never in a notebook."""
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
