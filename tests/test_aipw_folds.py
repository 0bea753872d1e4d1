"""aipw's default cross-fitting: 2 folds and one split with its built-in linear models; 5 folds and the median
over 3 splits with scikit-learn models."""

from __future__ import annotations

import numpy as np
import pytest

from causal_cli.estimators.aipw import (
    FLEXIBLE_FOLDS,
    FLEXIBLE_REPS,
    LINEAR_FOLDS,
    LINEAR_REPS,
    REPEAT_KEY,
    AIPWEstimator,
)
from causal_cli.estimators.base import EstimationData
from causal_cli.estimators.outcome import seed_sequence

TREE = {"_target_": "sklearn.tree.DecisionTreeRegressor", "max_depth": 3}
SKLEARN_CLF = {"_target_": "sklearn.linear_model.LogisticRegression"}  # any scikit-learn model counts


def nonlinear_data(n=600, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 3))
    t = (rng.random(n) < 1 / (1 + np.exp(-(0.8 * X[:, 0] + 0.5 * np.sin(2 * X[:, 1]))))).astype(float)
    y = 2 * np.sin(1.5 * X[:, 0]) + X[:, 1] ** 2 + 2 * t + rng.standard_normal(n)
    return EstimationData(t=t, y=y, X=X)


@pytest.mark.parametrize(
    ("models", "folds", "n_rep"),
    [
        ({}, LINEAR_FOLDS, LINEAR_REPS),
        ({"outcome_model": TREE}, FLEXIBLE_FOLDS, FLEXIBLE_REPS),
        ({"propensity_model": SKLEARN_CLF}, FLEXIBLE_FOLDS, FLEXIBLE_REPS),
        ({"outcome_model": "linear", "propensity_model": "logistic"}, LINEAR_FOLDS, LINEAR_REPS),
    ],
)
def test_the_defaults_are_those_of_an_explicit_setting_and_are_reported(models, folds, n_rep):
    data = nonlinear_data()
    auto = AIPWEstimator(random_state=3, **models).fit(data)
    explicit = AIPWEstimator(random_state=3, folds=folds, n_rep=n_rep, **models).fit(data)
    assert auto.effect_ == explicit.effect_ and auto.std_error_ == explicit.std_error_
    assert (auto.summary()["folds"], auto.summary()["n_rep"]) == (folds, n_rep)
    other = AIPWEstimator(random_state=3, folds=7 - folds, n_rep=n_rep, **models).fit(data)
    assert other.effect_ != auto.effect_  # the number of folds matters, so the comparison above can fail


@pytest.mark.parametrize("target", ["ate", "att"])
def test_repeated_splits_give_the_median_of_the_single_split_fits_and_widen_by_their_spread(target):
    """Split r >= 1 is exactly a single-split aipw seeded with stream REPEAT_KEY + r (folds and models)."""
    data = nonlinear_data(seed=1)
    common = {"target_units": target, "outcome_model": TREE, "folds": 3}
    repeated = AIPWEstimator(random_state=4, n_rep=3, **common).fit(data)
    seeds = [4] + [seed_sequence(4, REPEAT_KEY + r) for r in (1, 2)]
    singles = [AIPWEstimator(random_state=s, n_rep=1, **common).fit(data) for s in seeds]
    effects = np.array([s.effect_ for s in singles])
    ses = np.array([s.std_error_ for s in singles])
    assert len(set(effects)) == 3  # three different splits
    np.testing.assert_allclose(repeated.split_estimates_, effects, rtol=0, atol=0)
    assert repeated.effect_ == np.median(effects)
    assert repeated.std_error_ == pytest.approx(
        np.sqrt(np.median(ses**2 + (effects - np.median(effects)) ** 2))
    )
    assert repeated.std_error_ >= np.median(ses) - 1e-12
    # the diagnostics are the first split's
    np.testing.assert_array_equal(repeated.propensity_, singles[0].propensity_)
    np.testing.assert_array_equal(repeated.balance_weights_, singles[0].balance_weights_)


def test_an_explicit_setting_wins_and_out_of_range_values_are_refused():
    assert AIPWEstimator(folds=3, n_rep=2, outcome_model=TREE).n_folds() == 3
    assert AIPWEstimator(folds=3, n_rep=2, outcome_model=TREE).n_splits() == 2
    from causal_cli.errors import ConfigError

    with pytest.raises(ConfigError, match="folds"):
        AIPWEstimator.config_class(folds=1)
    with pytest.raises(ConfigError, match="n_rep"):
        AIPWEstimator.config_class(n_rep=0)
