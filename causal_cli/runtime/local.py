"""Simulations on this machine's cores: the main process works alongside ``n_jobs - 1`` worker processes.

Worker processes take chunks of simulations from the front while the main process takes them from the
back, until they meet. Nobody idles at the end, and the main process's share costs no start-up, no copy
and no memory. Workers receive the job (the modification, the estimator's settings, the data) once per
run through shared memory (:class:`~causal_cli.runtime.shared.SharedJob`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from causal_cli.numerics import one_blas_thread, quiet_numerics
from causal_cli.runtime import shared, workers
from causal_cli.runtime.tuning import keep_freed_memory
from causal_cli.simulate import run_serial, simulate, simulate_chunk, tracker

#: a worker's next chunk is this share of the unassigned simulations per process (guided scheduling)
GUIDED_SHARE = 3


class LocalProcessExecutor:
    """Simulations on ``n_jobs`` processes of this machine (``-1``: all cores), in this process alone when
    the work (rows x simulations) is below ``min_work`` (default :data:`~causal_cli.runtime.workers.PARALLEL_MIN_WORK`)."""

    def __init__(
        self,
        n_jobs: int | None = -1,
        notice: Callable[[str], None] | None = None,
        min_work: int | None = None,
    ):
        self.n_jobs, self.notice, self.min_work = n_jobs, notice, min_work

    def processes(self, work: int) -> int:
        return workers.parallel_processes(self.n_jobs, work, self.min_work)

    def warm_up(self, work: int, modules: Sequence[str] = ()) -> None:
        """Start the worker processes in the background if ``work`` row-simulations will run in parallel."""
        workers.start_workers(self.processes(work), modules)

    def run(self, modification, estimator, data, streams, progress=None, label="simulations") -> np.ndarray:
        advance = tracker(progress, len(streams), label, self.notice)
        keep_freed_memory()
        processes = self.processes(data.n * len(streams))
        if processes > 1:
            with one_blas_thread(), quiet_numerics():
                return _run_parallel(modification, estimator, data, streams, processes, advance)
        return run_serial(modification, estimator, data, streams, advance)


def _run_parallel(modification, estimator, data, streams, processes: int, advance) -> np.ndarray:
    """Workers take chunks from the front, the main process single simulations from the back.

    Chunks shrink as the unassigned simulations do (guided scheduling: ``unassigned / (GUIDED_SHARE x
    processes)``), so the workers' last chunks are small and nobody waits long at the end, while early
    chunks are large enough that sending them costs little. Which process runs a simulation changes
    from run to run; its number, stream and result do not.
    """
    total = len(streams)
    out = np.empty(total)
    waiting: dict[Any, range] = {}  # future -> the simulations it runs
    front, back = 0, total  # simulations [front, back) are unassigned

    def collect(block: bool) -> None:
        for future, chunk in list(waiting.items()):
            if block or future.done():
                out[chunk.start : chunk.stop] = future.result()
                advance(len(chunk))
                del waiting[future]

    # workers only call estimator.estimate (a fresh clone + warm start): ship no per-row arrays
    with shared.SharedJob((modification, estimator.compact(), data)) as job:
        executor = workers.pool(processes - 1)

        def feed() -> None:  # each worker has a chunk running and the next one queued
            nonlocal front
            while front < back and len(waiting) < 2 * (processes - 1):
                size = max(1, (back - front) // (GUIDED_SHARE * processes))
                chunk = range(front, front + size)
                front += size
                waiting[
                    executor.submit(_worker_chunk, job.handle, chunk, streams[chunk.start : chunk.stop])
                ] = chunk

        feed()
        while front < back:
            back -= 1
            out[back] = simulate(modification, estimator, data, back, streams[back])
            advance(1)
            collect(block=False)
            feed()
        collect(block=True)
    return out


def _worker_chunk(handle, chunk: range, chunk_streams) -> list[float]:
    modification, estimator, data = shared.load(handle)
    return simulate_chunk(modification, estimator, data, chunk, chunk_streams)
