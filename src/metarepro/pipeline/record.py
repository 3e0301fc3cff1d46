"""The primary fit of one analysis as a typed record: the contract of ``pooled.json`` between the analysis job that
writes it and the figures, the summary table, the reproduction table and the report that read it.

:class:`PooledRecord` names every field (metafor's names: ``estimate``, ``se``, ``zval``, ``tau2``, ``i2``, ``q``, ...)
in the order ``pooled.json`` holds them; :meth:`PooledRecord.to_dict` is what is written (byte for byte the JSON of
the untyped dict it replaces) and :meth:`PooledRecord.from_dict` what is read. A field that a record does not have
is :data:`ABSENT` (not written at all), unlike None (written as ``null``): e.g. ``df`` only in an rma.mv fit's record,
the back-transformed ``*_ratio`` only for ROM and ``*_r`` only for ZCOR, ``dependence`` only in a dependent analysis,
the row counts only at the top level, ``excluded_lines`` only in ``without_flagged``. For code written against the
dict, a record is also a read-only mapping of its written fields (``record["k"]``, ``record.get("df")``, ``**record``).

Plain Python (no numpy, pandas or scipy): the report job reads records without the statistics.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields


class _Absent:
    """A field a record does not have (not written to pooled.json), unlike None (written as null)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "ABSENT"

    def __bool__(self) -> bool:
        return False


ABSENT = _Absent()
BACK_TRANSFORMED = ("estimate", "ci_low", "ci_high", "pi_low", "pi_high")


@dataclass(kw_only=True, repr=False)
class PooledRecord(Mapping):
    """One analysis's primary fit (``pooled.json``), or a refit of it (``without_flagged``, a row of
    ``estimators.csv``). Fields in the order written; every field but ``k`` may be :data:`ABSENT` (see the module).

    Settings: ``measure``, ``preset``, ``vtype`` (SMD only, else None), ``unit`` (MD only, else None), ``method``,
    ``test``, ``level``. The fit (metafor ``print.rma``): ``k``, ``estimate``, ``se``, ``zval`` (z, or t under
    Knapp-Hartung), ``pval``, ``ci_low``/``ci_high``, ``df`` (rma.mv's t test; None for its z test), ``tau2`` with
    ``tau2_se`` and its Q-profile CI, ``tau``, ``i2`` (percent) with its CI, ``h2``, ``q``/``q_df``/``q_p`` (Cochran's
    Q), ``pi_low``/``pi_high`` (prediction interval), ``converged``, ``iterations``, ``tau2_ci_low_capped``/
    ``tau2_ci_high_capped`` (a bound not found below the search limit), ``warnings``; ``*_ratio`` (ROM) or ``*_r``
    (ZCOR) or ``*_prop`` (PLN, PLO, PAS, PFT: the proportion) back-transformed; ``fit`` (how counts were pooled:
    rma, rma.mh, rma.peto, rma.glmm (model)) and ``zero_cells`` (add, to, drop00 as used) for binary outcomes;
    ``printed``: an rma.mh / rma.peto fit as metafor's print.rma.mh / print.rma.peto (the report's Fit block).
    ``dependence``: the dependent model's record (rma.mv or aggregate; a dict, as
    :func:`metarepro.jobs.dependence.fit_dependent` makes it). The analysis: ``k_input`` (rows selected),
    ``k_excluded``, ``n_cases``/``n_controls`` (participants pooled; NaN when a row gives no group sizes),
    ``study_years`` (sorted, None for no year), ``without_flagged`` (the refit without the rows a quality rule flagged,
    a :class:`PooledRecord` with ``excluded_lines``; only ``k = 0`` and the lines when every row is flagged),
    ``sheet_sha256`` (of the bytes the job read). Above :data:`metarepro._core.limits.RECORD_LIST_MAX_K` studies the
    per-study lists give way to their summaries: ``study_year_counts`` ([year, count] pairs, ascending, [None,
    count] last) for ``study_years``, ``k_flagged`` (how many lines) for ``excluded_lines``; effects.csv lists them.
    """

    k: int
    measure: str | None = ABSENT
    preset: str | None = ABSENT
    vtype: str | None = ABSENT
    unit: str | None = ABSENT
    method: str = ABSENT
    test: str = ABSENT
    level: float = ABSENT
    estimate: float = ABSENT
    se: float = ABSENT
    zval: float = ABSENT
    pval: float = ABSENT
    ci_low: float = ABSENT
    ci_high: float = ABSENT
    df: float | None = ABSENT
    tau2: float | None = ABSENT
    tau2_se: float | None = ABSENT
    tau2_ci_low: float | None = ABSENT
    tau2_ci_high: float | None = ABSENT
    tau: float | None = ABSENT
    i2: float | None = ABSENT
    i2_ci_low: float | None = ABSENT
    i2_ci_high: float | None = ABSENT
    h2: float | None = ABSENT
    q: float | None = ABSENT
    q_df: float | None = ABSENT
    q_p: float | None = ABSENT
    pi_low: float | None = ABSENT
    pi_high: float | None = ABSENT
    converged: bool = ABSENT
    iterations: int = ABSENT
    tau2_ci_low_capped: bool = ABSENT
    tau2_ci_high_capped: bool = ABSENT
    warnings: list[str] = ABSENT
    estimate_ratio: float = ABSENT
    ci_low_ratio: float = ABSENT
    ci_high_ratio: float = ABSENT
    pi_low_ratio: float = ABSENT
    pi_high_ratio: float = ABSENT
    estimate_r: float = ABSENT
    ci_low_r: float = ABSENT
    ci_high_r: float = ABSENT
    pi_low_r: float = ABSENT
    pi_high_r: float = ABSENT
    estimate_prop: float = ABSENT
    ci_low_prop: float = ABSENT
    ci_high_prop: float = ABSENT
    pi_low_prop: float = ABSENT
    pi_high_prop: float = ABSENT
    fit: str = ABSENT
    zero_cells: dict = ABSENT
    printed: str = ABSENT
    dependence: dict = ABSENT
    k_input: int = ABSENT
    k_excluded: int = ABSENT
    n_cases: float | None = ABSENT
    n_controls: float | None = ABSENT
    study_years: list[int | None] = ABSENT
    study_year_counts: list[list] = ABSENT
    without_flagged: PooledRecord = ABSENT
    excluded_lines: list[int] = ABSENT
    k_flagged: int = ABSENT
    sheet_sha256: str = ABSENT

    @classmethod
    def from_dict(cls, record: Mapping) -> PooledRecord:
        """A record from pooled.json's dict (as :func:`metarepro.jobs.files.read_json` returns it, or as
        :func:`metarepro.pipeline.analysis.pooled_record` makes it); a key that is no field is a TypeError."""
        values = dict(record)
        if isinstance(values.get("without_flagged"), Mapping):
            values["without_flagged"] = cls.from_dict(values["without_flagged"])
        return cls(**values)

    def to_dict(self) -> dict:
        """The fields written to pooled.json, in order (nested records as dicts); values as held (NaN stays NaN:
        :func:`metarepro.jobs.files.write_json` writes it as null)."""
        out = {}
        for name in _NAMES:
            value = getattr(self, name)
            if value is not ABSENT:
                out[name] = value.to_dict() if isinstance(value, PooledRecord) else value
        return out

    # a read-only mapping of the written fields, for code written against pooled.json's dict
    def __getitem__(self, name: str):
        value = getattr(self, name) if name in _FIELDS else ABSENT
        if value is ABSENT:
            raise KeyError(name)
        return value

    def __iter__(self):
        return (name for name in _NAMES if getattr(self, name) is not ABSENT)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __repr__(self) -> str:
        return f"PooledRecord({', '.join(f'{name}={self[name]!r}' for name in self)})"

    __hash__ = None  # mutable, compared by value (the dataclass __eq__)


_NAMES = tuple(f.name for f in fields(PooledRecord))
_FIELDS = frozenset(_NAMES)
