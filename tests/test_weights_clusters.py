"""Observation weights (``data.weights``) and clustered standard errors (``data.cluster``).

Closed forms: weighted regression is WLS; integer weights give the point estimate of duplicated rows;
the cluster-robust SE is the CR1 sandwich computed directly; with one row per cluster it is the HC0
sandwich times sqrt(n / (n - 1)). Real pipeline and command runs on a CSV.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from causal_cli import pipeline
from causal_cli.errors import DataError, EstimationError
from causal_cli.estimators.aipw import AIPWEstimator
from causal_cli.estimators.base import EstimationData, influence_se, resample
from causal_cli.estimators.ipw import IPWEstimator
from causal_cli.estimators.naive import NaiveEstimator
from causal_cli.estimators.psm import PSMEstimator
from causal_cli.estimators.regression import RegressionEstimator
from causal_cli.validate import validate
from tests.conftest import read_results


def clustered(seed=0, groups=40, size=10, weights=False):
    rng = np.random.default_rng(seed)
    team = np.repeat(np.arange(groups), size)
    shock = rng.normal(size=groups)[team]
    x = rng.normal(size=team.size) + 0.5 * shock
    t = (rng.random(team.size) < 1 / (1 + np.exp(-0.6 * x))).astype(float)
    effect = 1.5 + rng.normal(size=groups)[team]  # the effect varies by team
    y = effect * t + x + shock + rng.normal(size=team.size)
    w = rng.integers(1, 4, team.size).astype(float) if weights else None
    return EstimationData(t=t, y=y, X=x[:, None], covariates=("x",), w=w, cluster=team if groups else None)


def test_weighted_regression_is_wls():
    data = clustered(weights=True)
    data.cluster = None
    fit = RegressionEstimator(interactions=False).fit(data)
    Z = np.column_stack([np.ones(data.n), data.X, data.t])
    root = np.sqrt(data.w)
    beta = np.linalg.lstsq(Z * root[:, None], data.y * root, rcond=None)[0]
    assert fit.effect_ == pytest.approx(beta[2], rel=1e-10)


@pytest.mark.parametrize(
    "make", [lambda: RegressionEstimator(), lambda: RegressionEstimator(target_units="att"), NaiveEstimator]
)
def test_integer_weights_equal_duplicated_rows(make):
    data = clustered(weights=True)
    data.cluster = None
    rows = np.repeat(np.arange(data.n), data.w.astype(int))
    duplicated = EstimationData(t=data.t[rows], y=data.y[rows], X=data.X[rows], covariates=data.covariates)
    assert make().fit(data).effect_ == pytest.approx(make().fit(duplicated).effect_, rel=1e-9)


def test_ipw_weights_multiply_the_propensity_weights():
    data = clustered(weights=True)
    data.cluster = None
    fit = IPWEstimator(normalized=True).fit(data)
    e, t, y, w = fit.propensity_, data.t, data.y, data.w
    a1, a0 = w * t / e, w * (1 - t) / (1 - e)
    assert fit.effect_ == pytest.approx(a1 @ y / a1.sum() - a0 @ y / a0.sum(), rel=1e-10)


def test_cluster_robust_se_is_the_cr1_sandwich():
    data = clustered()
    fit = RegressionEstimator(interactions=False).fit(data)
    Z = np.column_stack([np.ones(data.n), data.X, data.t])
    beta = np.linalg.lstsq(Z, data.y, rcond=None)[0]
    e = data.y - Z @ beta
    bread = np.linalg.inv(Z.T @ Z)
    meat = sum(np.outer(Z[g].T @ e[g], Z[g].T @ e[g]) for g in (data.cluster == k for k in range(40)))
    cr1 = np.sqrt(40 / 39 * (bread @ meat @ bread)[2, 2])
    assert fit.std_error_ == pytest.approx(cr1, rel=1e-9)
    assert fit.se_type_ == "cluster-robust (CR1)"


def test_one_row_per_cluster_is_hc0_with_n_over_n_minus_1():
    data = clustered()
    data.cluster = None
    Z = np.column_stack([np.ones(data.n), data.X, data.t])
    beta = np.linalg.lstsq(Z, data.y, rcond=None)[0]
    e = data.y - Z @ beta
    bread = np.linalg.inv(Z.T @ Z)
    hc0 = np.sqrt((bread @ (Z.T * e**2) @ Z @ bread)[2, 2])
    data.cluster = np.arange(data.n)
    fit = RegressionEstimator(interactions=False).fit(data)
    assert fit.std_error_ == pytest.approx(hc0 * np.sqrt(data.n / (data.n - 1)), rel=1e-9)


def test_influence_se_sums_within_clusters():
    data = clustered(groups=3, size=2)
    psi = np.array([1.0, 2.0, -1.0, 0.5, 3.0, -3.0])
    assert influence_se(psi, data) == pytest.approx(np.sqrt(1.5 * (9 + 0.25 + 0)) / 6)


def test_clusters_widen_the_se_under_a_shared_shock():
    data = clustered(groups=40, size=25)
    independent = EstimationData(t=data.t, y=data.y, X=data.X, covariates=data.covariates)
    for make in (lambda: RegressionEstimator(), lambda: AIPWEstimator(), lambda: IPWEstimator()):
        assert make().fit(data).std_error_ > 1.2 * make().fit(independent).std_error_


def test_cluster_bootstrap_resamples_whole_clusters():
    data = clustered(groups=20, size=5)
    sample = resample(data, np.random.default_rng(3))
    assert sample.n == data.n and sample.n_clusters == 20
    for k in range(20):  # every drawn cluster is one original team, whole
        assert len(set(np.round(sample.X[sample.cluster == k, 0], 12)) & set(np.round(data.X[:, 0], 12))) == 5
    fit = PSMEstimator(num_bootstrap=40).fit(data)
    assert fit.se_type_ == "cluster bootstrap" and fit.ci_method_ == "bootstrap"


def test_estimators_without_weights_refuse_them_in_one_line():
    data = clustered(weights=True)
    with pytest.raises(EstimationError) as err:
        PSMEstimator().fit(data)
    message = str(err.value)
    assert "\n" not in message and "data.weights" in message and "regression" in message and "ipw" in message


GRAPH = ["graph=custom", "graph.treatment=t", "graph.outcome=y", "graph.confounders=[x]", "refuters=[]"]


def _study_csv(path, **changes):
    rng = np.random.default_rng(5)
    team = np.repeat(np.arange(30), 8)
    x = rng.normal(size=team.size)
    t = (rng.random(team.size) < 0.5).astype(int)
    frame = pd.DataFrame(
        {"team": [f"team-{k}" for k in team], "x": x, "t": t, "y": 2 * t + x + rng.normal(size=team.size)}
    )
    frame["w"] = rng.uniform(0.5, 2.0, team.size)
    for column, values in changes.items():
        frame[column] = values
    frame.to_csv(path / "study.csv", index=False)


def test_pipeline_weighted_clustered_csv(compose_cfg, tmp_path):
    _study_csv(tmp_path)
    overrides = ["data=csv", "data.path=study.csv", "data.weights=w", "data.cluster=team", "estimator=ipw"]
    result = pipeline.run(validate(compose_cfg([*GRAPH, *overrides])), base_dir=str(tmp_path))
    assert result.se_method == "cluster-robust (CR1)"
    assert (result.weights_column, result.cluster_column, result.n_clusters) == ("w", "team", 30)
    assert any("data.weights" in note for note in result.notes)
    frame = pd.read_csv(tmp_path / "study.csv")
    treated, control = frame[frame.t == 1], frame[frame.t == 0]
    weighted_gap = np.average(treated.y, weights=treated.w) - np.average(control.y, weights=control.w)
    assert result.naive_estimate == pytest.approx(weighted_gap, rel=1e-9)


@pytest.mark.parametrize(
    "changes, expected",
    [
        ({"w": -1.0}, "allowed: finite numbers >= 0"),
        ({"w": 0.0}, "zero in every row"),
        ({"team": "a"}, "1 cluster"),
    ],
)
def test_bad_weights_and_clusters_are_refused(compose_cfg, tmp_path, changes, expected):
    _study_csv(tmp_path, **changes)
    overrides = ["data=csv", "data.path=study.csv", "data.weights=w", "data.cluster=team"]
    with pytest.raises(DataError, match=expected):
        pipeline.run(validate(compose_cfg([*GRAPH, *overrides])), base_dir=str(tmp_path))


def test_command_runs_a_weighted_clustered_csv_study(run_causal, tmp_path):
    _study_csv(tmp_path)
    proc, run_dir = run_causal(
        "run",
        "data=csv",
        "data.path=study.csv",
        *GRAPH,
        "data.weights=w",
        "data.cluster=team",
        "estimator=aipw",
    )
    assert proc.returncode == 0, proc.stderr
    results = read_results(run_dir)
    assert results["se_method"] == "cluster-robust (CR1)" and results["n_clusters"] == 30
    assert results["ci_low"] < results["estimate"] < results["ci_high"]


def modified(seed=1, n=3000):
    rng = np.random.default_rng(seed)
    x, m = rng.normal(size=n), rng.normal(size=n)
    t = (rng.random(n) < 1 / (1 + np.exp(-0.7 * x))).astype(float)
    y = (1 + 2 * m) * t + x + m + rng.normal(size=n)
    return EstimationData(
        t=t, y=y, X=x[:, None], covariates=("x",), modifiers=m[:, None], modifier_names=("m",)
    )


def test_declared_modifier_gets_a_treatment_interaction_equal_to_ols():
    data = modified()
    fit = RegressionEstimator(interactions=False).fit(data)
    x, m = data.X[:, 0], data.modifiers[:, 0]
    Z = np.column_stack([np.ones(data.n), x, m, data.t, data.t * (m - m.mean())])
    beta = np.linalg.lstsq(Z, data.y, rcond=None)[0]
    assert fit.effect_ == pytest.approx(beta[3], rel=1e-9)
    term = fit.summary()["effect_modifiers"]["m"]
    assert term["interaction"] == pytest.approx(beta[4], rel=1e-9)
    assert abs(term["interaction"] - 2) < 4 * term["std_error"]  # simulated truth: 2 per unit of m


def test_modifiers_reach_the_regression_from_the_graph(compose_cfg, tmp_path):
    data = modified(n=400)
    frame = pd.DataFrame({"x": data.X[:, 0], "m": data.modifiers[:, 0], "t": data.t.astype(int), "y": data.y})
    frame.to_csv(tmp_path / "study.csv", index=False)
    overrides = ["data=csv", "data.path=study.csv", "graph.effect_modifiers=[m]", "estimator=regression"]
    result = pipeline.run(validate(compose_cfg([*GRAPH, *overrides])), base_dir=str(tmp_path))
    assert set(result.estimator_details["effect_modifiers"]) == {"m"}


def test_balance_before_adjustment_is_weighted_by_the_observation_weights():
    from causal_cli import diagnostics

    data = clustered(weights=True)
    fit = RegressionEstimator().fit(data)
    diag, _ = diagnostics.compute(data.t, data.X, ["x"], fit, observation_weights=data.w)
    x, t, w = data.X[:, 0], data.t == 1, data.w
    gap = np.average(x[t], weights=w[t]) - np.average(x[~t], weights=w[~t])
    assert diag.balance[0]["smd_before"] == pytest.approx(gap / diagnostics.pooled_sd(x, data.t), rel=1e-9)


def test_ps_stratification_cluster_se_is_cr1_of_its_influence():
    from causal_cli.estimators.ps_stratification import PSStratificationEstimator

    data = clustered(groups=40, size=25)
    independent = EstimationData(t=data.t, y=data.y, X=data.X, covariates=data.covariates)
    iid = PSStratificationEstimator().fit(independent)
    fit = PSStratificationEstimator().fit(data)
    assert fit.effect_ == iid.effect_ and fit.se_type_ == "cluster-robust (CR1)"
    assert fit.std_error_ > 1.2 * iid.std_error_


@settings(max_examples=15, deadline=None)
@given(scale=st.floats(0.01, 100), seed=st.integers(0, 1000))
def test_scaling_every_weight_changes_nothing(scale, seed):
    data = clustered(seed=seed, groups=20, size=10, weights=True)
    scaled = EstimationData(
        t=data.t, y=data.y, X=data.X, covariates=data.covariates, w=data.w * scale, cluster=data.cluster
    )
    for make in (RegressionEstimator, IPWEstimator, NaiveEstimator):
        a, b = make().fit(data), make().fit(scaled)
        assert b.effect_ == pytest.approx(a.effect_, rel=1e-7, abs=1e-9)
        assert b.std_error_ == pytest.approx(a.std_error_, rel=1e-7)
