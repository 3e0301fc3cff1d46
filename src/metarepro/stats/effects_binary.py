"""Effect sizes from counts, as metafor 3.8-1's ``escalc()`` computes them: 2×2 tables and single proportions.

Every function is a pure function of arrays (one element per study) and returns ``(yi, vi)``. Group 1 is the
treated (or exposed) group, so a log odds ratio below 0 means fewer events under treatment.

2×2 tables (``ai`` events and ``bi`` non-events in group 1, ``ci`` and ``di`` in group 2; or events and totals
per group, ``ai, n1i, ci, n2i``):

* ``OR``   log odds ratio, variance 1/a + 1/b + 1/c + 1/d.
* ``RR``   log risk ratio, variance 1/a − 1/n1 + 1/c − 1/n2.
* ``RD``   risk difference p1 − p2, variance p1(1−p1)/n1 + p2(1−p2)/n2 (``vtype="LS"``; ``"UB"`` divides by
  n − 1, ``"AV"`` uses the sample-size weighted mean proportion of each group over the studies).
* ``PETO`` Peto's log odds ratio (O − E)/V, variance 1/V, V the hypergeometric variance of ``ai``.

Single proportions (``xi`` events of ``ni``, or ``xi`` and ``mi`` non-events):

* ``PR``  raw proportion, variance p(1−p)/n (``vtype`` ``"LS"``, ``"UB"``, ``"AV"`` as for RD).
* ``PLN`` log proportion, variance 1/x − 1/n; ``PLO`` logit, variance 1/x + 1/(n−x) (``vtype`` ``"LS"``, ``"AV"``).
* ``PAS`` arcsine square root, variance 1/(4n); ``PFT`` Freeman–Tukey double arcsine, variance 1/(4n + 2).
  Pooled PFT values are back-transformed with the harmonic mean of the ni (:func:`transf_ipft_hm`, metafor's
  ``transf.ipft.hm``).

Zero cells, as metafor (defaults ``add=1/2``, ``to="only0"``, ``drop00=False``): ``to`` says where ``add`` is
added to every cell of a table: ``"only0"`` in the tables with a zero cell, ``"all"`` in every table,
``"if0all"`` in every table if any has a zero cell, ``"none"`` nowhere. ``drop00=True`` leaves out (NaN) the
tables with no events, or only events, in both groups. For ``PAS`` and ``PFT`` the default ``add`` is 0 (metafor
3.8-1: these transformations need no correction). ``PETO`` is computed from the corrected cells, as metafor's
escalc does; ``rma_peto`` pools the uncorrected ones.

As metafor, a ±Inf yi or vi (e.g. an OR with ``to="none"`` and a zero cell, PETO for a table without events)
becomes NaN with a warning; NaN counts give NaN. Unlike metafor, counts must be whole numbers: a count such as
12.5 is refused (a typing error far more often than a deliberate weighted count).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from metarepro._core.spellings import BINARY_MEASURES, PROPORTION_MEASURES, TABLE_MEASURES  # noqa: F401

ZERO_CELL_RULES = ("all", "only0", "if0all", "none")
NO_CORRECTION = ("PAS", "PFT")  # metafor's default add = 0 for these
VTYPES = {"RD": ("LS", "UB", "AV"), "PR": ("LS", "UB", "AV"), "PLN": ("LS", "AV"), "PLO": ("LS", "AV")}
INFINITE = "Some 'yi' and/or 'vi' values equal to +-Inf. Recoded to NAs."  # metafor's words


def _counts(name, x) -> np.ndarray:
    """``x`` as a float array of counts: finite values must be whole and ≥ 0 (NaN stays NaN)."""
    x = np.atleast_1d(np.asarray(x, dtype=float))
    for bad, what in ((~np.isfinite(x) & ~np.isnan(x), "is infinite"), (x < 0, "is negative"),
                      (np.isfinite(x) & (x != np.round(x)), "is not a whole number")):  # fmt: skip
        with np.errstate(invalid="ignore"):
            where = np.flatnonzero(bad)
        if where.size:
            i = where[0]
            more = f" (and {where.size - 1} more)" if where.size > 1 else ""
            raise ValueError(f"{name}[{i}] = {x[i]:g} {what}{more}: {name} is a count of participants, a whole "
                             "number ≥ 0; correct the value or leave the study out")  # fmt: skip
    return x


def _events_within(events, events_name, total, total_name):
    with np.errstate(invalid="ignore"):
        where = np.flatnonzero(events > total)
    if where.size:
        i = where[0]
        raise ValueError(f"{events_name}[{i}] = {events[i]:g} events is more than {total_name}[{i}] = {total[i]:g} "
                         f"participants: {events_name} counts events, {total_name} the group's size")  # fmt: skip


def _complement(events, events_name, rest, rest_name, total, total_name):
    """The non-events: ``rest`` if given (checked against ``total`` when both are), else ``total − events``."""
    if rest is None and total is None:
        raise ValueError(f"give {rest_name} (non-events) or {total_name} (group size) with {events_name}")
    if total is not None:
        total = _counts(total_name, total)
        _events_within(events, events_name, total, total_name)
    if rest is None:
        return total - events
    rest = _counts(rest_name, rest)
    if total is not None:
        with np.errstate(invalid="ignore"):
            where = np.flatnonzero(np.isfinite(events + rest + total) & (events + rest != total))
        if where.size:
            i = where[0]
            raise ValueError(f"{total_name}[{i}] = {total[i]:g} is not {events_name} + {rest_name} = "
                             f"{events[i] + rest[i]:g}: give either {rest_name} or {total_name}")  # fmt: skip
    return rest


def tables(ai, bi=None, ci=None, di=None, n1i=None, n2i=None):
    """The four cells (ai, bi, ci, di) of each study's 2×2 table, checked; from ``bi``/``di`` or the group sizes."""
    ai, ci = _counts("ai", ai), _counts("ci", ci)
    bi = _complement(ai, "ai", bi, "bi", n1i, "n1i")
    di = _complement(ci, "ci", di, "di", n2i, "n2i")
    return np.broadcast_arrays(ai, bi, ci, di)


def _check_rule(to, add):
    if to not in ZERO_CELL_RULES:
        raise ValueError(f"to must be one of {', '.join(ZERO_CELL_RULES)} (metafor), not {to!r}")
    if not np.isfinite(add) or add < 0:
        raise ValueError(f"add is the number added to zero cells, ≥ 0 (metafor's default 1/2), not {add!r}")


def add_to_cells(cells, add=0.5, to="only0"):
    """metafor's zero-cell correction: ``add`` added to every cell of the tables ``to`` selects (see the module
    docstring). ``cells``: a tuple of arrays, one per cell; returns the corrected tuple."""
    _check_rule(to, add)
    with np.errstate(invalid="ignore"):
        zero = np.any([c == 0 for c in cells], axis=0)  # NaN compares False, as metafor's id0[is.na(id0)] <- FALSE
    if to == "all" or (to == "if0all" and zero.any()):
        chosen = np.ones_like(zero)
    elif to == "only0":
        chosen = zero
    else:
        chosen = np.zeros_like(zero)
    return tuple(np.where(chosen, c + add, c) for c in cells)


def double_zero(ai, bi, ci, di):
    """Tables with no events, or only events, in both groups (metafor's ``drop00``)."""
    with np.errstate(invalid="ignore"):
        return ((ai == 0) & (ci == 0)) | ((bi == 0) & (di == 0))


def _wmean(p, n):
    """metafor's ``.wmean(p, n, na.rm=TRUE)``: the n-weighted mean of the p that are not NaN."""
    keep = ~(np.isnan(p) | np.isnan(n))
    return np.sum(p[keep] * n[keep]) / np.sum(n[keep])


def _finish(yi, vi):
    """metafor's end of escalc: ±Inf → NaN with a warning, NaN in either → both NaN, negative vi → NaN."""
    infinite = np.isinf(yi) | np.isinf(vi)
    if infinite.any():
        warnings.warn(INFINITE, stacklevel=3)
    missing = infinite | np.isnan(yi) | np.isnan(vi)
    yi, vi = np.where(missing, np.nan, yi), np.where(missing, np.nan, vi)
    with np.errstate(invalid="ignore"):
        return yi, np.where(vi < 0, np.nan, vi)


def _check_vtype(measure, vtype):
    allowed = VTYPES.get(measure, ("LS",))
    if vtype not in allowed:
        raise ValueError(f"vtype for {measure} must be one of {', '.join(allowed)} (metafor), not {vtype!r}")


def two_by_two(measure, ai, bi=None, ci=None, di=None, n1i=None, n2i=None, add=0.5, to="only0", drop00=False,
               vtype="LS"):  # fmt: skip
    """``yi, vi`` of ``measure`` (OR, RR, RD, PETO) from 2×2 tables, metafor's ``escalc`` (defaults as metafor's)."""
    if measure not in TABLE_MEASURES:
        raise ValueError(f"measure must be one of {', '.join(TABLE_MEASURES)} for a 2x2 table, not {measure!r}")
    _check_vtype(measure, vtype)
    _check_rule(to, add)
    ai, bi, ci, di = tables(ai, bi, ci, di, n1i, n2i)
    if drop00:
        dropped = double_zero(ai, bi, ci, di)
        ai, bi, ci, di = (np.where(dropped, np.nan, c) for c in (ai, bi, ci, di))
    ai, bi, ci, di = add_to_cells((ai, bi, ci, di), add, to)
    n1i, n2i = ai + bi, ci + di
    with np.errstate(divide="ignore", invalid="ignore"):
        p1i, p2i = ai / n1i, ci / n2i
        if measure == "OR":
            yi, vi = np.log(p1i / (1 - p1i)) - np.log(p2i / (1 - p2i)), 1 / ai + 1 / bi + 1 / ci + 1 / di
        elif measure == "RR":
            yi, vi = np.log(p1i) - np.log(p2i), 1 / ai - 1 / n1i + 1 / ci - 1 / n2i
        elif measure == "RD":
            yi = p1i - p2i
            if vtype == "AV":
                p1i, p2i = _wmean(p1i, n1i), _wmean(p2i, n2i)
            shrink = 1 if vtype == "UB" else 0
            vi = p1i * (1 - p1i) / (n1i - shrink) + p2i * (1 - p2i) / (n2i - shrink)
        else:  # PETO: (O − E)/V with V the hypergeometric variance; V = 0 without events (or non-events)
            ni = n1i + n2i
            xt, yt = ai + ci, bi + di
            v = xt * yt * (n1i / ni) * (n2i / ni) / (ni - 1)
            yi, vi = (ai - xt * n1i / ni) / v, 1 / v
    return _finish(yi, vi)


def proportion(measure, xi, ni=None, mi=None, add=None, to="only0", vtype="LS"):
    """``yi, vi`` of ``measure`` (PR, PLN, PLO, PAS, PFT) from ``xi`` events of ``ni`` (or ``mi`` non-events),
    metafor's ``escalc``; ``add=None`` is metafor's default, 1/2 (0 for PAS and PFT)."""
    if measure not in PROPORTION_MEASURES:
        raise ValueError(f"measure must be one of {', '.join(PROPORTION_MEASURES)} for proportions, not {measure!r}")
    _check_vtype(measure, vtype)
    add = (0.0 if measure in NO_CORRECTION else 0.5) if add is None else add
    xi = _counts("xi", xi)
    mi = _complement(xi, "xi", mi, "mi", ni, "ni")
    xi, mi = np.broadcast_arrays(xi, mi)
    with np.errstate(invalid="ignore"):
        where = np.flatnonzero(xi + mi <= 0)
    if where.size:
        raise ValueError(f"ni[{where[0]}] = 0: a proportion needs at least one participant; leave the study out")
    xi, mi = add_to_cells((xi, mi), add, to)
    ni = xi + mi
    with np.errstate(divide="ignore", invalid="ignore"):
        pri = xi / ni
        if measure in ("PR", "PLN", "PLO") and vtype == "AV":  # the variance at the mean proportion
            p = _wmean(pri, ni)
            vi = {"PR": p * (1 - p) / ni, "PLN": 1 / (p * ni) - 1 / ni, "PLO": 1 / (p * ni) + 1 / ((1 - p) * ni)}
        else:
            vi = {"PR": pri * (1 - pri) / (ni - (1 if vtype == "UB" else 0)), "PLN": 1 / xi - 1 / ni,
                  "PLO": 1 / xi + 1 / mi}  # fmt: skip
        if measure in ("PR", "PLN", "PLO"):
            yi, vi = {"PR": pri, "PLN": np.log(pri), "PLO": np.log(pri / (1 - pri))}[measure], vi[measure]
        elif measure == "PAS":
            yi, vi = np.arcsin(np.sqrt(pri)), 1 / (4 * ni)
        else:
            yi, vi = _freeman_tukey(xi, ni), 1 / (4 * ni + 2)
    return _finish(yi, vi)


def _freeman_tukey(x, n):
    return 0.5 * (np.arcsin(np.sqrt(x / (n + 1))) + np.arcsin(np.sqrt((x + 1) / (n + 1))))


def transf_pft(p, ni):
    """metafor's ``transf.pft``: the Freeman–Tukey double arcsine of a proportion p of n,
    ½(asin √(x/(n+1)) + asin √((x+1)/(n+1))) with x = p·n."""
    p, ni = np.asarray(p, dtype=float), np.asarray(ni, dtype=float)
    return _freeman_tukey(p * ni, ni)


def transf_ipft(x, ni):
    """metafor's ``transf.ipft``: the proportion whose Freeman–Tukey value (with n = ``ni``) is x; 0 below the
    value of p = 0 and 1 above that of p = 1 (Miller 1978)."""
    x, ni = np.asarray(x, dtype=float), np.asarray(ni, dtype=float)
    s = np.sin(2 * x)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = 0.5 * (1 - np.sign(np.cos(2 * x)) * np.sqrt(1 - (s + (s - 1 / s) / ni) ** 2))
        p = np.where(x > transf_pft(1.0, ni), 1.0, p)
        return np.where(x < transf_pft(0.0, ni), 0.0, p)


def transf_ipft_hm(x, ni):
    """metafor's ``transf.ipft.hm``: :func:`transf_ipft` with n the harmonic mean of the studies' ``ni`` (NaN
    ignored), for a pooled Freeman–Tukey value and its CI (Miller 1978)."""
    ni = np.asarray(ni, dtype=float)
    return transf_ipft(x, 1 / np.mean(1 / ni[~np.isnan(ni)]))


def transf_iarcsin(x):
    """metafor's ``transf.iarcsin``: sin²(x), 0 below 0 and 1 above π/2 (a proportion from ``PAS``)."""
    x = np.asarray(x, dtype=float)
    return np.where(x < 0, 0.0, np.where(x > np.arcsin(1.0), 1.0, np.sin(x) ** 2))


def pair(value, second, name):
    """metafor's two-element ``add``/``to``/``drop00`` of ``rma.mh``/``rma.peto``: a single value is the first (for
    the studies' yi, vi), ``second`` the default of the other (for the pooled tables)."""
    if isinstance(value, tuple | list):
        if len(value) != 2:
            raise ValueError(f"{name} is one value or two (for the studies' yi and vi, then for pooling), "
                             f"not {value!r}")  # fmt: skip
        return tuple(value)
    return value, second


@dataclass(frozen=True)
class PooledTables:
    """The tables an ``rma_mh``/``rma_peto`` fit pools and the study effects its Q uses.

    ``ai, bi, ci, di``: the k tables without missing cells (after ``drop00[1]`` and the ``add[1]``/``to[1]``
    correction); ``used``: which of the input tables they are; ``yi_f, vi_f``: every input study's effect (NaN
    where not computable, after ``add[0]``, ``to[0]``, ``drop00[0]``); ``warnings``: metafor's messages.
    """

    ai: np.ndarray
    bi: np.ndarray
    ci: np.ndarray
    di: np.ndarray
    used: np.ndarray
    yi_f: np.ndarray
    vi_f: np.ndarray
    warnings: tuple
    add: tuple
    to: tuple
    drop00: tuple

    @property
    def yi(self):
        return self.yi_f[np.isfinite(self.yi_f)]

    @property
    def vi(self):
        return self.vi_f[np.isfinite(self.yi_f)]


def pooled_tables(measure, ai, bi, ci, di, n1i, n2i, add, to, drop00) -> PooledTables:
    """The preparation ``rma.mh`` and ``rma.peto`` share (metafor 3.8-1): the studies' yi, vi by ``escalc`` with the
    first of ``add``/``to``/``drop00`` (see :func:`pair`); then the tables without missing cells, corrected by the
    second ones."""
    add, to, drop00 = pair(add, 0.0, "add"), pair(to, "none", "to"), pair(drop00, False, "drop00")
    ai, bi, ci, di = tables(ai, bi, ci, di, n1i, n2i)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a ±Inf becomes NaN: reported below as metafor's rma.mh reports it
        yi_f, vi_f = two_by_two(measure, ai, bi, ci, di, add=add[0], to=to[0], drop00=drop00[0])
    if drop00[1]:
        dropped = double_zero(ai, bi, ci, di)
        ai, bi, ci, di = (np.where(dropped, np.nan, c) for c in (ai, bi, ci, di))
    used = ~np.isnan(ai + bi + ci + di)
    messages = []
    if not used.all():
        messages.append("Tables with NAs omitted from model fitting.")
    if not used.any():
        raise ValueError("no table without missing cells: nothing to pool (metafor: 'Processing terminated since "
                         "k = 0')")  # fmt: skip
    if np.isnan(yi_f).any():
        messages.append("Some yi/vi values are NA.")
    cells = add_to_cells(tuple(c[used] for c in (ai, bi, ci, di)), add[1], to[1])
    for message in messages:
        warnings.warn(message, stacklevel=3)
    return PooledTables(*cells, used, yi_f, vi_f, tuple(messages), add, to, drop00)
