"""Per-unit effects (CATE): our DR-, T- and X-learners against EconML's DRLearner and CausalForestDML.

Same simulated data (the heterogeneous DGP: the effect grows linearly with account age and activity,
strong confounding), same cross-fitting folds, comparable nuisance models (linear outcome models,
logistic propensity). PEHE = root mean squared error of the predicted effect against each unit's
simulated true effect; time = CPU seconds of the fit (ours: the whole heterogeneity stage, segments, BLP, GATES and Qini included) (``time.process_time``, single-threaded BLAS
recommended: ``OMP_NUM_THREADS=1``). Our learners predict out of fold; EconML's predict in sample.
EconML is a benchmark-only dependency: ``pip install 'causal-cli[benchmark]'``.

    OMP_NUM_THREADS=1 python benchmarks/hte_vs_econml.py [--reps 10] [--n 2000] [--trees 200]
"""

from __future__ import annotations

import argparse
import time
import warnings
from types import SimpleNamespace

import numpy as np
from omegaconf import OmegaConf

from causal_cli.data.dgps import HeterogeneousDGP, HeterogeneousDGPConfig
from causal_cli.estimators.base import EstimationData
from causal_cli.estimators.outcome import fold_ids, fold_rows
from causal_cli.heterogeneity import analysis
from causal_cli.schema import CateConfig

MODIFIERS = ["account_age", "activity"]
GRAPH = SimpleNamespace(treatment="feature_used", outcome="spend")


def ours(frame, truth, learner: str, seed: int):
    cfg = OmegaConf.create(
        {"cate": OmegaConf.structured(CateConfig(by=MODIFIERS, learner=learner, tree_depth=0)), "graph": {}}
    )
    data = EstimationData(
        t=frame["feature_used"].to_numpy(float),
        y=frame["spend"].to_numpy(float),
        X=frame[MODIFIERS].to_numpy(float),
        covariates=tuple(MODIFIERS),
    )
    return (
        analysis.analyze(cfg, frame, GRAPH, data, truth, np.random.SeedSequence([seed, 0xCA7E]))
        .units["cate"]
        .to_numpy()
    )


def econml_fits(frame, splits, trees: int, seed: int):
    from econml.dml import CausalForestDML
    from econml.dr import DRLearner
    from sklearn.linear_model import LinearRegression, LogisticRegression

    X = frame[MODIFIERS].to_numpy(float)
    t = frame["feature_used"].to_numpy()
    y = frame["spend"].to_numpy(float)
    out = {}
    clock = time.process_time()
    dr = DRLearner(
        model_propensity=LogisticRegression(),
        model_regression=LinearRegression(),
        model_final=LinearRegression(),
        cv=splits,
        random_state=seed,
    )
    dr.fit(y, t, X=X)
    out["econml DRLearner"] = (dr.effect(X), time.process_time() - clock)
    clock = time.process_time()
    forest = CausalForestDML(
        model_y=LinearRegression(),
        model_t=LogisticRegression(),
        discrete_treatment=True,
        cv=splits,
        n_estimators=trees,
        random_state=seed,
        n_jobs=1,
    )
    forest.fit(y, t, X=X)
    out["econml CausalForestDML"] = (forest.effect(X), time.process_time() - clock)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--trees", type=int, default=200)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    warm = HeterogeneousDGP(HeterogeneousDGPConfig(n=200, seed=99)).dataset()
    ours(warm.frame, warm.info["unit_effects"], "dr", 99)  # imports and first-call costs off the clock
    pehe: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    for seed in range(args.reps):
        dataset = HeterogeneousDGP(HeterogeneousDGPConfig(n=args.n, seed=seed)).dataset()
        frame, truth = dataset.frame, dataset.info["unit_effects"]
        t = frame["feature_used"].to_numpy(float)
        splits = fold_rows(fold_ids(t, 5, np.random.SeedSequence([seed, 0xCA7E])))
        fits = {}
        for learner in ("dr", "t", "x"):
            clock = time.process_time()
            tau = ours(frame, truth, learner, seed)
            fits[f"causal-cli {learner}-learner"] = (tau, time.process_time() - clock)
        fits.update(econml_fits(frame, splits, args.trees, seed))
        for name, (tau, seconds) in fits.items():
            pehe.setdefault(name, []).append(float(np.sqrt(np.mean((np.ravel(tau) - truth) ** 2))))
            cpu.setdefault(name, []).append(seconds)
    print(f"heterogeneous DGP, n={args.n}, {args.reps} data sets, 5 folds, linear nuisance models")
    print(f"{'method':<26} {'PEHE mean':>10} {'PEHE sd':>8} {'CPU s/fit':>10}")
    for name in pehe:
        print(
            f"{name:<26} {np.mean(pehe[name]):>10.3f} {np.std(pehe[name]):>8.3f} {np.mean(cpu[name]):>10.3f}"
        )


if __name__ == "__main__":
    main()
