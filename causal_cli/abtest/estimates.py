"""Effect estimates for a two-arm randomized experiment.

Every estimator returns the two arms' means and their 2x2 covariance (:class:`ArmMeans`); the
absolute difference and the relative lift (delta method, Deng et al. 2018) both follow from it, so a
Welch difference, Lin's regression adjustment (CUPED) and a ratio metric share one set of formulas.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def normal_quantile(level: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(0.5 + level / 2))


def two_sided_p(z: float) -> float:
    from scipy.stats import norm

    return float(2 * norm.sf(abs(z))) if np.isfinite(z) else float("nan")


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its standard error, normal CI at ``level`` and two-sided p-value (H0: 0)."""

    value: float
    std_error: float
    ci_low: float
    ci_high: float
    p_value: float

    @classmethod
    def normal(cls, value: float, std_error: float, level: float) -> Estimate:
        z = normal_quantile(level)
        p = two_sided_p(value / std_error) if std_error > 0 else (0.0 if value != 0 else 1.0)
        return cls(float(value), float(std_error), value - z * std_error, value + z * std_error, p)


@dataclass(frozen=True)
class ArmMeans:
    """Control and treatment means (``mu0``, ``mu1``) and the covariance of the pair."""

    mu0: float
    mu1: float
    cov: np.ndarray  # 2x2: [[var(mu0), cov], [cov, var(mu1)]]

    def difference(self, level: float) -> Estimate:
        var = self.cov[0, 0] + self.cov[1, 1] - 2 * self.cov[0, 1]
        return Estimate.normal(self.mu1 - self.mu0, float(np.sqrt(max(var, 0.0))), level)

    def relative_lift(self, level: float) -> Estimate:
        """mu1 / mu0 - 1 with the delta-method SE: gradient (-mu1 / mu0^2, 1 / mu0)."""
        if self.mu0 == 0:
            nan = float("nan")
            return Estimate(nan, nan, nan, nan, nan)
        grad = np.array([-self.mu1 / self.mu0**2, 1.0 / self.mu0])
        var = float(grad @ self.cov @ grad)
        return Estimate.normal(self.mu1 / self.mu0 - 1.0, float(np.sqrt(max(var, 0.0))), level)


def welch(y: np.ndarray, t: np.ndarray) -> ArmMeans:
    """Difference in means with unequal variances: var(mu_k) = s_k^2 / n_k (Welch's SE)."""
    y0, y1 = y[t == 0], y[t == 1]
    cov = np.diag([np.var(y0, ddof=1) / len(y0), np.var(y1, ddof=1) / len(y1)])
    return ArmMeans(float(np.mean(y0)), float(np.mean(y1)), cov)


def lin(y: np.ndarray, t: np.ndarray, X: np.ndarray, hc: str = "hc2") -> ArmMeans:
    """Lin's (2013) interacted regression adjustment with pre-period covariates (CUPED-style).

    y ~ 1 + t + Xc + t * Xc with Xc = X - mean(X) over both arms; the arm means adjusted to the pooled
    covariate mean are mu0 = b0 and mu1 = b0 + b_t. Robust (HC2 or HC3) covariance: with no covariates
    HC2 reproduces Welch's SE exactly.
    """
    X = np.asarray(X, dtype=float).reshape(len(y), -1)
    Xc = X - X.mean(axis=0)
    t = np.asarray(t, dtype=float)
    Z = np.column_stack([np.ones(len(y)), t, Xc, Xc * t[:, None]])
    ZtZ_inv = np.linalg.pinv(Z.T @ Z)
    beta = ZtZ_inv @ (Z.T @ y)
    resid = y - Z @ beta
    leverage = np.einsum("ij,jk,ik->i", Z, ZtZ_inv, Z)
    power = {"hc2": 1.0, "hc3": 2.0}[hc]
    w = resid**2 / np.clip(1.0 - leverage, 1e-12, None) ** power
    meat = (Z * w[:, None]).T @ Z
    V = ZtZ_inv @ meat @ ZtZ_inv
    A = np.array([[1.0, 0.0], [1.0, 1.0]])  # (mu0, mu1) = A @ (b0, b_t)
    cov = A @ V[:2, :2] @ A.T
    return ArmMeans(float(beta[0]), float(beta[0] + beta[1]), cov)


def ratio(numerator: np.ndarray, denominator: np.ndarray, t: np.ndarray) -> ArmMeans:
    """A ratio metric (sum num / sum den per arm) with the delta-method variance at the randomisation unit.

    var(R_k) = (var(num) - 2 R cov(num, den) + R^2 var(den)) / (n_k * mean(den)^2) (Deng et al. 2018).
    """
    means, variances = [], []
    for arm in (0, 1):
        num, den = numerator[t == arm], denominator[t == arm]
        n, mean_den = len(num), float(np.mean(den))
        r = float(np.sum(num) / np.sum(den))
        c = np.cov(num, den, ddof=1)
        variances.append((c[0, 0] - 2 * r * c[0, 1] + r**2 * c[1, 1]) / (n * mean_den**2))
        means.append(r)
    return ArmMeans(means[0], means[1], np.diag(variances))
