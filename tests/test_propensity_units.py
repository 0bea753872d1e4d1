"""The propensity model does not depend on the confounders' units (issue #13).

Before: the built-in model put an L2 penalty (C = 1) on the slopes of the covariates as given, so
recording a confounder as 0.02 * z moved psm from 2.02 to 3.06 and ipw to 3.88 (truth 2, n = 5,000).
Now the solver standardises inside the fit; these checks fail on the old solver.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from causal_cli.errors import EstimationError
from causal_cli.estimators import propensity
from causal_cli.estimators.base import EstimationData
from causal_cli.estimators.ipw import IPWEstimator
from causal_cli.estimators.ps_stratification import PSStratificationEstimator
from causal_cli.estimators.psm import PSMEstimator

ESTIMATORS = {
    "psm": PSMEstimator,
    "ipw": IPWEstimator,
    "ps_stratification": PSStratificationEstimator,
}


def simulated(n=1500, seed=0):
    """Confounders on very different scales (a proportion, dollars, a z-score); true effect 2."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, 3))
    X = np.column_stack([0.3 + 0.16 * np.tanh(z[:, 0]), 20_000 + 5_000 * z[:, 1], z[:, 2]])
    logit = -0.3 + 0.8 * z[:, 0] + 0.7 * z[:, 1] - 0.5 * z[:, 2]
    t = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)
    y = 2.0 * t + 1.5 * z[:, 0] + 1.0 * z[:, 1] + 0.5 * z[:, 2] + rng.standard_normal(n)
    return t, y, X


def rescaled(X, column, factor):
    X = X.copy()
    X[:, column] *= factor
    return X


def fit(name, t, y, X, **params):
    return ESTIMATORS[name](**params).fit(EstimationData(t=t, y=y, X=X))


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
@pytest.mark.parametrize("factor", [0.02, 1_000.0])
@pytest.mark.parametrize("column", [0, 1, 2])
def test_rescaling_a_confounder_moves_no_estimate(name, factor, column):
    t, y, X = simulated()
    base = fit(name, t, y, X)
    moved = fit(name, t, y, rescaled(X, column, factor))
    assert abs(moved.effect_ - base.effect_) < 0.01 * base.std_error_
    assert moved.std_error_ == pytest.approx(base.std_error_, rel=1e-3)


@settings(max_examples=15, deadline=None, derandomize=True)
@given(
    factors=st.lists(st.floats(-3.0, 3.0), min_size=3, max_size=3),
    shifts=st.lists(st.floats(-1e3, 1e3), min_size=3, max_size=3),
)
def test_scores_are_invariant_to_any_affine_change_of_units(factors, shifts):
    """Scores of the built-in model under x -> a x + b, a in [1e-3, 1e3] (either sign), b up to 1,000."""
    t, _, X = simulated(n=600, seed=1)
    scale = 10.0 ** np.asarray(factors)
    base, _ = propensity.propensity_scores(EstimationData(t=t, y=t, X=X))
    other, _ = propensity.propensity_scores(EstimationData(t=t, y=t, X=X * scale + np.asarray(shifts)))
    np.testing.assert_allclose(other, base, rtol=1e-7, atol=1e-10)


def test_objective_is_standardised_logistic_regression():
    """The built-in fit is scikit-learn's StandardScaler + LogisticRegression(C) (population SD)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    t, _, X = simulated(n=800, seed=2)
    for C in (0.05, 1.0):
        ours, _ = propensity.propensity_scores(EstimationData(t=t, y=t, X=X), C=C)
        model = make_pipeline(StandardScaler(), LogisticRegression(C=C, tol=1e-12, max_iter=10_000))
        np.testing.assert_allclose(ours, model.fit(X, t).predict_proba(X)[:, 1], atol=1e-7)


def test_a_constant_covariate_changes_nothing():
    t, _, X = simulated(n=800, seed=3)
    base, _ = propensity.propensity_scores(EstimationData(t=t, y=t, X=X))
    with_constant = np.column_stack([X, np.full(t.shape[0], 7.5)])
    scores, coef = propensity.propensity_scores(EstimationData(t=t, y=t, X=with_constant))
    np.testing.assert_allclose(scores, base, rtol=1e-9)
    assert coef[-1] == 0.0


def test_separation_is_an_error_without_penalty_and_finite_with_it():
    t, _, X = simulated(n=500, seed=4)
    separated = (X[:, 2] > 0).astype(float)
    data = EstimationData(t=separated, y=separated, X=X)
    with pytest.raises(EstimationError, match="separate treated from control.*propensity_C"):
        propensity.propensity_scores(data, C=np.inf)
    scores, _ = propensity.propensity_scores(data, C=1.0)
    assert np.all(np.isfinite(scores)) and 0 < scores.min() and scores.max() < 1


def test_unpenalised_fit_is_plain_maximum_likelihood():
    """C = inf: the score equations hold exactly (no penalty anywhere)."""
    t, _, X = simulated(n=800, seed=5)
    design = np.column_stack([np.ones(t.shape[0]), X])
    beta = propensity.fit_logistic(design, t, C=np.inf)
    mu = 1 / (1 + np.exp(-(design @ beta)))
    gradient = design.T @ (mu - t) / np.abs(design).max(axis=0)
    assert np.max(np.abs(gradient)) < 1e-6


def test_a_scikit_learn_classifier_is_scaled_too():
    """A penalised linear scikit-learn model behind our StandardScaler: unit-free as well."""
    t, _, X = simulated(n=800, seed=6)
    spec = {"_target_": "sklearn.linear_model.LogisticRegression", "C": 0.01}
    base, _ = propensity.propensity_scores(EstimationData(t=t, y=t, X=X), model=spec)
    other, _ = propensity.propensity_scores(EstimationData(t=t, y=t, X=rescaled(X, 0, 0.02)), model=spec)
    np.testing.assert_allclose(other, base, atol=1e-6)
