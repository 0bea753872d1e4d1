"""Numeric context managers shared by the estimators and the executors (no processes here).

``one_blas_thread`` limits BLAS inside this process; starting, pooling and tuning processes is the
runtime layer's (``causal_cli.runtime``).
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager

import numpy as np


@contextmanager
def quiet_numerics():
    """numpy's floating-point and RuntimeWarnings silenced (the caller turns bad numbers into NaN)."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


_BLAS = None


@contextmanager
def one_blas_thread():
    """BLAS limited to one thread: its threads only add overhead on these tall, skinny products, and on a
    busy machine they slowed psm's refits 3.5x (10 placebo refits at 100k rows: 0.93 s vs 0.27 s).

    Re-entrant: inside an outer limit (a run of simulations) it costs nothing; each real limit costs
    ~12 us, twice per refit."""
    global _BLAS, _LIMITED
    if _BLAS is None:
        try:
            from threadpoolctl import ThreadpoolController

            _BLAS = ThreadpoolController()
        except ImportError:  # pragma: no cover - installed with scikit-learn
            _BLAS = False
    if not _BLAS or _LIMITED:
        yield
        return
    with _BLAS.limit(limits=1, user_api="blas"):
        _LIMITED = True
        try:
            yield
        finally:
            _LIMITED = False


_LIMITED = False


#: set while simulations occupy every core (a process pool): code that would split work over threads runs
#: serially then, instead of competing with the other processes
_CORES_BUSY = False


@contextmanager
def cores_busy():
    """Mark this process's work as one of several processes' on all cores (re-entrant)."""
    global _CORES_BUSY
    previous, _CORES_BUSY = _CORES_BUSY, True
    try:
        yield
    finally:
        _CORES_BUSY = previous


def cores_free() -> bool:
    """False inside :func:`cores_busy`: no extra threads."""
    return not _CORES_BUSY


#: from this many rows independent parts of one fit (psm's two arms, the diagnostics' parts) run in two
#: threads (:func:`thread_map`)
THREAD_MIN_ROWS = 500_000


def thread_map(fn, items, rows: int) -> list:
    """``[fn(*item) for item in items]``; from :data:`THREAD_MIN_ROWS` rows in two threads (NumPy releases
    the GIL in its loops over large arrays), unless simulations already occupy every core
    (:func:`cores_busy`). Each call computes the same numbers either way."""
    items = list(items)
    if rows < THREAD_MIN_ROWS or len(items) < 2 or not cores_free():
        return [fn(*item) for item in items]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(lambda item: fn(*item), items))


def run_concurrently(calls, rows: int) -> list:
    """``[call() for call in calls]`` (independent calls), in two threads from :data:`THREAD_MIN_ROWS` rows."""
    return thread_map(lambda call: call(), ((call,) for call in calls), rows)
