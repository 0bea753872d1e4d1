"""What regression, dml, aipw and frontdoor estimate: closed forms, shared scores, unit-free nuisances.

Data are simulated here in numpy (heterogeneous effects, ATE != ATT != ATC; a front-door design whose
mediator slope varies with the hidden confounder) and handed to the estimators as EstimationData.
Coverage over many replications is measured by benchmarks/estimands_mc.py, not here.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from causal_cli.estimators.aipw import AIPWEstimator
from causal_cli.estimators.base import EstimationData
from causal_cli.estimators.dml import DMLEstimator
from causal_cli.estimators.frontdoor import FrontdoorEstimator
from causal_cli.estimators.regression import RegressionEstimator
from tests.conftest import read_results

TARGETS = ("ate", "att", "atc")


def heterogeneous(n: int, seed: int) -> EstimationData:
    """Effect 2 + 1.5 x1 + x2; treated units have high x1, x2: ATT > ATE > ATC."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 3))
    t = (rng.random(n) < 1 / (1 + np.exp(-(0.8 * X[:, 0] + 0.6 * X[:, 1] - 0.2)))).astype(float)
    y0 = 1 + X[:, 0] + 0.5 * X[:, 1] - 0.5 * X[:, 2] + rng.standard_normal(n)
    return EstimationData(t=t, y=y0 + t * (2 + 1.5 * X[:, 0] + X[:, 1]), X=X, covariates=("x1", "x2", "x3"))


def frontdoor(n: int, seed: int, slope_spread: float = 4.0, controls: bool = False) -> EstimationData:
    """Hidden u confounds t and y; m carries the whole effect; m's worth is 10 + slope_spread * u.

    Truth: P(m | do(1)) - P(m | do(0)) = 0.4 times E[10 + slope_spread * u] = 10: the ATE is 4. The
    mediator varies more among the treated, so one pooled slope leans to their (higher) slope.
    """
    rng = np.random.default_rng(seed)
    u = rng.standard_normal(n)
    x = rng.standard_normal((n, 1 if controls else 0))
    t = (rng.random(n) < 1 / (1 + np.exp(-1.2 * u))).astype(float)
    m = (rng.random(n) < 0.1 + 0.4 * t).astype(float)
    shift = x @ np.ones(x.shape[1]) if controls else 0.0
    y = 20 + m * (10 + slope_spread * u) + 5 * u + shift + 2 * rng.standard_normal(n)
    return EstimationData(
        t=t, y=y, X=x, covariates=("x",) if controls else (), mediators=m[:, None], mediator_names=("m",)
    )


@pytest.mark.parametrize("target", TARGETS)
def test_lin_regression_is_the_mean_difference_of_per_arm_ols_predictions(target):
    data = heterogeneous(800, 1)
    est = RegressionEstimator(target_units=target).fit(data)
    design = data.design
    arm = {g: np.linalg.lstsq(design[data.t == g], data.y[data.t == g], rcond=None)[0] for g in (0, 1)}
    rows = {"att": data.t == 1, "atc": data.t == 0}.get(target, np.ones(data.n, dtype=bool))
    assert est.effect_ == pytest.approx(np.mean(design[rows] @ (arm[1] - arm[0])), rel=1e-9)
    assert est.summary()["estimand"] == target.upper() and est.caveats() == []


def test_additive_regression_is_labelled_a_variance_weighted_effect():
    data = heterogeneous(800, 1)
    additive = RegressionEstimator(interactions=False).fit(data)
    lin = RegressionEstimator().fit(data)
    assert "variance-weighted" in additive.summary()["estimand"]
    assert len(additive.caveats()) == 1 and "variance-weighted" in additive.caveats()[0]
    assert abs(additive.effect_ - lin.effect_) > 0.1  # heterogeneous effects: the two estimands differ


@settings(max_examples=25, deadline=None)
@given(
    scale=st.floats(1e-3, 1e3),
    shift=st.floats(-100, 100),
    target=st.sampled_from(TARGETS),
    kind=st.sampled_from(("hc1", "hc2", "hc3")),
)
def test_lin_regression_does_not_depend_on_covariate_units(scale, shift, target, kind):
    data = heterogeneous(300, 2)
    X = data.X.copy()
    X[:, 0] = X[:, 0] * scale + shift
    moved = EstimationData(t=data.t, y=data.y, X=X)
    a = RegressionEstimator(target_units=target, robust_se=kind).fit(data)
    b = RegressionEstimator(target_units=target, robust_se=kind).fit(moved)
    assert b.effect_ == pytest.approx(a.effect_, rel=1e-7, abs=1e-9)
    assert b.std_error_ == pytest.approx(a.std_error_, rel=1e-4)  # near-collinear columns cost digits


def test_hc2_and_hc3_are_at_least_hc0():
    data = heterogeneous(200, 3)
    se = {k: RegressionEstimator(robust_se=k).fit(data).std_error_ for k in ("hc1", "hc2", "hc3")}
    assert se["hc3"] > se["hc2"] > 0 and se["hc1"] > 0


@pytest.mark.parametrize("target", TARGETS)
def test_dml_irm_on_one_split_is_aipw_on_the_same_folds(target):
    data = heterogeneous(1500, 4)
    aipw = AIPWEstimator(target_units=target, folds=4, random_state=7).fit(data)
    dml = DMLEstimator(target_units=target, folds=4, n_rep=1, random_state=7).fit(data)
    assert dml.effect_ == pytest.approx(aipw.effect_, rel=1e-12)
    assert dml.std_error_ == pytest.approx(aipw.std_error_, rel=1e-12)
    assert dml.summary()["estimand"] == target.upper() and dml.caveats() == []


def test_dml_repeated_splits_take_the_median_and_widen_by_the_spread():
    data = heterogeneous(600, 5)
    dml = DMLEstimator(folds=3, n_rep=5, random_state=2).fit(data)
    splits = dml.split_estimates_
    first = AIPWEstimator(folds=3, random_state=2).fit(data)
    assert splits.shape == (5,) and np.unique(splits).size == 5  # five different fold splits
    assert splits[0] == pytest.approx(first.effect_, rel=1e-12)
    assert dml.effect_ == pytest.approx(np.median(splits), rel=1e-12)
    assert dml.std_error_ >= np.sqrt(np.median((splits - dml.effect_) ** 2))
    assert dml.summary()["split_estimates"]["min"] == splits.min()


#: E[e(1-e) tau(X)] / E[e(1-e)] of ``heterogeneous`` (4 million draws; Monte Carlo error < 0.002)
VARIANCE_WEIGHTED_TRUTH = 2.108


def test_dml_plr_is_named_and_converges_to_the_variance_weighted_effect():
    data = heterogeneous(40_000, 6)
    plr = DMLEstimator(model="plr", n_rep=1).fit(data)
    assert "variance-weighted" in plr.summary()["estimand"] and "variance-weighted" in plr.caveats()[0]
    irm = DMLEstimator(n_rep=1).fit(data)
    assert abs(plr.effect_ - VARIANCE_WEIGHTED_TRUTH) < 3 * plr.std_error_
    assert abs(irm.effect_ - 2.0) < 3 * irm.std_error_  # the ATE
    assert plr.effect_ - irm.effect_ > 0.05


PENALISED = {
    "outcome_model": {"_target_": "sklearn.linear_model.Ridge", "alpha": 50.0},
    "propensity_model": {"_target_": "sklearn.linear_model.LogisticRegression", "C": 0.01},
}


def rescaled(data: EstimationData, factor: float) -> EstimationData:
    X = data.X.copy()
    X[:, 0] *= factor
    return EstimationData(t=data.t, y=data.y, X=X)


@pytest.mark.parametrize("cls", [AIPWEstimator, DMLEstimator])
@pytest.mark.parametrize("factor", [0.02, 1000.0])
def test_penalised_sklearn_nuisances_do_not_depend_on_covariate_units(cls, factor):
    data = heterogeneous(1000, 8)
    base = cls(random_state=3, **PENALISED).fit(data)
    moved = cls(random_state=3, **PENALISED).fit(rescaled(data, factor))
    assert abs(moved.effect_ - base.effect_) < 0.01 * base.std_error_


@pytest.mark.xfail(
    strict=True, reason="needs the standardised built-in propensity solver (propensity.py, branch h/prop)"
)
@pytest.mark.parametrize("cls", [AIPWEstimator, DMLEstimator])
def test_built_in_propensity_does_not_depend_on_covariate_units(cls):
    data = heterogeneous(1000, 8)
    base = cls(random_state=3).fit(data)
    for factor in (0.02, 1000.0):
        moved = cls(random_state=3).fit(rescaled(data, factor))
        assert abs(moved.effect_ - base.effect_) < 0.01 * base.std_error_


def test_frontdoor_with_interaction_is_the_nonparametric_front_door_formula():
    """Binary t and m, no controls: both stages are saturated, so the estimate is the plug-in formula."""
    data = frontdoor(3000, 9)
    t, m, y = data.t, data.mediators[:, 0], data.y
    p_m = {a: m[t == a].mean() for a in (0, 1)}
    e_y = {(mv, a): y[(m == mv) & (t == a)].mean() for mv in (0, 1) for a in (0, 1)}
    share = t.mean()

    def do(a):
        return sum(
            (p_m[a] if mv else 1 - p_m[a]) * (e_y[mv, 1] * share + e_y[mv, 0] * (1 - share)) for mv in (0, 1)
        )

    est = FrontdoorEstimator().fit(data)
    assert est.effect_ == pytest.approx(do(1) - do(0), rel=1e-9)
    assert est.summary()["interaction"] is True and "mediator_x_treatment" in est.summary()


def test_frontdoor_interaction_removes_the_bias_and_reduces_to_the_plain_fit_without_it():
    data = frontdoor(40_000, 10, controls=True)
    with_interaction = FrontdoorEstimator().fit(data)
    plain = FrontdoorEstimator(interaction=False).fit(data)
    assert abs(with_interaction.effect_ - 4.0) < 3 * with_interaction.std_error_
    assert abs(plain.effect_ - 4.0) > 3 * with_interaction.std_error_  # one slope is biased here
    flat = frontdoor(40_000, 10, slope_spread=0.0, controls=True)
    a, b = FrontdoorEstimator().fit(flat), FrontdoorEstimator(interaction=False).fit(flat)
    assert abs(a.effect_ - b.effect_) < 0.5 * b.std_error_
    assert a.std_error_ == pytest.approx(b.std_error_, rel=0.1)


def test_frontdoor_delta_method_se_matches_the_bootstrap():
    data = frontdoor(2000, 11, controls=True)
    analytic = FrontdoorEstimator().fit(data)
    boot = FrontdoorEstimator(ci_method="bootstrap", num_bootstrap=200, random_state=1).fit(data)
    assert boot.std_error_ == pytest.approx(analytic.std_error_, rel=0.15)


def test_heterogeneous_experiment_runs_regression_for_the_att(run_causal):
    proc, run_dir = run_causal(
        "run", "experiment=heterogeneous", "estimator=regression", "dgp.n=2000", "refuters=[]"
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = read_results(run_dir)
    assert results["target_units"] == "att" and results["estimator_details"]["estimand"] == "ATT"
    refs = results["references"]
    assert refs["att"] - refs["atc"] > 1  # the targets differ, and the estimate is near the ATT
    assert abs(results["estimate"] - refs["att"]) < 4 * results["std_error"]
