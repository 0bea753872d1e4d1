"""Nearest-neighbour matching on a 1-D score in O(n log n), and the Abadie–Imbens pieces shared by matchers.

:func:`match_in_score_order` sorts all units once and matches both ways (treated to control, control to
treated) by merging: a unit's insertion point in the other group is the number of that group's
units sorted before it, so no ``searchsorted`` and no second sort is needed.
"""

from __future__ import annotations

import sys
import threading

import numpy as np

from causal_cli.estimators import kernels
from causal_cli.numerics import run_concurrently


def stable_order(score: np.ndarray) -> np.ndarray:
    """``np.argsort(score, kind="stable")``, via the faster unstable sort when the score has no ties."""
    return _sorted(score)[0]


def _sorted(score: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """``(stable order, sorted score, whether any values tie)``."""
    n = score.shape[0]
    if n > 1 and score.dtype == np.float64 and score.min() >= 0 and np.isfinite(score[score.argmax()]):
        if n < kernels.SORT_MAX_ROWS and kernels.available(n):  # a compiled radix sort: the same order
            return kernels.sorted_score(score)
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


def _score_order_queries(score: np.ndarray, treated: np.ndarray):
    """``(order, sorted score, in_treated, ((treated_at, pos, control_at), (control_at, pos, treated_at)))``.

    ``pos`` is each query's insertion point in the other group (sorted by score), from a single sort.
    """
    order, s, ties = _sorted(score)
    if kernels.available(score.shape[0]):  # the same arrays from one compiled pass
        in_treated, treated_at, pos_of_treated, control_at, pos_of_control = kernels.score_order_queries(
            order, treated, s
        )
    else:
        in_treated = treated[order]
        treated_at = np.flatnonzero(in_treated)
        control_at = np.flatnonzero(~in_treated)
        pos_of_treated, pos_of_control = _insertion_points(s, in_treated, treated_at, control_at, ties)
    if treated_at.size == 0 or control_at.size == 0:
        raise ValueError("cannot match against an empty group")
    return (
        order,
        s,
        in_treated,
        ((treated_at, pos_of_treated, control_at), (control_at, pos_of_control, treated_at)),
    )


def _insertion_points(s, in_treated, treated_at, control_at, ties: bool) -> tuple[np.ndarray, np.ndarray]:
    """Each treated unit's insertion point (``side="left"``) among the sorted controls, and each control's
    among the treated (``s``: the sorted score)."""
    if not ties:
        return treated_at - np.arange(treated_at.size), control_at - np.arange(control_at.size)
    # insertion point (side="left") = units of the other group sorted before the first tied value
    n = s.shape[0]
    first = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    group_start = np.repeat(first, np.diff(np.r_[first, n]))
    controls_before = np.cumsum(~in_treated) - ~in_treated
    return controls_before[group_start[treated_at]], (group_start - controls_before[group_start])[control_at]


def match_in_score_order(score: np.ndarray, treated: np.ndarray, k: int):
    """Each treated unit's ``k`` nearest controls on ``score``, and each control's ``k`` nearest treated.

    Works in score order: returns ``(order, in_treated, groups)`` where ``order`` is the stable sort
    order of ``score``, ``in_treated = treated[order]`` and ``groups`` is
    ``((treated_at, their_matches), (control_at, their_matches))``, all positions in score order
    (row ``order[i]`` of the data is at position ``i``). The matches, ties broken by position, are those
    of :func:`nearest_on_score` per group, from a single sort of all units; gathers in score order
    read memory sequentially. :func:`match_ranges_in_score_order` shares ties instead.
    """
    order, s, in_treated, queries = _score_order_queries(score, treated)
    groups = []
    for query_at, pos, pool_at in queries:
        best, _ = nearest_in_sorted(s[pool_at], pos, s[query_at], k)
        groups.append((query_at, pool_at[best]))
    return order, in_treated, tuple(groups)


def match_ranges_in_score_order(score: np.ndarray, treated: np.ndarray, k: int, also=None):
    """:func:`match_in_score_order` with ties shared: ``(order, s, in_treated, groups)``.

    ``groups`` is ``((treated_at, pos, control_at, lo, hi), (control_at, pos, treated_at, lo, hi))``:
    query ``i`` of a group is matched to ``pool_at[lo[i]:hi[i]]`` (its k nearest and every unit tied
    with the k-th), each with weight ``1 / (hi[i] - lo[i])``; ``s`` is the score in sorted order.
    With ``also``, ``also(order)`` runs alongside the matching (:func:`~causal_cli.numerics.run_concurrently`) and its result
    is a fifth element.
    """
    order, s, in_treated, queries = _score_order_queries(score, treated)

    def match(query_at, pos, pool_at):
        return (query_at, pos, pool_at, *match_ranges(s[pool_at], pos, s[query_at], k))

    calls = [lambda query=query: match(*query) for query in queries]
    done = run_concurrently(calls if also is None else [*calls, lambda: also(order)], s.shape[0])
    out = (order, s, in_treated, tuple(done[:2]))
    return out if also is None else (*out, done[2])


def within_group_variance_sorted(s: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Each unit's conditional outcome variance from its nearest same-group neighbour on the score
    (Abadie & Imbens 2006), for a score ``s`` already in (stable) sorted order."""
    m = s.shape[0]
    if m < 2:
        return np.zeros(m)
    gap = s[1:] - s[:-1]
    step = ys[1:] - ys[:-1]
    # unit i's nearest is i - 1 when gap[i - 1] <= gap[i] (the first has only i + 1, the last only i - 1);
    # (a - b)^2 = (b - a)^2 exactly, so the differences to either side are those of neighbouring units
    left = np.empty(m, dtype=bool)
    left[0], left[-1] = False, True
    np.less_equal(gap[:-1], gap[1:], out=left[1:-1])
    difference = np.empty(m)
    difference[1:] = step
    difference[0] = step[0]
    np.copyto(difference[:-1], step, where=~left[:-1])
    return 0.5 * difference**2


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


def combine_group_sums(sums: list[float], counts: list[int], target_units: str) -> float:
    """:func:`combine_group_effects` from each group's summed matched effects and its number of kept units."""
    from causal_cli.errors import EstimationError

    (sum_t, sum_c), (n_t, n_c) = sums, counts
    if target_units == "att" and not n_t or target_units == "atc" and not n_c or not n_t + n_c:
        raise EstimationError("the caliper dropped every unit of the target group; widen estimator.caliper")
    att = sum_t / n_t if n_t else np.nan
    atc = sum_c / n_c if n_c else np.nan
    if target_units == "att":
        return float(att)
    if target_units == "atc":
        return float(atc)
    return float(((att if n_t else 0.0) * n_t + (atc if n_c else 0.0) * n_c) / (n_t + n_c))


#: above this condition number of the bias adjustment's weighted Gram matrix (standardised covariates),
#: :func:`bias_adjusted_sum` declines and the caller takes the per-unit route (least squares by SVD)
MAX_GRAM_CONDITION = 1e6


def bias_adjusted_sum(pool_moments: np.ndarray, target_sums: np.ndarray) -> float | None:
    """The summed bias-adjusted matched differences of one group, ``sum_q (y_q - m_q) - (z_q - zbar_q)' b``,
    from sums over its pool and its kept queries (:func:`arm_moments`): ``None`` when the regression is
    ill-conditioned.

    With ``v = [1, z, y]`` (``z``: the standardised covariates, ``y`` the outcome, both centred),
    ``pool_moments`` is ``sum over the pool arm of use * v v'`` (``use``: how often each unit is used as a
    match; ``m_q``, ``zbar_q``: the query's matched means) and ``target_sums`` the sum of ``v`` over the
    kept queries. ``b`` are the slopes of the pool arm's least-squares fit on ``[1, z]`` weighted by
    ``use`` (:func:`weighted_slopes`). The sum over queries of a matched mean is the use-weighted sum
    over the pool, so no per-unit gather is needed: the same number up to floating-point summation order.
    """
    gram, moments = pool_moments[:-1, :-1], pool_moments[:-1, -1]
    slopes = _slopes(gram, moments)  # None too with fewer than two pool units used (a singular Gram matrix)
    if slopes is None:
        return None
    return float(target_sums[-1] - moments[0]) - float((target_sums[1:-1] - gram[0, 1:]) @ slopes)


def _slopes(gram: np.ndarray, moments: np.ndarray) -> np.ndarray | None:
    """The slopes of the weighted least-squares fit from its Gram matrix (``[1, z]``, standardised) and
    moments with the outcome, or None when the Gram matrix's 1-norm condition number is above
    :data:`MAX_GRAM_CONDITION`."""
    try:
        inverse = np.linalg.inv(gram)
    except np.linalg.LinAlgError:
        return None
    # the 1-norm condition number, from the inverse at hand (an SVD would cost more than the rest)
    condition = np.abs(gram).sum(axis=0).max() * np.abs(inverse).sum(axis=0).max()
    if not np.isfinite(condition) or condition > MAX_GRAM_CONDITION:
        return None
    # the outcome centred on its weighted mean (the slopes do not change; rounding errors shrink)
    centred = moments - (moments[0] / gram[0, 0]) * gram[:, 0]
    return inverse[1:, 1:] @ centred[1:]


#: rows per block of :func:`arm_moments`: its temporaries stay in the caches
MOMENTS_BLOCK_ROWS = 1 << 15

_SCRATCH = threading.local()
#: above this many rows a refit's row-length scratch arrays are not kept between refits (16 MB each)
SCRATCH_MAX_ROWS = 1 << 21


def _scratch(name: str, size: int) -> np.ndarray:
    """A float buffer of at least ``size`` values, kept per thread between calls (up to
    :data:`SCRATCH_MAX_ROWS` values): fresh temporaries of this size cost page faults on every refit (at
    100k rows ~3,000 minor faults per refit, 4-7 ms of its 15-20 ms CPU on the benchmark machine)."""
    if size > SCRATCH_MAX_ROWS:
        return np.empty(size)
    held = getattr(_SCRATCH, name, None)
    if held is None or held.shape[0] < size:
        held = np.empty(size)
        setattr(_SCRATCH, name, held)
    return held


def use_in_row_order(n: int, order: np.ndarray, pools: list) -> np.ndarray:
    """How often each unit is used as a match, in row order, from ``(pool, lo, hi)`` per group (the pool's
    positions in score order; its queries' ranges, :func:`pool_use`); 0 for units of a pool not given.
    The pools are the two arms, so one array holds both: placed in score order, then in row order by one
    permutation (no temporaries). The result is a scratch array, valid until the next call in the thread."""
    in_score_order = _scratch("use_in_score_order", n)[:n]
    if len(pools) < 2:
        in_score_order.fill(0.0)
    for pool, lo, hi in pools:
        in_score_order[pool] = pool_use(pool.size, lo, hi)
    out = _scratch("use", n)[:n]
    out[order] = in_score_order
    return out


def arm_moments(
    columns: np.ndarray,
    y: np.ndarray,
    t: np.ndarray,
    use: np.ndarray,
    centres: tuple[float, np.ndarray, np.ndarray],
    pools: tuple[bool, bool] = (True, True),
) -> tuple[list, np.ndarray, np.ndarray]:
    """``([control pool moments, treated pool moments], sums over the treated, sums over all rows)`` for
    :func:`bias_adjusted_sum`, in one pass over the rows in order, block by block (no full-length
    temporaries, no gathers).

    ``columns``: ``[1, X]`` transposed, ``y``, ``t`` (0/1) and ``use`` (each unit's use as a match by the
    other arm) in row order; ``centres``: ``(y_centre, centre, scale)``, with ``v = [1, (X - centre) /
    scale, y - y_centre]``. Each value is centred before it is summed: raw sums lose the digits of an
    offset far above the spread (a covariate around 1000 with SD 5 moved a refit's estimate by 1e-12
    relative, against 1e-16 centred). ``pools``: which arms' pool moments are needed (control, treated).
    """
    y_centre, centre, scale = centres
    n, p = y.shape[0], columns.shape[0] - 1
    width = min(n, MOMENTS_BLOCK_ROWS)
    buffer = _scratch("moments", (2 * p + 6) * width)
    values = buffer[: (p + 2) * width].reshape(p + 2, width)
    weighted = buffer[(p + 2) * width : (2 * p + 4) * width].reshape(p + 2, width)
    weights = buffer[(2 * p + 4) * width : (2 * p + 6) * width].reshape(2, width)  # control, treated pool
    values[0] = 1.0
    moments = [np.zeros((p + 2, p + 2)) if needed else None for needed in pools]
    treated, every = np.zeros(p + 2), np.zeros(p + 2)
    for start in range(0, n, MOMENTS_BLOCK_ROWS):
        stop = min(n, start + MOMENTS_BLOCK_ROWS)
        v, vw, w = values[:, : stop - start], weighted[:, : stop - start], weights[:, : stop - start]
        np.subtract(columns[1:, start:stop], centre[:, None], out=v[1:-1])
        v[1:-1] /= scale[:, None]
        np.subtract(y[start:stop], y_centre, out=v[-1])
        t_block = t[start:stop]
        treated += v @ t_block
        every += v.sum(axis=1)
        np.multiply(use[start:stop], t_block, out=w[1])
        np.subtract(use[start:stop], w[1], out=w[0])
        for arm, weight in zip(moments, w):
            if arm is not None:
                np.multiply(v, weight, out=vw)
                arm += vw @ v.T
    return moments, treated, every


def pool_use(m: int, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """:func:`range_use` with weights ``1 / (hi - lo)``: how often each unit of a pool of ``m`` is used as a
    match. Ranges of one width (no ties) are counted in integers, so the uses are exact (integers
    themselves for one match per query)."""
    width = hi - lo
    first = int(width[0]) if width.size else 0
    if first < 1 or not np.all(width == first):
        return range_use(m, lo, hi, 1.0 / np.maximum(width, 1))
    covering = np.bincount(lo, minlength=m)
    if first == 1:
        return covering  # integer counts (the caller places them in a float array)
    # units in [lo, lo + first): starts up to p minus those up to p - first
    covering = np.cumsum(covering)
    covering[first:] -= covering[:-first].copy()
    return covering / float(first)


def abadie_imbens_se_shared(
    target_units: str,
    effect: float,
    unit_effect: np.ndarray,
    treated: np.ndarray,
    keep: np.ndarray,
    used: tuple[np.ndarray, np.ndarray],
    used_squared: tuple[np.ndarray, np.ndarray],
    sigma2: np.ndarray,
) -> float:
    """Abadie & Imbens (2006) standard error for matches of any number and weight (ties, calipers).

    ``used = (by_treated, by_control)``: K(i), the summed weight with which unit i serves as a match
    for the treated (control) units; ``used_squared`` the summed squared weights Q(i). With the
    estimator ``sum_i (own_i + K_i) (2W_i - 1) Y_i / N``, the variance is
    ``[sum_own (tau_i - tau)^2 + sum_i (K_i^2 + 2 own_i K_i - Q_i) sigma2_i] / N^2``; with M matches
    of weight 1/M each, Q = K/M (the textbook M-match formula).
    """
    if target_units == "ate":
        own = keep
        k_used = np.where(treated, used[1], used[0])
        q_used = np.where(treated, used_squared[1], used_squared[0])
    else:
        own = keep & (treated if target_units == "att" else ~treated)
        k_used, q_used = (used[0], used_squared[0]) if target_units == "att" else (used[1], used_squared[1])
    var = ((unit_effect[own] - effect) ** 2).sum()
    var += ((k_used**2 + 2 * own * k_used - q_used) * sigma2).sum()
    return float(np.sqrt(max(var, 0.0)) / own.sum())


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


# --- matches as ranges of the sorted pool: ties share the weight -------------------------------------------
#
# On a 1-D score the k nearest units of a pool, and every unit tied with the k-th nearest, are a contiguous
# range ``[lo, hi)`` of the pool in sorted order (distances fall towards the query and rise after it). Each
# match then weighs ``1 / (hi - lo)``: tied units share the weight, whatever the row order.


def _first_true(predicate, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Per query, the first ``p`` in ``[lo, hi)`` where the (monotone: false..., true...) predicate holds, else hi."""
    lo, hi = lo.copy(), hi.copy()
    while True:
        active = lo < hi
        if not active.any():
            return lo
        mid = (lo + hi) // 2
        yes = predicate(mid) & active
        hi = np.where(yes, mid, hi)
        lo = np.where(active & ~yes, mid + 1, lo)


def range_within(
    sorted_pool: np.ndarray,
    queries: np.ndarray,
    pos: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    radius: np.ndarray | float,
) -> tuple[np.ndarray, np.ndarray]:
    """The sub-range of ``[lo, hi)`` within ``radius`` of each query (``pos``: its insertion point)."""
    m = sorted_pool.shape[0]
    radius = np.broadcast_to(radius, queries.shape)

    def close(p):
        return np.abs(sorted_pool[np.minimum(p, m - 1)] - queries) <= radius

    start = _first_true(lambda p: (p >= pos) | close(p), lo, hi)
    end = _first_true(lambda p: (p >= pos) & ~close(p), start, hi)
    return start, end


def match_ranges(
    sorted_pool: np.ndarray, pos: np.ndarray, queries: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(lo, hi)``: each query's ``k`` nearest in ``sorted_pool`` and every unit tied with the k-th nearest.

    The k nearest are a window found by binary search (:func:`nearest_in_sorted` for k = 1); only
    queries with a tie at the k-th distance (rare on a continuous score) pay for a binary search of
    the tied range.
    """
    m = sorted_pool.shape[0]
    if m == 0:
        raise ValueError("cannot match against an empty group")
    k = min(k, m)
    floats = sorted_pool.dtype == queries.dtype == np.float64
    if k == 1 and floats and kernels.available(m + queries.shape[0]):  # the same ranges, compiled
        return kernels.nearest_ranges(sorted_pool, pos, queries)
    if k == 1:
        best, dist = nearest_in_sorted(sorted_pool, pos, queries, 1)
        lo, kth = best[:, 0], dist[:, 0]
    else:
        # the k nearest are a window [lo, lo + k): binary search for its start (log2(k) + 1 steps)
        lo = np.clip(pos - k, 0, m - k)
        top = np.clip(pos, 0, m - k)
        while np.any(lo < top):
            mid = (lo + top) // 2
            right_closer = np.abs(sorted_pool[mid] - queries) > np.abs(
                sorted_pool[np.minimum(mid + k, m - 1)] - queries
            )
            active = lo < top
            lo = np.where(active & right_closer, mid + 1, lo)
            top = np.where(active & ~right_closer, mid, top)
        kth = np.maximum(np.abs(sorted_pool[lo] - queries), np.abs(sorted_pool[lo + k - 1] - queries))
    hi = lo + k
    left = np.abs(sorted_pool[np.maximum(lo - 1, 0)] - queries) <= kth
    right = np.abs(sorted_pool[np.minimum(hi, m - 1)] - queries) <= kth
    tied = ((lo > 0) & left) | ((hi < m) & right)
    if tied.any():
        rows = np.flatnonzero(tied)
        zeros = np.zeros(rows.size, dtype=lo.dtype)
        lo[rows], hi[rows] = range_within(
            sorted_pool, queries[rows], pos[rows], zeros, np.full(rows.size, m), kth[rows]
        )
    return lo, hi


def range_sums(values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """``values[lo:hi].sum(axis=0)`` per range (``values`` 1-D or ``(m, p)``), from centred cumulative sums."""
    centre = values.mean(axis=0) if values.shape[0] else 0.0
    cum = np.zeros((values.shape[0] + 1, *values.shape[1:]))
    np.cumsum(values - centre, axis=0, out=cum[1:])
    width = (hi - lo).reshape(-1, *([1] * (values.ndim - 1)))
    return cum[hi] - cum[lo] + width * centre


def range_means(values: np.ndarray, lo: np.ndarray, hi: np.ndarray, k: int) -> np.ndarray:
    """Mean of ``values[lo:hi]`` per range; exact gathers when every range holds ``k`` units (no ties)."""
    width = hi - lo
    if width.size and np.all(width == k):
        if k == 1:
            return values[lo]
        picked = values[lo[:, None] + np.arange(k)]
        return (picked * (1.0 / k)).sum(axis=1)
    sums = range_sums(values, lo, hi)
    return sums / np.maximum(width, 1).reshape(-1, *([1] * (values.ndim - 1)))


def range_use(m: int, lo: np.ndarray, hi: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """``out[p] = sum of weight over the ranges covering p`` (a difference array: O(m + ranges))."""
    diff = np.zeros(m + 1)
    np.add.at(diff, lo, weight)
    np.add.at(diff, hi, -weight)
    return np.cumsum(diff[:-1])


def tied_neighbour_variance_sorted(s: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Abadie–Imbens conditional variance with ties shared: ``J / (J + 1) * (y - mean of its J nearest)^2``.

    The J nearest same-group units are the other units at the same score, else every unit at the
    nearest other score (both sides when equally far). Without ties J = 1: half the squared gap
    (:func:`within_group_variance_sorted`). Independent of the order of tied units.
    """
    m = s.shape[0]
    if m < 2:
        return np.zeros(m)
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    if starts.size == m:
        gaps = np.diff(s)
        if not np.any(gaps[1:] == gaps[:-1]):
            return within_group_variance_sorted(s, ys)
    run = np.repeat(np.arange(starts.size), np.diff(np.r_[starts, m]))
    count = np.diff(np.r_[starts, m]).astype(float)
    total = np.add.reduceat(ys, starts)
    value = s[starts]
    gap_left = np.r_[np.inf, np.diff(value)]
    gap_right = np.r_[np.diff(value), np.inf]
    use_left = gap_left <= gap_right
    use_right = gap_right <= gap_left
    prev = np.maximum(np.arange(starts.size) - 1, 0)
    nxt = np.minimum(np.arange(starts.size) + 1, starts.size - 1)
    n_other = np.where(use_left, count[prev], 0.0) + np.where(use_right, count[nxt], 0.0)
    sum_other = np.where(use_left, total[prev], 0.0) + np.where(use_right, total[nxt], 0.0)
    shared = count[run] > 1
    j = np.where(shared, count[run] - 1, n_other[run])
    neighbour_sum = np.where(shared, total[run] - ys, sum_other[run])
    return j / (j + 1) * (ys - neighbour_sum / j) ** 2


def effective_count(used: np.ndarray) -> float:
    """Effective number of distinct matches, ``(sum w)^2 / sum w^2`` over how often each unit is used."""
    square = float((used**2).sum())
    return float(used.sum()) ** 2 / square if square > 0 else 0.0


#: the low-effective-sample caveat fires below this share of the matched target group, or below MIN_EFFECTIVE
LOW_EFFECTIVE_SHARE = 0.10
MIN_EFFECTIVE = 30
#: the caliper caveat fires above this share of dropped target units
CALIPER_CAVEAT_SHARE = 0.01


def matching_caveats(
    target_units: str, n_target: dict[str, int], dropped: dict[str, int], used: dict[str, np.ndarray]
) -> list[str]:
    """One-line caveats: units a caliper dropped, and few distinct units doing most of the matching.

    ``n_target[g]``/``dropped[g]``: group g's units and how many the caliper dropped; ``used[g]``: how
    often each unit of the other group serves as a match for group g.
    """
    groups = {"att": ("treated",), "atc": ("control",)}.get(target_units, ("treated", "control"))
    estimand = {"att": "ATT", "atc": "ATC"}.get(target_units, "ATE")
    out = []
    for group in groups:
        share = dropped.get(group, 0) / max(n_target[group], 1)
        if share > CALIPER_CAVEAT_SHARE:
            out.append(
                f"caliper dropped {100 * share:.1f}% of {group} units: the estimate is the effect on the matched "
                f"units (not the {estimand})"
            )
    for group in groups:
        other = "control" if group == "treated" else "treated"
        matched = n_target[group] - dropped.get(group, 0)
        effective = effective_count(used[group])
        if matched and (effective < LOW_EFFECTIVE_SHARE * matched or effective < MIN_EFFECTIVE):
            out.append(
                f"few {other} units do the matching for the {matched} {group} units: an effective "
                f"{effective:.1f} distinct {other} matches (the estimate rests on them)"
            )
    return out


def weighted_slopes(X: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Slopes of the least-squares fit of ``y`` on ``[1, X]`` weighted by ``w`` (minimum norm if rank-deficient)."""
    rows, every = _positive_rows(w)
    if X.shape[1] == 0 or rows.size < 2:
        return np.zeros(X.shape[1])
    root = np.sqrt(w if every else w[rows])
    # [1, X] * root, built in place: the same matrix as column_stack then multiply, without two copies
    design = np.empty((rows.size, X.shape[1] + 1))
    design[:, 0] = root
    np.multiply(X if every else X[rows], root[:, None], out=design[:, 1:])
    return np.linalg.lstsq(design, (y if every else y[rows]) * root, rcond=None)[0][1:]


def least_squares_slopes(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """:func:`weighted_slopes` with every weight 1 (the same numbers), without forming the weights."""
    if X.shape[1] == 0 or X.shape[0] < 2:
        return np.zeros(X.shape[1])
    design = np.empty((X.shape[0], X.shape[1] + 1))
    design[:, 0] = 1.0
    design[:, 1:] = X
    return np.linalg.lstsq(design, y, rcond=None)[0][1:]


#: above this many rows psm's regressions solve the normal equations of the centred covariates instead of
#: an SVD of the design (:func:`large_weighted_slopes`); up to it, the numbers are those of the SVD, bit for bit
NORMAL_EQUATIONS_MIN_ROWS = 1_000_000
#: ... unless the covariates' correlation matrix is this ill-conditioned (then the SVD, as below the threshold)
NORMAL_EQUATIONS_MAX_CONDITION = 1e8


def large_weighted_slopes(X: np.ndarray, y: np.ndarray, w: np.ndarray | None = None) -> np.ndarray:
    """:func:`weighted_slopes` (``w`` None: every weight 1, :func:`least_squares_slopes`), above
    :data:`NORMAL_EQUATIONS_MIN_ROWS` rows from the weighted normal equations of the centred covariates:
    the same slopes up to rounding (well-conditioned), at a third of the cost of the SVD on millions of rows."""
    m, p = X.shape
    if m <= NORMAL_EQUATIONS_MIN_ROWS or p == 0 or (w is not None and np.count_nonzero(w) < 2):
        return least_squares_slopes(X, y) if w is None else weighted_slopes(X, y, w)
    total = float(m) if w is None else float(w.sum())
    centred = X - (X.sum(axis=0) if w is None else w @ X) / total
    weighted = centred if w is None else centred * w[:, None]
    gram = weighted.T @ centred
    spread = np.sqrt(np.diag(gram))
    if (
        not np.all(spread > 0)
        or np.linalg.cond(gram / np.outer(spread, spread)) > NORMAL_EQUATIONS_MAX_CONDITION
    ):
        return least_squares_slopes(X, y) if w is None else weighted_slopes(X, y, w)
    y_centred = y - ((y.sum() if w is None else w @ y) / total)
    return np.linalg.solve(gram, weighted.T @ y_centred)


def _positive_rows(w: np.ndarray) -> tuple[np.ndarray, bool]:
    """``(rows where w > 0, whether that is every row)``."""
    rows = np.flatnonzero(w > 0)
    return rows, rows.size == w.shape[0]


def regression_use(X: np.ndarray, w: np.ndarray, discrepancy_sum: np.ndarray) -> np.ndarray:
    """Each pool unit's extra weight in the estimate through the bias adjustment's regression.

    The adjustment subtracts ``slopes' S`` (``S``: the queries' summed covariate gaps to their matches),
    and the weighted least-squares slopes are linear in the pool's outcomes, so pool unit j's outcome
    enters the (sum) estimate with an extra weight ``w_j [1, x_j] pinv(D'WD)[:, 1:] S``, added to how
    often it is used as a match. Counting it keeps the standard error valid when the regression is
    noisy (many covariates, few matched units).
    """
    rows, every = _positive_rows(w)
    out = np.zeros(X.shape[0])
    if X.shape[1] == 0 or rows.size < 2:
        return out
    design = np.empty((rows.size, X.shape[1] + 1))
    design[:, 0] = 1.0
    design[:, 1:] = X if every else X[rows]
    weight = w if every else w[rows]
    gram = (design * weight[:, None]).T @ design
    direction = np.linalg.pinv(gram)[:, 1:] @ discrepancy_sum
    out[rows] = weight * (design @ direction)
    return out


def smoothing_neighbours(m: int) -> int:
    """How many same-arm neighbours a unit's conditional variance is averaged over: about sqrt(m)."""
    return int(np.ceil(np.sqrt(max(m, 1))))


def smoothed_variance_sorted(s: np.ndarray, sigma2: np.ndarray) -> np.ndarray:
    """Each unit's conditional variance averaged with those of its nearest same-arm neighbours on the score.

    ``sigma2`` holds one group's nearest-neighbour variances at its scores ``s`` (sorted). Each is a single squared
    difference (one degree of freedom), unbiased but noisy; in the standard error it is multiplied by
    the square of how often the unit is used as a match, so with limited overlap a few heavily reused
    controls with noisy variances decided the SE, and the 95% CI covered 91-92% (96% with the true
    variance). The average over the ``smoothing_neighbours(m) / 2`` units on each side is a
    nearest-neighbour estimate of the conditional variance with a growing number of neighbours (k ~
    sqrt(m): k -> infinity, k / m -> 0), consistent like Abadie & Imbens' (2006) and far less noisy.
    Units at the same score share one value before and after (so the row order of ties does not matter).
    """
    m = sigma2.shape[0]
    half_width = smoothing_neighbours(m) // 2
    if m == 0 or half_width <= 0:
        return sigma2
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    ties = starts.size < m
    if ties:
        sigma2 = tie_means(starts, sigma2)
    at = np.arange(m)
    lo, hi = np.maximum(at - half_width, 0), np.minimum(at + half_width + 1, m)
    cum = np.r_[0.0, np.cumsum(sigma2)]
    out = (cum[hi] - cum[lo]) / (hi - lo)
    return tie_means(starts, out) if ties else out


def tie_means(starts: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Each value replaced by the mean over its run of tied units (runs begin at ``starts``)."""
    counts = np.diff(np.r_[starts, values.shape[0]])
    return np.repeat(np.add.reduceat(values, starts) / counts, counts)
