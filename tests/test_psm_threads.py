"""PSM's two arms in two threads (``numerics.thread_map``, from ``THREAD_MIN_ROWS`` rows) against one after
the other: every number the fit produces is the same, bit for bit (each arm's work is the same
computation, only run concurrently)."""

from __future__ import annotations

import numpy as np
import pytest

from causal_cli import numerics
from causal_cli.estimators.base import EstimationData
from causal_cli.estimators.psm import PSMEstimator


def confounded(n: int, seed: int = 1) -> EstimationData:
    rng = np.random.default_rng(seed)
    X = np.column_stack([rng.normal(size=n), rng.normal(50.0, 5.0, n), rng.integers(0, 3, n)])
    t = (rng.random(n) < 1 / (1 + np.exp(-(0.8 * X[:, 0] + 0.1 * (X[:, 1] - 50))))).astype(float)
    y = 2 * t + X[:, 0] + 0.3 * X[:, 1] + (1 + t) * rng.normal(size=n)
    return EstimationData(t=t, y=y, X=X)


def fitted_numbers(options: dict, data: EstimationData) -> dict:
    est = PSMEstimator(**options).fit(data)
    return {
        "effect": est.effect_,
        "se": est.std_error_,
        "se_2006": est.se_abadie_imbens_2006_,
        "se_method": est.se_method_,
        "weights": est.balance_weights_.copy(),
        "caveats": est.caveats(),
    }


@pytest.mark.parametrize(
    "options",
    [{}, {"target_units": "att", "k": 2}, {"target_units": "atc", "caliper": 0.02}, {"bias_adjust": False}],
    ids=["ate", "att-k2", "atc-caliper", "no-bias-adjust"],
)
def test_threaded_arms_give_the_same_numbers(options, monkeypatch):
    data = confounded(4000)
    monkeypatch.setattr(numerics, "THREAD_MIN_ROWS", 10**12)
    serial = fitted_numbers(options, data)
    monkeypatch.setattr(numerics, "THREAD_MIN_ROWS", 0)
    threaded = fitted_numbers(options, data)
    assert np.array_equal(serial.pop("weights"), threaded.pop("weights"))
    assert serial == threaded
    assert np.isfinite(serial["se"]) and serial["se"] > 0


def test_thread_map_keeps_the_order_in_threads(monkeypatch):
    monkeypatch.setattr(numerics, "THREAD_MIN_ROWS", 0)
    assert numerics.thread_map(lambda a, b: a - b, [(5, 1), (1, 5), (2, 2)], 10) == [4, -4, 0]


def test_balance_weights_are_computed_once_per_fit():
    data = confounded(2000)
    est = PSMEstimator().fit(data)
    first = est.balance_weights_
    assert est.balance_weights_ is first
    # ATE without a caliper: every unit once, and each unit's matches share a weight of 1
    assert first.sum() == pytest.approx(2 * data.n)
    est.fit(confounded(2000, seed=2))
    assert est.balance_weights_ is not first


def test_diagnostics_in_threads_give_the_same_numbers(monkeypatch):
    from causal_cli import diagnostics

    data = confounded(3000)
    est = PSMEstimator().fit(data)
    out = []
    for rows in (10**12, 0):
        monkeypatch.setattr(numerics, "THREAD_MIN_ROWS", rows)
        diag, notes = diagnostics.compute(data.t, data.X, ["a", "b", "c"], est)
        out.append((diag.to_dict(), diag.histogram, notes))
    assert out[0] == out[1]
    assert out[0][0]["weights"]["treated"]["n"] == int(data.t.sum())
    assert sum(row["treated"] for row in out[0][1]) == int(data.t.sum())


def test_plus_where_is_np_where_of_the_sum():
    from causal_cli.estimators.psm import _plus_where

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=1000), rng.normal(size=1000)
    where = rng.random(1000) < 0.3
    out = _plus_where(a, b, where)
    assert np.array_equal(out, np.where(where, a + b, a)) and not np.array_equal(out, a)


def test_no_extra_threads_while_simulations_occupy_every_core():
    """Inside a process pool's simulations (cores_busy) the arms run one after the other."""
    import threading

    from causal_cli.numerics import THREAD_MIN_ROWS, cores_busy, cores_free, thread_map

    def thread_name(_):
        return threading.current_thread().name

    assert cores_free()
    with cores_busy():
        assert not cores_free()
        names = thread_map(thread_name, [(0,), (1,)], THREAD_MIN_ROWS)
    assert cores_free() and names == [threading.current_thread().name] * 2
    assert set(thread_map(thread_name, [(0,), (1,)], THREAD_MIN_ROWS)) != {threading.current_thread().name}
