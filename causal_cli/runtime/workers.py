"""The reusable pool of worker processes, and how each worker is set up.

Workers get SIGKILL when the process that started them dies (``PR_SET_PDEATHSIG``), so a wrapper
reading the run's output is not kept waiting; and they never see Ctrl-C (they run in their own process
group), so an interrupted run prints one line, not a traceback per worker.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from causal_cli.runtime.tuning import WORKER_ENV, keep_freed_memory

#: below this many row-simulations (rows x simulations), a worker process costs more than it saves
PARALLEL_MIN_WORK = 1_000_000
#: idle worker processes exit after this many seconds (a sweep reuses them between jobs)
WORKER_IDLE_S = 300


def resolve_n_jobs(n_jobs: int | None) -> int:
    """Processes to use: ``-1`` all cores, ``-2`` all but one, ..., capped at the core count."""
    cores = os.cpu_count() or 1
    if n_jobs is None or n_jobs == 0:
        return 1
    return max(1, cores + 1 + n_jobs) if n_jobs < 0 else min(int(n_jobs), cores)


def parallel_processes(n_jobs: int | None, work: int, min_work: int | None = None) -> int:
    """Processes for ``work`` row-simulations: 1 when small, nested in a worker, or outside the main thread."""
    import multiprocessing
    import threading

    processes = resolve_n_jobs(n_jobs)
    if processes == 1 or work < (PARALLEL_MIN_WORK if min_work is None else min_work):
        return 1
    if multiprocessing.current_process().daemon or threading.current_thread() is not threading.main_thread():
        return 1
    from joblib.externals.loky import process_executor

    return 1 if process_executor._CURRENT_DEPTH > 0 else processes  # inside a sweep's worker already


def start_workers(processes: int, modules: Sequence[str] = ()) -> None:
    """Start ``processes - 1`` worker processes in the background, importing ``modules``.

    A worker takes ~0.5 s to start and import numpy and our modules; started before identification they
    are ready when the first simulation needs them.
    """
    if processes > 1:
        executor = pool(processes - 1)
        # the module that runs their chunks too, so the first chunk unpickles without an import
        names = sorted({*modules, "causal_cli.runtime.local"})
        for _ in range(processes - 1):
            executor.submit(_warm_up, names)


def pool(workers: int):
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
    args = _quiet_resource_tracker(list(args))
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


#: the warning filter given to loky's resource tracker process (its messages start "resource_tracker: ")
TRACKER_WARNINGS = "ignore:resource_tracker:UserWarning"
#: the resource tracker's niceness: the lowest priority (see :func:`_quiet_resource_tracker`)
TRACKER_NICE = 19


def _quiet_resource_tracker(args: list) -> list:
    """The resource tracker's command line with its own warnings off, at the lowest priority.

    Workers stopped by Ctrl-C / SIGTERM leave their semaphores registered; the tracker unlinks them at
    shutdown, as it should, but first warns about "leaked semlock objects" on the terminal it inherited,
    after the run's one interrupted line (seen in CI: 2 extra stderr lines). Only the tracker is quieted.

    The tracker starts with the first worker and imports joblib and numpy (~0.25 s of CPU) while the
    worker imports the same and the main process runs identification and the estimate: on 2 cores a
    third busy process. Niced it takes a core when one is idle: the tracker only has to read its pipe
    (writes to it do not wait) and clean up at exit, so its lateness delays nothing.
    """
    code = next((i for i, a in enumerate(args) if b"resource_tracker import main" in os.fsencode(a)), 0)
    if len(args) < 2 or code == 0:
        return args
    niced = os.fsencode(f"import os; os.nice({TRACKER_NICE}); ") + os.fsencode(args[code])
    args = [*args[:code], niced, *args[code + 1 :]]
    return [args[0], os.fsencode("-W"), os.fsencode(TRACKER_WARNINGS), *args[1:]]


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
