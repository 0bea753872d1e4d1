"""The compiled kernels (causal_cli/estimators/kernels.py) against the numpy reference they replace.

The sort must give the identical permutation (``np.argsort(kind="stable")``); the Newton pass the same
sums up to rounding, so the fitted coefficients agree to ~1e-12 relative; the k = 1 matching ranges the
identical ``(lo, hi)``. Dispatch is tested by lowering ``kernels.MIN_ROWS`` (the real code paths run on
small data), and the fallback by hiding numba.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from causal_cli.estimators import kernels, matching, propensity

pytest.importorskip("numba")

PROPERTY = settings(max_examples=60, deadline=None, derandomize=True)


def scores(draw_values, n_values):
    """Non-negative float64 scores with ties, zeros (both signs) and values that differ in their last bits."""
    base = st.sampled_from([0.0, -0.0, 0.3, 0.5, 1e-300, 5e-324, 0.999999, 7.0, 1e300])
    near = st.builds(
        lambda b, k: b * (1.0 + k * 2.0**-52), st.sampled_from([0.3, 0.7, 2.5]), st.integers(0, 40)
    )
    free = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
    return draw_values(st.one_of(base, near, free), min_size=2, max_size=n_values)


@PROPERTY
@given(values=scores(st.lists, 300), digit_bits=st.sampled_from([8, 11, 16]))
def test_radix_sort_gives_the_stable_argsort(values, digit_bits):
    score = np.array(values, dtype=np.float64)
    order, s, ties = kernels.sorted_score(score, digit_bits)
    expected = np.argsort(score, kind="stable")
    np.testing.assert_array_equal(order, expected)
    np.testing.assert_array_equal(s.view(np.uint64), score[expected].view(np.uint64))  # -0.0 kept
    assert ties == bool(np.any(s[1:] == s[:-1]))


def test_radix_sort_on_a_million_propensity_scores_with_near_ties_and_ties():
    rng = np.random.default_rng(3)
    score = 1 / (1 + np.exp(-rng.normal(0, 1.5, 1 << 20)))
    # a few thousand values that share their top bits and differ below them, in reverse row order
    score[:4000] = 0.4 * (1 + np.arange(4000)[::-1] * 2.0**-50)
    score[4000:4100] = score[5000]  # ties
    order, s, ties = kernels.sorted_score(score)
    np.testing.assert_array_equal(order, np.argsort(score, kind="stable"))
    assert ties


@pytest.mark.parametrize("reverse", [False, True])
def test_values_that_differ_in_their_last_bits_are_sorted_exactly(reverse):
    """Neighbours swapped, or a long run in reverse row order (what packed keys got wrong)."""
    score = 0.3 * (1 + np.arange(300) * 2.0**-52)
    if reverse:
        score = score[::-1].copy()
    else:
        score[::7], score[1::7] = score[1::7], score[::7].copy()
    order, s, ties = kernels.sorted_score(score)
    np.testing.assert_array_equal(order, np.argsort(score, kind="stable"))
    assert not ties


def test_sorted_dispatches_to_the_kernel_with_the_same_result(monkeypatch):
    rng = np.random.default_rng(0)
    score = np.round(rng.random(5000), 3)  # ties
    reference = matching._sorted(score)
    monkeypatch.setattr(kernels, "MIN_ROWS", 2)
    assert kernels.available(score.size)
    kernel = matching._sorted(score)
    np.testing.assert_array_equal(kernel[0], reference[0])
    np.testing.assert_array_equal(kernel[1], reference[1])
    assert kernel[2] is reference[2] is True
    # negative, NaN or integer scores keep numpy's argsort
    for other in (score - 0.5, np.r_[score, np.nan], (score * 1000).astype(np.int64)):
        np.testing.assert_array_equal(matching.stable_order(other), np.argsort(other, kind="stable"))


def design(n: int, seed: int, constant: bool = False):
    """Covariates on different scales (one far from 0), a known logistic model."""
    rng = np.random.default_rng(seed)
    X = np.column_stack([rng.normal(1000.0, 5.0, n), rng.normal(size=n), np.full(n, 3.0)])
    if not constant:
        X = X[:, :2]
    t = (rng.random(n) < 1 / (1 + np.exp(-(0.2 * (X[:, 0] - 1000) - 0.5 + X[:, 1])))).astype(float)
    return np.ascontiguousarray(np.column_stack([np.ones(n), X]).T), t


@pytest.mark.parametrize("with_loss, layout", [(True, "C"), (False, "C"), (True, "F")])
def test_newton_sums_match_numpy(with_loss, layout):
    columns, t = design(30_000, 1)
    columns = np.asarray(columns, order=layout)  # "F": a row subset, as data_subset makes it
    beta = np.array([-200.0, 0.2, 1.0])
    reference = propensity._NumpyPass(columns, t)
    loglik = reference.at(beta, with_loss)
    loglik_k, grad, hess = kernels.newton_sums(beta, columns, t, with_loss, with_loss)
    np.testing.assert_allclose(grad, reference.gradient(), rtol=1e-12, atol=1e-9)
    if with_loss:
        np.testing.assert_allclose(loglik_k, loglik, rtol=1e-12)
        np.testing.assert_allclose(hess, reference.hessian(), rtol=1e-12)
    else:
        assert loglik_k == 0.0 and not hess.any()


def test_newton_sums_at_clipped_predictors_match_numpy():
    """Linear predictors beyond +-35 (clipped), and scores rounding to 1 (``log1p(-mu)`` from ``d``)."""
    n = 4000
    x = np.linspace(-60, 60, n)
    columns = np.ascontiguousarray(np.vstack([np.ones(n), x]))
    t = (np.arange(n) % 3 == 0).astype(float)
    beta = np.array([0.1, 1.0])
    reference = propensity._NumpyPass(columns, t)
    loglik = reference.at(beta, True)
    loglik_k, grad, hess = kernels.newton_sums(beta, columns, t, True, True)
    np.testing.assert_allclose(loglik_k, loglik, rtol=1e-3)  # numpy's log1p(-mu) rounds mu near 1 first
    np.testing.assert_allclose(grad, reference.gradient(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(hess, reference.hessian(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "C, constant, warm", [(1.0, False, False), (np.inf, False, True), (0.01, True, False), (1.0, False, True)]
)
def test_kernel_fit_agrees_with_numpy_to_1e12(monkeypatch, C, constant, warm):
    columns, t = design(40_000, 2, constant)
    reference = propensity.fit_logistic_columns(columns, t, C=C)
    init = reference * 1.05 if warm else None
    reference = propensity.fit_logistic_columns(columns, t, C=C, init=init)
    monkeypatch.setattr(kernels, "MIN_ROWS", 2)
    fitted = propensity.fit_logistic_columns(columns, t, C=C, init=init)
    np.testing.assert_allclose(fitted, reference, rtol=1e-12, atol=1e-14)
    if constant:
        assert fitted[3] == reference[3] == 0.0


def test_kernel_fit_recovers_the_simulated_model(monkeypatch):
    monkeypatch.setattr(kernels, "MIN_ROWS", 2)
    columns, t = design(200_000, 4)
    beta = propensity.fit_logistic_columns(columns, t, C=np.inf)
    truth = np.array([-0.5 - 0.2 * 1000, 0.2, 1.0])
    np.testing.assert_allclose(beta[1:], truth[1:], atol=0.02)


def test_without_numba_the_numpy_path_runs(monkeypatch):
    monkeypatch.setattr(kernels, "_COMPILED", None)
    monkeypatch.setattr(kernels, "_MISSING", False)
    monkeypatch.setitem(sys.modules, "numba", None)  # import numba raises ImportError
    monkeypatch.setattr(kernels, "MIN_ROWS", 2)
    assert not kernels.available(10**7)
    assert not kernels.warm_up()
    score = np.random.default_rng(0).random(1000)
    np.testing.assert_array_equal(matching.stable_order(score), np.argsort(score, kind="stable"))
    columns, t = design(5000, 5)
    assert np.all(np.isfinite(propensity.fit_logistic_columns(columns, t)))


def test_numba_disable_jit_means_the_numpy_path(monkeypatch):
    """NUMBA_DISABLE_JIT=1 (numba's own switch) would make the kernels Python loops: the numpy path runs."""
    import numba

    monkeypatch.setattr(kernels, "_COMPILED", None)
    monkeypatch.setattr(kernels, "_MISSING", False)
    monkeypatch.setattr(numba.config, "DISABLE_JIT", True)
    assert not kernels.available(kernels.MIN_ROWS)
    assert kernels._COMPILED is None


def test_a_small_fit_does_not_import_numba():
    code = (
        "import sys, numpy as np\n"
        "from causal_cli.estimators import kernels\n"
        "assert not kernels.warm_up(rows=kernels.MIN_ROWS - 1)\n"
        "from causal_cli.estimators.base import EstimationData\n"
        "from causal_cli.estimators.psm import PSMEstimator\n"
        "rng = np.random.default_rng(0); X = rng.normal(size=(2000, 2))\n"
        "t = (rng.random(2000) < 0.4).astype(float)\n"
        "PSMEstimator().fit(EstimationData(t=t, y=X[:, 0] + t, X=X))\n"
        "print('numba' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


@PROPERTY
@given(
    n=st.integers(2, 400),
    distinct=st.sampled_from([2, 5, 50, 10**9]),
    share=st.floats(0.05, 0.95),
    seed=st.integers(0, 2**16),
)
def test_matching_kernels_give_the_same_arrays(n, distinct, share, seed):
    rng = np.random.default_rng(seed)
    score = rng.integers(0, distinct, n) / distinct
    treated = rng.random(n) < share
    treated[0], treated[-1] = True, False
    reference = matching._score_order_queries(score, treated)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(kernels, "MIN_ROWS", 2)
        kernel = matching._score_order_queries(score, treated)
        for a, b in zip(kernel[:3], reference[:3]):
            np.testing.assert_array_equal(a, b)
        s = reference[1]
        for group, group_k in zip(reference[3], kernel[3]):
            for a, b in zip(group, group_k):
                np.testing.assert_array_equal(a, b)
                assert a.dtype == b.dtype
            query_at, pos, pool_at = group
            ranges = matching.match_ranges(s[pool_at], pos, s[query_at], 1)
            patch.setattr(kernels, "MIN_ROWS", 10**15)
            expected = matching.match_ranges(s[pool_at], pos, s[query_at], 1)
            patch.setattr(kernels, "MIN_ROWS", 2)
            np.testing.assert_array_equal(ranges[0], expected[0])
            np.testing.assert_array_equal(ranges[1], expected[1])
