"""Least squares with per-row influence functions: the sandwich (robust) covariance and delta method.

The influence of row i on OLS coefficients is ``(X'X/n)^-1 x_i e_i``; their outer-product average
over n gives the HC0 covariance, and sums of them carry several regressions fitted on the same
rows into one delta-method variance (their covariance included).
"""

from __future__ import annotations

import numpy as np


def least_squares(design: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients and residuals of ``y`` (one or more columns) on ``design``."""
    coef = np.linalg.lstsq(design, y, rcond=None)[0]
    return coef, y - design @ coef


def influence(design: np.ndarray, residuals: np.ndarray) -> np.ndarray:
    """Per-row influence of each coefficient, shape (n, p): ``x_i e_i (X'X/n)^-1``."""
    n = design.shape[0]
    bread = np.linalg.pinv(design.T @ design / n)
    return (design * residuals[:, None]) @ bread


def robust_covariance(infl: np.ndarray) -> np.ndarray:
    """HC1 sandwich covariance from influence rows (HC0 times n / (n - p))."""
    n, p = infl.shape
    return infl.T @ infl / n**2 * n / max(n - p, 1)
