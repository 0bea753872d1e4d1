"""Memory around the simulations: at 10M rows every allocation comes from a heap that is kept between
simulations (no fresh mmap whose pages the kernel zeroes again), handed back after them; and the data go
to the worker processes once, the covariates' ``X`` as the view of the columns it is, not a second copy.
Real allocator (glibc, in a fresh process: the settings are process-wide), real shared memory."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from causal_cli.estimators.base import EstimationData
from causal_cli.runtime import shared, tuning

#: a fresh process: the page faults of touching a 64 MB array a second time, after freeing the first one
#: (4 KiB pages: numpy's huge-page advice off, so every page is a fault); then RSS before and after release
FAULTS = """
import json, resource, sys
import numpy as np
from causal_cli.runtime import tuning
np._core.multiarray._set_madvise_hugepage(False)
tuning.keep_freed_memory()
on = tuning.heap_only(int(sys.argv[1]))

def rss_mb():
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS:")) / 1024

a = np.ones(8_000_000); del a
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
b = np.ones(8_000_000); del b
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
kept = rss_mb()
tuning.release_heap()
print(json.dumps({"on": on, "faults": faults, "kept_mb": kept, "released_mb": rss_mb()}))
"""


def allocator_run(rows: int) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run([sys.executable, "-c", FAULTS, str(rows)], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt and /proc")
def test_large_simulations_reuse_the_heap_and_hand_it_back_after():
    large = allocator_run(tuning.HEAP_ONLY_ROWS)
    assert large["on"]
    assert large["faults"] < 500  # 16,384 pages of 4 KiB: the second array reuses the first one's
    assert large["kept_mb"] - large["released_mb"] > 50  # released: the 64 MB go back to the kernel

    small = allocator_run(
        tuning.HEAP_ONLY_ROWS - 1
    )  # below the threshold: glibc as keep_freed_memory sets it
    assert not small["on"]
    assert small["faults"] > 15_000  # a fresh mmap each time: every page faults again


def covariate_data(n: int = 50_000) -> EstimationData:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 3))
    t = (rng.random(n) < 0.4).astype(float)
    data = EstimationData(t=t, y=X.sum(axis=1) + t, X=X, covariates=("a", "b", "c"))
    data.columns  # noqa: B018  (lays the covariates out as [1, X] transposed; X becomes its view)
    return data


def test_the_shared_data_send_the_covariates_once_and_x_stays_a_view_of_the_columns():
    data = covariate_data()
    subset = data.take(np.arange(0, data.n, 3))
    with shared.SharedJob(("job", data, subset)) as job:
        sizes = sorted(os.fstat(fd).st_size for fd in job.fds) if job.fds else []
        _, loaded, loaded_subset = shared.load(job.handle)
        for before, after in ((data, loaded), (subset, loaded_subset)):
            assert after.X.tobytes() == before.X.tobytes() and after.X.strides == before.X.strides
            assert np.shares_memory(after.X, after.columns)
            assert after.t.tobytes() == before.t.tobytes() and after.covariates == before.covariates
        shared.forget()
    if sizes:  # t, y and the columns of each data set: no separate X
        n, k = data.n, subset.n
        assert sizes == sorted([8 * n, 8 * n, 8 * 4 * n, 8 * k, 8 * k, 8 * 4 * k])


def test_data_whose_x_is_not_a_view_of_its_columns_go_as_they_are():
    data = covariate_data(1000)
    odd = EstimationData(t=data.t, y=data.y, X=np.asfortranarray(data.X * 2), _columns=data.columns)
    with shared.SharedJob(odd) as job:
        loaded = shared.load(job.handle)
        assert loaded.X.tobytes() == odd.X.tobytes() and loaded.columns.tobytes() == odd.columns.tobytes()
        shared.forget()


def shared_data(n: int = 20_000) -> EstimationData:
    """:func:`covariate_data`'s values in arrays from :func:`shared.empty`, laid out as the pipeline does."""
    plain = covariate_data(n)
    columns, t, y = shared.empty(plain.columns.shape), shared.empty((n,)), shared.empty((n,))
    columns[:], t[:], y[:] = plain.columns, plain.t, plain.y
    return EstimationData(t=t, y=y, X=columns[1:].T, covariates=plain.covariates, _columns=columns)


@pytest.mark.skipif(not shared._anonymous_memory(), reason="anonymous shared memory (Linux memfd)")
def test_data_in_shared_memory_are_sent_by_place_and_mapped_once_for_every_job():
    data = shared_data()
    with shared.SharedJob(("placebo", data)) as first, shared.SharedJob(("subset", data)) as second:
        assert first.fds == [] and second.fds == []  # nothing copied: the jobs say where the data are
        _, loaded = shared.load(first.handle)
        mapped = dict(shared._MAPPED)
        assert len(mapped) == 3  # the columns, t and y
        for name in ("t", "y", "X", "columns"):
            assert getattr(loaded, name).tobytes() == getattr(data, name).tobytes()
        assert np.shares_memory(loaded.X, loaded.columns) and not loaded.t.flags.writeable
        _, again = shared.load(second.handle)
        assert all(shared._MAPPED[token] is segment for token, segment in mapped.items())  # not mapped again
        assert again.y.tobytes() == data.y.tobytes()
        shared.forget()


def test_workers_give_the_same_simulations_on_data_in_shared_memory():
    from causal_cli import registry
    from causal_cli.estimators.psm import PSMEstimator
    from causal_cli.runtime.local import LocalProcessExecutor
    from causal_cli.simulate import SerialExecutor

    plain, data = covariate_data(4000), shared_data(4000)
    estimator = PSMEstimator(random_state=1).fit(plain)
    for name in ("placebo", "random_common_cause", "data_subset"):
        refuter = registry.load("refuter", name)(num_simulations=6)
        streams = refuter.streams(3)
        serial = SerialExecutor().run(refuter, estimator, plain, streams)
        pooled = LocalProcessExecutor(2, min_work=0).run(refuter, estimator, data, streams)
        assert serial.tobytes() == pooled.tobytes(), name


def test_the_estimation_data_are_the_same_wherever_they_are_allocated():
    import pandas as pd

    from causal_cli.identify import Identification
    from causal_cli.pipeline import build_estimation_data

    rng = np.random.default_rng(2)
    n = 30_000

    def frame():
        return pd.DataFrame(
            {
                "a": rng.normal(size=n),
                "b": rng.integers(0, 5, n),
                "t": rng.integers(0, 2, n),
                "y": rng.normal(size=n),
            }
        )

    class Graph:
        treatment, outcome, effect_modifiers = "t", "y", None

    identification = Identification(kind="backdoor", adjustment_set=["a", "b"])
    plain_frame = frame()
    shared_frame = plain_frame.copy(deep=True)
    plain = build_estimation_data(plain_frame, Graph, identification)
    pooled = build_estimation_data(shared_frame, Graph, identification, shared.empty)
    for name in ("t", "y", "X", "columns"):
        a, b = getattr(plain, name), getattr(pooled, name)
        assert a.tobytes() == b.tobytes() and a.strides == b.strides, name
    assert np.shares_memory(pooled.X, pooled.columns)
    # a float column of the frame is a view of the estimation data (one copy), as with np.empty
    assert np.shares_memory(shared_frame["y"].to_numpy(), pooled.y)
    assert np.shares_memory(shared_frame["a"].to_numpy(), pooled.columns)
    pd.testing.assert_frame_equal(plain_frame, shared_frame)


def frame_and_graph(n: int, seed: int = 2):
    import pandas as pd

    from causal_cli.identify import Identification

    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    t = (rng.random(n) < 1 / (1 + np.exp(-a))).astype(np.int64)
    frame = pd.DataFrame({"a": a, "b": rng.integers(0, 5, n), "t": t, "y": a + 2 * t + rng.normal(size=n)})

    class Graph:
        treatment, outcome, effect_modifiers = "t", "y", None

    return frame, Graph, Identification(kind="backdoor", adjustment_set=["a", "b"])


def test_random_common_cause_writes_its_covariate_into_the_row_left_free_and_gives_the_same_numbers():
    from causal_cli import registry, simulate
    from causal_cli.estimators.psm import PSMEstimator
    from causal_cli.pipeline import build_estimation_data
    from causal_cli.runtime.local import LocalProcessExecutor
    from causal_cli.simulate import SerialExecutor

    frame, graph, identification = frame_and_graph(3000)
    roomy = build_estimation_data(frame.copy(), graph, identification)  # columns with a free row after them
    pooled = build_estimation_data(frame.copy(), graph, identification, shared.empty)
    before = pooled.columns.tobytes()
    refuter = registry.load("refuter", "random_common_cause")(num_simulations=8)
    # outside a simulation the modified data are a copy of their own (callers may keep several)
    assert simulate.spare_row(roomy.columns) is None
    first, second = (refuter.modify(roomy, np.random.default_rng(s)) for s in (1, 2))
    assert not np.shares_memory(first.columns, second.columns)
    assert first.columns[:-1].tobytes() == roomy.columns.tobytes()

    estimator = PSMEstimator(random_state=1).fit(roomy)
    plain = EstimationData(t=roomy.t.copy(), y=roomy.y.copy(), X=roomy.X.copy(), covariates=roomy.covariates)
    streams = refuter.streams(4)
    copied = SerialExecutor().run(refuter, estimator, plain, streams)  # no room: data.with_covariate
    in_place = SerialExecutor().run(refuter, estimator, roomy, streams)
    in_workers = LocalProcessExecutor(2, min_work=0).run(refuter, estimator, pooled, streams)
    assert copied.tobytes() == in_place.tobytes() == in_workers.tobytes()
    assert (
        pooled.columns.tobytes() == before
    )  # the workers' rows are copy-on-write: the shared data unchanged


def test_a_block_without_the_promised_room_is_refused():
    from causal_cli import simulate

    columns = np.ones((3, 10))
    with pytest.raises(ValueError, match="plus one row"):
        simulate.give_room(columns, np.ones((5, 10)))
    with pytest.raises(ValueError, match="begin with"):
        simulate.give_room(columns, np.ones((4, 10)))
