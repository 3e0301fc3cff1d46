"""A binomial-logit GLMM with independent per-study random effects, fitted by maximum likelihood as lme4's ``glmer``
defines the likelihood (what ``rma.glmm`` calls for every model but CM.EL).

Rows (one binomial count each) belong to groups (studies); row r has linear predictor
``eta_r = X_r·beta + offset_r + Σ_j Z_rj·theta_j·u_gj`` with spherical random effects ``u_g ~ N(0, I_q)`` and
standard deviations ``theta`` (lme4's θ; the variances are θ²). The marginal log-likelihood of a group is the
integral over ``u_g``, approximated as lme4 approximates it:

* ``nagq = 1``: the Laplace approximation at the conditional mode ``u0`` (found here by Newton's method to full
  precision; lme4's PIRLS stops at ``tolPwrss``): ``f(u0) - ½·log det H``, with ``f`` the conditional
  log-likelihood minus ``|u|²/2`` and ``H = -f''(u0)`` (for the canonical logit link lme4's ``L Lᵀ`` is exactly ``H``);
* ``nagq > 1`` (q = 1 only, as in lme4): adaptive Gauss-Hermite quadrature with nodes ``u0 + z_k/√H``:
  ``f(u0) - ½·log H + log Σ_k w_k·exp(f(u_k) - f(u0) + z_k²/2)`` (lme4's ``glmerAGQ``, ``GHrule(nagq)``).

The values are the full log-likelihoods (binomial coefficients included). lme4's ``logLik`` is that with
``nAGQ = 1`` but leaves the saturated binomial log-likelihood out with ``nAGQ > 1`` (-½ of its quadrature
deviance); its ``deviance()`` is the conditional deviance at the modes (:func:`conditional_deviance`).

The optimum is found here to ~1e-10 in the parameters (BFGS on (β, log θ) then Newton steps on a numerical
Hessian); lme4 stops earlier (bobyqa then Nelder-Mead, ``FtolAbs = 1e-5`` by default), so its estimates differ
from this optimum by its stopping error, not by a difference in the likelihood (see tests/stats/test_glmm.py).
The covariance matrix of β is the β block of the inverse Hessian of −loglik in all parameters, as lme4's
``vcov`` (``use.hessian = TRUE``) takes it from its finite-difference Hessian.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from scipy.special import expit, gammaln

from metarepro.stats.glmm._glm import binomial_deviance


@dataclass
class GroupedBinomial:
    x: np.ndarray  # events per row
    n: np.ndarray  # trials per row
    X: np.ndarray  # fixed-effects design (rows × p)
    Z: np.ndarray  # random-effects design (rows × q): the multiplier of each random effect in the row
    group: np.ndarray  # 0-based group (study) of each row
    offset: np.ndarray

    def __post_init__(self):
        self.groups = int(self.group.max()) + 1
        self.log_choose = gammaln(self.n + 1) - gammaln(self.x + 1) - gammaln(self.n - self.x + 1)
        self.last_mode = None  # the previous conditional modes: Newton's start for the next parameters


def _per_group(values, group, G):
    return np.bincount(group, weights=values, minlength=G)


def _f_only(data, eta0, ZT, u):
    """Per group: f(u) = Σ rows log dbinom - |u|²/2 (u: groups × q)."""
    eta = eta0 + np.sum(ZT * u[data.group], axis=1)
    f = _per_group(data.x * eta - data.n * np.logaddexp(0.0, eta) + data.log_choose, data.group, data.groups)
    return f - 0.5 * np.sum(u**2, axis=1)


def _conditional(data, eta0, ZT, u):
    """Per group: f(u), its gradient and the negative Hessian H."""
    G = data.groups
    eta = eta0 + np.sum(ZT * u[data.group], axis=1)
    mu = expit(eta)
    f = _per_group(data.x * eta - data.n * np.logaddexp(0.0, eta) + data.log_choose, data.group, G)
    f = f - 0.5 * np.sum(u**2, axis=1)
    resid, weight = data.x - data.n * mu, data.n * mu * (1 - mu)
    q = ZT.shape[1]
    grad = np.column_stack([_per_group(resid * ZT[:, j], data.group, G) for j in range(q)]) - u
    H = np.empty((G, q, q))
    for i in range(q):
        for j in range(i, q):
            H[:, i, j] = H[:, j, i] = _per_group(weight * ZT[:, i] * ZT[:, j], data.group, G) + (i == j)
    return f, grad, H


def _mode(data, eta0, ZT):
    """Each group's conditional mode of u (Newton with step halving; f is concave)."""
    G, q = data.groups, ZT.shape[1]
    u = np.zeros((G, q)) if data.last_mode is None else data.last_mode
    f, grad, H = _conditional(data, eta0, ZT, u)
    for _ in range(100):
        step = np.linalg.solve(H, grad[..., None])[..., 0]
        scale = np.ones(G)
        for _ in range(60):
            f_new, grad_new, H_new = _conditional(data, eta0, ZT, u + scale[:, None] * step)
            worse = f_new < f - 1e-12 * np.abs(f)
            if not worse.any():
                break
            scale = np.where(worse, scale / 2, scale)
        u = u + scale[:, None] * step
        f, grad, H = f_new, grad_new, H_new
        if np.max(np.abs(step)) < 1e-13:
            break
    data.last_mode = u
    return u, f, H


@functools.cache
def gauss_hermite(nagq: int):
    """Nodes and weights for ∫ g(z) φ(z) dz (lme4's ``GHrule``: probabilists' Hermite, weights summing to 1)."""
    z, w = np.polynomial.hermite_e.hermegauss(nagq)
    return z, w / np.sqrt(2 * np.pi)


def conditional_deviance(data: GroupedBinomial, beta, theta) -> float:
    """lme4's ``deviance()`` of a fitted glmer: Σ of the binomial deviance residuals at the conditional modes
    (metafor's ``rma.glmm`` takes its ML log-likelihood as ``ll.QE - deviance/2``)."""
    eta0 = data.X @ np.asarray(beta, dtype=float) + data.offset
    ZT = data.Z * np.asarray(theta, dtype=float)
    u0 = _mode(data, eta0, ZT)[0]
    return binomial_deviance(data.x, data.n, expit(eta0 + np.sum(ZT * u0[data.group], axis=1)))


def loglik(data: GroupedBinomial, beta, theta, nagq: int = 1) -> float:
    """The approximate marginal log-likelihood Σ_g log ∫ Π_r dbinom(x_r; n_r, μ_r(u)) φ(u) du."""
    theta = np.asarray(theta, dtype=float)
    eta0 = data.X @ np.asarray(beta, dtype=float) + data.offset
    ZT = data.Z * theta
    u0, f0, H = _mode(data, eta0, ZT)
    logdet = np.linalg.slogdet(H)[1]
    if nagq <= 1:
        return float(np.sum(f0 - 0.5 * logdet))
    if ZT.shape[1] != 1:
        raise ValueError("adaptive Gauss-Hermite quadrature (nAGQ > 1) needs a single random effect per study")
    z, w = gauss_hermite(nagq)
    sd = 1 / np.sqrt(H[:, 0, 0])
    terms = np.empty((len(z), data.groups))
    for k, zk in enumerate(z):
        fk = _f_only(data, eta0, ZT, u0 + (sd * zk)[:, None])
        terms[k] = np.log(w[k]) + fk - f0 + zk**2 / 2
    m = terms.max(axis=0)
    return float(np.sum(f0 + np.log(sd) + m + np.log(np.sum(np.exp(terms - m), axis=0))))


def numerical_gradient(fn, x, h=1e-5):
    x = np.asarray(x, dtype=float)
    g = np.empty_like(x)
    for i in range(len(x)):
        step = h * max(1.0, abs(x[i]))
        e = np.zeros_like(x)
        e[i] = step
        g[i] = (fn(x + e) - fn(x - e)) / (2 * step)
    return g


def numerical_hessian(fn, x, h=1e-3):
    """Central second differences with one Richardson step (error O(h⁴)), symmetric."""
    x = np.asarray(x, dtype=float)
    p = len(x)
    f0 = fn(x)

    def at(step):
        H = np.empty((p, p))
        for i in range(p):
            for j in range(i, p):
                ei, ej = np.zeros(p), np.zeros(p)
                ei[i], ej[j] = step[i], step[j]
                if i == j:
                    H[i, i] = (fn(x + ei) - 2 * f0 + fn(x - ei)) / step[i] ** 2
                else:
                    H[i, j] = H[j, i] = (fn(x + ei + ej) - fn(x + ei - ej) - fn(x - ei + ej) + fn(x - ei - ej)) / (
                        4 * step[i] * step[j])
        return H

    step = h * np.maximum(1.0, np.abs(x))
    return (4 * at(step / 2) - at(step)) / 3


def minimize_smooth(objective, start):
    """Minimize a smooth objective to ~1e-10: BFGS on central-difference gradients, then Newton steps with one
    numerical Hessian (near the optimum the iteration converges fast with the Hessian held fixed); returns the
    optimum, the objective there and a fresh Hessian at it (for the covariance matrix)."""
    from scipy.optimize import minimize  # here: importing metarepro stays light (tests/test_imports.py)

    res = minimize(objective, start, jac=lambda v: numerical_gradient(objective, v), method="BFGS",
                   options={"gtol": 1e-8, "maxiter": 2000})  # fmt: skip
    x = res.x
    H = numerical_hessian(objective, x)
    for _ in range(50):
        try:
            step = np.linalg.solve(H, numerical_gradient(objective, x))
        except np.linalg.LinAlgError:  # a diverging coefficient (zero cell): BFGS's point is as far as it goes
            break
        f0, scale = objective(x), 1.0
        while not objective(x - scale * step) <= f0 + 1e-12 * abs(f0):
            scale /= 2
            if scale < 1e-6:
                break
        else:
            x = x - scale * step
        if scale < 1e-6 or np.max(np.abs(step)) < 1e-10:
            break
    return x, objective(x), numerical_hessian(objective, x)


def rx_information(data: GroupedBinomial, beta, theta) -> np.ndarray:
    """lme4's fallback information for β (the inverse of ``pp$unsc()``): X'WX - X'WZ̃(Z̃'WZ̃ + I)⁻¹Z̃'WX at the
    conditional modes (Z̃ = ZΛ), used when the finite-difference Hessian is singular or not positive definite."""
    eta0 = data.X @ np.asarray(beta, dtype=float) + data.offset
    ZT = data.Z * np.asarray(theta, dtype=float)
    u0, _, A = _mode(data, eta0, ZT)
    mu = expit(eta0 + np.sum(ZT * u0[data.group], axis=1))
    w = data.n * mu * (1 - mu)
    schur = data.X.T @ (w[:, None] * data.X)
    for g in range(data.groups):
        rows = data.group == g
        B = ZT[rows].T @ (w[rows, None] * data.X[rows])
        schur -= B.T @ np.linalg.solve(A[g], B)
    return schur


def wald(b, information, tested) -> float:
    """b'·Cov(b)⁻¹·b for the coefficients ``tested`` (indices into the information matrix), with Cov(b)⁻¹ the
    Schur complement of the other parameters' block: the same as inverting the whole information where that is
    possible, and finite where a coefficient diverged (a zero cell: its information is 0 and it adds nothing)."""
    if len(tested) == 0:
        return 0.0
    rest = np.setdiff1d(np.arange(information.shape[0]), tested)
    I_tt = information[np.ix_(tested, tested)]
    I_tr, I_rr = information[np.ix_(tested, rest)], information[np.ix_(rest, rest)]
    return float(b @ (I_tt - I_tr @ np.linalg.solve(I_rr, I_tr.T)) @ b)


@dataclass
class GlmerFit:
    beta: np.ndarray
    theta: np.ndarray
    loglik: float
    vcov: np.ndarray  # of beta (NaN where the information is singular)
    information: np.ndarray  # Hessian of -loglik in (β, log θ), or lme4's RX information in β
    vcov_from: str  # "hessian", or "RX" (lme4's fallback when the Hessian is singular or not positive definite)


def _inverse(matrix, p):
    try:
        inverse = np.linalg.inv(matrix)[:p, :p]
    except np.linalg.LinAlgError:
        return None
    symmetric = (inverse + inverse.T) / 2
    if not np.all(np.isfinite(inverse)) or np.linalg.eigvalsh(symmetric).min() <= 0:
        return None
    return inverse


def glmer(data: GroupedBinomial, nagq: int, beta_start, theta_start) -> GlmerFit:
    """Maximize :func:`loglik` over (β, θ); θ is optimized on the log scale (an interior optimum is assumed,
    as for every fit in the references: θ → 0 would show as a very negative log θ)."""
    p = data.X.shape[1]

    def objective(v):
        return -loglik(data, v[:p], np.exp(v[p:]), nagq)

    start = np.concatenate([np.asarray(beta_start, float), np.log(np.asarray(theta_start, float))])
    v, value, H = minimize_smooth(objective, start)
    beta, theta = v[:p], np.exp(v[p:])
    vcov = _inverse(H, p)
    if vcov is not None:
        return GlmerFit(beta, theta, -value, vcov, H, "hessian")
    info = rx_information(data, beta, theta)
    vcov = _inverse(info, p)
    return GlmerFit(beta, theta, -value, np.full((p, p), np.nan) if vcov is None else vcov, info, "RX")
