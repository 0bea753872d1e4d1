"""Start-up costs of the ``causal`` command, and the check that light commands stay light.

Wall-clock times, each a fresh process: ``causal --help``, ``causal list`` (best of ``--repeats``), then
``python -c "import dowhy"``, a default ``causal run`` (10k rows, the default refuters, output files
and plots included) with an empty cache (a first run: it imports DoWhy and draws every picture), the
same run again with the cache a previous run filled (a repeat run: no DoWhy, the pictures copied from
the picture cache) and a run of the same graph with a new seed (new data: identification and graph.png
from the cache, the other pictures drawn), in alternation ``--repeats`` times each so that all see the
same machine load: their medians, each run's ratio to ``import dowhy`` (issue 18's targets: first run
<= 1.5x, repeat run <= 0.6x; the range over the pairs too) and the CPU time (user + sys of the process
and the worker processes it waited for). Then the stages of the last repeat run (``timings`` of its
results.json; what is outside the job: interpreter start-up, imports, config composition).
Then checks, with ``python -X importtime``, that ``causal --help``, ``causal list`` and a config error
(``causal run dgp.n=abc``) never import DoWhy, scikit-learn or matplotlib, and that a repeat run does
not import DoWhy, matplotlib or networkx. The load average is printed before and after: on a busy
machine the wall ratios are noisy (the CPU times less so).

    python benchmarks/bench_startup.py [--repeats 5] [--skip-run]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: modules the light commands must never import
HEAVY_MODULES = ("dowhy", "sklearn", "matplotlib", "numba")
#: commands that must stay light: (label, arguments)
LIGHT_COMMANDS = (
    ("causal --help", ["--help"]),
    ("causal list", ["list"]),
    ("causal run dgp.n=abc (config error)", ["run", "dgp.n=abc"]),
)


def causal_command() -> list[str]:
    """The installed ``causal`` console script, run by this interpreter (or ``-m causal_cli.cli``)."""
    script = Path(sys.executable).with_name("causal")
    return [sys.executable, str(script)] if script.exists() else [sys.executable, "-m", "causal_cli.cli"]


def timings(argv: list[str], repeats: int, cwd: str | None = None, env: dict | None = None) -> list[float]:
    """Wall times of ``repeats`` runs; ``{i}`` in an argument becomes the run number."""
    return [timed(argv, i, cwd, env) for i in range(repeats)]


#: CPU seconds (user + sys) of the last :func:`timed` command and the children it waited for
LAST_CPU: list[float] = [0.0]


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(argv: list[str], i: int = 0, cwd: str | None = None, env: dict | None = None) -> float:
    cpu = children_cpu()
    started = time.perf_counter()
    proc = subprocess.run(
        [a.replace("{i}", str(i)) for a in argv],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
    )
    elapsed = time.perf_counter() - started
    LAST_CPU[0] = children_cpu() - cpu
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed (exit {proc.returncode}): {proc.stderr.strip()[-500:]}")
    return elapsed


def load_average() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def imported_modules(args: list[str], cwd: str | None = None, command: list[str] | None = None):
    """Top-level packages a ``causal`` invocation (or ``command``) imports, per ``-X importtime``, and
    its exit code."""
    command = command or causal_command()
    proc = subprocess.run(
        [command[0], "-X", "importtime", *command[1:], *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    names = set()
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip()
            names.add(name.split(".")[0])
    return names, proc.returncode


def heavy_imports(args: list[str], cwd: str | None = None) -> list[str]:
    names, _ = imported_modules(args, cwd)
    return sorted(names & set(HEAVY_MODULES))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs per timing (default 5)")
    parser.add_argument("--skip-run", action="store_true", help="skip timing the default `causal run`")
    args = parser.parse_args(argv)
    causal = causal_command()
    print(
        f"# causal start-up, python {sys.version.split()[0]}, {os.cpu_count()} cores, load average {load_average()}"
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        rows.append(
            ("causal --help", min(timings([*causal, "--help"], args.repeats, tmp)), "best", "< 0.3 s")
        )
        rows.append(("causal list", min(timings([*causal, "list"], args.repeats, tmp)), "best", ""))
        runs, cpu = time_runs(causal, tmp, 1 if args.skip_run else args.repeats, args.skip_run)
        import_dowhy = statistics.median(runs["dowhy"])
        rows.append(
            (
                'python -c "import dowhy"',
                import_dowhy,
                "median",
                f"{spread(runs['dowhy'])}; {cpu_note(cpu['dowhy'])}",
            )
        )
        for key, label, target in RUN_KINDS:
            if runs[key]:
                run = statistics.median(runs[key])
                ratios = sorted(r / d for r, d in zip(runs[key], runs["dowhy"]))
                note = (
                    f"{run / import_dowhy:.2f}x import dowhy (target <= {target}x; pairs "
                    f"{ratios[0]:.2f}-{ratios[-1]:.2f}x); {spread(runs[key])}; {cpu_note(cpu[key], cpu['dowhy'])}"
                )
                rows.append((label, run, "median", note))
        width = max(len(label) for label in [r[0] for r in rows] + [c[0] for c in LIGHT_COMMANDS])
        print(f"{'command':<{width}}  {'wall s':>7}  {'of':<6}  target / notes")
        for label, seconds, kind, target in rows:
            print(f"{label:<{width}}  {seconds:>7.3f}  {kind:<6}  {target}")
        print(f"load average after the timings: {load_average()}")
        if runs["repeat"]:
            print_stages(Path(tmp) / f"repeat{len(runs['repeat']) - 1}", runs["repeat"][-1])
        print("\nheavy imports (must be none):")
        failed = False
        for label, cmd_args in LIGHT_COMMANDS:
            heavy = heavy_imports(cmd_args, tmp)
            failed |= bool(heavy)
            print(f"  {label:<{width}}  {', '.join(heavy) if heavy else 'none'}")
        if not args.skip_run:
            repeat = [*RUN_ARGS, f"hydra.run.dir={tmp}/imports"]
            os.environ["CAUSAL_CACHE_DIR"] = f"{tmp}/warm"
            names, _ = imported_modules(repeat, tmp)
            # the same study again: identification and every picture come from the cache
            cached = sorted(names & {"dowhy", "matplotlib", "networkx"})
            failed |= bool(cached)
            print(f"  {'repeat causal run (same study)':<{width}}  {', '.join(cached) if cached else 'none'}")
    return 1 if failed else 0


#: the timed run: the default study (10k rows, the default refuters, output files and plots included)
RUN_ARGS = ["run"]
#: (key, label, target ratio to ``import dowhy``)
RUN_KINDS = (
    ("first", "causal run, first (empty cache)", 1.5),
    ("repeat", "causal run, repeat (same run)", 0.6),
    ("reseeded", "causal run, same graph, new seed", 0.6),
)


def time_runs(causal: list[str], tmp: str, repeats: int, skip_run: bool):
    """``import dowhy``, a first run (its own empty cache folder), a repeat run (a cache folder a
    previous run filled) and a run of the same graph with a new seed (the same warm cache), in
    alternation so that all see the same machine load -> (wall seconds, CPU seconds) per kind."""
    runs: dict[str, list[float]] = {"dowhy": [], "first": [], "repeat": [], "reseeded": []}
    cpu: dict[str, list[float]] = {key: [] for key in runs}
    warm = {"CAUSAL_CACHE_DIR": f"{tmp}/warm"}
    if not skip_run:
        timed([*causal, *RUN_ARGS, f"hydra.run.dir={tmp}/warm_up"], cwd=tmp, env=warm)

    def record(key: str, argv: list[str], env: dict | None = None) -> None:
        runs[key].append(timed(argv, cwd=tmp, env=env))
        cpu[key].append(LAST_CPU[0])

    for i in range(repeats):
        record("dowhy", [sys.executable, "-c", "import dowhy"])
        if skip_run:
            break
        first = {"CAUSAL_CACHE_DIR": f"{tmp}/empty{i}"}
        record("first", [*causal, *RUN_ARGS, f"hydra.run.dir={tmp}/first{i}"], first)
        record("repeat", [*causal, *RUN_ARGS, f"hydra.run.dir={tmp}/repeat{i}"], warm)
        record("reseeded", [*causal, *RUN_ARGS, f"seed={101 + i}", f"hydra.run.dir={tmp}/reseeded{i}"], warm)
    return runs, cpu


def cpu_note(values: list[float], dowhy: list[float] | None = None) -> str:
    """The median CPU time (user + sys, workers included) and, for a run, its ratio to ``import dowhy``'s:
    steadier than the wall ratio on a busy machine (but a run's workers use a second core)."""
    if not values:
        return ""
    note = f"CPU {statistics.median(values):.2f} s (median user+sys"
    if dowhy:
        note += f", {statistics.median(values) / statistics.median(dowhy):.2f}x import dowhy's"
    return note + ")"


def print_stages(run_dir: Path, wall: float) -> None:
    """Where the last repeat run's wall time went: its analysis stages and the report (results.json
    ``timings``), and the rest of the process (start-up, imports, composition, the CSVs and summary, exit)."""
    record = json.loads((run_dir / "results.json").read_text(encoding="utf-8"))
    stages = dict(record.get("timings") or {})
    report = float(stages.pop("report", 0.0))
    analysis = float(record.get("runtime_s") or 0.0)  # claim, validate and the pipeline: before any output
    print(f"\nstages of the last repeat run ({wall:.3f} s wall):")
    for stage, seconds in stages.items():
        print(f"  {stage:<52} {seconds:>7.3f}")
    print(f"  {'= job before its outputs (claim, validate, stages)':<52} {analysis:>7.3f}")
    print(f"  {'report (pictures, report.html)':<52} {report:>7.3f}")
    print(f"  {'the rest (start, imports, compose, CSVs, exit)':<52} {wall - analysis - report:>7.3f}")


def spread(values: list[float]) -> str:
    return f"{len(values)} runs, {min(values):.2f}-{max(values):.2f} s"


if __name__ == "__main__":
    sys.exit(main())
