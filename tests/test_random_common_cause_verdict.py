"""random_common_cause's verdict accounts for the estimate's sampling error (issue #13).

A relative tolerance alone failed psm on Lalonde (an extra covariate moves its estimate by 22%, half its SE,
because any covariate changes the matches of 185 treated men). Like dummy_outcome, a shift beyond the
tolerance now fails only when it is significant against the estimate's SE plus the simulations' Monte Carlo
error; benchmarks/random_common_cause_mc.py measures the false-failure rate at true models and the power.
"""

from __future__ import annotations

import numpy as np
import pytest

from causal_cli.estimators.base import BaseEstimator, EstimationData
from causal_cli.estimators.regression import RegressionEstimator
from causal_cli.refuters.random_common_cause import RandomCommonCauseRefuter
from causal_cli.sensitivity import ols


def lalonde_like_sims(shift: float, sd: float, n: int = 100) -> np.ndarray:
    """Simulated new estimates with exactly this mean shift from 2133 and this SD."""
    z = np.random.default_rng(0).standard_normal(n)
    z = (z - z.mean()) / z.std(ddof=1)
    return 2133.0 + shift + sd * z


def test_a_shift_within_the_estimates_sampling_error_passes_and_says_so():
    # psm on Lalonde: estimate 2133, SE 992, the new estimates 471 lower with SD 518 (0.47 SE)
    passed, p, reason = RandomCommonCauseRefuter().verdict(2133.0, 992.0, lalonde_like_sims(-471.0, 518.0))
    assert passed is True, reason
    assert "22.1% shift" in reason and "within the estimate's sampling error" in reason
    assert 0 < p <= 1


def test_the_same_shift_fails_when_it_is_several_standard_errors():
    passed, _, reason = RandomCommonCauseRefuter().verdict(2133.0, 100.0, lalonde_like_sims(-471.0, 50.0))
    assert passed is False and "beyond its sampling error" in reason and "moves the estimate" in reason
    # the boundary: 1.96 x sqrt(SE^2 + (sd / sqrt(S))^2)
    se, sd = 200.0, 50.0
    edge = 1.959964 * np.hypot(se, sd / 10)
    assert RandomCommonCauseRefuter().verdict(2133.0, se, lalonde_like_sims(-0.99 * edge, sd))[0] is True
    assert RandomCommonCauseRefuter().verdict(2133.0, se, lalonde_like_sims(-1.01 * edge, sd))[0] is False


def test_within_the_relative_tolerance_it_passes_as_before_and_without_an_se_only_mc_error_counts():
    passed, _, reason = RandomCommonCauseRefuter().verdict(2133.0, 5.0, lalonde_like_sims(-50.0, 10.0))
    assert passed is True and "leaves the estimate unchanged" in reason
    assert RandomCommonCauseRefuter().verdict(2133.0, None, lalonde_like_sims(-471.0, 518.0))[0] is False


def test_a_correct_regression_on_real_data_passes_and_one_that_adjusts_for_the_last_column_fails():
    class LastColumnOnly(BaseEstimator):
        """Adjusts for the last covariate only: an appended random covariate replaces the confounder."""

        name = "last_column_only"
        has_analytic_se = True

        def _design(self, data):
            return np.column_stack([np.ones(data.n), data.X[:, -1], data.t])

        def _estimate(self, data):
            return float(np.linalg.lstsq(self._design(data), data.y, rcond=None)[0][-1])

        def _std_error(self, data):
            return float(ols(self._design(data), data.y)[1][-1])

    rng = np.random.default_rng(3)
    n = 800
    x = rng.standard_normal(n)
    t = (rng.random(n) < 1 / (1 + np.exp(-1.5 * x))).astype(float)
    y = 1.0 * t + 3.0 * x + rng.standard_normal(n)
    data = EstimationData(t=t, y=y, X=x[:, None], covariates=("x",))
    refuter = RandomCommonCauseRefuter(num_simulations=20)
    for estimator, expected in ((RegressionEstimator(), True), (LastColumnOnly(), False)):
        estimator.fit(data)
        result = refuter.refute(estimator, data, estimator.effect_, estimator.std_error_, seed=1)
        assert result.passed is expected, result.reason


@pytest.mark.parametrize("alpha_text", ["0.05"])
def test_the_rule_text_names_the_test(alpha_text):
    assert "sampling error" in RandomCommonCauseRefuter.rule and alpha_text in RandomCommonCauseRefuter.rule
