"""Simulations on this machine's cores: the main process works alongside ``n_jobs - 1`` worker processes.

Worker processes take chunks of simulations from the front while the main process takes them from the
back, until they meet. Nobody idles at the end, and the main process's share costs no start-up, no copy
and no memory. Workers receive the job (the modification, the estimator's settings, the data) once per
run through shared memory (:class:`~causal_cli.runtime.shared.SharedJob`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from causal_cli.numerics import cores_busy, one_blas_thread, quiet_numerics
from causal_cli.runtime import shared, workers
from causal_cli.runtime.tuning import heap_only, keep_freed_memory, release_heap
from causal_cli.simulate import run_serial, simulate, tracker

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

    def data_allocator(self, work: int) -> Callable:
        """``empty(shape)`` for the data of ``work`` row-simulations: in shared memory when worker
        processes will run them (:func:`~causal_cli.runtime.shared.empty`: sent to them without a copy)."""
        return shared.empty if self.processes(work) > 1 else np.empty

    def run(self, modification, estimator, data, streams, progress=None, label="simulations") -> np.ndarray:
        advance = tracker(progress, len(streams), label, self.notice)
        keep_freed_memory()
        processes = self.processes(data.n * len(streams))
        heap_only(data.n)  # until release(): the next runs of simulations reuse the heap too
        if processes > 1:
            with one_blas_thread(), quiet_numerics(), cores_busy():
                return _run_parallel(modification, estimator, data, streams, processes, advance)
        return run_serial(modification, estimator, data, streams, advance)

    def release(self) -> None:
        """Hand the memory this process kept for simulations back (:func:`~causal_cli.runtime.tuning.release_heap`)."""
        release_heap()


def _run_parallel(modification, estimator, data, streams, processes: int, advance) -> np.ndarray:
    """Workers take chunks from the front, the main process single simulations from the back.

    Chunks shrink as the unassigned simulations do (guided scheduling: ``unassigned / (GUIDED_SHARE x
    processes)``), so the workers' last chunks are small, while early chunks are large enough that
    sending them costs little. Whoever starts a simulation first claims it on a shared
    :class:`ClaimBoard`, so once nothing is left to assign the main process goes on into the chunks the
    workers have not reached: a worker still starting (~0.3-0.5 s, more under load) or busy costs no
    waiting, and the main process only waits for simulations a worker has begun. Which process runs a
    simulation changes from run to run; its number, stream and result do not.
    """
    total = len(streams)
    out = np.empty(total)
    mine = np.zeros(total, dtype=bool)  # run by this process
    delivered = np.zeros(total, dtype=bool)  # returned by a worker
    waiting: dict[Any, range] = {}  # future -> the simulations it was sent
    front, back = 0, total  # simulations [front, back) are unassigned

    def collect(futures) -> None:
        for future in futures:
            chunk = waiting.pop(future)
            for i, value in zip(chunk, future.result()):
                if value is not None and not mine[i] and not delivered[i]:
                    out[i], delivered[i] = value, True
                    advance(1)

    # workers only call estimator.estimate (a fresh clone + warm start): ship no per-row arrays
    job, board = shared.SharedJob((modification, estimator.compact(), data)), ClaimBoard(total)
    try:
        executor = workers.pool(processes - 1)

        def feed() -> None:  # each worker has a chunk running and the next one queued
            nonlocal front
            while front < back and len(waiting) < 2 * (processes - 1):
                size = max(1, (back - front) // (GUIDED_SHARE * processes))
                chunk = range(front, front + size)
                front += size
                future = executor.submit(
                    _worker_chunk, job.handle, board.handle, chunk, streams[chunk.start : chunk.stop]
                )
                waiting[future] = chunk

        feed()
        for i in range(total - 1, -1, -1):
            back = min(back, i)
            if board.claim(i):
                out[i], mine[i] = simulate(modification, estimator, data, i, streams[i]), True
                advance(1)
            collect([f for f in list(waiting) if f.done()])
            feed()
        _await_claimed(waiting, mine, collect)
    except BaseException:
        job.close()
        board.close()
        raise
    _close_when_done(list(waiting), job, board)
    return out


def _await_claimed(waiting: dict, mine: np.ndarray, collect) -> None:
    """Wait for the chunks that hold simulations a worker claimed (every one the main process did not run)
    and has not returned yet; chunks the main process ran in full are not waited for."""
    from concurrent.futures import FIRST_COMPLETED, wait

    while True:
        collect([f for f in list(waiting) if f.done()])
        pending = [f for f, chunk in waiting.items() if not mine[chunk.start : chunk.stop].all()]
        if not pending:
            return
        wait(pending, return_when=FIRST_COMPLETED)


def _close_when_done(futures: list, *resources) -> None:
    """Close ``resources`` now, or once ``futures`` (chunks the main process ran in full, still queued
    for a worker that will only skip them) have finished: until then a worker may still open them."""
    if not futures:
        for resource in resources:
            resource.close()
        return
    left = [len(futures)]

    def finished(_future) -> None:
        left[0] -= 1
        if left[0] == 0:
            for resource in resources:
                resource.close()

    for future in futures:
        future.add_done_callback(finished)


class ClaimBoard:
    """One byte per simulation in memory shared with the workers: set by the process that starts it.

    Two processes may both see a simulation unclaimed and both run it (there is no lock): a simulation's
    result depends only on its number and stream, so that costs time, never a different number.
    """

    def __init__(self, total: int):
        import mmap
        import uuid

        size = max(total, 1)
        self.path = None
        if hasattr(os, "memfd_create") and os.path.isdir(f"/proc/{os.getpid()}/fd"):
            self.fd = os.memfd_create("causal-cli-claims", os.MFD_CLOEXEC)
            where = f"/proc/{os.getpid()}/fd/{self.fd}"
        else:
            import tempfile

            self.fd, self.path = tempfile.mkstemp(prefix="causal-cli-claims-")
            where = self.path
        os.ftruncate(self.fd, size)
        self.map = mmap.mmap(self.fd, size)
        self.handle = (uuid.uuid4().hex, where)

    def claim(self, i: int) -> bool:
        """Claim simulation ``i``: False when another process already has."""
        if self.map[i]:
            return False
        self.map[i] = 1
        return True

    def close(self) -> None:
        if self.map is not None:
            self.map.close()
            os.close(self.fd)
            if self.path is not None:
                os.unlink(self.path)
            self.map = None


#: (token, mapping) of the claim board a worker opened last
_BOARD: tuple[str, Any] | None = None


def _worker_board(handle):
    global _BOARD
    token, where = handle
    if _BOARD is None or _BOARD[0] != token:
        import mmap

        with open(where, "r+b") as f:
            _BOARD = (token, mmap.mmap(f.fileno(), 0))
    return _BOARD[1]


def _worker_chunk(handle, board_handle, chunk: range, chunk_streams) -> list[float | None]:
    """The chunk's simulations this worker claims first (None for those another process took)."""
    board = _worker_board(board_handle)
    out: list[float | None] = [None] * len(chunk)
    loaded = None
    with one_blas_thread(), quiet_numerics(), cores_busy():
        for j, (i, stream) in enumerate(zip(chunk, chunk_streams)):
            if board[i]:
                continue
            board[i] = 1
            loaded = loaded or shared.load(handle)
            modification, estimator, data = loaded
            heap_only(data.n)  # kept while the worker lives: its next simulations, and jobs, reuse the heap
            out[j] = simulate(modification, estimator, data, i, stream)
    return out
