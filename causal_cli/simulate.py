"""Seeded simulations, and the executor protocol that runs them.

A simulation (a refuter's, or a bootstrap re-fit) modifies the data with its own random stream
(``SeedSequence.spawn``) and re-fits the estimator on the result, so its number depends on its index
and its stream only, never on which process or machine ran it. Estimators and refuters receive an
:class:`Executor` and hand it their simulations; they never start processes. :class:`SerialExecutor`
runs them in this process; the executors that use worker processes or a Ray cluster live in
:mod:`causal_cli.runtime`.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from causal_cli.errors import EstimationError
from causal_cli.numerics import one_blas_thread, quiet_numerics

#: a run of simulations projected to take longer than this says so in one line once it has measured a few
COST_NOTE_S = 60.0
#: simulations timed before the projection (or fewer when one already took COST_PROBE_S)
COST_PROBE_SIMS = 3
COST_PROBE_S = 5.0


class Modification(Protocol):
    def modify_task(self, data, index: int, rng: np.random.Generator):
        """Simulation ``index``'s modified data, or None when it gives no estimate."""


class Progress(Protocol):
    """A progress display (the report layer's progress bar has these methods)."""

    def add(self, description: str, total: int): ...

    def advance(self, task, n: int = 1) -> None: ...


class Executor(Protocol):
    """Runs independent simulations; the result is the same whichever executor runs them."""

    def run(
        self,
        modification: Modification,
        estimator,
        data,
        streams: Sequence[np.random.SeedSequence],
        progress: Progress | None = None,
        label: str = "simulations",
    ) -> np.ndarray:
        """Every simulation's estimate (NaN where the estimator could not estimate), in stream order."""


def simulate(modification, estimator, data, index: int, stream) -> float:
    """One simulation's estimate; NaN when the modified data give none (e.g. every row treated).

    While it runs, :func:`spare_row` may hand the modification a row the next simulation overwrites: the
    modified data live only until the estimate is taken."""
    outer, _SIMULATING.active = getattr(_SIMULATING, "active", False), True
    try:
        modified = modification.modify_task(data, index, np.random.default_rng(stream))
        return float("nan") if modified is None else float(estimator.estimate(modified))
    except EstimationError:
        return float("nan")
    finally:
        _SIMULATING.active = outer


#: whether this thread is inside :func:`simulate`
_SIMULATING = threading.local()
#: id(columns) -> (weak reference to ``columns``, the ``(rows + 1, n)`` block that starts with its memory)
_ROOM: dict[int, tuple[Any, np.ndarray]] = {}


def give_room(columns: np.ndarray, block: np.ndarray) -> None:
    """Record that ``block`` (C-contiguous, one row more than ``columns``) begins with ``columns``' memory
    and that its last row is free for this process to write (:func:`spare_row`)."""
    if block.shape != (columns.shape[0] + 1, columns.shape[1]) or not block.flags.c_contiguous:
        raise ValueError(f"a block of shape {block.shape} is not {columns.shape} plus one row")
    if block.__array_interface__["data"][0] != columns.__array_interface__["data"][0]:
        raise ValueError("the block does not begin with the columns' memory")
    key = id(columns)
    _ROOM[key] = (weakref.ref(columns, lambda _ref: _ROOM.pop(key, None)), block)


def room_after(start: int, nbytes: int) -> int:
    """The bytes of the spare row given (:func:`give_room`) to the array at address ``start`` of ``nbytes``
    bytes, or 0 (a job in shared memory sends it with the array: :mod:`causal_cli.runtime.shared`)."""
    for ref, block in list(_ROOM.values()):
        columns = ref()
        if (
            columns is not None
            and columns.__array_interface__["data"][0] == start
            and columns.nbytes == nbytes
        ):
            return block.nbytes - nbytes
    return 0


def spare_row(columns: np.ndarray) -> np.ndarray | None:
    """``columns`` with one more row after them, in the same memory, the last row free to overwrite:
    inside :func:`simulate` when the data were laid out with room for it (:func:`give_room`), else None.

    A refuter that adds a covariate (random common cause) then writes one row per simulation instead of
    copying every column (at 10M rows and two covariates, 229 MB copied and held per simulation)."""
    if not getattr(_SIMULATING, "active", False):
        return None
    room = _ROOM.get(id(columns))
    if room is None or room[0]() is not columns:
        return None
    # a new array object each time: a cache keyed by the columns object (there is none in the estimators
    # now) must not see last simulation's covariate as this one's
    return room[1][...]


def simulate_chunk(modification, estimator, data, indices: range, streams) -> list[float]:
    """Simulations ``indices`` (with their ``streams``), as a worker process or a Ray task runs them."""

    with one_blas_thread(), quiet_numerics():
        return [simulate(modification, estimator, data, i, s) for i, s in zip(indices, streams)]


def tracker(
    progress: Progress | None, total: int, label: str, notice: Callable[[str], None] | None
) -> Callable[[int], None]:
    """``advance(count)``: moves the progress bar (if any) and the :class:`CostWatch` of ``total`` simulations."""
    task = progress.add(label, total) if progress is not None else None
    watch = CostWatch(total, label, notice=notice)

    def advance(count: int) -> None:
        if task is not None:
            progress.advance(task, count)
        watch.update(count)

    return advance


def run_serial(modification, estimator, data, streams, advance: Callable[[int], None]) -> np.ndarray:
    """The simulations one after another in this process (one BLAS thread, numeric warnings silenced)."""

    out = np.empty(len(streams))
    # many small fits: BLAS threads only add overhead; a degenerate simulation's numeric warnings (e.g. a
    # resample with one treated row) would repeat once per simulation, and its NaN says it already
    with one_blas_thread(), quiet_numerics():
        for i in range(len(streams)):
            out[i] = simulate(modification, estimator, data, i, streams[i])
            advance(1)
    return out


class SerialExecutor:
    """Runs the simulations in this process: the default where no executor is given."""

    def __init__(self, notice: Callable[[str], None] | None = None):
        self.notice = notice

    def run(self, modification, estimator, data, streams, progress=None, label="simulations") -> np.ndarray:
        advance = tracker(progress, len(streams), label, self.notice)
        return run_serial(modification, estimator, data, streams, advance)


class CostWatch:
    """Projects the time of ``total`` simulations from the first few and, when it exceeds
    :data:`COST_NOTE_S`, says so once through ``notice`` (e.g. a gradient-boosting propensity model
    refitted 200 times)."""

    def __init__(
        self,
        total: int,
        label: str,
        limit_s: float = COST_NOTE_S,
        clock=None,
        notice: Callable[[str], None] | None = None,
    ):
        import time

        self.total, self.label, self.limit_s, self.notice = total, label, limit_s, notice
        self.clock = clock or time.perf_counter
        self.started = self.clock()
        self.done = 0
        self.projected_s: float | None = None

    def update(self, count: int) -> str | None:
        """Record ``count`` finished simulations; return (and pass to ``notice``) the note when it is first due."""
        self.done += count
        if self.projected_s is not None or self.done <= 0 or self.done >= self.total:
            return None
        elapsed = self.clock() - self.started
        if self.done < min(COST_PROBE_SIMS, self.total) and elapsed < COST_PROBE_S:
            return None
        self.projected_s = elapsed / self.done * self.total
        if self.projected_s <= self.limit_s:
            return None
        message = (
            f"{self.label}: {self.total} simulations projected to take about {_duration(self.projected_s)} "
            f"({elapsed / self.done:.1f} s each over the first {self.done}); fewer simulations "
            "(num_simulations, ci.num_bootstrap) or a cheaper model would shorten it"
        )
        if self.notice is not None:
            self.notice(message)
        return message


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
