"""The conditional model with exact likelihood (CM.EL): Fisher's noncentral hypergeometric distribution.

Given a study's total events ``t = a + c``, the events ``a`` among the ``m1 = a + b`` treated follow Fisher's
noncentral hypergeometric distribution with odds ratio ``exp(θ)``:

    P(a | θ) = C(m1, a)·C(m2, t - a)·exp(aθ) / Σ_x C(m1, x)·C(m2, t - x)·exp(xθ),  max(0, t - m2) ≤ x ≤ min(t, m1)

computed here exactly in log space (log-binomial coefficients and a log-sum-exp over the whole support; BiasedUrn's
``dFNCHypergeo``, which metafor calls, truncates the sum at ``precision = 1e-10``). As metafor's ``.dnchgi``, θ is
clamped to [log 1e-12, log 1e12] before the pmf is evaluated, so a study whose table has a zero cell has a bounded
conditional maximum.

With random effects θᵢ ~ N(xᵢ'β, τ²) and each study's likelihood ``∫ P(aᵢ | θ) φ(θ; xᵢ'β, τ) dθ``. metafor
integrates with R's ``integrate()`` over (-∞, ∞) (QUADPACK ``qagi``, relative tolerance ``.Machine$double.eps^0.25``
≈ 1.2e-4 by default); here the integrand, log-concave in θ (the log pmf has second derivative -Var(a | θ)), is
integrated by adaptive Gauss-Hermite quadrature with ``NODES`` nodes centred at its mode and scaled by its
curvature there, which agrees with ``integrate(rel.tol = 1e-12)`` to ~1e-13 (tests/stats/test_glmm.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import gammaln

from metarepro.stats.glmm._glmer import gauss_hermite

CLAMP = 12 * np.log(10.0)  # metafor's .dnchgi: logOR limited to [log(10^-12), log(10^12)]
NODES = 40


def _logsumexp(z, axis=0, b=None):
    """log Σ b·exp(z) along ``axis`` (scipy's logsumexp is ~50x slower on these small arrays)."""
    m = np.max(z, axis=axis, keepdims=True)
    e = np.exp(z - m) if b is None else b * np.exp(z - m)
    return np.squeeze(m, axis=axis) + np.log(np.sum(e, axis=axis))


def _lchoose(n, k):
    return gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1)


@dataclass
class Table:
    """One study's conditional distribution: its observed a and the log weights of the support."""

    a: float
    support: np.ndarray
    log_w: np.ndarray

    @classmethod
    def from_cells(cls, a, b, c, d):
        m1, m2, t = a + b, c + d, a + c
        support = np.arange(max(0.0, t - m2), min(t, m1) + 1)
        return cls(float(a), support, _lchoose(m1, support) + _lchoose(m2, t - support))

    def moments(self, theta):
        """log P(a | θ), E(a | θ) and Var(a | θ) for an array of θ (clamped as metafor)."""
        theta = np.clip(np.atleast_1d(np.asarray(theta, dtype=float)), -CLAMP, CLAMP)
        z = self.log_w[:, None] + self.support[:, None] * theta[None, :]
        log_norm = _logsumexp(z)
        prob = np.exp(z - log_norm)
        mean = self.support @ prob
        var = np.maximum((self.support**2) @ prob - mean**2, 0.0)
        log_pmf = self.log_w[self.support == self.a][0] + self.a * theta - log_norm
        return log_pmf, mean, var

    def conditional_mle(self):
        """The θ maximizing P(a | θ) on metafor's clamped range (the saturated model's per-study fit)."""
        if self.a <= self.support[0]:
            return -CLAMP
        if self.a >= self.support[-1]:
            return CLAMP
        theta = 0.0
        for _ in range(200):
            _, mean, var = self.moments(theta)
            step = (self.a - mean[0]) / var[0]
            theta = float(np.clip(theta + step, -CLAMP, CLAMP))
            if abs(step) < 1e-14 * max(1.0, abs(theta)):
                break
        return theta

    def log_marginal(self, mu, tau2):
        """log ∫ P(a | θ) φ(θ; mu, √tau2) dθ by adaptive Gauss-Hermite quadrature."""
        tau2 = float(tau2)
        theta = float(mu)
        for _ in range(100):  # the mode of log P + log φ (concave): Newton; the nodes need it only roughly
            _, mean, var = self.moments(theta)
            step = (self.a - mean[0] - (theta - mu) / tau2) / (var[0] + 1 / tau2)
            theta += step
            if abs(step) < 1e-8 * max(1.0, abs(theta)):
                break
        scale = 1 / np.sqrt(var[0] + 1 / tau2)
        z, w = gauss_hermite(NODES)
        nodes = theta + scale * z
        log_pmf = self.moments(nodes)[0]
        log_phi = -0.5 * np.log(2 * np.pi * tau2) - (nodes - mu) ** 2 / (2 * tau2)
        # ∫ h = s ∫ h(θ0 + s z) dz = s·√(2π) ∫ h(θ0 + s z)·exp(z²/2) φ(z) dz, and w integrate against φ
        return float(np.log(scale) + 0.5 * np.log(2 * np.pi) + _logsumexp(log_pmf + log_phi + z**2 / 2, b=w))


def tables(ai, bi, ci, di) -> list[Table]:
    return [Table.from_cells(*cells) for cells in zip(ai, bi, ci, di, strict=True)]


def loglik_fixed(studies, eta):
    """Σ log P(aᵢ | θᵢ = ηᵢ), its gradient in η and the variances (minus the second derivatives)."""
    parts = [s.moments(e) for s, e in zip(studies, eta, strict=True)]
    ll = sum(float(p[0][0]) for p in parts)
    score = np.array([s.a - p[1][0] for s, p in zip(studies, parts, strict=True)])
    var = np.array([p[2][0] for p in parts])
    return ll, score, var


def loglik_random(studies, mu, tau2):
    return sum(s.log_marginal(m, tau2) for s, m in zip(studies, mu, strict=True))
