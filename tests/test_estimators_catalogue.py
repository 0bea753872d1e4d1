"""The estimator catalogue: accuracy against DGP ground truth, overlap options, and agreement with
``causalinference`` and direct computations (the conformance checks of every estimator: test_conformance.py)."""

from __future__ import annotations

import numpy as np
import pytest

from causal_cli.errors import ConfigError, EstimationError
from causal_cli.validate import validate
from tests.estimation_helpers import backdoor_estimators, build, prepare

SMALL = ("dgp.n=1500", "dgp.confounding=strong")
ACCURACY = ("dgp.n=20000", "dgp.confounding=strong", "seed=0")
HETEROGENEOUS = ("dgp=heterogeneous", "dgp.n=20000", "seed=0")


@pytest.mark.parametrize("name", backdoor_estimators())
def test_accuracy_under_strong_confounding(compose_cfg, name):
    prepared = prepare(compose_cfg, *ACCURACY)
    naive = prepared.data.y[prepared.data.t == 1].mean() - prepared.data.y[prepared.data.t == 0].mean()
    truth = prepared.reference["ate"]
    assert abs(naive - truth) > 3
    est = build(compose_cfg, name).fit(prepared.data)
    assert abs(est.effect_ - truth) < 0.3, f"{name}: {est.effect_:.3f} vs truth {truth:.3f}"


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("ipw", ()),
        ("ipw", ("estimator.normalized=false",)),
        ("aipw", ()),
        ("regression", ("estimator.interactions=true",)),
        ("psm", ()),
        ("ps_stratification", ()),
        ("distance_matching", ()),
    ],
)
@pytest.mark.parametrize("target", ["att", "atc"])
def test_att_and_atc_each_hit_their_own_truth(compose_cfg, name, options, target):
    prepared = prepare(compose_cfg, *HETEROGENEOUS)
    truth = prepared.reference[target]
    assert abs(prepared.reference["att"] - prepared.reference["atc"]) > 2  # the targets really differ
    est = build(compose_cfg, name, f"estimator.target_units={target}", *options).fit(prepared.data)
    assert abs(est.effect_ - truth) < max(0.5, 3 * est.std_error_), (
        f"{name} {target}: {est.effect_:.3f} vs {truth:.3f}"
    )


def test_regression_needs_interactions_for_att_and_atc(compose_cfg):
    with pytest.raises(ConfigError, match="estimator.target_units=.att.* interactions: true"):
        validate(
            compose_cfg(
                ["estimator=regression", "estimator.target_units=att", "estimator.interactions=false"]
            )
        )
    est = build(compose_cfg, "regression", "estimator.target_units=att")
    est.set_params(target_units="atc", interactions=False)  # set in code: fit checks it with the same schema
    with pytest.raises(ConfigError, match="estimator.target_units='atc'.*one constant effect"):
        est.fit(prepare(compose_cfg, *SMALL).data)


def test_ipw_overlap_options_are_applied_and_reported(compose_cfg):
    data = prepare(compose_cfg, *SMALL).data
    plain = build(compose_cfg, "ipw").fit(data)
    assert plain.summary()["clip"] is None and plain.summary()["units_clipped"] == 0
    clipped = build(compose_cfg, "ipw", "estimator.clip=[0.1,0.9]").fit(data)
    outside = int(((plain.propensity_ < 0.1) | (plain.propensity_ > 0.9)).sum())
    assert outside > 0 and clipped.summary()["units_clipped"] == outside and clipped.effect_ != plain.effect_
    trimmed = build(compose_cfg, "ipw", "estimator.trimming=0.1").fit(data)
    dropped = trimmed.summary()["units_trimmed"]
    assert dropped["treated"] + dropped["control"] == outside
    assert np.all(trimmed.balance_weights_[(plain.propensity_ < 0.1) | (plain.propensity_ > 0.9)] == 0)
    crump = build(compose_cfg, "ipw", "estimator.trimming=crump").fit(data)
    assert 0 < crump.summary()["trimming_bound"] < 0.5
    stabilized = build(compose_cfg, "ipw", "estimator.stabilized=true").fit(data)
    assert stabilized.effect_ == pytest.approx(plain.effect_, rel=1e-12)
    assert not np.allclose(stabilized.balance_weights_, plain.balance_weights_)


def test_crump_bound_matches_causalinference():
    from causalinference.causal import select_cutoff

    from causal_cli.estimators.ipw import crump_cutoff

    rng = np.random.default_rng(3)
    for scale in (1.0, 2.5, 4.0):
        ps = 1 / (1 + np.exp(-scale * rng.standard_normal(2000)))
        assert crump_cutoff(ps) == pytest.approx(select_cutoff(1 / (ps * (1 - ps))), abs=1e-12)


def test_regression_with_interactions_matches_causalinference_ols(compose_cfg):
    """``est_via_ols(adj=2)``: same ATE/ATT/ATC; their HC0 SE with HC2's leverage scaling, plus the covariate-mean term."""
    from causalinference import CausalModel

    data = prepare(compose_cfg, "dgp=heterogeneous", "dgp.n=2000").data
    model = CausalModel(data.y, data.t.astype(int), data.X)
    model.est_via_ols(adj=2)
    ols = model.estimates["ols"]
    n, p = data.n, 2 + 2 * data.X.shape[1]
    for target in ("ate", "att", "atc"):
        est = build(
            compose_cfg, "regression", "estimator.interactions=true", f"estimator.target_units={target}"
        )
        est.fit(data)
        assert est.effect_ == pytest.approx(ols[target], rel=1e-9)
        rows = {"att": data.t == 1, "atc": data.t == 0}.get(target, np.ones(n, dtype=bool))
        gamma = est._model[1][-data.X.shape[1] :]
        mean_term = (data.X[rows] @ gamma).var(ddof=1) / rows.sum()
        Z, beta = est._model
        h = np.einsum("ij,jk,ik->i", Z, np.linalg.inv(Z.T @ Z), Z)
        bread = np.linalg.inv(Z.T @ Z)
        meat = (Z * ((data.y - Z @ beta) ** 2 / (1 - h))[:, None]).T @ Z
        hc2 = (bread @ meat @ bread)[data.X.shape[1] + 1, data.X.shape[1] + 1]
        assert est.std_error_**2 == pytest.approx(hc2 + mean_term, rel=1e-6)
        hc1 = build(compose_cfg, "regression", f"estimator.target_units={target}", "estimator.robust_se=hc1")
        assert hc1.fit(data).std_error_ ** 2 == pytest.approx(
            ols[f"{target}_se"] ** 2 * n / (n - p) + mean_term, rel=1e-6
        )


def test_distance_matching_matches_causalinference(compose_cfg):
    """Same matches (Mahalanobis on the averaged group covariances, and inverse-variance): same estimates,
    with and without the bias adjustment (a regression on the matched units, each counted per use).

    causalinference's standard errors use a conservative variance (the spread of all unit effects)
    instead of Abadie-Imbens' matched conditional variances, so only point estimates are compared.
    """
    from causalinference import CausalModel

    data = prepare(compose_cfg, "dgp=heterogeneous", "dgp.n=400").data
    model = CausalModel(data.y, data.t.astype(int), data.X)
    for distance, weights in (("mahalanobis", "maha"), ("inverse_variance", "inv")):
        for bias_adjust in (False, True):
            model.est_via_matching(weights=weights, matches=1, bias_adj=bias_adjust)
            theirs = model.estimates["matching"]
            for target in ("ate", "att", "atc"):
                est = build(
                    compose_cfg,
                    "distance_matching",
                    f"estimator.distance={distance}",
                    f"estimator.target_units={target}",
                    f"estimator.bias_adjust={str(bias_adjust).lower()}",
                )
                assert est.fit(data).effect_ == pytest.approx(theirs[target], rel=1e-10)


def test_aipw_equals_a_direct_cross_fitted_computation(compose_cfg):
    """Same folds, scikit-learn's LinearRegression per group and a tightly converged LogisticRegression
    on standardised covariates (the built-in propensity model standardises inside the fit)."""
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from causal_cli.estimators.outcome import fold_ids

    data = prepare(compose_cfg, "dgp=heterogeneous", "dgp.n=3000").data
    t, y, X = data.t, data.y, data.X
    for target in ("ate", "att", "atc"):
        est = build(compose_cfg, "aipw", f"estimator.target_units={target}", "estimator.folds=3").fit(data)
        folds = fold_ids(t, 3, est.random_state)
        mu1, mu0, e = np.empty(data.n), np.empty(data.n), np.empty(data.n)
        for k in range(3):
            train, test = folds != k, folds == k
            e[test] = (
                make_pipeline(StandardScaler(), LogisticRegression(C=1.0, tol=1e-12, max_iter=10_000))
                .fit(X[train], t[train])
                .predict_proba(X[test])[:, 1]
            )
            mu1[test] = LinearRegression().fit(X[train & (t == 1)], y[train & (t == 1)]).predict(X[test])
            mu0[test] = LinearRegression().fit(X[train & (t == 0)], y[train & (t == 0)]).predict(X[test])
        if target == "ate":
            direct = np.mean(mu1 - mu0 + t * (y - mu1) / e - (1 - t) * (y - mu0) / (1 - e))
        elif target == "att":
            direct = np.sum((t - (1 - t) * e / (1 - e)) * (y - mu0)) / t.sum()
        else:
            direct = np.sum((t * (1 - e) / e - (1 - t)) * (y - mu1)) / (1 - t).sum()
        assert est.effect_ == pytest.approx(direct, rel=1e-5)


def test_dml_equals_a_direct_cross_fitted_computation(compose_cfg):
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from causal_cli.estimators.outcome import fold_ids

    data = prepare(compose_cfg, *SMALL).data
    t, y, X = data.t, data.y, data.X
    est = build(compose_cfg, "dml", "estimator.model=plr", "estimator.n_rep=1", "estimator.folds=4").fit(data)
    folds = fold_ids(t, 4, est.random_state)
    m, l_hat = np.empty(data.n), np.empty(data.n)
    for k in range(4):
        train, test = folds != k, folds == k
        m[test] = (
            make_pipeline(StandardScaler(), LogisticRegression(C=1.0, tol=1e-12, max_iter=10_000))
            .fit(X[train], t[train])
            .predict_proba(X[test])[:, 1]
        )
        l_hat[test] = LinearRegression().fit(X[train], y[train]).predict(X[test])
    t_res, y_res = t - m, y - l_hat
    theta = (t_res @ y_res) / (t_res @ t_res)
    psi = (y_res - theta * t_res) * t_res
    assert est.effect_ == pytest.approx(theta, rel=1e-6)
    assert est.std_error_ == pytest.approx(
        np.sqrt(np.mean(psi**2) / np.mean(t_res**2) ** 2 / data.n), rel=1e-5
    )


def test_dml_accepts_a_scikit_learn_learner(compose_cfg):
    data = prepare(compose_cfg, *SMALL).data
    est = build(
        compose_cfg,
        "dml",
        "estimator.outcome_model={_target_: sklearn.ensemble.GradientBoostingRegressor, n_estimators: 20, max_depth: 2}",
        "estimator.propensity_model={_target_: sklearn.ensemble.GradientBoostingClassifier, n_estimators: 20, max_depth: 2}",
    ).fit(data)
    assert est.summary()["outcome_model"] == "sklearn.ensemble.GradientBoostingRegressor"
    assert est.warm_start_ is None and abs(est.effect_ - 10) < 1.5


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["estimator=ipw", "estimator.clip=[0.9,0.1]"], "estimator.clip"),
        (["estimator=ipw", "estimator.trimming=0.7"], "estimator.trimming"),
        (["estimator=dml", "estimator.model=plr", "estimator.target_units=att"], "estimator.target_units"),
        (["estimator=dml", "estimator.model=pl"], "estimator.model"),
        (["estimator=dml", "estimator.n_rep=0"], "estimator.n_rep"),
        (["estimator=ps_stratification", "estimator.num_strata=0"], "estimator.num_strata"),
        (["estimator=distance_matching", "estimator.distance=cosine"], "estimator.distance"),
        (["estimator=aipw", "estimator.folds=1"], "estimator.folds"),
    ],
)
def test_bad_options_fail_in_one_line_naming_the_key(compose_cfg, overrides, message):
    with pytest.raises(ConfigError, match=message) as info:
        validate(compose_cfg(overrides))
    assert "\n" not in info.value.one_line()


def test_distance_matching_refuses_more_than_max_rows(compose_cfg):
    data = prepare(compose_cfg, *SMALL).data
    with pytest.raises(EstimationError, match="estimator.max_rows=1000"):
        build(compose_cfg, "distance_matching", "estimator.max_rows=1000").fit(data)
