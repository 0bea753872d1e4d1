"""aipw's default number of cross-fitting folds: 2 with its built-in linear models, 5 with scikit-learn models."""

from __future__ import annotations

import numpy as np
import pytest

from causal_cli.estimators.aipw import FLEXIBLE_FOLDS, LINEAR_FOLDS, AIPWEstimator
from causal_cli.estimators.base import EstimationData

TREE = {"_target_": "sklearn.tree.DecisionTreeRegressor", "max_depth": 3}
SKLEARN_CLF = {"_target_": "sklearn.linear_model.LogisticRegression"}  # any scikit-learn model counts


def nonlinear_data(n=600, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 3))
    t = (rng.random(n) < 1 / (1 + np.exp(-(0.8 * X[:, 0] + 0.5 * np.sin(2 * X[:, 1]))))).astype(float)
    y = 2 * np.sin(1.5 * X[:, 0]) + X[:, 1] ** 2 + 2 * t + rng.standard_normal(n)
    return EstimationData(t=t, y=y, X=X)


@pytest.mark.parametrize(
    ("models", "expected"),
    [
        ({}, LINEAR_FOLDS),
        ({"outcome_model": TREE}, FLEXIBLE_FOLDS),
        ({"propensity_model": SKLEARN_CLF}, FLEXIBLE_FOLDS),
        ({"outcome_model": "linear", "propensity_model": "logistic"}, LINEAR_FOLDS),
    ],
)
def test_the_default_folds_are_those_of_an_explicit_setting_and_are_reported(models, expected):
    data = nonlinear_data()
    auto = AIPWEstimator(random_state=3, **models).fit(data)
    explicit = AIPWEstimator(random_state=3, folds=expected, **models).fit(data)
    assert auto.effect_ == explicit.effect_ and auto.std_error_ == explicit.std_error_
    assert auto.summary()["folds"] == expected
    other = AIPWEstimator(random_state=3, folds=7 - expected, **models).fit(data)
    assert other.effect_ != auto.effect_  # the number of folds matters, so the comparison above can fail


def test_an_explicit_folds_setting_wins_and_one_fold_is_refused():
    assert AIPWEstimator(folds=3, outcome_model=TREE).n_folds() == 3
    from causal_cli.errors import ConfigError

    with pytest.raises(ConfigError, match="folds"):
        AIPWEstimator.config_class(folds=1)
