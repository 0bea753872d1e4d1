"""A job's data shared with worker processes once: pickle protocol-5 buffers in shared memory.

Arrays above :data:`INLINE_MAX_BYTES` are written once to shared memory and memory-mapped read-only by
the workers, never pickled per chunk. On Linux the memory is anonymous (``memfd``, opened by the
workers through ``/proc/<pid>/fd``), so it goes away with the processes that hold it, however the run
dies; elsewhere it is a file under ``/dev/shm`` or the temporary folder, removed on exit.

Arrays made by :func:`empty` live in shared memory from the start: a job sends where they are, not a
copy, so the main process and its workers hold one copy of the data (at 10M rows, the treatment, outcome
and covariates are 380 MB), and a worker maps it once for every job that uses it (each refuter's).
"""

from __future__ import annotations

import mmap
import os
import pickle
import shutil
import tempfile
import uuid
import weakref
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
        places = [_in_segment(buffer.raw()) for buffer in buffers]
        size = sum(b.raw().nbytes for b, place in zip(buffers, places) if place is None)
        self.folder, self.fds = None, []
        try:
            if not _anonymous_memory() and size:
                self.folder = tempfile.mkdtemp(prefix="causal-cli-", dir=_shared_folder(size))
            paths = [
                place or self._write(i, buffer) for i, (buffer, place) in enumerate(zip(buffers, places))
            ]
        except BaseException:
            self.close()
            raise
        self.handle = (uuid.uuid4().hex, header, paths)

    def _write(self, i: int, buffer: pickle.PickleBuffer) -> str:
        return self._file(i, buffer) if self.folder is not None else self._anonymous(i, buffer)

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


class _Segment(mmap.mmap):
    """An anonymous shared-memory file mapped in this process (:func:`empty`); its descriptor closes
    when the last array over it goes."""


#: the live segments of this process, by token
_SEGMENTS: weakref.WeakValueDictionary[str, _Segment] = weakref.WeakValueDictionary()


def empty(shape, dtype=float):
    """``np.empty(shape, dtype)`` in anonymous shared memory (where there is none: ``np.empty``).

    A :class:`SharedJob` sends such an array's place (:func:`_in_segment`), not a copy; the worker
    processes map the same pages as this process."""
    import numpy as np

    count = int(np.prod(shape))
    nbytes = count * np.dtype(dtype).itemsize
    if nbytes <= INLINE_MAX_BYTES or not _anonymous_memory():
        return np.empty(shape, dtype)
    fd = os.memfd_create("causal-cli-data", os.MFD_CLOEXEC)
    try:
        os.ftruncate(fd, nbytes)
        segment = _Segment(fd, nbytes)
    except BaseException:
        os.close(fd)
        raise
    weakref.finalize(segment, os.close, fd)
    segment.token, segment.path = uuid.uuid4().hex, f"/proc/{os.getpid()}/fd/{fd}"
    array = np.frombuffer(segment, dtype=dtype, count=count).reshape(shape)
    segment.start = array.__array_interface__["data"][0]
    _SEGMENTS[segment.token] = segment
    return array


def _in_segment(raw: memoryview) -> tuple[str, str, int, int, int] | None:
    """``(token, path, offset, bytes, room)`` of memory inside one of this process's segments, else None;
    ``room``: the bytes of the free row after it (:func:`causal_cli.simulate.give_room`), or 0."""
    if not _SEGMENTS:
        return None
    import numpy as np

    from causal_cli.simulate import room_after

    start = np.frombuffer(raw, dtype=np.uint8).__array_interface__["data"][0]
    for segment in list(_SEGMENTS.values()):
        offset = start - segment.start
        if 0 <= offset and offset + raw.nbytes <= len(segment):
            room = room_after(start, raw.nbytes)
            return (
                segment.token,
                segment.path,
                offset,
                raw.nbytes,
                room if offset + raw.nbytes + room <= len(segment) else 0,
            )
    return None


#: (token, job) of the last job a worker loaded: its chunks reuse it; a new job replaces (and frees) it
_LOADED: tuple[str, Any] | None = None
#: the segments the last job used, mapped by token: the next job that uses them maps nothing again
_MAPPED: dict[str, mmap.mmap] = {}


def load(handle):
    """The job behind a :class:`SharedJob` handle, in a worker (mapped once per job, then reused)."""
    global _LOADED, _MAPPED
    token, header, paths = handle
    if _LOADED is None or _LOADED[0] != token:
        _LOADED = None
        mapped, buffers, rooms = {}, [], []
        for path in paths:
            if isinstance(path, str):
                buffers.append(_map(path))
                continue
            segment, where, offset, nbytes, room = path
            if segment not in mapped:
                mapped[segment] = _MAPPED[segment] if segment in _MAPPED else _map(where, private=bool(room))
            buffers.append(memoryview(mapped[segment])[offset : offset + nbytes].toreadonly())
            if room:
                rooms.append((mapped[segment], offset, nbytes + room))
        _MAPPED = mapped  # segments no job uses any more are unmapped once their arrays go
        _LOADED = (token, pickle.loads(header, buffers=buffers))
        _give_rooms(_LOADED[1], rooms)
    return _LOADED[1]


def _map(path: str, private: bool = False) -> mmap.mmap:
    """``path`` mapped read-only, or copy-on-write (``private``: a spare row this process writes alone)."""
    with open(path, "rb") as f:
        return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY if private else mmap.ACCESS_READ)


def _give_rooms(job, rooms: list) -> None:
    """The spare rows the main process gave its data's columns, in this process's copy-on-write mapping:
    writing one copies only that row's pages, the columns stay shared."""
    if not rooms:
        return
    import numpy as np

    from causal_cli.simulate import give_room

    for item in job if isinstance(job, tuple) else (job,):
        columns = getattr(item, "_columns", None)
        if columns is None:
            continue
        start = columns.__array_interface__["data"][0]
        for mapping, offset, nbytes in rooms:
            view = np.frombuffer(
                mapping, dtype=columns.dtype, count=nbytes // columns.itemsize, offset=offset
            )
            if view.__array_interface__["data"][0] == start:
                give_room(columns, view.reshape(columns.shape[0] + 1, columns.shape[1]))


def forget() -> None:
    """Drop the job this process loaded last (its mappings close with it)."""
    global _LOADED, _MAPPED
    _LOADED, _MAPPED = None, {}
