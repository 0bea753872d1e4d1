"""The simulation engine: shared-memory jobs, the main process working alongside its workers
(causal_cli.runtime), and the bootstrap confidence interval running through an executor
(causal_cli.simulate). Real worker processes, real files, real estimators."""

from __future__ import annotations

import os
import pickle
import threading
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from causal_cli.estimators.base import EstimationData, Resample
from causal_cli.estimators.naive import NaiveEstimator
from causal_cli.estimators.psm import PSMEstimator
from causal_cli.refuters.placebo import PlaceboRefuter
from causal_cli.runtime import shared, workers
from causal_cli.runtime.local import LocalProcessExecutor
from causal_cli.simulate import SerialExecutor


def sample_data(n: int = 400, p: int = 2, seed: int = 0) -> EstimationData:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    t = (rng.random(n) < 1 / (1 + np.exp(-X[:, 0]))).astype(float)
    y = X.sum(axis=1) + 2.0 * t + rng.normal(size=n)
    return EstimationData(t=t, y=y, X=X, covariates=tuple(f"x{i}" for i in range(p)))


class ProcessId(NaiveEstimator):
    """Returns the id of the process that estimated (slowly): shows who ran each simulation."""

    def _estimate(self, data):
        time.sleep(0.05)
        return float(os.getpid())


class Unchanged:
    def modify_task(self, data, index, rng):
        return data


class Recorder:
    """A progress sink that records what it is told (the console's RichProgress has the same two methods)."""

    def __init__(self):
        self.tasks: dict[int, list] = {}

    def add(self, description, total):
        self.tasks[len(self.tasks)] = [description, total, 0]
        return len(self.tasks) - 1

    def advance(self, task, n=1):
        self.tasks[task][2] += n


def test_shared_job_maps_large_arrays_read_only_and_removes_its_files():
    big, small = np.arange(50_000, dtype=float), np.arange(10, dtype=float)
    with shared.SharedJob({"big": big, "small": small, "text": "kept"}) as job:
        folder, paths = job.folder, job.handle[2]
        assert folder is None or not paths[0].startswith("/proc/")  # anonymous memory where Linux has it
        assert len(job.handle[2]) == 1 and os.path.getsize(job.handle[2][0]) == big.nbytes
        assert len(job.handle[1]) < 10_000  # the big array is not inside the pickle
        loaded = shared.load(pickle.loads(pickle.dumps(job.handle)))
        assert np.array_equal(loaded["big"], big) and np.array_equal(loaded["small"], small)
        assert loaded["text"] == "kept"
        assert not loaded["big"].flags.writeable
        with pytest.raises(ValueError, match="read-only"):
            loaded["big"][0] = 1.0
    assert folder is None or not os.path.exists(folder)
    shared.forget()
    assert not any(os.path.exists(path) for path in paths)


def test_main_process_and_worker_share_the_simulations():
    workers.pool(1).submit(int).result()  # a warm worker, so both sides get work
    streams = np.random.SeedSequence(0).spawn(40)
    progress = Recorder()
    pids = LocalProcessExecutor(2, min_work=0).run(
        Unchanged(), ProcessId(), sample_data(), streams, progress=progress, label="who"
    )
    assert os.getpid() in set(pids) and len(set(pids)) == 2
    # the main process takes chunks from the back, the worker from the front
    assert pids[-1] == os.getpid() and pids[0] != os.getpid()
    assert progress.tasks == {0: ["who", 40, 40]}


def test_nested_or_threaded_callers_run_in_process():
    assert workers.parallel_processes(2, 10, min_work=0) == min(2, os.cpu_count() or 1)
    assert workers.parallel_processes(2, 10) == 1  # too little work for a worker process
    seen = []
    thread = threading.Thread(target=lambda: seen.append(workers.parallel_processes(2, 10, min_work=0)))
    thread.start()
    thread.join()
    assert seen == [1]
    assert workers.parallel_processes(1, 10**9) == 1


def test_bootstrap_ci_is_the_same_on_any_number_of_processes_and_reports_progress():
    data = sample_data(n=300)
    runs = {}
    for n_jobs in (1, 2):
        progress = Recorder()
        fitted = PSMEstimator(ci_method="bootstrap", num_bootstrap=24, random_state=5).fit(
            data, executor=LocalProcessExecutor(n_jobs, min_work=0), progress=progress
        )
        assert progress.tasks == {0: ["bootstrap CI psm", 24, 24]}
        runs[n_jobs] = (fitted.ci_low_, fitted.ci_high_, fitted.std_error_)
    assert runs[1] == runs[2]
    assert runs[1][0] < 2.0 < runs[1][1]


def test_bootstrap_resamples_that_cannot_be_estimated_are_skipped_not_fatal():
    # 3 treated rows in 60: some resamples draw none and give no estimate; the interval uses the rest
    data = sample_data(n=60)
    t = np.zeros(60)
    t[:3] = 1.0
    data = data.with_treatment(t)
    streams = np.random.SeedSequence(1).spawn(200)
    boots = SerialExecutor().run(Resample(), NaiveEstimator(), data, streams)
    assert 0 < np.isnan(boots).sum() < 200
    fitted = NaiveEstimator(ci_method="bootstrap", num_bootstrap=200).fit(data)
    assert fitted.ci_method_ == "bootstrap" and fitted.ci_low_ < fitted.ci_high_


def test_compact_keeps_the_fitted_numbers_and_drops_per_row_arrays():
    data = sample_data(n=2_000)
    fitted = PSMEstimator().fit(data)
    light = fitted.compact()
    assert light.effect_ == fitted.effect_ and light.std_error_ == fitted.std_error_
    assert np.array_equal(light.warm_start_, fitted.warm_start_)
    assert not hasattr(light, "propensity_") and not hasattr(light, "_state")
    modified = data.with_treatment(np.random.default_rng(3).permutation(data.t))
    assert light.estimate(modified) == fitted.estimate(modified)


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(4, 60),
    p=st.integers(0, 4),
    seed=st.integers(0, 2**16),
)
def test_estimation_data_copies_agree_with_plain_numpy(n, p, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    data = EstimationData(t=rng.integers(0, 2, n).astype(float), y=rng.normal(size=n), X=X.copy())
    assert np.array_equal(data.design, np.column_stack([np.ones(n), X]))
    assert np.array_equal(data.X, X) and (p == 0 or np.shares_memory(data.X, data.columns))
    assert data.with_treatment(1 - data.t).columns is data.columns
    assert data.with_outcome(data.y * 2).columns is data.columns
    rows = rng.integers(0, n, n)
    taken = data.take(rows)
    assert np.array_equal(taken.X, X[rows]) and np.array_equal(taken.design, data.design[rows])
    assert np.array_equal(taken.t, data.t[rows]) and np.array_equal(taken.y, data.y[rows])
    extra = rng.normal(size=n)
    wider = data.with_covariate(extra, "u")
    assert np.array_equal(wider.X, np.column_stack([X, extra])) and wider.covariates[-1] == "u"
    assert np.array_equal(data.X, X)  # the original is unchanged


def test_the_main_process_runs_the_chunks_of_a_busy_worker_instead_of_waiting():
    """Simulations are claimed by whoever starts them: with the only worker busy (still starting, in a
    real run), the main process runs every simulation, including those sent to the worker, and returns
    the same numbers; the worker later skips the chunks it was sent."""
    busy = workers.pool(1).submit(time.sleep, 1.5)
    streams = np.random.SeedSequence(0).spawn(6)
    progress = Recorder()
    pids = LocalProcessExecutor(2, min_work=0).run(
        Unchanged(), ProcessId(), sample_data(), streams, progress=progress, label="who"
    )
    assert set(pids) == {os.getpid()}
    assert progress.tasks == {0: ["who", 6, 6]}
    busy.result()
    data = sample_data()
    estimator = PSMEstimator().fit(data)
    placebo_streams = np.random.SeedSequence(1).spawn(8)
    placebo = PlaceboRefuter(num_simulations=8)
    serial = SerialExecutor().run(placebo, estimator, data, placebo_streams)
    pooled = LocalProcessExecutor(2, min_work=0).run(placebo, estimator, data, placebo_streams)
    assert serial.tobytes() == pooled.tobytes()
