"""A lean sweep: per-job overhead of the basic launcher and the accuracy of the printed ETA, in one command.

Runs ``causal run -m dgp.seed=range(N) dgp.n=2000 refuters=[]`` (``--jobs`` jobs of ``--n`` rows, no
refuters) and, for comparison, one such job alone (``causal run``). Reports:

- the sweep's wall time per job, against the time each job spends in the pipeline (its ``results.json``
  timings, report included): the difference is the launcher's per-job overhead (composition, run folder,
  logging, callbacks); target under 0.2 s;
- the time to the first job's end (imports and the first composition, paid once);
- after each job, the ETA the progress line printed against the real remaining time (the sweep's end
  minus the moment the line appeared): the worst ratio from the second job on; target within 2x.

    python benchmarks/bench_sweep.py                 # 50 jobs of 2k rows
    python benchmarks/bench_sweep.py --jobs 10       # a quicker look
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROGRESS = re.compile(r"(\d+)/(\d+) jobs.*?(?:eta (\d+):(\d\d):(\d\d))?\s*$")


def causal_command() -> list[str]:
    exe = Path(sys.executable).with_name("causal")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "causal_cli.cli"]


def load_average() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def run_sweep(jobs: int, n: int, folder: Path) -> dict:
    """The sweep, with the moment each progress line appeared on stderr."""
    argv = [
        *causal_command(),
        "run",
        "-m",
        f"dgp.seed=range({jobs})",
        f"dgp.n={n}",
        "refuters=[]",
        "report.console=false",
        f"hydra.sweep.dir={folder}",
    ]
    started = time.perf_counter()
    cpu_before = os.times()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines = []
    for line in proc.stderr:
        match = PROGRESS.search(line)
        if match:
            eta = (
                None
                if match.group(3) is None
                else sum(int(g) * m for g, m in zip(match.group(3, 4, 5), (3600, 60, 1)))
            )
            lines.append({"done": int(match.group(1)), "at": time.perf_counter() - started, "eta": eta})
    proc.wait()
    wall = time.perf_counter() - started
    cpu_after = os.times()
    if proc.returncode != 0:
        raise SystemExit(f"the sweep failed (exit {proc.returncode})")
    for line in lines:
        line["remaining"] = wall - line["at"]
    cpu = (cpu_after.children_user - cpu_before.children_user) + (
        cpu_after.children_system - cpu_before.children_system
    )
    return {"argv": argv, "wall_s": wall, "cpu_s": cpu, "progress": lines}


def pipeline_seconds(folder: Path) -> list[float]:
    """Each job's own stages (``results.json`` timings: setup to report)."""
    out = []
    for results in sorted(folder.glob("*/results.json")):
        timings = json.loads(results.read_text()).get("timings") or {}
        out.append(sum(float(v) for v in timings.values()))
    return out


def one_job(n: int, folder: Path) -> float:
    argv = [
        *causal_command(),
        "run",
        f"dgp.n={n}",
        "refuters=[]",
        "report.console=false",
        f"hydra.run.dir={folder}",
    ]
    started = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--json", help="also write the measurements to this JSON file")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        load = load_average()
        single = one_job(args.n, Path(tmp) / "single")
        sweep = run_sweep(args.jobs, args.n, Path(tmp) / "sweep")
        stages = pipeline_seconds(Path(tmp) / "sweep")
        load_end = load_average()
    progress = sweep["progress"]
    first_end = progress[0]["at"] if progress else float("nan")
    rest = (sweep["wall_s"] - first_end) / max(args.jobs - 1, 1)
    inside = sum(stages[1:]) / max(len(stages) - 1, 1)
    ratios = [
        line["eta"] / line["remaining"]
        for line in progress[1:]
        if line["eta"] is not None and line["remaining"] >= 5 and line["done"] < args.jobs
    ]
    worst = max(ratios, key=lambda r: max(r, 1 / r) if r > 0 else float("inf"), default=float("nan"))
    print(f"# sweep of {args.jobs} jobs x {args.n:,} rows, refuters off; load {load} -> {load_end}")
    print(f"one `causal run` alone:            {single:6.2f} s wall")
    print(f"sweep:                             {sweep['wall_s']:6.2f} s wall, {sweep['cpu_s']:.2f} s CPU")
    print(f"to the first job's end:            {first_end:6.2f} s (imports, first composition)")
    print(f"each later job:                    {rest:6.3f} s wall, of which {inside:.3f} s in its own stages")
    print(f"per-job overhead of the launcher:  {rest - inside:6.3f} s (target < 0.2)")
    print(f"ETA / real remaining, 2nd job on:  worst {worst:.2f}x (target within 2x)")
    for line in progress[:3] + progress[len(progress) // 2 : len(progress) // 2 + 1]:
        eta = "-" if line["eta"] is None else f"{line['eta']} s"
        print(f"  after job {line['done']:3d}: eta {eta}, real remaining {line['remaining']:.1f} s")
    if args.json:
        Path(args.json).write_text(
            json.dumps({**sweep, "single_s": single, "stages": stages, "load": [load, load_end]}, indent=2)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
