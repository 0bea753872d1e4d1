"""A/B estimates against closed forms and against statsmodels' OLS with HC2 errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from causal_cli.abtest import estimates


def _data(n=400, seed=0):
    rng = np.random.default_rng(seed)
    t = (rng.random(n) < 0.4).astype(float)
    x = rng.lognormal(3.0, 0.5, n)
    y = 5 + 0.8 * x + 2.0 * t + 0.3 * t * x + rng.normal(0, 10, n)
    return y, t, x


def test_welch_matches_the_closed_form_and_scipy():
    from scipy import stats

    y, t, _ = _data()
    arms = estimates.welch(y, t)
    d = arms.difference(0.95)
    y0, y1 = y[t == 0], y[t == 1]
    se = np.sqrt(y1.var(ddof=1) / len(y1) + y0.var(ddof=1) / len(y0))
    assert d.value == pytest.approx(y1.mean() - y0.mean())
    assert d.std_error == pytest.approx(se)
    assert d.ci_high - d.value == pytest.approx(1.959964 * se, rel=1e-6)
    welch_t = stats.ttest_ind(y1, y0, equal_var=False).statistic
    assert d.value / d.std_error == pytest.approx(welch_t)


def test_lin_without_covariates_is_welch_exactly():
    y, t, _ = _data()
    welch = estimates.welch(y, t).difference(0.95)
    lin = estimates.lin(y, t, np.empty((len(y), 0))).difference(0.95)
    assert lin.value == pytest.approx(welch.value, abs=1e-10)
    assert lin.std_error == pytest.approx(welch.std_error, rel=1e-10)


@pytest.mark.parametrize("hc", ["hc2", "hc3"])
def test_lin_matches_statsmodels_interacted_ols(hc):
    import statsmodels.api as sm

    y, t, x = _data()
    xc = x - x.mean()
    design = np.column_stack([np.ones_like(y), t, xc, t * xc])
    fit = sm.OLS(y, design).fit(cov_type=hc.upper())
    d = estimates.lin(y, t, x[:, None], hc=hc).difference(0.95)
    assert d.value == pytest.approx(fit.params[1], rel=1e-10)
    assert d.std_error == pytest.approx(fit.bse[1], rel=1e-8)


def test_cuped_variance_reduction_is_about_rho_squared():
    rng = np.random.default_rng(3)
    n, rho = 200_000, 0.7
    x = rng.normal(0, 1, n)
    y = rho * x + np.sqrt(1 - rho**2) * rng.normal(0, 1, n)
    t = (rng.random(n) < 0.5).astype(float)
    plain = estimates.welch(y, t).difference(0.95).std_error
    cuped = estimates.lin(y, t, x[:, None]).difference(0.95).std_error
    assert 1 - (cuped / plain) ** 2 == pytest.approx(rho**2, abs=0.01)


def test_relative_lift_delta_method_closed_form():
    arms = estimates.ArmMeans(50.0, 52.0, np.diag([0.25, 0.36]))
    lift = arms.relative_lift(0.95)
    assert lift.value == pytest.approx(0.04)
    # var(m1/m0) = var(m1)/m0^2 + m1^2 var(m0)/m0^4
    assert lift.std_error == pytest.approx(np.sqrt(0.36 / 50**2 + 52**2 * 0.25 / 50**4))


def test_ratio_metric_delta_method_closed_form():
    rng = np.random.default_rng(1)
    n = 3000
    den = 1 + rng.poisson(4, n).astype(float)
    num = 2.0 * den + rng.normal(0, 3, n)
    t = (rng.random(n) < 0.5).astype(float)
    arms = estimates.ratio(num, den, t)
    for arm, mu in ((0, arms.mu0), (1, arms.mu1)):
        a, b = num[t == arm], den[t == arm]
        r = a.sum() / b.sum()
        linearized = (a - r * b) / b.mean()  # the influence function of the ratio
        assert mu == pytest.approx(r)
        assert arms.cov[arm, arm] == pytest.approx(linearized.var(ddof=1) / len(a), rel=1e-9)


@settings(max_examples=30, deadline=None)
@given(shift=st.floats(-1e3, 1e3), scale=st.floats(0.1, 100), seed=st.integers(0, 10_000))
def test_difference_is_shift_invariant_and_scale_equivariant(shift, scale, seed):
    y, t, x = _data(n=120, seed=seed)
    base = estimates.lin(y, t, x[:, None]).difference(0.95)
    moved = estimates.lin(scale * y + shift, t, x[:, None]).difference(0.95)
    assert moved.value == pytest.approx(scale * base.value, rel=1e-6, abs=1e-6)
    assert moved.std_error == pytest.approx(scale * base.std_error, rel=1e-6)
    swapped = estimates.welch(y, 1 - t).difference(0.95)
    assert swapped.value == pytest.approx(-estimates.welch(y, t).difference(0.95).value)
