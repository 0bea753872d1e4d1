"""CPU cost of one PSM refit as the refuters pay it, with and without the bias adjustment, in one command.

The data are the seed pipeline's (``product_growth``, confounding strong, seed 0; adjustment set
``account_age, activity``), laid out as the pipeline lays them out. Each refuter's modification
(placebo: permuted treatment; random common cause: an extra normal covariate; data subset: 80% of the
rows) is drawn for ``--sims`` seeds beforehand; then ``estimator.estimate`` (what a simulation calls:
a fresh clone, warm-started, point estimate only) is timed on them, best of ``--repeat``, in CPU seconds
(``time.process_time``). Also the full ``fit`` (estimate + analytic SE, the estimate stage).

``--pipeline``: instead, our side of ``benchmarks/bench_vs_dowhy.py`` alone: the seed pipeline (its
config, composed the same way; refuters on all cores, ``--pipeline-sims`` simulations per refuter) in a
fresh process per run (so the workers start cold, as in the benchmark), ``--repeat`` runs per size:
the CPU seconds of ``pipeline.run`` (the main process and its worker processes, from ``/proc``), its
wall, and the stage times (wall) of the estimate and each refuter; the median run by CPU.

    python benchmarks/bench_psm_refits.py                       # 10k and 100k rows
    python benchmarks/bench_psm_refits.py --sizes 1000000 --sims 5 --repeat 1
    python benchmarks/bench_psm_refits.py --pipeline --repeat 5  # our side of bench_vs_dowhy
    python benchmarks/bench_psm_refits.py --fit-only --sizes 10000000  # the 10M estimate stage's fit
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
    parser.add_argument("--fit-only", action="store_true", help="only the default fit (for 10M rows)")
    parser.add_argument("--one-pipeline", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one_pipeline:
        one_pipeline(args.one_pipeline, args.pipeline_sims)
        return
    if args.pipeline:
        pipeline(args)
        return

    from causal_cli.estimators.psm import PSMEstimator
    from causal_cli.numerics import one_blas_thread

    print(f"load average {os.getloadavg()[0]:.2f} (1 min); CPU ms, best of {args.repeat}")
    for n in (int(s) for s in args.sizes.split(",")):
        data = seed_data(n)
        if args.fit_only:
            started, cpu = time.perf_counter(), time.process_time()
            fitted = PSMEstimator().fit(data)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - started
            print(
                f"n={n:>11,} fit (estimate + SE, default psm): CPU {cpu:.2f} s, wall {wall:.2f} s, "
                f"load {os.getloadavg()[0]:.2f}; effect {fitted.effect_!r} SE {fitted.std_error_!r}"
            )
            continue
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


def process_tree_cpu() -> float:
    """CPU seconds (user + system) of this process and its live child processes (the worker pool)."""
    ticks = os.sysconf("SC_CLK_TCK")
    usage = os.times()
    total = usage.user + usage.system
    for task in Path("/proc/self/task").glob("*/children"):
        for pid in task.read_text().split():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def one_pipeline(n: int, sims: int) -> None:
    """In a fresh process: the seed pipeline of bench_vs_dowhy.py, timed (CPU of this process and its
    workers around ``pipeline.run``, which starts them), printed as one JSON line."""
    import json

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_vs_dowhy import REFUTERS, compose_config

    from causal_cli import pipeline as causal_pipeline
    from causal_cli.validate import validate

    cfg, _ = compose_config(n, sims, -1)
    typed = validate(cfg)
    cpu, wall = process_tree_cpu(), time.perf_counter()
    result = causal_pipeline.run(typed)
    cpu, wall = process_tree_cpu() - cpu, time.perf_counter() - wall
    stages = {"estimate": result.timings["estimate"]}
    stages.update({name: result.timings[f"refute:{name}"] for name in REFUTERS})
    print(json.dumps({"cpu": cpu, "wall": wall, "stages": stages, "estimate": result.estimate}))


def pipeline(args) -> None:
    """:func:`one_pipeline` ``--repeat`` times per size, each in a fresh process (cold workers)."""
    import json
    import subprocess

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_vs_dowhy import REFUTERS, load_average

    for n in (int(s) for s in args.sizes.split(",")):
        runs = []
        for _ in range(args.repeat):
            load = load_average()
            argv = [
                sys.executable,
                __file__,
                "--one-pipeline",
                str(n),
                "--pipeline-sims",
                str(args.pipeline_sims),
            ]
            line = subprocess.run(argv, check=True, capture_output=True, text=True).stdout.splitlines()[-1]
            run = json.loads(line)
            run["work"] = sum(run["stages"][name] for name in ("estimate", *REFUTERS))
            run["load"] = load
            runs.append(run)
        runs.sort(key=lambda r: r["cpu"])
        mid = runs[len(runs) // 2]
        stages = " ".join(f"{name} {mid['stages'][name]:.3f}" for name in ("estimate", *REFUTERS))
        print(
            f"n={n:>9,}: pipeline.run CPU {mid['cpu']:.2f} s (main + workers; median of {len(runs)}), "
            f"wall {mid['wall']:.2f} s, estimate+refuters wall {mid['work']:.3f} s ({stages}); "
            f"load {mid['load']}; estimate {mid['estimate']!r}"
        )
        print("   every run CPU: " + ", ".join(f"{r['cpu']:.2f}" for r in runs))


if __name__ == "__main__":
    main()
