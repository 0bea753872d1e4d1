"""Matching done right: shared ties, bias adjustment, Abadie-Imbens (2006, 2016) standard errors, caveats.

Closed forms: with one binary confounder every propensity score (and every Mahalanobis distance)
ties within a cell, so shared-tie matching is exact stratification; a noise-free linear outcome is
matched exactly by the bias-adjusted estimator. The standard errors are checked against a direct,
loop-by-loop evaluation of the published formulas on a small data set.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from causal_cli.estimators.base import EstimationData
from causal_cli.estimators.distance_matching import DistanceMatchingEstimator
from causal_cli.estimators.matching import match_ranges
from causal_cli.estimators.psm import COVARIANCE_NEIGHBOURS, PSMEstimator

TARGETS = ("ate", "att", "atc")


def data_of(t, y, X) -> EstimationData:
    return EstimationData(
        t=np.asarray(t, float), y=np.asarray(y, float), X=np.asarray(X, float).reshape(len(t), -1)
    )


def binary_cells(n=400, seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.random(n) < 0.45).astype(float)
    t = rng.random(n) < np.where(x == 1, 0.7, 0.3)
    y = 1 + 2 * x + t * (1 + x) + rng.standard_normal(n)
    return t, y, x


def stratified(t, y, x, target):
    """Exact stratification on the cells of x: the effect each cell's mean difference implies."""
    cells = np.unique(x)
    diff = np.array([y[(x == c) & t].mean() - y[(x == c) & ~t].mean() for c in cells])
    group = {"ate": np.ones_like(t), "att": t, "atc": ~t}[target]
    share = np.array([(group & (x == c)).sum() for c in cells], float)
    return float(diff @ share / share.sum())


def test_match_ranges_take_every_unit_tied_with_the_kth_nearest():
    pool = np.array([1.0, 2.0, 2.0, 2.0, 5.0])
    queries = np.array([2.0, 3.5, 0.0, 9.0])
    lo, hi = match_ranges(pool, np.searchsorted(pool, queries), queries, 1)
    # 2 ties three units; 3.5 is 1.5 from both 2 (three units) and 5; 9 has one nearest
    assert lo.tolist() == [1, 1, 0, 4] and hi.tolist() == [4, 5, 1, 5]
    lo, hi = match_ranges(pool, np.searchsorted(pool, queries), queries, 2)
    assert lo.tolist() == [1, 1, 0, 1] and hi.tolist() == [4, 5, 4, 5]


@pytest.mark.parametrize("target", TARGETS)
def test_tied_scores_share_the_weight_so_psm_is_exact_stratification(target):
    t, y, x = binary_cells()
    est = PSMEstimator(target_units=target).fit(data_of(t, y, x))
    assert est.effect_ == pytest.approx(stratified(t, y, x, target), rel=1e-12)
    assert DistanceMatchingEstimator(target_units=target, bias_adjust=False).fit(
        data_of(t, y, x)
    ).effect_ == pytest.approx(stratified(t, y, x, target), rel=1e-12)


def test_tied_controls_all_serve_as_matches():
    """Before: row order picked one control per cell (2 controls did all the matching)."""
    t, y, x = binary_cells()
    est = PSMEstimator(target_units="att").fit(data_of(t, y, x))
    weights = est.balance_weights_
    controls = ~t
    assert np.all(weights[controls] > 0)
    for cell in (0, 1):
        in_cell = controls & (x == cell)
        np.testing.assert_allclose(weights[in_cell], (t & (x == cell)).sum() / in_cell.sum())
    assert not any("effective" in c for c in est.caveats())


@pytest.mark.parametrize("cls", [PSMEstimator, DistanceMatchingEstimator])
@pytest.mark.parametrize("target", TARGETS)
def test_bias_adjustment_removes_a_linear_bias_exactly(cls, target):
    """Noise-free linear outcome, constant effect 2: each matched difference minus the regression's
    prediction of the covariate gap is exactly 2; plain matching is off by the gap."""
    rng = np.random.default_rng(4)
    n = 300
    X = rng.standard_normal((n, 3))
    t = rng.random(n) < 1 / (1 + np.exp(-(X @ [1.0, -0.8, 0.5])))
    y = 3 + X @ [1.5, 2.0, -1.0] + 2.0 * t
    adjusted = cls(target_units=target, bias_adjust=True).fit(data_of(t, y, X))
    plain = cls(target_units=target, bias_adjust=False).fit(data_of(t, y, X))
    assert adjusted.effect_ == pytest.approx(2.0, abs=1e-9)
    assert abs(plain.effect_ - 2.0) > 1e-3


def brute_force_matches(score_or_Z, t, k, caliper_logit=None, caliper_width=None):
    """Per query: its matches (all at <= the k-th nearest distance) and their weights, by plain loops."""
    n = len(t)
    matches = {}
    for i in range(n):
        pool = np.flatnonzero(t != t[i])
        d = np.abs(score_or_Z[pool] - score_or_Z[i])
        kth = np.sort(d)[min(k, pool.size) - 1]
        chosen = pool[d <= kth]
        if caliper_width is not None:
            chosen = chosen[np.abs(caliper_logit[chosen] - caliper_logit[i]) <= caliper_width]
        matches[i] = chosen
    return matches


def brute_force_ai2006(ps, t, y, target, matches):
    n = len(t)
    effect_i = np.full(n, np.nan)
    K, Q = np.zeros(n), np.zeros(n)
    target_rows = {"ate": np.ones(n, bool), "att": t, "atc": ~t}[target]
    for i in range(n):
        m = matches[i]
        if m.size == 0:
            continue
        imputed = y[m].mean()
        effect_i[i] = y[i] - imputed if t[i] else imputed - y[i]
        if target_rows[i]:
            K[m] += 1 / m.size
            Q[m] += 1 / m.size**2
    own = target_rows & ~np.isnan(effect_i)
    tau = effect_i[own].mean()
    sigma2 = np.zeros(n)
    for i in range(n):
        same = np.flatnonzero((t == t[i]) & (np.arange(n) != i))
        d = np.abs(ps[same] - ps[i])
        nearest = same[d == d.min()]
        j = nearest.size
        sigma2[i] = j / (j + 1) * (y[i] - y[nearest].mean()) ** 2
    # each variance averaged over its arm's ceil(sqrt(m)) // 2 neighbours either side in score order,
    # tied units sharing one value before and after
    for arm in (True, False):
        rows = np.flatnonzero(t == arm)
        rows = rows[np.argsort(ps[rows], kind="stable")]
        half = int(np.ceil(np.sqrt(rows.size))) // 2

        def tie_mean(v, rows=rows):
            return np.array([v[ps[rows] == ps[i]].mean() for i in rows])

        v = tie_mean(sigma2[rows])
        v = np.array([v[max(r - half, 0) : r + half + 1].mean() for r in range(rows.size)])
        sigma2[rows] = tie_mean(v)
    var = ((effect_i[own] - tau) ** 2).sum() + ((K**2 + 2 * own * K - Q) * sigma2).sum()
    return tau, np.sqrt(var) / own.sum(), effect_i


def brute_force_ai2016_change(ps, t, y, X, target, effect_i, tau):
    n = len(t)
    D = np.column_stack([np.ones(n), X])
    f = ps * (1 - ps)
    info = sum(f[i] * np.outer(D[i], D[i]) for i in range(n)) / n
    cov = {}
    for arm in (True, False):
        rows = np.flatnonzero(t == arm)
        cov[arm] = np.zeros((n, D.shape[1]))
        for i in range(n):
            d = np.abs(ps[rows] - ps[i])
            kth = np.sort(d)[COVARIANCE_NEIGHBOURS - 1]
            near = rows[d <= kth]
            cov[arm][i, 1:] = [np.cov(X[near, j], y[near])[0, 1] for j in range(X.shape[1])]
    if target == "ate":
        c = sum((cov[True][i] / ps[i] + cov[False][i] / (1 - ps[i])) * f[i] for i in range(n)) / n
        return -c @ np.linalg.inv(info) @ c
    if target == "att":
        p, gap, c_own, c_other = ps, effect_i - tau, cov[True], cov[False]
    else:
        p, gap, c_own, c_other = 1 - ps, tau - effect_i, cov[False], cov[True]
    share = p.mean()
    d = sum(D[i] * f[i] * gap[i] for i in range(n)) / n / share
    c = sum((c_own[i] + p[i] / (1 - p[i]) * c_other[i]) * f[i] for i in range(n)) / n / share
    inv = np.linalg.inv(info)
    return -c @ inv @ c + d @ inv @ d


@pytest.mark.parametrize("target", TARGETS)
def test_psm_standard_errors_equal_a_direct_evaluation_of_the_formulas(target):
    """AI (2006) with shared ties, then the AI (2016) adjustment for the estimated logistic score."""
    rng = np.random.default_rng(8)
    n = 80
    X = np.column_stack([rng.standard_normal(n), rng.integers(0, 3, n)])
    t = rng.random(n) < 1 / (1 + np.exp(-(0.8 * X[:, 0] - 0.4 * X[:, 1] + 0.3)))
    y = 1 + X @ [1.0, 0.7] + t * (1 + 0.5 * X[:, 0]) + rng.standard_normal(n)
    est = PSMEstimator(target_units=target, bias_adjust=False).fit(data_of(t, y, X))
    ps = est.propensity_
    tau, se2006, effect_i = brute_force_ai2006(ps, t, y, target, brute_force_matches(ps, t, 1))
    assert est.effect_ == pytest.approx(tau, rel=1e-10)
    assert est.se_abadie_imbens_2006_ == pytest.approx(se2006, rel=1e-9)
    change = brute_force_ai2016_change(ps, t, y, X, target, effect_i, tau)
    assert est.se_method_ == "abadie_imbens_2016"
    assert est.std_error_**2 == pytest.approx(se2006**2 + change / n, rel=1e-8)
    if target == "ate":
        assert est.std_error_ <= se2006  # the ATE adjustment only ever lowers the variance


def test_caliper_variance_counts_the_matches_actually_made_and_says_what_was_dropped():
    rng = np.random.default_rng(2)
    n = 200
    x = np.r_[rng.normal(-1, 1, n // 2), rng.normal(1.2, 1, n // 2)]
    t = np.r_[np.zeros(n // 2, bool), np.ones(n // 2, bool)] & (rng.random(n) < 0.9)
    y = x + t + rng.standard_normal(n)
    est = PSMEstimator(target_units="att", k=3, caliper=0.05, bias_adjust=False).fit(data_of(t, y, x))
    ps = est.propensity_
    logit = np.log(ps / (1 - ps))
    matches = brute_force_matches(ps, t, 3, logit, 0.05 * logit.std())
    tau, se2006, _ = brute_force_ai2006(ps, t, y, "att", matches)
    assert est.n_dropped_["treated"] == sum(matches[i].size == 0 for i in np.flatnonzero(t)) > 0
    assert est.effect_ == pytest.approx(tau, rel=1e-10)
    assert est.std_error_ == pytest.approx(se2006, rel=1e-9)
    assert "caliper" in est.se_method_
    share = 100 * est.n_dropped_["treated"] / t.sum()
    assert f"caliper dropped {share:.1f}% of treated units" in " ".join(est.caveats())
    assert "not the ATT" in " ".join(est.caveats())


def test_few_distinct_controls_doing_the_matching_is_a_caveat():
    rng = np.random.default_rng(5)
    x = np.r_[rng.normal(2.5, 0.5, 300), rng.normal(-2.5, 0.5, 600), [2.0, 2.4, 2.8]]
    t = np.r_[np.ones(300, bool), np.zeros(603, bool)]
    y = x + t + rng.standard_normal(x.size)
    caveats = PSMEstimator(target_units="att").fit(data_of(t, y, x)).caveats()
    assert any("few control units do the matching for the 300 treated units" in c for c in caveats)


def test_a_user_given_classifier_keeps_the_2006_standard_error_and_says_so():
    from sklearn.linear_model import LogisticRegression

    t, y, x = binary_cells(200)
    est = PSMEstimator(propensity_model=LogisticRegression()).fit(data_of(t, y, x))
    assert est.std_error_ == est.se_abadie_imbens_2006_
    assert "user-given" in est.summary()["se_method"]


PERMUTATION = settings(
    max_examples=15, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)


@PERMUTATION
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(30, 120),
    levels=st.sampled_from([2, 3, 0]),  # discrete covariates (ties everywhere) or continuous (0)
    k=st.integers(1, 3),
    target=st.sampled_from(TARGETS),
    bias_adjust=st.booleans(),
)
def test_permuting_rows_changes_neither_estimate_nor_standard_error(seed, n, levels, k, target, bias_adjust):
    rng = np.random.default_rng(seed)
    X = rng.integers(0, levels, (n, 2)).astype(float) if levels else rng.standard_normal((n, 2))
    t = rng.random(n) < 1 / (1 + np.exp(-(X @ [0.6, -0.5])))
    if t.sum() < 3 or (~t).sum() < 3:
        t[:3], t[-3:] = True, False
    y = X @ [1.0, 2.0] + t + rng.standard_normal(n)
    perm = rng.permutation(n)
    for make in (
        lambda: PSMEstimator(target_units=target, k=k, bias_adjust=bias_adjust),
        lambda: DistanceMatchingEstimator(target_units=target, k=k, bias_adjust=bias_adjust),
    ):
        first = make().fit(data_of(t, y, X))
        second = make().fit(data_of(t[perm], y[perm], X[perm]))
        assert second.effect_ == pytest.approx(first.effect_, rel=1e-9, abs=1e-12)
        assert second.std_error_ == pytest.approx(first.std_error_, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("target", ["ate", "att"])
def test_mahalanobis_matching_is_unit_free_even_for_wildly_different_column_scales(target):
    # Mahalanobis distance is invariant to rescaling a column; before the columns were standardised, the
    # eigenvalue cut-off dropped the small-unit direction (2.085 on Z, 1.748 on Z * [2e7, 0.0032])
    rng = np.random.default_rng(13)
    n = 2000
    Z = rng.standard_normal((n, 2))
    t = (rng.random(n) < 1 / (1 + np.exp(-(Z[:, 0] - Z[:, 1])))).astype(float)
    y = 2 * t + Z[:, 0] + Z[:, 1] + rng.standard_normal(n)

    def fit(X):
        est = DistanceMatchingEstimator(target_units=target).fit(data_of(t, y, X))
        return est.effect_, est.std_error_

    effect, se = fit(Z)
    effect_scaled, se_scaled = fit(Z * np.array([2e7, 0.0032]))
    assert abs(effect_scaled - effect) < 0.01 * se
    assert se_scaled == pytest.approx(se, rel=0.01)
