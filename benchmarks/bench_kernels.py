"""The compiled kernels (causal_cli/estimators/kernels.py): what they cost to load and what they save.

Every number comes from fresh processes (CPU seconds = user + system of the process, ``time.process_time``):

``--compile``: with an empty temporary ``NUMBA_CACHE_DIR``, the first process imports numba and compiles
every kernel (cold); a second process finds the machine code in the cache (cached load). Then two
processes compile into one empty cache at once (both must succeed) and a third loads what they wrote.

``--sort``: the score sort at ``--sizes`` rows, numpy's ``_sorted`` against the radix kernel with 8, 11
and 16-bit digits (best of ``--repeat``, one process).

``--threshold``: per size, two fresh processes run the estimate stage's fit and ``--refits`` placebo refits
(what a worker does) with the kernels off and on (``kernels.MIN_ROWS`` forced), CPU from before the first
use of the kernels (so numba's import and the cached-code load are included) to the end; the net gain
over 300 refits follows from the per-refit difference and the one-off cost.

    python benchmarks/bench_kernels.py --compile
    python benchmarks/bench_kernels.py --sort --sizes 10000000
    python benchmarks/bench_kernels.py --threshold --sizes 100000,1000000 --refits 300,30
    python benchmarks/bench_kernels.py --stages --sizes 10000000 --repeat 2

``--stages``: one placebo refit at each size in one process, kernels off then on, single-threaded as in
a worker (``cores_busy``), its CPU and each stage's (cProfile on ``time.process_time``, cumulative: the
sort, the Newton fit, the queries (which include the sort), the ranges, and the bias-adjusted sums,
which are not the kernels').
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def child(code: str, env: dict | None = None) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **(env or {})},
    )
    return json.loads(out.stdout.splitlines()[-1])


LOAD = """
import json, time
cpu, wall = time.process_time(), time.perf_counter()
import numba
imported = time.process_time() - cpu
from causal_cli.estimators import kernels
kernels.warm_up()
print(json.dumps({"import_cpu": imported, "cpu": time.process_time() - cpu, "wall": time.perf_counter() - wall}))
"""


def compile_times() -> None:
    with tempfile.TemporaryDirectory() as cache:
        env = {"NUMBA_CACHE_DIR": cache}
        cold = child(LOAD, env)
        cached = child(LOAD, env)
        files = sum(1 for _ in Path(cache).rglob("*.nbi"))
    with tempfile.TemporaryDirectory() as cache:  # two processes compiling into one empty cache at once
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        argv = [sys.executable, "-c", LOAD]
        pair = [subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, text=True) for _ in range(2)]
        together = [json.loads(p.communicate()[0].splitlines()[-1]) for p in pair]
        assert all(p.returncode == 0 for p in pair)
        after = child(LOAD, env)
    print(
        f"load average {os.getloadavg()[0]:.2f}; fresh processes, temporary NUMBA_CACHE_DIR ({files} index files)"
    )
    runs = [("cold (import + compile)", cold), ("cached (import + load)", cached)]
    runs += [(f"two at once, process {i + 1}", run) for i, run in enumerate(together)]
    runs.append(("then a third (cached)", after))
    for name, run in runs:
        print(
            f"  {name:28s}: CPU {run['cpu']:.2f} s (numba import {run['import_cpu']:.2f} s), wall {run['wall']:.2f} s"
        )


def sort_times(sizes: list[int], repeat: int) -> None:
    from causal_cli.estimators import kernels, matching

    kernels.warm_up()

    def numpy_sorted(score):  # matching._sorted with the kernels off
        min_rows, kernels.MIN_ROWS = kernels.MIN_ROWS, 1 << 62
        try:
            return matching._sorted(score)
        finally:
            kernels.MIN_ROWS = min_rows

    print(f"load average {os.getloadavg()[0]:.2f}; CPU ms, best of {repeat}")
    for n in sizes:
        score = 1 / (1 + np.exp(-np.random.default_rng(0).normal(0, 1.5, n)))
        reference = numpy_sorted(score)[0]
        row = [f"n={n:>11,}"]
        sorts = [("numpy", lambda x=score: numpy_sorted(x))]
        sorts += [(f"radix{b}", lambda x=score, b=b: kernels.sorted_score(x, b)) for b in (8, 11, 16)]
        for label, sort in sorts:
            best = np.inf
            for _ in range(repeat):
                cpu = time.process_time()
                order = sort()[0]
                best = min(best, time.process_time() - cpu)
            assert np.array_equal(order, reference)
            row.append(f"{label} {best * 1000:.0f}")
        print(" | ".join(row))


REFITS = """
import json, sys, time
sys.path.insert(0, {here!r})
import numpy as np
from bench_psm_refits import seed_data
from causal_cli.estimators import kernels
from causal_cli.estimators.psm import PSMEstimator
from causal_cli.numerics import one_blas_thread
from causal_cli.refuters.placebo import PlaceboRefuter
kernels.MIN_ROWS = {min_rows}
data = seed_data({n})
datasets = [PlaceboRefuter().modify(data, np.random.default_rng(i)) for i in range({refits})]
with one_blas_thread():
    cpu = time.process_time()
    fitted = PSMEstimator().fit(data).compact()
    fit_cpu = time.process_time() - cpu
    estimates = [fitted.estimate(d) for d in datasets]
    total = time.process_time() - cpu
print(json.dumps({{"fit": fit_cpu, "total": total, "numba": "numba" in sys.modules, "estimate": estimates[0]}}))
"""


def threshold(sizes: list[int], refits: list[int]) -> None:
    from causal_cli.estimators import kernels

    kernels.warm_up()  # the cache is filled: the processes below load it
    load = child(LOAD)
    print(
        f"load average {os.getloadavg()[0]:.2f}; one fresh process per row; numba import + cached load "
        f"{load['cpu']:.2f} s CPU"
    )
    for n, count in zip(sizes, refits):
        runs = {}
        for label, min_rows in (("numpy", 10**15), ("kernels", 1)):
            runs[label] = child(REFITS.format(here=str(HERE), min_rows=min_rows, n=n, refits=count))
        off, on = runs["numpy"], runs["kernels"]
        per_off = (off["total"] - off["fit"]) / count
        per_on = (on["total"] - on["fit"]) / count
        net = 300 * (per_off - per_on) + (off["fit"] - on["fit"])
        print(
            f"n={n:>10,} ({count} refits): numpy fit {off['fit']:.2f} s + {per_off * 1000:.1f} ms/refit, "
            f"total {off['total']:.2f} s | kernels fit {on['fit']:.2f} s (numba import and load included) + "
            f"{per_on * 1000:.1f} ms/refit, total {on['total']:.2f} s | net gain over fit + 300 refits "
            f"{net:+.2f} s CPU; estimates {off['estimate']!r} / {on['estimate']!r}"
        )


#: the functions whose CPU ``--stages`` reports (cProfile with ``time.process_time``, cumulative)
STAGES = {
    "sort": ("_sorted",),
    "newton": ("_newton",),
    "queries (with the sort)": ("_score_order_queries",),
    "ranges": ("match_ranges",),
    "bias_adjusted_sum": ("bias_adjusted_sum",),
}


def stages(sizes: list[int], repeat: int) -> None:
    """One placebo refit per size, kernels off then on, in one process: its CPU and that of each stage."""
    import cProfile
    import pstats

    sys.path.insert(0, str(HERE))
    from bench_psm_refits import seed_data

    from causal_cli.estimators import kernels
    from causal_cli.estimators.psm import PSMEstimator
    from causal_cli.numerics import cores_busy, one_blas_thread
    from causal_cli.refuters.placebo import PlaceboRefuter

    kernels.warm_up()
    print(
        f"load average {os.getloadavg()[0]:.2f}; CPU s of one placebo refit (best of {repeat}), cumulative per stage"
    )
    for n in sizes:
        data = seed_data(n)
        placebo = PlaceboRefuter().modify(data, np.random.default_rng(1))
        fitted = PSMEstimator().fit(data).compact()
        with one_blas_thread(), cores_busy():  # as in a worker: one thread, so the profile sees every stage
            for label, min_rows in (("numpy", 1 << 62), ("kernels", 1)):
                kernels.MIN_ROWS = min_rows
                best, profile = np.inf, None
                for _ in range(repeat):
                    profiler = cProfile.Profile(time.process_time)
                    cpu = time.process_time()
                    profiler.runcall(fitted.estimate, placebo)
                    if time.process_time() - cpu < best:
                        best, profile = time.process_time() - cpu, pstats.Stats(profiler).stats
                cumulative = {
                    stage: sum(v[3] for (_, _, name), v in profile.items() if name in names)
                    for stage, names in STAGES.items()
                }
                parts = ", ".join(f"{stage} {seconds:.3f}" for stage, seconds in cumulative.items())
                print(f"n={n:>11,} {label:8s}: refit {best:.3f} s ({parts})")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--sort", action="store_true")
    parser.add_argument("--threshold", action="store_true")
    parser.add_argument("--stages", action="store_true", help="one refit's CPU per stage, kernels off/on")
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--refits", default="300,30")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.compile:
        compile_times()
    if args.sort:
        sort_times(sizes, args.repeat)
    if args.threshold:
        threshold(sizes, [int(r) for r in args.refits.split(",")])
    if args.stages:
        stages(sizes, args.repeat)


if __name__ == "__main__":
    main()
