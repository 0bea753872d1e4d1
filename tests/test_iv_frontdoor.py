"""IV and front-door estimators: agreement with DoWhy, accuracy where backdoor adjustment fails, refusals."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from causal_cli import pipeline, registry
from causal_cli.errors import ConfigError, EstimationError, IdentificationError
from causal_cli.estimators.frontdoor import FrontdoorEstimator
from causal_cli.estimators.iv import IVEstimator
from causal_cli.validate import validate
from tests.conftest import FAST, read_results

NO_REFUTERS = ["refuters=[]"]


def run(compose_cfg, *overrides):
    return pipeline.run(validate(compose_cfg([*overrides, *NO_REFUTERS])))


def study(compose_cfg, name, *overrides):
    """The experiment's data, graph and identification as the pipeline builds them."""
    from causal_cli.data import load_dataset
    from causal_cli.graph import CausalGraph
    from causal_cli.identify import identify

    cfg = validate(compose_cfg([f"experiment={name}", *overrides]))
    graph = CausalGraph.from_config(cfg.graph)
    dataset = load_dataset(cfg, graph)
    kind = registry.load("estimator", cfg.estimator.name).identification
    return dataset, graph, pipeline.build_estimation_data(dataset.frame, graph, identify(graph, kind))


def dowhy_estimate(frame, graph, method_name):
    import logging

    logging.getLogger("dowhy").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from dowhy import CausalModel

        model = CausalModel(
            data=frame, treatment=graph.treatment, outcome=graph.outcome, graph=graph.to_gml()
        )
        estimand = model.identify_effect(proceed_when_unidentifiable=True)
        return model.estimate_effect(estimand, method_name=method_name).value


def test_wald_agrees_with_the_hand_ratio_and_dowhy(compose_cfg):
    dataset, graph, data = study(compose_cfg, "iv_promo", "dgp.n=5000")
    assert data.instrument_names == ("promo_email",)
    assert data.covariates == ("account_age", "activity")  # observed covariates become exogenous controls
    frame, z = dataset.frame, dataset.frame.promo_email == 1
    ratio = (frame.spend[z].mean() - frame.spend[~z].mean()) / (
        frame.feature_used[z].mean() - frame.feature_used[~z].mean()
    )
    wald = IVEstimator(controls=False).fit(data)
    assert wald.summary()["method"] == "wald"
    assert wald.effect_ == pytest.approx(ratio, rel=1e-10)
    assert wald.effect_ == pytest.approx(dowhy_estimate(frame, graph, "iv.instrumental_variable"), rel=1e-10)
    with_controls = IVEstimator().fit(data)
    assert with_controls.summary()["method"] == "2sls"
    assert with_controls.std_error_ < wald.std_error_  # the controls explain spend: a tighter CI


def test_frontdoor_agrees_with_dowhy_two_stage_regression(compose_cfg):
    dataset, graph, data = study(compose_cfg, "frontdoor_onboarding", "dgp.n=5000")
    assert data.mediator_names == ("onboarding_completed",)
    plain = FrontdoorEstimator(controls=False, interaction=False).fit(data)
    expected = dowhy_estimate(dataset.frame, graph, "frontdoor.two_stage_regression")
    assert plain.effect_ == pytest.approx(expected, rel=1e-10)
    stages = plain.summary()
    a, b = (
        stages["treatment_to_mediator"]["onboarding_completed"],
        stages["mediator_to_outcome"]["onboarding_completed"],
    )
    assert a * b == pytest.approx(plain.effect_)
    assert plain.ci_low_ < plain.effect_ < plain.ci_high_ and plain.ci_method_ == "analytic"


def test_iv_recovers_the_truth_where_backdoor_estimators_are_biased(compose_cfg):
    iv = run(compose_cfg, "experiment=iv_promo")
    assert iv.identification == "iv" and iv.instruments == ["promo_email"]
    assert abs(iv.estimate - iv.reference) < 0.5, (iv.estimate, iv.reference)
    assert iv.ci_low <= iv.reference <= iv.ci_high
    assert iv.estimator_details["first_stage_f"] > 100
    # the analyst who forgets motivation: the product-growth graph fits the same columns
    backdoor = [name for name in ("psm", "ipw") if name in registry.ESTIMATORS]
    for name in backdoor:
        result = run(compose_cfg, "experiment=iv_promo", "graph=product_growth", f"estimator={name}")
        assert result.estimate - result.reference > 2, (name, result.estimate)
    assert iv.naive_estimate - iv.reference > 3


def test_frontdoor_recovers_the_truth(compose_cfg):
    result = run(compose_cfg, "experiment=frontdoor_onboarding")
    assert result.identification == "frontdoor" and result.mediators == ["onboarding_completed"]
    assert abs(result.estimate - result.reference) < 0.5, (result.estimate, result.reference)
    assert result.naive_estimate - result.reference > 3


def test_frontdoor_bootstrap_ci_is_seeded(compose_cfg):
    _, _, data = study(compose_cfg, "frontdoor_onboarding", "dgp.n=1000")
    a = FrontdoorEstimator(ci_method="bootstrap", num_bootstrap=30, random_state=3).fit(data)
    b = FrontdoorEstimator(ci_method="bootstrap", num_bootstrap=30, random_state=3).fit(data)
    analytic = FrontdoorEstimator().fit(data)
    assert a.ci_method_ == "bootstrap" and (a.ci_low_, a.ci_high_) == (b.ci_low_, b.ci_high_)
    assert a.std_error_ == pytest.approx(analytic.std_error_, rel=0.4)


@pytest.mark.parametrize("target", ["att", "atc"])
def test_heterogeneous_psm_hits_each_target_truth(compose_cfg, target):
    result = run(compose_cfg, "experiment=heterogeneous", f"estimator.target_units={target}")
    refs = result.references
    assert result.reference == refs[target]
    assert abs(result.estimate - refs[target]) < 0.5, (target, result.estimate, refs)
    other = "atc" if target == "att" else "att"
    assert abs(result.estimate - refs[other]) > 1  # the targets really differ


def test_weak_instrument_is_refused_naming_the_threshold(compose_cfg):
    _, _, data = study(compose_cfg, "iv_promo", "dgp.n=2000", "dgp.promo_log_odds=0.05")
    with pytest.raises(EstimationError) as info:
        IVEstimator().fit(data)
    message = info.value.one_line()
    assert "\n" not in message and "promo_email" in message
    assert "first-stage F =" in message and "estimator.min_first_stage_f = 10" in message
    assert (
        IVEstimator(min_first_stage_f=0).fit(data).first_stage_f_ < 10
    )  # the guard is the only thing in the way


@pytest.mark.parametrize(
    "overrides, reason",
    [
        (["estimator=iv"], "needs an instrument"),
        (["estimator=frontdoor"], "needs a front-door mediator"),
        (
            ["graph=iv_promo", "dgp=iv_promo", "estimator=psm"],
            "backdoor path stays open through unobserved motivation",
        ),
    ],
)
def test_unidentifiable_method_fails_saying_why(compose_cfg, overrides, reason):
    with pytest.raises(IdentificationError, match=reason):
        run(compose_cfg, *overrides, "dgp.n=200")


def test_iv_and_frontdoor_refuse_att_at_validation(compose_cfg):
    for name in ("iv", "frontdoor"):
        with pytest.raises(ConfigError, match="estimator.target_units"):
            validate(compose_cfg([f"estimator={name}", "estimator.target_units=att"]))


def test_cli_iv_experiment_end_to_end_and_unidentified_iv_fails(run_causal, tmp_path):
    proc, run_dir = run_causal("run", "experiment=iv_promo", *FAST)
    assert proc.returncode == 0, proc.stderr
    result = read_results(run_dir)
    assert result["status"] == "ok" and result["estimator"] == "iv"
    assert abs(result["estimate"] - result["reference"]) < 0.5
    assert result["instruments"] == ["promo_email"] and np.isfinite(result["std_error"])

    proc, run_dir = run_causal("run", "estimator=iv", *FAST, out=tmp_path / "unidentified")
    assert proc.returncode != 0
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "identification error" in lines[0] and "instrument" in lines[0], proc.stderr
    assert read_results(run_dir)["status"] == "failed"
