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
