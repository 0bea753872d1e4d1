"""A job's data shared with worker processes once: pickle protocol-5 buffers in shared memory.

Arrays above :data:`INLINE_MAX_BYTES` are written once to shared memory and memory-mapped read-only by
the workers, never pickled per chunk. On Linux the memory is anonymous (``memfd``, opened by the
workers through ``/proc/<pid>/fd``), so it goes away with the processes that hold it, however the run
dies; elsewhere it is a file under ``/dev/shm`` or the temporary folder, removed on exit.
"""

from __future__ import annotations

import os
import pickle
import shutil
import tempfile
import uuid
from typing import Any

#: arrays up to this size are pickled with the job; larger ones go through shared memory
INLINE_MAX_BYTES = 64 * 1024


class SharedJob:
    """A picklable handle to ``obj`` whose large arrays sit in shared-memory files (removed on exit)."""

    def __init__(self, obj: Any):
        buffers: list[pickle.PickleBuffer] = []

        def out_of_band(buffer: pickle.PickleBuffer) -> bool:
            if buffer.raw().nbytes <= INLINE_MAX_BYTES:
                return True  # in-band
            buffers.append(buffer)
            return False

        header = dumps(obj, out_of_band)
        size = sum(b.raw().nbytes for b in buffers)
        self.folder, self.fds = None, []
        try:
            if _anonymous_memory():
                paths = [self._anonymous(i, buffer) for i, buffer in enumerate(buffers)]
            else:
                self.folder = tempfile.mkdtemp(prefix="causal-cli-", dir=_shared_folder(size))
                paths = [self._file(i, buffer) for i, buffer in enumerate(buffers)]
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

    def _file(self, i: int, buffer: pickle.PickleBuffer) -> str:
        path = os.path.join(self.folder, f"{i}.bin")
        with open(path, "wb") as f:
            f.write(buffer.raw())
        return path

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


def dumps(obj: Any, buffer_callback) -> bytes:
    """``pickle.dumps(obj, protocol=5)``, with an :class:`EstimationData`'s ``X`` sent as the view of its
    columns it is (:func:`_reduce_views`), not as a second copy of the covariates."""
    import io

    out = io.BytesIO()
    _ViewPickler(out, protocol=5, buffer_callback=buffer_callback).dump(obj)
    return out.getvalue()


class _ViewPickler(pickle.Pickler):
    def reducer_override(self, obj):
        from causal_cli.estimators.base import EstimationData

        return _reduce_views(obj) if type(obj) is EstimationData else NotImplemented


def _reduce_views(data):
    """``data`` without ``X`` when ``X`` is ``columns[1:].T`` (as :class:`EstimationData` lays it out): a
    protocol-5 pickle writes every array's own buffer, so the view went out as a copy (at 10M rows and
    two covariates, 160 MB more shared memory, and a worker's ``X`` no longer a view of its columns)."""
    from dataclasses import fields

    columns = data._columns
    if columns is None or not _is_view(data.X, columns[1:].T):
        return NotImplemented
    state = {f.name: getattr(data, f.name) for f in fields(data) if f.name != "X"}
    return _with_view, (type(data), state)


def _is_view(a, b) -> bool:
    """Whether ``a`` is the same window on the same memory as ``b``."""
    return (
        a.shape == b.shape
        and a.strides == b.strides
        and a.dtype == b.dtype
        and a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
    )


def _with_view(cls, state: dict):
    return cls(X=state["_columns"][1:].T, **state)


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


def load(handle):
    """The job behind a :class:`SharedJob` handle, in a worker (mapped once per job, then reused)."""
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


def forget() -> None:
    """Drop the job this process loaded last (its mappings close with it)."""
    global _LOADED
    _LOADED = None
