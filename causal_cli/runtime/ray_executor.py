"""Simulations on a Ray cluster (``refuters.backend=ray``): the data go into Ray's object store once,
and tasks run chunks of simulations with the same per-simulation streams as every other executor, so
the numbers are those of a local run with the same seed.

The cluster is ``refuters.address`` (e.g. ``ray://head:10001``), else ``RAY_ADDRESS``, else a Ray started
on this machine; a Ray this process already joined is used as it is. Every node needs causal-cli
installed (the same version), since tasks unpickle our estimators and refuters.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable

import numpy as np

from causal_cli.errors import ConfigError
from causal_cli.simulate import simulate_chunk, tracker

#: chunks per cluster CPU: enough to balance uneven simulations, few enough that scheduling costs little
CHUNKS_PER_CPU = 4
#: seconds to wait for a cluster address to accept a connection before saying nothing answers there
CONNECT_TIMEOUT_S = 5.0
INSTALL_HINT = 'pip install "causal-cli[distributed]" (or pip install ".[distributed]" in the repository)'


class RayExecutor:
    def __init__(self, address: str | None = None, notice: Callable[[str], None] | None = None):
        self.address, self.notice = address, notice

    def warm_up(self, work: int, modules=()) -> None:
        """Nothing to start ahead: Ray keeps its own workers."""

    def run(self, modification, estimator, data, streams, progress=None, label="simulations") -> np.ndarray:
        ray = connect(self.address)
        total = len(streams)
        advance = tracker(progress, total, label, self.notice)
        out = np.empty(total)
        if total == 0:
            return out
        # tasks only call estimator.estimate (a fresh clone + warm start): ship no per-row arrays
        job = ray.put((modification, estimator.compact(), data))
        cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
        size = max(1, math.ceil(total / (CHUNKS_PER_CPU * cpus)))
        task = ray.remote(num_cpus=1)(_chunk)
        pending = {}
        for start in range(0, total, size):
            chunk = range(start, min(start + size, total))
            pending[task.remote(job, chunk, streams[chunk.start : chunk.stop])] = chunk
        try:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                chunk = pending.pop(done[0])
                out[chunk.start : chunk.stop] = ray.get(done[0])
                advance(len(chunk))
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)
        return out


def _chunk(job, chunk: range, chunk_streams) -> list[float]:
    modification, estimator, data = job
    return simulate_chunk(modification, estimator, data, chunk, chunk_streams)


def connect(address: str | None):
    """The ``ray`` module, joined to the cluster at ``address`` (or ``RAY_ADDRESS``, or a new local Ray)."""
    try:
        import ray
    except ImportError as exc:
        raise ConfigError(f"refuters.backend=ray needs Ray, which is not installed: {INSTALL_HINT}") from exc
    if ray.is_initialized():
        return ray
    address = address or os.environ.get("RAY_ADDRESS") or None
    problem = unreachable(address)
    if problem:
        raise ConfigError(f"refuters.backend=ray: {problem}")
    try:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"refuters.address={address}" if address else "a new local Ray"
        raise ConfigError(
            f"refuters.backend=ray: could not start or join Ray at {where}: {' '.join(str(exc).split())}"
        ) from exc
    return ray


def unreachable(address: str | None, timeout: float = CONNECT_TIMEOUT_S) -> str | None:
    """Why nothing answers at ``address`` (``host:port`` or ``ray://host:port``), or None when something
    does (or there is nothing to check: no address, ``auto``, ``local``). Ray itself retries an address
    nothing answers at for minutes."""
    import socket

    if not address or address in ("auto", "local"):
        return None
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return f"refuters.address={address} is not host:port or ray://host:port"
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            return None
    except OSError as exc:
        return f"no Ray cluster answers at refuters.address={address} ({exc.strerror or exc})"
