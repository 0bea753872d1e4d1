"""Simulations on Ray (``refuters.backend=ray``) against a local Ray started here: the same numbers,
byte for byte, as the local pool with the same seed (each simulation keeps its own stream)."""

from __future__ import annotations

import numpy as np
import pytest

ray = pytest.importorskip("ray")

from causal_cli import registry  # noqa: E402
from causal_cli.estimators.base import EstimationData  # noqa: E402
from causal_cli.estimators.psm import PSMEstimator  # noqa: E402
from causal_cli.runtime.local import LocalProcessExecutor  # noqa: E402
from causal_cli.runtime.ray_executor import RayExecutor  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield
    ray.shutdown()


def sample_data(n: int = 500, seed: int = 2) -> EstimationData:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    t = (rng.random(n) < 1 / (1 + np.exp(-X[:, 0]))).astype(float)
    y = X.sum(axis=1) + 2.0 * t + rng.normal(size=n)
    return EstimationData(t=t, y=y, X=X, covariates=("x1", "x2"))


class Recorder:
    def __init__(self):
        self.tasks: dict[int, list] = {}

    def add(self, description, total):
        self.tasks[len(self.tasks)] = [description, total, 0]
        return len(self.tasks) - 1

    def advance(self, task, n=1):
        self.tasks[task][2] += n


def test_placebo_on_ray_is_byte_identical_to_the_local_pool():
    data = sample_data()
    local = PSMEstimator(random_state=1).fit(data)
    results = {}
    for name, executor in (("ray", RayExecutor()), ("local", LocalProcessExecutor(2, min_work=0))):
        refuter = registry.load("refuter", "placebo")(num_simulations=16)
        progress = Recorder()
        results[name] = refuter.refute(local, data, local.effect_, local.std_error_, 4, executor, progress)
        assert progress.tasks == {0: ["refuter placebo", 16, 16]}
    ray_sims, local_sims = (np.asarray(results[k].simulations) for k in ("ray", "local"))
    assert ray_sims.tobytes() == local_sims.tobytes()
    assert np.unique(ray_sims).size == 16
    assert (results["ray"].p_value, results["ray"].passed) == (
        results["local"].p_value,
        results["local"].passed,
    )


def test_bootstrap_ci_on_ray_equals_the_local_pool():
    data = sample_data(n=300)
    fits = {
        name: PSMEstimator(ci_method="bootstrap", num_bootstrap=20, random_state=9).fit(data, executor)
        for name, executor in (("ray", RayExecutor()), ("local", LocalProcessExecutor(2, min_work=0)))
    }
    assert (fits["ray"].ci_low_, fits["ray"].ci_high_, fits["ray"].std_error_) == (
        fits["local"].ci_low_,
        fits["local"].ci_high_,
        fits["local"].std_error_,
    )
    assert fits["ray"].ci_method_ == "bootstrap" and fits["ray"].ci_low_ < 2.0 < fits["ray"].ci_high_
