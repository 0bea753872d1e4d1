"""Caveats: one-line warnings about the estimate, from the estimator to results.json, terminal and reports."""

from __future__ import annotations

import numpy as np
import pytest

from causal_cli import diagnostics
from causal_cli.estimators.base import BaseEstimator, EstimationData
from causal_cli.estimators.ipw import IPWEstimator
from tests.conftest import FAST, read_results


def limited_overlap(n=4000, seed=0, strength=1.8):
    """Two confounders with a strong logistic effect on treatment: ~11% of scores outside [0.05, 0.95]."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 2))
    t = (rng.random(n) < 1 / (1 + np.exp(-strength * (X[:, 0] + X[:, 1]) / np.sqrt(2)))).astype(float)
    y = 2.0 * t + X @ np.array([1.0, 0.5]) + rng.standard_normal(n)
    return EstimationData(t=t, y=y, X=X)


def test_the_base_estimator_has_no_caveats():
    assert BaseEstimator().caveats() == []


def test_weight_tail_in_closed_form():
    rows = np.ones(100, dtype=bool)
    even = diagnostics.weight_tail(np.full(100, 3.0), rows)
    assert even["ess"] == pytest.approx(100.0)
    assert even["max_share"] == pytest.approx(0.01)
    assert not even["heavy_tailed"]
    w = np.ones(100)
    w[0] = 99.0  # one unit carries half of the total: ESS = 198^2 / (99^2 + 99) = 3.96
    one = diagnostics.weight_tail(w, rows)
    assert one["ess"] == pytest.approx(198.0**2 / (99.0**2 + 99.0))
    assert one["max_share"] == pytest.approx(0.5)
    assert one["heavy_tailed"]
    (line,) = diagnostics.heavy_weight_caveats({"control": one})
    assert "control units" in line and "effective sample size 4 of 100" in line and "50.0%" in line


def test_ipw_flags_heavy_weights_under_limited_overlap_not_under_good_overlap():
    heavy = IPWEstimator().fit(limited_overlap())
    outside = np.mean((heavy.propensity_ < 0.05) | (heavy.propensity_ > 0.95))
    assert 0.08 < outside < 0.16
    assert any(
        line.startswith("heavy-tailed weights among control units (tail index") for line in heavy.caveats()
    )
    fine = IPWEstimator().fit(limited_overlap(strength=0.5))
    assert fine.caveats() == []


def test_ipw_trimming_states_the_dropped_share_and_the_estimand():
    data = limited_overlap()
    est = IPWEstimator(trimming=0.05).fit(data)
    dropped = sum(est.overlap_.details["units_trimmed"].values())
    assert dropped > 0.01 * data.n
    line = next(c for c in est.caveats() if "dropped" in c)
    assert f"{dropped / data.n:.1%} of the units were dropped" in line
    assert "not the ATE" in line


def test_heavy_weights_reach_the_diagnostics_block():
    data = limited_overlap()
    est = IPWEstimator(target_units="att").fit(data)
    diag, _ = diagnostics.compute(data.t, data.X, ["a", "b"], est)
    control = diag.to_dict()["weights"]["control"]
    assert control["heavy_tailed"] is True
    assert control["tail_index"] > diagnostics.TAIL_INDEX_LIMIT
    assert 0 < control["max_share"] < 0.05 and 0 < control["ess_share_used"] < 0.5
    assert diag.to_dict()["weights"]["treated"]["heavy_tailed"] is False  # ATT: treated weights are all 1
    stated = [c for c in est.caveats() if c.startswith("heavy")]
    assert diagnostics.weight_caveats(diag, advice=diagnostics.IPW_ADVICE) == stated


@pytest.mark.parametrize("name", ["ipw", "aipw"])
def test_the_run_states_heavy_weights_once_for_ipw_and_aipw(compose_cfg, name):
    """In process: aipw's weights get the doubly robust wording from the pipeline; ipw states its own."""
    from causal_cli import pipeline
    from causal_cli.validate import validate

    overrides = [f"estimator={name}", "estimator.target_units=att", "dgp.n=3000", "refuters=[]"]
    overrides.append("dgp.treatment_coef={account_age:1.35,activity:1.35}")  # ~10% of scores outside
    result = pipeline.run(validate(compose_cfg(overrides)))
    heavy = [c for c in result.caveats if c.startswith("heavy-tailed")]
    assert len(heavy) == 1 and "control units" in heavy[0]
    wording = diagnostics.IPW_ADVICE if name == "ipw" else diagnostics.DOUBLY_ROBUST_ADVICE
    assert heavy[0].endswith(wording)
    assert result.to_dict()["caveats"] == result.caveats


def test_caveats_reach_results_json_terminal_and_reports(run_causal):
    """One real run: ipw with trimming on the default DGP drops > 1% of the units."""
    proc, run_dir = run_causal(
        "run", "estimator=ipw", "estimator.trimming=0.1", "dgp.n=2000", "refuters=[]", *FAST[2:]
    )
    assert proc.returncode == 0, proc.stderr
    result = read_results(run_dir)
    assert result["caveats"] and "not the ATE" in result["caveats"][0]
    assert "Caveats" in proc.stdout
    assert "not the ATE" in " ".join(proc.stdout.split())
    assert result["caveats"][0] in (run_dir / "summary.md").read_text()
    html = (run_dir / "report.html").read_text()
    assert "Caveats" in html and "not the ATE" in html


@pytest.mark.parametrize("shape", [0.3, 0.5, 0.7])
def test_tail_index_recovers_a_pareto_shape(shape):
    """Weights U^(-k) have a Pareto tail of shape k exactly; the Hill estimate finds it."""
    w = np.random.default_rng(1).random(40_000) ** -shape
    assert diagnostics.tail_index(w) == pytest.approx(shape, abs=0.06)
    assert diagnostics.tail_index(np.full(1000, 2.0)) == 0.0
    assert diagnostics.tail_index(np.ones(49)) is None


def test_poor_overlap_fires_with_20_confounders_not_with_good_overlap():
    """20 confounders: ~6% of scores outside [0.05, 0.95] and ipw CIs cover 84% (measured): the default
    warning share is 5% (it was 10%, which never fired there); a well-overlapping design stays quiet."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((5000, 20))
    ps = 1 / (1 + np.exp(-0.35 * X.sum(axis=1)))
    summary = diagnostics.overlap_summary(ps, (rng.random(5000) < ps).astype(float))
    assert 0.05 < summary["share_outside"] < 0.1
    assert summary["poor"]
    assert summary["weight_tail_index"] > 0
    good = 1 / (1 + np.exp(-0.1 * X.sum(axis=1)))
    assert not diagnostics.overlap_summary(good, (rng.random(5000) < good).astype(float))["poor"]
