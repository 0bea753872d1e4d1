"""Does the first refuter pay for cold worker processes? Our side of ``bench_vs_dowhy.py``, repeated.

Runs ``causal_cli.pipeline.run`` on the seed pipeline (psm, placebo / random common cause / data
subset, ``--sims`` simulations each; the config ``bench_vs_dowhy.py`` composes), each run in a fresh
process as ``bench_vs_dowhy.py --sizes N --no-cli`` runs our side, ``--repeats`` times per size, and
prints every run's stage times, wall and CPU seconds (user + sys of the process and the worker
processes it waited for) and the load average, then the medians. Placebo, the first refuter, should
cost about what the other two do (issue 18: it met worker processes that were still starting).

    python benchmarks/bench_coldstart.py                       # 10k rows, 5 runs
    python benchmarks/bench_coldstart.py --sizes 10000,100000 --repeats 3
    python benchmarks/bench_coldstart.py --timeline            # why: when the workers were ready

``--timeline`` runs one pipeline in this process with the local pool watched: when the warm-up was
asked for and when the worker processes had finished it, each refuter's start and end (seconds since
``pipeline.run`` started), and how many of its simulations the main process ran itself.
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
    parser.add_argument("--timeline", action="store_true", help="one in-process run, watched (see above)")
    args = parser.parse_args(argv)
    if args.timeline:
        return timeline(int(args.sizes.split(",")[0]), args.sims, args.n_jobs)
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


def timeline(n: int, sims: int, n_jobs: int) -> int:
    """One run in this process, its worker pool watched (the pool's functions wrapped, nothing else)."""
    import time

    from causal_cli import pipeline
    from causal_cli.runtime import local, workers
    from causal_cli.validate import validate

    events: list[str] = []
    started = [time.perf_counter()]

    def note(what: str) -> None:
        events.append(f"{time.perf_counter() - started[0]:7.3f} s  {what}")

    real_pool, real_run, real_await = workers.pool, local._run_parallel, local._await_claimed

    class Watched:
        def __init__(self, executor):
            self.executor = executor

        def submit(self, fn, *args):
            future = self.executor.submit(fn, *args)
            if fn is workers._warm_up:
                note("warm-up asked of a worker")
                future.add_done_callback(lambda _: note("a worker finished its warm-up (ready)"))
            return future

    def run_parallel(modification, *args):
        note(f"{type(modification).__name__}: parallel simulations start")
        out = real_run(modification, *args)
        note(f"{type(modification).__name__}: end")
        return out

    def await_claimed(waiting, mine, collect):
        note(f"  main process ran {int(mine.sum())} of {len(mine)} itself")
        return real_await(waiting, mine, collect)

    workers.pool = lambda count: Watched(real_pool(count))
    local._run_parallel, local._await_claimed = run_parallel, await_claimed
    typed = validate(bench_vs_dowhy.compose_config(n, sims, n_jobs)[0])
    cpu = time.process_time()
    started[0] = time.perf_counter()
    result = pipeline.run(typed)
    note(f"pipeline end (main process CPU {time.process_time() - cpu:.2f} s)")
    print(f"# n={n}, {sims} simulations per refuter, load {bench_vs_dowhy.load_average()}")
    print("\n".join(events))
    print("timings:", result.timings)
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
