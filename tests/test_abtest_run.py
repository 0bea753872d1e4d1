"""The randomized design end to end: the ab_launch DGP, the pipeline branch, config errors, the command."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
from omegaconf import OmegaConf

from causal_cli import pipeline
from causal_cli.data.ab import ABLaunchDGP, ABLaunchDGPConfig, ab_truth
from causal_cli.errors import ConfigError
from causal_cli.validate import validate
from tests.conftest import read_results


def test_dgp_truth_and_pre_period_correlation_match_a_large_simulation():
    cfg = OmegaConf.structured(ABLaunchDGPConfig(n=400_000, seed=5, true_effect=2.0, pre_correlation=0.7))
    frame, _ = ABLaunchDGP(cfg).simulate(np.random.default_rng(5))
    control = frame[frame.variant == 0]
    assert np.corrcoef(control.pre_spend, control.spend)[0, 1] == pytest.approx(0.7, abs=0.01)
    truth = ab_truth(cfg)
    spend0 = float(cfg.spend_intercept + cfg.spend_slope * cfg.pre_spend_mean)
    assert control.spend.mean() == pytest.approx(spend0, rel=0.01)
    assert frame.sessions.mean() == pytest.approx(2.0 / truth["spend/sessions"]["difference"], rel=0.01)
    assert truth["spend"]["relative_lift"] == pytest.approx(2.0 / spend0)


def _run(compose_cfg, *overrides):
    cfg = validate(compose_cfg(["experiment=ab_feature_launch", "dgp.n=3000", *overrides]))
    return pipeline.run(cfg)


def test_randomized_run_fills_the_headline_fields_and_the_experiment_block(compose_cfg):
    result = _run(compose_cfg)
    out = result.to_dict()
    exp = out["experiment"]
    spend = next(m for m in exp["metrics"] if m["name"] == "spend")
    assert out["identification"] == "randomized" and out["estimator"] == "cuped"
    assert out["estimate"] == spend["cuped_difference"]["value"]
    assert out["naive_estimate"] == spend["difference"]["value"]
    assert out["reference"] == 1.0 and out["refutations"] == []
    assert 0.25 < spend["variance_reduction"] < 0.6  # 1 - rho^2 with rho = 0.65 is 0.42
    assert exp["srm"]["mismatch"] is False and exp["imbalanced"] == []
    assert {m["name"] for m in exp["metrics"]} == {"spend", "sessions", "revenue_per_session"}
    rows = result.tables()["experiment"]
    assert [r["metric"] for r in rows] == ["spend", "sessions", "revenue_per_session"]


def test_aa_mode_and_sample_ratio_mismatch(compose_cfg):
    result = _run(compose_cfg, "dgp.treatment_share=0.6", "ab.aa_simulations=40", "ab.correction=holm")
    exp = result.to_dict()["experiment"]
    assert exp["srm"]["mismatch"] is True
    aa = exp["aa"]
    assert aa["simulations"] == 40 and set(aa["family"]) == {"uncorrected", "holm", "bh"}
    for row in aa["metrics"]:
        assert 0 <= row["difference"]["rate"] <= 1
    assert aa["family"]["holm"]["rate"] <= aa["family"]["uncorrected"]["rate"]


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["experiment=ab_feature_launch", "ab.alpha=1.5"], "ab.alpha=1.5 is out of range"),
        (["experiment=ab_feature_launch", "ab.primary=revenue"], "ab.primary='revenue' is out of range"),
        (["experiment=ab_feature_launch", "ab.metrics.spend.covariates=[sessions]"], "a pre-period column"),
        (["graph.design=quasi"], "graph.design='quasi' is out of range"),
    ],
)
def test_bad_ab_configs_fail_in_one_line(compose_cfg, overrides, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("[", r"\[")):
        validate(compose_cfg(overrides))


def test_a_randomized_graph_without_ab_settings_fails_before_loading_data(compose_cfg):
    cfg = validate(compose_cfg(["graph=ab_launch", "dgp=ab_launch"]))
    with pytest.raises(ConfigError, match="graph.design=randomized needs the A/B analysis settings"):
        pipeline.run(cfg)


def test_causal_run_ab_feature_launch_prints_lift_checks_and_writes_the_block(run_causal):
    proc, run_dir = run_causal("run", "experiment=ab_feature_launch", "dgp.n=4000", "report.enabled=false")
    assert proc.returncode == 0, proc.stderr
    result = read_results(run_dir)
    assert result["status"] == "ok"
    spend = next(m for m in result["experiment"]["metrics"] if m["name"] == "spend")
    with_cuped = spend["cuped_relative_lift"]["value"]
    without = spend["relative_lift"]["value"]
    assert f"Lift in spend: {100 * with_cuped:+.2f}%" in proc.stdout
    assert f"{100 * without:+.2f}%" in proc.stdout and "without" in proc.stdout
    assert "Sample ratio check:" in proc.stdout and "no mismatch" in proc.stdout
    assert "Pre-period balance:" in proc.stdout
    assert math.isfinite(result["estimate"]) and result["ci_low"] < result["estimate"] < result["ci_high"]
    with open(run_dir / "experiment.csv", newline="") as fh:
        assert [row["metric"] for row in csv.DictReader(fh)] == ["spend", "sessions", "revenue_per_session"]
