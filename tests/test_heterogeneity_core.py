"""The heterogeneity stage's parts against closed forms and simulated truth (in process, small n)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

from causal_cli.data.dgps import HeterogeneousDGP, HeterogeneousDGPConfig
from causal_cli.data.synthetic import ProductGrowthDGP, ProductGrowthDGPConfig
from causal_cli.errors import ConfigError
from causal_cli.estimators.base import EstimationData
from causal_cli.heterogeneity import analysis, calibration, segments, targeting
from causal_cli.schema import CateConfig

MODIFIERS = ["account_age", "activity"]
GRAPH = SimpleNamespace(treatment="feature_used", outcome="spend")


def run(dgp, learner="dr", **cate):
    dataset = dgp.dataset()
    frame, truth = dataset.frame, dataset.info["unit_effects"]
    cfg = OmegaConf.create(
        {"cate": OmegaConf.structured(CateConfig(by=MODIFIERS, learner=learner, **cate)), "graph": {}}
    )
    data = EstimationData(
        t=frame["feature_used"].to_numpy(float),
        y=frame["spend"].to_numpy(float),
        X=frame[MODIFIERS].to_numpy(float),
        covariates=tuple(MODIFIERS),
    )
    return analysis.analyze(cfg, frame, GRAPH, data, truth, np.random.SeedSequence([0, 1]))


@pytest.mark.parametrize("learner", ["dr", "t", "x"])
def test_learners_recover_a_linear_cate(learner):
    result = run(HeterogeneousDGP(HeterogeneousDGPConfig(n=4000, seed=3)), learner)
    truth = result.truth
    # the true effect varies with SD ~2.5 across users; a useful learner's error is a fraction of that
    assert truth["true_cate_sd"] > 2.0
    assert truth["pehe"] < 0.4 * truth["true_cate_sd"]
    assert truth["cate_corr"] > 0.9
    gates = result.gates
    assert gates["top_minus_bottom"]["p_value"] < 0.01, "power users gain more: GATES must see it"
    assert gates["groups"][-1]["true_effect"] > gates["groups"][0]["true_effect"] + 4


def test_segments_cover_their_true_effects_and_the_test_detects_heterogeneity():
    result = run(HeterogeneousDGP(HeterogeneousDGPConfig(n=4000, seed=5)))
    rows = [r for table in result.segments for r in table["segments"]]
    assert len(rows) == 8 and sum(r["n"] for r in rows) == 2 * 4000
    assert sum(r["covers"] for r in rows) >= 6
    assert all(t["test"]["p_value"] < 1e-3 for t in result.segments)
    assert result.blp["test"]["p_value"] < 1e-3
    age = next(t for t in result.blp["terms"] if t["term"] == "account_age")
    # effect_slope 2.0 $ per SD of account age (SD 1.5*sqrt(2) years): 0.943 $ per year
    assert age["ci_low"] < 2.0 / (1.5 * np.sqrt(2)) < age["ci_high"]


def test_no_heterogeneity_no_invented_gradient():
    result = run(ProductGrowthDGP(ProductGrowthDGPConfig(n=3000, seed=7)))
    assert result.truth["true_cate_sd"] == 0.0
    assert result.gates["top_minus_bottom"]["ci_low"] < 0 < result.gates["top_minus_bottom"]["ci_high"]
    for term in result.blp["terms"][1:]:
        assert abs(term["coef"]) < 4 * term["std_error"]


def test_policy_values_against_closed_form():
    tau_hat = np.array([3.0, 2.0, -1.0, 0.5])
    scores = np.array([4.0, 1.0, -2.0, 1.0])
    policy = targeting.policy_values(tau_hat, scores, cost=1.0, z=1.96)
    # treat units 0 and 1 (predicted effect > cost): net (4 - 1) + (1 - 1) over 4 units
    assert policy["targeted"]["value"] == pytest.approx(3.0 / 4)
    assert policy["treat_all"]["value"] == pytest.approx(np.mean(scores - 1.0))
    assert policy["share_treated"] == 0.5


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(-10, 10), min_size=5, max_size=40), st.integers(0, 2**16))
def test_qini_curve_ends_at_treat_all_and_area_zero_for_constant_ranking(values, seed):
    scores = np.array(values)
    rng = np.random.default_rng(seed)
    curve = targeting.qini_curve(rng.normal(size=scores.size), scores)
    assert curve["curve"][0]["gain"] == 0.0
    assert curve["curve"][-1]["gain"] == pytest.approx(scores.mean())
    # a perfect ranking (by the scores themselves) never does worse than random targeting
    assert targeting.qini_curve(scores, scores)["area"] >= -1e-12


def test_segment_test_is_chi_squared_in_closed_form():
    labels = pd.Series(["a"] * 50 + ["b"] * 50)
    scores = np.r_[np.full(25, 1.0), np.full(25, 3.0), np.full(25, 5.0), np.full(25, 7.0)]
    table = segments.segment_effects("m", labels, scores, 1.96)
    a, b = table["segments"]
    se = np.std(np.r_[np.full(25, 1.0), np.full(25, 3.0)], ddof=1) / np.sqrt(50)
    assert a["effect"] == 2.0 and b["effect"] == 6.0 and a["std_error"] == pytest.approx(se)
    # equal weights: statistic = sum (theta - 4)^2 / se^2
    assert table["test"]["statistic"] == pytest.approx(2 * 4 / se**2)


def test_continuous_modifier_is_binned_into_quantiles():
    labels = segments.segment_labels(pd.Series(np.arange(100.0)), bins=4)
    assert labels.nunique() == 4 and labels.value_counts().min() == 25
    assert segments.segment_labels(pd.Series(["x", "y"] * 5), bins=4).nunique() == 2


def test_robust_ols_matches_hc1_formula():
    rng = np.random.default_rng(0)
    Z = np.column_stack([np.ones(200), rng.normal(size=200)])
    y = 1 + 2 * Z[:, 1] + rng.normal(size=200) * (1 + np.abs(Z[:, 1]))
    beta, cov = calibration.robust_ols(Z, y)
    sm = pytest.importorskip("statsmodels.api")  # installed with DoWhy

    fit = sm.OLS(y, Z).fit(cov_type="HC1")
    np.testing.assert_allclose(beta, fit.params, rtol=1e-10)
    np.testing.assert_allclose(cov, fit.cov_params(), rtol=1e-8)


def test_bad_cate_settings_are_config_errors():
    with pytest.raises(ConfigError, match="cate.learner"):
        CateConfig(learner="s")
    with pytest.raises(ConfigError, match="cate.tree_depth"):
        CateConfig(tree_depth=3)


def test_policy_tree_is_shallow_and_readable():
    result = run(HeterogeneousDGP(HeterogeneousDGPConfig(n=2000, seed=1)), cost=10.0)
    tree = result.policy_tree
    assert tree["depth"] <= 2 and "treat" in tree["rules"]
    assert 0 < tree["share_treated"] < 1


def test_categorical_modifier_segments_by_level_even_when_one_hot_encoded():
    from causal_cli.data import DUMMIES

    rng = np.random.default_rng(11)
    n = 3000
    plan = rng.choice(["basic", "pro", "team"], n)
    x = rng.normal(size=n)
    t = (rng.random(n) < 1 / (1 + np.exp(-x))).astype(float)
    effect = np.select([plan == "basic", plan == "pro"], [1.0, 4.0], 8.0)
    y = 2 * x + effect * t + rng.normal(size=n)
    encoded = pd.DataFrame({"x": x, "plan_pro": (plan == "pro") * 1, "plan_team": (plan == "team") * 1})
    encoded.attrs[DUMMIES] = {"plan": ["plan_pro", "plan_team"]}
    cfg = OmegaConf.create({"cate": OmegaConf.structured(CateConfig(by=["plan"], tree_depth=0)), "graph": {}})
    data = EstimationData(t=t, y=y, X=x[:, None], covariates=("x",))
    result = analysis.analyze(cfg, encoded, GRAPH, data, effect, np.random.SeedSequence(0))
    rows = {r["segment"]: r for r in result.segments[0]["segments"]}
    assert set(rows) == {"(reference level)", "pro", "team"}
    for level, true in (("(reference level)", 1.0), ("pro", 4.0), ("team", 8.0)):
        assert rows[level]["ci_low"] - 0.3 < true < rows[level]["ci_high"] + 0.3
    assert result.segments[0]["test"]["p_value"] < 1e-6


def test_sweep_score_gains_pehe_and_segment_coverage():
    from causal_cli.sweep import heterogeneity_score

    results = [{"heterogeneity": {"truth": {"pehe": 0.5, "segment_coverage": 1.0}}}, {"heterogeneity": None}]
    assert heterogeneity_score(results) == {"mean_pehe": 0.5, "segment_ci_coverage": 1.0}
    assert heterogeneity_score([{}]) == {"mean_pehe": None, "segment_ci_coverage": None}


def test_product_growth_heterogeneity_knob_grows_the_uplift_with_activity():
    plain = ProductGrowthDGP(ProductGrowthDGPConfig(n=500, seed=4)).dataset()
    knob = ProductGrowthDGP(ProductGrowthDGPConfig(n=500, seed=4, heterogeneity=2.0)).dataset()
    assert np.all(plain.info["unit_effects"] == 10.0), "default 0: one effect for everyone, as before"
    activity = knob.frame["activity"].to_numpy()
    slope = np.polyfit(activity, knob.info["unit_effects"], 1)[0]
    assert slope == pytest.approx(2.0 / 5.0)  # $2 per SD of activity (SD 5 sessions/week)
    same = ["account_age", "activity", "feature_used"]
    assert plain.frame[same].equals(knob.frame[same]), "the knob draws nothing new"
