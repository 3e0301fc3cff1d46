"""Profile-likelihood CIs of variance components and likelihood-ratio tests (metafor confint, anova)."""

from __future__ import annotations

import numpy as np

from metarepro._core import dist
from metarepro.stats.mv.results import RmaMvResult
from metarepro.stats.mv.solver import MVControl, _solve


# ---------------------------------------------------------------------------------------------- profile CIs, LRT
def _profile_ll(fit: RmaMvResult, index, value_theta, control):
    model = fit._model
    theta0 = np.where(np.isfinite(fit._theta), fit._theta, np.log(control.boundary * model.scale))
    theta0 = theta0.copy()
    theta0[index] = value_theta
    fixed = np.zeros(theta0.size, bool)
    fixed[index] = True
    res = _solve(model, fit.method, theta0, control, fixed)
    return res.ev.ll(fit.method), res.converged


def _component_index(fit, component, which):
    model = fit._model
    if component == "sigma2":
        if not 0 <= which < model.n_sigma:
            raise ValueError(f"sigma2 index {which} out of range (model has {model.n_sigma})")
        return which, "log"
    gs = model.gspec
    if gs is None:
        raise ValueError("the model has no ~ inner | outer term")
    nt = gs.n_var()
    if component == "tau2":
        return model.n_sigma + which, "log"
    if component == "rho":
        if gs.struct == "UN" and which >= gs.m - 1:
            raise ValueError("profile CIs for UN correlations are available for the first inner level's pairs only")
        return model.n_sigma + nt + which, "atanh"
    raise ValueError("component must be 'sigma2', 'tau2' or 'rho'")


def confint(fit: RmaMvResult, component="sigma2", which=0, level=None, control: MVControl | None = None):
    """Profile-likelihood CI of one variance component, as metafor's ``confint.rma.mv`` (``sigma2=``,
    ``tau2=``, ``rho=`` with 0-based ``which``). Bounds are roots of 2(ll̂ − ll_profile) = χ²₁ found by Brent's
    method to 1e-12 relative in θ; a bound not bracketed within the search range is returned as the range end
    with ``*_found=False`` (metafor's lower bound 0 for a variance whose profile stays above the cut)."""
    from scipy import optimize  # for brentq only; slow to import

    control = control or MVControl()
    level = fit.level if level is None else level
    index, kind = _component_index(fit, component, which)
    theta_hat = fit._theta[index]
    at_zero = not np.isfinite(theta_hat)  # a variance estimated at 0: the CI is [0, upper]
    if at_zero:
        theta_hat = np.log(control.boundary * fit._model.scale)
    ll_hat = fit.logLik
    cut = dist.chi2_ppf(level / 100, 1) / 2

    def f(t):
        ll, _ = _profile_ll(fit, index, t, control)
        return ll_hat - ll - cut

    out = {"estimate": float(np.exp(theta_hat) if kind == "log" else np.tanh(theta_hat))}
    if kind == "log":
        # search range: down to the boundary, up to 1e6 times the larger of the estimate and the sampling variances
        lo_end = np.log(control.boundary * fit._model.scale)
        hi_end = max(theta_hat, np.log(fit._model.scale)) + np.log(1e6)
    else:
        lo_end, hi_end = -18.0, 18.0  # |rho| within 1 - 1e-15
    sides = (("low", lo_end), ("high", hi_end))
    if at_zero:
        out.update(estimate=0.0, ci_low=0.0, ci_low_found=True)
        sides = sides[1:]
    for side, end in sides:
        a = theta_hat
        step = 1.0 if kind == "log" else 0.5
        b = a
        found = False
        while b > end if side == "low" else b < end:
            b = max(end, b - step) if side == "low" else min(end, b + step)
            if f(b) > 0:
                found = True
                break
            a = b
            step *= 2
        if found:
            root = optimize.brentq(f, min(a, b), max(a, b), xtol=1e-14, rtol=1e-13, maxiter=200)
        else:
            root = end
        value = np.exp(root) if kind == "log" else np.tanh(root)
        if not found and kind == "log" and side == "low":
            value = 0.0
        out[f"ci_{side}"] = float(value)
        out[f"ci_{side}_found"] = found
    return out


def anova(full: RmaMvResult, reduced: RmaMvResult):
    """Likelihood-ratio test of nested models (metafor ``anova(full, reduced)``): LRT = 2(ll_f − ll_r)."""
    if full.method != reduced.method:
        raise ValueError("both models must be fitted with the same method")
    if full.k != reduced.k or not np.array_equal(full._yi, reduced._yi):
        raise ValueError("both models must be fitted to the same effects")
    if full.method == "REML" and not np.array_equal(full._X, reduced._X):
        raise ValueError("REML likelihoods are comparable only for the same fixed effects; refit with method='ML'")
    df = full.parms - reduced.parms
    if df <= 0:
        raise ValueError("the full model must have more parameters than the reduced one")
    lrt = max(0.0, 2 * (full.logLik - reduced.logLik))
    return {
        "LRT": lrt,
        "df": df,
        "pval": float(dist.chi2_sf(lrt, df)),
        "ll_full": full.logLik,
        "ll_reduced": reduced.logLik,
        "AIC_full": full.AIC,
        "AIC_reduced": reduced.AIC,
    }
