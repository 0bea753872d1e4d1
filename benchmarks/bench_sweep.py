"""A lean sweep: per-job overhead of the basic launcher and the accuracy of the printed ETA, in one command.

Runs one job alone (``causal run dgp.n=2000 refuters=[]``) and then the sweep
``causal run -m dgp.seed=range(N) dgp.n=2000 refuters=[]`` (``--jobs`` jobs of ``--n`` rows, refuters off),
both as subprocesses of this script, and reports:

- the single job: wall and CPU of the whole command, and the time it spent in its job (its
  ``results.json``: ``runtime_s``, from claiming the folder to the tables, plus ``timings.report``, the
  report and its pictures written after);
- the sweep: total wall and CPU, per job (total / N), and the jobs' own time measured the same way;
- the per-job overhead, ``(sweep wall - N x job) / N`` with ``job`` the mean own time of the sweep's jobs
  (the sweep's time outside its jobs, start-up included, per job; the single job's own time also pays
  first-use imports that the sweep pays once), and the same for the jobs after the first (steady state);
  target under 0.2 s;
- after each job, the ETA the progress line printed against the real remaining time (the sweep's end minus
  the moment the line appeared): the worst ratio from the second job on; target within 2x.

``--json FILE`` keeps the numbers; ``--compare BEFORE.json`` prints them next to an earlier run's (before/after).
Report the machine load printed on the first line with the numbers: on a loaded machine wall times inflate.

    python benchmarks/bench_sweep.py                                   # 50 jobs of 2k rows
    python benchmarks/bench_sweep.py --json after.json --compare before.json
    python benchmarks/bench_sweep.py --jobs 10                         # a quicker look
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import statistics
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


def children_cpu() -> float:
    times = os.times()
    return times.children_user + times.children_system


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
    cpu_before, started = children_cpu(), time.perf_counter()
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
    wall, cpu = time.perf_counter() - started, children_cpu() - cpu_before
    if proc.returncode != 0:
        raise SystemExit(f"the sweep failed (exit {proc.returncode})")
    for line in lines:
        line["remaining"] = wall - line["at"]
    jobs_s = [job_seconds(p) for p in sorted(folder.glob("*/results.json"), key=_num)]
    return {"argv": argv, "wall_s": wall, "cpu_s": cpu, "progress": lines, "jobs_s": jobs_s}


def _num(path: Path) -> int:
    return int(path.parent.name.split("_", 1)[0])


def job_seconds(results: Path) -> float:
    """A job's own time: ``runtime_s`` (claim to results) plus its report (``timings.report``, written after)."""
    record = json.loads(results.read_text())
    return float(record["runtime_s"]) + float((record.get("timings") or {}).get("report") or 0.0)


def one_job(n: int, folder: Path) -> dict:
    argv = [
        *causal_command(),
        "run",
        f"dgp.n={n}",
        "refuters=[]",
        "report.console=false",
        f"hydra.run.dir={folder}",
    ]
    cpu_before, started = children_cpu(), time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall, cpu = time.perf_counter() - started, children_cpu() - cpu_before
    job = job_seconds(folder / "results.json")
    return {"argv": argv, "wall_s": wall, "cpu_s": cpu, "job_s": job}


def composition_cpu(n: int, repeats: int = 20) -> dict:
    """CPU ms of one job's composition (in this process): Hydra's stock loader, and from a kept merge
    (causal_cli.composition); a job composed twice before (batch check, launch), once after."""
    from hydra import version
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra._internal.utils import create_automatic_config_search_path
    from hydra.types import RunMode

    from causal_cli.composition import LeanConfigLoader
    from causal_cli.schema import register_configs
    from causal_cli.task import VERSION_BASE, conf_dir

    register_configs()
    version.setbase(VERSION_BASE)
    search_path = create_automatic_config_search_path(None, None, str(conf_dir()))
    overrides = [f"dgp.n={n}", "refuters=[]", "report.console=false"]
    out = {}
    for name, loader in (("stock", ConfigLoaderImpl(search_path)), ("kept", LeanConfigLoader(search_path))):
        loader.load_configuration("config", overrides, RunMode.RUN)  # the first: reads the files
        started = time.process_time()
        for seed in range(repeats):
            loader.load_configuration("config", [*overrides, f"dgp.seed={seed}"], RunMode.RUN)
        out[f"compose_{name}_cpu_ms"] = (time.process_time() - started) / repeats * 1000
    return out


def summarize(single: dict, sweep: dict, jobs: int) -> dict:
    """The headline numbers of one measurement (also what ``--compare`` reads back)."""
    progress, own = sweep["progress"], sweep["jobs_s"]
    job = statistics.fmean(own)
    first_end = progress[0]["at"] if progress else float("nan")
    later = (sweep["wall_s"] - first_end) / max(jobs - 1, 1)
    later_own = statistics.fmean(own[1:]) if len(own) > 1 else float("nan")
    ratios = [
        line["eta"] / line["remaining"]
        for line in progress[1:]
        if line["eta"] is not None and line["remaining"] >= 5 and line["done"] < jobs
    ]
    worst = max(ratios, key=lambda r: max(r, 1 / r) if r > 0 else float("inf"), default=float("nan"))
    return {
        "single_wall_s": single["wall_s"],
        "single_cpu_s": single["cpu_s"],
        "single_job_s": single["job_s"],
        "sweep_wall_s": sweep["wall_s"],
        "sweep_cpu_s": sweep["cpu_s"],
        "per_job_wall_s": sweep["wall_s"] / jobs,
        "per_job_cpu_s": sweep["cpu_s"] / jobs,
        "job_s": job,
        "overhead_s": (sweep["wall_s"] - jobs * job) / jobs,
        "first_end_s": first_end,
        "later_job_wall_s": later,
        "later_job_own_s": later_own,
        "later_overhead_s": later - later_own,
        "eta_worst_ratio": worst,
    }


ROWS = [
    ("one `causal run` alone, wall", "single_wall_s"),
    ("  its CPU (user+sys)", "single_cpu_s"),
    ("  in its job (runtime_s + timings.report)", "single_job_s"),
    ("sweep total, wall", "sweep_wall_s"),
    ("  its CPU (user+sys)", "sweep_cpu_s"),
    ("per job: sweep wall / N", "per_job_wall_s"),
    ("per job: sweep CPU / N", "per_job_cpu_s"),
    ("a sweep job in its job (mean, same way)", "job_s"),
    ("OVERHEAD per job (sweep - N x job) / N", "overhead_s"),
    ("to the first job's end (imports, first compose)", "first_end_s"),
    ("each later job, wall", "later_job_wall_s"),
    ("  of which in its job", "later_job_own_s"),
    ("  launcher overhead per later job", "later_overhead_s"),
    ("ETA / real remaining, worst from job 2 (x)", "eta_worst_ratio"),
    ("a job's composition, Hydra's loader (ms CPU)", "compose_stock_cpu_ms"),
    ("a job's composition, from a kept merge (ms CPU)", "compose_kept_cpu_ms"),
]


def print_table(numbers: dict, before: dict | None) -> None:
    head = f"{'':50s} {'before':>9s} {'after':>9s}" if before else f"{'':50s} {'value':>9s}"
    print(head)
    for label, key in ROWS:
        if key not in numbers:  # composition_cpu needs this checkout's causal_cli.composition
            continue
        unit = {"eta_worst_ratio": "x"}.get(key, "ms" if key.endswith("_ms") else "s")
        old = f"{before[key]:9.3f}" if before and key in before else ""
        print(
            f"{label:50s} {old:>9s} {numbers[key]:9.3f} {unit}"
            if before
            else f"{label:50s} {numbers[key]:9.3f} {unit}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--json", help="also write the measurements to this JSON file")
    parser.add_argument(
        "--compare", help="a JSON file written by --json earlier: print its numbers beside these"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        load = load_average()
        single = one_job(args.n, Path(tmp) / "single")
        sweep = run_sweep(args.jobs, args.n, Path(tmp) / "sweep")
        load_end = load_average()
    numbers = summarize(single, sweep, args.jobs)
    with contextlib.suppress(ImportError):  # a checkout from before causal_cli.composition: not measured
        numbers.update(composition_cpu(args.n))
    before = json.loads(Path(args.compare).read_text())["numbers"] if args.compare else None
    print(f"# sweep of {args.jobs} jobs x {args.n:,} rows, refuters off; load {load} -> {load_end}")
    print_table(numbers, before)
    print("target: overhead < 0.2 s per job; ETA within 2x from the second job on")
    progress = sweep["progress"]
    for line in progress[:3] + progress[len(progress) // 2 : len(progress) // 2 + 1]:
        eta = "-" if line["eta"] is None else f"{line['eta']} s"
        print(f"  after job {line['done']:3d}: eta {eta}, real remaining {line['remaining']:.1f} s")
    if args.json:
        record = {"numbers": numbers, "single": single, "sweep": sweep, "load": [load, load_end]}
        Path(args.json).write_text(json.dumps({"jobs": args.jobs, "n": args.n, **record}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
