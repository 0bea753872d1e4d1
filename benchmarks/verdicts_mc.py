"""Monte Carlo of the placebo and dummy_outcome verdicts: false failures at a true null, and power.

For each of ``--reps`` product_growth data sets (true effect 0, both confounders adjusted for), every
estimator is fitted and refuted by placebo and dummy_outcome; the share of failed verdicts is a false-
failure rate. The old rules (placebo: also "the estimate is distinguishable from the placebo effects";
dummy_outcome: the mean tested against the Monte Carlo error alone) are re-applied to the same simulated
effects, so old and new are compared on identical draws. Broken estimators give the power: one that
ignores the treatment (compares high and low values of a confounder) and the unadjusted difference in
means and a regression that adjusts for one of the two confounders (they do not remove the confounding,
so they must fail the dummy outcome that keeps it); and a correct regression plus a constant bias of
0.25 to 1 (about 1 to 4 of its standard errors), for the smallest leftover bias each verdict catches.

    python benchmarks/verdicts_mc.py --reps 500 --power-reps 200 --n 2000 --num-simulations 100 --out verdicts_mc.json
"""

from __future__ import annotations

import argparse
import json
import time
from statistics import NormalDist

import numpy as np
from omegaconf import OmegaConf

#: constant biases ($) added to a correct regression adjustment; its SE at n = 2,000 is about 0.25
BIAS_GRID = (0.25, 0.5, 0.75, 1.0)


def broken_estimators():
    from causal_cli.estimators.base import BaseEstimator
    from causal_cli.estimators.naive import NaiveEstimator, difference_in_means

    class IgnoresTreatmentEstimator(BaseEstimator):
        """Compares high and low values of the first covariate: the treatment column is never read."""

        name = "ignores_treatment"
        has_analytic_se = True

        def _estimate(self, data):
            high = data.X[:, 0] > np.median(data.X[:, 0])
            return data.y[high].mean() - data.y[~high].mean()

        def _std_error(self, data):
            return difference_in_means(data.t, data.y)[1]

    class AdjustsForFirstConfounderOnly(BaseEstimator):
        """Least squares on the treatment and the first covariate only: half the confounding stays."""

        name = "adjusts_for_first_confounder_only"
        has_analytic_se = True

        def _design(self, data):
            return np.column_stack([np.ones(data.n), data.X[:, :1], data.t])

        def _estimate(self, data):
            return float(np.linalg.lstsq(self._design(data), data.y, rcond=None)[0][-1])

        def _std_error(self, data):
            from causal_cli.sensitivity import ols

            return float(ols(self._design(data), data.y)[1][-1])

    from causal_cli.estimators.regression import RegressionEstimator

    def shifted(delta: float):
        class Shifted(RegressionEstimator):
            """Regression adjustment plus a constant bias: how small a leftover bias the verdicts catch."""

            name = "shifted_regression"

            def _estimate(self, data):
                return super()._estimate(data) + delta

        return lambda: make_estimator_from(Shifted)

    return {
        **{f"regression + {delta:g} bias": shifted(delta) for delta in BIAS_GRID},
        "ignores_treatment": IgnoresTreatmentEstimator,
        "naive (unadjusted)": NaiveEstimator,
        "adjusts for account_age only": AdjustsForFirstConfounderOnly,
    }


def make_estimator(name: str, seed: int):
    from causal_cli import registry

    return make_estimator_from(registry.load("estimator", name), seed)


def make_estimator_from(cls, seed: int = 0):
    return cls.from_config(OmegaConf.structured(cls.config_class), random_state=seed)


def product_data(n: int, seed: int, effect: float):
    from causal_cli.data.synthetic import ProductGrowthDGP, ProductGrowthDGPConfig
    from causal_cli.graph import CausalGraph
    from causal_cli.identify import identify
    from causal_cli.pipeline import build_estimation_data
    from causal_cli.schema import GraphConfig

    frame = ProductGrowthDGP(ProductGrowthDGPConfig(n=n, seed=seed, true_effect=effect)).dataset().frame
    graph = CausalGraph.from_config(
        OmegaConf.structured(
            GraphConfig(treatment="feature_used", outcome="spend", confounders=["account_age", "activity"])
        )
    )
    return build_estimation_data(frame, graph, identify(graph, "backdoor"))


def old_placebo(estimate, std_error, sims, alpha):
    """The rule before this change: centred on 0 AND the estimate distinguishable from the placebo effects."""
    from causal_cli.refuters.base import centred_on_zero, significance

    sims = np.asarray(sims)[np.isfinite(sims)]
    centred, _, _ = centred_on_zero(sims, estimate, alpha)
    p, _ = significance(estimate, sims)
    z = abs(estimate - sims.mean()) / std_error if std_error else float("inf")
    return bool(centred and p < alpha and z > NormalDist().inv_cdf(1 - alpha / 2))


def old_dummy(estimate, sims, alpha):
    """The rule before this change: the mean dummy effect against its Monte Carlo error only."""
    from causal_cli.refuters.base import centred_on_zero

    sims = np.asarray(sims)[np.isfinite(sims)]
    return bool(centred_on_zero(sims, estimate, alpha)[0])


def run_cell(estimator, data, refuter_name, num_simulations, alpha, seed):
    from causal_cli import registry

    estimator.fit(data)
    refuter = registry.load("refuter", refuter_name)(num_simulations=num_simulations, alpha=alpha)
    result = refuter.refute(estimator, data, estimator.effect_, estimator.std_error_, seed=seed)
    if refuter_name == "placebo":
        old = old_placebo(estimator.effect_, estimator.std_error_, result.simulations, alpha)
    else:
        old = old_dummy(estimator.effect_, result.simulations, alpha)
    return bool(result.passed), old


def rate(fails: list[bool]) -> dict:
    k, n = int(np.sum(fails)), len(fails)
    p = k / n
    return {"fails": k, "n": n, "rate": p, "mc_se": float(np.sqrt(max(p * (1 - p), 1e-12) / n))}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=400, help="data sets per cell at the true null")
    parser.add_argument("--power-reps", type=int, default=100, help="data sets per broken-estimator cell")
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--num-simulations", type=int, default=100)
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--out", default=None, help="write the rates as JSON here")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    cells: dict[str, dict[str, list[bool]]] = {}

    def record(label, refuter_name, passed, old):
        cell = cells.setdefault(f"{label} | {refuter_name}", {"new": [], "old": []})
        cell["new"].append(not passed)
        cell["old"].append(not old)

    broken = broken_estimators()
    regression_se = []
    for rep in range(max(args.reps, args.power_reps)):
        data = product_data(args.n, 10_000 + rep, 0.0)
        for name in ("psm", "ipw", "ps_stratification") if rep < args.reps else ():
            for refuter_name in ("placebo", "dummy_outcome"):
                passed, old = run_cell(
                    make_estimator(name, rep), data, refuter_name, args.num_simulations, args.alpha, rep
                )
                record(f"true null, {name}", refuter_name, passed, old)
        if rep < args.power_reps:
            regression_se.append(make_estimator("regression", rep).fit(data).std_error_)
            for label, cls in broken.items():
                for refuter_name in ("placebo", "dummy_outcome"):
                    passed, old = run_cell(cls(), data, refuter_name, args.num_simulations, args.alpha, rep)
                    record(f"broken: {label}", refuter_name, passed, old)
    summary = {
        "settings": vars(args),
        "cpu_seconds": time.process_time(),
        "wall_seconds": time.perf_counter() - started,
        "regression_se_mean": float(np.mean(regression_se)) if regression_se else None,
        "cells": {k: {"new": rate(v["new"]), "old": rate(v["old"])} for k, v in cells.items()},
    }
    print("| cell | refuter | failed (new rule) | failed (old rule) | data sets |")
    print("| --- | --- | ---: | ---: | ---: |")
    for key, value in summary["cells"].items():
        label, refuter_name = key.split(" | ")
        new, old = value["new"], value["old"]
        print(
            f"| {label} | {refuter_name} | {new['rate']:.1%} ± {new['mc_se']:.1%} | "
            f"{old['rate']:.1%} ± {old['mc_se']:.1%} | {new['n']} |"
        )
    if regression_se:
        print(f"\nmean SE of the regression adjustment (the bias grid's scale): {np.mean(regression_se):.3f}")
    print(f"\n{summary['cpu_seconds']:.0f} CPU-s, {summary['wall_seconds']:.0f} s wall")
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(summary, fh, indent=1)
    return summary


if __name__ == "__main__":
    main()
