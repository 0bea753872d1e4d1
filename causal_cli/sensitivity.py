"""Always-on sensitivity to an unobserved confounder, in closed form (no simulation, no I/O).

Refuters re-fit the estimator on modified data: they test the estimator and the data, never the
assumption that nothing unmeasured confounds treatment and outcome. This module says how strong such
a confounder would have to be, from one least-squares fit of the outcome on treatment and adjustment
set (Cinelli & Hazlett 2020, "Making sense of sensitivity", JRSS-B):

- the partial R² of the treatment with the outcome, ``t² / (t² + df)``;
- the robustness value ``RV_q = (sqrt(f⁴ + 4 f²) - f²) / 2`` with ``f = q |t| / sqrt(df)``: a
  confounder explaining ``RV`` of the residual variance of both treatment and outcome brings the
  estimate to 0 (q = 1); ``RV_{q,alpha}`` uses ``f = q|t|/sqrt(df) - t*_{1-alpha/2, df-1}/sqrt(df-1)``
  and is the strength that makes the (1 - alpha) CI include 0;
- benchmarks: a confounder ``k`` times as strong as an observed covariate (its partial R² with the
  treatment and with the outcome), with the bound on the bias that implies;
- the E-value (VanderWeele & Ding 2017) of the estimate and of the CI limit nearest 0, for a continuous
  outcome via the standardised effect ``d = estimate / SD(Y | T, X)`` (the residual SD of the same
  fit, as the EValue package recommends; SD(Y) would understate d) and ``RR ≈ exp(0.91 d)``.

The robustness value is exact for the linear regression; for another backdoor estimator it describes the
linear-regression analogue of its adjustment (``regression_estimate`` is reported beside it).
Instrumental-variable and front-door designs rest on other assumptions, so the block says what applies.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: multiples of the strongest observed covariate reported as benchmarks
BENCHMARK_MULTIPLES = (1.0, 2.0, 3.0)

NOT_BACKDOOR = {
    "iv": (
        "instrumental variables: the backdoor robustness value does not apply (unobserved confounding of "
        "treatment and outcome is allowed); the estimate rests instead on the instruments being unconfounded "
        "with the outcome and affecting it only through the treatment (exclusion restriction), which no "
        "refuter or closed-form value here checks"
    ),
    "frontdoor": (
        "front-door adjustment: the backdoor robustness value does not apply (unobserved confounding of "
        "treatment and outcome is allowed); the estimate rests instead on the mediators carrying the whole "
        "effect and on no unobserved confounding of treatment-mediator or mediator-outcome, which no refuter "
        "or closed-form value here checks"
    ),
}


#: from this many degrees of freedom on, :func:`t_quantile` uses the Cornish-Fisher expansion (relative
#: error below 1e-9 there, measured against scipy) instead of importing scipy.special (~0.25 s of a ~2 s run)
T_EXPANSION_DF = 200


def t_quantile(p: float, df: float) -> float:
    """Student t quantile: Cornish-Fisher's expansion in 1/df around the normal quantile for large df
    (Abramowitz & Stegun 26.7.5), scipy's ``stdtrit`` below :data:`T_EXPANSION_DF`."""
    if df < T_EXPANSION_DF:
        from scipy.special import stdtrit

        return float(stdtrit(df, p))
    from statistics import NormalDist

    z = NormalDist().inv_cdf(p)
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    g4 = (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160
    return z + g1 / df + g2 / df**2 + g3 / df**3 + g4 / df**4


def robustness_value(t_stat: float, df: float, q: float = 1.0, alpha: float | None = None) -> float:
    """Cinelli & Hazlett's robustness value RV_q (alpha None) or RV_{q,alpha}, a share in [0, 1]."""
    if not df > 1 or not np.isfinite(t_stat):
        return float("nan")
    f_q = q * abs(t_stat) / np.sqrt(df)
    f_crit = 0.0 if alpha is None else t_quantile(1 - alpha / 2, df - 1) / float(np.sqrt(df - 1))
    f = f_q - f_crit
    if f <= 0:
        return 0.0
    if f_crit > 0 and f_q > 1 / f_crit:
        # the CI reaches 0 before the point estimate would: Cinelli & Hazlett's extreme case (as in sensemakr)
        return float((f_q**2 - f_crit**2) / (1 + f_q**2))
    return float(0.5 * (np.sqrt(f**4 + 4 * f**2) - f**2))


def e_value(estimate: float, sd: float) -> float:
    """E-value of a mean difference on a continuous outcome: RR ≈ exp(0.91 |estimate| / sd)."""
    if not sd > 0 or not np.isfinite(estimate):
        return float("nan")
    rr = float(np.exp(0.91 * abs(estimate) / sd))
    return rr + float(np.sqrt(rr * (rr - 1)))


def ci_limit_nearest_null(ci_low: float | None, ci_high: float | None) -> float | None:
    """The CI limit closest to 0, or 0 when the interval includes it."""
    if ci_low is None or ci_high is None or not (np.isfinite(ci_low) and np.isfinite(ci_high)):
        return None
    if ci_low <= 0 <= ci_high:
        return 0.0
    return float(ci_low if abs(ci_low) < abs(ci_high) else ci_high)


#: above this many rows the regression on treatment and adjustment set is solved from the blocks of its
#: cross-products (:func:`ols_with_treatment`), without a stacked copy of the design (320 MB at 10M rows)
BLOCKED_MIN_ROWS = 1_000_000


def ols(design: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, int]:
    """Coefficients, classical standard errors, residual SD and residual degrees of freedom."""
    # normal equations: a few columns and up to millions of rows, so the p x p cross-products are the cheap part
    gram = design.T @ design
    return _ols_from(gram, design.T @ y, y, lambda coef: design @ coef)


def ols_with_treatment(data) -> tuple[np.ndarray, np.ndarray, float, int]:
    """:func:`ols` of the outcome on ``[data.design, data.t]``; above :data:`BLOCKED_MIN_ROWS` rows from the
    blocks ``[1, X]'[1, X]``, ``[1, X]'t``, ``t't`` of the columns as stored (the same fit up to rounding)."""
    if data.n <= BLOCKED_MIN_ROWS:
        return ols(np.column_stack([data.design, data.t]), data.y)
    columns, t, y = data.columns, data.t, data.y
    q = columns.shape[0]
    gram = np.empty((q + 1, q + 1))
    gram[:q, :q] = columns @ columns.T
    gram[:q, q] = gram[q, :q] = columns @ t
    gram[q, q] = t @ t
    cross = np.r_[columns @ y, t @ y]
    return _ols_from(gram, cross, y, lambda coef: coef[:q] @ columns + coef[q] * t)


def _ols_from(gram, cross, y, predict) -> tuple[np.ndarray, np.ndarray, float, int]:
    n = y.shape[0]
    inverse = np.linalg.pinv(gram)
    coef = inverse @ cross
    resid = y - predict(coef)
    df = n - np.linalg.matrix_rank(gram)
    sigma2 = float(resid @ resid / df) if df > 0 else float("nan")
    se = np.sqrt(np.maximum(sigma2 * np.diag(inverse), 0.0))
    return coef, se, float(np.sqrt(sigma2)), int(df)


def partial_r2_from_t(t_stat: np.ndarray | float, df: float):
    t2 = np.square(t_stat)
    return t2 / (t2 + df)


def bound_from_benchmark(r2_dx: float, r2_yx: float, k: float) -> tuple[float, float] | None:
    """Partial R² of a confounder ``k`` times as strong as a covariate (with treatment, with outcome).

    Cinelli & Hazlett (2020) section 6.1, with ``k_D = k_Y = k``: ``r2_dx`` is the covariate's partial R²
    with the treatment given the other covariates, ``r2_yx`` with the outcome given treatment and the others.
    None when such a confounder cannot exist (k r2_dx >= 1).
    """
    if k * r2_dx >= 1 or r2_dx >= 1 or r2_yx >= 1:
        return None
    r2_dz = k * r2_dx / (1 - r2_dx)
    if r2_dz >= 1:
        return None
    r2_zx = k * r2_dx**2 / ((1 - k * r2_dx) * (1 - r2_dx))
    if r2_zx >= 1:
        return None
    r2_yz = ((np.sqrt(k) + np.sqrt(r2_zx)) / np.sqrt(1 - r2_zx)) ** 2 * (r2_yx / (1 - r2_yx))
    return float(r2_dz), float(min(r2_yz, 1.0))


def bias_bound(se: float, df: float, r2_dz: float, r2_yz: float) -> float:
    """Largest |bias| of the regression coefficient from a confounder with these partial R²."""
    return float(se * np.sqrt(df) * np.sqrt(r2_yz * r2_dz / (1 - r2_dz)))


def analyze(
    data,
    identification: str,
    estimate: float,
    ci_low: float | None,
    ci_high: float | None,
    ci_level: float = 0.95,
) -> dict[str, Any]:
    """The ``sensitivity`` block of results.json for one run."""
    out: dict[str, Any] = {"design": identification, "applies": identification in ("backdoor", "none")}
    if not out["applies"]:
        out["message"] = NOT_BACKDOOR.get(
            identification, f"{identification}: the backdoor robustness value does not apply"
        )
        return out
    coef, se, sd_resid, df = ols_with_treatment(data)
    if not (df > 1 and se[-1] > 0 and np.isfinite(se[-1])):
        out.update(
            applies=False, message="the outcome regression has no residual variation; nothing to report"
        )
        return out
    t_stat = float(coef[-1] / se[-1])
    alpha = round(1 - float(ci_level), 10)
    near = ci_limit_nearest_null(ci_low, ci_high)
    out.update(
        method=(
            "Cinelli & Hazlett (2020) robustness value from the least-squares fit of the outcome on treatment and "
            "adjustment set; E-value (VanderWeele & Ding 2017) with d = estimate / SD(Y | T, X)"
        ),
        regression_estimate=float(coef[-1]),
        regression_std_error=float(se[-1]),
        t_statistic=t_stat,
        dof=df,
        partial_r2_treatment=float(partial_r2_from_t(t_stat, df)),
        robustness_value=robustness_value(t_stat, df),
        robustness_value_alpha=robustness_value(t_stat, df, alpha=alpha),
        alpha=alpha,
        outcome_residual_sd=sd_resid,
        standardized_effect=float(estimate / sd_resid),
        e_value=e_value(estimate, sd_resid),
        e_value_ci=None if near is None else e_value(near, sd_resid),
        benchmarks=_benchmarks(data, coef, se, df) if data.X.shape[1] else [],
    )
    return out


def _benchmarks(data, coef: np.ndarray, se: np.ndarray, df: int) -> list[dict[str, Any]]:
    """Bounds for confounders 1, 2, 3 times as strong as the observed covariate that would bias most."""
    p = data.X.shape[1]
    coef_d, se_d, _, df_d = ols(data.design, data.t)
    r2_dx = partial_r2_from_t(np.divide(coef_d[1:], se_d[1:], out=np.zeros(p), where=se_d[1:] > 0), df_d)
    r2_yx = partial_r2_from_t(np.divide(coef[1:-1], se[1:-1], out=np.zeros(p), where=se[1:-1] > 0), df)
    names = list(data.covariates) + [f"x{j}" for j in range(len(data.covariates), p)]
    one = [bound_from_benchmark(float(r2_dx[j]), float(r2_yx[j]), 1.0) for j in range(p)]
    strength = [bias_bound(se[-1], df, *b) if b else -1.0 for b in one]
    j = int(np.argmax(strength))
    rows = []
    sign = 1.0 if coef[-1] >= 0 else -1.0
    for k in BENCHMARK_MULTIPLES:
        bound = bound_from_benchmark(float(r2_dx[j]), float(r2_yx[j]), k)
        if bound is None:
            continue
        bias = bias_bound(se[-1], df, *bound)
        rows.append(
            {
                "covariate": names[j],
                "k": k,
                "covariate_r2_treatment": float(r2_dx[j]),
                "covariate_r2_outcome": float(r2_yx[j]),
                "r2_treatment": bound[0],
                "r2_outcome": bound[1],
                "bias_bound": bias,
                "adjusted_estimate": float(coef[-1] - sign * bias),
                "explains_away": bool(bias >= abs(coef[-1])),
            }
        )
    return rows
