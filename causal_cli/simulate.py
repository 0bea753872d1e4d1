"""Seeded simulations, and the executor protocol that runs them.

A simulation (a refuter's, or a bootstrap re-fit) modifies the data with its own random stream
(``SeedSequence.spawn``) and re-fits the estimator on the result, so its number depends on its index
and its stream only, never on which process or machine ran it. Estimators and refuters receive an
:class:`Executor` and hand it their simulations; they never start processes. :class:`SerialExecutor`
runs them in this process; the executors that use worker processes or a Ray cluster live in
:mod:`causal_cli.runtime`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

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
    """One simulation's estimate; NaN when the modified data give none (e.g. every row treated)."""
    try:
        modified = modification.modify_task(data, index, np.random.default_rng(stream))
        return float("nan") if modified is None else float(estimator.estimate(modified))
    except EstimationError:
        return float("nan")


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
