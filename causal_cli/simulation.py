"""Seeded simulations in parallel: the engine behind refuter simulations and bootstrap confidence intervals.

A simulation modifies the data with its own random stream (``SeedSequence.spawn``) and re-fits the
estimator on the result, so the numbers are identical whatever ``n_jobs`` is.

In parallel, the main process is one of the ``n_jobs`` workers: ``n_jobs - 1`` worker processes take
chunks of simulations from the front while the main process takes them from the back, until they meet.
Nobody idles at the end, and the main process's share costs no start-up, no copy and no memory.
Workers receive the job (the modification, the estimator's settings, the data) once per run: arrays
above :data:`INLINE_MAX_BYTES` travel as pickle protocol-5 buffers written once to shared memory
and memory-mapped read-only by the workers, never pickled per chunk.

However the run dies, nothing stays behind: on Linux the shared memory is anonymous (``memfd``, opened
by the workers through ``/proc/<pid>/fd``), so it goes away with the processes that hold it; workers
get SIGKILL when the process that started them dies (``PR_SET_PDEATHSIG``), so a wrapper reading the
run's output is not kept waiting; and they never see Ctrl-C (they run in their own process group),
so an interrupted run prints one line, not a traceback per worker.
"""

from __future__ import annotations

import os
import pickle
import shutil
import sys
import tempfile
import uuid
import warnings
from collections.abc import Sequence
from contextlib import contextmanager
from typing import Any, Protocol

import numpy as np

from causal_cli.errors import EstimationError

#: below this many row-simulations (rows x simulations), a worker process costs more than it saves
PARALLEL_MIN_WORK = 1_000_000
#: arrays up to this size are pickled with the job; larger ones go through shared memory
INLINE_MAX_BYTES = 64 * 1024
#: a worker's next chunk is this share of the unassigned simulations per process (guided scheduling)
GUIDED_SHARE = 3
#: idle worker processes exit after this many seconds (a sweep reuses them between jobs)
WORKER_IDLE_S = 300
#: a run of simulations projected to take longer than this says so in one line once it has measured a few
COST_NOTE_S = 60.0
#: simulations timed before the projection (or fewer when one already took COST_PROBE_S)
COST_PROBE_SIMS = 3
COST_PROBE_S = 5.0
#: worker processes run many small fits: one BLAS/OpenMP thread each, set before numpy loads
WORKER_ENV = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}


class Modification(Protocol):
    def modify_task(self, data, index: int, rng: np.random.Generator):
        """Simulation ``index``'s modified data, or None when it gives no estimate."""


def resolve_n_jobs(n_jobs: int | None) -> int:
    """Processes to use: ``-1`` all cores, ``-2`` all but one, ..., capped at the core count."""
    cores = os.cpu_count() or 1
    if n_jobs is None or n_jobs == 0:
        return 1
    return max(1, cores + 1 + n_jobs) if n_jobs < 0 else min(int(n_jobs), cores)


def parallel_processes(n_jobs: int | None, work: int) -> int:
    """Processes for ``work`` row-simulations: 1 when small, nested in a worker, or outside the main thread."""
    import multiprocessing
    import threading

    processes = resolve_n_jobs(n_jobs)
    if processes == 1 or work < PARALLEL_MIN_WORK:
        return 1
    if multiprocessing.current_process().daemon or threading.current_thread() is not threading.main_thread():
        return 1
    from joblib.externals.loky import process_executor

    return 1 if process_executor._CURRENT_DEPTH > 0 else processes  # inside a sweep's worker already


def start_workers(n_jobs: int | None, work: int, modules: Sequence[str] = ()) -> None:
    """Start the worker processes in the background if ``work`` will run in parallel.

    A worker takes ~0.5 s to start and import numpy and our modules; started before identification (which
    spends seconds importing DoWhy in the main process) they are ready when the first simulation needs them.
    """
    processes = parallel_processes(n_jobs, work)
    if processes > 1:
        executor = _executor(processes - 1)
        for _ in range(processes - 1):
            executor.submit(_warm_up, sorted(modules))


def run_simulations(
    modification: Modification,
    estimator,
    data,
    streams: Sequence[np.random.SeedSequence],
    n_jobs: int | None = -1,
    progress=None,
    label: str = "simulations",
) -> np.ndarray:
    """Every simulation's estimate (NaN where the estimator could not estimate), in stream order."""
    from causal_cli.estimators.propensity import one_blas_thread

    total = len(streams)
    task = progress.add(label, total) if progress is not None else None
    watch = CostWatch(total, label)

    def advance(count: int) -> None:
        if task is not None:
            progress.advance(task, count)
        watch.update(count)

    keep_freed_memory()
    processes = parallel_processes(n_jobs, data.n * total)
    # many small fits: BLAS threads only add overhead; a degenerate simulation's numeric warnings (e.g. a
    # resample with one treated row) would repeat once per simulation, and its NaN says it already
    with one_blas_thread(), quiet_numerics():
        if processes > 1:
            return _run_parallel(modification, estimator, data, streams, processes, advance)
        out = np.empty(total)
        for i in range(total):
            out[i] = simulate(modification, estimator, data, i, streams[i])
            advance(1)
        return out


class CostWatch:
    """Projects the time of ``total`` simulations from the first few and, when it exceeds
    :data:`COST_NOTE_S`, says so once (e.g. a gradient-boosting propensity model refitted 200 times)."""

    def __init__(self, total: int, label: str, limit_s: float = COST_NOTE_S, clock=None):
        import time

        self.total, self.label, self.limit_s = total, label, limit_s
        self.clock = clock or time.perf_counter
        self.started = self.clock()
        self.done = 0
        self.projected_s: float | None = None

    def update(self, count: int) -> str | None:
        """Record ``count`` finished simulations; return (and print) the note when it is first due."""
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
        from causal_cli.report import console

        console.notice(message)
        return message


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def simulate(modification, estimator, data, index: int, stream) -> float:
    """One simulation's estimate; NaN when the modified data give none (e.g. every row treated)."""
    try:
        modified = modification.modify_task(data, index, np.random.default_rng(stream))
        return float("nan") if modified is None else float(estimator.estimate(modified))
    except EstimationError:
        return float("nan")


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
    with SharedJob((modification, estimator.compact(), data)) as job:
        executor = _executor(processes - 1)

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
    modification, estimator, data = _load(handle)
    with quiet_numerics():
        return [simulate(modification, estimator, data, i, s) for i, s in zip(chunk, chunk_streams)]


@contextmanager
def quiet_numerics():
    """numpy's floating-point and RuntimeWarnings silenced (the caller turns bad numbers into NaN)."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


class SharedJob:
    """A picklable handle to ``obj`` whose large arrays sit in shared-memory files (removed on exit)."""

    def __init__(self, obj: Any):
        buffers: list[pickle.PickleBuffer] = []

        def out_of_band(buffer: pickle.PickleBuffer) -> bool:
            if buffer.raw().nbytes <= INLINE_MAX_BYTES:
                return True  # in-band
            buffers.append(buffer)
            return False

        header = pickle.dumps(obj, protocol=5, buffer_callback=out_of_band)
        size = sum(b.raw().nbytes for b in buffers)
        self.folder, self.fds = None, []
        try:
            if _anonymous_memory():
                paths = [self._anonymous(i, buffer) for i, buffer in enumerate(buffers)]
            else:
                self.folder = tempfile.mkdtemp(prefix="causal-cli-", dir=_shared_folder(size))
                paths = []
                for i, buffer in enumerate(buffers):
                    path = os.path.join(self.folder, f"{i}.bin")
                    with open(path, "wb") as f:
                        f.write(buffer.raw())
                    paths.append(path)
        except BaseException:
            self.close()
            raise
        self.handle = (uuid.uuid4().hex, header, paths)

    def _anonymous(self, i: int, buffer: pickle.PickleBuffer) -> str:
        """``buffer`` in an anonymous memory file; workers open it by ``/proc/<this pid>/fd/<fd>``."""
        fd = os.memfd_create(f"causal-cli-{i}", os.MFD_CLOEXEC)
        self.fds.append(fd)
        with open(fd, "wb", closefd=False) as f:
            f.write(buffer.raw())
        return f"/proc/{os.getpid()}/fd/{fd}"

    def close(self) -> None:
        for fd in self.fds:
            os.close(fd)
        self.fds = []
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> SharedJob:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def _anonymous_memory() -> bool:
    """Anonymous shared memory that other processes can open: Linux ``memfd`` with ``/proc``."""
    return hasattr(os, "memfd_create") and os.path.isdir(f"/proc/{os.getpid()}/fd")


def _shared_folder(size: int) -> str | None:
    """``/dev/shm`` when it has room for ``size`` bytes twice over, else the temporary folder."""
    try:
        stat = os.statvfs("/dev/shm")
        if stat.f_bavail * stat.f_frsize > 2 * size and os.access("/dev/shm", os.W_OK):
            return "/dev/shm"
    except OSError:
        pass
    return None


#: (token, job) of the last job a worker loaded: its chunks reuse it; a new job replaces (and frees) it
_LOADED: tuple[str, Any] | None = None


def _load(handle):
    global _LOADED
    token, header, paths = handle
    if _LOADED is None or _LOADED[0] != token:
        import mmap

        _LOADED = None
        buffers = []
        for path in paths:
            with open(path, "rb") as f:
                buffers.append(mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ))
        _LOADED = (token, pickle.loads(header, buffers=buffers))
    return _LOADED[1]


def _executor(workers: int):
    """The reusable worker pool; its processes start in their own process group (:func:`_own_process_group`)."""
    from joblib.externals.loky import get_reusable_executor

    _own_process_group()
    return get_reusable_executor(
        max_workers=workers,
        timeout=WORKER_IDLE_S,
        env=WORKER_ENV,
        initializer=_worker_init,
        initargs=(os.getpid(),),
    )


def _own_process_group() -> None:
    """Start worker processes (and the resource trackers) in their own process group (idempotent).

    Ctrl-C in a terminal goes to the foreground process group: a worker still importing numpy would
    print a KeyboardInterrupt traceback (23-44 lines were measured). In their own group they never get
    it; the main process handles it, and the workers die with it (:func:`_worker_init`). loky's and
    multiprocessing's process launchers are the same call with the new group requested (``setpgid(0,
    0)`` in the child, ``pgid_to_set=0``); on other Python versions they are left as they are.
    """
    global _GROUPS_SET
    if _GROUPS_SET or os.name != "posix" or not (3, 11) <= sys.version_info < (3, 14):
        return
    import multiprocessing.util

    from joblib.externals.loky.backend import fork_exec

    fork_exec.fork_exec = _fork_exec_own_group
    multiprocessing.util.spawnv_passfds = _spawnv_passfds_own_group
    _GROUPS_SET = True


_GROUPS_SET = False


def _fork_exec_own_group(cmd, keep_fds, env=None):
    """``loky.backend.fork_exec.fork_exec`` (Python 3.11-3.13), the child in a new process group."""
    import _posixsubprocess
    import subprocess

    cmd = [os.fsencode(arg) for arg in cmd]
    env = {**os.environ, **(env or {})}
    encoded_env = [os.fsencode(f"{key}={value}") for key, value in env.items()]
    keep_fds = tuple(sorted(map(int, keep_fds)))
    errpipe_read, errpipe_write = os.pipe()
    try:
        return _posixsubprocess.fork_exec(
            cmd, cmd[0:1], True, keep_fds, None, encoded_env,
            -1, -1, -1, -1, -1, -1, errpipe_read, errpipe_write,
            False, False, 0, None, None, None, -1, None, subprocess._USE_VFORK,
        )  # fmt: skip
    finally:
        os.close(errpipe_read)
        os.close(errpipe_write)


def _spawnv_passfds_own_group(path, args, passfds):
    """``multiprocessing.util.spawnv_passfds`` (Python 3.11-3.13), the child in a new process group."""
    import _posixsubprocess
    import subprocess

    passfds = tuple(sorted(map(int, passfds)))
    errpipe_read, errpipe_write = os.pipe()
    try:
        return _posixsubprocess.fork_exec(
            args, [path], True, passfds, None, None,
            -1, -1, -1, -1, -1, -1, errpipe_read, errpipe_write,
            False, False, 0, None, None, None, -1, None, subprocess._USE_VFORK,
        )  # fmt: skip
    finally:
        os.close(errpipe_read)
        os.close(errpipe_write)


def _worker_init(parent: int) -> None:
    """In each worker: die with the process that started it, and leave Ctrl-C to that process."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the parent died before the line above: nothing to work for
        os._exit(1)


def _warm_up(modules: list[str]) -> None:
    import importlib

    for name in modules:
        importlib.import_module(name)
    keep_freed_memory()


def keep_freed_memory() -> None:
    """Let glibc keep freed memory for reuse instead of handing it back to the kernel (once per process).

    Every simulation allocates and frees the same row-sized arrays; by default each is a fresh mmap whose
    pages the kernel zeroes again: 9,500 page faults and ~15% of a psm placebo refit at 1M rows (measured).
    Peak memory is unchanged. A no-op where glibc's ``mallopt`` is unavailable.
    """
    global _ALLOCATOR_TUNED
    if _ALLOCATOR_TUNED:
        return
    _ALLOCATOR_TUNED = True
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 32 * 1024 * 1024)  # M_MMAP_THRESHOLD: heap, not mmap, up to 32 MB (glibc's max)
        libc.mallopt(-1, 1 << 30)  # M_TRIM_THRESHOLD: do not trim the heap after each simulation
    except (OSError, AttributeError):
        pass


_ALLOCATOR_TUNED = False
