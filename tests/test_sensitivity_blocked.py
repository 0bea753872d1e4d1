"""The sensitivity regression from the blocks of its cross-products (large data, no stacked design copy)
against the stacked design: the same fit up to rounding, and the same as the closed form."""

from __future__ import annotations

import numpy as np
import pytest

from causal_cli import sensitivity
from causal_cli.estimators.base import EstimationData


def test_blocked_regression_matches_the_stacked_one(monkeypatch):
    rng = np.random.default_rng(3)
    n = 5000
    X = np.column_stack([rng.normal(size=n), rng.normal(100.0, 10.0, n)])
    t = (rng.random(n) < 1 / (1 + np.exp(-X[:, 0]))).astype(float)
    y = 1.5 * t + 2 * X[:, 0] - 0.1 * X[:, 1] + rng.normal(size=n)
    data = EstimationData(t=t, y=y, X=X)
    stacked = sensitivity.ols_with_treatment(data)
    monkeypatch.setattr(sensitivity, "BLOCKED_MIN_ROWS", 0)
    blocked = sensitivity.ols_with_treatment(data)
    np.testing.assert_allclose(blocked[0], stacked[0], rtol=1e-9)
    np.testing.assert_allclose(blocked[1], stacked[1], rtol=1e-9)
    assert blocked[2] == pytest.approx(stacked[2], rel=1e-12) and blocked[3] == stacked[3] == n - 4
    # closed form: least squares of y on [1, X, t]
    exact = np.linalg.lstsq(np.column_stack([np.ones(n), X, t]), y, rcond=None)[0]
    np.testing.assert_allclose(blocked[0], exact, rtol=1e-9)
    full = sensitivity.analyze(data, "backdoor", 1.5, 1.4, 1.6)
    assert full["regression_estimate"] == pytest.approx(exact[-1], rel=1e-9)
