"""Segment effects: the mean doubly robust score within each segment of a modifier, and a test that they differ."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

#: a numeric modifier with at most this many distinct values is treated as categorical
MAX_LEVELS = 10


def segment_labels(values: pd.Series, bins: int) -> pd.Series:
    """Categorical (or few-valued) modifiers keep their levels; continuous ones are cut into quantile bins."""
    if values.dtype.kind not in "biuf" or values.nunique() <= MAX_LEVELS:
        return values.astype(str)
    edges = np.unique(np.quantile(values.to_numpy(dtype=float), np.linspace(0, 1, bins + 1)))
    cut = pd.cut(values, edges, include_lowest=True, duplicates="drop")
    return cut.map(lambda iv: f"[{iv.left:.3g}, {iv.right:.3g}]").astype(str)


def mean_effect(scores: np.ndarray) -> tuple[float, float]:
    """Mean of the scores and its standard error."""
    n = scores.shape[0]
    return float(scores.mean()), float(scores.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan")


def segment_effects(
    modifier: str, labels: pd.Series, scores: np.ndarray, z: float, truth: np.ndarray | None = None
) -> dict[str, Any]:
    """Effect per segment with SE and CI, and the Wald test that all segment effects are equal.

    Segments are disjoint, so their means are independent: with inverse-variance weights the statistic
    ``sum (theta_g - theta_w)^2 / se_g^2`` is chi-squared with (segments - 1) degrees of freedom.
    """
    from scipy import stats

    rows = []
    codes = labels.to_numpy()
    order = list(dict.fromkeys(sorted(pd.unique(codes), key=_sort_key)))
    for level in order:
        mask = codes == level
        effect, se = mean_effect(scores[mask])
        row = {
            "modifier": modifier,
            "segment": str(level),
            "n": int(mask.sum()),
            "share": float(mask.mean()),
            "effect": effect,
            "std_error": se,
            "ci_low": effect - z * se,
            "ci_high": effect + z * se,
        }
        if truth is not None:
            true = float(truth[mask].mean())
            row.update(
                true_effect=true, bias=effect - true, covers=bool(row["ci_low"] <= true <= row["ci_high"])
            )
        rows.append(row)
    usable = [r for r in rows if np.isfinite(r["std_error"]) and r["std_error"] > 0]
    statistic = p_value = None
    if len(usable) >= 2:
        effect = np.array([r["effect"] for r in usable])
        weight = 1 / np.array([r["std_error"] for r in usable]) ** 2
        pooled = float((weight * effect).sum() / weight.sum())
        statistic = float((weight * (effect - pooled) ** 2).sum())
        p_value = float(stats.chi2.sf(statistic, len(usable) - 1))
    return {
        "modifier": modifier,
        "segments": rows,
        "test": {
            "statistic": statistic,
            "df": len(usable) - 1,
            "p_value": p_value,
            "name": "Wald chi2: equal segment effects",
        },
    }


def _sort_key(level: str):
    text = str(level)
    if text.startswith("["):
        try:
            return (0, float(text[1:].split(",")[0]), text)
        except ValueError:
            pass
    try:
        return (0, float(text), text)
    except ValueError:
        return (1, 0.0, text)
