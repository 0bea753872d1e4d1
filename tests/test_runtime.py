"""The runtime layer and the start-up cache: every executor gives the same numbers for the same seed,
the pipeline runs its simulations on the executor it is given, and DoWhy's identification is cached on
disk (a repeat run with the same graph never imports DoWhy; a damaged entry is rebuilt). Real worker
processes, real files, real DoWhy."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from causal_cli import disk_cache, identify, registry, runtime
from causal_cli.errors import ConfigError
from causal_cli.estimators.base import EstimationData, Resample
from causal_cli.estimators.psm import PSMEstimator
from causal_cli.graph import CausalGraph
from causal_cli.runtime.local import LocalProcessExecutor
from causal_cli.simulate import SerialExecutor

GRAPH = CausalGraph(
    treatment="t",
    outcome="y",
    edges=[("x1", "t"), ("x1", "y"), ("x2", "t"), ("x2", "y"), ("t", "y"), ("u", "x2")],
    unobserved=["u"],
)


def sample_data(n: int = 400, seed: int = 0) -> EstimationData:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    t = (rng.random(n) < 1 / (1 + np.exp(-X[:, 0]))).astype(float)
    y = X.sum(axis=1) + 2.0 * t + rng.normal(size=n)
    return EstimationData(t=t, y=y, X=X, covariates=("x1", "x2"))


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty cache folder, and no identification remembered by this process."""
    monkeypatch.setenv("CAUSAL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(identify, "_ESTIMANDS", {})
    return tmp_path / "cache"


def test_serial_and_local_pool_give_byte_identical_simulations():
    data = sample_data()
    estimator = PSMEstimator(random_state=3).fit(data)
    placebo = registry.load("refuter", "placebo")(num_simulations=12)
    placebo.prepare(estimator, data)
    streams = placebo.streams(11)
    serial = SerialExecutor().run(placebo, estimator, data, streams)
    pooled = LocalProcessExecutor(2, min_work=0).run(placebo, estimator, data, streams)
    assert serial.tobytes() == pooled.tobytes()
    assert np.unique(serial).size == 12  # each simulation drew its own permutation
    boots = np.random.SeedSequence(5).spawn(10)
    assert (
        SerialExecutor().run(Resample(), estimator, data, boots).tobytes()
        == LocalProcessExecutor(2, min_work=0).run(Resample(), estimator, data, boots).tobytes()
    )


class Recording(SerialExecutor):
    """Runs in-process and records what it ran: shows the pipeline hands its simulations to the executor."""

    def __init__(self):
        super().__init__()
        self.labels: list[str] = []
        self.warm_ups: list[tuple[int, set[str]]] = []

    def warm_up(self, work: int, modules=()) -> None:
        self.warm_ups.append((work, set(modules)))

    def run(self, modification, estimator, data, streams, progress=None, label="simulations"):
        self.labels.append(label)
        return super().run(modification, estimator, data, streams, progress, label)

    def release(self) -> None:
        self.labels.append("release")


def test_the_pipeline_runs_refuters_and_bootstrap_on_the_executor_it_is_given(compose_cfg, cache):
    from causal_cli import pipeline
    from causal_cli.validate import validate

    overrides = [
        "dgp.n=600",
        "estimator=psm",
        "estimator.ci.method=bootstrap",
        "estimator.ci.num_bootstrap=8",
        "refuters.placebo.num_simulations=6",
        "refuters.random_common_cause.num_simulations=4",
        "refuters.n_jobs=1",
    ]
    recording = Recording()
    given = pipeline.run(validate(compose_cfg(overrides)), executor=recording)
    # the memory kept for simulations is handed back once, after the last refuter
    assert recording.labels == [
        "bootstrap CI psm",
        "refuter placebo",
        "refuter random_common_cause",
        "release",
    ]
    # once, for rows x the most simulations of one study (8 bootstrap fits), with the methods' modules
    modules = {
        "causal_cli.estimators.psm",
        "causal_cli.refuters.placebo",
        "causal_cli.refuters.random_common_cause",
    }
    assert recording.warm_ups == [(600 * 8, modules)]
    default = pipeline.run(validate(compose_cfg(overrides)))
    assert given.estimate == default.estimate and given.ci_low == default.ci_low
    assert [r.simulations for r in given.refutations] == [r.simulations for r in default.refutations]


def test_workers_start_before_the_data_when_the_row_count_is_known_from_the_config():
    """Synthetic data (``dgp.n``) or a given frame: the workers start before the data stage; a file's
    rows are only known once it is read."""
    import pandas as pd
    from omegaconf import OmegaConf

    from causal_cli.pipeline import _rows_before_loading

    synthetic = OmegaConf.create({"data": {"source": "synthetic"}, "dgp": {"n": 5000}})
    from_file = OmegaConf.create({"data": {"source": "csv", "path": "x.csv"}, "dgp": {"n": 5000}})
    assert _rows_before_loading(synthetic, None) == 5000
    assert _rows_before_loading(from_file, None) is None
    assert _rows_before_loading(from_file, pd.DataFrame({"t": range(7)})) == 7


def test_make_executor_chooses_by_backend_and_names_what_is_allowed():
    assert isinstance(runtime.make_executor(2), LocalProcessExecutor)
    from causal_cli.runtime.ray_executor import RayExecutor

    assert runtime.make_executor(backend="ray", address="ray://head:10001").address == "ray://head:10001"
    assert isinstance(runtime.make_executor(backend="ray"), RayExecutor)
    with pytest.raises(ConfigError, match=r"refuters\.backend='spark'; allowed: local, ray"):
        runtime.make_executor(backend="spark")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("refuters.backend=spark", r"refuters\.backend='spark'; allowed: local, ray"),
        ("refuters.address=3", r"refuters\.address=3 is not a Ray address"),
    ],
)
def test_backend_settings_are_validated_in_one_line(compose_cfg, override, message):
    from causal_cli.validate import validate

    with pytest.raises(ConfigError, match=message):
        validate(compose_cfg([override]))


def test_identification_is_cached_and_a_cache_hit_never_imports_dowhy(cache):
    first = identify.identify(GRAPH, "backdoor")
    entries = list((cache / identify.CACHE_NAMESPACE).glob("*.json"))
    assert len(entries) == 1
    assert json.loads(entries[0].read_text())["key"]["dowhy"]  # keyed by DoWhy's version
    script = (
        "import sys\n"
        "from causal_cli.graph import CausalGraph\n"
        "from causal_cli.identify import identify\n"
        f"g = CausalGraph(treatment='t', outcome='y', edges={GRAPH.edges!r}, unobserved=['u'])\n"
        "r = identify(g, 'backdoor')\n"
        "print(r.adjustment_set, r.available['backdoor'], 'dowhy' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={**os.environ, "CAUSAL_CACHE_DIR": str(cache)},
        check=True,
    ).stdout.split()
    assert out == [*str(first.adjustment_set).split(), "True", "False"]
    assert first.adjustment_set == ["x1", "x2"]


@pytest.mark.parametrize(
    "damage",
    [
        "not json {",
        json.dumps({"key": {}, "value": {"backdoor": ["x1"]}}),  # another key's entry
        None,  # the right key with a value of the wrong shape
    ],
    ids=["corrupt", "other key", "wrong shape"],
)
def test_a_damaged_cache_entry_is_ignored_and_rebuilt(cache, damage):
    expected = identify.identify(GRAPH, "backdoor")
    key = identify.cache_key(GRAPH, expected.backdoor_method)
    path = disk_cache.entry_path(identify.CACHE_NAMESPACE, key)
    if damage is None:
        damage = json.dumps({"key": key, "value": {"backdoor": "x1", "available": {}}})
    path.write_text(damage)
    identify._ESTIMANDS.clear()
    again = identify.identify(GRAPH, "backdoor")
    assert again == expected
    rebuilt = json.loads(path.read_text())["value"]  # rewritten whole (DoWhy's sets, in hash order)
    assert identify._well_formed(rebuilt) and sorted(rebuilt["backdoor"]) == ["x1", "x2"]


def test_an_unwritable_cache_folder_only_means_nothing_is_cached(tmp_path, monkeypatch):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    monkeypatch.setenv("CAUSAL_CACHE_DIR", str(blocker / "cache"))  # a folder inside a file
    monkeypatch.setattr(identify, "_ESTIMANDS", {})
    assert identify.identify(GRAPH, "backdoor").adjustment_set == ["x1", "x2"]
    assert not disk_cache.store("x", {"k": 1}, [1])


def test_cache_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("CAUSAL_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert disk_cache.cache_dir() == tmp_path / "xdg" / "causal-cli"
    monkeypatch.setenv("CAUSAL_CACHE_DIR", str(tmp_path / "mine"))
    assert disk_cache.cache_dir() == tmp_path / "mine"
    assert disk_cache.store("ns", {"a": [1, "b"]}, {"v": 2}) and disk_cache.load("ns", {"a": [1, "b"]}) == {
        "v": 2
    }
    assert disk_cache.load("ns", {"a": [1, "c"]}) is None


def test_a_ray_address_nothing_answers_at_fails_in_one_line_without_waiting_for_ray():
    import socket

    from causal_cli.runtime.ray_executor import connect, unreachable

    with socket.socket() as sock:  # a port that was free a moment ago: connection refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(
        ConfigError, match=rf"no Ray cluster answers at refuters\.address=ray://127\.0\.0\.1:{port}"
    ):
        connect(f"ray://127.0.0.1:{port}")
    assert unreachable("not-an-address").endswith("is not host:port or ray://host:port")
    assert unreachable(None) is None and unreachable("auto") is None
    with socket.socket() as server:  # something listening: no objection
        server.bind(("127.0.0.1", 0))
        server.listen()
        assert unreachable(f"127.0.0.1:{server.getsockname()[1]}") is None


def test_only_the_resource_tracker_is_started_with_its_warnings_off():
    """Its "leaked semlock objects" warning after Ctrl-C would be a second stderr line (seen in CI)."""
    from causal_cli.runtime import workers

    tracker = [
        b"/usr/bin/python3",
        b"-c",
        b"from joblib.externals.loky.backend.resource_tracker import main; main(5, 0)",
    ]
    quiet = workers._quiet_resource_tracker(tracker)
    niced = b"import os; os.nice(19); " + tracker[2]
    assert quiet == [tracker[0], b"-W", workers.TRACKER_WARNINGS.encode(), tracker[1], niced]
    worker = [b"/usr/bin/python3", b"-m", b"joblib.externals.loky.backend.popen_loky_posix"]
    assert workers._quiet_resource_tracker(worker) == worker


def test_the_resource_tracker_runs_niced_with_its_warnings_filtered():
    """The rewritten command line, run: the tracker's imports wait for an idle core (issue 18: on 2
    cores they slowed the first refuter while the workers started)."""
    from causal_cli.runtime import workers

    code = "import os, sys; print(os.nice(0), sys.warnoptions)  # resource_tracker import main"
    args = workers._quiet_resource_tracker([sys.executable, "-c", code])
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout.split(maxsplit=1)
    assert int(out[0]) == min(19, os.nice(0) + workers.TRACKER_NICE)
    assert out[1].strip() == repr([workers.TRACKER_WARNINGS])


def test_worker_processes_import_no_omegaconf():
    """A worker imports the methods' modules (and their schemas' checks): without omegaconf its start-up
    is ~0.1-0.2 s shorter, and it is ready for the first refuter sooner."""
    modules = [
        "causal_cli.runtime.workers",
        "causal_cli.runtime.local",
        "causal_cli.estimators.psm",
        *(f"causal_cli.refuters.{name}" for name in ("placebo", "random_common_cause", "data_subset")),
    ]
    code = (
        f"import sys; import {', '.join(modules)}; print(sorted(m for m in sys.modules if 'omegaconf' in m))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    from omegaconf import MISSING

    from causal_cli import schema

    assert schema.MISSING == MISSING  # the schemas' mandatory fields are still mandatory to omegaconf
