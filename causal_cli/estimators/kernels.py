"""Compiled kernels (numba) for the hot path of a large PSM refit: the score sort, the logistic Newton
pass and the k = 1 matching ranges.

The numpy code in :mod:`~causal_cli.estimators.matching` and :mod:`~causal_cli.estimators.propensity`
stays the reference and the fallback: :func:`available` is false when numba is missing (then the numpy
path runs, silently) and below :data:`MIN_ROWS` rows, where numba's import and the loading of the cached
machine code cost more than the kernels save. numba is imported here lazily, on the first large fit,
never at package import.

The kernels are plain Python functions at module level, compiled on first use with
``numba.njit(cache=True)``: numba keeps the machine code in ``__pycache__`` next to this file (the same
trust as ``.pyc``: its index is pickled), or when that is not writable in ``NUMBA_CACHE_DIR`` or the
user's cache directory that numba chooses. Processes compiling at once are safe (numba writes each
cache file to a temporary name and renames it). They run single-threaded: worker processes already use
every core.
"""

from __future__ import annotations

import math
import threading

import numpy as np

#: from this many rows a fit uses the kernels. Measured with ``benchmarks/bench_kernels.py --threshold``
#: (fresh processes, numba's import and the cached-code load included; see benchmarks/results/kernels_s6.md).
MIN_ROWS = 1_000_000
#: the sort carries the rows as 32-bit integers: up to this many rows
SORT_MAX_ROWS = 1 << 32
#: bits per radix digit of the sort: 8 (0.42-0.45 s at 10M rows, spread or nearly constant scores) beat
#: 11 (0.59-0.64 s) and 16 (0.58-0.67 s); ``benchmarks/bench_kernels.py --sort``
RADIX_BITS = 8

_COMPILED: dict | None = None
_MISSING = False
_LOCK = threading.Lock()


def available(n: int) -> bool:
    """Whether a fit of ``n`` rows should use the kernels (numba importable and ``n >= MIN_ROWS``)."""
    return n >= MIN_ROWS and _compiled() is not None


def _compiled() -> dict | None:
    """The compiled kernels by name (from numba's cache after the first process); None without numba."""
    global _COMPILED, _MISSING
    if _COMPILED is not None or _MISSING:
        return _COMPILED
    with _LOCK:  # the two matching groups run in two threads
        if _COMPILED is None and not _MISSING:
            numba = _import_numba()
            _COMPILED = None if numba is None else _jit_all(numba)
            _MISSING = _COMPILED is None
    return _COMPILED


def _jit_all(numba) -> dict | None:
    """Every kernel wrapped by ``numba.njit``, bound in place of its Python function; None if numba refuses
    (e.g. no cache directory it can write: then the numpy path, rather than compiling in every process) or
    its JIT is switched off (``NUMBA_DISABLE_JIT=1``: the way to run the numpy code instead)."""
    if numba.config.DISABLE_JIT:  # NUMBA_DISABLE_JIT=1: the kernels would run as Python loops
        return None
    compiled = {}
    try:
        for name in _KERNELS:
            # sums may be reordered (vectorised); exp and log stay exact. Only the entry points are cached
            # (their machine code holds the helpers'): fewer files to load in every process
            fastmath = {"reassoc", "contract"} if name in _REORDERED_SUMS else False
            jit = numba.njit(cache=name in _ENTRY_POINTS, nogil=True, fastmath=fastmath)
            function = getattr(globals()[name], "py_func", globals()[name])
            compiled[name] = globals()[name] = jit(function)
    except Exception:  # noqa: BLE001 - the numpy path instead
        return None
    return compiled


def _import_numba():
    """numba, or None when it is missing or fails to import (then the numpy path runs; e.g. a script named
    ``coverage.py`` in the working folder shadows coverage.py, which numba imports if it can)."""
    try:
        import numba
    except Exception:  # noqa: BLE001 - any broken install means the numpy path
        return None
    return numba


def warm_up(rows: int | None = None) -> bool:
    """Import numba and load (or compile) every kernel now, e.g. in a worker process before its first
    task; with ``rows``, only when a fit of that many rows would use them. False when nothing was loaded."""
    if rows is not None and rows < MIN_ROWS:
        return False
    kernels = _compiled()
    if kernels is None:
        return False
    score = np.array([0.5, 0.25, 0.5])
    order, s, _ = sorted_score(score)
    _, treated_at, pos, control_at, _ = score_order_queries(order, np.array([True, False, True]), s)
    nearest_ranges(s[control_at], pos, s[treated_at])
    columns = np.ones((2, 3))
    columns[1] = score
    for layout in (columns, np.asfortranarray(columns)):  # a row subset (data_subset) is column-major
        newton_sums(np.zeros(2), layout, np.array([1.0, 0.0, 1.0]), True, True)
    return True


# --- the sort ---------------------------------------------------------------------------------------------


def sorted_score(score: np.ndarray, digit_bits: int = RADIX_BITS) -> tuple[np.ndarray, np.ndarray, bool]:
    """``matching._sorted``'s contract for a finite non-negative float64 score of at least two rows:
    ``(stable order, sorted score, whether any values tie)``, the exact ``argsort(kind="stable")`` order."""
    score = np.ascontiguousarray(score, dtype=np.float64)
    order, s, ties = _compiled()["_exact_sorted"](score, score.view(np.uint64), digit_bits)
    return order, s, bool(ties)


def _radix_pass(keys, rows, out, out_rows, counts, shift, digit_bits):
    """One stable counting-sort pass of ``keys`` (``rows`` with them) into ``out`` on the digit at ``shift``."""
    start = np.empty(counts.shape[0], dtype=np.int64)
    total = 0
    for b in range(counts.shape[0]):
        start[b] = total
        total += counts[b]
    at = np.uint64(shift)
    mask = np.uint64((1 << digit_bits) - 1)
    for i in range(keys.shape[0]):
        key = keys[i]
        b = int((key >> at) & mask)
        out[start[b]] = key
        out_rows[start[b]] = rows[i]
        start[b] += 1


def _exact_sorted(score, bits_of, digit_bits):
    """``(order, sorted score, ties)``: an LSD radix sort of the score's 64 bits, the row carried along.

    The bits of a non-negative double sort like the number and the rows start in order, so the result is
    the stable order, exactly. A digit constant over all scores (the sign and top exponent bits of a
    propensity score; most of the bits of a nearly constant one, as a placebo's) needs no pass. This
    beat sorting packed keys (the score's top bits and the row, as ``matching._packed_order``) then
    fixing the scores that differ below the bits compared: a placebo's scores share their top bits by
    the hundred at 10M rows.
    """
    n = score.shape[0]
    mask = np.uint64((1 << digit_bits) - 1)
    n_digits = (64 + digit_bits - 1) // digit_bits
    counts = np.zeros((n_digits, 1 << digit_bits), dtype=np.int64)
    keys = np.empty(n, dtype=np.uint64)
    rows = np.empty(n, dtype=np.uint32)
    negative_zero = np.uint64(1) << np.uint64(63)
    signed_zero = False
    for i in range(n):
        key = bits_of[i]
        if key == negative_zero:  # -0.0 sorts as 0.0
            key = np.uint64(0)
            signed_zero = True
        keys[i] = key
        rows[i] = np.uint32(i)
        for d in range(n_digits):
            counts[d, int((key >> np.uint64(d * digit_bits)) & mask)] += 1
    other, other_rows = np.empty(n, dtype=np.uint64), np.empty(n, dtype=np.uint32)
    for d in range(n_digits):
        if counts[d].max() < n:
            _radix_pass(keys, rows, other, other_rows, counts[d], d * digit_bits, digit_bits)
            keys, other, rows, other_rows = other, keys, other_rows, rows
    order = rows.astype(np.intp)
    s = keys.view(np.float64)
    if signed_zero:
        for i in range(n):
            s[i] = score[order[i]]
    ties = False
    for i in range(1, n):
        if s[i] == s[i - 1]:
            ties = True
            break
    return order, s, ties


# --- matching ------------------------------------------------------------------------------------------------


def score_order_queries(order: np.ndarray, treated: np.ndarray, s: np.ndarray):
    """``(in_treated, treated_at, pos_of_treated, control_at, pos_of_control)`` of
    ``matching._score_order_queries`` in one pass: ``in_treated = treated[order]``, each group's positions
    in score order and each unit's insertion point (``side="left"``) among the other group's sorted scores."""
    return _compiled()["_queries"](order, np.ascontiguousarray(treated, dtype=np.bool_), s)


def _queries(order, treated, s):
    n = order.shape[0]
    in_treated = np.empty(n, dtype=np.bool_)
    n_treated = 0
    for i in range(n):
        in_treated[i] = treated[order[i]]
        n_treated += in_treated[i]
    # one slot of slack each: every unit is written to both groups' next slot (no branch to mispredict)
    treated_at = np.empty(n_treated + 1, dtype=np.intp)
    pos_of_treated = np.empty(n_treated + 1, dtype=np.intp)
    control_at = np.empty(n - n_treated + 1, dtype=np.intp)
    pos_of_control = np.empty(n - n_treated + 1, dtype=np.intp)
    seen_treated = seen_control = 0
    treated_before = control_before = 0  # before the first unit tied with unit i
    for i in range(n):
        new_value = i == 0 or s[i] != s[i - 1]
        treated_before = seen_treated if new_value else treated_before
        control_before = seen_control if new_value else control_before
        treated_at[seen_treated] = i
        pos_of_treated[seen_treated] = control_before
        control_at[seen_control] = i
        pos_of_control[seen_control] = treated_before
        is_treated = int(in_treated[i])
        seen_treated += is_treated
        seen_control += 1 - is_treated
    return (
        in_treated,
        treated_at[:n_treated],
        pos_of_treated[:n_treated],
        control_at[: n - n_treated],
        pos_of_control[: n - n_treated],
    )


def nearest_ranges(
    sorted_pool: np.ndarray, pos: np.ndarray, queries: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``matching.match_ranges`` for k = 1: each query's nearest pool unit and every unit tied with it,
    ``(lo, hi)``, the same numbers; ties searched by bisection as there."""
    lo = np.empty(queries.shape[0], dtype=np.intp)
    hi = np.empty(queries.shape[0], dtype=np.intp)
    _compiled()["_nearest_ranges"](sorted_pool, np.ascontiguousarray(pos, dtype=np.intp), queries, lo, hi)
    return lo, hi


def _nearest_ranges(pool, pos, queries, lo, hi):
    m = pool.shape[0]
    for i in range(queries.shape[0]):
        p, x = pos[i], queries[i]
        left, right = max(p - 1, 0), min(p, m - 1)
        dist_left, dist_right = abs(pool[left] - x), abs(pool[right] - x)
        best, kth = (right, dist_right) if dist_right < dist_left else (left, dist_left)
        tied = best > 0 and abs(pool[best - 1] - x) <= kth
        tied = tied or best + 1 < m and abs(pool[best + 1] - x) <= kth
        if tied:
            start = _first_close(pool, x, p, kth)
            lo[i], hi[i] = start, _first_far(pool, x, p, kth, start)
        else:
            lo[i], hi[i] = best, best + 1


def _first_close(pool, x, p, kth):
    """The first position in ``[0, m)`` at or after ``p`` or within ``kth`` of ``x`` (bisection), else m."""
    m = pool.shape[0]
    lo, hi = 0, m
    while lo < hi:
        mid = (lo + hi) // 2
        if mid >= p or abs(pool[min(mid, m - 1)] - x) <= kth:
            hi = mid
        else:
            lo = mid + 1
    return lo


def _first_far(pool, x, p, kth, start):
    """The first position in ``[start, m)`` at or after ``p`` and farther than ``kth`` from ``x``, else m."""
    m = pool.shape[0]
    lo, hi = start, m
    while lo < hi:
        mid = (lo + hi) // 2
        if mid >= p and not abs(pool[min(mid, m - 1)] - x) <= kth:
            hi = mid
        else:
            lo = mid + 1
    return lo


# --- the logistic Newton pass ------------------------------------------------------------------------------


def newton_sums(
    beta: np.ndarray, columns: np.ndarray, t: np.ndarray, with_loss: bool, with_hessian: bool
) -> tuple[float, np.ndarray, np.ndarray]:
    """One pass over the ``(p, n)`` design ``columns`` at coefficients ``beta``:
    ``(loglik, columns @ (mu - t), columns @ diag(mu (1 - mu)) @ columns.T)`` with
    ``mu = sigmoid(beta @ columns)`` clipped as :func:`~causal_cli.estimators.propensity.sigmoid`; the
    log-likelihood (``t @ log(mu) + (1 - t) @ log1p(-mu)``) is 0.0 unless ``with_loss``, the Hessian
    zeros unless ``with_hessian``. The sums run in blocks (a rounding error like numpy's pairwise sums)."""
    p = columns.shape[0]
    grad = np.zeros(p)
    hess = np.zeros((p, p))
    loglik = _compiled()["_newton_pass"](
        np.ascontiguousarray(beta, dtype=np.float64), columns, t, with_loss, with_hessian, grad, hess
    )
    return float(loglik), grad, hess


#: rows per block of the kernels' sums: each block's sum is added to the total
_BLOCK = 1024


def _newton_pass(beta, columns, t, with_loss, with_hessian, grad, hess):
    """The sums of :func:`newton_sums` into ``grad`` and ``hess`` (zeroed); returns the log-likelihood.

    Per block of rows: the linear predictor and its logistic terms into scratch arrays, then the sums
    over the block (:func:`_block_sums`: sums that may be reordered, so they vectorise), added to the totals.
    """
    p, n = columns.shape
    loglik = 0.0
    scratch = np.empty((4, _BLOCK))  # eta, d = 1 + exp(-eta), mu - t, mu (1 - mu)
    powers = np.empty(_BLOCK, dtype=np.int64)
    for start in range(0, n, _BLOCK):
        stop = min(start + _BLOCK, n)
        _logistic_terms(beta, columns, t, start, stop, scratch, powers)
        loglik += _block_sums(columns, t, start, stop, scratch, with_loss, with_hessian, grad, hess)
    for j in range(p):
        for k in range(j):
            hess[k, j] = hess[j, k]
    return loglik


def _logistic_terms(beta, columns, t, start, stop, scratch, powers):
    """Rows ``start:stop``: ``eta`` (clipped to +-35), ``d = 1 + exp(-eta)``, ``mu - t``, ``mu (1 - mu)``.

    ``exp`` is computed here as ``2**k exp(r)`` (``r`` within ``ln 2 / 2``, a degree-13 polynomial;
    ``d`` within 1 ulp of numpy's): with the libm ``exp`` numba calls, the pass was no faster than
    numpy's vectorised ufuncs; this way the pass costs about half (parts of these loops vectorise).
    ``powers`` is int64 scratch for ``2**k``'s bits.
    """
    p = columns.shape[0]
    m = stop - start
    eta = scratch[0]
    eta[:m] = beta[0] * columns[0, start:stop]
    for j in range(1, p):
        eta[:m] += beta[j] * columns[j, start:stop]
    poly = scratch[1]
    for i in range(m):
        e = min(max(eta[i], -35.0), 35.0)
        eta[i] = e
        k = np.floor(-e * _INV_LN2 + 0.5)
        r = (-e - k * _LN2_HI) - k * _LN2_LO
        poly[i] = _exp_poly(r)
        powers[i] = (np.int64(k) + 1023) << 52
    scale = powers.view(np.float64)
    for i in range(m):
        d = 1.0 + poly[i] * scale[i]
        mu = 1.0 / d
        poly[i] = d
        scratch[2, i] = mu - t[start + i]
        scratch[3, i] = mu * (1.0 - mu)


def _exp_poly(r):
    """``exp(r)`` for ``|r| <= ln 2 / 2``: Taylor to degree 13 (truncation below 1e-17), Horner's rule."""
    out = 1.0 / 6227020800.0
    out = out * r + 1.0 / 479001600.0
    out = out * r + 1.0 / 39916800.0
    out = out * r + 1.0 / 3628800.0
    out = out * r + 1.0 / 362880.0
    out = out * r + 1.0 / 40320.0
    out = out * r + 1.0 / 5040.0
    out = out * r + 1.0 / 720.0
    out = out * r + 1.0 / 120.0
    out = out * r + 1.0 / 24.0
    out = out * r + 1.0 / 6.0
    out = out * r + 0.5
    out = out * r + 1.0
    return out * r + 1.0


_INV_LN2 = 1.0 / math.log(2.0)
#: ln 2 split so that ``k * _LN2_HI`` is exact for |k| < 2**11 (Cody and Waite)
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10


def _block_sums(columns, t, start, stop, scratch, with_loss, with_hessian, grad, hess):
    """Adds rows ``start:stop``' gradient and Hessian (lower triangle) terms; returns their log-likelihood.

    The log-likelihood needs no logarithm per row: ``log(mu) = -log(d)`` and ``log1p(-mu) = -eta - log(d)``,
    so it is ``-sum((1 - t) eta) - log(prod d)``, the product taken sixteen factors at a time
    (``d < 2**51``) and kept as mantissa and exponent.
    """
    p = columns.shape[0]
    m = stop - start
    for j in range(p):
        total = 0.0
        for i in range(m):
            total += scratch[2, i] * columns[j, start + i]
        grad[j] += total
        if with_hessian:
            for k in range(j + 1):
                total = 0.0
                for i in range(m):
                    total += scratch[3, i] * columns[j, start + i] * columns[k, start + i]
                hess[j, k] += total
    if not with_loss:
        return 0.0
    return _block_loglik(t, start, m, scratch)


def _block_loglik(t, start, m, scratch):
    """``-sum((1 - t) eta) - log(prod d)`` over the block (see :func:`_block_sums`)."""
    shifted = 0.0
    for i in range(m):
        shifted += (1.0 - t[start + i]) * scratch[0, i]
    mantissa, exponent = 1.0, 0
    for chunk in range(0, m, 16):
        product = mantissa
        for i in range(chunk, min(chunk + 16, m)):
            product *= scratch[1, i]
        mantissa, more = math.frexp(product)
        exponent += more
    return -shifted - (np.log(mantissa) + exponent * _LN2)


_LN2 = math.log(2.0)


_ENTRY_POINTS = ("_exact_sorted", "_newton_pass", "_queries", "_nearest_ranges")
_REORDERED_SUMS = ("_block_sums", "_block_loglik")
#: compiled in this order, each bound in place of its Python function (a kernel calls those before it)
_KERNELS = (
    "_radix_pass",
    "_exact_sorted",
    "_queries",
    "_first_close",
    "_first_far",
    "_nearest_ranges",
    "_exp_poly",
    "_logistic_terms",
    "_block_loglik",
    "_block_sums",
    "_newton_pass",
)
