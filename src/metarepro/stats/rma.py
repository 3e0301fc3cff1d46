"""Random-effects (and equal-effects) meta-analysis, metafor's ``rma()``.

``rma(yi, vi)`` (or ``rma(yi, sei=...)``) fits one meta-analysis; with ``mods=`` it is the meta-regression of
:mod:`metarepro.stats.metareg` (an intercept added, as metafor). ``rma_batch(Y, V)`` fits many intercept-only
models at once: Y and V are (B, K) arrays padded with NaN, and every field of the result is then an array of
length B. The result, :class:`RmaResult`, has metafor's names (``beta``, ``ci_lb``, ``QE``, ``I2``, ...) and
methods (``leave1out()``, ``influence()``, ``regtest()``, ``trimfill()``, ``confint()``, ``predict()``, ...).

Defaults, as metafor: ``method="REML"``, ``test="z"``, ``level=95``. ``test="knha"`` is the
Hartung–Knapp–Sidik–Jonkman adjustment: the variance of the estimate is multiplied by
s² = Σw(y−μ̂)²/(k−1) and tests and CIs use t with k−1 df. The prediction interval follows
``predict.rma``: μ̂ ± crit·√(se² + τ²), crit from z for ``test="z"`` and t(k−1) for ``knha``.
A fit of a single study with ``test="knha"`` uses z instead, as metafor does (a t test would have 0 df),
and says so in ``warnings``.

``warnings`` (a tuple of messages per fit) reports what a reader must know: the z fallback, a τ² or
τ² CI bound that did not converge, a Q-profile bound not found below the search limit (then also
``tau2_ci_lb_capped`` / ``tau2_ci_ub_capped``: the bound is that limit, i.e. "> x"), an ML/REML/PM/EB
estimate on the boundary τ² = 0, an ML/REML likelihood with more than one local maximum (the global one is
reported; the message names a lower one, where metafor's ``rma()`` may stop; see :mod:`metarepro.stats.tau2`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, fields, replace

import numpy as np

from metarepro._core.batch import EPS, Batch, at_tau2, percent_weights
from metarepro._core.dist import special
from metarepro._core.printing import Printable
from metarepro._core.spellings import add_aliases, metafor_spellings
from metarepro.stats import heterogeneity
from metarepro.stats.tau2 import METHODS, Control, estimate_tau2, tau2_se


def per_df(fn, df, *args):
    """``fn(df, *args)`` evaluated once per distinct df (quantile functions cost microseconds per call)."""
    unique, inverse = np.unique(df, return_inverse=True)
    return fn(unique, *args)[inverse]


KNHA_K1 = 'Setting argument test="z" since k=1.'  # metafor's words
GLOBAL_MAXIMUM = (
    "the {method} likelihood has more than one local maximum: the global one over tau2 >= 0 is reported; "
    "a lower one, where metafor's rma() may stop (from its default start), is at {{local:.6g}}"
)


TESTS = ("z", "knha")

# The keys of a single fit's to_dict(), in this order: the contract of pooled.json (older spellings, see ALIASES).
SCALAR_FIELDS = (
    "k", "estimate", "se", "zval", "pval", "ci_low", "ci_high",
    "tau2", "tau2_se", "tau2_ci_low", "tau2_ci_high", "tau", "i2", "i2_ci_low", "i2_ci_high", "h2",
    "q", "q_df", "q_p", "pi_low", "pi_high", "converged", "iterations",
    "tau2_ci_low_capped", "tau2_ci_high_capped", "warnings",
)  # fmt: skip

# older name -> metafor's name (the field); the older names stay readable because pooled.json, its readers (the
# figures, the report, the summary tables) and the diagnostics' tables spell them so
ALIASES = {
    "estimate": "beta", "ci_low": "ci_lb", "ci_high": "ci_ub", "tau2_se": "se_tau2", "tau2_ci_low": "tau2_ci_lb",
    "tau2_ci_high": "tau2_ci_ub", "i2": "I2", "i2_ci_low": "I2_ci_lb", "i2_ci_high": "I2_ci_ub", "h2": "H2",
    "q": "QE", "q_df": "QE_df", "q_p": "QEp", "pi_low": "pi_lb", "pi_high": "pi_ub",
    "tau2_ci_low_capped": "tau2_ci_lb_capped", "tau2_ci_high_capped": "tau2_ci_ub_capped",
}  # fmt: skip


@dataclass(repr=False)  # printing.Printable gives the metafor-like repr
class RmaResult(Printable):
    """One fit of the intercept-only model (scalar fields) or a batch of fits (array fields of length B), with
    metafor's names: ``beta`` the estimate, ``se``, ``zval`` (z, or t for ``knha``), ``pval``, ``ci_lb``/``ci_ub``,
    ``tau2`` and ``se_tau2``, ``I2`` (percent) and ``H2``, ``QE`` on ``QE_df`` = k − 1 df with ``QEp``, the
    Q-profile CIs of τ² and I² (``tau2_ci_lb``... as metafor's ``confint``) and the prediction interval
    ``pi_lb``/``pi_ub`` (metafor's ``predict``); ``weights`` in percent (NaN on padding). ``yi``/``vi`` and
    ``control``: the data and settings of a fit from :func:`rma` (None for a batch), which the diagnostics
    (``leave1out()``, ``influence()``, ``regtest()``, ...) reuse. The older names of ``SCALAR_FIELDS``
    (``estimate``, ``ci_low``, ``q``, ``i2``, ...) read the same values.
    """

    method: str
    test: str
    level: float
    k: np.ndarray
    beta: np.ndarray
    se: np.ndarray
    zval: np.ndarray
    pval: np.ndarray
    ci_lb: np.ndarray
    ci_ub: np.ndarray
    tau2: np.ndarray
    se_tau2: np.ndarray
    tau2_ci_lb: np.ndarray
    tau2_ci_ub: np.ndarray
    tau: np.ndarray
    I2: np.ndarray
    I2_ci_lb: np.ndarray
    I2_ci_ub: np.ndarray
    H2: np.ndarray
    QE: np.ndarray
    QE_df: np.ndarray
    QEp: np.ndarray
    pi_lb: np.ndarray
    pi_ub: np.ndarray
    converged: np.ndarray
    iterations: np.ndarray
    tau2_ci_lb_capped: np.ndarray
    tau2_ci_ub_capped: np.ndarray
    warnings: np.ndarray  # a tuple of str per fit (an object array of them for a batch)
    weights: np.ndarray = field(repr=False)
    yi: np.ndarray | None = field(repr=False, default=None)
    vi: np.ndarray | None = field(repr=False, default=None)
    control: Control | None = field(repr=False, default=None)

    p = 1  # one coefficient, the intercept

    def to_dict(self):
        """Plain Python values (a single fit), in the order of ``pooled.json``."""
        out = {"method": self.method, "test": self.test, "level": self.level}
        for name in SCALAR_FIELDS:
            if name == "warnings":
                if not isinstance(self.warnings, tuple):
                    raise ValueError("to_dict() is for a single fit; index a batch with result[i] first")
                out[name] = list(self.warnings)
                continue
            value = np.asarray(getattr(self, name))
            if value.ndim:
                raise ValueError("to_dict() is for a single fit; index a batch with result[i] first")
            out[name] = value.item()
        return out

    def __getitem__(self, i):
        """The i-th fit of a batch, as a single-fit result."""
        values = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("method", "test", "level", "control") or value is None:
                values[f.name] = value
            elif f.name in ("weights", "yi", "vi"):  # the studies of row i, without the padding
                values[f.name] = value[i][np.isfinite(self.weights[i])]
            else:
                values[f.name] = value[i]
        return RmaResult(**values)

    def __len__(self):
        return int(np.size(self.k))

    # --------------------------------------------------------------------------------------- metafor's methods
    def _data(self):
        if self.yi is None or np.ndim(self.k):
            raise ValueError("this needs a single fit from rma() (it keeps yi and vi); index a batch and refit")
        return self.yi, self.vi

    def _settings(self):
        return {"method": self.method, "test": self.test, "level": self.level, "control": self.control}

    def leave1out(self):
        """metafor's ``leave1out(fit)``: the model refitted without each study (:func:`stats.influence.leave1out`)."""
        from metarepro.stats import influence

        return influence.leave1out(self)

    def cumul(self, order=None, decreasing=False):
        """metafor's ``cumul(fit, order)`` (:func:`stats.influence.cumul`)."""
        from metarepro.stats import influence

        return influence.cumul(self, order=order, decreasing=decreasing)

    def influence(self):
        """metafor's ``influence(fit)``: deletion diagnostics (:func:`stats.influence.influence`)."""
        from metarepro.stats import influence

        return influence.influence(self)

    def baujat(self, influence=None):
        """metafor's ``baujat(fit)`` coordinates (:func:`stats.influence.baujat`)."""
        from metarepro.stats import influence as diagnostics

        return diagnostics.baujat(self, influence=influence)

    def regtest(self, model="rma", predictor="sei"):
        """metafor's ``regtest(fit)``: Egger's test with the fit's τ² method and test (:func:`stats.bias.regtest`)."""
        from metarepro.stats import bias

        return bias.regtest(self, model=model, predictor=predictor)

    def ranktest(self, exact=True):
        """metafor's ``ranktest(fit)``: Begg and Mazumdar's rank correlation test (:func:`stats.bias.ranktest`)."""
        from metarepro.stats import bias

        return bias.ranktest(self, exact=exact)

    def trimfill(self, estimator="L0", side=None):
        """metafor's ``trimfill(fit)`` (:func:`stats.bias.trimfill`); with k0 = 0 the fit itself is the result's fit."""
        from metarepro.stats import bias

        return bias.trimfill(self, estimator=estimator, side=side)

    def confint(self):
        """metafor's ``confint(fit)``: τ², τ, I² (percent) and H² with their Q-profile CIs (computed with the fit;
        NaN for ``EE``, which metafor's confint refuses); see :func:`heterogeneity.confint_table`."""
        self._single("confint()")
        return heterogeneity.confint_table(self.tau2, (self.tau2_ci_lb, self.tau2_ci_ub), self.I2,
                                           (self.I2_ci_lb, self.I2_ci_ub), self.H2)  # fmt: skip

    def predict(self):
        """metafor's ``predict(fit)``: the estimate with its CI and the prediction interval
        β̂ ± crit·√(se² + τ²) (crit from z, or t(k − 1) for ``knha``), as a one-row DataFrame with the columns of
        :meth:`MetaregResult.predict <metarepro.stats.metareg.MetaregResult.predict>`."""
        import pandas as pd

        self._single("predict()")
        return pd.DataFrame({"pred": [self.beta], "se": [self.se], "ci_low": [self.ci_lb], "ci_high": [self.ci_ub],
                             "pi_low": [self.pi_lb], "pi_high": [self.pi_ub]})  # fmt: skip

    def _single(self, what):
        if np.ndim(self.k):
            raise ValueError(f"{what} is for a single fit; index a batch with result[i] first")


add_aliases(RmaResult, ALIASES)


def check_options(method, test, level):
    """Reject an unknown method or test, or a level outside (0, 100), naming the allowed values."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
    if test not in TESTS:
        raise ValueError(f"test must be one of {', '.join(TESTS)}, not {test!r}")
    if not 0 < level < 100:
        raise ValueError(f"level is a percentage between 0 and 100, not {level!r}")


def _warnings(method, test, k, est, het, tau2_ci, maxiter):
    """The messages of each fit (see the module docstring); an object array of tuples.

    Fits with the same conditions share one tuple; only a capped bound's and the global check's messages name
    their row's value.
    """
    low, high = tau2_ci
    boundary = "Q(0) <= k - 1: no positive root" if method in ("PM", "EB") else "the maximum is on the boundary"
    conditions = (
        ((k == 1) & (test == "knha"), KNHA_K1),
        (~est.converged, f"tau2 ({method}) did not converge within maxiter = {maxiter} steps"),
        (~het.converged, "a Q-profile bound of the tau2 CI did not converge"),
        (het.tau2_ci_low_capped, "tau2 CI lower bound not found below the search limit: reported as > {low:.6g}"),
        (het.tau2_ci_high_capped, "tau2 CI upper bound not found below the search limit: reported as > {high:.6g}"),
        (est.boundary, f"tau2 = 0 ({method}): {boundary}"),
        (est.higher_near_zero, f"the {method} likelihood at tau2 = 0 is higher than at the maximum found (0 is none)"),
        (np.isfinite(est.local_tau2), GLOBAL_MAXIMUM.format(method=method)),
    )  # fmt: skip
    formatted = 0b10011000  # the conditions whose message names its row's value
    code = np.zeros(k.shape, dtype=np.int64)
    for bit, (mask, _) in enumerate(conditions):
        code |= np.asarray(mask, dtype=np.int64) << bit
    out = np.empty(k.shape, dtype=object)
    out.fill(())
    for c in np.unique(code[code > 0]):
        texts = tuple(text for bit, (_, text) in enumerate(conditions) if c >> bit & 1)
        for i in np.flatnonzero(code == c):
            values = {"low": low[i], "high": high[i], "local": est.local_tau2[i]}
            out[i] = tuple(t.format(**values) for t in texts) if c & formatted else texts
    return out


def rma_batch(
    yi, vi, method="REML", test="z", level=95, control: Control | None = None, tau2_ci=True, tau2_start=None
) -> RmaResult:
    """Fit B intercept-only meta-analyses at once; ``yi``/``vi`` are (B, K), NaN-padded (or ``yi`` a prepared
    :class:`~metarepro._core.batch.Batch` and ``vi`` None).

    ``tau2_ci=False`` skips the Q-profile CIs of τ² and I² (NaN), for refits that do not report them.
    ``tau2_start``: where the ML/REML search starts (default metafor's HE estimate; leave-one-out refits
    start from the full fit's τ², which is close to every refit's).
    """
    return rma_batch_tests(yi, vi, method, (test,), level, control, tau2_ci, tau2_start)[test]


def rma_batch_tests(
    yi, vi, method="REML", tests=TESTS, level=95, control: Control | None = None, tau2_ci=True, tau2_start=None
) -> dict[str, RmaResult]:
    """:func:`rma_batch` under each of ``tests``, {test: fits}: τ², the weights and heterogeneity are fitted once
    (they do not depend on the test), then each test's standard errors, p-values and intervals."""
    method, level = metafor_spellings(method, level)
    for test in tests:
        check_options(method, test, level)
    control = control or Control()
    batch = yi if isinstance(yi, Batch) else Batch.from_arrays(yi, vi)
    if np.any(batch.k < 1):
        raise ValueError("every meta-analysis in the batch needs at least one study")
    k = batch.k
    df = (k - 1).astype(float)
    fe, est, wt = fit_tau2(batch, method, control, tau2_start)
    tau2 = est.tau2
    het = heterogeneity.heterogeneity(batch, tau2, method, level, control, fe, tau2_ci)
    shared = dict(
        method=method, level=level, k=k, beta=wt.mu, tau2=tau2, se_tau2=tau2_se(batch, method, tau2, fe, wt),
        tau2_ci_lb=het.tau2_ci_low, tau2_ci_ub=het.tau2_ci_high, tau=np.sqrt(tau2), I2=het.i2, I2_ci_lb=het.i2_ci_low,
        I2_ci_ub=het.i2_ci_high, H2=het.h2, QE=het.q, QE_df=df, QEp=het.q_p, converged=est.converged & het.converged,
        iterations=est.iterations, tau2_ci_lb_capped=het.tau2_ci_low_capped,
        tau2_ci_ub_capped=het.tau2_ci_high_capped, weights=percent_weights(batch, tau2),
    )  # fmt: skip
    return {test: _tested(shared, wt, df, test, est, het, control) for test in tests}


def fit_tau2(batch: Batch, method: str, control: Control, tau2_start=None):
    """τ² of each fit of ``batch`` and the sums at it, as :func:`rma_batch_tests` fits them: (the equal-effects sums,
    with Σ log v for the ll(0) check; the :class:`~metarepro.stats.tau2.Tau2Estimate`; the weighted sums at τ²,
    whose ``mu`` is the pooled estimate)."""
    fe = at_tau2(batch, np.zeros(batch.k.shape), level=2)
    est = estimate_tau2(batch, method, control, fe, tau2_start)
    return fe, est, at_tau2(batch, est.tau2) if est.sums is None else est.sums


def _tested(shared: dict, wt, df, test, est, het, control) -> RmaResult:
    """One fit's inference under ``test``: z, or Knapp-Hartung's t(k - 1) with the scaled variance."""
    estimate, k, level, tau2 = shared["beta"], shared["k"], shared["level"], shared["tau2"]
    var = 1 / wt.s
    z_crit = special.ndtri(0.5 + level / 200)
    with np.errstate(divide="ignore", invalid="ignore"):
        if test == "knha":
            s2 = np.where(wt.q <= EPS, 0.0, wt.q / df)
            knha = k > 1  # metafor: a single study is fitted with the z test
            var = np.where(knha, var * s2, var)
            df_t = np.where(knha, df, 1.0)
            crit = np.where(knha, per_df(special.stdtrit, df_t, 0.5 + level / 200), z_crit)
        else:
            crit = np.full(k.shape, z_crit)
        se = np.sqrt(var)
        zval = estimate / se
        if test == "knha":
            pval = np.where(knha, 2 * special.stdtr(df_t, -np.abs(zval)), 2 * special.ndtr(-np.abs(zval)))
        else:
            pval = 2 * special.ndtr(-np.abs(zval))
        pi_half = crit * np.sqrt(var + tau2)
    warnings = _warnings(shared["method"], test, k, est, het, (het.tau2_ci_low, het.tau2_ci_high), control.maxiter)
    return RmaResult(
        test=test, se=se, zval=zval, pval=pval, ci_lb=estimate - crit * se, ci_ub=estimate + crit * se,
        pi_lb=estimate - pi_half, pi_ub=estimate + pi_half, warnings=warnings, **shared,
    )  # fmt: skip


def rma(yi, vi=None, method="REML", test="z", level=95, control: Control | None = None, *, sei=None, mods=None,
        intercept=True, btt=None):
    """Fit one meta-analysis, metafor's ``rma(yi, vi, mods, sei, method, test, level, btt)``.

    ``yi``: the effects; ``vi`` their sampling variances, or ``sei`` their standard errors (vi = sei², as
    metafor). Without ``mods``: the intercept-only model, an :class:`RmaResult`. With ``mods`` (a vector: one
    moderator; a k×m matrix or a DataFrame of numeric columns: m moderators, named by its columns): the
    meta-regression with an intercept added first (metafor's ``intercept=TRUE``), a
    :class:`~metarepro.stats.metareg.MetaregResult`; ``intercept=False`` fits it without one (metafor's
    ``mods = ~ 0 + x``); ``btt`` the coefficients of the omnibus test QM (0-based; default all but the intercept).
    Factors and interactions: build the matrix with :func:`~metarepro.stats.metareg.design_matrix`.
    Defaults as metafor: ``method="REML"``, ``test="z"``, ``level=95``; ``control=None`` is :class:`Control`.
    Studies with a missing value are left out with a warning (metafor's ``na.action = "na.omit"``).
    """
    if (vi is None) == (sei is None):
        raise ValueError("give the sampling variances vi or the standard errors sei (one of them)")
    vi = np.square(np.asarray(sei, dtype=float)) if vi is None else vi
    if mods is not None:
        from metarepro.stats.metareg import model_matrix, rma_mods

        return rma_mods(yi, vi, model_matrix(mods, intercept), method, test, level, control, btt)
    yi, vi = np.asarray(yi, dtype=float), np.asarray(vi, dtype=float)
    if yi.ndim != 1 or vi.ndim != 1:
        raise ValueError("rma() takes 1-D yi and vi; use rma_batch() for many meta-analyses")
    if yi.shape == vi.shape and (missing := np.isnan(yi) | np.isnan(vi)).any():  # metafor's na.action = "na.omit"
        warnings.warn(f"{missing.sum()} studies with NAs omitted from model fitting", stacklevel=2)
        yi, vi = yi[~missing], vi[~missing]
    if not (np.isfinite(yi).all() and np.isfinite(vi).all()):
        raise ValueError("yi and vi must be finite; drop or exclude incomplete rows first")
    fit = rma_batch(yi[None, :], vi[None, :], method, test, level, control)[0]
    if len(yi) == 1:  # metafor sets test = "z" when k = 1 (with KNHA_K1's warning): the fit says the test it used
        fit = replace(fit, test="z")
    return replace(fit, yi=yi, vi=vi, control=control or Control())
