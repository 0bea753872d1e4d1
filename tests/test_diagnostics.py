"""Balance and overlap numbers checked against direct computations on small, hand-built cases."""

from __future__ import annotations

import numpy as np
import pytest

from causal_cli import diagnostics
from causal_cli.errors import ConfigError
from causal_cli.estimators.base import EstimationData
from causal_cli.estimators.naive import NaiveEstimator
from causal_cli.estimators.psm import PSMEstimator


def binary_confounder_case(seed: int = 0, n: int = 60):
    """Treatment more likely when x = 1; both groups hold both x levels, so exact matches exist."""
    rng = np.random.default_rng(seed)
    x = (np.arange(n) % 2).astype(float)
    t = (rng.random(n) < np.where(x == 1, 0.7, 0.3)).astype(float)
    t[:4] = [0, 1, 0, 1]  # x = 0 and x = 1 each in both groups
    t[4:8] = [1, 0, 1, 0]
    y = 2.0 * x + 1.5 * t + rng.normal(0, 1, n)
    return EstimationData(t=t, y=y, X=x[:, None], covariates=("x",)), x, t


def direct_smd(x, t):
    a, b = x[t == 1], x[t == 0]
    return (a.mean() - b.mean()) / np.sqrt((a.var() + b.var()) / 2)


@pytest.mark.parametrize("target", ["ate", "att", "atc"])
def test_smd_after_exact_matching_on_a_binary_confounder_is_zero(target):
    data, x, t = binary_confounder_case()
    psm = PSMEstimator(target_units=target).fit(data)
    rows = diagnostics.balance_table(data.X, ["x"], t, psm.balance_weights_)
    (row,) = rows
    before = direct_smd(x, t)
    assert abs(before) > 0.3, "the case must start imbalanced for the test to mean anything"
    assert row["smd_before"] == pytest.approx(before, rel=1e-12)
    assert row["variance_ratio_before"] == pytest.approx(x[t == 1].var() / x[t == 0].var(), rel=1e-12)
    assert abs(row["smd_after"]) < 1e-12
    assert row["variance_ratio_after"] == pytest.approx(1.0, abs=1e-12)
    assert row["imbalanced_before"] and not row["imbalanced_after"]


def test_matching_weights_follow_the_protocol():
    """ATT: each treated unit once, controls as often as they are used (k matches per treated unit)."""
    data, _, t = binary_confounder_case(seed=3)
    att = PSMEstimator(target_units="att", k=2).fit(data).balance_weights_
    assert np.all(att[t == 1] == 1)
    assert att[t == 0].sum() == pytest.approx((t == 1).sum())
    atc = PSMEstimator(target_units="atc").fit(data).balance_weights_
    assert np.all(atc[t == 0] == 1) and atc[t == 1].sum() == pytest.approx((t == 0).sum())
    ate = PSMEstimator(target_units="ate").fit(data).balance_weights_
    assert ate[t == 1].sum() == pytest.approx(data.n) and ate[t == 0].sum() == pytest.approx(data.n)


def test_weighted_smd_and_variance_ratio_match_a_direct_computation():
    rng = np.random.default_rng(7)
    x = rng.normal(size=50)
    t = (rng.random(50) < 0.4).astype(float)
    w = rng.uniform(0.2, 3.0, 50)
    (row,) = diagnostics.balance_table(x[:, None], ["x"], t, w, threshold=0.1)
    m1 = np.average(x[t == 1], weights=w[t == 1])
    m0 = np.average(x[t == 0], weights=w[t == 0])
    v1 = np.average((x[t == 1] - m1) ** 2, weights=w[t == 1])
    v0 = np.average((x[t == 0] - m0) ** 2, weights=w[t == 0])
    pooled = np.sqrt((x[t == 1].var() + x[t == 0].var()) / 2)
    assert row["smd_after"] == pytest.approx((m1 - m0) / pooled, rel=1e-12)
    assert row["variance_ratio_after"] == pytest.approx(v1 / v0, rel=1e-12)


def test_constant_covariate_gives_zero_smd_not_nan():
    t = np.array([0, 1, 0, 1, 1.0])
    (row,) = diagnostics.balance_table(np.ones((5, 1)), ["c"], t, None)
    assert row["smd_before"] == 0.0 and row["smd_after"] is None


def test_effective_sample_size_and_largest_weights():
    t = np.array([1, 1, 1, 0, 0, 0, 0.0])
    w = np.array([1, 1, 2, 0.5, 0.5, 0.5, 4.5])
    summary = diagnostics.weight_summary(w, t, top=2)
    assert summary["treated"]["ess"] == pytest.approx(4**2 / 6)
    assert summary["control"]["ess"] == pytest.approx(6**2 / (3 * 0.25 + 20.25))
    assert summary["control"]["largest"][0] == {"row": 6, "weight": 4.5, "share": 0.75}
    assert [x["row"] for x in summary["treated"]["largest"]] == [2, 0]


def test_overlap_summary_counts_units_outside_the_bounds():
    ps = np.array([0.01, 0.2, 0.5, 0.97, 0.3, 0.04, 0.6, 0.9])
    t = np.array([1, 1, 1, 1, 0, 0, 0, 0.0])
    overlap = diagnostics.overlap_summary(ps, t, 0.05, 0.95, poor_share=0.2)
    assert overlap["share_outside"] == pytest.approx(3 / 8)
    assert overlap["groups"]["treated"]["share_outside"] == pytest.approx(0.5)
    assert overlap["groups"]["control"]["share_outside"] == pytest.approx(0.25)
    assert overlap["common_support"] == [pytest.approx(0.04), pytest.approx(0.9)]
    assert overlap["share_off_support"] == pytest.approx(2 / 8)
    assert overlap["poor"] is True
    assert diagnostics.overlap_summary(ps, t, 0.0, 1.0)["poor"] is False
    hist = diagnostics.propensity_histogram(ps, t, num_bins=10)
    assert sum(r["treated"] for r in hist) == 4 and sum(r["control"] for r in hist) == 4


def test_estimator_without_propensity_or_weights_gets_a_fitted_propensity_and_no_after():
    data, _, t = binary_confounder_case()
    naive = NaiveEstimator().fit(data)
    diag, notes = diagnostics.compute(t, data.X, ["x"], naive)
    assert notes == []
    assert diag.adjustment == "none" and diag.max_abs_smd_after is None and diag.weights is None
    assert diag.overlap["propensity_source"].startswith("logistic model")
    # the fallback model is the estimators' own: same scores as PSM's propensity
    psm = PSMEstimator().fit(data)
    psm_diag, _ = diagnostics.compute(t, data.X, ["x"], psm)
    assert psm_diag.overlap["propensity_source"] == "estimator"
    assert diag.overlap["groups"] == psm_diag.overlap["groups"]
    assert psm_diag.adjustment == "matching" and psm_diag.max_abs_smd_after == pytest.approx(0, abs=1e-12)
    payload = psm_diag.to_dict()
    assert payload["n_imbalanced_before"] == 1 and payload["n_imbalanced_after"] == 0


class ShortWeights(NaiveEstimator):
    """An estimator breaking the protocol: one weight short."""

    name = "short_weights"

    def _estimate(self, data):
        self.balance_weights_ = np.ones(data.n - 1)
        return super()._estimate(data)


def test_unusable_balance_weights_are_reported_not_used():
    data, _, t = binary_confounder_case()
    diag, notes = diagnostics.compute(t, data.X, ["x"], ShortWeights().fit(data))
    assert diag.adjustment == "none" and diag.max_abs_smd_after is None
    assert "unusable balance weights" in notes[0]


@pytest.mark.parametrize(
    "override, message",
    [
        ("diagnostics.overlap_high=0.01", "diagnostics.overlap_high=0.01 is out of range"),
        ("diagnostics.smd_threshold=0", "diagnostics.smd_threshold=0.0 is out of range"),
        ("diagnostics.poor_overlap_share=2", "diagnostics.poor_overlap_share=2.0 is out of range"),
    ],
)
def test_bad_diagnostics_settings_are_one_line_errors(compose_cfg, override, message):
    from causal_cli.validate import validate

    with pytest.raises(ConfigError) as info:
        validate(compose_cfg([override]))
    assert message in str(info.value) and "\n" not in str(info.value)


def test_default_config_has_diagnostics_settings(compose_cfg):
    from causal_cli.validate import validate

    cfg = validate(compose_cfg(["diagnostics.overlap_low=0.1", "diagnostics.overlap_high=0.9"]))
    assert (cfg.diagnostics.overlap_low, cfg.diagnostics.overlap_high, cfg.diagnostics.smd_threshold) == (
        0.1,
        0.9,
        0.1,
    )


@pytest.mark.parametrize("k", [0, 1, 3, 7, 40])
def test_largest_weights_are_the_stable_argsort_order_ties_included(k):
    """The top-k selection by partition gives exactly what a full stable sort gave (ties in row order)."""
    rng = np.random.default_rng(k)
    for values in (rng.integers(0, 4, 30).astype(float), rng.gamma(0.5, 1.0, 30), np.ones(30), np.zeros(0)):
        expected = np.argsort(-values, kind="stable")[:k]
        assert diagnostics.largest(values, k).tolist() == expected.tolist()


def test_histogram_counts_values_on_the_bin_edges_like_half_open_bins():
    """Each bin holds [low, high), the last one [low, 1]; scores outside [0, 1] count in the end bins."""
    edges = np.linspace(0.0, 1.0, 11)
    ps = np.concatenate([edges, edges[1:-1] - 1e-12, [-0.2, 1.3]])
    t = np.zeros(ps.size)
    t[::2] = 1.0
    hist = diagnostics.propensity_histogram(ps, t, num_bins=10)
    for group, rows in (("treated", t == 1), ("control", t == 0)):
        p = np.clip(ps[rows], 0, 1)
        expected = [
            int(((p >= lo) & ((p < hi) | (hi == 1.0))).sum()) for lo, hi in zip(edges[:-1], edges[1:])
        ]
        assert [r[group] for r in hist] == expected
    assert [r["bin_low"] for r in hist] == edges[:-1].tolist()


def test_balance_from_one_split_per_covariate_matches_the_single_number_functions():
    """balance_table takes each group's values once; its numbers are those of smd and variance_ratio."""
    rng = np.random.default_rng(11)
    X = rng.normal(size=(400, 3))
    t = (rng.random(400) < 0.3).astype(float)
    w, base = rng.uniform(0, 2, 400), rng.uniform(0.5, 1.5, 400)
    rows = diagnostics.balance_table(X, ["a", "b", "c"], t, w, base_weights=base)
    for j, row in enumerate(rows):
        scale = diagnostics.pooled_sd(X[:, j], t)
        assert row["smd_before"] == diagnostics.smd(X[:, j], t, base, scale=scale)
        assert row["smd_after"] == diagnostics.smd(X[:, j], t, w, scale=scale)
        assert row["variance_ratio_before"] == diagnostics.variance_ratio(X[:, j], t, base)
        assert row["variance_ratio_after"] == diagnostics.variance_ratio(X[:, j], t, w)
