"""Generalized linear (mixed-effects) models for 2×2 tables and proportions: metafor 3.8-1's ``rma.glmm()``.

>>> fit = rma_glmm(ai=[4, 6, 3], bi=[119, 300, 228], ci=[11, 29, 11], di=[128, 274, 209], measure="OR")
>>> fit.model, fit.method
('UM.FS', 'ML')

Models (metafor's names; ``X`` is the intercept, moderators are not supported yet):

* ``measure="OR"``, ``model="UM.FS"`` (default): unconditional logistic model with fixed study effects, one
  binomial count per group; ``method="EE"`` is the plain logistic regression (R's ``glm``); ``method="ML"`` adds
  a random treatment effect ``bᵢ·gᵢⱼ`` (gᵢⱼ = ±½, metafor's ``coding = 1/2``) with ``bᵢ ~ N(0, τ²)``, fitted as
  ``lme4::glmer(nAGQ = 7)`` (adaptive Gauss-Hermite quadrature; metafor's default ``nAGQ = 7``).
* ``model="UM.RS"``: random study effects ``N(0, σ²)`` instead of fixed ones: ``glmer((1 | study), nAGQ = 7)``
  for ``EE``; with ``ML`` also the random treatment effect (uncorrelated, ``cor = FALSE``), which lme4 can fit only
  by the Laplace approximation (``nAGQ = 1``; metafor warns and sets it).
* ``model="CM.EL"``: conditional model with the exact likelihood (Fisher's noncentral hypergeometric distribution
  of aᵢ given the study's total events); with ``ML`` the log odds ratios are N(β, τ²) and each study's likelihood is
  integrated over them (see :mod:`metarepro.stats.glmm._nchg`).
* ``model="CM.AL"``: conditional model with the approximate likelihood: aᵢ ~ Binomial(aᵢ + cᵢ, πᵢ),
  logit πᵢ = log(n1ᵢ/n2ᵢ) + θᵢ (glm for ``EE``; ``glmer((1 | study), nAGQ = 7)`` for ``ML``).
* ``measure="PLO"``: the binomial-normal model for proportions, logit πᵢ = β + uᵢ, ``glmer((1 | study), nAGQ = 7)``.

Results use metafor's names (``ci.lb`` → ``ci_lb``, ``QE.Wld`` → ``QE_Wld``): the Wald and likelihood-ratio tests
of heterogeneity compare the model without random effects (``ll.FE``) with the saturated model (``ll.QE``); for
the glmer-based ML fits metafor's log-likelihood is ``ll.QE - deviance/2`` with lme4's conditional deviance
(:func:`_glmer.conditional_deviance`), for UM.RS lme4's ``logLik``. I² and H² are metafor's for GLMMs:
``I² = 100·τ²/(τ² + vt)``, ``vt = (k - p)/tr(P)`` from the studies' escalc yi, vi (``add = 1/2`` to tables with a
zero cell, ``to = "only0"``; double-zero tables have none, ``drop00 = True``).

How exact (tests/stats/test_glmm.py, against metafor 3.8-1 / lme4 1.1-31): the EE fits by glm and the saturated fits
behind QE.Wld and QE.LRT reproduce R's glm iteration (observed 7e-15 in β and se, 6e-13 in QE.Wld); CM.EL's
likelihood at fixed parameters agrees with metafor's ``.dnchg`` to 5e-12. Where lme4 fits the model the
likelihood is lme4's (adaptive quadrature: the same value at lme4's estimates to 1e-12; UM.RS's Laplace: 9e-8), but the
optimum here is exact (~1e-10) while lme4 stops by its own rules (bobyqa, then Nelder-Mead with ``FtolAbs =
1e-5``): with metafor's default control the largest differences are 3.5e-4 relative in β (0.0015 se), 8.8e-4 in
τ², 3.7e-3 in se (UM.RS's Laplace fit: lme4's finite-difference Hessian), and lme4's log-likelihood is never
higher than ours. CM.EL's β, τ² agree with metafor's nlminb to its stopping rule (8e-7); its se and QE.Wld come
from numDeriv Hessians that amplify BiasedUrn's 1e-10 truncation (se 1.4e-4, QE.Wld 268.6 against 163.1 here
on dat.bcg; with metafor's exact pmf, ``dnchgcalc = "dnoncenhypergeom"``, 8e-7 and 1e-3).

Not (yet) as metafor: moderators (``mods``), ``cor = TRUE`` for UM.RS, ``coding`` other than 1/2, measures RR, RD,
PR, PLN, IRR, IRLN; a τ² on the boundary shows as ~1e-12 rather than lme4's 0; metafor's warning that the CM.EL
standard errors look unusually small or large (a comparison with a Peto fit) is not issued.

The yi, vi for I² are computed here (``_escalc``) until the binary-outcome effect sizes (``effects_binary``,
another branch) land; then they should come from there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from metarepro._core import dist
from metarepro._core.printing import SIGNIF, Printable, _f, _p, _stars, _table
from metarepro.stats.glmm import _nchg
from metarepro.stats.glmm._glm import binomial_loglik, glm_binomial
from metarepro.stats.glmm._glmer import GroupedBinomial, conditional_deviance, glmer, loglik, minimize_smooth, wald

MODELS = ("UM.FS", "UM.RS", "CM.EL", "CM.AL")
GLMM_MEASURES = ("OR", "PLO")
MODEL_TYPES = {"UM.FS": "Unconditional Model with Fixed Study Effects",
               "UM.RS": "Unconditional Model with Random Study Effects",
               "CM.AL": "Conditional Model with Approximate Likelihood",
               "CM.EL": "Conditional Model with Exact Likelihood"}  # fmt: skip


@dataclass(repr=False)
class RmaGlmmResult(Printable):
    """A fitted ``rma.glmm`` model with metafor's field names (``fit_stats``: ll, dev, AIC, BIC, AICc, ML)."""

    measure: str
    model: str
    method: str
    test: str
    level: float
    nAGQ: int
    k: int
    p: int
    beta: np.ndarray
    se: np.ndarray
    zval: np.ndarray
    pval: np.ndarray
    ci_lb: np.ndarray
    ci_ub: np.ndarray
    vb: np.ndarray
    tau2: float
    se_tau2: float
    sigma2: float
    I2: float
    H2: float
    vt: float
    QE_Wld: float
    QEp_Wld: float
    QE_LRT: float
    QEp_LRT: float
    QE_df: int
    QM: float
    QMp: float
    k_eff: int
    parms: int
    fit_stats: dict
    yi: np.ndarray
    vi: np.ndarray
    optimum: float  # the maximized (approximate) log-likelihood of the ML model, binomial constants included
    warnings: tuple = field(default=())

    def __str__(self) -> str:
        return glmm_text(self)


def glmm_text(fit: RmaGlmmResult) -> str:
    """metafor's ``print.rma.glmm`` (intercept-only models)."""
    if fit.method == "EE":
        lines = [f"Equal-Effects Model (k = {fit.k})"]
    else:
        lines = [f"Random-Effects Model (k = {fit.k}; tau^2 estimator: {fit.method})"]
    if fit.measure == "OR":
        lines.append(f"Model Type: {MODEL_TYPES[fit.model]}")
    lines.append("")
    if fit.method != "EE":
        se = "" if math.isnan(fit.se_tau2) else f" (SE = {_f(fit.se_tau2)})"
        lines += [f"tau^2 (estimated amount of total heterogeneity): {_f(fit.tau2)}{se}",
                  f"tau (square root of estimated tau^2 value):      {_f(math.sqrt(fit.tau2))}",
                  f"I^2 (total heterogeneity / total variability):   {_f(fit.I2)}%",
                  f"H^2 (total variability / sampling variability):  {_f(fit.H2)}", ""]  # fmt: skip
    if not math.isnan(fit.sigma2):
        lines += [f"sigma^2 (estimated amount of study level variability): {_f(fit.sigma2)}",
                  f"sigma (square root of estimated sigma^2 value):        {_f(math.sqrt(fit.sigma2))}", ""]
    if not (math.isnan(fit.QE_Wld) and math.isnan(fit.QE_LRT)):
        wld, lrt = _f(fit.QE_Wld), _f(fit.QE_LRT)
        width = max(len(wld), len(lrt))
        lines += ["Tests for Heterogeneity:",
                  f"Wld(df = {fit.QE_df}) = {wld.rjust(width)}, p-val {_p(fit.QEp_Wld, sep=True)}",
                  f"LRT(df = {fit.QE_df}) = {lrt.rjust(width)}, p-val {_p(fit.QEp_LRT, sep=True)}", ""]  # fmt: skip
    stat = "tval" if fit.test == "t" else "zval"
    columns = {"estimate": [_f(fit.beta[0])], "se": [_f(fit.se[0])], stat: [_f(fit.zval[0])]}
    if fit.test == "t":
        columns["df"] = [str(fit.k - fit.p)]
    columns.update({"pval": [_p(fit.pval[0])], "ci.lb": [_f(fit.ci_lb[0])], "ci.ub": [_f(fit.ci_ub[0])],
                    "": [_stars(fit.pval[0])]})  # fmt: skip
    lines += ["Model Results:", "", _table(columns), "", SIGNIF]
    return "\n".join(lines)


# ---- input --------------------------------------------------------------------------------------------------


def _counts(name, values, k=None) -> np.ndarray:
    arr = np.asarray(values, dtype=float).ravel()
    if k is not None and len(arr) != k:
        raise ValueError(f"rma_glmm: {name} has {len(arr)} values but the other counts have {k}; give one per study")
    bad = np.flatnonzero(~np.isfinite(arr) | (arr < 0) | (arr != np.round(arr)))
    if len(bad):
        raise ValueError(f"rma_glmm: {name}[{bad[0]}] = {arr[bad[0]]:g} is not a count (a whole number >= 0); "
                         "correct that study's counts")  # fmt: skip
    return arr


def _rest(name, total, part, total_name, part_name):
    if np.any(total < part):
        i = int(np.flatnonzero(total < part)[0])
        raise ValueError(f"rma_glmm: {part_name}[{i}] = {part[i]:g} exceeds {total_name}[{i}] = {total[i]:g}; "
                         "events cannot exceed the group size")  # fmt: skip
    return total - part


def _escalc(measure, cells, add, to):
    """metafor's escalc yi, vi for OR (ai, bi, ci, di) or PLO (xi, mi) with its zero-cell handling ``add``/``to``
    (to be replaced by the binary-outcome effect sizes once they are on main)."""
    cells = [c.copy() for c in cells]
    zero = np.any([c == 0 for c in cells], axis=0)
    if to == "all" or (to == "if0all" and zero.any()):
        cells = [c + add for c in cells]
    elif to == "only0":
        cells = [np.where(zero, c + add, c) for c in cells]
    elif to != "none":
        raise ValueError(f"rma_glmm: to must be one of 'only0', 'all', 'if0all', 'none', not {to!r}")
    with np.errstate(divide="ignore", invalid="ignore"):
        if measure == "OR":
            a, b, c, d = cells
            return np.log(a * d / (b * c)), 1 / a + 1 / b + 1 / c + 1 / d
        x, m = cells
        return np.log(x / m), 1 / x + 1 / m


def _vt(vi, p):
    """metafor's 'typical' within-study variance for I² of a GLMM: (k - p)/tr(P), P = W - WX(X'WX)⁻¹X'W."""
    w = 1 / vi
    return (len(vi) - p) / (np.sum(w) - np.sum(w**2) / np.sum(w))


# ---- the models ------------------------------------------------------------------------------------------------


def _dummies(k, rows_per_study):
    return np.kron(np.eye(k), np.ones((rows_per_study, 1)))


def _wald(b2, vb2) -> float:
    if len(b2) == 0:
        return 0.0
    return float(b2 @ np.linalg.solve(vb2, b2))


def _per_study(measure, cells):
    """One binomial count per study (CM.AL, CM.EL's starting glm, PLO): events, trials, offset."""
    if measure == "PLO":
        x, m = cells
        return x, x + m, np.zeros(len(x))
    a, b, c, d = cells
    return a, a + c, np.log((a + b) / (c + d))


def _per_group(cells):
    """Two binomial counts per study (UM.FS, UM.RS): events, trials, study, group1 (1, 0) and group (½, -½)."""
    a, b, c, d = cells
    k = len(a)
    x, n = np.column_stack([a, c]).ravel(), np.column_stack([a + b, c + d]).ravel()
    return x, n, np.repeat(np.arange(k), 2), np.tile([1.0, 0.0], k), np.tile([0.5, -0.5], k)


def ml_data(measure, model, cells) -> GroupedBinomial:
    """The rows, fixed and random designs of the ML model as metafor passes them to ``glmer``: study dummies and a
    random treatment effect (UM.FS), an intercept, a random study effect and a random treatment effect (UM.RS), a
    random effect per study (CM.AL, PLO). The fixed effects are in lme4's order (X.fit first)."""
    if measure == "PLO" or model in ("CM.AL", "CM.EL"):
        x, n, offset = _per_study(measure, cells)
        k = len(x)
        return GroupedBinomial(x, n, np.ones((k, 1)), np.ones((k, 1)), np.arange(k), offset)
    x, n, study, group1, group12 = _per_group(cells)
    k, zero = len(cells[0]), np.zeros(len(x))
    if model == "UM.FS":
        return GroupedBinomial(x, n, np.column_stack([group1, _dummies(k, 2)]), group12[:, None], study, zero)
    return GroupedBinomial(x, n, np.column_stack([group1, np.ones(2 * k)]), np.column_stack([np.ones(2 * k), group12]),
                           study, zero)  # fmt: skip


def _fit(measure, model, method, cells, nagq):
    """The fits of one model: returns beta, vb, tau2, se_tau2, sigma2, ll_FE, ll_QE, QE_Wld, ll_ML, parms, k_eff."""
    ee = method == "EE"
    out = {"se_tau2": math.nan, "sigma2": math.nan, "tau2": 0.0, "ll_ML": math.nan, "optimum": math.nan}
    k = len(cells[0])
    data = ml_data(measure, model, cells)
    if measure == "PLO" or model in ("CM.AL", "CM.EL"):
        x, n, offset = _per_study(measure, cells)
        X = data.X
        fe = glm_binomial(x, n, X, offset)
        qe = glm_binomial(x, n, np.column_stack([X, np.eye(k)]), offset) if k > 1 else fe
        out.update(ll_FE=fe.loglik, ll_QE=qe.loglik, QE_Wld=_wald(qe.coef[1:], qe.vcov[1:, 1:]), parms=1 + (not ee),
                   k_eff=k)  # fmt: skip
        if model == "CM.EL":
            return {**out, **_cm_el(cells, X, fe.coef, ee)}
        if ee:
            return {**out, "beta": fe.coef, "vb": fe.vcov}
        fit = glmer(data, nagq, fe.coef, [0.5])
        ll = qe.loglik - conditional_deviance(data, fit.beta, fit.theta) / 2
        return {**out, "beta": fit.beta, "vb": fit.vcov, "tau2": float(fit.theta[0] ** 2), "ll_ML": ll,
                "optimum": fit.loglik}
    x, n, study, group1, _ = _per_group(cells)
    interactions = _dummies(k, 2) * group1[:, None]  # study:group1, the saturated model's extra terms
    if model == "UM.FS":
        fe = glm_binomial(x, n, data.X)
        qe = glm_binomial(x, n, np.column_stack([data.X, interactions])) if k > 1 else fe
        out.update(ll_FE=fe.loglik, ll_QE=qe.loglik, QE_Wld=_wald(qe.coef[k + 1:], qe.vcov[k + 1:, k + 1:]),
                   parms=1 + k + (not ee), k_eff=2 * k)  # fmt: skip
        if ee:
            return {**out, "beta": fe.coef[:1], "vb": fe.vcov[:1, :1]}
        fit = glmer(data, nagq, fe.coef, [0.5])
        ll = qe.loglik - conditional_deviance(data, fit.beta, fit.theta) / 2
        return {**out, "beta": fit.beta[:1], "vb": fit.vcov[:1, :1], "tau2": float(fit.theta[0] ** 2), "ll_ML": ll,
                "optimum": fit.loglik}
    # UM.RS: metafor takes lme4's logLik, which with nAGQ > 1 is -½ of the quadrature deviance (the saturated
    # log-likelihood left out) but with nAGQ = 1 the full Laplace log-likelihood (lme4's devcomp "dev" = aic + ussq
    # + ldL2); the LRT is the same either way
    saturated = binomial_loglik(x, n, np.clip(x / n, 1e-300, 1 - 1e-16)) if nagq > 1 else 0.0
    zero, random_study = np.zeros(2 * k), np.ones((2 * k, 1))
    intercept = GroupedBinomial(x, n, data.X, random_study, study, zero)
    fe = glmer(intercept, nagq, glm_binomial(x, n, data.X).coef, [1.0])
    out.update(ll_FE=fe.loglik - saturated, sigma2=float(fe.theta[0] ** 2), parms=1 + 2 + (not ee), k_eff=2 * k,
               ll_QE=math.nan, QE_Wld=math.nan)  # fmt: skip
    if k > 1:
        saturated_fit = glm_binomial(x, n, np.column_stack([data.X, interactions]))  # R drops its aliased column
        X_qe = np.column_stack([data.X, interactions])[:, saturated_fit.columns]
        qe = glmer(GroupedBinomial(x, n, X_qe, random_study, study, zero), nagq, saturated_fit.coef, fe.theta)
        # zero cells: the saturated fit's interaction terms diverge (their information vanishes); the Wald test
        # from the information matrix is then its limit, where metafor's is wherever lme4 stopped
        out.update(ll_QE=qe.loglik - saturated, QE_Wld=wald(qe.beta[2:], qe.information, np.arange(2, len(qe.beta))))
    if ee:
        return {**out, "beta": fe.beta[:1], "vb": fe.vcov[:1, :1]}
    fit = glmer(data, 1, fe.beta, [math.sqrt(out["sigma2"]), 0.5])
    return {**out, "beta": fit.beta[:1], "vb": fit.vcov[:1, :1], "tau2": float(fit.theta[1] ** 2),
            "sigma2": float(fit.theta[0] ** 2), "ll_ML": fit.loglik - saturated, "optimum": fit.loglik}  # fmt: skip


def _cm_el(cells, X, start, ee):
    """CM.EL: the exact conditional likelihood, maximized by Newton's method (EE) and integrated over N(Xβ, τ²)
    log odds ratios (ML); the saturated model is each study's own conditional maximum."""
    studies = _nchg.tables(*cells)
    beta = np.asarray(start, dtype=float)
    for _ in range(100):
        ll, score, var = _nchg.loglik_fixed(studies, X @ beta)
        info = X.T @ (var[:, None] * X)
        step = np.linalg.solve(info, X.T @ score)
        beta = beta + step
        if np.max(np.abs(step)) < 1e-13 * max(1.0, np.max(np.abs(beta))):
            break
    ll_fe, _, var = _nchg.loglik_fixed(studies, X @ beta)
    vb = np.linalg.inv(X.T @ (var[:, None] * X))
    theta = np.array([s.conditional_mle() for s in studies])
    ll_qe, _, v = _nchg.loglik_fixed(studies, theta)
    # Wald test of equal log odds ratios at the per-study maxima: (θ - θ̄_w)' V (θ - θ̄_w), the Schur complement
    # of R's saturated-model Hessian in its study contrasts
    wald = float(np.sum(v * (theta - np.sum(v * theta) / np.sum(v)) ** 2))
    out = {"ll_FE": ll_fe, "ll_QE": ll_qe, "QE_Wld": wald}
    if ee:
        return {**out, "beta": beta, "vb": vb}
    p = X.shape[1]

    def objective(par):
        return -_nchg.loglik_random(studies, X @ par[:p], math.exp(par[p]))

    par, value, H = minimize_smooth(objective, np.concatenate([beta, [math.log(0.01)]]))
    vb_full = np.linalg.inv(H)
    tau2 = math.exp(par[p])
    se_tau2 = math.sqrt(vb_full[p, p]) * tau2 if vb_full[p, p] >= 0 else math.nan
    return {**out, "beta": par[:p], "vb": vb_full[:p, :p], "tau2": tau2, "se_tau2": se_tau2, "ll_ML": -value,
            "optimum": -value}


def rma_glmm(ai=None, bi=None, ci=None, di=None, n1i=None, n2i=None, xi=None, mi=None, ni=None, *, measure,
             model="UM.FS", method="ML", test="z", level=95, nAGQ=7, add=0.5, to="only0", drop00=True,
             ) -> RmaGlmmResult:  # fmt: skip
    """Fit metafor's ``rma.glmm`` (intercept only; see the module docstring for the models).

    ``measure``: "OR" (counts ``ai, bi, ci, di``, or ``ai, ci`` with group sizes ``n1i, n2i``) or "PLO" (``xi`` with
    ``mi`` or ``ni``); no default, as in metafor. ``model``: "UM.FS" (default), "UM.RS", "CM.EL", "CM.AL" (OR only).
    ``method``: "ML" (default) or "EE" ("FE"/"CE" are accepted as metafor's older names). ``test``: "z" (default)
    or "t" (df = k - 1). ``nAGQ``: quadrature points for the glmer fits with one random effect per study (default 7;
    UM.RS with ML always uses 1, as metafor). ``add``, ``to``, ``drop00``: the zero-cell handling for the yi, vi
    behind I² (defaults 1/2, "only0", True); ``drop00=True`` also leaves double-zero tables out of the fit, as
    metafor does (recorded in ``warnings``).
    """
    if measure not in GLMM_MEASURES:
        raise ValueError(f"rma_glmm: measure must be one of {', '.join(GLMM_MEASURES)}, not {measure!r}")
    if model not in MODELS:
        raise ValueError(f"rma_glmm: model must be one of {', '.join(MODELS)}, not {model!r}")
    method = "EE" if method in ("FE", "CE") else method
    if method not in ("EE", "ML"):
        raise ValueError(f"rma_glmm: method must be 'EE' or 'ML' (metafor's rma.glmm), not {method!r}")
    if test not in ("z", "t"):
        raise ValueError(f"rma_glmm: test must be 'z' or 't', not {test!r}")
    if not 0 < level < 100:
        raise ValueError(f"rma_glmm: level must be between 0 and 100 (a percentage), not {level!r}")
    warnings = []
    if measure == "OR":
        if ai is None or ci is None:
            raise ValueError("rma_glmm: measure 'OR' needs ai and ci, with bi and di or with n1i and n2i")
        a = _counts("ai", ai)
        c = _counts("ci", ci, len(a))
        b = _counts("bi", bi, len(a)) if bi is not None else _rest("bi", _counts("n1i", n1i, len(a)), a, "n1i", "ai")
        d = _counts("di", di, len(a)) if di is not None else _rest("di", _counts("n2i", n2i, len(a)), c, "n2i", "ci")
        cells = [a, b, c, d]
        yi, vi = _escalc("OR", cells, add, to)
        if drop00:
            both = ((a == 0) & (c == 0)) | ((b == 0) & (d == 0))
            if both.any():
                yi, vi = yi[~both], vi[~both]
                cells = [v[~both] for v in cells]
                warnings.append(f"studies {', '.join(str(i) for i in np.flatnonzero(both))} (0-based) have no events "
                                "or only events in both groups and were left out (drop00 = True, as metafor)")
        if np.any((cells[0] + cells[1] == 0) | (cells[2] + cells[3] == 0)):
            raise ValueError("rma_glmm: a study has an empty group (ai + bi = 0 or ci + di = 0); remove it")
    else:
        if model != "UM.FS":
            warnings.append("Argument 'model' not relevant for this outcome measure.")
            model = "UM.FS"
        if xi is None:
            raise ValueError("rma_glmm: measure 'PLO' needs xi, with mi or ni")
        x = _counts("xi", xi)
        m = _counts("mi", mi, len(x)) if mi is not None else _rest("mi", _counts("ni", ni, len(x)), x, "ni", "xi")
        if np.any(x + m == 0):
            raise ValueError("rma_glmm: a study has ni = 0; remove it")
        cells = [x, m]
        yi, vi = _escalc("PLO", cells, add, to)
    ok = np.isfinite(yi) & np.isfinite(vi)
    yi, vi = yi[ok], vi[ok]
    k, p = len(cells[0]), 1
    if k < 1 + (method == "ML"):
        raise ValueError(f"rma_glmm: {k} studies are too few for method {method!r} (metafor needs k > p"
                         f"{' + 1' if method == 'ML' else ''})")  # fmt: skip
    nagq = 1 if (model == "UM.RS" and method == "ML") else int(nAGQ)
    if nagq != nAGQ and measure == "OR":
        warnings.append("Not possible to fit RE/ME model='UM.RS' with nAGQ > 1 with glmer(). nAGQ automatically "
                        "set to 1.")  # fmt: skip
    res = _fit(measure, model, method, cells, nagq)
    beta, vb = np.asarray(res["beta"], dtype=float)[:p], np.asarray(res["vb"], dtype=float)[:p, :p]
    tau2 = res["tau2"]
    vt = _vt(vi, p) if len(vi) > p else math.nan
    I2, H2 = 100 * tau2 / (vt + tau2), tau2 / vt + 1

    qe_df = k - p
    wld, lrt = max(res["QE_Wld"], 0.0), max(-2 * (res["ll_FE"] - res["ll_QE"]), 0.0)
    if k > 1 and qe_df > 0:
        qep_wld, qep_lrt = dist.chi2_sf(wld, qe_df), dist.chi2_sf(lrt, qe_df)
    elif k > 1:
        qep_wld = qep_lrt = 1.0
    else:
        wld = lrt = qep_wld = qep_lrt = math.nan
    if math.isnan(res["QE_Wld"]):
        wld = qep_wld = math.nan
    if math.isnan(res["ll_QE"]):
        lrt = qep_lrt = math.nan

    se = np.sqrt(np.diag(vb))
    zval = beta / se
    QM = float(beta @ np.linalg.solve(vb, beta))
    if test == "t":
        pval = 2 * dist.t_sf(np.abs(zval), k - p)
        crit = dist.t_isf((1 - level / 100) / 2, k - p)
        QM, QMp = QM / p, float(dist.f_sf(QM / p, p, k - p))
    else:
        pval = 2 * dist.norm_sf(np.abs(zval))
        crit = dist.norm_isf((1 - level / 100) / 2)
        QMp = float(dist.chi2_sf(QM, p))
    ll = res["ll_FE"] if method == "EE" else res["ll_ML"]
    parms, k_eff = res["parms"], res["k_eff"]
    fit_stats = {"ll": ll, "dev": -2 * (ll - res["ll_QE"]), "AIC": -2 * ll + 2 * parms,
                 "BIC": -2 * ll + parms * math.log(k_eff),
                 "AICc": -2 * ll + 2 * parms * max(k_eff, parms + 2) / (max(k_eff, parms + 2) - parms - 1)}
    return RmaGlmmResult(
        measure=measure, model=model, method=method, test=test, level=level, nAGQ=nagq, k=k, p=p, beta=beta,
        se=se, zval=zval, pval=np.asarray(pval, dtype=float), ci_lb=beta - crit * se, ci_ub=beta + crit * se, vb=vb,
        tau2=tau2, se_tau2=res["se_tau2"], sigma2=res["sigma2"], I2=I2, H2=H2, vt=vt, QE_Wld=wld, QEp_Wld=qep_wld,
        QE_LRT=lrt, QEp_LRT=qep_lrt, QE_df=qe_df, QM=QM, QMp=QMp, k_eff=k_eff, parms=parms, fit_stats=fit_stats,
        yi=yi, vi=vi, optimum=res["optimum"], warnings=tuple(warnings),
    )  # fmt: skip


__all__ = ["GLMM_MEASURES", "MODELS", "RmaGlmmResult", "loglik", "ml_data", "rma_glmm"]
