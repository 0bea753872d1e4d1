"""Does the first refuter pay for cold worker processes? Our side of ``bench_vs_dowhy.py``, repeated.

Runs ``causal_cli.pipeline.run`` on the seed pipeline (psm, placebo / random common cause / data
subset, ``--sims`` simulations each; the config ``bench_vs_dowhy.py`` composes), each run in a fresh
process as ``bench_vs_dowhy.py --sizes N --no-cli`` runs our side, ``--repeats`` times per size, and
prints every run's stage times, wall and CPU seconds (user + sys of the process and the worker
processes it waited for) and the load average, then the medians. Placebo, the first refuter, should
cost about what the other two do (issue 18: it met worker processes that were still starting).

    python benchmarks/bench_coldstart.py                       # 10k rows, 5 runs
    python benchmarks/bench_coldstart.py --sizes 10000,100000 --repeats 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_vs_dowhy  # noqa: E402

STAGES = ("data", "identify", "estimate", *bench_vs_dowhy.REFUTERS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000", help="comma-separated row counts")
    parser.add_argument("--sims", type=int, default=100, help="simulations per refuter")
    parser.add_argument("--repeats", type=int, default=5, help="fresh processes per size")
    parser.add_argument("--n-jobs", type=int, default=-1, help="refuters.n_jobs (-1: all cores)")
    args = parser.parse_args(argv)
    args.stock_n_jobs = 1
    print(f"# python {sys.version.split()[0]}, {os.cpu_count()} cores, load {bench_vs_dowhy.load_average()}")
    header = ["n", "run", *STAGES, "pipeline", "cpu_s", "process", "load1"]
    print(" ".join(f"{h:>19}" if h in bench_vs_dowhy.REFUTERS else f"{h:>9}" for h in header))
    for n in (int(s) for s in args.sizes.split(",") if s):
        runs = []
        for r in range(args.repeats):
            out = bench_vs_dowhy.run_side("ours", n, args.sims, args)
            runs.append(out)
            _print_row(n, str(r + 1), out)
        median = {
            "stages": {s: statistics.median(o["stages"].get(s, 0.0) for o in runs) for s in STAGES},
            **{k: statistics.median(o[k] for o in runs) for k in ("pipeline_wall", "cpu_s", "process_wall")},
        }
        _print_row(n, "median", median)
    print(f"# load at end {bench_vs_dowhy.load_average()}")
    return 0


def _print_row(n: int, label: str, out: dict) -> None:
    cells = [f"{n:>9}", f"{label:>9}"]
    for stage in STAGES:
        width = 19 if stage in bench_vs_dowhy.REFUTERS else 9
        cells.append(f"{out['stages'].get(stage, 0.0):>{width}.3f}")
    cells += [f"{out['pipeline_wall']:>9.3f}", f"{out['cpu_s']:>9.2f}", f"{out['process_wall']:>9.2f}"]
    cells.append(f"{os.getloadavg()[0]:>9.2f}")
    print(" ".join(cells), flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
