"""Refuters end to end: config validation, the installed ``causal run`` with all six, its files and summary."""

from __future__ import annotations

import csv

import pytest

from causal_cli.errors import ConfigError
from causal_cli.validate import validate
from tests.conftest import read_results

ALL_REFUTERS = (
    "refuters=[placebo,random_common_cause,data_subset,bootstrap,dummy_outcome,unobserved_common_cause]"
)
SMALL = [
    "dgp.n=2000",
    "refuters.n_jobs=1",
    "refuters.placebo.num_simulations=30",
    "refuters.random_common_cause.num_simulations=10",
    "refuters.data_subset.num_simulations=30",
    "refuters.bootstrap.num_simulations=30",
    "refuters.dummy_outcome.num_simulations=30",
    "refuters.unobserved_common_cause.num_simulations=1",
    "refuters.unobserved_common_cause.curve_points=10",
    "report.enabled=false",
]


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("refuters.data_subset.subset_fraction=1.0", "refuters.data_subset.subset_fraction"),
        ("refuters.data_subset.subset_fraction=0", "refuters.data_subset.subset_fraction"),
        ("refuters.bootstrap.ci_level=95", "refuters.bootstrap.ci_level"),
        ("refuters.dummy_outcome.dummy_type=noise", "refuters.dummy_outcome.dummy_type"),
        (
            "refuters.unobserved_common_cause.strengths=[0.1,1.5]",
            "refuters.unobserved_common_cause.strengths",
        ),
        ("refuters.random_common_cause.tolerance=0", "refuters.random_common_cause.tolerance"),
    ],
)
def test_out_of_range_refuter_options_name_the_key(compose_cfg, override, key):
    with pytest.raises(ConfigError) as info:
        validate(compose_cfg([ALL_REFUTERS, override]))
    message = info.value.one_line()
    assert key in message and "allowed" in message and "\n" not in message


def test_all_six_refuters_end_to_end(run_causal):
    proc, run_dir = run_causal("run", ALL_REFUTERS, *SMALL)
    assert proc.returncode == 0, proc.stderr
    result = read_results(run_dir)
    refutations = {r["name"]: r for r in result["refutations"]}
    assert list(refutations) == [
        "placebo",
        "random_common_cause",
        "data_subset",
        "bootstrap",
        "dummy_outcome",
        "unobserved_common_cause",
    ]
    for name, r in refutations.items():
        assert r["reason"] and r["rule"] and isinstance(r["options"], dict), name
        if name != "unobserved_common_cause":
            assert r["passed"] is True, f"{name}: {r['reason']}"
            assert r["new_effect_sd"] > 0
    assert refutations["data_subset"]["options"]["subset_fraction"] == 0.8
    bootstrap = refutations["bootstrap"]["details"]
    assert bootstrap["ci_low"] < result["estimate"] < bootstrap["ci_high"]
    sensitivity = refutations["unobserved_common_cause"]
    assert sensitivity["passed"] is None and sensitivity["p_value"] is None
    details = sensitivity["details"]
    # psm near separation (R² = 0.95, one draw) lands on either side of 0 depending on the propensity
    # model's penalty (+1.98 with it on standardised slopes, -2.47 on raw ones): the curve must fall
    # steeply, and a crossing, when there is one, is a strength in (0, 1)
    assert details["curve"][-1]["new_effect"] < 0.25 * result["estimate"]
    assert details["robustness_value"] is None or 0 < details["robustness_value"] < 1
    assert 0 < details["robustness_value_linear"] < 1 and details["e_value"] > 1
    assert result["refutations_passed"] == 5 and result["refutations_with_verdict"] == 5

    with open(run_dir / "refutations.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {"new_effect_sd", "reason", "rule", "options", "details"} <= set(rows[0])
    assert "subset_fraction=0.8" in next(r for r in rows if r["name"] == "data_subset")["options"]
    with open(run_dir / "sensitivity.csv", newline="") as fh:
        grid = list(csv.DictReader(fh))
    strengths = sensitivity["options"]["strengths"]
    assert len(grid) == len(strengths) ** 2
    assert {
        "r2_treatment",
        "r2_outcome",
        "new_effect",
        "confounder_logodds_per_sd",
        "confounder_shift_per_sd",
    } <= set(grid[0])

    block = result["sensitivity"]  # the closed-form block, beside the simulated one
    assert block["applies"] is True and 0 < block["robustness_value_alpha"] < block["robustness_value"] < 1
    assert block["e_value"] > block["e_value_ci"] >= 1

    out = proc.stdout
    flat = " ".join(out.split())
    assert "The estimate survived 5 of 5 refutations; refuters test the estimator and the data, not" in flat
    assert f"robustness value {block['robustness_value']:.1%}: see Sensitivity" in flat
    assert "Refuters cannot detect unobserved confounding." in flat
    assert "Sensitivity (unobserved_common_cause)" in out and "E-value" in out
    assert "subsets agree with the estimate" in out
