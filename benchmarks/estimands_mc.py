"""Monte Carlo of what regression, dml, aipw and frontdoor estimate, and their 95% CI coverage (not a test).

Three simulated designs with known population truths (computed once from 4 million draws):

- ``het``: effect ``2 + 1.5 x1 + x2``; the treated have high x1, x2, so ATT > ATE > ATC. Outcome linear
  in X within each arm (so a per-arm linear model is correctly specified), logistic propensity.
- ``nonlin``: nonlinear outcome, effect and propensity (ATT > ATE); aipw with its defaults (2 folds,
  no clipping) and HistGradientBoosting nuisances (max_depth 3, 100 iterations), and with linear ones.
- ``frontdoor``: hidden u confounds t and y; the mediator's worth ``10 + 4 u`` varies with u, so
  ``E[y | m, t]`` has an m x t interaction. ATE = 4.

Each cell prints bias, RMSE, the 95% CI's coverage of the population truth (with its Monte Carlo
standard error) and the mean CI width.

    nice -n 10 python benchmarks/estimands_mc.py --reps 500 --n 500 2000 --jobs 2
    nice -n 10 python benchmarks/estimands_mc.py --reps 200 --n 2000 --designs nonlin
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

TRUTH_DRAWS = 4_000_000
HGB = {
    "outcome_model": {
        "_target_": "sklearn.ensemble.HistGradientBoostingRegressor",
        "max_iter": 100,
        "max_depth": 3,
    },
    "propensity_model": {
        "_target_": "sklearn.ensemble.HistGradientBoostingClassifier",
        "max_iter": 100,
        "max_depth": 3,
    },
}


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def het(n, rng):
    X = rng.standard_normal((n, 3))
    e = sigmoid(0.8 * X[:, 0] + 0.6 * X[:, 1] - 0.2)
    tau = 2 + 1.5 * X[:, 0] + X[:, 1]
    y0 = 1 + X[:, 0] + 0.5 * X[:, 1] - 0.5 * X[:, 2]
    return X, e, tau, y0, 1.0


def nonlin(n, rng):
    X = rng.standard_normal((n, 3))
    e = sigmoid(0.9 * X[:, 0] + 0.6 * np.sin(2 * X[:, 1]) - 0.3 * X[:, 2] ** 2 + 0.2)
    tau = 2 + 1.5 * np.tanh(1.5 * X[:, 0]) + 0.5 * X[:, 1] ** 2
    y0 = 2 * np.sin(1.5 * X[:, 0]) + X[:, 1] ** 2 + np.maximum(X[:, 2], 0)
    return X, e, tau, y0, 1.0


def truths(design) -> dict[str, float]:
    X, e, tau, _, _ = design(TRUTH_DRAWS, np.random.default_rng(12345))
    return {
        "ate": float(tau.mean()),
        "att": float((e * tau).sum() / e.sum()),
        "atc": float(((1 - e) * tau).sum() / (1 - e).sum()),
        "vwe": float((e * (1 - e) * tau).sum() / (e * (1 - e)).sum()),
    }


def backdoor_data(design, n, rng):
    from causal_cli.estimators.base import EstimationData

    X, e, tau, y0, sd = design(n, rng)
    t = (rng.random(n) < e).astype(float)
    y = y0 + t * tau + sd * rng.standard_normal(n)
    return EstimationData(t=t, y=y, X=X)


def frontdoor_data(n, rng):
    from causal_cli.estimators.base import EstimationData

    u = rng.standard_normal(n)
    x = rng.standard_normal((n, 1))
    t = (rng.random(n) < sigmoid(1.2 * u)).astype(float)
    m = (rng.random(n) < 0.1 + 0.4 * t).astype(float)
    y = 20 + m * (10 + 4 * u) + 5 * u + x[:, 0] + 2 * rng.standard_normal(n)
    return EstimationData(t=t, y=y, X=x, covariates=("x",), mediators=m[:, None], mediator_names=("m",))


def cells(name):
    """(label, estimator factory, truth key) per design."""
    from causal_cli.estimators.aipw import AIPWEstimator
    from causal_cli.estimators.dml import DMLEstimator
    from causal_cli.estimators.frontdoor import FrontdoorEstimator
    from causal_cli.estimators.regression import RegressionEstimator

    if name == "het":
        out = [
            (f"regression {t}", lambda s, t=t: RegressionEstimator(target_units=t), t)
            for t in ("ate", "att", "atc")
        ]
        out += [
            (
                "regression interactions=false vs ATE",
                lambda s: RegressionEstimator(interactions=False),
                "ate",
            ),
            (
                "regression interactions=false vs VWE",
                lambda s: RegressionEstimator(interactions=False),
                "vwe",
            ),
        ]
        out += [
            (f"dml irm {t}", lambda s, t=t: DMLEstimator(target_units=t, random_state=s), t)
            for t in ("ate", "att")
        ]
        out += [
            ("dml irm ate n_rep=1", lambda s: DMLEstimator(n_rep=1, random_state=s), "ate"),
            ("dml plr vs ATE", lambda s: DMLEstimator(model="plr", random_state=s), "ate"),
            ("dml plr vs VWE", lambda s: DMLEstimator(model="plr", random_state=s), "vwe"),
        ]
        out += [
            (f"aipw {t}", lambda s, t=t: AIPWEstimator(target_units=t, random_state=s), t)
            for t in ("ate", "att")
        ]
        return out
    if name == "nonlin":
        return [
            (
                f"aipw {t} (HistGradientBoosting)",
                lambda s, t=t: AIPWEstimator(target_units=t, random_state=s, **HGB),
                t,
            )
            for t in ("ate", "att")
        ] + [("aipw ate (linear nuisances)", lambda s: AIPWEstimator(random_state=s), "ate")]
    return [
        ("frontdoor interaction=true", lambda s: FrontdoorEstimator(), "ate"),
        ("frontdoor interaction=false", lambda s: FrontdoorEstimator(interaction=False), "ate"),
    ]


def one_rep(name, n, rep):
    """Fit every cell on one simulated data set; (label, estimate, se, low, high) per cell."""
    rng = np.random.default_rng([rep, n, 0xE5])
    data = frontdoor_data(n, rng) if name == "frontdoor" else backdoor_data(DESIGNS[name], n, rng)
    rows = []
    for label, make, _ in cells(name):
        est = make(np.random.SeedSequence([rep, 0xD31])).fit(data)
        rows.append((label, est.effect_, est.std_error_, est.ci_low_, est.ci_high_))
    return rows


DESIGNS = {"het": het, "nonlin": nonlin, "frontdoor": None}


def main(argv=None):
    os.environ.setdefault(
        "OMP_NUM_THREADS", "1"
    )  # one thread per worker: HistGradientBoosting oversubscribes
    from joblib import Parallel, delayed

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=500)
    parser.add_argument("--n", type=int, nargs="+", default=[500, 2000])
    parser.add_argument("--designs", nargs="+", default=["het", "frontdoor"], choices=list(DESIGNS))
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args(argv)

    print("| design | n | estimator | truth | bias | RMSE | coverage (MC se) | mean CI width | reps |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in args.designs:
        truth = truths(DESIGNS[name]) if name != "frontdoor" else {"ate": 4.0}
        for n in args.n:
            start = time.perf_counter()
            results = Parallel(n_jobs=args.jobs)(delayed(one_rep)(name, n, r) for r in range(args.reps))
            for label, _, key in cells(name):
                values = np.array([row[1:] for rep in results for row in rep if row[0] == label])
                est, _, low, high = values.T
                target = truth[key]
                cover = np.mean((low <= target) & (target <= high))
                print(
                    f"| {name} | {n} | {label} | {key.upper()} = {target:.3f} | {np.mean(est - target):+.3f} "
                    f"| {np.sqrt(np.mean((est - target) ** 2)):.3f} "
                    f"| {cover:.1%} ({np.sqrt(cover * (1 - cover) / len(est)):.1%}) "
                    f"| {np.mean(high - low):.3f} | {len(est)} |",
                    flush=True,
                )
            print(f"<!-- {name} n={n}: {time.perf_counter() - start:.0f} s wall -->", flush=True)


if __name__ == "__main__":
    main()
