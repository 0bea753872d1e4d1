"""Nearest-neighbour matching on a 1-D score in O(n log n): sort once, ``searchsorted``, look left/right."""

from __future__ import annotations

import numpy as np


def nearest_on_score(pool: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices into ``pool`` of the ``k`` nearest values to each query, and their distances.

    Ties keep the lower pool position, like a stable sort. ``pool`` need not be sorted.
    """
    m = pool.shape[0]
    if m == 0:
        raise ValueError("cannot match against an empty group")
    k = min(k, m)
    order = np.argsort(pool, kind="stable")
    sorted_pool = pool[order]
    pos = np.searchsorted(sorted_pool, queries)
    window = np.clip(pos[:, None] + np.arange(-k, k)[None, :], 0, m - 1)
    dist = np.abs(sorted_pool[window] - queries[:, None])
    duplicate = np.zeros_like(window, dtype=bool)
    duplicate[:, 1:] = window[:, 1:] == window[:, :-1]
    dist[duplicate] = np.inf
    best = np.argsort(dist, axis=1, kind="stable")[:, :k]
    rows = np.arange(queries.shape[0])[:, None]
    return order[window[rows, best]], dist[rows, best]


def within_group_variance(score: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Abadie–Imbens conditional variance: half the squared outcome gap to the nearest same-group unit."""
    m = score.shape[0]
    if m < 2:
        return np.zeros(m)
    order = np.argsort(score, kind="stable")
    s, ys = score[order], y[order]
    gap_left = np.full(m, np.inf)
    gap_right = np.full(m, np.inf)
    gap_left[1:] = s[1:] - s[:-1]
    gap_right[:-1] = s[1:] - s[:-1]
    neighbour = np.where(gap_left <= gap_right, np.arange(m) - 1, np.arange(m) + 1)
    out = np.empty(m)
    out[order] = 0.5 * (ys - ys[neighbour]) ** 2
    return out
