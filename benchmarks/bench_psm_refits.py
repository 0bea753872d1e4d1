"""CPU cost of one PSM refit as the refuters pay it, with and without the bias adjustment, in one command.

The data are the seed pipeline's (``product_growth``, confounding strong, seed 0; adjustment set
``account_age, activity``), laid out as the pipeline lays them out. Each refuter's modification
(placebo: permuted treatment; random common cause: an extra normal covariate; data subset: 80% of the
rows) is drawn for ``--sims`` seeds beforehand; then ``estimator.estimate`` (what a simulation calls:
a fresh clone, warm-started, point estimate only) is timed on them, best of ``--repeat``, in CPU seconds
(``time.process_time``). Also the full ``fit`` (estimate + analytic SE, the estimate stage).

``--pipeline``: instead, our side of ``benchmarks/bench_vs_dowhy.py`` alone (the seed pipeline in a
subprocess, refuters on all cores, ``--pipeline-sims`` simulations per refuter), ``--repeat`` runs per
size: the stage times (wall) of the estimate and each refuter, and the process's CPU seconds (its
worker processes included), median run by estimate + refuters wall, and every run's total.

    python benchmarks/bench_psm_refits.py                       # 10k and 100k rows
    python benchmarks/bench_psm_refits.py --sizes 1000000 --sims 5 --repeat 1
    python benchmarks/bench_psm_refits.py --pipeline --repeat 5  # our side of bench_vs_dowhy
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np


def seed_data(n: int):
    from causal_cli.data.synthetic import ProductGrowthDGP, ProductGrowthDGPConfig
    from causal_cli.estimators.base import EstimationData

    frame, _ = ProductGrowthDGP(ProductGrowthDGPConfig(n=n, seed=0, confounding="strong")).simulate(
        np.random.default_rng(np.random.SeedSequence(0))
    )
    columns = np.empty((3, n))
    columns[0] = 1.0
    columns[1] = frame["account_age"].to_numpy(dtype=float)
    columns[2] = frame["activity"].to_numpy(dtype=float)
    return EstimationData(
        t=frame["feature_used"].to_numpy(dtype=float),
        y=frame["spend"].to_numpy(dtype=float),
        X=columns[1:].T,
        _columns=columns,
        covariates=("account_age", "activity"),
    )


def modified(data, sims: int) -> dict[str, list]:
    from causal_cli.refuters.data_subset import DataSubsetRefuter
    from causal_cli.refuters.placebo import PlaceboRefuter
    from causal_cli.refuters.random_common_cause import RandomCommonCauseRefuter

    out = {}
    for refuter in (PlaceboRefuter(), RandomCommonCauseRefuter(), DataSubsetRefuter()):
        out[refuter.name] = [refuter.modify(data, np.random.default_rng(i)) for i in range(sims)]
    return out


def best_cpu(fn, repeat: int) -> float:
    best = np.inf
    for _ in range(repeat):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--sims", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pipeline", action="store_true", help="our side of bench_vs_dowhy.py instead")
    parser.add_argument("--pipeline-sims", type=int, default=100)
    args = parser.parse_args()
    if args.pipeline:
        pipeline(args)
        return

    from causal_cli.estimators.psm import PSMEstimator
    from causal_cli.numerics import one_blas_thread

    print(f"load average {os.getloadavg()[0]:.2f} (1 min); CPU ms, best of {args.repeat}")
    for n in (int(s) for s in args.sizes.split(",")):
        data = seed_data(n)
        inputs = modified(data, args.sims)
        for bias_adjust in (True, False):
            with one_blas_thread():
                fit_cpu = best_cpu(
                    lambda b=bias_adjust, d=data: PSMEstimator(bias_adjust=b).fit(d), args.repeat
                )
                fitted = PSMEstimator(bias_adjust=bias_adjust).fit(data).compact()
                row = [f"n={n:>9,} bias_adjust={str(bias_adjust):5s} fit {fit_cpu * 1000:8.1f}"]
                for name, datasets in inputs.items():
                    cpu = best_cpu(lambda ds=datasets, f=fitted: [f.estimate(d) for d in ds], args.repeat)
                    row.append(f"{name} {cpu / len(datasets) * 1000:7.2f}")
            print(" | ".join(row) + "  (ms per refit)")


def pipeline(args) -> None:
    """Our side of ``bench_vs_dowhy.py`` (its ``run_side``), ``--repeat`` times per size."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_vs_dowhy import REFUTERS, load_average, run_side

    side_args = argparse.Namespace(n_jobs=-1, stock_n_jobs=1)
    for n in (int(s) for s in args.sizes.split(",")):
        runs = []
        for _ in range(args.repeat):
            load = load_average()
            run = run_side("ours", n, args.pipeline_sims, side_args)
            run["work_s"] = sum(run["stages"][name] for name in ("estimate", *REFUTERS))
            run["load"] = load
            runs.append(run)
        runs.sort(key=lambda r: r["work_s"])
        mid = runs[len(runs) // 2]
        stages = " ".join(f"{name} {mid['stages'][name]:.3f}" for name in ("estimate", *REFUTERS))
        print(
            f"n={n:>9,}: estimate+refuters {mid['work_s']:.3f} s wall (median of {len(runs)}; {stages}); "
            f"process CPU {mid['cpu_s']:.2f} s, wall {mid['process_wall']:.2f} s, load {mid['load']}"
        )
        print(
            "   every run: "
            + ", ".join(
                f"{r['work_s']:.3f} s (CPU {r['cpu_s']:.2f})" for r in sorted(runs, key=lambda r: r["work_s"])
            )
        )


if __name__ == "__main__":
    main()
