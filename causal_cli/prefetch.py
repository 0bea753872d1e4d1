"""A helper process that imports DoWhy and matplotlib while ``causal run`` composes its config.

Importing DoWhy takes ~2 s of CPU, more than the rest of a default run. ``causal run`` forks this
helper first thing, while the process is still single-threaded and light. The helper imports DoWhy's
light dependencies (numpy, pandas, scipy, sympy, statsmodels, networkx) at once, and DoWhy itself
(with scikit-learn and matplotlib) once the job has passed validation (:func:`proceed`), so a config
error still never loads them. It then runs, on request, the very functions the main process would
run: DoWhy's identification (:func:`causal_cli.identify.estimand_facts` ->
``_dowhy_estimand``) and the report's pictures (:func:`causal_cli.report.plots.draw_all`).

Results are those of the same code in-process: a request the helper cannot answer (it died, or
failed with something other than a one-line :class:`~causal_cli.errors.CausalCliError`) raises
:class:`Unavailable`, and the caller runs the function itself. The helper never outlives the main
process: the kernel kills it when its parent dies (Linux ``PR_SET_PDEATHSIG``; elsewhere it notices
the closed pipe), and the main process kills it on exit. It ignores Ctrl-C, which the main process
handles. ``CAUSAL_PREFETCH=0`` turns it off.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pickle
import signal
import struct
import sys
import threading
import warnings

#: imported at once: what ``import dowhy`` loads, except the modules a config error must never load
#: (DoWhy, scikit-learn, matplotlib: tests/test_performance_contracts.py)
LIGHT_MODULES = (
    "numpy",
    "pandas",
    "scipy.stats",
    "scipy.optimize",
    "sympy",
    "networkx",
    "statsmodels.api",
    "joblib",
)
#: the requests the helper answers: name -> "module:function", run with the caller's arguments
HANDLERS = {
    "estimand_facts": "causal_cli.identify:_dowhy_estimand",
    "render_all": "causal_cli.report.plots:draw_all",
}
_HEADER = struct.Struct("!Q")


class Unavailable(Exception):
    """The helper did not answer; run the function in this process instead."""


class Helper:
    """The main process's end: one request at a time, answered in order."""

    def __init__(self, pid: int, requests: int, replies: int):
        self.pid, self.requests, self.replies = pid, requests, replies
        self.owner = os.getpid()
        self.lock = threading.Lock()
        self.alive = True

    def proceed(self) -> None:
        """The job is valid: let the helper import DoWhy now."""
        if self.alive:
            try:
                _send(self.requests, ("proceed",))
            except OSError:
                self.stop()

    def call(self, name: str, *args):
        """``HANDLERS[name](*args)`` run in the helper; a CausalCliError it raised is raised here."""
        with self.lock:
            if not self.alive:
                raise Unavailable(name)
            try:
                _send(self.requests, ("call", name, args))
                status, value, caught = _receive(self.replies)
            except Exception as exc:  # noqa: BLE001 - gone or garbled: work in-process from now on
                self.stop()
                raise Unavailable(name) from exc
            except BaseException:  # interrupted mid-request: never read its stale reply later
                self.stop()
                raise
        _warn(caught)
        if status == "ok":
            return value
        if status == "error":
            raise value
        raise Unavailable(f"{name}: {value}")

    def stop(self) -> None:
        if not self.alive or os.getpid() != self.owner:  # a forked copy of this process: not its helper
            return
        self.alive = False
        for fd in (self.requests, self.replies):
            with contextlib.suppress(OSError):
                os.close(fd)
        with contextlib.suppress(OSError):
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)


_HELPER: Helper | None = None


#: ``causal run`` arguments after which no job runs in this process: no helper
NO_JOB_FLAGS = ("-h", "--help", "--hydra-help", "-c", "--cfg", "-i", "--info", "-sc", "--shell-completion")


def start(run_args: list[str]) -> None:
    """Fork the helper for ``causal run run_args``, unless no job will run in this process, this process
    already has a helper or DoWhy, or it runs threads (forking those is unsafe)."""
    global _HELPER
    if (
        any(a in NO_JOB_FLAGS or a.startswith("hydra/launcher=") for a in run_args)
        or _HELPER is not None
        or not hasattr(os, "fork")
        or os.environ.get("CAUSAL_PREFETCH", "1") == "0"
        or "dowhy" in sys.modules
        or threading.active_count() != 1
    ):
        return
    requests_r, requests_w = os.pipe()
    replies_r, replies_w = os.pipe()
    parent = os.getpid()
    try:
        pid = os.fork()
    except OSError:
        for fd in (requests_r, requests_w, replies_r, replies_w):
            os.close(fd)
        return
    if pid == 0:  # the helper: leaves only through os._exit
        code = 0
        try:
            os.close(requests_w)
            os.close(replies_r)
            _serve(parent, requests_r, replies_w)
        except BaseException:  # noqa: BLE001 - the main process falls back to working in-process
            code = 1
        finally:
            os._exit(code)
    os.close(requests_r)
    os.close(replies_w)
    _HELPER = Helper(pid, requests_w, replies_r)
    atexit.register(_HELPER.stop)


def running() -> Helper | None:
    """This process's helper, if it has one that still answers (a forked child never uses its parent's)."""
    helper = _HELPER
    return helper if helper is not None and helper.alive and helper.owner == os.getpid() else None


def proceed() -> None:
    helper = running()
    if helper is not None:
        helper.proceed()


def stop() -> None:
    """End this process's helper now, freeing its memory; later requests run in this process."""
    helper = running()
    if helper is not None:
        helper.stop()


def call(name: str, *args):
    """``HANDLERS[name](*args)`` in the helper; :class:`Unavailable` when there is none or it failed."""
    helper = running()
    if helper is None:
        raise Unavailable(name)
    return helper.call(name, *args)


def fork_map(calls: list) -> list:
    """Each of ``calls`` (functions of no arguments) run at once: the first here, each other one in a
    forked copy of this process; their results, in order. A copy that fails is re-run here.

    Used by the helper (a single-threaded Python process) to draw pictures on two cores; elsewhere, or
    where ``fork`` is missing, the calls run one after another.
    """
    if len(calls) < 2 or not _IN_HELPER or not hasattr(os, "fork"):
        return [call() for call in calls]
    children = []
    try:
        for call in calls[1:]:
            read, write = os.pipe()
            pid = os.fork()
            if pid == 0:
                code = 0
                try:
                    os.close(read)
                    _die_with_parent()
                    with warnings.catch_warnings(record=True) as caught:
                        warnings.simplefilter("always")
                        result = call()
                    _send(
                        write, (result, [(str(w.message), w.category, w.filename, w.lineno) for w in caught])
                    )
                except BaseException:  # noqa: BLE001 - the parent re-runs the call
                    code = 1
                finally:
                    os._exit(code)
            os.close(write)
            children.append((pid, read, call))
        results = [calls[0]()]
        for _, read, call in children:
            try:
                result, caught = _receive(read)
            except Exception:  # noqa: BLE001 - the copy died or sent garbage: run it here
                results.append(call())
                continue
            for message, category, filename, lineno in caught:  # as if raised here
                warnings.warn_explicit(message, category, filename, lineno)
            results.append(result)
        return results
    finally:
        for pid, read, _ in children:
            os.close(read)
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)


# ------------------------------------------------------------------------------------ the helper
_IN_HELPER = False


def _serve(parent: int, requests: int, replies: int) -> None:
    import gc

    global _IN_HELPER
    _IN_HELPER = True
    _detach(parent)
    gc.disable()  # imports make few cycles; collecting during them costs ~20% of DoWhy's import time
    _import(LIGHT_MODULES)
    message = _receive(requests)  # EOFError (the parent is gone) ends the helper
    _import_heavy()
    gc.freeze()  # what was imported stays: later collections skip it
    gc.enable()
    while True:
        if message[0] == "call":
            _, name, args = message
            _send(replies, _answer(name, args))
        message = _receive(requests)


def _detach(parent: int) -> None:
    """Die with the parent, leave Ctrl-C to it, and never write to its stdout."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _die_with_parent()
    if os.getppid() != parent:  # the parent died before that took effect
        os._exit(0)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)  # stderr stays: ``python -X importtime`` traces show what the run imported
    os.close(null)
    # identification and drawing need no BLAS threads (nor the memory for their buffers)
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = "1"


def _die_with_parent() -> None:
    """Linux: the kernel kills this process when its parent dies (elsewhere the helper notices the
    closed pipe when it next reads)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _import(names) -> None:
    import importlib

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in names:
            with contextlib.suppress(ImportError):  # optional: the request that needs it will say so
                importlib.import_module(name)


def _import_heavy() -> None:
    import logging

    logging.getLogger("dowhy").setLevel(logging.ERROR)
    _import(("dowhy", "matplotlib.figure", "matplotlib.backends.backend_agg"))


def _answer(name: str, args: tuple) -> tuple[str, object, list]:
    """``(status, result or error, warnings)`` of one request."""
    import importlib

    from causal_cli.errors import CausalCliError

    module, _, function = HANDLERS[name].partition(":")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            status, value = "ok", getattr(importlib.import_module(module), function)(*args)
        except CausalCliError as exc:
            status, value = "error", exc
        except Exception as exc:  # noqa: BLE001 - the caller re-runs it in-process, with the real traceback
            status, value = "failed", f"{type(exc).__name__}: {exc}"
    return status, value, [_plain(w) for w in caught]


def _plain(w: warnings.WarningMessage) -> tuple[str, str, str, str, int]:
    """A warning as plain data: its class's nearest built-in base (a library's own class would need the
    library to unpickle), the class name, the message and where it was raised."""
    base = next(c for c in w.category.__mro__ if c.__module__ == "builtins")
    return base.__name__, w.category.__name__, str(w.message), w.filename, w.lineno


def _warn(caught: list[tuple[str, str, str, str, int]]) -> None:
    """Re-issue the helper's warnings here, where the job records them (as it would have in-process)."""
    import builtins

    seen: dict = {}  # "default" warnings: each once, as a run in-process shows them
    for base, name, message, filename, lineno in caught:
        category = getattr(builtins, base)
        if name != base:
            category = type(name, (category,), {})
        warnings.warn_explicit(message, category, filename, lineno, registry=seen)


# ------------------------------------------------------------------------------ pipe framing
def _send(fd: int, message) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    view = memoryview(_HEADER.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view) :]


def _receive(fd: int):
    (size,) = _HEADER.unpack(_read_exactly(fd, _HEADER.size))
    return pickle.loads(_read_exactly(fd, size))


def _read_exactly(fd: int, size: int) -> bytes:
    chunks, remaining = [], size
    while remaining:
        chunk = os.read(fd, min(remaining, 1 << 20))
        if not chunk:
            raise EOFError("the helper process closed the pipe")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)
