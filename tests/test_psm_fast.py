"""PSM's point-estimate route for refuter simulations (``estimate``) against the per-unit route of ``fit``.

With the bias adjustment, ``estimate`` sums the matched differences from weighted sums over the rows
(:func:`~causal_cli.estimators.matching.bias_adjusted_sum`) instead of per-unit corrections: the same
number up to floating-point summation order, on every refuter's modified data and every option.
"""

from __future__ import annotations

import numpy as np
import pytest

from causal_cli.estimators.base import EstimationData
from causal_cli.estimators.matching import (
    arm_moments,
    bias_adjusted_sum,
    pool_use,
    range_use,
    weighted_slopes,
)
from causal_cli.estimators.psm import PSMEstimator
from causal_cli.refuters.data_subset import DataSubsetRefuter
from causal_cli.refuters.placebo import PlaceboRefuter
from causal_cli.refuters.random_common_cause import RandomCommonCauseRefuter


def confounded(n: int, seed: int = 0, shift: float = 0.0) -> EstimationData:
    """Two confounders on different scales (one far from 0), a true effect of 2."""
    rng = np.random.default_rng(seed)
    X = np.column_stack([rng.normal(size=n), rng.normal(1000.0, 5.0, n)])
    t = (rng.random(n) < 1 / (1 + np.exp(-(0.8 * X[:, 0] + 0.1 * (X[:, 1] - 1000))))).astype(float)
    y = shift + 2 * t + X[:, 0] + 0.3 * (X[:, 1] - 1000) + rng.normal(size=n)
    return EstimationData(t=t, y=y, X=X)


def per_unit(fitted: PSMEstimator, data: EstimationData) -> float:
    """What a refit returned before: ``_estimate`` (the fit's route) on a warm-started clone."""
    fresh = fitted.clone()
    fresh.warm_start_ = fitted.warm_start_
    return fresh._estimate(data)


OPTIONS = [
    {},
    {"target_units": "att"},
    {"target_units": "atc", "k": 2},
    {"k": 3, "caliper": 0.05},
]


@pytest.mark.parametrize(
    "options", OPTIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "default"
)
def test_refit_estimate_equals_the_per_unit_route(options):
    data = confounded(3000, shift=250.0)
    fitted = PSMEstimator(**options).fit(data).compact()
    for refuter in (PlaceboRefuter(), RandomCommonCauseRefuter(), DataSubsetRefuter()):
        for seed in range(3):
            modified = refuter.modify(data, np.random.default_rng(seed))
            fast, slow = fitted.estimate(modified), per_unit(fitted, modified)
            assert fast == pytest.approx(slow, rel=1e-12, abs=1e-12 * np.std(data.y)), refuter.name
    assert fitted.estimate(data) == pytest.approx(fitted.effect_, rel=1e-12)


def test_ill_conditioned_regression_takes_the_per_unit_route_exactly():
    """A covariate constant in the data leaves the weighted Gram matrix singular: the route declines, and
    ``estimate`` is then exactly the fit's number (minimum-norm least squares, as before)."""
    base = confounded(2000)
    data = EstimationData(t=base.t, y=base.y, X=np.column_stack([base.X, np.full(base.n, 7.0)]))
    fitted = PSMEstimator().fit(data)
    assert fitted.estimate(data) == fitted.effect_


def test_a_pool_of_one_unit_takes_the_per_unit_route_exactly():
    """One control: every treated unit is matched to it, so its regression has a single point (a singular
    Gram matrix); the refit declines the fast route and gives the fit's number, exactly."""
    rng = np.random.default_rng(2)
    X = rng.normal(size=(60, 2))
    t = np.ones(60)
    t[3] = 0.0
    data = EstimationData(t=t, y=X @ [1.0, 0.5] + 2 * t + rng.normal(size=60), X=X)
    fitted = PSMEstimator().fit(data)
    assert fitted.estimate(data) == per_unit(fitted, data) == fitted.effect_


def test_bias_adjusted_sum_is_the_sum_of_per_unit_corrections(monkeypatch):
    """Against the definition on a small case with ties: each query's outcome minus its matches' mean,
    minus the covariate gap times the use-weighted pool regression's slopes (one covariate far from 0);
    the rows' sums taken in blocks of 4 (the last one partial)."""
    from causal_cli.estimators import matching

    rng = np.random.default_rng(3)
    pool_x = rng.normal(size=(12, 2)) + [0.0, 500.0]
    pool_y = pool_x @ [1.5, -2.0] + rng.normal(size=12)
    query_x, query_y = rng.normal(size=(5, 2)) + [0.0, 500.0], rng.normal(size=5)
    lo, hi = np.array([0, 2, 2, 5, 9]), np.array([2, 3, 5, 6, 12])  # ranges of 2, 1, 3, 1, 3 matches
    use = range_use(12, lo, hi, 1.0 / (hi - lo))
    slopes = weighted_slopes(pool_x, pool_y, use)
    expected = sum(
        query_y[q] - pool_y[lo[q] : hi[q]].mean() - (query_x[q] - pool_x[lo[q] : hi[q]].mean(axis=0)) @ slopes
        for q in range(5)
    )
    x, y = np.vstack([query_x, pool_x]), np.r_[query_y, pool_y]
    columns, t = np.vstack([np.ones(17), x.T]), np.r_[np.ones(5), np.zeros(12)]
    monkeypatch.setattr(matching, "MOMENTS_BLOCK_ROWS", 4)
    centres = (y.mean(), x.mean(axis=0), x.std(axis=0))
    pools, treated, every = arm_moments(columns, y, t, np.r_[np.zeros(5), use], centres, (True, False))
    assert pools[1] is None and treated[0] == 5 and every[0] == 17
    assert bias_adjusted_sum(pools[0], treated) == pytest.approx(expected, rel=1e-12)


def exact_estimate(fitted: PSMEstimator, data: EstimationData) -> float:
    """The bias-adjusted ATE of ``fitted``'s matches on ``data`` in rational arithmetic (no rounding): each
    group's queries minus their matches, net of the use-weighted pool regression (normal equations)."""
    from fractions import Fraction

    fresh = fitted.clone()
    fresh.warm_start_ = fitted.warm_start_
    order, _, _, groups = fresh._matched_ranges(data)
    total, count = Fraction(0), 0
    for (queries, pool, lo, hi, _), sign in zip(groups, (1, -1)):
        use = {}
        for a, b in zip(lo, hi):
            for j in range(a, b):
                use[order[pool[j]]] = use.get(order[pool[j]], 0) + Fraction(1, int(b - a))
        rows = {r: [Fraction(1), *map(Fraction, data.X[r])] for r in set(use) | set(order[queries])}
        y = {r: Fraction(data.y[r]) for r in rows}
        size = data.X.shape[1] + 1
        system = [
            [sum(u * rows[r][a] * rows[r][c] for r, u in use.items()) for c in range(size)]
            for a in range(size)
        ]
        moments = [sum(u * rows[r][a] * y[r] for r, u in use.items()) for a in range(size)]
        for c in range(size):  # Gauss-Jordan elimination, exact
            pivot = next(r for r in range(c, size) if system[r][c] != 0)
            system[c], system[pivot], moments[c], moments[pivot] = (
                system[pivot],
                system[c],
                moments[pivot],
                moments[c],
            )
            for r in range(size):
                if r != c and system[r][c] != 0:
                    f = system[r][c] / system[c][c]
                    system[r] = [a - f * b for a, b in zip(system[r], system[c])]
                    moments[r] -= f * moments[c]
        slopes = [moments[a] / system[a][a] for a in range(1, size)]

        residual = {r: y[r] - sum(s * x for s, x in zip(slopes, rows[r][1:])) for r in rows}
        total += sign * (
            sum(residual[r] for r in order[queries]) - sum(u * residual[r] for r, u in use.items())
        )
        count += queries.size
    return float(total / count)


def test_refit_estimate_is_exact_with_offsets_far_above_the_spread():
    """Covariates around 1e6 (SD 1 and 5) and an outcome around 1e4: every sum is over centred values, so
    the refit's estimate is the exactly computed one to 1e-13 (with raw sums it erred by 1.2e-12 here)."""
    rng = np.random.default_rng(11)
    n = 400
    X = np.column_stack([rng.normal(1e6, 1.0, n), rng.normal(-1e6, 5.0, n)])
    t = (rng.random(n) < 1 / (1 + np.exp(-(X[:, 0] - 1e6)))).astype(float)
    y = 1e4 + 2 * t + (X[:, 0] - 1e6) + 0.2 * (X[:, 1] + 1e6) + rng.normal(size=n)
    data = EstimationData(t=t, y=y, X=X)
    fitted = PSMEstimator().fit(data).compact()
    for modified in (data, PlaceboRefuter().modify(data, np.random.default_rng(1))):
        assert fitted.estimate(modified) == pytest.approx(
            exact_estimate(fitted, modified), rel=1e-13, abs=1e-13
        )


@pytest.mark.parametrize("k", [1, 3])
def test_pool_use_counts_each_unit_as_range_use_does(k):
    """Without ties (ranges of one width) the uses are integer counts over the width, exactly; with ties,
    the difference array of :func:`range_use`: the same uses either way."""
    rng = np.random.default_rng(k)
    m = 50
    lo = np.sort(rng.integers(0, m - k + 1, 40))
    for hi in (lo + k, np.minimum(lo + k + (rng.random(40) < 0.3), m)):
        use = pool_use(m, lo, hi)
        np.testing.assert_allclose(use, range_use(m, lo, hi, 1.0 / (hi - lo)), rtol=1e-13, atol=1e-14)
        assert use.sum() == pytest.approx(40.0, rel=1e-13)
    covering = np.zeros(m)
    for start in lo:
        covering[start : start + k] += 1
    assert pool_use(m, lo, lo + k).tolist() == (covering / k).tolist()  # exact counts


def test_a_treatment_not_coded_0_1_takes_the_per_unit_route():
    """The rows' sums split the arms with the treatment as 0/1 weights; psm counts any value but 1 as control,
    so another code (0.5 here) gives the fit's per-unit number, exactly."""
    data = confounded(2000)
    fitted = PSMEstimator().fit(data).compact()
    t = np.where((data.t == 0) & (np.arange(data.n) % 5 == 0), 0.5, data.t)
    modified = data.with_treatment(t)
    assert fitted.estimate(modified) == per_unit(fitted, modified)


def test_a_large_cold_propensity_fit_starts_from_a_subsample_and_reaches_the_same_optimum(monkeypatch):
    """Above SUBSAMPLE_START_ROWS a fit without a warm start first fits a subsample: fewer passes over all
    rows, the same coefficients to the solver's tolerance; below it nothing changes, bit for bit."""
    from causal_cli.estimators import propensity

    data = confounded(40_000, seed=4)
    design = data.design
    before = propensity.fit_logistic(design, data.t)
    monkeypatch.setattr(propensity, "SUBSAMPLE_START_ROWS", 10_000)
    monkeypatch.setattr(propensity, "START_SUBSAMPLE_ROWS", 2_000)
    calls = []
    original = propensity._subsample_fit
    monkeypatch.setattr(propensity, "_subsample_fit", lambda *a, **k: calls.append(1) or original(*a, **k))
    after = propensity.fit_logistic(design, data.t)
    assert calls == [1]
    np.testing.assert_allclose(after, before, rtol=1e-8, atol=1e-10)
    monkeypatch.setattr(propensity, "SUBSAMPLE_START_ROWS", 40_000)
    assert propensity.fit_logistic(design, data.t).tobytes() == before.tobytes()


def test_large_regressions_by_normal_equations_equal_the_svd_solution(monkeypatch):
    """Above NORMAL_EQUATIONS_MIN_ROWS rows the slopes come from the centred normal equations: the SVD's
    slopes up to rounding, weighted (zero weights included) or not; a collinear design takes the SVD."""
    from causal_cli.estimators import matching

    rng = np.random.default_rng(7)
    X = np.column_stack([rng.normal(50.0, 2.0, 5000), rng.gamma(2.0, 3.0, 5000)])
    y = X @ [0.7, -1.2] + rng.normal(size=5000)
    w = np.where(rng.random(5000) < 0.3, 0.0, rng.random(5000))
    svd = matching.weighted_slopes(X, y, w), matching.least_squares_slopes(X, y)
    monkeypatch.setattr(matching, "NORMAL_EQUATIONS_MIN_ROWS", 1000)
    np.testing.assert_allclose(matching.large_weighted_slopes(X, y, w), svd[0], rtol=1e-11)
    np.testing.assert_allclose(matching.large_weighted_slopes(X, y), svd[1], rtol=1e-11)
    collinear = np.column_stack([X[:, 0], 2 * X[:, 0]])
    assert matching.large_weighted_slopes(collinear, y).tobytes() == (
        matching.least_squares_slopes(collinear, y).tobytes()
    )
