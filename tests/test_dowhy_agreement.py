"""Our fast estimators give DoWhy's numbers on the same data, and plug into DoWhy as its own estimators.

Agreement is checked twice: with the propensity scores shared (DoWhy uses a ``propensity_score``
column when the frame has one), which isolates the estimator formula; and with DoWhy fitting its own
scikit-learn ``LogisticRegression`` behind a ``StandardScaler`` (the objective of our Newton solver,
which standardises the covariates inside the fit), converged tightly. Both
must agree to 1e-6. DoWhy's *default* ``LogisticRegression()`` stops at lbfgs' tolerance (1e-4), which
moves the scores in the 5th digit: measured on this data (n = 2,000) that shifts psm by up to 1.0%
(a few different matches), ipw by < 0.01% and ps_stratification by up to 0.05%.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pytest

from causal_cli import registry
from causal_cli.errors import EstimationError
from tests.estimation_helpers import build, prepare

DATA = ("dgp.n=2000", "dgp.confounding=strong", "seed=0")
TARGETS = ("ate", "att", "atc")
ADAPTER = "backdoor.causal_cli.estimators.dowhy_adapter."


@pytest.fixture(autouse=True)
def quiet_dowhy():
    logging.getLogger("dowhy").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def dowhy_model(prepared, propensity=None):
    from dowhy import CausalModel

    frame = prepared.frame.copy()  # DoWhy's estimators add columns to the frame they are given
    if propensity is not None:
        frame["propensity_score"] = propensity
    model = CausalModel(
        data=frame,
        treatment=prepared.treatment,
        outcome=prepared.outcome,
        common_causes=prepared.adjustment_set,
    )
    return model, model.identify_effect(proceed_when_unidentifiable=True)


def converged_logistic():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, tol=1e-12, max_iter=10_000))


def dowhy_value(prepared, method, target, propensity=None, **params):
    model, estimand = dowhy_model(prepared, propensity)
    return model.estimate_effect(
        estimand, method_name=f"backdoor.{method}", target_units=target, method_params=params
    ).value


def test_regression_equals_dowhy_linear_regression(compose_cfg):
    """DoWhy's linear_regression is the additive model (``interactions: false``), not our default."""
    prepared = prepare(compose_cfg, *DATA)
    ours = build(compose_cfg, "regression", "estimator.interactions=false").fit(prepared.data).effect_
    assert ours == pytest.approx(dowhy_value(prepared, "linear_regression", "ate"), rel=1e-9)


@pytest.mark.parametrize("target", TARGETS)
def test_psm_equals_dowhy_propensity_score_matching(compose_cfg, target):
    prepared = prepare(compose_cfg, *DATA)
    # DoWhy's propensity_score_matching has no bias adjustment (psm's default since it covers better)
    est = build(compose_cfg, "psm", f"estimator.target_units={target}", "estimator.bias_adjust=false").fit(
        prepared.data
    )
    shared = dowhy_value(prepared, "propensity_score_matching", target, propensity=est.propensity_)
    assert est.effect_ == pytest.approx(shared, rel=1e-9)
    own = dowhy_value(
        prepared, "propensity_score_matching", target, propensity_score_model=converged_logistic()
    )
    assert est.effect_ == pytest.approx(own, rel=1e-6)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize(("clip", "dowhy_bounds"), [(None, (0.0, 1.0)), ((0.05, 0.95), (0.05, 0.95))])
def test_ipw_equals_dowhy_propensity_score_weighting(compose_cfg, target, clip, dowhy_bounds):
    prepared = prepare(compose_cfg, *DATA)
    clip_override = "null" if clip is None else f"[{clip[0]},{clip[1]}]"
    est = build(compose_cfg, "ipw", f"estimator.target_units={target}", f"estimator.clip={clip_override}")
    est.fit(prepared.data)
    bounds = {"min_ps_score": dowhy_bounds[0], "max_ps_score": dowhy_bounds[1]}
    shared = dowhy_value(prepared, "propensity_score_weighting", target, propensity=est.propensity_, **bounds)
    assert est.effect_ == pytest.approx(shared, rel=1e-9)
    assert est.effect_ == pytest.approx(
        dowhy_value(prepared, "propensity_score_weighting", target, **bounds), rel=0.01
    )


def test_dowhy_default_clipping_is_not_ours(compose_cfg):
    """DoWhy silently clips to [0.05, 0.95]; ours does not unless asked, and says which it did."""
    prepared = prepare(compose_cfg, *DATA)
    est = build(compose_cfg, "ipw", "estimator.target_units=att").fit(prepared.data)
    assert est.summary()["clip"] is None
    assert ((est.propensity_ < 0.05) | (est.propensity_ > 0.95)).any()
    assert est.effect_ != pytest.approx(
        dowhy_value(prepared, "propensity_score_weighting", "att", est.propensity_)
    )


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("num_strata", ["auto", 20])
def test_ps_stratification_equals_dowhy(compose_cfg, target, num_strata):
    prepared = prepare(compose_cfg, *DATA)
    est = build(
        compose_cfg,
        "ps_stratification",
        f"estimator.target_units={target}",
        f"estimator.num_strata={num_strata}",
        "estimator.max_strata=null",  # DoWhy's auto: no cap on the starting number of strata
        "estimator.sparse_strata=drop",  # DoWhy drops sparse strata; ours merges them by default
        "estimator.within_stratum=none",  # and takes plain differences in means; ours adjusts for the score
    ).fit(prepared.data)
    params = {"num_strata": num_strata, "clipping_threshold": 10}
    shared = dowhy_value(
        prepared, "propensity_score_stratification", target, propensity=est.propensity_, **params
    )
    assert est.effect_ == pytest.approx(shared, rel=1e-9)
    own = dowhy_value(
        prepared,
        "propensity_score_stratification",
        target,
        propensity_score_model=converged_logistic(),
        **params,
    )
    assert est.effect_ == pytest.approx(own, rel=1e-6)


def test_distance_matching_euclidean_equals_dowhy_distance_matching(compose_cfg):
    prepared = prepare(compose_cfg, "dgp.n=600", "seed=1")
    for target in TARGETS:
        est = build(
            compose_cfg,
            "distance_matching",
            "estimator.distance=euclidean",
            "estimator.bias_adjust=false",  # DoWhy's distance_matching has no bias correction
            f"estimator.target_units={target}",
        )
        assert est.fit(prepared.data).effect_ == pytest.approx(
            dowhy_value(prepared, "distance_matching", target), rel=1e-9
        )


@pytest.mark.parametrize(
    "name", ["regression", "psm", "ps_stratification", "ipw", "aipw", "dml", "distance_matching"]
)
def test_plugin_estimates_and_refutes_through_dowhy(compose_cfg, name):
    """DoWhy loads our estimator from its dotted name; its own refuters run with it unchanged."""
    from causal_cli.estimators.dowhy_adapter import ADAPTERS

    prepared = prepare(compose_cfg, *DATA)
    model, estimand = dowhy_model(prepared)
    estimate = model.estimate_effect(
        estimand, method_name=ADAPTER + ADAPTERS[name].__name__, target_units="ate", confidence_intervals=True
    )
    ours = registry.load("estimator", name)(random_state=0).fit(prepared.data)
    assert estimate.value == pytest.approx(ours.effect_, rel=1e-9)
    assert estimate.get_standard_error() == pytest.approx(ours.std_error_, rel=1e-9)
    assert tuple(estimate.get_confidence_intervals()) == pytest.approx(
        (ours.ci_low_, ours.ci_high_), rel=1e-9
    )

    placebo = model.refute_estimate(
        estimand, estimate, method_name="placebo_treatment_refuter", placebo_type="permute", num_simulations=5
    )
    assert abs(placebo.new_effect) < 0.2 * abs(estimate.value)
    common_cause = model.refute_estimate(
        estimand, estimate, method_name="random_common_cause", num_simulations=5
    )
    assert common_cause.new_effect == pytest.approx(estimate.value, rel=0.05)


def test_plugin_passes_options_and_warm_starts_refuter_copies(compose_cfg):
    prepared = prepare(compose_cfg, *DATA)
    model, estimand = dowhy_model(prepared)
    estimate = model.estimate_effect(
        estimand,
        method_name=ADAPTER + "IPW",
        target_units="att",
        method_params={"clip": [0.02, 0.98], "trimming": None},
    )
    ours = build(compose_cfg, "ipw", "estimator.target_units=att", "estimator.clip=[0.02,0.98]")
    ours.random_state = 0
    assert estimate.value == pytest.approx(ours.fit(prepared.data).effect_, rel=1e-9)
    assert estimate.details["clip"] == [0.02, 0.98] and estimate.details["units_clipped"] > 0
    copy = estimate.estimator.get_new_estimator_object(estimand)
    np.testing.assert_array_equal(copy._warm_start, estimate.estimator.estimator_.warm_start_)
    with pytest.raises(EstimationError, match="unknown method_params bogus"):
        model.estimate_effect(estimand, method_name=ADAPTER + "IPW", method_params={"bogus": 1})
