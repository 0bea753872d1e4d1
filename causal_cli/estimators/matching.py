"""Nearest-neighbour matching on a 1-D score in O(n log n), and the Abadie–Imbens pieces shared by matchers.

:func:`match_in_score_order` sorts all units once and matches both ways (treated to control, control to
treated) by merging: a unit's insertion point in the other group is the number of that group's
units sorted before it, so no ``searchsorted`` and no second sort is needed.
"""

from __future__ import annotations

import sys

import numpy as np


def stable_order(score: np.ndarray) -> np.ndarray:
    """``np.argsort(score, kind="stable")``, via the faster unstable sort when the score has no ties."""
    return _sorted(score)[0]


def _sorted(score: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """``(stable order, sorted score, whether any values tie)``."""
    n = score.shape[0]
    if n > 1 and score.dtype == np.float64 and score.min() >= 0 and np.isfinite(score[score.argmax()]):
        order = _packed_order(score)
    else:
        order = np.argsort(score, kind="stable")
    s = score[order]
    if n > 1 and np.any(s[1:] < s[:-1]):
        # values that share a packed key: a stable sort of the nearly sorted scores fixes them in O(n)
        fix = np.argsort(s, kind="stable")
        order, s = order[fix], s[fix]
    ties = n > 1 and bool(np.any(s[1:] == s[:-1]))
    return order, s, ties


#: up to this many rows a radix sort of the packed keys beats ``np.sort`` (0.18 vs 0.26 ms at 10k rows)
RADIX_MAX_ROWS = 1 << 17


def _packed_order(score: np.ndarray) -> np.ndarray:
    """Almost the stable order of a non-negative float64 score, without ``argsort``.

    The bits of a non-negative double sort like the number, so each key keeps the score's top bits
    and puts the row index in the low bits: sorting these integers orders rows by score and equal
    scores by row index, faster than ``argsort`` (57 vs 85 ms at a million rows). Small inputs use a
    radix sort on the keys' top 48 bits instead. Only scores that differ below the bits compared
    (relative 2**-32 at a million rows) can be out of order; ``_sorted`` checks and fixes them.
    """
    n = score.shape[0]
    bits = np.uint64(max(1, (n - 1).bit_length()))
    key = (score + 0.0).view(np.uint64)  # + 0.0 turns -0.0 into 0.0
    key >>= bits
    key <<= bits
    key |= np.arange(n, dtype=np.uint64)
    if n <= RADIX_MAX_ROWS and sys.byteorder == "little":
        # least significant digit first; numpy's stable argsort of 16-bit integers is a radix sort
        digits = key.view(np.uint16).reshape(n, 4)
        order = np.arange(n)
        for column in (1, 2, 3):
            order = order[np.argsort(digits[order, column], kind="stable")]
        return order
    key.sort()
    key &= np.uint64((1 << int(bits)) - 1)
    return key.astype(np.intp)


def nearest_in_sorted(
    sorted_pool: np.ndarray, pos: np.ndarray, queries: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Positions in ``sorted_pool`` of the ``k`` nearest values to each query, and their distances.

    ``pos`` is each query's insertion point (``np.searchsorted(sorted_pool, queries)``). Equal
    distances keep the lower position.
    """
    m = sorted_pool.shape[0]
    if m == 0:
        raise ValueError("cannot match against an empty group")
    k = min(k, m)
    if k == 1:
        left = np.maximum(pos - 1, 0)
        right = np.minimum(pos, m - 1)
        dist_left = np.abs(sorted_pool[left] - queries)
        dist_right = np.abs(sorted_pool[right] - queries)
        closer_right = dist_right < dist_left
        best = np.where(closer_right, right, left)
        return best[:, None], np.where(closer_right, dist_right, dist_left)[:, None]
    window = np.clip(pos[:, None] + np.arange(-k, k)[None, :], 0, m - 1)
    dist = np.abs(sorted_pool[window] - queries[:, None])
    duplicate = np.zeros_like(window, dtype=bool)
    duplicate[:, 1:] = window[:, 1:] == window[:, :-1]
    dist[duplicate] = np.inf
    best = np.argsort(dist, axis=1, kind="stable")[:, :k]
    rows = np.arange(queries.shape[0])[:, None]
    return window[rows, best], dist[rows, best]


def nearest_on_score(pool: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices into ``pool`` of the ``k`` nearest values to each query, and their distances.

    Ties keep the lower pool position, like a stable sort. ``pool`` need not be sorted.
    """
    if pool.shape[0] == 0:
        raise ValueError("cannot match against an empty group")
    order = stable_order(pool)
    sorted_pool = pool[order]
    best, dist = nearest_in_sorted(sorted_pool, np.searchsorted(sorted_pool, queries), queries, k)
    return order[best], dist


def match_in_score_order(score: np.ndarray, treated: np.ndarray, k: int):
    """Each treated unit's ``k`` nearest controls on ``score``, and each control's ``k`` nearest treated.

    Works in score order: returns ``(order, in_treated, groups)`` where ``order`` is the stable sort
    order of ``score``, ``in_treated = treated[order]`` and ``groups`` is
    ``((treated_at, their_matches), (control_at, their_matches))``, all positions in score order
    (row ``order[i]`` of the data is at position ``i``). The matches, ties included, are those of
    :func:`nearest_on_score` per group, from a single sort of all units; gathers in score order
    read memory sequentially.
    """
    order, s, ties = _sorted(score)
    in_treated = treated[order]
    treated_at = np.flatnonzero(in_treated)
    control_at = np.flatnonzero(~in_treated)
    if treated_at.size == 0 or control_at.size == 0:
        raise ValueError("cannot match against an empty group")
    if ties:
        # insertion point (side="left") = units of the other group sorted before the first tied value
        n = s.shape[0]
        first = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
        group_start = np.repeat(first, np.diff(np.r_[first, n]))
        controls_before = np.cumsum(~in_treated) - ~in_treated
        pos_of_treated = controls_before[group_start[treated_at]]
        pos_of_control = (group_start - controls_before[group_start])[control_at]
    else:
        pos_of_treated = treated_at - np.arange(treated_at.size)
        pos_of_control = control_at - np.arange(control_at.size)
    groups = []
    for query_at, pos, pool_at in (
        (treated_at, pos_of_treated, control_at),
        (control_at, pos_of_control, treated_at),
    ):
        best, _ = nearest_in_sorted(s[pool_at], pos, s[query_at], k)
        groups.append((query_at, pool_at[best]))
    return order, in_treated, tuple(groups)


def within_group_variance(score: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Abadie–Imbens conditional variance: half the squared outcome gap to the nearest same-group unit."""
    order = stable_order(score)
    out = np.empty(score.shape[0])
    out[order] = within_group_variance_sorted(score[order], y[order])
    return out


def within_group_variance_sorted(s: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """:func:`within_group_variance` for a score ``s`` already in (stable) sorted order."""
    m = s.shape[0]
    if m < 2:
        return np.zeros(m)
    gap_left = np.full(m, np.inf)
    gap_right = np.full(m, np.inf)
    gap_left[1:] = s[1:] - s[:-1]
    gap_right[:-1] = s[1:] - s[:-1]
    neighbour = np.where(gap_left <= gap_right, np.arange(m) - 1, np.arange(m) + 1)
    return 0.5 * (ys - ys[neighbour]) ** 2


def matched_effect(
    unit_effect: np.ndarray, treated: np.ndarray, keep: np.ndarray, target_units: str
) -> float:
    """ATT, ATC or their share-weighted average (ATE) from each kept unit's matched effect."""
    return combine_group_effects(unit_effect[keep & treated], unit_effect[keep & ~treated], target_units)


def combine_group_effects(
    treated_effects: np.ndarray, control_effects: np.ndarray, target_units: str
) -> float:
    """:func:`matched_effect` from the kept treated units' and the kept control units' matched effects."""
    from causal_cli.errors import EstimationError

    n_t, n_c = treated_effects.size, control_effects.size
    if target_units == "att" and not n_t or target_units == "atc" and not n_c or not n_t + n_c:
        raise EstimationError("the caliper dropped every unit of the target group; widen estimator.caliper")
    att = float(treated_effects.mean()) if n_t else np.nan
    atc = float(control_effects.mean()) if n_c else np.nan
    if target_units == "att":
        return att
    if target_units == "atc":
        return atc
    return ((att if n_t else 0.0) * n_t + (atc if n_c else 0.0) * n_c) / (n_t + n_c)


def abadie_imbens_se(
    target_units: str,
    effect: float,
    unit_effect: np.ndarray,
    treated: np.ndarray,
    keep: np.ndarray,
    used_by_treated: np.ndarray,
    used_by_control: np.ndarray,
    k: int,
    sigma2: np.ndarray,
) -> float:
    """Abadie & Imbens (2006) standard error of a matching estimator with replacement.

    ``used_by_*[i]`` is K_M(i)/M: how often unit i serves as a match for the treated (control) units,
    each use counting 1/M; ``sigma2`` the conditional outcome variance of each unit.
    """
    if target_units == "ate":
        used = np.where(treated, used_by_control, used_by_treated)
        terms = (unit_effect - effect) ** 2 + (used**2 + (2 * k - 1) / k * used) * sigma2
        return float(np.sqrt(terms[keep].sum()) / keep.sum())
    target = treated if target_units == "att" else ~treated
    used = used_by_treated if target_units == "att" else used_by_control
    rows_target = keep & target
    pool = ~target
    var = ((unit_effect[rows_target] - effect) ** 2).sum()
    var += (used[pool] * (used[pool] * k - 1) / k * sigma2[pool]).sum()
    return float(np.sqrt(max(var, 0.0)) / rows_target.sum())


def match_balance_weights(
    target_units: str,
    treated: np.ndarray,
    keep: np.ndarray,
    used_by_treated: np.ndarray,
    used_by_control: np.ndarray,
) -> np.ndarray:
    """Diagnostics weights: kept target units count once, each match as often as it is used."""
    if target_units == "att":
        return (keep & treated) + used_by_treated
    if target_units == "atc":
        return (keep & ~treated) + used_by_control
    return keep + used_by_treated + used_by_control
