"""The local pool against joblib's own backends on the seed pipeline of ``bench_vs_dowhy.py``.

Issue 15 asks whether joblib's loky backend (or Ray's joblib backend) runs the refuter simulations
within 10% of the home-made pool (:class:`causal_cli.runtime.local.LocalProcessExecutor`: the main
process works alongside ``n_jobs - 1`` workers, the data go once through shared memory). Each
measurement is a fresh process running ``pipeline.run`` on the ``bench_vs_dowhy.py`` config (psm,
placebo + random common cause + data subset, ``--sims`` each) with one executor; modes alternate
``--repeats`` times so they see the same machine load. Reported: the refuters' wall time (sum of the
three refute stages; the bootstrap-free psm fit is not part of it), its median per mode and the
ratio to the pool, and whether every simulation equals the pool's.

The joblib executors here hand ``Parallel`` chunks of simulations (``CHUNKS_PER_PROCESS`` per
process, the same per-simulation streams); joblib memory-maps the large arrays itself.

    python benchmarks/bench_executors.py [--sizes 10000,100000] [--sims 100] [--repeats 3] [--modes pool,loky,ray]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

RESULT_PREFIX = "BENCH_EXECUTORS "
CHUNKS_PER_PROCESS = 4


class JoblibExecutor:
    """Simulations through ``joblib.Parallel`` with ``backend`` (loky, or ray after ``register_ray``)."""

    def __init__(self, backend: str, n_jobs: int = -1):
        self.backend, self.n_jobs = backend, n_jobs

    def run(self, modification, estimator, data, streams, progress=None, label="simulations"):
        import numpy as np
        from joblib import Parallel, delayed

        from causal_cli.runtime.workers import resolve_n_jobs
        from causal_cli.simulate import simulate_chunk

        total = len(streams)
        processes = resolve_n_jobs(self.n_jobs)
        size = max(1, math.ceil(total / (CHUNKS_PER_PROCESS * processes)))
        chunks = [range(s, min(s + size, total)) for s in range(0, total, size)]
        compact = estimator.compact()
        parts = Parallel(n_jobs=processes, backend=self.backend, max_nbytes="1M", mmap_mode="r")(
            delayed(simulate_chunk)(modification, compact, data, c, streams[c.start : c.stop]) for c in chunks
        )
        return np.concatenate([np.asarray(p, dtype=float) for p in parts]) if parts else np.empty(0)


def bench_config(n: int, sims: int):
    path = Path(__file__).with_name("bench_vs_dowhy.py")
    spec = importlib.util.spec_from_file_location("bench_vs_dowhy", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    cfg, _ = module.compose_config(n, sims, -1)
    return cfg


def executor_for(mode: str):
    if mode == "pool":
        from causal_cli.runtime.local import LocalProcessExecutor

        return LocalProcessExecutor(-1)
    if mode == "ray":
        import ray
        from ray.util.joblib import register_ray

        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        register_ray()
    return JoblibExecutor(mode)


def worker(mode: str, n: int, sims: int) -> dict:
    from causal_cli import pipeline
    from causal_cli.validate import validate

    typed = validate(bench_config(n, sims))
    executor = executor_for(mode)
    started = time.perf_counter()
    result = pipeline.run(typed, executor=executor)
    wall = time.perf_counter() - started
    refute_s = sum(v for k, v in result.timings.items() if k.startswith("refute:"))
    sims_out = [list(map(float, r.simulations)) for r in result.refutations]
    return {"refute_s": refute_s, "pipeline_s": wall, "simulations": sims_out}


def run_worker(mode: str, n: int, sims: int) -> dict:
    argv = [sys.executable, __file__, "--worker", mode, "--n", str(n), "--sims", str(sims)]
    proc = subprocess.run(argv, capture_output=True, text=True)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT_PREFIX)), None)
    if proc.returncode != 0 or line is None:
        raise SystemExit(f"{mode} at n={n} failed (exit {proc.returncode}): {proc.stderr.strip()[-1500:]}")
    return json.loads(line[len(RESULT_PREFIX) :])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--sims", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--modes", default="pool,loky,ray")
    parser.add_argument("--worker")
    parser.add_argument("--n", type=int)
    args = parser.parse_args(argv)
    if args.worker:
        print(RESULT_PREFIX + json.dumps(worker(args.worker, args.n, args.sims)))
        return 0
    modes = args.modes.split(",")
    print(f"# refuter wall time by executor, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
    print(f"{'rows':>8}  {'mode':<5}  {'median s':>8}  {'vs pool':>7}  {'same sims':<9}  runs")
    for n in (int(s) for s in args.sizes.split(",")):
        runs: dict[str, list[dict]] = {m: [] for m in modes}
        for _ in range(args.repeats):
            for mode in modes:
                runs[mode].append(run_worker(mode, n, args.sims))
        pool = statistics.median(r["refute_s"] for r in runs[modes[0]])
        for mode in modes:
            times = [r["refute_s"] for r in runs[mode]]
            same = all(r["simulations"] == runs[modes[0]][0]["simulations"] for r in runs[mode])
            listed = ", ".join(f"{t:.2f}" for t in times)
            print(
                f"{n:>8}  {mode:<5}  {statistics.median(times):>8.2f}  "
                f"{statistics.median(times) / pool:>6.2f}x  {str(same):<9}  {listed}"
            )
    print(f"# load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
