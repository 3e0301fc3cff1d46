"""Dependent effect sizes in a configured analysis (config ``dependence``, ``robust``): the fit, its record in
``pooled.json``, the estimator table, and the rows the univariate sensitivity steps see.

The model of each ``dependence: {model: ...}`` (see :class:`metarepro.pipeline.analysis.Dependence` and
config/README.md):

* ``multilevel``: ``rma.mv(yi, V, random = ~ 1 | study_id/.../effect)``, intercept only;
* ``multivariate``: ``rma.mv(yi, V, mods = ~ 0 + inner, random = ~ inner | outer, struct = ...)``, one
  coefficient per inner level; pooled.json's estimate is the ``primary`` level's (default: most effects);
* ``aggregate``: ``aggregate(escalc, cluster = ..., rho = ...)`` then the analysis's usual ``rma``.

V, the sampling covariance, is metafor's ``vcalc``: diagonal unless ``rho`` or ``shared_controls`` is given;
``rho`` correlates two rows of one cluster on the same participants, ``shared_controls`` adds the covariance of
case groups compared with one control group (``grp1`` = case group, ``grp2`` = the control group, ``w1`` =
``n_cases``, ``w2`` = ``n_controls``). metafor 3.8's rma.mv has no Knapp-Hartung test: ``test: knha`` gives its
``test = "t"`` (df from ``dfs``, metafor's default ``residual``).

Case diagnostics, small-study tests, subgroups and meta-regression are univariate: :func:`aggregated_rows` gives
them one row per cluster (aggregated with the same V), and says so in their outputs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from metarepro._core import dist
from metarepro.pipeline.analysis import Dependence, Settings, pooled_fields, pooled_record
from metarepro.stats.mv import BlockV, confint, rma_mv
from metarepro.stats.rma import rma
from metarepro.stats.robust import robust
from metarepro.stats.tau2 import METHODS
from metarepro.stats.vcalc import aggregate, vcalc

MV_TESTS = ("z", "t")


def _labels(values) -> np.ndarray:
    return np.asarray(pd.Series(values).fillna("").astype(str).str.strip())


def sampling_covariance(used: pd.DataFrame, dep: Dependence):
    """vi (1-D) when the rows' sampling errors are independent, else metafor's ``vcalc`` as a :class:`BlockV`."""
    vi = used["vi"].to_numpy(dtype=float)
    if dep.rho is None and not dep.shared_controls:
        return vi
    cluster = _labels(used[dep.cluster])
    rows = np.arange(len(used)).astype(str)
    if not dep.shared_controls:
        return vcalc(vi, cluster, obs=rows, rho=dep.rho)
    # the case group of each row: its own, or the case_group column's value within the cluster
    grp1 = _labels(used[dep.case_group]) if dep.case_group else rows
    obs = _labels(used[dep.inner]) if dep.model == "multivariate" else np.full(len(used), "outcome")
    return vcalc(vi, cluster, obs=obs, rho=0.0 if dep.rho is None else dep.rho, grp1=grp1,
                 grp2=np.full(len(used), "controls"), w1=used["n_cases"].to_numpy(dtype=float),
                 w2=used["n_controls"].to_numpy(dtype=float))  # fmt: skip


def formula(dep: Dependence, settings: Settings) -> str:
    """The model in metafor's terms."""
    V = "vi" if dep.rho is None and not dep.shared_controls else "V"
    if dep.model == "aggregate":
        return (f"rma(yi, vi, method = \"{settings.method}\", test = \"{settings.test}\") on "
                f"aggregate(dat, cluster = {dep.cluster}, rho = {dep.rho:g})")  # fmt: skip
    test, dfs = _mv_test(settings.test), f", dfs = \"{dep.dfs}\"" if _mv_test(settings.test) == "t" else ""
    if dep.model == "multilevel":
        random = f"~ 1 | {'/'.join(dep.levels)}/effect"
        mods = ""
    else:
        random, mods = f"~ {dep.inner} | {dep.cluster}", f", mods = ~ 0 + {dep.inner}, struct = \"{dep.struct}\""
    return f"rma.mv(yi, {V}{mods}, random = {random}, method = \"{settings.method}\", test = \"{test}\"{dfs})"


def _mv_test(test):
    return "t" if test == "knha" else test


def _weights(fit, own) -> np.ndarray:
    """Each row's share (percent) in the estimate of its own coefficient (``own[i]``): row i of (X'WX)⁻¹X'W with
    W = M⁻¹, block by block; for an intercept-only model metafor's ``weights(fit, type = "rowsum")``, summing to
    100. (metafor's default, the diagonal of W, overstates rows whose cluster has other rows.)"""
    XtW = np.empty((fit.p, fit.k))
    for rows, M in fit.marginal_blocks():
        X = fit._X[rows]  # (nb, s, p)
        XtW[:, rows] = np.einsum("bsp,bst->pbt", X, np.linalg.inv(M))
    share = np.linalg.solve(XtW @ fit._X, XtW)
    return 100 * share[own, np.arange(fit.k)]


def _design(used, dep):
    if dep.model != "multivariate":
        return None, ["intrcpt"]
    inner = _labels(used[dep.inner])
    levels = sorted(set(inner))  # R's factor() order (rma_mv sorts the same way)
    if len(levels) == 1:
        return None, levels
    return (inner[:, None] == np.array(levels)[None, :]).astype(float), levels


def _primary(used, dep, levels) -> int:
    if dep.primary is not None:
        if dep.primary not in levels:
            raise ValueError(f"dependence primary '{dep.primary}' is not a value of '{dep.inner}' among the "
                             f"included rows ({', '.join(levels)})")  # fmt: skip
        return levels.index(dep.primary)
    counts = pd.Series(_labels(used[dep.inner])).value_counts()
    return levels.index(max(levels, key=lambda lv: (counts.get(lv, 0), -levels.index(lv))))


def fit_mv(used: pd.DataFrame, settings: Settings, method=None, test=None):
    """The rma.mv fit of a multilevel or multivariate analysis: (fit, coefficient names, primary index)."""
    dep = settings.dependence
    X, levels = _design(used, dep)
    V = sampling_covariance(used, dep)
    kwargs = {"method": method or settings.method, "test": _mv_test(test or settings.test), "dfs": dep.dfs,
              "level": settings.level}  # fmt: skip
    if dep.model == "multilevel":
        nested = [_labels(used[c]) for c in dep.levels] + [np.arange(len(used)).astype(str)]
        fit = rma_mv(used["yi"].to_numpy(dtype=float), V, nested=nested, **kwargs)
        return fit, ["intrcpt"], 0
    fit = rma_mv(used["yi"].to_numpy(dtype=float), V, X, inner=_labels(used[dep.inner]),
                 outer=_labels(used[dep.cluster]), struct=dep.struct, X_names=levels, **kwargs)  # fmt: skip
    return fit, levels, _primary(used, dep, levels)


def mv_record(fit, names, j, settings: Settings, unit=None) -> dict:
    """pooled.json's fields (as :func:`metarepro.pipeline.analysis.pooled_record`) for coefficient ``j`` of an
    rma.mv fit."""
    x = np.eye(fit.p)[j]
    multivariate = fit.struct is not None
    pred = fit.predict(x, tau2_level=j if multivariate and fit.tau2.size > 1 else None)
    i2 = fit.i2()
    if multivariate:
        tau2 = float(fit.tau2[j] if fit.tau2.size > 1 else fit.tau2[0])
        i2_value = float(i2["levels"][j] if fit.tau2.size > 1 else i2["levels"][0])
    else:
        tau2, i2_value = float(np.sum(fit.sigma2)), float(i2["total"])
    base = {
        "method": fit.method, "test": fit.test, "level": fit.level, "k": fit.k,
        "estimate": float(fit.beta[j]), "se": float(fit.se[j]), "zval": float(fit.zval[j]),
        "pval": float(fit.pval[j]), "ci_low": float(fit.ci_low[j]), "ci_high": float(fit.ci_high[j]),
        "df": float(fit.ddf[j]) if fit.test == "t" else None,
        "tau2": tau2, "tau2_se": None, "tau2_ci_low": None, "tau2_ci_high": None, "tau": float(np.sqrt(tau2)),
        "i2": i2_value, "i2_ci_low": None, "i2_ci_high": None, "h2": None,
        "q": fit.QE, "q_df": fit.QE_df, "q_p": fit.QE_p, "pi_low": pred["pi_low"], "pi_high": pred["pi_high"],
        "converged": bool(fit.converged), "iterations": int(fit.iterations), "tau2_ci_low_capped": False,
        "tau2_ci_high_capped": False,
        "warnings": [] if fit.converged else ["the rma.mv optimiser did not converge"],
    }  # fmt: skip
    return pooled_fields(base, settings, unit)


def _components(fit, names, used, dep, profiles=True) -> dict:
    """Variance components with their profile-likelihood CIs (metafor ``confint.rma.mv``) and I² per level."""
    out = {}
    i2 = fit.i2()

    def profile(component, which):
        if not profiles:
            return {}
        try:
            ci = confint(fit, component, which)
        except ValueError as err:
            return {"ci_low": None, "ci_high": None, "note": str(err)}
        return {"ci_low": ci["ci_low"], "ci_high": ci["ci_high"], "ci_low_found": ci["ci_low_found"],
                "ci_high_found": ci["ci_high_found"]}  # fmt: skip

    if fit.struct is None:
        level_names = [*dep.levels, "effect"]
        out["sigma2"] = [
            {"level": name, "formula_level": "/".join(level_names[: i + 1]), "estimate": float(s2),
             "nlevels": int(fit.s_nlevels[i]), "I2": float(i2["levels"][i]), **profile("sigma2", i)}
            for i, (name, s2) in enumerate(zip(level_names, fit.sigma2, strict=True))
        ]  # fmt: skip
        out["I2_total"] = float(i2["total"])
    else:
        tau_names = list(fit.g_levels) if fit.tau2.size > 1 else ["all"]
        out["tau2"] = [{"level": str(name), "estimate": float(t2), "I2": float(i2["levels"][i]), **profile("tau2", i)}
                       for i, (name, t2) in enumerate(zip(tau_names, fit.tau2, strict=True))]  # fmt: skip
        pairs = _rho_pairs(fit)
        out["rho"] = [{"pair": pair, "estimate": float(r), **profile("rho", i)}
                      for i, (pair, r) in enumerate(zip(pairs, fit.rho, strict=True))]  # fmt: skip
    out["typical_vi"] = float(i2["typical_vi"])
    return out


def _rho_pairs(fit):
    levels = [str(x) for x in fit.g_levels]
    if fit.struct == "UN":
        return [f"{levels[a]}, {levels[b]}" for b in range(len(levels)) for a in range(b)]
    return ["all pairs"] * fit.rho.size


def _robust_record(fit, cluster, j, kind, **uni) -> dict:
    try:
        res = robust(fit, cluster, clubSandwich=kind == "CR2", **uni)
    except ValueError as err:
        return {"type": kind, "note": str(err)}
    return {"type": res.vbest, "clusters": int(res.n), "estimate": float(res.beta[j]), "se": float(res.se[j]),
            "df": float(res.dfs[j]), "ci_low": float(res.ci_low[j]), "ci_high": float(res.ci_high[j]),
            "tval": float(res.zval[j]), "pval": float(res.pval[j]),
            "source": "metafor robust(fit, cluster = " + ("..., clubSandwich = TRUE)" if kind == "CR2" else "...)")}


def _clusters(used, dep) -> dict:
    counts = {}
    for depth in range(len(dep.levels)):
        keys = used[list(dep.levels[: depth + 1])].astype(str).agg("\x1f".join, axis=1)
        counts[dep.levels[depth]] = int(keys.nunique())
    return counts


def fit_dependent(effects: pd.DataFrame, settings: Settings, profiles: bool = True) -> dict:
    """pooled.json of a dependent analysis (the usual keys, from its rma.mv or aggregated rma, plus ``dependence``);
    fills ``effects['weight']`` in place (for ``aggregate``: rows alone in their cluster get its weight).
    ``profiles``: the profile-likelihood CIs of the variance components (a dozen refits each)."""
    dep = settings.dependence
    used_mask = effects["included"].to_numpy(dtype=bool)
    used = effects[used_mask].reset_index(drop=True)
    unit = effects.attrs.get("unit")
    cluster = _labels(used[dep.cluster])
    record = {"model": dep.model, "formula": formula(dep, settings), "k_effects": len(used),
              "clusters": _clusters(used, dep), "cluster_column": dep.cluster, "levels": list(dep.levels),
              "vcalc_rho": dep.rho, "shared_controls": dep.shared_controls}  # fmt: skip
    if dep.model == "aggregate":
        labels, y, v = aggregated_effects(used, dep)
        fit = rma(y, v, settings.method, settings.test, settings.level)
        pooled = pooled_record(fit, settings, unit)
        by_cluster = dict(zip(labels.tolist(), fit.weights, strict=True))
        sizes = pd.Series(cluster).value_counts()
        weights = [by_cluster[c] if sizes[c] == 1 else np.nan for c in cluster]
        effects.loc[used_mask, "weight"] = weights
        record["aggregated"] = [{"cluster": c, "yi": float(a), "vi": float(b), "weight": float(w),
                                 "rows": int(sizes[c])} for c, a, b, w in zip(labels, y, v, fit.weights, strict=True)]
        if dep.robust:
            z = rma(y, v, settings.method, "z", settings.level) if dep.robust == "CR1" else fit
            record["robust"] = _robust_record(z, labels, 0, dep.robust, yi=y, vi=v)
        pooled["dependence"] = record
        return pooled
    fit, names, j = fit_mv(used, settings)
    pooled = mv_record(fit, names, j, settings, unit)
    own = np.zeros(len(used), dtype=int) if fit.p == 1 else np.argmax(fit._X, axis=1)
    effects.loc[used_mask, "weight"] = _weights(fit, own)
    record.update(_components(fit, names, used, dep, profiles))
    if dep.model == "multivariate":
        record["struct"], record["inner"] = dep.struct, dep.inner
        record["primary"] = names[j]
        inner = pd.Series(_labels(used[dep.inner])).value_counts()
        record["coefficients"] = [
            {"name": n, "k": int(inner.get(n, 0)), **{key: value for key, value in mv_record(fit, names, i, settings,
             unit).items() if key in COEFFICIENT_KEYS}} for i, n in enumerate(names)
        ]  # fmt: skip
    record.update(QE=fit.QE, QE_df=fit.QE_df, QE_p=fit.QE_p, logLik=fit.logLik, AIC=fit.AIC, BIC=fit.BIC,
                  AICc=fit.AICc, converged=bool(fit.converged))  # fmt: skip
    if settings.test == "knha":
        record["test_note"] = ("metafor 3.8's rma.mv has no Knapp-Hartung adjustment; test knha is run as its "
                               f"test = \"t\" with dfs = \"{dep.dfs}\"")  # fmt: skip
    if dep.robust:
        record["robust"] = _robust_record(fit, cluster, j, dep.robust)
    pooled["dependence"] = record
    return pooled


COEFFICIENT_KEYS = ("estimate", "se", "zval", "pval", "ci_low", "ci_high", "df", "tau2", "i2", "pi_low", "pi_high",
                    "estimate_ratio", "ci_low_ratio", "ci_high_ratio", "estimate_r", "ci_low_r", "ci_high_r")


def estimator_table(effects: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """The estimator sensitivity of a dependent analysis: rma.mv estimates only REML and ML, so REML and ML × z and t
    for multilevel/multivariate; aggregated rows (independent) with every estimator × both tests."""
    dep = settings.dependence
    used = effects[effects["included"].to_numpy(dtype=bool)].reset_index(drop=True)
    unit = effects.attrs.get("unit")
    records = []
    if dep.model == "aggregate":
        _, y, v = aggregated_effects(used, dep)
        for method in METHODS:
            for test in ("z", "knha"):
                records.append(pooled_record(rma(y, v, method, test, settings.level), settings, unit))
        return pd.DataFrame.from_records(records)
    for method in ("REML", "ML"):
        for test in MV_TESTS:
            fit, names, j = fit_mv(used, settings, method, test)
            records.append(mv_record(fit, names, j, settings, unit))
    return pd.DataFrame.from_records(records)


def aggregated_effects(used: pd.DataFrame, dep: Dependence):
    """(clusters, yi, vi): one effect per cluster (in order of first appearance), from the analysis's own V."""
    V = sampling_covariance(used, dep)
    cluster = _labels(used[dep.cluster])
    if not isinstance(V, BlockV):  # independent sampling errors: the inverse-variance mean within each cluster
        V = vcalc(V, cluster, obs=np.arange(len(used)).astype(str), rho=0.0)
    return aggregate(used["yi"].to_numpy(dtype=float), V, cluster)


def without_flagged(effects: pd.DataFrame, settings: Settings, keep: np.ndarray) -> dict:
    """The dependent model on the rows in ``keep`` (the included rows no quality rule flagged)."""
    reduced = effects.copy()
    reduced["included"] = keep
    try:
        pooled = fit_dependent(reduced, settings, profiles=False)
    except ValueError as err:
        return {"k": int(keep.sum()), "note": f"the {settings.dependence.model} model cannot be fitted: {err}"}
    return pooled


def participants(used: pd.DataFrame, dep: Dependence) -> tuple[float, float]:
    """Cases and controls counted once per cluster: the controls (shared, or the same people) and the cases as the
    largest group of a cluster, or with ``shared_controls`` summed over its case groups. NaN where a row gives no
    group sizes."""
    cluster = _labels(used[dep.cluster])
    if used["n_cases"].isna().any() or used["n_controls"].isna().any():
        return np.nan, np.nan
    controls = used.groupby(cluster, sort=False)["n_controls"].max().sum()
    if dep.shared_controls:
        group = _labels(used[dep.case_group]) if dep.case_group else np.arange(len(used)).astype(str)
        cases = used.groupby([cluster, group], sort=False)["n_cases"].max().sum()
    else:
        cases = used.groupby(cluster, sort=False)["n_cases"].max().sum()
    return float(cases), float(controls)


def note(dep: Dependence, n_rows: int, n_clusters: int) -> str:
    how = [f"ρ = {dep.rho:g}"] if dep.rho is not None else []
    how += ["the covariance of case groups sharing controls"] if dep.shared_controls else []
    how = " and ".join(how) or "independent sampling errors"
    return (f"dependent effects: these univariate methods ran on the {n_rows} rows aggregated to {n_clusters} "
            f"clusters ({dep.cluster}; metafor aggregate.escalc with {how}), one effect per cluster")


def aggregated_rows(rows: pd.DataFrame, settings: Settings, columns=()) -> pd.DataFrame:
    """One row per cluster for the univariate sensitivity steps: yi/vi aggregated with the analysis's V, the other
    columns from the cluster's first row (``lines`` lists all its lines); ``attrs['dependence_note']`` says so and
    names those of ``columns`` (the analysis's subgroups, moderators, order) whose values differ within a cluster."""
    dep = settings.dependence
    rows = rows.reset_index(drop=True)
    _, y, v = aggregated_effects(rows, dep)
    cluster = _labels(rows[dep.cluster])
    first = ~pd.Series(cluster).duplicated().to_numpy()
    out = rows[first].reset_index(drop=True).copy()
    lines = rows.groupby(cluster, sort=False)["line"].agg(lambda s: " ".join(str(x) for x in s))
    out["lines"] = lines.loc[cluster[first]].to_numpy()
    out["rows"] = pd.Series(cluster).value_counts().loc[cluster[first]].to_numpy()
    crit = dist.norm_ppf(0.5 + settings.level / 200)
    out["yi"], out["vi"] = y, v
    out["ci_low"], out["ci_high"] = y - crit * np.sqrt(v), y + crit * np.sqrt(v)
    out["weight"] = np.nan
    varying = [c for c in dict.fromkeys(columns) if c in rows
               and rows.groupby(cluster, sort=False)[c].nunique(dropna=False).max() > 1]  # fmt: skip
    text = note(dep, len(rows), len(out))
    if varying:
        shown = ", ".join(varying[:8]) + (", ..." if len(varying) > 8 else "")
        text += f"; columns that differ within a cluster take its first row's value: {shown}"
    out.attrs["dependence_note"] = text
    return out
