"""Extraction sheets: reading, validating and selecting rows.

One CSV row per comparison. ``study_id`` is required (``study``, the label, defaults to it; ``year``
and ``marker`` are read when present); every other column is either one of the numeric input columns below or a free
grouping column (kept as text). A config may map its own names onto these (``columns: {n_cases:
n1i}``), and set aside a sheet column that has one of these names but not its meaning (``columns: {t: null}``:
a ``t`` printed without its sign, a ``p`` column holding bounds such as ``<0.001``, a ``direction`` in the
sheet's own words); that column is kept as text under ``<name>_as_printed`` and metarepro's ``<name>`` is empty.
Problems that can only be extraction errors (text in a numeric cell, a negative SD, a
non-integer n, an infinite number) stop the run with :class:`SheetError`, naming file, line, column
and the fix. Rows that are merely incomplete are kept and later excluded with a reason (see
:mod:`metarepro.pipeline.analysis`).

Sheets as R and Excel write them are read as they are: ``,``, ``;``, tab or ``|`` as delimiter
(from the header line, or Excel's ``sep=`` first line), a decimal comma with a ``;`` or tab
delimiter (R's ``write.csv2``), a UTF-8 byte-order mark, and ``NA``, ``N/A``, ``NaN``, ``.`` or an
empty cell for a missing number.

Line numbers are those of the file as an editor shows them (the header is line 1, blank lines and
line breaks inside quoted cells counted).

What is refused rather than guessed (each with file, line and the fix): a quote that is never closed, or one
whose cell runs over lines that look like rows of their own (a stray quote swallows the rows after it); a
workbook (.xlsx, .xls, .ods) or UTF-16 text without its byte-order mark; a Unicode minus sign in a number; in a
sheet that writes decimals with a comma, a number such as ``1.310`` that may carry a thousands separator.
Invisible formatting characters (zero-width spaces, byte-order marks, soft hyphens and the bidirectional
controls U+200E/F, U+202A-E, U+2066-9 that text copied from a PDF carries) are removed from every cell, so
they neither split one study into two nor reach an output file.
"""

from __future__ import annotations

import csv
import difflib
import gc
import hashlib
import io
import itertools
import math
import re
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

# numpy and pandas are imported where a sheet is read, not here: the Snakefile checks a config with this
# module's names and sheet_columns (the header only) while Snakemake parses the workflow, on every run.

IDENTITY = ("study_id", "study", "year", "marker")
REQUIRED = ("study_id",)  # "study" (the label) defaults to study_id
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
# binary outcomes: a 2x2 table per row (events, and non-events or the group sizes n_cases/n_controls), or a single
# proportion (events of n); metafor's ai, bi, ci, di and xi
EVENTS = ("events_cases", "nonevents_cases", "events_controls", "nonevents_controls", "events")
NUMERIC = SUMMARY + GROUP_EXTRA + PRECOMPUTED + CORRELATION + STATISTICS + EVENTS
COUNTS = ("n_cases", "n_controls", "n", *EVENTS)
NONNEGATIVE = ("sd_cases", "sd_controls", "sem_cases", "sem_controls", "vi", "sei")
DIRECTIONS = ("cases_higher", "cases_lower")
LINE = "_line"  # CSV line of each row, kept for messages and the report
AS_PRINTED = "_as_printed"  # suffix of a sheet column set aside by a config mapping to null (columns: {t: null})
MISSING = ("", "na", "n/a", "nan", ".")  # missing-value spellings (R, Excel, SPSS/Stata), any case
TEXT = ("unit", "measure", "direction", "verification", "eligibility_second_pass")  # read by the analysis
# metafor's escalc argument names, to suggest a 'columns' mapping for a sheet exported from R
METAFOR_NAMES = {
    "n1i": "n_cases", "m1i": "mean_cases", "sd1i": "sd_cases", "n2i": "n_controls", "m2i": "mean_controls",
    "sd2i": "sd_controls", "ri": "r", "ni": "n", "sei": "sei", "yi": "yi", "vi": "vi", "ai": "events_cases",
    "bi": "nonevents_cases", "ci": "events_controls", "di": "nonevents_controls", "xi": "events",
}  # fmt: skip
DELIMITERS = ",;\t|"
# zero-width and formatting characters, and the bidirectional controls (LRM/RLM, embeddings and overrides,
# isolates, Arabic letter mark) that text copied from a PDF carries: invisible, yet they make "a" and "a\u200e"
# two samples and pass into every output file
_BIDI = "\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u061c"
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad" + _BIDI), None)
# a number whose '.' may group thousands (1.310) in a sheet that writes its decimals with ','
_DOT_GROUPED = re.compile(r"[+-]?[1-9]\d{0,2}(\.\d{3})+")
_UNICODE_MINUS = "\u2212\u2013\u2012\ufe63\uff0d"  # minus sign, en dash, figure dash, small/full-width minus
# a cell that clean_text may change, once stripped: anything but printable ASCII, or two spaces in a row
_UNCLEAN = r"[^\x21-\x7e ]|  "
# every case variant of the MISSING spellings (what str.lower() maps onto them)
_MISSING_CASES = sorted({"".join(chars) for word in MISSING
                         for chars in itertools.product(*({c.lower(), c.upper()} for c in word))})  # fmt: skip
DECIMAL_COMMA = re.compile(r"[+-]?(\d+,\d*|,\d+)([eE][+-]?\d+)?")


class SheetError(ValueError):
    """A problem in an extraction sheet; the message says where and how to fix it."""


def clean_text(value: str) -> str:
    """``value`` as a person reads it: NFC, no invisible characters (``_INVISIBLE``), single spaces, no outer spaces.

    So "S1", "S1 ", "S\u200b1", "S1\u200e" and "S1" with a no-break space are one study_id.
    """
    if not value.isascii():  # every invisible character is outside ASCII, and ASCII is already NFC
        value = unicodedata.normalize("NFC", value).translate(_INVISIBLE)
    return " ".join(value.split())


def did_you_mean(name, options) -> str:
    """ " (did you mean 'x'?)" for the closest of ``options``, or ""."""
    options = [str(o) for o in options]
    lower = {o.lower(): o for o in options}
    close = [lower[name.lower()]] if name.lower() in lower else difflib.get_close_matches(name, options, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _where(path, line, row, column):
    study = row.get("study_id", "") if row is not None else ""
    who = f" (study_id {study})" if study else ""
    return f"{path}, line {line}{who}, column '{column}'"


def _clean_texts(cells: pd.Series) -> pd.Series:
    """:func:`clean_text` of each (stripped) cell, called only on the cells it may change: those with a character
    other than printable ASCII and single inner spaces."""
    unclean = cells.str.contains(_UNCLEAN, regex=True).to_numpy(dtype=bool)
    if not unclean.any():
        return cells
    cells = cells.copy()
    cells[unclean] = cells[unclean].map(clean_text)
    return cells


def _is_missing(text: pd.Series) -> pd.Series:
    """Cells that spell a missing value (``MISSING``, any case): compared with each spelling's case variants at once
    (no character outside ASCII lower-cases to one of theirs)."""
    return text.isin(_MISSING_CASES)


def to_numbers(cells: pd.Series) -> pd.Series:
    """``pd.to_numeric(cells, errors="coerce")`` as floats, each distinct text parsed once where a column of text
    repeats its values (group sizes, years, rounded means: at 10⁶ rows a few thousand texts).

    What is parsed is the column's own first cell of each text, and its first missing cell if it has one: to_numeric
    reads the texts of a column as integers or as floats depending on every value in it ("-0" is -0.0 beside a
    missing cell, 0 without), so it must see the same kinds of value. A column of numbers is parsed whole (equal
    numbers such as -0.0 and 0.0 would be taken for one)."""
    import numpy as np
    import pandas as pd

    codes, distinct = pd.factorize(cells)  # a missing cell: code -1
    if 2 * len(distinct) >= len(cells) or pd.api.types.infer_dtype(cells, skipna=True) != "string":
        return pd.to_numeric(cells, errors="coerce").astype(float)
    first = pd.Series(codes).drop_duplicates().index.to_numpy()  # the first cell of each code, -1 included
    lookup = np.empty(len(distinct) + 1)  # the last entry: code -1
    lookup[codes[first]] = pd.to_numeric(cells.iloc[first], errors="coerce").to_numpy(dtype=float)
    return pd.Series(lookup[codes], index=cells.index)


def _check_numeric(path, raw: pd.DataFrame, problems: list[str], decimal_comma: bool) -> pd.DataFrame:
    import numpy as np
    import pandas as pd

    values = {}
    columns = [c for c in NUMERIC if c in raw.columns]
    # a sheet that writes some decimals with ',' may group thousands with '.': 1.310 is then 1310, not 1.31
    comma_example = _first_decimal_comma(raw, columns) if decimal_comma else None
    for column in columns:
        text = raw[column]
        if decimal_comma:
            text = text.where(~text.str.fullmatch(DECIMAL_COMMA), text.str.replace(",", ".", regex=False))
        given = ~_is_missing(text)
        parsed = to_numbers(text.where(given))
        for idx in np.flatnonzero(parsed.isna() & given):
            row = raw.iloc[idx]
            problems.append(f"{_where(path, row[LINE], row, column)}: {_not_a_number(row[column], decimal_comma)}")
        if comma_example is not None:
            for idx in np.flatnonzero(raw[column].str.fullmatch(_DOT_GROUPED)):
                row = raw.iloc[idx]
                problems.append(
                    f"{_where(path, row[LINE], row, column)}: {row[column]!r} is ambiguous: this sheet writes "
                    f"decimals with ',' ({comma_example}), so '.' may group thousands. Write it without a "
                    f"thousands separator ({row[column].replace('.', '')}) or with a decimal comma "
                    f"({row[column].replace('.', ',')})."
                )
        for idx in np.flatnonzero(parsed.abs() == np.inf):
            row = raw.iloc[idx]
            problems.append(
                f"{_where(path, row[LINE], row, column)}: {row[column]!r} is not a finite number. "
                "Write the value the source reports, or leave the cell empty (or NA) if it reports none."
            )
        # only where a negative is wrong (looking up every negative effect of a 10^6-row sheet took a minute)
        negative = np.flatnonzero(parsed < 0) if column in COUNTS or column in NONNEGATIVE else ()
        for idx in negative:
            row = raw.iloc[idx]
            problems.append(
                f"{_where(path, row[LINE], row, column)}: {row[column]} is negative; "
                f"a {column} cannot be. Check the source and correct the cell."
            )
        if column in COUNTS:
            whole = np.isfinite(parsed) & (parsed != np.floor(parsed))
            for idx in np.flatnonzero(whole):
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
        direction = raw["direction"]
        for idx in np.flatnonzero(~direction.isin(("", *DIRECTIONS))):
            row = raw.iloc[idx]
            problems.append(
                f"{_where(path, row[LINE], row, 'direction')}: {row['direction']!r} is not one of "
                f"{', '.join(DIRECTIONS)} (or empty)."
            )
    return pd.DataFrame(values, index=raw.index)


# the first bytes of the files a sheet is mistaken for: Office Open XML and OpenDocument (zip), legacy Excel (OLE2)
_WORKBOOKS = {b"PK\x03\x04": "a zip archive (an Excel .xlsx or OpenDocument .ods workbook?)",
              b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1": "a legacy Excel workbook (.xls)"}  # fmt: skip


def _refuse_binary(path: Path, data: bytes) -> None:
    """A workbook, UTF-16 text without its byte-order mark, or any other binary file is not a CSV sheet."""
    for magic, kind in _WORKBOOKS.items():
        if data.startswith(magic):
            raise SheetError(
                f"{path}: is {kind}, not a CSV sheet. Open it in Excel or LibreOffice and save the sheet as "
                "'CSV UTF-8 (comma delimited)', then point 'data' at the .csv file."
            )
    if data.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" not in data[:4096]:
        return
    head = data[:4096]
    even, odd = head[0::2].count(0), head[1::2].count(0)
    if max(even, odd) > len(head) // 4:  # every other byte NUL: 16-bit text
        order = "big-endian" if even > odd else "little-endian"
        raise SheetError(
            f"{path}: looks like UTF-16 ({order}) text without a byte-order mark. Save it as 'CSV UTF-8', or "
            f"convert it: iconv -f UTF-16{'BE' if even > odd else 'LE'} -t UTF-8 {path.name} > utf8.csv"
        )
    line = data[: data.index(b"\x00")].count(b"\n") + 1
    raise SheetError(f"{path}, line {line}: contains NUL bytes, so it is not a text (CSV) file. Export the sheet "
                     "as 'CSV UTF-8'.")  # fmt: skip


def _first_decimal_comma(raw: pd.DataFrame, columns) -> str | None:
    """'line N, column c: 0,5' for the first numeric cell written with a decimal comma, or None."""
    for column in columns:
        hits = raw[column].str.fullmatch(DECIMAL_COMMA)
        if hits.any():
            row = raw[hits].iloc[0]
            return f"line {row[LINE]}, {column}: {row[column]}"
    return None


def _not_a_number(cell: str, decimal_comma: bool) -> str:
    """Why ``cell`` is not read as a number, and how to write it."""
    if any(dash in cell for dash in _UNICODE_MINUS):
        return (f"{cell!r} is written with a typographic minus or dash (as text copied from a PDF or Word has it); "
                "write the minus as the ASCII hyphen-minus '-'.")  # fmt: skip
    mark = "',' or '.'" if decimal_comma else "'.'"
    return (f"{cell!r} is not a number. Write a plain number with {mark} as the decimal mark (no units, no '±'), "
            "or leave the cell empty (or NA).")  # fmt: skip


def _read_text(path: Path) -> tuple[str, str]:
    """The sheet's text, and the sha256 of the bytes it was decoded from (what a job's results describe)."""
    if path.is_dir():
        raise SheetError(f"{path}: is a folder, not a sheet. Point 'data' at the CSV file itself.")
    if not path.exists():
        raise SheetError(f"{path}: no such file. Check the 'data' path of the analysis in your config.")
    data = path.read_bytes()
    sha256 = hashlib.sha256(data).hexdigest()
    _refuse_binary(path, data)
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):  # Excel's "Unicode text"
        try:
            return data.decode("utf-16"), sha256
        except UnicodeDecodeError as err:
            raise SheetError(
                f"{path}: not readable as the UTF-16 text its byte-order mark announces ({err.reason} at byte "
                f"{err.start}; the file may be truncated). Save it again, as 'CSV UTF-8'."
            ) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise SheetError(
            f"{path}, line {line}: byte 0x{data[err.start]:02x} is not UTF-8; the file is probably Latin-1/"
            "Windows-1252 (Excel's plain 'CSV'). Save it as 'CSV UTF-8', or convert it: "
            f"iconv -f WINDOWS-1252 -t UTF-8 {path.name} > utf8.csv"
        ) from None
    if not text.strip():
        raise SheetError(
            f"{path}: the file is empty. A sheet needs a header line ({', '.join(REQUIRED)}, ...) and a row per "
            "comparison."
        )
    return text, sha256


def read_table(path) -> tuple[list[str], list[list[str]], list[int], dict]:
    """Header, rows (stripped text cells, padded to the header) and the line where each row starts.

    The delimiter is Excel's ``sep=`` line if there is one, else the most frequent of ``, ; tab |`` in
    the header line. ``info`` says which delimiter and whether a decimal comma is read, and the ``sha256`` of
    the bytes read.
    """
    path = Path(path)
    text, sha256 = _read_text(path)
    if not text.isascii():  # invisible characters are never data: removed from the whole text at once
        text = unicodedata.normalize("NFC", text).translate(_INVISIBLE)
    first, _, rest = text.partition("\n")
    offset = 0
    excel = re.fullmatch(r'"?sep=(.)"?', first.strip())
    if excel:
        delimiter, text, offset = excel.group(1), rest, 1
    else:
        delimiter = max(DELIMITERS, key=first.count) if any(d in first for d in DELIMITERS) else ","
    # strict: a quote that is never closed, or text after a closing quote, is an error rather than a cell that
    # silently takes in the rest of the file
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    records, starts, previous = [], [], offset
    # the rows are millions of new lists at 10^6 rows, none in a reference cycle: the cyclic garbage collector would
    # only scan them again and again (a third of the time), so it pauses while they are read
    collecting = gc.isenabled()
    gc.disable()
    try:
        for cells in reader:
            start, previous = previous + 1, offset + reader.line_num
            stripped = list(map(str.strip, cells))
            if any(stripped):  # blank lines (and Excel's ';;;;' rows) are skipped
                records.append(stripped)
                starts.append(start)
                if previous > start:
                    _swallowed_rows(path, cells, start, delimiter, width=len(records[0]))
    except csv.Error as err:
        line = previous + 1
        if "unexpected end of data" in str(err):
            raise SheetError(
                f"{path}, line {line}: a double quote opens a cell here and is never closed, so the rest of the "
                "file would be read into that cell. Remove the stray quote, or close it (a quote inside a quoted "
                "cell is written twice: \"\")."
            ) from None
        raise SheetError(
            f"{path}, line {line}: not readable as CSV ({err}); a quote inside a cell must be in a quoted cell and "
            "written twice (\"\"), or the cell written without quotes."
        ) from None
    finally:
        if collecting:
            gc.enable()
    header = [clean_text(name) for name in records[0]]
    rows = records[1:]
    width = len(header)
    for cells, line in zip(rows, starts[1:], strict=True):
        if len(cells) == width:  # the rows of a sheet, as a rule
            continue
        if len(cells) > width and any(cells[width:]):
            raise SheetError(
                f"{path}, line {line}: {len(cells)} cells but the header (line {starts[0]}) has {width} columns. "
                f"A '{delimiter}' inside a cell needs the cell in double quotes."
            )
        cells[:] = (cells + [""] * width)[:width]
    info = {"delimiter": delimiter, "decimal_comma": delimiter != ",", "header_line": starts[0], "sha256": sha256}
    return header, rows, starts[1:], info


def _swallowed_rows(path, cells, start, delimiter, width) -> None:
    """A quoted cell over several lines is legal (a note with line breaks), but when a line inside it has as many
    delimiters as a row of the sheet, a stray quote has taken in the rows below it: one study would get another
    study's numbers."""
    needed = max(width - 1, 2)
    for position, cell in enumerate(cells):
        lines = cell.split("\n")
        for offset, inner in enumerate(lines[1:], start=1):
            if inner.count(delimiter) >= needed:
                line = start + sum(part.count("\n") for part in cells[:position]) + offset
                raise SheetError(
                    f"{path}, line {start}: cell {position + 1} opens a double quote that closes only on line "
                    f"{start + cell.count(chr(10))}, taking in line {line} ({inner[:40]!r}...), which reads as a row "
                    "of its own. Remove the stray quote (or close it on its own line)."
                )


def _apply_mapping(path, header: list[str], mapping: dict | None) -> list[str]:
    if not mapping:
        return header
    known = (*IDENTITY, *NUMERIC, *TEXT)
    renamed = list(header)
    for ours, theirs in mapping.items():
        if ours not in known:
            raise SheetError(
                f"config 'columns': '{ours}' is not a metarepro column{did_you_mean(ours, known)}; "
                "map metarepro's names to the sheet's, e.g. columns: {n_cases: n1i}."
            )
        if theirs is None:  # the sheet's column of this name means something else: kept as text, not read as ours
            if ours not in header:
                raise SheetError(
                    f"{path}, line 1 (header): config 'columns' sets aside '{ours}' ({ours}: null), but the sheet has "
                    f"no column '{ours}'{did_you_mean(ours, header)}; remove the entry."
                )
            renamed[header.index(ours)] = ours + AS_PRINTED
            continue
        if str(theirs) not in header:
            raise SheetError(
                f"{path}, line 1 (header): config 'columns' maps {ours} to '{theirs}', which the sheet does not "
                f"have{did_you_mean(str(theirs), header)}."
            )
        renamed[header.index(str(theirs))] = ours
    return renamed


def _header_problems(path, header, info, mapping) -> None:
    nameless = [i + 1 for i, name in enumerate(header) if not name]
    if nameless:
        raise SheetError(
            f"{path}, line {info['header_line']} (header): column(s) {', '.join(map(str, nameless))} have no name; "
            "name them or delete them."
        )
    seen: dict[str, int] = {}
    for position, name in enumerate(header, start=1):
        if name in seen:
            mapped = f" ('{mapping[name]}' is mapped to {name} by the config)" if mapping and name in mapping else ""
            raise SheetError(
                f"{path}, line {info['header_line']} (header): column '{name}' appears twice (columns "
                f"{seen[name]} and {position}){mapped}; rename or delete one."
            )
        seen[name] = position
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        hints = "".join(did_you_mean(c, header) for c in missing)
        shown = ", ".join(header[:8]) + (", ..." if len(header) > 8 else "")
        raise SheetError(
            f"{path}, line {info['header_line']} (header): missing column(s) {', '.join(missing)}{hints}. "
            f"Read with delimiter {info['delimiter']!r}, the header has: {shown}. Every sheet needs "
            f"{', '.join(REQUIRED)} (or a config 'columns' mapping onto them); see data/raw/README.md."
        )


def read_sheet(path, columns: dict | None = None) -> pd.DataFrame:
    """Read and validate one extraction sheet; numeric input columns become floats.

    ``columns`` maps metarepro's column names to the sheet's (``{"n_cases": "n1i"}``); a name mapped to None sets
    the sheet's column of that name aside (kept as text under ``<name>_as_printed``, see the module docstring). Raises
    :class:`SheetError` listing every problem found (not just the first).
    """
    import numpy as np
    import pandas as pd

    path = Path(path)
    header, rows, lines, info = read_table(path)
    if columns:
        columns = {ours: None if theirs is None else str(theirs) for ours, theirs in columns.items()}
    header = _apply_mapping(path, header, columns)
    _header_problems(path, header, info, {ours: theirs for ours, theirs in (columns or {}).items()})
    if not rows:
        raise SheetError(f"{path}: the sheet has a header but no rows; add one row per comparison below it.")
    raw = pd.DataFrame(rows, columns=header, dtype=str)
    raw["study_id"] = _clean_texts(raw["study_id"])
    if "study" not in raw:
        raw["study"] = raw["study_id"]
    raw.insert(0, LINE, np.asarray(lines))
    problems: list[str] = []
    for idx in np.flatnonzero(raw["study_id"] == ""):
        row = raw.iloc[idx]
        problems.append(f"{path}, line {row[LINE]}, column 'study_id': empty. Give every row its sample's study_id.")
    numeric = _check_numeric(path, raw, problems, info["decimal_comma"])
    if info["decimal_comma"]:
        _decimal_comma_text_columns(raw)
    if problems:
        shown = "\n  ".join(problems[:50])
        more = f"\n  ... and {len(problems) - 50} more" if len(problems) > 50 else ""
        raise SheetError(f"{len(problems)} problem(s) in {path}:\n  {shown}{more}")
    sheet = raw.copy()
    for column in NUMERIC:
        sheet[column] = numeric[column] if column in numeric else math.nan
    sheet.attrs["path"] = str(path)
    sheet.attrs["columns"] = header  # as given (after mapping): tells a missing column from an empty cell
    sheet.attrs["mapping"] = dict(columns or {})
    sheet.attrs["sha256"] = info["sha256"]  # of the bytes parsed: a job records what its results describe
    return sheet


def _decimal_comma_text_columns(raw: pd.DataFrame) -> None:
    """In a ';'-delimited sheet, a free column whose given cells are all numbers with a decimal comma
    (a moderator such as '3,83') is rewritten with '.', so that it is read as the number it is."""
    import pandas as pd

    for column in [c for c in raw.columns if c not in NUMERIC and c != LINE]:
        text = raw[column]
        given = ~_is_missing(text)
        comma = text.str.fullmatch(DECIMAL_COMMA)
        if comma.any() and (comma | pd.to_numeric(text.where(given), errors="coerce").notna() | ~given).all():
            raw[column] = text.where(~comma, text.str.replace(",", ".", regex=False))


def unrecognised_columns(sheet: pd.DataFrame) -> list[str]:
    """Columns of the sheet that metarepro does not read as inputs (free grouping columns or misnamed ones)."""
    known = {*IDENTITY, *NUMERIC, *TEXT}
    return [c for c in sheet.attrs.get("columns", []) if c not in known]


def mapping_hint(sheet: pd.DataFrame) -> str:
    """A suggested config ``columns`` mapping for metafor-named columns, or ""."""
    pairs = [f"{METAFOR_NAMES[c]}: {c}" for c in unrecognised_columns(sheet) if c in METAFOR_NAMES]
    return f"columns: {{{', '.join(pairs)}}}" if pairs else ""


def select_rows(sheet: pd.DataFrame, where: dict | None) -> pd.DataFrame:
    """Rows matching every ``where`` filter: ``{column: value}`` or ``{column: [values]}``.

    Values are compared as text, so ``{year: 2010}`` matches the cell "2010". An unknown column, or a
    filter that leaves no row, is an error (with the closest column or value) rather than an empty
    selection.
    """
    path = sheet.attrs.get("path", "sheet")
    selected = sheet
    columns = [c for c in sheet.columns if c != LINE]
    for column, wanted in (where or {}).items():
        if column not in sheet.columns:
            hint = did_you_mean(column, columns)
            if not hint:  # no near miss: name the columns one filters by (text, not the numeric inputs)
                text = [c for c in sheet.attrs.get("columns", columns) if c not in NUMERIC]
                hint = f"; its text columns are {', '.join(text[:10])}{', ...' if len(text) > 10 else ''}"
            raise SheetError(
                f"{path}: the filter 'where: {{{column}: ...}}' names a column that the sheet does not have{hint}."
            )
        options = {_as_text(v) for v in (wanted if isinstance(wanted, list) else [wanted])}
        cells = selected[column].map(_as_text)
        if not cells.isin(options).any():
            present = sorted(set(cells))
            hint = "".join(did_you_mean(o, present) for o in sorted(options))
            raise SheetError(
                f"{path}: no row has {column} = {' or '.join(map(repr, sorted(options)))}"
                f"{' among the rows selected so far' if selected is not sheet else ''}{hint}; "
                "check the 'where' values against the sheet."
            )
        selected = selected[cells.isin(options)]
    return selected


_YEAR_SUFFIX = re.compile(r"\s*(\d{4})\s*([a-z])\s*", re.IGNORECASE)


def map_distinct(cells, function) -> np.ndarray:
    """``function(cell)`` for each cell (an object array), computed once per distinct text: a column of 10⁶ rows
    holds a few dozen years or two sample types. A column with cells other than text (numbers, missing cells)
    is read cell by cell, since equal numbers of other types (1, 1.0, True) may print differently."""
    import numpy as np
    import pandas as pd

    cells = pd.Series(cells, dtype=object) if not isinstance(cells, pd.Series) else cells.astype(object)
    if pd.api.types.infer_dtype(cells, skipna=False) != "string":
        return np.array([function(cell) for cell in cells.tolist()] + [None], dtype=object)[:-1]
    codes, distinct = pd.factorize(cells)
    return np.array([function(cell) for cell in distinct.tolist()] + [None], dtype=object)[codes]


def _read_order(cell) -> float:
    text = "" if cell is None else str(cell).strip()
    try:
        return float(text) if text.lower() not in MISSING else math.nan
    except ValueError:
        suffix = _YEAR_SUFFIX.fullmatch(text)
        return int(suffix[1]) + (ord(suffix[2].lower()) - ord("a") + 1) / 100 if suffix else math.nan


def order_key(cells) -> tuple[list[float], list[str]]:
    """A sort key per cell of an ordering column (e.g. ``year``), and the cells that give none.

    Numbers sort as numbers. A year with a letter, as reference lists tell two papers of one year apart
    (``2001a``, ``2001b``), sorts after the plain year and by its letter (2001 < 2001a < 2001b < 2002). Any other
    text, and an empty cell, has no key (NaN: last, as R's ``order()`` puts NA) and is returned, so that the
    caller can say which rows went last."""
    import numpy as np
    import pandas as pd

    cells = pd.Series(cells, dtype=object) if not isinstance(cells, pd.Series) else cells
    keys = map_distinct(cells, _read_order).astype(float)
    unreadable = ["" if cell is None else str(cell).strip() for cell in cells.iloc[np.flatnonzero(np.isnan(keys))]]
    return keys.tolist(), unreadable


def _as_text(value) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def sheet_columns(path, mapping: dict | None = None) -> list[str]:
    """The sheet's column names (after a config ``columns`` mapping), for checks before any rule runs;
    the header's own problems (a missing study_id, a name twice) are raised here already."""
    header, _, _, info = read_table(path)
    header = _apply_mapping(Path(path), header, mapping)
    _header_problems(Path(path), header, info, mapping)
    return header
