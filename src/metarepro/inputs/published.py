"""The sheets of published results a config compares with, read with the extraction sheets' reader
(:func:`metarepro.inputs.sheet.read_table`: encodings, delimiters, a decimal comma with ';', strict quotes), so they
take the same files and give the same messages.

:func:`read_published`: the published pooled results (config ``published``; data/raw/published_meta_analyses.csv),
one row per result (``PUBLISHED_COLUMNS``, plus optional ``unit`` and ``ci_level``), compared by
:mod:`metarepro.pipeline.reproduction`. :func:`read_study_values`: a published meta-analysis's study-level values
(config ``compare_studies``), compared by :mod:`metarepro.pipeline.study_level`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from metarepro.inputs.sheet import DECIMAL_COMMA, MISSING, SheetError, read_table

PUBLISHED_COLUMNS = (
    "id", "source", "doi", "marker", "measure", "estimate", "ci_low", "ci_high", "pval", "k",
    "n_cases", "n_controls", "i2", "model", "software", "note",
)  # fmt: skip
PUBLISHED_NUMERIC = ("estimate", "ci_low", "ci_high", "pval", "k", "n_cases", "n_controls", "i2", "ci_level")
# The study-level sheet's columns, by role; a config's ``compare_studies: columns`` renames any of them.
STUDY_COLUMNS = {"study_id": "study_id", "study": "study", "year": "year", "estimate": "yi", "ci_low": "ci_low",
                   "ci_high": "ci_high", "se": "sei", "n_cases": "n_cases", "n_controls": "n_controls"}  # fmt: skip
STUDY_REQUIRED = ("study", "estimate")
STUDY_NUMERIC = ("estimate", "ci_low", "ci_high", "se", "n_cases", "n_controls")


def read_published(path) -> pd.DataFrame:
    """Read and check a published-results sheet; numbers that are not numbers are errors with the line named.

    Read as the extraction sheets are (:func:`metarepro.inputs.sheet.read_table`: encodings, delimiters, a decimal comma
    with ';', strict quotes), so it takes the same files and gives the same messages."""
    header, cells, lines, info = read_table(path)
    frame = pd.DataFrame(cells, columns=header, dtype=str)
    missing = [c for c in PUBLISHED_COLUMNS if c not in frame.columns]
    if missing:
        shown = ", ".join(header[:8]) + (", ..." if len(header) > 8 else "")
        raise SheetError(
            f"{path}, line {info['header_line']} (header): missing column(s) {', '.join(missing)}. Read with delimiter "
            f"{info['delimiter']!r}, the header has: {shown}. See data/raw/README.md for the published-results sheet."
        )
    if not len(frame):
        raise SheetError(f"{path}: the sheet has a header but no rows; add one row per published result.")
    problems = []
    for column in [c for c in PUBLISHED_NUMERIC if c in frame.columns]:
        text = frame[column].str.strip()
        if info["decimal_comma"]:
            text = text.where(~text.str.fullmatch(DECIMAL_COMMA), text.str.replace(",", ".", regex=False))
        given = ~text.str.lower().isin(MISSING)
        values = pd.to_numeric(text.where(given), errors="coerce")
        for i in np.flatnonzero(values.isna() & given):
            problems.append(
                f"{path}, line {lines[i]} (id {frame['id'][i]}), column '{column}': {frame[column][i]!r} is not a "
                "number; write bounds such as 'p < .00001' in 'note' and leave the cell empty."
            )
        if column in ("estimate", "ci_low", "ci_high", "pval"):
            frame[f"{column}_decimals"] = [_decimals(x) for x in text.where(given, "")]
        frame[column] = values
    duplicated = frame["id"][frame["id"].duplicated()].tolist()
    if duplicated:
        problems.append(f"{path}: id(s) {', '.join(duplicated)} appear more than once; ids must be unique.")
    if problems:
        raise SheetError("\n  ".join([f"{len(problems)} problem(s) in {path}:", *problems]))
    return frame.set_index("id", drop=False)


def _decimals(text):
    """Decimals printed in a number ('0.325' → 3, '1.2e-3' → None: not a plain rounding)."""
    text = str(text).strip()
    if not text or "e" in text.lower():
        return None
    return len(text.split(".")[1]) if "." in text else 0


def read_study_values(path, columns: dict | None = None) -> pd.DataFrame:
    """The published study-level values of ``path``, one row per study, with the columns of :data:`STUDY_COLUMNS`
    (renamed by ``columns``: ``{role: column in the sheet}``) and ``line`` (line number in the file). Read with the
    extraction sheets' reader; a missing column, a cell that is not a number or a repeated study_id is a SheetError
    naming the file, line and column."""
    names = {**STUDY_COLUMNS, **(columns or {})}
    header, cells, lines, info = read_table(path)
    raw = pd.DataFrame(cells, columns=header, dtype=str)
    missing = [f"'{names[role]}' ({role})" for role in STUDY_REQUIRED if names[role] not in raw.columns]
    missing += [f"'{names[role]}' ({role}, named in the config)" for role in (columns or {})
                if role not in STUDY_REQUIRED and names[role] not in raw.columns]  # fmt: skip
    if missing:
        raise SheetError(f"{path}, line {info['header_line']} (header): no column {', '.join(missing)}; the header "
                         f"has {', '.join(header[:10])}. Name the columns in compare_studies: columns "
                         "(config/README.md).")
    if not len(raw):
        raise SheetError(f"{path}: the sheet has a header but no rows; add one row per published study.")
    out = pd.DataFrame({"line": lines})
    problems = []
    for role in ("study_id", "study", "year"):
        given = names[role] in raw.columns
        out[role] = raw[names[role]].str.strip().where(~raw[names[role]].str.strip().str.lower().isin(MISSING), "") \
            if given else ""  # fmt: skip
    for role in STUDY_NUMERIC:
        if names[role] not in raw.columns:
            out[role] = np.nan
            continue
        text = raw[names[role]].str.strip()
        if info["decimal_comma"]:
            text = text.str.replace(",", ".", regex=False)
        given = ~text.str.lower().isin(MISSING)
        values = pd.to_numeric(text.where(given), errors="coerce")
        for i in np.flatnonzero(values.isna() & given):
            problems.append(f"{path}, line {lines[i]}, column '{names[role]}' ({role}): {raw[names[role]][i]!r} is not "
                            "a number; write a plain number, or leave the cell empty.")  # fmt: skip
        out[role] = values
    ids = out["study_id"][out["study_id"] != ""]
    for sid in sorted(set(ids[ids.duplicated()])):
        shown = ", ".join(str(line) for line in out["line"][out["study_id"] == sid])
        problems.append(f"{path}, lines {shown}, column '{names['study_id']}': study_id {sid!r} appears more than "
                        "once; each published study needs its own id.")  # fmt: skip
    for i in np.flatnonzero(out["study"].eq("") & out["study_id"].eq("")):
        problems.append(f"{path}, line {lines[i]}, column '{names['study']}': the study has neither a label nor a "
                        "study_id, so it cannot be matched; fill one.")  # fmt: skip
    if problems:
        raise SheetError("\n  ".join([f"{len(problems)} problem(s) in {path}:", *problems]))
    return out
