"""Binary outcomes in one configured analysis: counts → effect sizes with every row accounted for, the pooled fit by
the function the config names (``fit``: ``rma``, ``rma.mh``, ``rma.peto``, ``rma.glmm``), and metafor's
``leave1out``/``cumul`` of Mantel–Haenszel and Peto fits (each subset refitted by the same method).

Sheet columns (config ``columns`` maps a sheet's own names, e.g. metafor's ``ai, n1i, ci, n2i``): a 2×2 table is
``events_cases`` with ``nonevents_cases`` or ``n_cases`` and the same for ``controls`` (metafor's ai, bi / n1i, ci,
di / n2i; "cases" is group 1, the treated or exposed group); a proportion is ``events`` of ``n`` (xi, ni). Negative and
non-whole counts stop the run when the sheet is read (:mod:`metarepro.inputs.sheet`). A row is excluded, with the
reason the report shows, when its events exceed its group size (or events + non-events differ from the size given),
when a group (or the sample) is empty, and — only with ``drop00`` — when neither group (or both groups entirely) had
the event. A proportion of 0 or 1 is kept: metafor's ``add``/``to`` (default 1/2 to the cells of that row only)
gives it a finite yi and vi; with ``to: none`` its PLN/PLO yi is infinite and the row is excluded, saying so.
Effect sizes come from :mod:`metarepro.stats.effects_binary` (metafor's ``escalc``), computed over the rows that
have usable counts (so ``to: if0all`` and ``vtype: AV`` look at those rows only).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from metarepro._core import dist
from metarepro.stats import effects_binary as eb
from metarepro.stats.influence import FitTable

TABLE_COLUMNS = ("events_cases", "n_cases", "events_controls", "n_controls")
PROPORTION_COLUMNS = ("events", "n")
NO_ESTIMATE = "no study estimate (no events, or only events, in both groups: drop00), but its table is pooled"


def _col(rows, name):
    return rows[name].to_numpy(dtype=float) if name in rows else np.full(len(rows), np.nan)


def _first(value):
    return value[0] if isinstance(value, tuple) else value


def _vtype(settings):
    return settings.vtype if settings.vtype in eb.VTYPES.get(settings.measure, ("LS",)) else "LS"


def count_cells(rows) -> dict:
    """The counts a row gives, group sizes completed from events + non-events where only those are given:
    ``{"events_cases", "n_cases", "events_controls", "n_controls", "events", "n"}`` as float arrays."""
    out = {}
    for group in ("cases", "controls"):
        events, rest, total = (_col(rows, f"{kind}_{group}") for kind in ("events", "nonevents", "n"))
        out[f"events_{group}"], out[f"n_{group}"] = events, np.where(np.isfinite(total), total, events + rest)
        out[f"nonevents_{group}"] = rest
    out["events"], out["n"] = _col(rows, "events"), _col(rows, "n")
    return out


def _problems(cells, measure) -> np.ndarray:
    """Per row, why its counts cannot be true or used ("" when they can)."""
    groups = ("cases", "controls") if measure in eb.TABLE_MEASURES else ("",)
    found = [[] for _ in range(cells["events"].size)]
    for group in groups:
        events, total = (f"events_{group}", f"n_{group}") if group else ("events", "n")
        rest = f"nonevents_{group}" if group else None
        e, n = cells[events], cells[total]
        with np.errstate(invalid="ignore"):
            for i in np.flatnonzero(e > n):
                found[i].append(f"{events} {e[i]:g} > {total} {n[i]:g}: more events than participants")
            if rest:
                r = cells[rest]
                for i in np.flatnonzero(np.isfinite(r) & np.isfinite(e) & (np.abs(e + r - n) > 0)):
                    found[i].append(f"{events} {e[i]:g} + {rest} {r[i]:g} ≠ {total} {n[i]:g}")
            for i in np.flatnonzero(n == 0):
                found[i].append(f"{total} is 0: an empty {'group' if group else 'sample'} has no proportion")
    return np.array(["; ".join(f) for f in found], dtype=object)


def count_form(rows, settings, acc) -> None:
    """Effect sizes of a counts measure into ``acc`` (:class:`metarepro.pipeline.analysis._Rows`): yi, vi by
    metafor's escalc with the fit's first ``add``/``to``/``drop00`` (:meth:`Settings.zero_cells`)."""
    measure = "PETO" if settings.fit == "rma.peto" else settings.measure
    cells = count_cells(rows)
    needed = TABLE_COLUMNS if measure in eb.TABLE_MEASURES else PROPORTION_COLUMNS
    have = np.all([np.isfinite(cells[c]) for c in needed], axis=0)
    problems = _problems(cells, measure)
    bad = have & (problems != "")
    usable = have & ~bad
    zero = settings.zero_cells()
    add, to, drop00 = (_first(zero[k]) for k in ("add", "to", "drop00"))
    yi, vi = np.full(len(rows), np.nan), np.full(len(rows), np.nan)
    idx = np.flatnonzero(usable)
    if idx.size:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ±Inf → NaN: each such row gets its reason below
            if measure in eb.TABLE_MEASURES:
                a, n1, c, n2 = (cells[k][idx] for k in TABLE_COLUMNS)
                yi[idx], vi[idx] = eb.two_by_two(measure, a, ci=c, n1i=n1, n2i=n2, add=add, to=to, drop00=drop00,
                                                 vtype=_vtype(settings))  # fmt: skip
            else:
                yi[idx], vi[idx] = eb.proportion(measure, cells["events"][idx], ni=cells["n"][idx], add=add, to=to,
                                                 vtype=_vtype(settings))  # fmt: skip
    reason = np.full(len(rows), "", dtype=object)
    reason[bad] = [f"contradictory numbers ({p}): check the source and the cells" for p in problems[bad]]
    missing = usable & ~(np.isfinite(yi) & np.isfinite(vi))
    double = np.zeros(len(rows), dtype=bool)
    if measure in eb.TABLE_MEASURES:
        a, n1, c, n2 = (cells[k] for k in TABLE_COLUMNS)
        double = usable & eb.double_zero(a, n1 - a, c, n2 - c)
    pooled_anyway = missing & double & (settings.fit in ("rma.mh", "rma.peto"))
    reason[missing & double & ~pooled_anyway] = (
        "no events (or only events) in both groups: left out (drop00 true; metafor's default for rma.glmm)")
    rest = missing & ~double
    reason[rest] = (f"{measure} is not finite for these counts (a zero cell or a proportion of 0 or 1 with to: "
                    f"{to}, add: {add:g}); use metafor's default zero-cell correction (to: only0, add: 0.5)")
    acc.take(have, yi, vi, "counts", "", reason)
    acc.no_estimate = pooled_anyway  # read by compute_effects: included, pooled by its table, no yi of its own


def count_columns(rows, settings) -> dict:
    """The count columns an effects table of a counts measure carries (events and group sizes), for the forest
    plot's columns and the MH/Peto/GLMM refits."""
    cells = count_cells(rows)
    names = TABLE_COLUMNS if settings.measure in eb.TABLE_MEASURES else PROPORTION_COLUMNS
    return {name: cells[name] for name in names}


# ------------------------------------------------------------------------------------------------- pooled fits
@dataclass
class CountsFit:
    """The pooled fit of a counts analysis by ``rma.mh``, ``rma.peto`` or ``rma.glmm`` in the fields ``pooled.json``
    holds (those of :meth:`metarepro.stats.rma.RmaResult.to_dict`); ``result`` is the metafor-named fit
    (:class:`~metarepro.stats.mh.RmaMhResult`, ...), ``weights`` one per included row (percent; NaN for GLMMs,
    whose weights metafor 3.8-1 does not define, and for a table pooled without an estimate of its own).
    ``to_dict`` adds ``printed``: an rma.mh or rma.peto fit as metafor's print.rma.mh / print.rma.peto prints it
    (the library's own print, :mod:`metarepro._core.printing`, checked against R's output), for the report."""

    fit: str
    result: object
    fields: dict
    weights: np.ndarray

    @property
    def estimate(self):
        return self.fields["estimate"]

    def to_dict(self) -> dict:
        printed = {"printed": str(self.result)} if self.fit in ("rma.mh", "rma.peto") else {}
        return dict(self.fields) | printed


def _tables(effects):
    a, n1, c, n2 = (effects[k].to_numpy(dtype=float) for k in TABLE_COLUMNS)
    return {"ai": a, "bi": n1 - a, "ci": c, "di": n2 - c}


def _tables_fit(fit, effects, settings):
    from metarepro.stats.mh import rma_mh
    from metarepro.stats.peto import rma_peto

    zero = settings.zero_cells()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if fit == "rma.mh":
            return rma_mh(**_tables(effects), measure=settings.measure, level=settings.level, **zero), caught
        return rma_peto(**_tables(effects), level=settings.level, **zero), caught


def fit_counts(effects: pd.DataFrame, settings) -> CountsFit:
    """Pool the included rows of ``effects`` (with their count columns) by ``settings.fit``."""
    used = effects[effects["included"].to_numpy(dtype=bool)]
    level = settings.level
    if settings.fit in ("rma.mh", "rma.peto"):
        res, caught = _tables_fit(settings.fit, used, settings)
        crit = dist.norm_isf((1 - level / 100) / 2)
        fields = {"method": "EE", "test": "z", "level": level, "k": res.k, "estimate": res.beta, "se": res.se,
                  "zval": res.zval, "pval": res.pval, "ci_low": res.ci_lb, "ci_high": res.ci_ub, "tau2": 0.0,
                  "tau2_se": None, "tau2_ci_low": None, "tau2_ci_high": None, "tau": 0.0, "i2": res.I2,
                  "i2_ci_low": None, "i2_ci_high": None, "h2": res.H2, "q": res.QE, "q_df": res.k_yi - 1,
                  "q_p": res.QEp, "pi_low": res.beta - crit * res.se, "pi_high": res.beta + crit * res.se,
                  "converged": True, "iterations": None, "tau2_ci_low_capped": False, "tau2_ci_high_capped": False,
                  "warnings": _reader_warnings(caught, used)}  # fmt: skip
        return CountsFit(settings.fit, res, _plain(fields), np.asarray(res.weights, dtype=float))
    return _glmm_fit(used, settings)


def _reader_warnings(caught, used) -> list[str]:
    """metafor's warnings of an MH/Peto fit, in the reader's words where the row account already says why."""
    out = []
    for warning in caught:
        text = str(warning.message)
        if text == "Some yi/vi values are NA.":
            n = int((~np.isfinite(used["yi"].to_numpy(dtype=float))).sum())
            text = (f"{n} pooled table{'s have' if n > 1 else ' has'} no estimate of its own (no events, or only "
                    "events, in both groups), so Q and I² use the others")  # fmt: skip
        out.append(text)
    return out


def _glmm_fit(used, settings) -> CountsFit:
    from metarepro.stats.glmm import rma_glmm

    zero = settings.zero_cells()
    test = "t" if settings.test == "knha" else "z"
    common = {"method": settings.method, "test": test, "level": settings.level, "add": zero["add"], "to": zero["to"]}
    if settings.measure == "OR":
        res = rma_glmm(**_tables(used), measure="OR", model=settings.model, drop00=zero["drop00"], **common)
    else:
        res = rma_glmm(xi=used["events"].to_numpy(dtype=float), ni=used["n"].to_numpy(dtype=float), measure="PLO",
                       **common)  # fmt: skip
    beta, se = float(res.beta[0]), float(res.se[0])
    crit = dist.t_isf((1 - settings.level / 100) / 2, res.k - 1) if test == "t" else \
        dist.norm_isf((1 - settings.level / 100) / 2)  # fmt: skip
    spread = np.sqrt(se**2 + res.tau2)  # metafor's predict.rma.glmm
    fields = {"method": res.method, "test": settings.test, "level": settings.level, "k": res.k, "estimate": beta,
              "se": se, "zval": float(res.zval[0]), "pval": float(res.pval[0]), "ci_low": float(res.ci_lb[0]),
              "ci_high": float(res.ci_ub[0]), "tau2": res.tau2, "tau2_se": res.se_tau2, "tau2_ci_low": None,
              "tau2_ci_high": None, "tau": float(np.sqrt(res.tau2)), "i2": res.I2, "i2_ci_low": None,
              "i2_ci_high": None, "h2": res.H2, "q": res.QE_Wld, "q_df": res.QE_df, "q_p": res.QEp_Wld,
              "pi_low": beta - crit * spread, "pi_high": beta + crit * spread, "converged": True,
              "iterations": None, "tau2_ci_low_capped": False, "tau2_ci_high_capped": False,
              "warnings": list(res.warnings)}  # fmt: skip
    return CountsFit("rma.glmm", res, _plain(fields), np.full(len(used), np.nan))


def _plain(fields):
    return {k: (float(v) if isinstance(v, np.floating | np.integer) and k != "k" else
                int(v) if k == "k" else v) for k, v in fields.items()}  # fmt: skip


def tables_refits(rows: pd.DataFrame, settings, order=None) -> FitTable:
    """metafor's ``leave1out.rma.mh``/``leave1out.rma.peto`` (``order`` None) or ``cumul.rma.mh``/``cumul.rma.peto``
    (``order``: a sort key per row, NaN last, as :func:`metarepro.stats.influence.cumul`): the MH or Peto fit of each
    subset of the rows' tables, in a :class:`~metarepro.stats.influence.FitTable` (tau2 0). A subset metafor
    cannot fit (no events) gives NaN, as metafor's ``try()`` does."""
    k = len(rows)
    if order is None:
        idx = np.arange(k)
        subsets = [np.arange(k) != i for i in range(k)]
    else:
        idx = np.argsort(np.asarray(order, dtype=float), kind="stable")
        subsets = [np.isin(np.arange(k), idx[: i + 1]) for i in range(k)]
    names = ("k", "estimate", "se", "zval", "pval", "ci_low", "ci_high", "q", "q_p", "tau2", "i2", "h2")
    out = {name: np.full(k, np.nan) for name in names}
    for i, keep in enumerate(subsets):
        try:
            res, _ = _tables_fit(settings.fit, rows[keep], settings)
        except ValueError:
            continue
        values = (res.k, res.beta, res.se, res.zval, res.pval, res.ci_lb, res.ci_ub, res.QE, res.QEp, 0.0, res.I2,
                  res.H2)  # fmt: skip
        for name, value in zip(names, values, strict=True):
            out[name][i] = value
    return FitTable("EE", "z", settings.level, idx, **out)
