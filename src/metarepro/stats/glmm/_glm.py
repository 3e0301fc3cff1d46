"""A binomial-logit GLM fitted as R's ``glm.fit`` fits it (the fixed-effects and saturated fits of ``rma.glmm``).

The iteration is R's, step for step: start at ``mu = (n·y + 1/2)/(n + 1)``, iteratively reweighted least squares,
stop when ``|dev - dev_old| / (|dev| + 0.1) < 1e-8`` (at most 25 iterations), and the covariance matrix from the
*last iteration's* weights (``summary.glm`` reuses that QR, whose weights precede the final update). Following R
this closely matters where the maximum-likelihood estimate does not exist (a zero cell in a saturated model): the
result is then wherever the iteration stops, and only the same iteration stops at the same place.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import gammaln

EPS = np.finfo(float).eps
_THRESH = 30.0  # R's binomial logit link (src/library/stats/src/family.c) clamps exp(eta) beyond +-30


def logit_inverse(eta):
    """R's ``binomial()$linkinv``: exp(eta) clamped to [EPS, 1/EPS], so mu stays strictly inside (0, 1)."""
    eta = np.asarray(eta, dtype=float)
    tmp = np.exp(np.clip(eta, -_THRESH, _THRESH))
    tmp = np.where(eta < -_THRESH, EPS, np.where(eta > _THRESH, 1 / EPS, tmp))
    return tmp / (1 + tmp)


def _mu_eta(eta):
    opexp = 1 + np.exp(np.clip(eta, -_THRESH, _THRESH))
    return np.where(np.abs(eta) > _THRESH, EPS, (opexp - 1) / opexp**2)


def _ylogy(y, mu):
    return np.where(y > 0, y * np.log(np.where(y > 0, y, 1) / mu), 0.0)


def binomial_deviance(x, n, mu):
    """Σ of R's binomial deviance residuals (``dev.resids``) for x events of n at probabilities mu."""
    y = x / n
    return float(np.sum(2 * n * (_ylogy(y, mu) + _ylogy(1 - y, 1 - mu))))


def binomial_loglik(x, n, mu):
    """Σ log dbinom(x, n, mu), elementwise terms summed (mu strictly inside (0, 1))."""
    mu = np.asarray(mu, dtype=float)
    terms = gammaln(n + 1) - gammaln(x + 1) - gammaln(n - x + 1)
    terms = terms + np.where(x > 0, x * np.log(mu), 0.0) + np.where(n > x, (n - x) * np.log1p(-mu), 0.0)
    return float(np.sum(terms))


def estimable_columns(X, tol=1e-7) -> np.ndarray:
    """Columns kept by R's pivoting QR (``dqrdc2``): a column nearly in the span of the earlier kept ones is
    aliased (its coefficient NA), so of a set of collinear columns the later ones go."""
    X = np.asarray(X, dtype=float)
    keep, basis = [], np.zeros((X.shape[0], 0))
    for j in range(X.shape[1]):
        col = X[:, j]
        resid = col - basis @ (basis.T @ col) if basis.shape[1] else col
        norm = np.linalg.norm(col)
        if norm > 0 and np.linalg.norm(resid) > tol * norm:
            keep.append(j)
            basis = np.column_stack([basis, resid / np.linalg.norm(resid)])
    return np.array(keep, dtype=int)


@dataclass
class GlmFit:
    coef: np.ndarray  # of the estimable columns (R's coef(fit, complete = FALSE))
    vcov: np.ndarray
    columns: np.ndarray  # indices of the estimable columns of the design
    loglik: float
    deviance: float
    mu: np.ndarray
    iterations: int
    converged: bool


def glm_binomial(x, n, X, offset=None, epsilon=1e-8, maxit=25) -> GlmFit:
    """R's ``glm(cbind(x, n - x) ~ -1 + X, offset = offset, family = binomial)``."""
    x, n = np.asarray(x, dtype=float), np.asarray(n, dtype=float)
    columns = estimable_columns(X)
    X = np.asarray(X, dtype=float)[:, columns]
    offset = np.zeros(len(x)) if offset is None else np.asarray(offset, dtype=float)
    y = x / n
    mu = (n * y + 0.5) / (n + 1)
    eta = np.log(mu / (1 - mu))
    dev_old = binomial_deviance(x, n, mu)
    converged, iterations = False, 0
    while iterations < maxit:
        iterations += 1
        mu_eta = _mu_eta(eta)
        z = eta - offset + (y - mu) / mu_eta
        w2 = n * mu_eta**2 / (mu * (1 - mu))
        Xw = X * np.sqrt(w2)[:, None]
        q, r = np.linalg.qr(Xw)
        coef = np.linalg.solve(r, q.T @ (z * np.sqrt(w2)))
        eta = X @ coef + offset
        mu = logit_inverse(eta)
        dev = binomial_deviance(x, n, mu)
        if abs(dev - dev_old) / (abs(dev) + 0.1) < epsilon:
            converged = True
            break
        dev_old = dev
    r_inv = np.linalg.inv(r)
    return GlmFit(coef, r_inv @ r_inv.T, columns, binomial_loglik(x, n, mu), dev, mu, iterations, converged)
