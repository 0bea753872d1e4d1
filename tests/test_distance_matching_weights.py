"""distance_matching is linear in the outcomes: ``effect_ = a' y`` with weights from covariates and treatment.

That makes its sampling distribution exact on a linear model: the bias-adjusted estimate minus the true
effect is ``a' noise``, so its SD given the covariates and the treatment is ``sigma ||a||``, the quantity
the Abadie-Imbens standard error estimates (benchmarks/matching_variance_diagnosis.py uses this to tell a
standard-error shortfall from Monte Carlo noise).
"""

from __future__ import annotations

import numpy as np
import pytest

from causal_cli.estimators.base import EstimationData
from causal_cli.estimators.distance_matching import DistanceMatchingEstimator


def linear_design(n, p, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    t = (
        rng.random(n) < 1 / (1 + np.exp(-(0.2 + X[:, : min(p, 4)] @ [0.6, -0.5, 0.4, 0.3][: min(p, 4)])))
    ).astype(float)
    m = 1 + X @ np.linspace(1.0, -0.5, p)
    noise = rng.standard_normal(n)
    return X, t, m, noise


@pytest.mark.parametrize("target", ["ate", "att", "atc"])
@pytest.mark.parametrize("bias_adjust", [True, False])
@pytest.mark.parametrize("k", [1, 3])
def test_the_outcome_weights_reproduce_the_estimate_for_any_outcome(target, bias_adjust, k):
    X, t, m, noise = linear_design(300, 4, seed=k)
    data = EstimationData(t=t, y=m + 2 * t + noise, X=X)
    est = DistanceMatchingEstimator(target_units=target, bias_adjust=bias_adjust, k=k).fit(data)
    a = est.outcome_weights()
    assert a @ data.y == pytest.approx(est.effect_, abs=1e-12)
    # the weights depend on covariates and treatment only: a different outcome, the same a
    other = np.random.default_rng(9).standard_normal(300) * 5
    refit = DistanceMatchingEstimator(target_units=target, bias_adjust=bias_adjust, k=k).fit(
        EstimationData(t=t, y=other, X=X)
    )
    np.testing.assert_allclose(refit.outcome_weights(), a, atol=1e-13)
    assert a @ other == pytest.approx(refit.effect_, abs=1e-12)
    # treated weights sum to 1 and control weights to -1 (a constant outcome gives effect 0)
    assert a[t == 1].sum() == pytest.approx(1.0) and a[t == 0].sum() == pytest.approx(-1.0)


@pytest.mark.parametrize("target", ["ate", "att"])
def test_on_a_linear_model_the_error_is_exactly_a_noise_and_the_se_matches_its_sd(target):
    """20 covariates (large matching gaps): the error is a'noise to rounding, and the reported SE is the
    exact conditional SD ||a|| (noise SD 1) to within a few per cent on one data set."""
    X, t, m, noise = linear_design(1500, 20, seed=5)
    data = EstimationData(t=t, y=m + 2 * t + noise, X=X)
    est = DistanceMatchingEstimator(target_units=target).fit(data)
    a = est.outcome_weights()
    assert est.effect_ - 2.0 == pytest.approx(a @ noise, abs=1e-10)
    exact_sd = np.sqrt((a**2).sum())
    assert est.std_error_ == pytest.approx(exact_sd, rel=0.12)
