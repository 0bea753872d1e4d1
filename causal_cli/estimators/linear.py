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


#: the heteroskedasticity-consistent covariance flavours :func:`hc_covariance` knows
HC_KINDS = ("hc1", "hc2", "hc3")


def leverage(design: np.ndarray) -> np.ndarray:
    """Diagonal of the hat matrix ``Z (Z'Z)^-1 Z'``: each row's pull on its own fitted value."""
    bread = np.linalg.pinv(design.T @ design)
    return np.einsum("ij,jk,ik->i", design, bread, design)


def hc_covariance(design: np.ndarray, residuals: np.ndarray, kind: str = "hc2") -> np.ndarray:
    """HC1, HC2 or HC3 sandwich covariance (MacKinnon & White 1985; HC2 is Lin 2013's choice).

    HC2 scales each squared residual by ``1 / (1 - h_i)`` and HC3 by ``1 / (1 - h_i)^2``: high-leverage
    rows are fitted too closely, and HC1's global ``n / (n - p)`` does not undo that row by row.
    """
    if kind == "hc1":
        return robust_covariance(influence(design, residuals))
    h = np.clip(leverage(design), 0.0, 1.0 - 1e-12)
    scaled = residuals / (np.sqrt(1.0 - h) if kind == "hc2" else 1.0 - h)
    infl = influence(design, scaled)
    return infl.T @ infl / design.shape[0] ** 2
