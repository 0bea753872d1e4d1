"""Monte Carlo validation of the heterogeneity stage (issue #14), in-process on simulated data.

Three studies over ``--reps`` data sets each (cheap nuisance models: OLS outcome models per arm and
the built-in penalised logistic propensity model, 5-fold cross-fitting; ``--n`` rows per data set):

- coverage: the heterogeneous DGP (effect grows with account age and activity); share of segment
  95% CIs (4 quartile segments x 2 modifiers) covering the segment's true mean effect, and bias.
- null: product_growth with heterogeneity 0 (one effect for everyone); rejection rates at 5% of the BLP
  joint test, the per-modifier segment tests and GATES top-minus-bottom ("no invented gradient").
- learners: PEHE (root mean squared CATE error) of the DR-, T- and X-learners on the heterogeneous DGP.

    python benchmarks/hte_validation.py [--reps 200] [--n 2000] [--seed 0]
"""

from __future__ import annotations

import argparse
import time
from types import SimpleNamespace

import numpy as np
from omegaconf import OmegaConf

from causal_cli.data.dgps import HeterogeneousDGP, HeterogeneousDGPConfig
from causal_cli.data.synthetic import ProductGrowthDGP, ProductGrowthDGPConfig
from causal_cli.estimators.base import EstimationData
from causal_cli.heterogeneity import analysis
from causal_cli.schema import CateConfig

MODIFIERS = ["account_age", "activity"]
GRAPH = SimpleNamespace(treatment="feature_used", outcome="spend")


def run_once(dgp, seed: int, learner: str = "dr"):
    dataset = dgp.dataset()
    frame, truth = dataset.frame, dataset.info["unit_effects"]
    cfg = OmegaConf.create(
        {"cate": OmegaConf.structured(CateConfig(by=MODIFIERS, learner=learner, tree_depth=0)), "graph": {}}
    )
    data = EstimationData(
        t=frame["feature_used"].to_numpy(float),
        y=frame["spend"].to_numpy(float),
        X=frame[MODIFIERS].to_numpy(float),
        covariates=tuple(MODIFIERS),
    )
    return analysis.analyze(cfg, frame, GRAPH, data, truth, np.random.SeedSequence([seed, 0xCA7E]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    started = time.process_time()

    covers, biases, pehe = [], [], {"dr": [], "t": [], "x": []}
    null_blp, null_seg, null_gates = [], [], []
    power_blp, power_gates, gates_diff, gates_true = [], [], [], []
    for r in range(args.reps):
        seed = args.seed * 100_000 + r
        het = HeterogeneousDGP(HeterogeneousDGPConfig(n=args.n, seed=seed))
        for learner in ("dr", "t", "x"):
            result = run_once(het, seed, learner)
            pehe[learner].append(result.truth["pehe"])
            if learner == "dr":
                rows = [row for table in result.segments for row in table["segments"]]
                covers += [row["covers"] for row in rows]
                biases += [row["bias"] for row in rows]
                power_blp.append(result.blp["test"]["p_value"] < 0.05)
                power_gates.append(result.gates["top_minus_bottom"]["p_value"] < 0.05)
                gates_diff.append(result.gates["top_minus_bottom"]["effect"])
                groups = result.gates["groups"]
                gates_true.append(groups[-1]["true_effect"] - groups[0]["true_effect"])
        null = run_once(ProductGrowthDGP(ProductGrowthDGPConfig(n=args.n, seed=seed)), seed)
        null_blp.append(null.blp["test"]["p_value"] < 0.05)
        null_seg += [table["test"]["p_value"] < 0.05 for table in null.segments]
        null_gates.append(null.gates["top_minus_bottom"]["p_value"] < 0.05)

    def share(xs):
        p = float(np.mean(xs))
        return f"{100 * p:.1f}% (+/- {100 * 1.96 * np.sqrt(p * (1 - p) / len(xs)):.1f}, {len(xs)} cases)"

    print(
        f"reps={args.reps} n={args.n} seed={args.seed}; nuisance: OLS per arm + penalised logistic, 5 folds"
    )
    print(
        f"segment 95% CI coverage (heterogeneous DGP): {share(covers)}; mean bias {np.mean(biases):+.3f}, mean |bias| {np.mean(np.abs(biases)):.3f}"
    )
    print(f"null (product_growth, heterogeneity 0) rejection at 5%: BLP joint test {share(null_blp)}")
    print(f"  segment equality tests {share(null_seg)}; GATES top-minus-bottom {share(null_gates)}")
    print(
        f"power (heterogeneous DGP) at 5%: BLP {share(power_blp)}; GATES top-minus-bottom {share(power_gates)}, "
        f"estimate {np.mean(gates_diff):.2f} vs true {np.mean(gates_true):.2f}"
    )
    for learner, values in pehe.items():
        print(
            f"PEHE {learner}-learner (OLS final model): mean {np.mean(values):.3f}, sd {np.std(values):.3f}"
        )
    print(f"CPU time {time.process_time() - started:.0f} s")


if __name__ == "__main__":
    main()
