"""Is the heterogeneity real? Best linear projection (BLP) of the CATE on the modifiers, and GATES.

Both regress the doubly robust scores, not the learner's predictions, so they test the data's
heterogeneity: BLP (Semenova & Chernozhukov 2021) with HC1 standard errors and a joint Wald test of
all slopes; GATES (Chernozhukov, Demirer, Duflo & Fernandez-Val 2018) averages the scores within
quantile groups of the out-of-fold predicted effect and tests top minus bottom.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def robust_ols(Z: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """OLS coefficients and their HC1 (heteroskedasticity-robust) covariance."""
    n, k = Z.shape
    beta, *_ = np.linalg.lstsq(Z, y, rcond=None)
    resid = y - Z @ beta
    bread = np.linalg.pinv(Z.T @ Z)
    meat = (Z * resid[:, None] ** 2).T @ Z
    return beta, bread @ meat @ bread * n / max(n - k, 1)


def best_linear_projection(M: np.ndarray, names: list[str], scores: np.ndarray, z: float) -> dict[str, Any]:
    from scipy import stats

    Z = np.column_stack([np.ones(M.shape[0]), M])
    beta, cov = robust_ols(Z, scores)
    se = np.sqrt(np.diag(cov))
    terms = []
    for i, name in enumerate(["intercept", *names]):
        terms.append(
            {
                "term": name,
                "coef": float(beta[i]),
                "std_error": float(se[i]),
                "ci_low": float(beta[i] - z * se[i]),
                "ci_high": float(beta[i] + z * se[i]),
                "p_value": float(2 * stats.norm.sf(abs(beta[i] / se[i]))) if se[i] > 0 else None,
            }
        )
    slopes, slope_cov = beta[1:], cov[1:, 1:]
    try:
        statistic = float(slopes @ np.linalg.solve(slope_cov, slopes))
        p_value = float(stats.chi2.sf(statistic, slopes.size))
    except np.linalg.LinAlgError:
        statistic = p_value = None
    return {
        "terms": terms,
        "test": {
            "name": "Wald chi2: all modifier slopes zero",
            "statistic": statistic,
            "df": int(slopes.size),
            "p_value": p_value,
        },
    }


def gates(tau_hat: np.ndarray, scores: np.ndarray, groups: int, z: float, truth=None) -> dict[str, Any]:
    """Group effects by quantile of the predicted effect, and the top-minus-bottom calibration test."""
    from scipy import stats

    ranks = np.argsort(np.argsort(tau_hat, kind="stable"), kind="stable")
    group = ranks * groups // tau_hat.shape[0]
    out = []
    for g in range(groups):
        mask = group == g
        s = scores[mask]
        effect, se = float(s.mean()), float(s.std(ddof=1) / np.sqrt(s.size))
        row = {
            "group": g + 1,
            "n": int(mask.sum()),
            "predicted": float(tau_hat[mask].mean()),
            "effect": effect,
            "std_error": se,
            "ci_low": effect - z * se,
            "ci_high": effect + z * se,
        }
        if truth is not None:
            row["true_effect"] = float(truth[mask].mean())
        out.append(row)
    top, bottom = out[-1], out[0]
    diff = top["effect"] - bottom["effect"]
    diff_se = float(np.hypot(top["std_error"], bottom["std_error"]))
    return {
        "groups": out,
        "top_minus_bottom": {
            "effect": diff,
            "std_error": diff_se,
            "ci_low": diff - z * diff_se,
            "ci_high": diff + z * diff_se,
            "p_value": float(2 * stats.norm.sf(abs(diff) / diff_se)) if diff_se > 0 else None,
        },
    }
