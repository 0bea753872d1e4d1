"""Performance contracts that are not timings: light commands stay light, the fast paths give the
numbers of the straightforward computation, and the benchmark runs.

Speed itself is measured by ``benchmarks/`` (never asserted here: wall-clock tests are flaky).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from causal_cli.estimators import matching, propensity

REPO = Path(__file__).resolve().parents[1]


def load_benchmark(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


startup = load_benchmark("bench_startup")


@pytest.mark.parametrize(
    ("label", "args"), startup.LIGHT_COMMANDS, ids=[c[0] for c in startup.LIGHT_COMMANDS]
)
def test_light_commands_never_import_heavy_modules(label, args, tmp_path):
    names, code = startup.imported_modules(args, cwd=tmp_path)
    assert "causal_cli" in names, f"{label}: the import trace did not see causal_cli at all"
    assert code == (2 if "dgp.n=abc" in args else 0), f"{label} exited {code}"
    assert not names & set(startup.HEAVY_MODULES), (
        f"{label} imported {sorted(names & set(startup.HEAVY_MODULES))}"
    )


def test_import_check_sees_heavy_modules(tmp_path, monkeypatch):
    """The check above can fail: a real run (which identifies with DoWhy) shows up as importing dowhy."""
    monkeypatch.setenv("CAUSAL_CACHE_DIR", str(tmp_path / "empty_cache"))  # a cached graph skips DoWhy
    args = ["run", "dgp.n=300", "refuters=[]", "report.console=false", f"hydra.run.dir={tmp_path / 'run'}"]
    names, code = startup.imported_modules(args, cwd=tmp_path)
    assert code == 0
    assert "dowhy" in names


@pytest.mark.slow
def test_benchmark_quick_mode_prints_the_table(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "bench_vs_dowhy.py"),
            "--quick",
            "--json",
            str(tmp_path / "b.json"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert "## n = 10,000 rows" in out
    for row in (
        "estimate",
        "placebo",
        "random_common_cause",
        "data_subset",
        "TOTAL estimate+refuters",
        "peak RSS MB",
    ):
        assert any(line.startswith(row) for line in out.splitlines()), f"no '{row}' row in:\n{out}"
    assert "`causal run` at n = 10,000" in out
    assert (tmp_path / "b.json").is_file()


def reference_nearest(pool: np.ndarray, query: float, k: int) -> list[int]:
    """Plain-Python matching: sort the pool stably, look ``k`` places either side of the insertion point,
    keep the ``k`` closest (equal distances: the lower sorted position)."""
    import bisect

    ranked = sorted(range(len(pool)), key=lambda i: (pool[i], i))
    values = [pool[i] for i in ranked]
    pos = bisect.bisect_left(values, query)
    window = range(max(0, pos - k), min(len(pool), pos + k))
    best = sorted(window, key=lambda j: (abs(values[j] - query), j))[: min(k, len(pool))]
    return [ranked[j] for j in best]


SCORES = {
    "continuous": lambda rng, n: rng.random(n),
    "lattice (ties)": lambda rng, n: rng.integers(0, 6, n) / 5.0,
    "near ties": lambda rng, n: 0.5 + rng.integers(0, 3, n) * 1e-12 + rng.random(n) * 1e-16,
    "negative": lambda rng, n: rng.standard_normal(n),
}


@pytest.mark.parametrize("kind", SCORES)
@pytest.mark.parametrize("k", [1, 3])
def test_single_sort_matching_equals_plain_nearest_neighbours(kind, k):
    rng = np.random.default_rng(7)
    for _ in range(20):
        n = int(rng.integers(5, 120))
        score = SCORES[kind](rng, n)
        treated = rng.random(n) < 0.4
        if treated.all() or not treated.any():
            continue
        order, in_treated, groups = matching.match_in_score_order(score, treated, k)
        assert np.array_equal(in_treated, treated[order])
        for (queries, matched), group in zip(groups, (treated, ~treated)):
            pool = np.flatnonzero(~group)
            for q, m in zip(order[queries], order[matched]):
                assert group[q]
                assert list(m) == [pool[j] for j in reference_nearest(score[pool], score[q], k)]


def rare_event_polynomial_data(n=5000, seed=3):
    """Lalonde-like: 1.5% treated, polynomial terms on very different scales (condition number ~1e12)."""
    rng = np.random.default_rng(seed)
    age = rng.uniform(17, 55, n)
    income = rng.exponential(15_000, n)
    X = np.column_stack([age, age**2, age**3, income, income * age / 100])
    logit = -2.0 - 0.08 * (age - 30) - income / 20_000
    t = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)
    return np.column_stack([np.ones(n), X]), t


def penalized_loss(design, t, beta, C=1.0):
    """The built-in model's objective: L2 on the slopes of the standardised covariates."""
    eta = design @ beta
    return (
        np.logaddexp(0, eta).sum() - t @ eta + 0.5 / C * ((beta[1:] * design[:, 1:].std(axis=0)) ** 2).sum()
    )


def test_newton_fit_beats_sklearn_on_rare_ill_conditioned_data():
    design, t = rare_event_polynomial_data()
    beta = propensity.fit_logistic(design, t)
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(design[:, 1:])
    lr = LogisticRegression(C=1.0, max_iter=5000).fit(scaler.transform(design[:, 1:]), t)
    slopes = lr.coef_.ravel() / scaler.scale_
    sk_beta = np.r_[lr.intercept_ - slopes @ scaler.mean_, slopes]
    assert penalized_loss(design, t, beta) <= penalized_loss(design, t, sk_beta) + 1e-9


def test_newton_fit_converges_on_lalonde(compose_cfg):
    """185 treated among 16,177, terms up to age cubed: plain Newton from the intercept-only start
    diverges to coefficients of 1e13 here; step halving keeps it on the optimum."""
    pytest.importorskip("causaldata")
    from causal_cli.data import load_dataset
    from causal_cli.graph import CausalGraph
    from causal_cli.validate import validate

    cfg = validate(compose_cfg(["experiment=lalonde_cps"]))
    frame = load_dataset(cfg, CausalGraph.from_config(cfg.graph)).frame
    X = frame[list(cfg.graph.confounders)].to_numpy(dtype=float)
    design, t = np.column_stack([np.ones(len(X)), X]), frame[cfg.graph.treatment].to_numpy(dtype=float)
    beta = propensity.fit_logistic(design, t)
    assert np.all(np.abs(beta) < 100), beta
    mu = 1 / (1 + np.exp(-(design @ beta)))
    sd = design[:, 1:].std(axis=0)
    grad = design.T @ (mu - t) + np.r_[0.0, beta[1:] * sd**2]  # the penalty is on standardised slopes
    assert np.max(np.abs(grad) / np.abs(design).max(axis=0)) < 1e-6


@pytest.mark.parametrize("case", ["placebo", "random_common_cause", "subset", "far init"])
def test_warm_started_fit_equals_the_cold_fit(case):
    rng = np.random.default_rng(11)
    n = 4000
    X = np.column_stack([rng.gamma(2, 1.5, n), rng.gamma(4, 2.5, n)])
    design = np.column_stack([np.ones(n), X])
    t = (rng.random(n) < 1 / (1 + np.exp(-(-2 + 0.4 * X[:, 0] + 0.1 * X[:, 1])))).astype(float)
    original = propensity.fit_logistic(design, t)
    init = propensity.warm_start_for(original, design.shape[1])
    if case == "placebo":
        t = rng.permutation(t)
    elif case == "random_common_cause":
        design = np.column_stack([design, rng.standard_normal(n)])
        init = propensity.warm_start_for(original, design.shape[1])
    elif case == "subset":
        rows = np.sort(rng.permutation(n)[: int(0.8 * n)])
        design, t = design[rows], t[rows]
    else:
        init = original * 25
    warm = propensity.fit_logistic(design, t, init=init)
    cold = propensity.fit_logistic(design, t)
    np.testing.assert_allclose(warm, cold, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("n", [50_000, 200_000])  # the radix path and the packed np.sort path
@pytest.mark.parametrize("kind", ["continuous", "lattice (ties)", "near ties"])
def test_score_order_is_the_stable_argsort(n, kind):
    score = SCORES[kind](np.random.default_rng(3), n)
    order, _, _ = matching.match_in_score_order(score, np.arange(n) % 3 == 0, 1)
    np.testing.assert_array_equal(order, np.argsort(score, kind="stable"))
