"""Design checks of a randomized experiment: sample ratio mismatch and pre-period balance."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class SRMCheck:
    """Chi-square goodness of fit of the arm counts to the planned split (Fabijan et al. 2019)."""

    n_control: int
    n_treatment: int
    planned_treatment_share: float
    observed_treatment_share: float
    chi2: float
    p_value: float
    threshold: float
    mismatch: bool

    def to_dict(self) -> dict:
        return asdict(self)


def sample_ratio_mismatch(
    n_control: int, n_treatment: int, planned_share: float, threshold: float
) -> SRMCheck:
    from scipy.stats import chi2 as chi2_dist

    total = n_control + n_treatment
    expected = np.array([total * (1 - planned_share), total * planned_share])
    observed = np.array([n_control, n_treatment], dtype=float)
    stat = float(np.sum((observed - expected) ** 2 / expected))
    p = float(chi2_dist.sf(stat, df=1))
    return SRMCheck(
        n_control=int(n_control),
        n_treatment=int(n_treatment),
        planned_treatment_share=float(planned_share),
        observed_treatment_share=float(n_treatment / total),
        chi2=stat,
        p_value=p,
        threshold=float(threshold),
        mismatch=p < threshold,
    )


def standardized_mean_difference(x: np.ndarray, t: np.ndarray) -> float:
    """(mean_1 - mean_0) / sqrt((var_1 + var_0) / 2)."""
    x0, x1 = x[t == 0], x[t == 1]
    pooled = np.sqrt((np.var(x0, ddof=1) + np.var(x1, ddof=1)) / 2)
    return float((np.mean(x1) - np.mean(x0)) / pooled) if pooled > 0 else 0.0


def balance(frame, t: np.ndarray, covariates: list[str], threshold: float) -> list[dict]:
    """SMD of each pre-experiment covariate between the arms; flagged above ``threshold`` in absolute value."""
    rows = []
    for name in covariates:
        x = frame[name].to_numpy(dtype=float)
        smd = standardized_mean_difference(x, t)
        rows.append(
            {
                "covariate": name,
                "mean_control": float(np.mean(x[t == 0])),
                "mean_treatment": float(np.mean(x[t == 1])),
                "smd": smd,
                "imbalanced": bool(abs(smd) > threshold),
            }
        )
    return rows
