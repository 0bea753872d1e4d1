"""Monte Carlo for ``data.cluster`` and ``data.weights``.

1. Clustered DGP: users within ~100 teams, a team-level shock in the outcome (ICC about 0.2) and a
   team-level treatment propensity and effect; the confounder x also has a team component. Coverage of
   the 95% CI with the iid SE vs the cluster SE (CR1 for regression, ipw, aipw; cluster bootstrap for psm).
2. Sampling-weight DGP: units with large x are over-sampled (inclusion probability rises with x) and the
   effect grows with x, so the sample ATE is not the population ATE; weights = 1 / inclusion probability.
   Bias of the unweighted and the weighted estimate against the population ATE.

    python benchmarks/weights_clusters_mc.py --reps 500 --psm-reps 200
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from causal_cli.estimators.aipw import AIPWEstimator
from causal_cli.estimators.base import EstimationData
from causal_cli.estimators.ipw import IPWEstimator
from causal_cli.estimators.psm import PSMEstimator
from causal_cli.estimators.regression import RegressionEstimator

ESTIMATORS = {
    "regression": lambda: RegressionEstimator(),
    "ipw": lambda: IPWEstimator(),
    "aipw": lambda: AIPWEstimator(),
    "psm": lambda: PSMEstimator(num_bootstrap=100),
}
TRUE_ATE = 1.0


def clustered_data(rng, groups=100, size=15) -> EstimationData:
    team = np.repeat(np.arange(groups), size)
    shock = rng.normal(0, 0.6, groups)[team]  # ICC of y0 given x: 0.36 / (0.36 + 1) ~ 0.26
    lean = rng.normal(0, 0.8, groups)[team]  # team-level treatment uptake
    effect = TRUE_ATE + rng.normal(0, 0.5, groups)[team]  # the effect varies by team (mean 1)
    x = rng.normal(size=team.size) + 0.5 * rng.normal(size=groups)[team]
    t = (rng.random(team.size) < 1 / (1 + np.exp(-(0.5 * x + lean)))).astype(float)
    y = effect * t + x + shock + rng.normal(size=team.size)
    return EstimationData(t=t, y=y, X=x[:, None], covariates=("x",), cluster=team)


def weighted_data(rng, population=20000, n=1500) -> tuple[EstimationData, float]:
    x = rng.normal(size=population)
    t = (rng.random(population) < 1 / (1 + np.exp(-0.5 * x))).astype(float)
    effect = 1.0 + x  # population ATE = 1
    y = effect * t + x + rng.normal(size=population)
    inclusion = 1 / (1 + np.exp(-(1.5 * x - 2.5)))  # large x over-sampled
    chance = np.minimum(1.0, inclusion * n / inclusion.sum())  # expected sample size ~n
    rows = np.flatnonzero(rng.random(population) < chance)
    w = 1 / chance[rows]  # sampling weights: inverse inclusion probabilities
    data = EstimationData(t=t[rows], y=y[rows], X=x[rows, None], covariates=("x",), w=w)
    return data, float(effect.mean())


def covered(fit, truth) -> bool:
    return bool(fit.ci_low_ <= truth <= fit.ci_high_)


def run(reps: int, psm_reps: int, seed: int = 2026, partial=None, only: str | None = None) -> dict:
    root = np.random.SeedSequence(seed)
    out: dict = {"clustered": {}, "weighted": {}}
    clustered_streams, weighted_streams = root.spawn(reps), root.spawn(reps)
    if only == "weighted":
        clustered_streams = []
    if only == "clustered":
        weighted_streams = []
    hits = {name: {"iid": 0, "cluster": 0, "reps": 0} for name in ESTIMATORS}
    for rep, stream in enumerate(clustered_streams):
        data = clustered_data(np.random.default_rng(stream))
        iid = EstimationData(t=data.t, y=data.y, X=data.X, covariates=data.covariates)
        for name, make in ESTIMATORS.items():
            if name == "psm" and rep >= psm_reps:
                continue
            hits[name]["iid"] += covered(make().fit(iid), TRUE_ATE)
            hits[name]["cluster"] += covered(make().fit(data), TRUE_ATE)
            hits[name]["reps"] += 1
        if partial and (rep + 1) % 25 == 0:
            partial({"clustered_so_far": hits, "rep": rep + 1})
    for name, h in hits.items():
        if not h["reps"]:
            continue
        out["clustered"][name] = {
            "reps": h["reps"],
            "coverage_iid_se": h["iid"] / h["reps"],
            "coverage_cluster_se": h["cluster"] / h["reps"],
        }
    errors = {
        name: {"unweighted": [], "weighted": [], "covered_weighted": 0}
        for name in ("regression", "ipw", "aipw")
    }
    for stream in weighted_streams:
        rng = np.random.default_rng(stream)
        data, truth = weighted_data(rng)
        plain = EstimationData(t=data.t, y=data.y, X=data.X, covariates=data.covariates)
        for name in errors:
            weighted_fit = ESTIMATORS[name]().fit(data)
            errors[name]["unweighted"].append(ESTIMATORS[name]().fit(plain).effect_ - truth)
            errors[name]["weighted"].append(weighted_fit.effect_ - truth)
            errors[name]["covered_weighted"] += covered(weighted_fit, truth)
    for name, e in errors.items():
        if not e["weighted"]:
            continue
        out["weighted"][name] = {
            "reps": reps,
            "mean_bias_unweighted": float(np.mean(e["unweighted"])),
            "mean_bias_weighted": float(np.mean(e["weighted"])),
            "mc_se_weighted": float(np.std(e["weighted"], ddof=1) / np.sqrt(reps)),
            "coverage_weighted": e["covered_weighted"] / reps,
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=500)
    parser.add_argument("--psm-reps", type=int, default=200)
    parser.add_argument("--only", choices=["clustered", "weighted"], help="run one of the two studies")
    parser.add_argument("--partial", help="write running counts to this file every 25 replications")
    args = parser.parse_args()
    start = time.process_time()

    def partial(counts):
        if args.partial:
            counts["cpu_seconds"] = round(time.process_time() - start, 1)
            with open(args.partial, "w") as f:
                json.dump(counts, f)

    result = run(args.reps, args.psm_reps, partial=partial, only=args.only)
    result["cpu_seconds"] = round(time.process_time() - start, 1)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
