"""The fitted model (RmaMvResult: print, predict, I², to_dict) and its assembly from a solution."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from metarepro._core import dist
from metarepro.stats.mv.likelihood import LOG2PI, evaluate
from metarepro.stats.mv.model import _Model
from metarepro.stats.mv.structures import _interaction


# ---------------------------------------------------------------------------------------------- result
@dataclass
class RmaMvResult:
    """A fitted ``rma.mv`` model; field names follow metafor (``b`` is ``beta``, ``ci_low`` is ``ci.lb``)."""

    method: str
    test: str
    dfs: str
    level: float
    k: int
    p: int
    X_names: list
    beta: np.ndarray
    se: np.ndarray
    zval: np.ndarray
    pval: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    vb: np.ndarray
    ddf: np.ndarray
    btt: np.ndarray
    QM: float
    QM_df: tuple
    QM_p: float
    QE: float
    QE_df: int
    QE_p: float
    sigma2: np.ndarray
    s_nlevels: np.ndarray
    tau2: np.ndarray
    rho: np.ndarray
    G: np.ndarray | None
    g_levels: np.ndarray | None
    struct: str | None
    parms: int
    fit_stats: dict
    converged: bool
    iterations: int
    boundary: list
    scaled_score: float
    # internals for predict/robust/profile
    _model: _Model = field(repr=False)
    _theta: np.ndarray = field(repr=False)
    _yi: np.ndarray = field(repr=False)
    _X: np.ndarray = field(repr=False)

    @property
    def logLik(self):
        return self.fit_stats[self.method]["ll"]

    @property
    def AIC(self):
        return self.fit_stats[self.method]["AIC"]

    @property
    def BIC(self):
        return self.fit_stats[self.method]["BIC"]

    @property
    def AICc(self):
        return self.fit_stats[self.method]["AICc"]

    def marginal_blocks(self):
        """(rows, M) at the estimates, one pair per block size: rows (nb, s) and the marginal covariance M
        (nb, s, s) of each block."""
        out = []
        for grp, M in zip(self._model.groups, self._model.marginal(self._theta), strict=True):
            n = (grp.rows >= 0).sum(axis=1)  # a block's rows come first, then its padding
            out += [(grp.rows[n == s, :s], M[n == s, :s, :s]) for s in np.unique(n)]
        return out

    def predict(self, x=None, tau2_level=None):
        """predict.rma.mv at moderator values x (with the intercept column; default: the intercept-only model's
        estimate): the estimate, its CI, and the prediction interval ± crit·√(se² + Σσ² + τ²), where τ² is the
        model's single τ² or, for HCS/DIAG/UN, ``tau2[tau2_level]`` (0-based; without it the PI is NaN, as
        metafor's). With ``test="t"`` crit uses the smallest df of the coefficients x involves."""
        x = np.ones(1) if x is None else np.asarray(x, dtype=float)
        if x.size != self.p:
            raise ValueError(f"predict() needs {self.p} moderator values (with the intercept), not {x.size}")
        pred = float(x @ self.beta)
        se = float(np.sqrt(x @ self.vb @ x))
        crit = self._crit(float(np.min(self.ddf[x != 0])) if self.test == "t" else None)
        extra = float(np.sum(self.sigma2))
        if self.struct is not None:
            if self.tau2.size == 1:
                extra += float(self.tau2[0])
            elif tau2_level is not None:
                extra += float(self.tau2[tau2_level])
            else:
                extra = np.nan
        half = crit * np.sqrt(se**2 + extra)
        return {
            "pred": pred,
            "se": se,
            "ci_low": pred - crit * se,
            "ci_high": pred + crit * se,
            "pi_low": pred - half,
            "pi_high": pred + half,
        }

    def _crit(self, df):
        q = 0.5 + self.level / 200
        return float(dist.norm_ppf(q) if df is None else dist.t_ppf(q, df))

    def i2(self):
        """I² of Viechtbauer's FAQ ("I² for multilevel and multivariate models") with the typical sampling
        variance (k−p)/tr P, P = W − WX(X'WX)⁻¹X'W, W = V⁻¹: for nested intercepts 100·σ²_l/(Σσ² + typical) per
        level and 100·Σσ²/(Σσ² + typical) in total; for a ~ inner | outer model 100·τ²_j/(τ²_j + typical)."""
        if self.struct is not None and self.sigma2.size:
            raise ValueError("i2() is defined for nested intercepts or for a ~ inner | outer term, not both")
        model = self._model
        trW = 0.0
        XtWX = np.zeros((self.p, self.p))
        XtWWX = np.zeros((self.p, self.p))
        for grp in model.groups:
            X = grp.X
            W = np.linalg.inv(grp.V)
            WX = W @ X
            trW += float(np.sum(np.diagonal(W, axis1=1, axis2=2)[grp.rows >= 0]))  # not the padding's 1s
            XtWX += np.einsum("bsi,bsj->ij", X, WX)
            XtWWX += np.einsum("bsi,bsj->ij", WX, WX)
        trP = trW - float(np.trace(np.linalg.solve(XtWX, XtWWX)))
        typical = (self.k - self.p) / trP
        if self.struct is not None:
            return {"levels": 100 * self.tau2 / (self.tau2 + typical), "typical_vi": typical}
        total = float(np.sum(self.sigma2))
        return {
            "total": 100 * total / (total + typical),
            "levels": 100 * self.sigma2 / (total + typical),
            "typical_vi": typical,
        }

    def to_dict(self):
        out = {
            "method": self.method,
            "test": self.test,
            "dfs": self.dfs,
            "level": self.level,
            "k": self.k,
            "p": self.p,
            "struct": self.struct,
        }
        for name in (
            "X_names",
            "beta",
            "se",
            "zval",
            "pval",
            "ci_low",
            "ci_high",
            "vb",
            "ddf",
            "sigma2",
            "s_nlevels",
            "tau2",
            "rho",
            "G",
            "g_levels",
        ):
            v = getattr(self, name)
            out[name] = None if v is None else np.asarray(v).tolist()
        out.update(
            QM=self.QM,
            QM_df=list(self.QM_df),
            QM_p=self.QM_p,
            QE=self.QE,
            QE_df=self.QE_df,
            QE_p=self.QE_p,
            parms=self.parms,
            fit_stats=self.fit_stats,
            converged=self.converged,
            iterations=self.iterations,
            boundary=self.boundary,
        )
        return out

    def __str__(self):
        lines = [f"Multivariate Meta-Analysis Model (k = {self.k}; method: {self.method})", ""]
        fs = self.fit_stats[self.method]
        lines.append("  logLik   Deviance        AIC        BIC       AICc")
        lines.append(f"{fs['ll']:8.4f} {fs['dev']:10.4f} {fs['AIC']:10.4f} {fs['BIC']:10.4f} {fs['AICc']:10.4f}")
        lines += ["", "Variance Components:", ""]
        for i, s2 in enumerate(self.sigma2):
            lines.append(f"sigma^2.{i + 1}  {s2:.4f}  sqrt {np.sqrt(s2):.4f}  nlvls {int(self.s_nlevels[i])}")
        if self.struct is not None:
            lines.append(f"outer factor, struct {self.struct}; inner levels: {', '.join(map(str, self.g_levels))}")
            for lv, t2 in zip(self.g_levels if self.tau2.size > 1 else ["all"], self.tau2, strict=True):
                lines.append(f"tau^2 ({lv})  {t2:.4f}  sqrt {np.sqrt(t2):.4f}")
            if self.rho.size:
                lines.append("rho  " + "  ".join(f"{r:.4f}" for r in self.rho))
        if self.boundary:
            lines.append(f"(variance component(s) {self.boundary} estimated at the boundary 0)")
        lines += [
            "",
            f"Test for Residual Heterogeneity:\nQE(df = {self.QE_df}) = {self.QE:.4f}, p-val = {self.QE_p:.4g}",
        ]
        if self.p > 1 or self.btt.size and self.X_names[0] != "intrcpt":
            df = f"df1 = {self.QM_df[0]}, df2 = {self.QM_df[1]}" if self.test == "t" else f"df = {self.QM_df[0]}"
            stat = "F" if self.test == "t" else "QM"
            lines.append(
                f"\nTest of Moderators (coefficients {', '.join(str(b + 1) for b in self.btt)}):\n"
                f"{stat}({df}) = {self.QM:.4f}, p-val = {self.QM_p:.4g}"
            )
        lines += ["", "Model Results:", ""]
        lines.append(
            f"{'':12s} {'estimate':>9s} {'se':>8s} {'tval' if self.test == 't' else 'zval':>8s} "
            f"{'df' if self.test == 't' else '':>4s} {'pval':>8s} {'ci.lb':>8s} {'ci.ub':>8s}"
        )
        for i, name in enumerate(self.X_names):
            df = f"{self.ddf[i]:4.0f}" if self.test == "t" else "    "
            lines.append(
                f"{name:12.12s} {self.beta[i]:9.4f} {self.se[i]:8.4f} {self.zval[i]:8.4f} {df} "
                f"{self.pval[i]:8.4g} {self.ci_low[i]:8.4f} {self.ci_high[i]:8.4f}"
            )
        if not self.converged:
            lines.append("\nWARNING: the optimiser did not converge (see .converged, .scaled_score)")
        return "\n".join(lines)

    __repr__ = __str__


def _contain_ddf(X, sigma_codes, gspec, k, p):
    """metafor's dfs = "contain": per coefficient, the fewest levels of a grouping its column is constant within."""
    facs = list(sigma_codes)
    if gspec is not None:
        facs.append(_interaction([gspec.inner, gspec.outer]))
        facs.append(gspec.outer)
    ddf = np.full(p, float(k))
    for j in range(p):
        best = []
        for f in facs:
            pairs = np.unique(np.stack([f, X[:, j]], axis=1), axis=0)
            if pairs.shape[0] == np.unique(f).size:  # one value of X[:, j] per level
                best.append(np.unique(f).size)
        if best:
            ddf[j] = min(best)
    return np.maximum(ddf - p, 1)


def _result(model, fit, sigma_codes, yi, X, X_names, method, test, dfs, level, btt):
    k, p = model.k, model.p
    ev = fit.ev
    theta = fit.theta
    vb = np.linalg.inv(ev.XtWX)
    vb = (vb + vb.T) / 2
    beta = ev.beta
    se = np.sqrt(np.diag(vb))
    zval = beta / se
    intercept = np.all(X[:, 0] == 1)
    btt = np.arange(1 if (intercept and p > 1) else 0, p) if btt is None else np.asarray(btt, dtype=int)
    m = btt.size
    QM = float(beta[btt] @ np.linalg.solve(vb[np.ix_(btt, btt)], beta[btt]))
    q = 0.5 + level / 200
    if test == "t":
        ddf = np.full(p, float(k - p)) if dfs == "residual" else _contain_ddf(X, sigma_codes, model.gspec, k, p)
        ddf = np.maximum(ddf, 1)
        QM /= m
        QM_df = (m, float(np.min(ddf[btt])))
        QM_p = float(dist.f_sf(QM, m, QM_df[1]))
        pval = 2 * dist.t_sf(np.abs(zval), ddf)
        crit = dist.t_ppf(q, ddf)
    else:
        ddf = np.full(p, np.nan)
        QM_df = (m, np.nan)
        QM_p = float(dist.chi2_sf(QM, m))
        pval = 2 * dist.norm_sf(np.abs(zval))
        crit = dist.norm_ppf(q)
    # QE and the saturated log-likelihood use V alone
    fe = evaluate(model, [g.V for g in model.groups])
    QE_df = k - p
    QE = np.nan
    ll_qe = np.nan
    if fe is not None:
        logdetV = 0.0
        rss = 0.0
        for grp in model.groups:
            y, Xb, Vg = grp.y, grp.X, grp.V
            logdetV += float(np.sum(np.linalg.slogdet(Vg)[1]))
            r = y - Xb @ fe.beta
            rss += float(np.sum(r * np.linalg.solve(Vg, r[..., None])[..., 0]))
        QE = rss
        ll_qe = -0.5 * k * LOG2PI - 0.5 * logdetV
    QE_p = float(dist.chi2_sf(QE, QE_df)) if QE_df > 0 else 1.0
    if QE_df <= 0:
        QE = 0.0
    gs = model.gspec
    sigma2 = np.exp(theta[: model.n_sigma])
    tau2 = rho = np.zeros(0)
    G = g_levels = None
    if gs:
        tau2, rho = gs.natural(theta[model.n_sigma :])
        G = gs.G(theta[model.n_sigma :])
        g_levels = gs.levels
    nfree = int(np.sum(fit.free))
    parms = p + nfree
    llm, llr = ev.ll_ml, ev.ll_reml
    dev_ml = -2 * (llm - ll_qe) if np.all(_vdiag_pos(model)) else -2 * llm
    fit_stats = {"ML": _criteria(llm, dev_ml, parms, k), "REML": _criteria(llr, -2 * llr, parms, k - p)}
    return RmaMvResult(
        method=method,
        test=test,
        dfs=dfs,
        level=level,
        k=k,
        p=p,
        X_names=list(X_names),
        beta=beta,
        se=se,
        zval=zval,
        pval=pval,
        ci_low=beta - crit * se,
        ci_high=beta + crit * se,
        vb=vb,
        ddf=ddf,
        btt=btt,
        QM=QM,
        QM_df=QM_df,
        QM_p=QM_p,
        QE=float(QE),
        QE_df=QE_df,
        QE_p=QE_p,
        sigma2=sigma2,
        s_nlevels=np.array([np.unique(c).size for c in sigma_codes]),
        tau2=tau2,
        rho=rho,
        G=G,
        g_levels=g_levels,
        struct=gs.struct if gs else None,
        parms=parms,
        fit_stats=fit_stats,
        converged=fit.converged,
        iterations=fit.iterations,
        boundary=fit.boundary,
        scaled_score=fit.scaled_score,
        _model=model,
        _theta=theta,
        _yi=yi,
        _X=X,
    )


def _criteria(ll, dev, parms, n):
    """metafor's fit statistics; n is k for ML and k − p for REML."""
    nn = max(n, parms + 2)
    return {"ll": ll, "dev": dev, "AIC": -2 * ll + 2 * parms, "BIC": -2 * ll + parms * np.log(n),
            "AICc": -2 * ll + 2 * parms * nn / (nn - parms - 1)}  # fmt: skip


def _vdiag_pos(model):
    return np.concatenate([np.diagonal(g.V, axis1=1, axis2=2).ravel() for g in model.groups]) > 0
