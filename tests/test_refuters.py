"""Refuters: every refuter with every estimator, each verdict able to fail, DoWhy 0.14's traps, sensitivity.

Estimators defined here are deliberately broken (they ignore the treatment, scale with the row count,
report a too-small standard error, or match on unscaled covariates) so that each verdict is seen to fail.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from causal_cli import registry
from causal_cli.data.synthetic import ProductGrowthDGP, ProductGrowthDGPConfig
from causal_cli.errors import ConfigError
from causal_cli.estimators.base import BaseEstimator, EstimationData
from causal_cli.estimators.naive import NaiveEstimator, difference_in_means
from causal_cli.graph import CausalGraph
from causal_cli.identify import identify
from causal_cli.pipeline import build_estimation_data
from causal_cli.refuters.unobserved_common_cause import partial_r2
from causal_cli.runtime.local import LocalProcessExecutor
from causal_cli.schema import GraphConfig
from causal_cli.simulate import SerialExecutor

#: cheap settings per refuter for the conformance test
SMALL = {
    "placebo": {"num_simulations": 6},
    "random_common_cause": {"num_simulations": 4},
    "data_subset": {"num_simulations": 6},
    "bootstrap": {"num_simulations": 6},
    "dummy_outcome": {"num_simulations": 6},
    "unobserved_common_cause": {"num_simulations": 1, "strengths": [0.05, 0.3], "curve_points": 5},
}
PRODUCT_GRAPH = GraphConfig(
    name="product_growth", treatment="feature_used", outcome="spend", confounders=["account_age", "activity"]
)


def make_refuter(name: str, **options):
    return registry.load("refuter", name)(**options)


def make_estimator(name: str):
    cls = registry.load("estimator", name)
    return cls.from_config(OmegaConf.structured(cls.config_class), random_state=0)


def refute(refuter, estimator, data, seed=0, n_jobs=1):
    """``n_jobs`` 1: in this process; more: on local worker processes, even for a small job."""
    executor = SerialExecutor() if n_jobs == 1 else LocalProcessExecutor(n_jobs, min_work=0)
    estimator.fit(data)
    return refuter.refute(estimator, data, estimator.effect_, estimator.std_error_, seed, executor)


def product_frame(n: int, seed: int = 1, effect: float = 10.0) -> pd.DataFrame:
    return ProductGrowthDGP(ProductGrowthDGPConfig(n=n, seed=seed, true_effect=effect)).dataset().frame


_IDENTIFIED: dict[str, object] = {}


def product_data(frame: pd.DataFrame, kind: str = "backdoor") -> EstimationData:
    """The pipeline's own path: graph -> DoWhy identification -> EstimationData."""
    graph = CausalGraph.from_config(OmegaConf.structured(PRODUCT_GRAPH))
    if kind not in _IDENTIFIED:
        _IDENTIFIED[kind] = identify(graph, kind)
    return build_estimation_data(frame, graph, _IDENTIFIED[kind])


@pytest.fixture(scope="module")
def small_product():
    return product_frame(2000, seed=3)


# ---------------------------------------------------------------- broken estimators (each verdict can fail)
class IgnoresTreatment(BaseEstimator):
    """Compares high and low values of the first covariate: the treatment column is never read."""

    name = "ignores_treatment"
    has_analytic_se = True

    def _estimate(self, data):
        high = data.X[:, 0] > np.median(data.X[:, 0])
        return data.y[high].mean() - data.y[~high].mean()

    def _std_error(self, data):
        return difference_in_means(data.t, data.y)[1]


class TotalEffect(NaiveEstimator):
    """Reports a total (per 1,000 rows) instead of an average: the number changes with the row count."""

    name = "total_effect"

    def _estimate(self, data):
        return super()._estimate(data) * data.n / 1000


class Overconfident(NaiveEstimator):
    """The difference in means with a standard error ten times too small."""

    name = "overconfident"

    def _std_error(self, data):
        return self._se / 10


class UnscaledCovariateMatching(BaseEstimator):
    """1-nearest-neighbour matching on raw covariates: an added N(0, 1) column swamps small-scale confounders."""

    name = "unscaled_covariate_matching"
    has_analytic_se = True

    def _estimate(self, data):
        from scipy.spatial import cKDTree

        t = data.t == 1
        imputed = np.empty(data.n)
        for rows, pool in ((t, ~t), (~t, t)):
            _, idx = cKDTree(data.X[pool]).query(data.X[rows])
            imputed[rows] = data.y[pool][idx]
        return float(np.mean(np.where(t, data.y - imputed, imputed - data.y)))

    def _std_error(self, data):
        return difference_in_means(data.t, data.y)[1]


# ---------------------------------------------------------------- conformance: every estimator x every refuter
@pytest.mark.parametrize("refuter_name", sorted(registry.REFUTERS))
@pytest.mark.parametrize("estimator_name", sorted(registry.ESTIMATORS))
def test_every_refuter_works_with_every_estimator(small_product, estimator_name, refuter_name):
    cls = registry.load("estimator", estimator_name)
    if cls.identification in ("iv", "frontdoor"):
        pytest.skip(f"the product_growth graph cannot identify '{cls.identification}'")
    data = product_data(small_product, cls.identification)
    refuter = make_refuter(refuter_name, **SMALL[refuter_name])
    estimator = make_estimator(estimator_name)
    result = refute(refuter, estimator, data)
    assert result.name == refuter_name and result.reason and result.rule
    if refuter_name != "unobserved_common_cause":
        # the recorded verdict is the refuter's rule applied to the recorded simulations
        sims = np.asarray(result.simulations)
        passed, p_value, _ = refuter.verdict(estimator.effect_, estimator.std_error_, sims[np.isfinite(sims)])
        assert type(result.passed) is bool and result.passed is passed
        assert result.p_value == pytest.approx(p_value)
    if refuter_name == "unobserved_common_cause":
        assert result.passed is None
        assert result.table and all(np.isfinite(row["new_effect"]) for row in result.table)
        assert np.isfinite(result.details["e_value"]) and result.details["e_value"] >= 1
    else:
        assert np.isfinite(result.new_effect) and np.isfinite(result.new_effect_sd), result.reason
        assert len(result.simulations) == refuter.num_simulations


# ---------------------------------------------------------------- on the default study with psm, all pass
def test_psm_on_product_growth_passes_every_refutation():
    data = product_data(product_frame(2000))
    for name in ("placebo", "random_common_cause", "data_subset", "bootstrap", "dummy_outcome"):
        result = refute(make_refuter(name, num_simulations=30), make_estimator("psm"), data)
        assert result.passed is True, f"{name}: {result.reason}"


# ---------------------------------------------------------------- each verdict can fail
def test_estimator_ignoring_treatment_fails_placebo_and_dummy_outcome():
    data = product_data(product_frame(1000))
    placebo = refute(make_refuter("placebo", num_simulations=20), IgnoresTreatment(), data)
    assert placebo.passed is False and "not centred on 0" in placebo.reason
    dummy = refute(make_refuter("dummy_outcome", num_simulations=20), IgnoresTreatment(), data)
    assert dummy.passed is False and "cannot have" in dummy.reason


def test_unadjusted_estimator_fails_dummy_outcome_that_keeps_confounding():
    data = product_data(product_frame(1000))
    result = refute(make_refuter("dummy_outcome", num_simulations=20), NaiveEstimator(), data)
    assert result.passed is False
    assert result.new_effect > 2  # the confounding bias, not an effect of the treatment
    permuted = refute(
        make_refuter("dummy_outcome", num_simulations=20, dummy_type="permute"), NaiveEstimator(), data
    )
    assert permuted.passed is True  # a permuted outcome carries no confounding: the weaker check


def test_placebo_passes_a_correct_null_and_reports_it_is_not_distinguishable():
    """A true null is not distinguishable from a placebo; that is information, not a failed refutation."""
    data = product_data(product_frame(1000, effect=0.0))
    # plain matching: on this one draw the bias-adjusted psm estimate is -1.39 (SE 0.61), a 1-in-50 miss of 0
    estimator = make_estimator("psm")
    estimator.bias_adjust = False
    result = refute(make_refuter("placebo", num_simulations=30), estimator, data)
    assert result.passed is True, result.reason
    assert result.details["distinguishable"] is False and "not distinguishable" in result.reason


def test_placebo_reports_an_estimate_that_hinges_on_a_few_rows_as_not_distinguishable():
    rng = np.random.default_rng(0)
    n = 1000
    t = (rng.random(n) < 0.5).astype(float)
    y = rng.normal(0.0, 1.0, n)
    y[np.flatnonzero(t == 1)[:3]] += 60.0  # three extreme treated rows carry the whole "effect"
    data = EstimationData(t=t, y=y, X=rng.normal(size=(n, 1)), covariates=("x",))
    result = refute(make_refuter("placebo", num_simulations=40), make_estimator("regression"), data)
    assert result.details["distinguishable"] is False and "not distinguishable" in result.reason
    assert result.passed is True  # the placebo effects are centred on 0: the estimator itself is sound


def test_data_subset_fails_for_an_estimate_that_depends_on_the_row_count():
    data = product_data(product_frame(1000))
    result = refute(make_refuter("data_subset", num_simulations=20), TotalEffect(), data)
    assert result.passed is False and "outside what its own subsets give" in result.reason
    assert result.new_effect == pytest.approx(0.8 * TotalEffect().fit(data).effect_, rel=0.05)


def test_data_subset_and_bootstrap_fail_for_a_too_small_standard_error():
    data = product_data(product_frame(1000))
    for name in ("data_subset", "bootstrap"):
        result = refute(make_refuter(name, num_simulations=20), Overconfident(), data)
        assert result.passed is False and "the reported SE" in result.reason, result.reason
        honest = refute(make_refuter(name, num_simulations=20), NaiveEstimator(), data)
        assert honest.passed is True, honest.reason


def test_random_common_cause_fails_for_matching_on_unscaled_covariates():
    rng = np.random.default_rng(5)
    n = 600
    x = rng.normal(0.0, 0.05, n)  # a confounder on a small scale
    t = (rng.random(n) < 1 / (1 + np.exp(-x / 0.05))).astype(float)
    y = 10 * t + 200 * x + rng.normal(0.0, 1.0, n)
    data = EstimationData(t=t, y=y, X=x[:, None], covariates=("x",))
    result = refute(make_refuter("random_common_cause", num_simulations=5), UnscaledCovariateMatching(), data)
    assert result.passed is False and "moves the estimate" in result.reason
    regression = refute(
        make_refuter("random_common_cause", num_simulations=5), make_estimator("regression"), data
    )
    assert regression.passed is True, regression.reason


class NeedsEveryRow(NaiveEstimator):
    """Refuses any data set smaller than the one it was built for."""

    def __init__(self, rows=1000, **params):
        super().__init__(**params)
        self.rows = rows

    def _estimate(self, data):
        from causal_cli.errors import EstimationError

        if data.n < self.rows:
            raise EstimationError(f"needs {self.rows} rows, got {data.n}")
        return super()._estimate(data)


def test_simulations_the_estimator_cannot_estimate_are_counted_not_fatal():
    data = product_data(product_frame(1000))
    result = refute(make_refuter("data_subset", num_simulations=5), NeedsEveryRow(), data)
    assert result.passed is False and result.new_effect is None
    assert "only 0 of 5 simulations gave a finite estimate" in result.reason
    assert "(5 of 5 simulations gave no estimate)" in result.reason


def test_bootstrap_reports_a_percentile_ci():
    data = product_data(product_frame(1000))
    result = refute(make_refuter("bootstrap", num_simulations=40, ci_level=0.9), NaiveEstimator(), data)
    low, high = np.quantile(result.simulations, [0.05, 0.95])
    assert result.details["ci_low"] == pytest.approx(low) and result.details["ci_high"] == pytest.approx(high)
    assert result.details["ci_low"] < result.new_effect < result.details["ci_high"]


# ---------------------------------------------------------------- DoWhy 0.14 traps
@pytest.mark.parametrize("estimator_name", ["psm", "ipw"])
def test_propensity_placebo_is_near_zero(estimator_name):
    """DoWhy reuses stale propensity scores, so its IPW placebo effect is large; ours refits them."""
    data = product_data(product_frame(1000))
    estimator = make_estimator(estimator_name)
    result = refute(make_refuter("placebo", num_simulations=20), estimator, data)
    assert abs(result.new_effect) < 0.1 * abs(estimator.effect_), result.reason
    assert result.passed is True


def test_iv_placebo_permutes_the_instrument_with_the_treatment():
    """As DoWhy does: the first stage survives, only the link to the outcome is broken."""
    if "iv" not in registry.ESTIMATORS:
        pytest.skip("no iv estimator registered")
    rng = np.random.default_rng(2)
    n = 2000
    z, u = rng.integers(0, 2, n).astype(float), rng.normal(size=n)
    t = (rng.random(n) < 1 / (1 + np.exp(-(2.0 * z - 1.0 + u)))).astype(float)
    y = 10 * t + 5 * u + rng.normal(size=n)
    data = EstimationData(t=t, y=y, X=np.empty((n, 0)), instruments=z[:, None], instrument_names=("z",))
    result = refute(make_refuter("placebo", num_simulations=20), make_estimator("iv"), data)
    assert result.passed is True and abs(result.new_effect) < 1.0, result.reason
    with pytest.raises(ConfigError, match="placebo_type='random' cannot test an instrumental-variable"):
        refute(make_refuter("placebo", num_simulations=2, placebo_type="random"), make_estimator("iv"), data)


def test_psm_random_common_cause_refits_instead_of_returning_the_original():
    data = product_data(product_frame(1000))
    estimator = make_estimator("psm")
    result = refute(make_refuter("random_common_cause", num_simulations=8), estimator, data)
    sims = np.asarray(result.simulations)
    assert np.all(sims != estimator.effect_) and np.unique(sims).size == sims.size
    before = estimator.effect_, estimator.propensity_.copy()
    make_refuter("placebo", num_simulations=3).refute(
        estimator, data, estimator.effect_, estimator.std_error_
    )
    assert estimator.effect_ == before[0] and np.array_equal(estimator.propensity_, before[1])


class TreatedCount(NaiveEstimator):
    """Returns the number of treated rows it was given: shows what the placebo handed over."""

    def _estimate(self, data):
        return float(data.t.sum())


def test_placebo_permute_permutes_and_unknown_type_is_rejected(compose_cfg):
    from causal_cli.validate import validate

    data = product_data(product_frame(500))
    treated = data.t.sum()
    permuted = make_refuter("placebo", num_simulations=10, placebo_type="permute")
    sims = SerialExecutor().run(permuted, TreatedCount(), data, permuted.streams(0))
    assert np.all(sims == treated)  # a permutation keeps the number treated: it is not random data
    random = make_refuter("placebo", num_simulations=10, placebo_type="random")
    assert not np.all(SerialExecutor().run(random, TreatedCount(), data, random.streams(0)) == treated)
    with pytest.raises(
        ConfigError, match=r"refuters\.placebo\.placebo_type='permut'.*allowed: permute, random"
    ):
        validate(compose_cfg(["refuters.placebo.placebo_type=permut"]))


def test_parallel_simulations_differ_and_match_sequential():
    """DoWhy copies one random state into every worker; we spawn one stream per simulation."""
    data = product_data(product_frame(600))
    runs = {}
    for name, options in (
        ("placebo", {"num_simulations": 8}),
        ("unobserved_common_cause", SMALL["unobserved_common_cause"]),
    ):
        sequential = refute(make_refuter(name, **options), make_estimator("psm"), data, seed=7, n_jobs=1)
        parallel = refute(make_refuter(name, **options), make_estimator("psm"), data, seed=7, n_jobs=2)
        assert parallel.simulations == sequential.simulations
        assert parallel.reason == sequential.reason
        runs[name] = parallel
    assert np.unique(runs["placebo"].simulations).size == 8  # every simulation has its own stream
    other_seed = refute(
        make_refuter("placebo", num_simulations=8), make_estimator("psm"), data, seed=8, n_jobs=2
    )
    assert other_seed.simulations != runs["placebo"].simulations


def test_boolean_treatment_is_cast_once_when_the_data_is_built():
    frame = product_frame(500)
    frame["feature_used"] = frame["feature_used"].astype(bool)
    data = product_data(frame)
    assert data.t.dtype == np.float64 and set(np.unique(data.t)) == {0.0, 1.0}
    for name in ("unobserved_common_cause", "placebo"):
        result = refute(make_refuter(name, **SMALL[name]), make_estimator("psm"), data)
        assert np.isfinite(result.details.get("e_value", result.new_effect))


# ---------------------------------------------------------------- sensitivity
class OLS(BaseEstimator):
    """y ~ 1 + t + X by least squares: the case where omitted-variable bias has a closed form."""

    name = "ols"

    def _estimate(self, data):
        design = np.column_stack([data.design, data.t])
        return float(np.linalg.lstsq(design, data.y, rcond=None)[0][-1])


def test_sensitivity_matches_the_omitted_variable_bias_formula_for_ols():
    data = product_data(product_frame(1500))
    estimator = OLS().fit(data)
    refuter = make_refuter(
        "unobserved_common_cause", num_simulations=1, strengths=[0.02, 0.2], curve_points=40
    )
    result = refuter.refute(estimator, data, estimator.effect_, None, seed=0)
    X = data.design
    sd_t = np.std(data.t - X @ np.linalg.lstsq(X, data.t, rcond=None)[0])
    with_t = np.column_stack([X, data.t])
    sd_y = np.std(data.y - with_t @ np.linalg.lstsq(with_t, data.y, rcond=None)[0])
    for row in result.table:
        r2_t, r2_y = row["r2_treatment"], row["r2_outcome"]
        bias = np.sqrt(r2_y * r2_t / (1 - r2_t)) * sd_y / sd_t  # Cinelli & Hazlett (2020), eq. 11
        assert row["new_effect"] == pytest.approx(estimator.effect_ - bias, rel=1e-6)
    details = result.details
    assert details["robustness_value"] == pytest.approx(details["robustness_value_linear"], rel=0.02)


def test_sensitivity_finds_the_strength_of_an_omitted_confounder():
    """No effect at all; an unobserved z (left out of the adjustment set) creates the whole estimate."""
    rng = np.random.default_rng(11)
    n = 3000
    x, z = rng.normal(size=n), rng.normal(size=n)
    t = (rng.random(n) < 1 / (1 + np.exp(-(0.5 * x + 0.8 * z)))).astype(float)
    y = 1.0 * x + 2.0 * z + rng.normal(0.0, 3.0, n)
    data = EstimationData(t=t, y=y, X=x[:, None], covariates=("x",))
    real_r2_t = partial_r2(np.column_stack([np.ones(n), x, z]), t)[-1]
    real_r2_y = partial_r2(np.column_stack([np.ones(n), x, t, z]), y)[-1]
    estimator = make_estimator("psm").fit(data)
    assert estimator.effect_ > 1.0  # pure confounding bias
    refuter = make_refuter(
        "unobserved_common_cause", num_simulations=3, strengths=[real_r2_t, real_r2_y], curve_points=25
    )
    result = refuter.refute(estimator, data, estimator.effect_, estimator.std_error_, seed=0)
    strength = result.details["robustness_value"]
    assert 0.5 * min(real_r2_t, real_r2_y) <= strength <= 2 * max(real_r2_t, real_r2_y)
    as_strong_as_z = next(
        r for r in result.table if (r["r2_treatment"], r["r2_outcome"]) == (real_r2_t, real_r2_y)
    )
    assert abs(as_strong_as_z["new_effect"]) < 0.3 * estimator.effect_
    # the same strength in effect units is of the order of z's real effects (0.8 log-odds, 2.0 per SD)
    assert 1.0 <= as_strong_as_z["confounder_shift_per_sd"] <= 4.0
    assert 0.4 <= as_strong_as_z["confounder_logodds_per_sd"] <= 1.6
    assert result.passed is None and result.p_value is None and "E-value" in result.reason


def test_e_value_uses_the_standardized_mean_difference_approximation():
    from causal_cli.refuters.unobserved_common_cause import e_value

    rr = np.exp(0.91 * 0.5)
    assert e_value(1.0, 2.0) == pytest.approx(rr + np.sqrt(rr * (rr - 1)))
    assert e_value(-1.0, 2.0) == e_value(1.0, 2.0)
    assert e_value(0.0, 2.0) == 1.0


def test_placebo_permutation_is_the_treatment_at_a_permutation_of_the_rows():
    """The placebo shuffles the treatment itself: exactly ``t[rng.permutation(n)]`` of the same stream (what
    earlier versions computed), so refutation numbers do not change with the faster draw."""
    rng = np.random.default_rng(3)
    t = (rng.random(1000) < 0.3).astype(float)
    data = EstimationData(t=t, y=rng.normal(size=1000), X=rng.normal(size=(1000, 2)), covariates=("a", "b"))
    placebo = make_refuter("placebo", placebo_type="permute")
    for seed in range(5):
        modified = placebo.modify(data, np.random.default_rng(seed))
        assert np.array_equal(modified.t, t[np.random.default_rng(seed).permutation(1000)])
        assert modified.t.sum() == t.sum() and modified.columns is data.columns
