"""The Lalonde study: NSW treated men vs CPS controls, against the experiment's $1,794 (no download)."""

from __future__ import annotations

import pytest

from causal_cli.data import load_dataset
from causal_cli.graph import CausalGraph
from causal_cli.validate import validate
from tests.conftest import read_results

BENCHMARK = 1794.0


def test_lalonde_sample_is_the_185_nsw_treated_men_and_15992_cps_controls(compose_cfg):
    pytest.importorskip("causaldata")
    cfg = validate(compose_cfg(["experiment=lalonde_cps"]))
    dataset = load_dataset(cfg, CausalGraph.from_config(cfg.graph))
    frame = dataset.frame
    assert (frame["treat"] == 1).sum() == 185 and (frame["treat"] == 0).sum() == 15_992
    assert set(frame.loc[frame["treat"] == 0, "data_id"]) == {"CPS1"}
    assert (frame["age2"] == frame["age"].astype("int64") ** 2).all()  # widened before squaring (age is int8)
    assert (frame["u74"] == (frame["re74"] == 0)).all() and frame["u74"].dtype == "int64"


def test_lalonde_psm_covers_the_experimental_benchmark(run_causal):
    pytest.importorskip("causaldata")
    proc, run_dir = run_causal(
        "run",
        "experiment=lalonde_cps",
        "refuters.placebo.num_simulations=10",
        "refuters.random_common_cause.num_simulations=5",
        "refuters.n_jobs=1",
        "report.enabled=false",
    )
    assert proc.returncode == 0, proc.stderr
    result = read_results(run_dir)
    assert result["status"] == "ok" and result["n_rows"] == 16_177
    assert (result["estimator"], result["target_units"]) == ("psm", "att")
    assert (result["reference"], result["reference_kind"]) == (BENCHMARK, "experimental_benchmark")
    assert -8_600 < result["naive_estimate"] < -8_400
    assert result["ci_low"] <= BENCHMARK <= result["ci_high"] and result["ci_covers_reference"] is True
    comparisons = {row["estimator"]: row for row in result["comparisons"]}
    assert set(comparisons) == {"ipw", "aipw"}
    for row in comparisons.values():
        assert row["error"] is None and row["target_units"] == "att"
        assert row["ci_low"] < row["estimate"] < row["ci_high"]
        assert row["bias"] == pytest.approx(row["estimate"] - BENCHMARK)
    overlap = result["diagnostics"]["overlap"]
    # most CPS men look nothing like the trainees (scores near 0) ...
    assert overlap["share_outside"] > overlap["poor_share"]
    # ... which the ATT does not need: its warning counts treated units without comparable controls
    assert overlap["estimand"] == "att" and overlap["poor"] is (
        overlap["share_at_risk"] > overlap["poor_share"]
    )
    assert "benchmark" in proc.stdout  # the console labels the reference by its kind
