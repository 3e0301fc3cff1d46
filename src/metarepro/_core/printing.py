"""Readable results for a notebook or a console, laid out as metafor prints them.

``print(rma(yi, vi))`` gives metafor's ``print.rma`` text (model, heterogeneity, the test of
heterogeneity, the model results with significance codes); likewise ``rma_mods``, ``regtest``,
``trimfill`` and ``leave1out``/``cumul``. Notebooks show the same text (``_repr_html_``);
``to_frame()`` gives a pandas table and ``to_dict()`` plain values.

Result classes inherit :class:`Printable` (with ``@dataclass(repr=False)``, so that the dataclass
does not replace ``__repr__``). Numbers are shown with 4 decimals as metafor's default ``digits``;
the objects keep full precision.
"""

from __future__ import annotations

import html as _html
import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

DIGITS = 4
SIGNIF = "---\nSignif. codes:  0 ‘***’ 0.001 ‘**’ 0.01 ‘*’ 0.05 ‘.’ 0.1 ‘ ’ 1"


def _f(x, digits=DIGITS) -> str:
    """A number with ``digits`` decimals; NA when missing (None, NaN), Inf/-Inf as R prints them. The report's
    formatter too."""
    x = math.nan if x is None else float(x)
    if math.isinf(x):
        return "Inf" if x > 0 else "-Inf"
    return "NA" if math.isnan(x) else f"{x:.{digits}f}"


def _p(p, digits=DIGITS, sep=False) -> str:
    """metafor's ``.pval``: '<.0001' below 10^-digits; with ``sep``, '< .0001' / '= 0.0170'."""
    p = math.nan if p is None else float(p)
    if not math.isfinite(p):
        return "= NA" if sep else "NA"
    if p < 10**-digits:
        return f"< .{'0' * (digits - 1)}1" if sep else f"<.{'0' * (digits - 1)}1"
    return f"= {p:.{digits}f}" if sep else f"{p:.{digits}f}"


def _stars(p) -> str:
    p = float(p)
    if math.isnan(p):
        return ""
    return next(mark for limit, mark in ((0.001, "***"), (0.01, "**"), (0.05, "*"), (0.1, "."), (2, "")) if p < limit)


def _table(columns: dict, index=None) -> str:
    """Right-aligned columns as R prints a data frame (``index``: row names, left column)."""
    names = list(columns)
    cells = [[str(v) for v in columns[n]] for n in names]
    rows = len(cells[0]) if cells else 0
    if index is not None:
        names, cells = ["", *names], [[str(i) for i in index], *cells]
    widths = [max(len(n), *(len(c) for c in col)) if col else len(n) for n, col in zip(names, cells, strict=True)]
    left = index is not None
    lines = ["  ".join((n.ljust(w) if left and j == 0 else n.rjust(w)) for j, (n, w) in enumerate(zip(names, widths,
             strict=True)))]  # fmt: skip
    for i in range(rows):
        lines.append("  ".join((col[i].ljust(w) if left and j == 0 else col[i].rjust(w))
                               for j, (col, w) in enumerate(zip(cells, widths, strict=True))))  # fmt: skip
    return "\n".join(line.rstrip() for line in lines)


def _labelled(pairs) -> list[str]:
    width = max(len(label) for label, _ in pairs) + 1
    return [f"{(label + ':').ljust(width)} {value}" for label, value in pairs]


def _heterogeneity(fit, residual: bool) -> list[str]:
    amount = "residual" if residual else "total"
    pairs = []
    if fit.method != "EE":
        pairs += [
            (f"tau^2 (estimated amount of {amount} heterogeneity)", f"{_f(fit.tau2)} (SE = {_f(fit.tau2_se)})"),
            ("tau (square root of estimated tau^2 value)", _f(np.sqrt(fit.tau2))),
        ]
    i2, h2 = (fit.I2, fit.H2) if residual else (fit.i2, fit.h2)
    if residual:
        pairs += [("I^2 (residual heterogeneity / unaccounted variability)", f"{_f(i2, 2)}%"),
                  ("H^2 (unaccounted variability / sampling variability)", _f(h2, 2))]  # fmt: skip
        if fit.method != "EE" and np.isfinite(fit.R2):
            pairs.append(("R^2 (amount of heterogeneity accounted for)", f"{_f(fit.R2, 2)}%"))
    else:
        pairs += [("I^2 (total heterogeneity / total variability)", f"{_f(i2, 2)}%"),
                  ("H^2 (total variability / sampling variability)", _f(h2, 2))]  # fmt: skip
    return _labelled(pairs)


def _results(names, fit, df=None) -> str:
    stat = "tval" if fit.test == "knha" else "zval"
    pvals = np.atleast_1d(fit.pval)
    estimates = np.atleast_1d(fit.beta if hasattr(fit, "beta") else fit.estimate)
    columns = {"estimate": [_f(b) for b in estimates], "se": [_f(s) for s in np.atleast_1d(fit.se)],
               stat: [_f(z) for z in np.atleast_1d(fit.zval)]}  # fmt: skip
    if df is not None:
        columns["df"] = [str(int(df))] * len(pvals)
    columns.update({"pval": [_p(p) for p in pvals], "ci.lb": [_f(x) for x in np.atleast_1d(fit.ci_low)],
                    "ci.ub": [_f(x) for x in np.atleast_1d(fit.ci_high)], "": [_stars(p) for p in pvals]})  # fmt: skip
    return _table(columns, index=names)


def _head(fit, equal: str, random: str) -> str:
    if fit.method == "EE":
        return f"{equal} (k = {int(fit.k)})"
    return f"{random} (k = {int(fit.k)}; tau^2 estimator: {fit.method})"


def rma_text(fit) -> str:
    """metafor's ``print.rma.uni`` for an intercept-only fit (:class:`metarepro.stats.rma.RmaResult`)."""
    head = _head(fit, "Equal-Effects Model", "Random-Effects Model")
    df = fit.q_df if fit.test == "knha" else None
    return "\n".join(
        [
            head, "", *_heterogeneity(fit, residual=False), "", "Test for Heterogeneity:",
            f"Q(df = {int(fit.q_df)}) = {_f(fit.q)}, p-val {_p(fit.q_p, sep=True)}", "", "Model Results:", "",
            _results(None, fit, df), "", SIGNIF,
        ]
    )  # fmt: skip


def _coefficients(btt) -> str:
    numbers = [b + 1 for b in btt]
    if len(numbers) == 1:
        return f"coefficient {numbers[0]}"
    if numbers == list(range(numbers[0], numbers[-1] + 1)):
        return f"coefficients {numbers[0]}:{numbers[-1]}"
    return f"coefficients {','.join(map(str, numbers))}"


def mods_text(fit) -> str:
    """metafor's ``print.rma.uni`` for a meta-regression (:class:`metarepro.stats.metareg.MetaregResult`)."""
    head = _head(fit, "Fixed-Effects with Moderators Model", "Mixed-Effects Model")
    df1, df2 = np.atleast_1d(fit.QM_df)[0], np.atleast_1d(fit.QM_df)[-1]
    if fit.test == "knha":
        qm = f"F(df1 = {int(df1)}, df2 = {int(df2)}) = {_f(fit.QM)}, p-val {_p(fit.QM_p, sep=True)}"
    else:
        qm = f"QM(df = {int(df1)}) = {_f(fit.QM)}, p-val {_p(fit.QM_p, sep=True)}"
    moderators = [f"Test of Moderators ({_coefficients(fit.btt)}):", qm, ""] if len(fit.btt) else []
    return "\n".join(
        [
            head, "", *_heterogeneity(fit, residual=True), "", "Test for Residual Heterogeneity:",
            f"QE(df = {int(fit.QE_df)}) = {_f(fit.QE)}, p-val {_p(fit.QE_p, sep=True)}", "", *moderators,
            "Model Results:", "", _results(list(fit.names), fit, df2 if fit.test == "knha" else None), "", SIGNIF,
        ]
    )  # fmt: skip


def regtest_text(test) -> str:
    """metafor's ``print.regtest``."""
    model = ("mixed-effects meta-regression model" if test.model == "rma"
             else "weighted regression with multiplicative dispersion")  # fmt: skip
    predictor = {"sei": "standard error", "vi": "sampling variance", "ni": "sample size",
                 "ninv": "inverse of the sample size"}.get(test.predictor, test.predictor)  # fmt: skip
    stat = f"z = {_f(test.zval)}" if np.isnan(test.dfs) else f"t = {_f(test.zval)}, df = {int(test.dfs)}"
    limit = f"Limit Estimate (as {test.predictor} -> 0):"
    return "\n".join(
        [
            "Regression Test for Funnel Plot Asymmetry", "", f"Model:     {model}", f"Predictor: {predictor}", "",
            *_labelled([("Test for Funnel Plot Asymmetry", f"{stat}, p {_p(test.pval, sep=True)}"),
                        (limit[:-1], f"b = {_f(test.estimate)} (CI: {_f(test.ci_low)}, {_f(test.ci_high)})")]),
        ]
    )  # fmt: skip


def trimfill_text(tf) -> str:
    """metafor's ``print.rma.uni`` of a ``trimfill`` fit: the missing studies, then the filled fit."""
    lines = [f"Estimated number of missing studies on the {tf.side} side: {int(tf.k0)} (SE = {_f(tf.se_k0)})"]
    if tf.estimator == "R0":
        lines.append(f"Test of H0: no missing studies on the {tf.side} side:    p-val {_p(tf.p_k0, sep=True)}")
    return "\n".join([*lines, "", rma_text(tf.fit)])


def _pooled_counts_text(fit, df) -> list[str]:
    """The part ``print.rma.mh`` and ``print.rma.peto`` share: model line, I², H², Q and the model results (log
    scale, then exponentiated for a ratio measure)."""
    lines = [f"Equal-Effects Model (k = {int(fit.k)})", ""]
    lines += _labelled([(label, text) for label, value, text in (
        ("I^2 (total heterogeneity / total variability)", fit.I2, f"{_f(fit.I2, 2)}%"),
        ("H^2 (total variability / sampling variability)", fit.H2, _f(fit.H2, 2))) if not math.isnan(value)])
    if not math.isnan(fit.QE):
        lines += ["", "Test for Heterogeneity:", f"Q(df = {df}) = {_f(fit.QE)}, p-val {_p(fit.QEp, sep=True)}"]
    table = {"estimate": [_f(fit.beta)], "se": [_f(fit.se)], "zval": [_f(fit.zval)], "pval": [_p(fit.pval)],
             "ci.lb": [_f(fit.ci_lb)], "ci.ub": [_f(fit.ci_ub)]}
    if fit.measure == "RD":
        return [*lines, "", "Model Results:", "", _table(table)]
    ratio = {"estimate": [_f(np.exp(fit.beta))], "ci.lb": [_f(np.exp(fit.ci_lb))], "ci.ub": [_f(np.exp(fit.ci_ub))]}
    scale = "OR" if fit.measure == "PETO" else fit.measure
    return [*lines, "", "Model Results (log scale):", "", _table(table), "", f"Model Results ({scale} scale):", "",
            _table(ratio)]  # fmt: skip


def mh_text(fit) -> str:
    """metafor's ``print.rma.mh`` (:class:`metarepro.stats.mh.RmaMhResult`)."""
    lines = _pooled_counts_text(fit, max(int(fit.k_yi) - 1, 0))
    if fit.measure == "OR":  # the two tests' values share one width, as metafor's formatC(width=)
        mh, ta = (None if math.isnan(x) else _f(x) for x in (fit.MH, fit.TA))
        width = max((len(v) for v in (mh, ta) if v), default=1)
        none = "test value not computable for these data"
        p = [_p(x, sep=True).replace("< .", "< 0.") for x in (fit.MHp, fit.TAp)]  # metafor's add0=TRUE
        pad = " " * (len(str(fit.k_pos)) - 1)
        lines += ["", "Cochran-Mantel-Haenszel Test:    " + (f"CMH = {mh.rjust(width)}, df = 1,{pad} p-val {p[0]}"
                                                             if mh else none),
                  "Tarone's Test for Heterogeneity: " + (f"X^2 = {ta.rjust(width)}, df = {fit.k_pos - 1}, p-val {p[1]}"
                                                         if ta else none)]  # fmt: skip
    return "\n".join(lines)


def peto_text(fit) -> str:
    """metafor's ``print.rma.peto`` (:class:`metarepro.stats.peto.RmaPetoResult`)."""
    return "\n".join(_pooled_counts_text(fit, int(fit.k_pos) - 1))


FIT_TABLE_COLUMNS = {"estimate": "estimate", "se": "se", "zval": "zval", "pval": "pval", "ci_low": "ci.lb",
                     "ci_high": "ci.ub", "q": "Q", "q_p": "Qp", "tau2": "tau2", "i2": "I2", "h2": "H2"}  # fmt: skip


def fit_table_text(table, labels=None) -> str:
    """metafor's ``print.list.rma`` of ``leave1out``/``cumul``: one line per refit."""
    columns = {}
    for name, label in FIT_TABLE_COLUMNS.items():
        if name == "tau2" and table.method == "EE":
            continue
        label = "tval" if (name == "zval" and table.test == "knha") else label
        columns[label] = [_f(x) for x in np.asarray(getattr(table, name), dtype=float)]
    index = labels if labels is not None else [str(int(i) + 1) for i in np.asarray(table.order)]
    return _table(columns, index=index)


def _batch_text(fit) -> str:
    return (
        f"{type(fit).__name__}: a batch of {np.size(fit.k)} fits (method {fit.method}, test {fit.test}); "
        "index it (fit[i]) to print one, or use to_frame()"
    )


_TEXT = {"RmaResult": rma_text, "MetaregResult": mods_text, "Regtest": regtest_text, "Trimfill": trimfill_text,
         "FitTable": fit_table_text, "RmaMhResult": mh_text, "RmaPetoResult": peto_text}  # fmt: skip


def _plain(value):
    value = np.asarray(value)
    return value.item() if value.ndim == 0 else value.tolist()


def to_frame(result) -> pd.DataFrame:
    """A pandas table of a result: one row per fit (per refit for leave1out/cumul, per coefficient for
    a meta-regression, per study with ``fill`` for trim-and-fill)."""
    import pandas as pd  # only here: ``import metarepro`` does not need pandas

    name = type(result).__name__
    if name == "MetaregResult":
        return result.coefficients()
    if name == "FitTable":
        fields = ["order", "k", *FIT_TABLE_COLUMNS]
        return pd.DataFrame({f: np.asarray(getattr(result, f)) for f in fields})
    if name == "Trimfill":
        return pd.DataFrame({"yi": result.yi, "vi": result.vi, "fill": result.fill})
    if name == "RmaResult" and np.ndim(result.k):
        return pd.DataFrame([result[i].to_dict() for i in range(len(result))])
    return pd.DataFrame([result.to_dict()])


def to_dict(result) -> dict:
    """Plain Python values of a result's fields (arrays as lists; the nested fit of trimfill as a dict)."""
    out = {}
    for name in result.__dataclass_fields__:
        value = getattr(result, name)
        if hasattr(value, "__dataclass_fields__"):
            out[name] = to_dict(value)
        elif value is None or isinstance(value, str | tuple | bool | int | float):
            out[name] = value
        else:
            out[name] = _plain(value)
    return out


class Printable:
    """``print()``, notebook display, ``to_frame()`` and ``to_dict()`` for a result dataclass."""

    def __str__(self) -> str:
        if np.ndim(getattr(self, "k", 0)) and type(self).__name__ != "FitTable":  # a batch of fits
            return _batch_text(self)
        return _TEXT[type(self).__name__](self)

    def __repr__(self) -> str:
        return self.__str__()

    def _repr_html_(self) -> str:
        return f"<pre>{_html.escape(self.__str__())}</pre>"

    def to_frame(self) -> pd.DataFrame:
        return to_frame(self)

    def to_dict(self) -> dict:
        return to_dict(self)
