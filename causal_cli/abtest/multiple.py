"""Multiple-testing corrections for several metrics: adjusted p-values (Benjamini-Hochberg, Holm)."""

from __future__ import annotations

import numpy as np

CORRECTIONS = ("bh", "holm", "none")


def benjamini_hochberg(p_values) -> np.ndarray:
    """BH step-up adjusted p-values: rejecting adjusted p <= q controls the FDR at q (independent tests)."""
    p = np.asarray(p_values, dtype=float)
    m = len(p)
    if m == 0:
        return p
    order = np.argsort(p)
    scaled = p[order] * m / np.arange(1, m + 1)
    adjusted = np.minimum.accumulate(scaled[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.clip(adjusted, 0.0, 1.0)
    return out


def holm(p_values) -> np.ndarray:
    """Holm step-down adjusted p-values: rejecting adjusted p <= alpha controls the family-wise error."""
    p = np.asarray(p_values, dtype=float)
    m = len(p)
    if m == 0:
        return p
    order = np.argsort(p)
    scaled = p[order] * (m - np.arange(m))
    adjusted = np.maximum.accumulate(scaled)
    out = np.empty(m)
    out[order] = np.clip(adjusted, 0.0, 1.0)
    return out


def adjust(p_values, method: str) -> np.ndarray:
    if method == "bh":
        return benjamini_hochberg(p_values)
    if method == "holm":
        return holm(p_values)
    return np.asarray(p_values, dtype=float)
