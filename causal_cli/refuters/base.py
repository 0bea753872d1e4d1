"""Refuter base: seeded, parallel simulations that re-fit the whole estimator on modified data.

Each simulation gets its own random stream spawned from the run's seed
(``SeedSequence.spawn``), so the numbers are identical whatever ``n_jobs`` is. Every simulation
re-fits the estimator, propensity model included, on a fresh :class:`EstimationData`; nothing
fitted on the original data (DoWhy's stale ``propensity_score`` column) leaks into a simulation.
"""

from __future__ import annotations

import os
import time
import zlib
from typing import Any, ClassVar

import numpy as np

from causal_cli.results import RefutationResult
from causal_cli.schema import RefuterConfig

#: below this many row-simulations, worker start-up costs more than it saves
PARALLEL_MIN_WORK = 3_000_000


class BaseRefuter:
    config_class: ClassVar[type] = RefuterConfig
    name: ClassVar[str] = ""
    #: the verdict rule, stated in the output
    rule: ClassVar[str] = ""

    def __init__(self, num_simulations: int = 100, **options: Any):
        self.num_simulations = num_simulations
        self.options = options

    @classmethod
    def from_config(cls, cfg) -> BaseRefuter:
        from omegaconf import OmegaConf

        values = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True) if not isinstance(cfg, dict) else cfg
        values = dict(values)
        return cls(**values)

    def simulate(self, estimator, data, rng: np.random.Generator) -> float:
        """One simulation: modify the data with ``rng`` and return the re-fitted estimate."""
        raise NotImplementedError

    def verdict(self, estimate: float, std_error: float, sims: np.ndarray) -> tuple[bool | None, float | None, str]:
        """``(passed, p_value, reason)`` for the simulated effects."""
        raise NotImplementedError

    def streams(self, seed: int) -> list[np.random.SeedSequence]:
        """One independent stream per simulation, derived from the run seed and this refuter's name."""
        root = np.random.SeedSequence([int(seed), zlib.crc32(self.name.encode())])
        return root.spawn(int(self.num_simulations))

    def refute(self, estimator, data, estimate: float, std_error: float, seed: int = 0, n_jobs: int = -1, progress=None):
        started = time.perf_counter()
        sims = run_simulations(self, estimator, data, self.streams(seed), n_jobs, progress)
        passed, p_value, reason = self.verdict(estimate, std_error, sims)
        finite = sims[np.isfinite(sims)]
        return RefutationResult(
            name=self.name,
            new_effect=float(finite.mean()) if finite.size else None,
            new_effect_sd=float(finite.std(ddof=1)) if finite.size > 1 else None,
            p_value=None if p_value is None else float(p_value),
            passed=passed,
            reason=reason,
            num_simulations=int(self.num_simulations),
            options={"rule": self.rule, **self.options},
            simulations=[float(s) for s in sims],
            runtime_s=time.perf_counter() - started,
        )


def _run_chunk(refuter, estimator, data, streams) -> list[float]:
    return [refuter.simulate(estimator, data, np.random.default_rng(s)) for s in streams]


def resolve_n_jobs(n_jobs: int | None) -> int:
    cores = os.cpu_count() or 1
    if n_jobs is None or n_jobs == 0:
        return 1
    return max(1, cores + 1 + n_jobs) if n_jobs < 0 else min(int(n_jobs), cores)


def run_simulations(refuter, estimator, data, streams, n_jobs=-1, progress=None) -> np.ndarray:
    """Run every simulation, in worker processes when the work is large enough to pay for them."""
    total = len(streams)
    workers = resolve_n_jobs(n_jobs)
    task = progress.add(f"refuter {refuter.name}", total) if progress is not None else None
    if workers == 1 or data.n * total < PARALLEL_MIN_WORK:
        out = []
        for s in streams:
            out.append(refuter.simulate(estimator, data, np.random.default_rng(s)))
            if task is not None:
                progress.advance(task, 1)
        return np.asarray(out, dtype=float)
    from joblib import Parallel, delayed

    chunks = np.array_split(np.arange(total), min(total, workers * 4))
    results: list[list[float]] = []
    parallel = Parallel(n_jobs=workers, return_as="generator")
    for chunk, values in zip(
        chunks, parallel(delayed(_run_chunk)(refuter, estimator, data, [streams[i] for i in c]) for c in chunks)
    ):
        results.append(values)
        if task is not None:
            progress.advance(task, len(chunk))
    return np.asarray([v for chunk in results for v in chunk], dtype=float)


def empirical_p_value(estimate: float, sims: np.ndarray, center: float = 0.0) -> float:
    """Share of simulations at least as far from ``center`` as the estimate (with the +1 correction)."""
    sims = sims[np.isfinite(sims)]
    extreme = np.sum(np.abs(sims - center) >= abs(estimate - center))
    return float((1 + extreme) / (1 + sims.size))


def consistency_p_value(estimate: float, sims: np.ndarray) -> float:
    """Two-sided normal p-value of the original estimate under the simulations' distribution."""
    from statistics import NormalDist

    sims = sims[np.isfinite(sims)]
    sd = float(np.std(sims, ddof=1)) if sims.size > 1 else 0.0
    if sd == 0:
        return 1.0 if np.isclose(sims.mean(), estimate) else 0.0
    z = abs(estimate - sims.mean()) / sd
    return 2 * (1 - NormalDist().cdf(z))
