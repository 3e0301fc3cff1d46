"""File-level steps for an analysis's sensitivity, moderator and publication-bias outputs.

Each function takes the analysis's included rows (effects joined with the sheet's own columns, see
:func:`analysis_rows`) and returns tables, a JSON-able record and figures; the workflow scripts only
write them. Statistics live in :mod:`influence`, :mod:`bias`, :mod:`subgroups`, :mod:`metareg` and
:mod:`permutation`. A model is fitted once per job: the functions take the fits the job already has (``fit``: the
rows' model, :func:`model_fit`; the subgroup fits of :func:`subgroup_fits`; the meta-regression of
:func:`metareg_model`) and refit only when not given them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from metarepro._core.limits import FIGURE_MAX_ROWS, PERMUTATION_MAX_K, REFIT_MAX_K
from metarepro.inputs.config import analysis_option
from metarepro.inputs.sheet import LINE, MISSING, SheetError, did_you_mean, map_distinct, order_key, to_numbers
from metarepro.jobs.outputs import DIAGNOSTIC_FIGURES, DIAGNOSTIC_TABLES
from metarepro.pipeline.analysis import Settings
from metarepro.present.plots import (
    baujat_plot,
    bubble_plot,
    cumulative_forest_plot,
    funnel_plot,
    leave1out_plot,
    subgroup_forest_plot,
)
from metarepro.present.plots.forest import counts_scale
from metarepro.stats import bias, influence
from metarepro.stats.metareg import design_matrix, rma_mods
from metarepro.stats.permutation import permutest
from metarepro.stats.rma import RmaResult, rma
from metarepro.stats.subgroups import subgroup_analysis


@dataclass
class Outputs:
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    record: dict = field(default_factory=dict)
    figures: dict[str, object] = field(default_factory=dict)


def analysis_rows(result) -> pd.DataFrame:
    """The included rows of an analysis (a :class:`~metarepro.jobs.pool.AnalysisResult`) with every column of its
    sheet (joined on the CSV line)."""
    computed = ["yi", "vi", "ci_low", "ci_high", "weight"]  # from the effects, not the sheet's input columns
    effects = result.effects
    used = effects[effects["included"]][["line", *computed]]
    extra = result.rows.drop(columns=[c for c in computed if c in result.rows]).rename(columns={LINE: "line"})
    return used.merge(extra, on="line", how="left")


def sensitivity_rows(result, analysis: dict) -> pd.DataFrame:
    """The rows the sensitivity steps use (``result``: the analysis's :class:`~metarepro.jobs.pool.AnalysisResult`,
    ``analysis`` its config entry): the included rows with the sheet's columns, or, for an analysis with dependent
    effects, one aggregated row per cluster."""
    settings = result.settings
    rows = analysis_rows(result)
    if settings.dependence is not None:
        # these methods are univariate: one aggregated effect per cluster, never dependent rows as if independent
        from metarepro.jobs.dependence import aggregated_rows

        read = [*analysis.get("subgroups", []), *analysis.get("moderators", [])]
        rows = aggregated_rows(rows, settings, [*read, analysis_option(analysis, "cumulative_order")])
    return _tables_apart(rows, settings)


def _tables_apart(rows, settings):
    """An rma.mh/rma.peto analysis: the rows with a yi of their own (what the inverse-variance steps use), with every
    pooled table kept in ``attrs["tables"]`` for the MH/Peto leave-one-out and cumulative refits."""
    if settings.fit not in ("rma.mh", "rma.peto"):
        return rows
    own = rows[np.isfinite(rows["yi"].to_numpy(dtype=float))].reset_index(drop=True)
    own.attrs["tables"] = rows.reset_index(drop=True)
    return own


def model_fit(rows: pd.DataFrame, settings: Settings, primary: RmaResult | None = None) -> RmaResult | None:
    """The model of the sensitivity rows (``rma`` with the analysis's method, test and level), fitted once for every
    step: the analysis's ``primary`` fit when the rows are its rows (no dependence), else fitted here; None without
    rows."""
    if primary is not None and settings.dependence is None:
        return primary
    if not len(rows):
        return None
    return rma(rows["yi"].to_numpy(), rows["vi"].to_numpy(), settings.method, settings.test, settings.level)


def _dependence_note(rows: pd.DataFrame, record: dict) -> dict:
    """Say in a step's record that its rows are aggregated clusters (see :func:`sensitivity_rows`)."""
    if rows.attrs.get("dependence_note"):
        record["dependence"] = rows.attrs["dependence_note"]
    return record


def figure_labels(config: dict) -> dict:
    """Group names and "favours" texts of an analysis (config ``labels``, analysis over defaults)."""
    return {**config.get("defaults", {}).get("labels", {}), **config["analysis"].get("labels", {})}


def refits_note(k: int, limit: int = REFIT_MAX_K) -> str:
    """Why the case diagnostics of k > ``limit`` studies are not computed (in their tables, figures and the report)."""
    return (f"leave-one-out, influence, Baujat and cumulative analyses not computed for k > {limit:,} "
            f"(here k = {k:,}): each refits the model k times")  # fmt: skip


def diagnostics(rows: pd.DataFrame, settings: Settings, order_column: str = "year", labels=None,
                refit_max_k: int = REFIT_MAX_K, max_rows: int = FIGURE_MAX_ROWS, fit: RmaResult | None = None,
                ) -> Outputs:  # fmt: skip
    """Leave-one-out, influence (with Baujat coordinates) and cumulative meta-analysis.

    With one study there is nothing to leave out: the tables are empty, the figures say so, and
    ``record["note"]`` gives the reason (metafor stops with "k = 1"). With more than ``refit_max_k`` studies
    (:data:`~metarepro._core.limits.REFIT_MAX_K`) they are not computed: each table is one row whose ``note`` says why,
    and so do the figures. Figures of more than ``max_rows`` rows take their summary form (see :mod:`.plots.forest`).
    ``fit``: the rows' model (:func:`model_fit`), when the job has it.
    """
    ident, fits = ["line", "study_id", "study"], list(FIT_COLUMNS)
    columns = {"leave1out": ident + fits, "influence": ident + INFLUENCE_COLUMNS, "cumulative": ["added", *ident,
               *fits]}  # fmt: skip
    if len(rows) < 2 or len(rows) > refit_max_k:
        too_few = len(rows) < 2
        note = (f"case diagnostics need k >= 2 studies; this analysis has k = {len(rows)}" if too_few
                else refits_note(len(rows), refit_max_k))  # fmt: skip
        tables = {name: pd.DataFrame(columns=columns[name]) if too_few else
                  pd.DataFrame({**{c: [np.nan] for c in columns[name]}, "note": [note]}) for name in DIAGNOSTIC_TABLES}
        figures = {name: _note_figure(note) for name in DIAGNOSTIC_FIGURES}
        return Outputs(tables, _dependence_note(rows, {"note": note}), figures)
    yi, vi = rows["yi"].to_numpy(), rows["vi"].to_numpy()
    args = {"method": settings.method, "test": settings.test, "level": settings.level}
    labels_of_rows = rows["study"].astype(str).to_list()
    inf = influence.influence(yi, vi, **args, fit=fit)
    loo = inf.leave1out  # the same refits as influence.leave1out(yi, vi, **args): fitted once, used thrice
    bj = influence.baujat(yi, vi, **args, influence=inf)
    # the sort key (e.g. year, 2001a after 2001); a sheet without that column keeps its own row order
    key, unordered = order_key(rows[order_column]) if order_column in rows else (None, [])
    cum = influence.cumul(yi, vi, order=key, **args)
    ident = rows[["line", "study_id", "study"]].reset_index(drop=True)
    loo_table = pd.concat([ident, _fit_table(loo)], axis=1)
    estimate = inf.fit.estimate
    if "tables" in rows.attrs:  # rma.mh / rma.peto: metafor's leave1out and cumul refit MH / Peto on each subset
        loo_table, cum, estimate = _tables_refits(rows.attrs["tables"], settings, order_column)
    inf_table = pd.concat(
        [
            ident,
            pd.DataFrame(
                {
                    "rstudent": inf.rstudent,
                    "dffits": inf.dffits,
                    "cook_d": inf.cook_d,
                    "cov_r": inf.cov_r,
                    "tau2_del": inf.tau2_del,
                    "qe_del": inf.qe_del,
                    "hat": inf.hat,
                    "weight": inf.weight,
                    "dfbetas": np.ravel(inf.dfbs),
                    "influential": inf.inf,
                    "baujat_x": bj.x,
                    "baujat_y": bj.y,
                }
            ),  # fmt: skip
        ],
        axis=1,
    )
    if "tables" in rows.attrs:
        ident = rows.attrs["tables"][["line", "study_id", "study"]]
    cum_table = pd.concat([ident.iloc[cum.order].reset_index(drop=True), _fit_table(cum)], axis=1)
    cum_table.insert(0, "added", np.arange(1, len(cum_table) + 1))
    common = {"measure": settings.measure, "labels": labels, "level": settings.level, "method": settings.method,
              "max_rows": max_rows, "scale": counts_scale(rows, settings.measure)}  # fmt: skip
    figures = {  # drawn from the tables written beside them
        "leave1out": leave1out_plot(loo_table, estimate=estimate, **common),
        "cumulative": cumulative_forest_plot(cum_table, order=(order_column, len(unordered)), **common),
        "baujat": baujat_plot(bj, labels=labels_of_rows),
    }
    tables = {"leave1out": loo_table, "influence": inf_table, "cumulative": cum_table}
    if rows.attrs.get("dependence_note"):  # the tables are what is written: say it there too
        tables = {name: table.assign(dependence=rows.attrs["dependence_note"]) for name, table in tables.items()}
    return Outputs(tables, _dependence_note(rows, {}), figures)


def _tables_refits(tables, settings, order_column):
    """Leave-one-out table, cumulative FitTable and pooled estimate of an rma.mh/rma.peto analysis (every pooled
    table, with or without a yi of its own)."""
    from metarepro.pipeline.binary import fit_counts, tables_refits

    key = order_key(tables[order_column])[0] if order_column in tables else None
    ident = tables[["line", "study_id", "study"]].reset_index(drop=True)
    loo = pd.concat([ident, _fit_table(tables_refits(tables, settings))], axis=1)
    estimate = fit_counts(tables.assign(included=True), settings).estimate
    return loo, tables_refits(tables, settings, key), estimate


FIT_COLUMNS = ("estimate", "se", "zval", "pval", "ci_low", "ci_high", "q", "q_p", "tau2", "i2", "h2")
INFLUENCE_COLUMNS = ["rstudent", "dffits", "cook_d", "cov_r", "tau2_del", "qe_del", "hat", "weight", "dfbetas",
                     "influential", "baujat_x", "baujat_y"]  # fmt: skip


def _note_figure(text):
    """A small figure that only says why the real one is not drawn (the workflow expects a file); the text is
    wrapped to the figure's width (about 70 characters of the default font fill its 6 inches)."""
    import textwrap

    from metarepro.present.plots.style import new_figure

    lines = textwrap.wrap(text, 70)
    figure = new_figure((6, max(1.0, 0.4 + 0.25 * len(lines))))
    figure.text(0.5, 0.5, "\n".join(lines), ha="center", va="center")
    return figure


def _fit_table(table) -> pd.DataFrame:
    return pd.DataFrame({name: np.asarray(getattr(table, name)) for name in FIT_COLUMNS})


def _attempt(skipped: list[str], name: str, compute):
    """``compute()``, or None with the reason appended to ``skipped`` when the data do not allow it
    (all vi equal, too few studies): that part is skipped and said why, the rest still runs."""
    try:
        return compute()
    except ValueError as err:
        skipped.append(f"{name}: {err}")
        return None


def _sample_sizes(rows: pd.DataFrame) -> np.ndarray | None:
    """Each study's n for regtest's sample-size predictors: n_cases + n_controls (two groups), else n (one)."""
    if {"n_cases", "n_controls"} <= set(rows):
        return rows["n_cases"].to_numpy(dtype=float) + rows["n_controls"].to_numpy(dtype=float)
    return rows["n"].to_numpy(dtype=float) if "n" in rows else None


def publication_bias(rows: pd.DataFrame, settings: Settings, labels=None, fit: RmaResult | None = None,
                     predictor: str = "sei") -> Outputs:  # fmt: skip
    """Egger (both variants), Begg, trim-and-fill (L0 and R0), fail-safe N, PET-PEESE and the funnel plot.

    A test the data do not allow (e.g. Egger when every vi is equal) is left out and its reason given
    in ``record["skipped"]``. ``fit``: the rows' model (:func:`model_fit`), when the job has it. The mixed-effects
    Egger regression is fitted once: it is PET, and its slope gives trim-and-fill's side (both estimators).
    ``predictor`` (config ``regtest_predictor``): other than "sei", both regression tests again with metafor's
    regtest ``predictor`` (``regtest_rma_*``, ``regtest_lm_*``; ni from :func:`_sample_sizes`), beside Egger's.
    """
    yi, vi = rows["yi"].to_numpy(), rows["vi"].to_numpy()
    args = {"method": settings.method, "test": settings.test, "level": settings.level}
    k = len(yi)
    record: dict = _dependence_note(rows, {"k": k, "low_power_note": bias.low_power_note(k)})
    if bias.odds_ratio_note(settings.measure):
        record["odds_ratio_note"] = bias.odds_ratio_note(settings.measure)
    if k < 3:
        record["note"] = "fewer than 3 studies: small-study tests are not computed"
        return Outputs({}, record, {"funnel": funnel_plot(yi, vi, measure=settings.measure, labels=labels,
                                                          scale=counts_scale(rows, settings.measure))})
    skipped: list[str] = []
    egger = _attempt(skipped, "Egger (mixed-effects)", lambda: bias.regtest(yi, vi, model="rma", **args))
    classic = _attempt(skipped, "Egger (classic)", lambda: bias.regtest(yi, vi, model="lm", level=settings.level))
    rank = _attempt(skipped, "Begg", lambda: bias.ranktest(yi, vi))
    side_fit = egger.fit if egger is not None else None
    fills = {est: _attempt(skipped, f"trim-and-fill ({est})", lambda est=est: bias.trimfill(yi, vi, estimator=est,
             **args, fit=fit, side_fit=side_fit)) for est in ("L0", "R0")}  # fmt: skip
    pp = _attempt(skipped, "PET-PEESE", lambda: bias.pet_peese(yi, vi, **args, pet=egger))
    if egger is not None:
        # egger_z is the statistic whatever its kind (metafor's zval): a t on egger_df df under Knapp-Hartung
        t_test = bool(np.isfinite(egger.dfs))
        record.update({"egger_z": egger.zval, "egger_statistic": "t" if t_test else "z",
                       "egger_df": egger.dfs if t_test else None, "egger_p": egger.pval,
                       "egger_limit_estimate": egger.estimate, "egger_limit_ci_low": egger.ci_low,
                       "egger_limit_ci_high": egger.ci_high})  # fmt: skip
    if classic is not None:
        record.update({"egger_t": classic.zval, "egger_t_df": classic.dfs, "egger_t_p": classic.pval})
    if predictor != "sei":
        record["regtest_predictor"] = predictor
        ni = _sample_sizes(rows)
        for model in ("rma", "lm"):
            given = args if model == "rma" else {"level": settings.level}  # lm: no tau² method, its own t test
            extra = _attempt(skipped, f"regression test ({model}, predictor {predictor})",
                             lambda model=model, given=given: bias.regtest(yi, vi, model=model, predictor=predictor,
                                                                           ni=ni, **given))  # fmt: skip
            if extra is not None:
                t_test = bool(np.isfinite(extra.dfs))
                record.update({f"regtest_{model}_statistic": "t" if t_test else "z", f"regtest_{model}_z": extra.zval,
                               f"regtest_{model}_df": extra.dfs if t_test else None,
                               f"regtest_{model}_p": extra.pval})  # fmt: skip
    if rank is not None:
        record.update({"begg_tau": rank.tau, "begg_p": rank.pval, "begg_exact": rank.exact,
                       "begg_method": rank.method})  # fmt: skip
    for name in ("Rosenthal", "Orwin", "Rosenberg"):
        fsn = _attempt(skipped, f"fail-safe N ({name})", lambda name=name: bias.fsn(yi, vi, name))
        if fsn is not None:
            record[f"fsn_{name.lower()}"] = fsn.fsnum
    if pp is not None:
        record.update(
            {
                "pet_estimate": pp.pet.estimate, "peese_estimate": pp.peese.estimate,
                "pet_peese_uses": "PEESE" if pp.use_peese else "PET", "pet_peese_estimate": pp.estimate,
                "pet_peese_ci_low": pp.ci_low, "pet_peese_ci_high": pp.ci_high,
            }
        )  # fmt: skip
    for est, tf in fills.items():
        if tf is None:
            continue
        prefix = "trimfill" if est == "L0" else "trimfill_r0"
        record.update(
            {f"{prefix}_k0": tf.k0, f"{prefix}_side": tf.side, f"{prefix}_estimate": tf.fit.estimate,
             f"{prefix}_ci_low": tf.fit.ci_low, f"{prefix}_ci_high": tf.fit.ci_high, f"{prefix}_tau2": tf.fit.tau2}
        )  # fmt: skip
    record["trimfill_estimator"] = "L0"
    if skipped:
        record["skipped"] = "; ".join(skipped)
    pooled = (rma(yi, vi, **args) if fit is None else fit).estimate
    funnel = funnel_plot(yi, vi, estimate=pooled, trimfill=fills["L0"], measure=settings.measure, labels=labels,
                         scale=counts_scale(rows, settings.measure))  # PFT: the pooled rows' harmonic-mean n
    return Outputs({}, record, {"funnel": funnel})


def _missing_cells(values: pd.Series) -> np.ndarray:
    """NA, N/A, NaN, '.', empty (any case, as the sheet reader) and a real NaN are missing."""
    return map_distinct(values, _is_missing_cell).astype(bool)


def _is_missing_cell(cell) -> bool:
    return pd.isna(cell) or str(cell).strip().lower() in MISSING


def _groups(rows, column):
    """The subgroup of each row, None where the sheet gives none (the row leaves that model, as in metafor)."""
    if column not in rows:
        raise SheetError(f"subgroups: the sheet has no column '{column}'{did_you_mean(column, rows.columns)}")
    return map_distinct(rows[column], lambda cell: None if _is_missing_cell(cell) else str(cell).strip())


def _left_out(rows, missing) -> dict:
    return {"left_out": int(missing.sum()), "left_out_lines": " ".join(str(x) for x in rows.loc[missing, "line"])}


def _subgroup_fit(rows, settings, column):
    groups = _groups(rows, column)
    given = np.array([g is not None for g in groups], dtype=bool)
    if given.sum() == 0:
        raise SheetError(f"subgroups: column '{column}' is empty in every row of this analysis")
    result = subgroup_analysis(rows["yi"].to_numpy()[given], rows["vi"].to_numpy()[given], groups[given],
                               settings.method, settings.test, settings.level)  # fmt: skip
    return given, groups, result


def subgroup_fits(rows: pd.DataFrame, settings: Settings, columns: list[str]) -> dict:
    """The subgroup analysis of each grouping column (what :func:`subgroups` and :func:`subgroup_figure` show)."""
    return {column: _subgroup_fit(rows, settings, column) for column in columns}


def subgroups(rows: pd.DataFrame, settings: Settings, columns: list[str], fits: dict | None = None) -> pd.DataFrame:
    """Per-subgroup fits and both tests of subgroup differences, one block of rows per grouping column.

    Rows without a value (empty, NA, ...) leave that column's model, as metafor's ``subset``/``na.omit``
    do; they are counted (``left_out``) and listed by line (``left_out_lines``), never a subgroup "NA".
    ``fits``: :func:`subgroup_fits` of these columns, when the job has them.
    """
    tables = []
    for column in columns:
        given, _, result = fits[column] if fits else _subgroup_fit(rows, settings, column)
        table = result.table().reset_index()
        table.insert(0, "column", column)
        table = table.assign(**_left_out(rows, ~given))
        table = table.assign(
            test_moderator_QM=result.QM, test_moderator_df=np.atleast_1d(result.QM_df)[0],
            test_moderator_df2=np.atleast_1d(result.QM_df)[-1] if np.size(result.QM_df) > 1 else np.nan,
            test_moderator_p=result.QM_p,
            test_between_Q=result.Q_between, test_between_df=result.Q_between_df, test_between_p=result.Q_between_p,
        )  # fmt: skip
        tables.append(table)
    out = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=["column", "subgroup"])
    return out.assign(dependence=rows.attrs["dependence_note"]) if rows.attrs.get("dependence_note") else out


def subgroup_figure(rows: pd.DataFrame, settings: Settings, column: str, title: str = "", labels=None,
                    max_rows: int = FIGURE_MAX_ROWS, fitted=None):  # fmt: skip
    """Forest plot with one block and diamond per subgroup of ``column`` and the tests of differences (without the
    study rows when there are more than ``max_rows``: see :func:`~metarepro.present.plots.subgroup_forest_plot`).
    ``fitted``: that column's entry of :func:`subgroup_fits`, when the job has it."""
    given, groups, result = fitted or _subgroup_fit(rows, settings, column)
    effects = rows[given].assign(included=True)
    missing = int((~given).sum())  # rows without a value are in no subgroup: the figure says so
    note = f"; {missing} pooled row(s) without a {column} are in no subgroup" if missing else ""
    return subgroup_forest_plot(effects, groups[given], result, title=f"{title} by {column}{note}",
                                measure=settings.measure, labels=labels, level=settings.level,
                                max_rows=max_rows)  # fmt: skip


def permutations_note(k: int, limit: int = PERMUTATION_MAX_K) -> str:
    return (f"permutation test not computed for k > {limit:,} (here k = {k:,}): it refits the model once per "
            "permutation")


@dataclass
class MetaregModel:
    """The meta-regression on all moderators jointly: the rows that give every moderator (``complete``), its design
    matrix ``X`` and ``fit`` (:func:`metarepro.stats.metareg.rma_mods`)."""

    moderators: list[str]
    complete: np.ndarray
    X: pd.DataFrame
    fit: object


def metareg_model(rows: pd.DataFrame, settings: Settings, moderators: list[str]) -> MetaregModel:
    """The joint meta-regression of :func:`metaregression` (SheetError when too few rows give every moderator)."""
    frame = _moderator_values(rows, moderators)
    complete = frame.notna().all(axis=1).to_numpy()
    used, X = rows[complete], design_matrix(frame[complete], moderators)
    needed = X.shape[1] + (settings.method != "EE")
    if len(used) < needed:
        raise SheetError(
            f"moderators {', '.join(moderators)}: {len(used)} of {len(rows)} rows give every moderator, but "
            f"the model has {X.shape[1]} coefficients and needs at least {needed} rows; fill the empty "
            f"cells (lines {_left_out(rows, ~complete)['left_out_lines'] or 'none'}) or use fewer moderators"
        )
    yi, vi = used["yi"].to_numpy(), used["vi"].to_numpy()
    fit = rma_mods(yi, vi, X.astype(float), settings.method, settings.test, settings.level)
    return MetaregModel(list(moderators), complete, X, fit)


def metaregression(
    rows: pd.DataFrame, settings: Settings, moderators: list[str], permutations: int = 1000, seed: int = 1,
    permutation_max_k: int = PERMUTATION_MAX_K, model: MetaregModel | None = None,
) -> pd.DataFrame:
    """The meta-regression on all moderators jointly, with metafor's permutation test: one row per
    coefficient, model statistics repeated on each. Numeric columns enter as they are, text columns as
    factors. Rows missing a moderator are left out of the model and listed (``left_out_lines``). With more than
    ``permutation_max_k`` rows in the model (:data:`~metarepro._core.limits.PERMUTATION_MAX_K`) the permutation test
    is skipped and ``permutation_note`` says so. ``model``: :func:`metareg_model` of these rows, when the job has
    it."""
    model = model or metareg_model(rows, settings, moderators)
    complete, X, fit = model.complete, model.X, model.fit
    used = rows[complete]
    yi, vi = used["yi"].to_numpy(), used["vi"].to_numpy()
    skip_permutations = bool(permutations) and len(yi) > permutation_max_k
    if skip_permutations:
        permutations = 0
    perm = permutest(yi, vi, X.to_numpy(dtype=float), settings.method, settings.test, settings.level,
                     iter=permutations, seed=seed) if permutations else None  # fmt: skip
    table = fit.coefficients().reset_index(names="coefficient")
    if perm is not None:
        table["permutation_p"] = perm.pval
    table = table.assign(
        k=fit.k, tau2=fit.tau2, R2=fit.R2, QM=fit.QM, QM_df=np.atleast_1d(fit.QM_df)[0],
        QM_df2=np.atleast_1d(fit.QM_df)[-1] if np.size(fit.QM_df) > 1 else np.nan, QM_p=fit.QM_p,
        QM_permutation_p=perm.QM_p if perm is not None else np.nan,
        permutations=perm.n_permutations if perm is not None else 0,
        permutation_exact=perm.exact if perm is not None else None,
        QE=fit.QE, QE_df=fit.QE_df, QE_p=fit.QE_p, I2=fit.I2,
        **_left_out(rows, ~complete),
    )  # fmt: skip
    if skip_permutations:
        table["permutation_note"] = permutations_note(len(yi), permutation_max_k)
    return table.assign(dependence=rows.attrs["dependence_note"]) if rows.attrs.get("dependence_note") else table


def _moderator_values(rows, moderators):
    """Moderator columns with missing cells (empty, NA, ...) as NaN; all-number columns as floats."""
    missing = [m for m in moderators if m not in rows]
    if missing:
        hints = "".join(did_you_mean(m, rows.columns) for m in missing)
        raise SheetError(f"moderators: the sheet has no column(s) {', '.join(missing)}{hints}")
    frame = rows[moderators].copy()
    for m in moderators:
        frame[m] = frame[m].where(~_missing_cells(frame[m]), np.nan)
    for m in moderators:
        numeric = to_numbers(frame[m])
        if numeric.notna().sum() == frame[m].notna().sum():  # every given value is a number: continuous
            frame[m] = numeric
    return frame


def script_values(rows: pd.DataFrame, analysis: dict) -> pd.DataFrame:
    """The sheet's values the steps above read, one per row of ``rows`` (the sensitivity rows), as they read them:
    ``subgroup_<column>`` (text, None where missing), ``mod_<moderator>`` (numbers, or text for a text moderator),
    ``order_key`` (the cumulative order's sort key, NaN last); ``attrs["levels"]``: the sorted levels of each text
    column (the first is the reference level). What :func:`metarepro.present.metafor_script.metafor_script` writes
    into the R script."""
    out, levels = pd.DataFrame(index=range(len(rows))), {}
    for column in analysis.get("subgroups", []):
        groups = _groups(rows, column)
        out[f"subgroup_{column}"] = groups
        levels[f"subgroup_{column}"] = sorted({g for g in groups if g is not None})
    moderators = analysis.get("moderators", [])
    frame = _moderator_values(rows.reset_index(drop=True), moderators) if moderators else None
    for m in moderators:
        if pd.api.types.is_numeric_dtype(frame[m]):
            out[f"mod_{m}"] = frame[m].to_numpy(dtype=float)
        else:
            out[f"mod_{m}"] = [None if v != v else str(v) for v in frame[m]]  # NaN != NaN: missing
            levels[f"mod_{m}"] = sorted({str(v) for v in frame[m].dropna()})
    column = analysis_option(analysis, "cumulative_order")
    out["order_key"] = order_key(rows[column])[0] if column in rows else np.nan  # no column: the rows' own order
    out.attrs["levels"] = levels
    return out


def bubble(rows: pd.DataFrame, settings: Settings, moderator: str, title: str = "", labels=None,
           model: MetaregModel | None = None):  # fmt: skip
    """Bubble plot of a continuous moderator, from its own single-moderator meta-regression.

    A moderator with text values (a factor in the meta-regression) has no bubble plot (metafor's ``regplot``
    refuses one too): the figure says so and points to the meta-regression table. ``model``: the joint
    meta-regression (:func:`metareg_model`); when it is this moderator's alone, its fit is drawn, not refitted.
    """
    values = _moderator_values(rows, [moderator])[moderator]
    if not pd.api.types.is_numeric_dtype(values):
        levels = sorted(values.dropna().astype(str).unique())
        shown = ", ".join(levels[:4]) + (", ..." if len(levels) > 4 else "")
        return _note_figure(f"no bubble plot: moderator '{moderator}' has text values ({shown}); it enters the "
                            "meta-regression as a factor (see the meta-regression table)")  # fmt: skip
    x = values.to_numpy(dtype=float)
    ok = np.isfinite(x)
    yi, vi, x = rows["yi"].to_numpy()[ok], rows["vi"].to_numpy()[ok], x[ok]
    if model is not None and model.moderators == [moderator]:  # the same rows (those with x) and design [1, x]
        fit = model.fit
    else:
        fit = rma_mods(yi, vi, np.column_stack([np.ones_like(x), x]), settings.method, settings.test, settings.level)
    return bubble_plot(yi, vi, x, fit, moderator, measure=settings.measure, title=title, labels=labels)


def study_level(effects: pd.DataFrame, settings: dict, measure: str) -> pd.DataFrame:
    """The study-level reproduction table (config ``compare_studies``): our effects beside the published
    study-level values of ``settings["sheet"]`` (:func:`metarepro.pipeline.study_level.compare_studies`)."""
    from metarepro.inputs.published import read_study_values
    from metarepro.pipeline.study_level import compare_studies

    return compare_studies(effects, read_study_values(settings["sheet"], settings.get("columns")), measure)


def study_level_figure(table: pd.DataFrame, settings: dict, measure: str, labels=None):
    """The figure of :func:`study_level`, drawn from its table."""
    from metarepro.present.plots.study_level import study_level_plot

    name = settings.get("published_id") or settings["sheet"]
    return study_level_plot(table, measure, title=f"Study by study: ours vs {name}", labels=labels)
