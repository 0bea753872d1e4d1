"""Verdicts that mean what they say: correct null findings pass, broken estimators still fail, and no
alpha x num_simulations combination whose p-value can never go below alpha gets past validation.

The calibration checks run on a handful of seeded data sets (deterministic); benchmarks/verdicts_mc.py
measures the rates on hundreds.
"""

from __future__ import annotations

import numpy as np
import pytest

from causal_cli.errors import ConfigError
from causal_cli.estimators.base import BaseEstimator
from causal_cli.estimators.naive import NaiveEstimator
from causal_cli.refuters.base import check_reachable_alpha
from causal_cli.refuters.placebo import PlaceboConfig
from causal_cli.refuters.unobserved_common_cause import UnobservedCommonCauseRefuter
from causal_cli.sensitivity import ols
from causal_cli.validate import validate
from tests.test_refuters import (
    IgnoresTreatment,
    make_estimator,
    make_refuter,
    product_data,
    product_frame,
    refute,
)


class AdjustsForFirstConfounderOnly(BaseEstimator):
    """Least squares on the treatment and account_age only: activity's confounding stays in the estimate."""

    name = "adjusts_for_first_confounder_only"
    has_analytic_se = True

    def _design(self, data):
        return np.column_stack([np.ones(data.n), data.X[:, :1], data.t])

    def _estimate(self, data):
        return float(np.linalg.lstsq(self._design(data), data.y, rcond=None)[0][-1])

    def _std_error(self, data):
        return float(ols(self._design(data), data.y)[1][-1])


@pytest.fixture(scope="module")
def null_data_sets():
    """Six product_growth data sets with no effect, both confounders identified."""
    return [product_data(product_frame(1500, seed=100 + i, effect=0.0)) for i in range(6)]


# ---------------------------------------------------------------- correct null findings pass
@pytest.mark.parametrize("estimator_name", ["psm", "ipw", "ps_stratification"])
def test_correct_null_findings_pass_placebo_and_dummy_outcome(null_data_sets, estimator_name):
    """Under the old rules placebo failed every one of these and dummy_outcome (ipw) most."""
    failed = []
    for i, data in enumerate(null_data_sets):
        for name in ("placebo", "dummy_outcome"):
            result = refute(
                make_refuter(name, num_simulations=40), make_estimator(estimator_name), data, seed=i
            )
            if not result.passed:
                failed.append((i, name, result.reason))
    assert len(failed) <= 1, (
        failed
    )  # 12 verdicts at alpha = 0.05: one false failure is plausible, more is not


def test_placebo_reports_distinguishability_as_information(null_data_sets):
    data = product_data(product_frame(1500, seed=7, effect=10.0))
    real = refute(make_refuter("placebo", num_simulations=40), make_estimator("psm"), data)
    null = refute(make_refuter("placebo", num_simulations=40), make_estimator("psm"), null_data_sets[1])
    assert real.passed is True and real.details["distinguishable"] is True
    assert null.passed is True and null.details["distinguishable"] is False
    assert "not distinguishable from them" in null.reason and "distinguishable from them" in real.reason


# ---------------------------------------------------------------- broken estimators still fail
def test_an_estimator_that_ignores_the_treatment_fails_placebo_at_a_true_null(null_data_sets):
    result = refute(make_refuter("placebo", num_simulations=30), IgnoresTreatment(), null_data_sets[1])
    assert result.passed is False and "not centred on 0" in result.reason


@pytest.mark.parametrize("broken", [NaiveEstimator, AdjustsForFirstConfounderOnly])
def test_dummy_outcome_fails_an_estimator_that_leaves_confounding(null_data_sets, broken):
    """Its own SE now widens the test; the confounding left behind is still many SEs from 0."""
    for i, data in enumerate(null_data_sets[:3]):
        result = refute(make_refuter("dummy_outcome", num_simulations=30), broken(), data, seed=i)
        assert result.passed is False and "cannot have" in result.reason, result.reason


def test_dummy_outcome_permute_does_not_widen_by_the_estimator_se(null_data_sets):
    """A permuted dummy outcome is fresh in every simulation: only the Monte Carlo error applies."""
    result = refute(
        make_refuter("dummy_outcome", num_simulations=30, dummy_type="permute"),
        make_estimator("regression"),
        null_data_sets[2],
    )
    assert result.passed is True and ", SE " not in result.reason


# ---------------------------------------------------------------- alpha x num_simulations
@pytest.mark.parametrize(
    ("refuter", "simulations", "alpha", "needed"),
    [("placebo", 100, 0.01, 200), ("placebo", 150, 0.01, 200), ("bootstrap", 100, 0.015, 133)],
)
def test_unreachable_alpha_is_refused_in_one_line(compose_cfg, refuter, simulations, alpha, needed):
    cfg = compose_cfg(
        [
            f"refuters=[{refuter}]",
            f"refuters.{refuter}.num_simulations={simulations}",
            f"refuters.{refuter}.alpha={alpha}",
        ]
    )
    with pytest.raises(ConfigError) as info:
        validate(cfg)
    message = info.value.one_line()
    assert f"refuters.{refuter}.num_simulations={simulations} cannot reach p < alpha={alpha:g}" in message
    assert f"smallest p = 2/{simulations + 1}" in message and f"num_simulations >= {needed}" in message
    assert "\n" not in message
    # the suggested count is the smallest that works
    check_reachable_alpha(needed, alpha)
    with pytest.raises(ConfigError):
        check_reachable_alpha(needed - 1, alpha)


@pytest.mark.parametrize(
    "overrides",
    [
        ["refuters=[placebo]", "refuters.placebo.num_simulations=50", "refuters.placebo.alpha=0.01"],
        ["refuters=[placebo]", "refuters.placebo.num_simulations=200", "refuters.placebo.alpha=0.01"],
        [
            "refuters=[dummy_outcome]",
            "refuters.dummy_outcome.num_simulations=100",
            "refuters.dummy_outcome.alpha=0.01",
        ],
    ],
)
def test_reachable_alpha_is_accepted(compose_cfg, overrides):
    """Below 100 simulations a normal approximation has no floor; dummy_outcome's test is normal throughout."""
    validate(compose_cfg(overrides))


def test_placebo_at_alpha_001_can_pass_a_large_effect_with_enough_simulations():
    with pytest.raises(ConfigError):
        PlaceboConfig(num_simulations=150, alpha=0.01)
    data = product_data(product_frame(1000, seed=11, effect=10.0))
    result = refute(
        make_refuter("placebo", num_simulations=200, alpha=0.01), make_estimator("regression"), data
    )
    assert result.passed is True and result.details["distinguishable"] is True
    assert result.details["distinguishable_p"] == pytest.approx(2 / 201)


# ---------------------------------------------------------------- built from Python with defaults
def test_unobserved_common_cause_refuter_works_without_options():
    refuter = UnobservedCommonCauseRefuter()
    assert refuter.num_simulations == 4 and len(refuter.strengths) == 6
    data = product_data(product_frame(400, seed=2))
    result = refute(refuter, make_estimator("regression"), data)
    assert len(result.table) == 36 and result.details["robustness_value"] is not None
