"""The always-on closed-form sensitivity (causal_cli.sensitivity) against its definitions and a published example.

The robustness value is *defined* as the partial R² a confounder needs with both treatment and outcome
to bring the estimate to 0 (and RV at alpha: to bring the t-statistic to the critical value). We build
such a confounder from the data (the simulated-confounder refuter's construction: in-sample partial R²
exact) and check the re-fitted regression lands on 0 / on the critical t.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from causal_cli import sensitivity
from causal_cli.estimators.base import EstimationData
from causal_cli.refuters.unobserved_common_cause import UnobservedCommonCauseRefuter


def confounded(n=3000, seed=0, effect=1.0, coef=(0.8, 0.5), y_coef=(1.0, 0.7)):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, len(coef)))
    t = (x @ np.array(coef) + rng.normal(size=n) > 0).astype(float)
    y = effect * t + x @ np.array(y_coef) + rng.normal(size=n)
    return x, t, y


def block_for(data, estimate=1.0, ci=(0.9, 1.1), identification="backdoor"):
    return sensitivity.analyze(data, identification, estimate, *ci)


def refit_with_confounder(data, block, strength):
    """Least-squares estimate and t after adding a confounder of partial R² ``strength`` with T and with Y."""
    refuter = UnobservedCommonCauseRefuter(num_simulations=1)
    refuter._direction, refuter._seed = float(np.sign(block["regression_estimate"])), 0
    refuter.prepare(None, data)
    u = refuter.confounder(strength, strength, np.random.default_rng(1))
    coef, se, _, _ = sensitivity.ols(np.column_stack([data.design, u, data.t]), data.y)
    return coef[-1], coef[-1] / se[-1]


def test_a_confounder_as_strong_as_the_robustness_value_explains_the_estimate_away():
    x, t, y = confounded()
    data = EstimationData(t=t, y=y, X=x, covariates=("a", "b"))
    block = block_for(data)
    assert 0 < block["robustness_value_alpha"] < block["robustness_value"] < 1
    adjusted, _ = refit_with_confounder(data, block, block["robustness_value"])
    assert adjusted == pytest.approx(0.0, abs=1e-9)
    weaker, _ = refit_with_confounder(data, block, 0.9 * block["robustness_value"])
    assert weaker > 0.1  # a weaker one does not


def test_robustness_value_at_alpha_brings_the_t_statistic_to_the_critical_value():
    from scipy.stats import t as student_t

    x, t, y = confounded(seed=2)
    data = EstimationData(t=t, y=y, X=x, covariates=("a", "b"))
    block = block_for(data)
    _, t_stat = refit_with_confounder(data, block, block["robustness_value_alpha"])
    assert t_stat == pytest.approx(student_t.ppf(0.975, block["dof"] - 1), rel=1e-6)


def test_matches_cinelli_hazlett_darfur_example():
    """Cinelli & Hazlett (2020), Table 1: t = 4.184, df = 783 -> R² 2.19%, RV 13.9%, RV(alpha = 0.05) 7.6%."""
    assert sensitivity.partial_r2_from_t(4.184, 783) == pytest.approx(0.0219, abs=5e-5)
    assert sensitivity.robustness_value(4.184, 783) == pytest.approx(0.139, abs=5e-4)
    assert sensitivity.robustness_value(4.184, 783, alpha=0.05) == pytest.approx(0.076, abs=5e-4)


def test_benchmark_bound_recovers_an_omitted_confounder_as_strong_as_the_observed_one():
    x, t, y = confounded(n=20_000, seed=4, coef=(0.7, 0.7), y_coef=(1.0, 1.0))
    data = EstimationData(t=t, y=y, X=x[:, :1], covariates=("x1",))  # x2, as strong as x1, is omitted
    block = block_for(data)
    actual_bias = block["regression_estimate"] - 1.0
    one = next(b for b in block["benchmarks"] if b["k"] == 1.0)
    assert one["covariate"] == "x1"
    assert actual_bias > 0.5  # the omission matters
    # a confounder as strong as x1 (k = 1) is what x2 is: the bound is about the bias its omission causes
    # (exact for partial R² equal to x1's; with a binary treatment those are only approximately equal)
    assert one["bias_bound"] == pytest.approx(actual_bias, rel=0.15)
    assert abs(one["adjusted_estimate"] - 1.0) < 0.15 * actual_bias
    assert not one["explains_away"] and [b["k"] for b in block["benchmarks"]] == [1.0, 2.0, 3.0]


def test_e_value_uses_the_residual_sd_and_the_ci_limit_nearest_zero():
    x, t, y = confounded(seed=5)
    data = EstimationData(t=t, y=y, X=x, covariates=("a", "b"))
    block = block_for(data, estimate=1.0, ci=(0.8, 1.2))
    design = np.column_stack([data.design, t])
    resid = y - design @ np.linalg.lstsq(design, y, rcond=None)[0]
    sd = np.sqrt(resid @ resid / (len(y) - design.shape[1]))
    assert block["outcome_residual_sd"] == pytest.approx(sd)
    assert sd < y.std()  # the total SD would understate the standardised effect
    rr = np.exp(0.91 * 1.0 / sd)
    assert block["e_value"] == pytest.approx(rr + np.sqrt(rr * (rr - 1)))
    assert block["e_value_ci"] == pytest.approx(sensitivity.e_value(0.8, sd))
    assert block_for(data, ci=(-0.1, 2.0))["e_value_ci"] == 1.0  # the CI includes the null


@pytest.mark.parametrize("design", ["iv", "frontdoor"])
def test_iv_and_frontdoor_say_what_applies_instead(design):
    x, t, y = confounded(n=200)
    block = block_for(EstimationData(t=t, y=y, X=x, covariates=("a", "b")), identification=design)
    assert block["applies"] is False and "does not apply" in block["message"]
    from causal_cli.report.sensitivity import headline, refutation_closing

    assert headline(block) == block["message"]
    assert "not the absence of unobserved confounding" in refutation_closing(3, 3, block)


@settings(max_examples=100, deadline=None)
@given(
    t_stat=st.floats(-200, 200, allow_nan=False),
    df=st.integers(3, 10**6),
    alpha=st.sampled_from([0.01, 0.05, 0.1]),
)
def test_robustness_value_is_a_share_monotone_in_t_and_below_its_alpha_free_value(t_stat, df, alpha):
    rv = sensitivity.robustness_value(t_stat, df)
    rv_a = sensitivity.robustness_value(t_stat, df, alpha=alpha)
    assert 0 <= rv_a <= rv <= 1
    assert rv == sensitivity.robustness_value(-t_stat, df)
    assert sensitivity.robustness_value(abs(t_stat) + 1, df) >= rv
    assert sensitivity.robustness_value(abs(t_stat) + 1, df, alpha=alpha) >= rv_a


@settings(max_examples=100, deadline=None)
@given(estimate=st.floats(-50, 50, allow_nan=False), sd=st.floats(1.0, 100))
def test_e_value_is_at_least_one_and_grows_with_the_effect(estimate, sd):
    value = sensitivity.e_value(estimate, sd)
    assert value >= 1 and value == sensitivity.e_value(-estimate, sd)
    assert sensitivity.e_value(abs(estimate) + 1, sd) > value


@pytest.mark.parametrize("p", [0.6, 0.9, 0.975, 0.995, 0.99999])
@pytest.mark.parametrize("df", [2, 29, 199, 200, 350, 5_000, 10**6, 10**9])
def test_t_quantile_matches_scipy_on_both_sides_of_the_expansion(p, df):
    from scipy.special import stdtrit

    from causal_cli.sensitivity import t_quantile

    assert t_quantile(p, df) == pytest.approx(float(stdtrit(df, p)), rel=1e-9)
