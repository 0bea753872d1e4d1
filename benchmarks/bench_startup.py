"""Start-up costs of the ``causal`` command, and the check that light commands stay light.

Wall-clock times, each a fresh process: ``causal --help``, ``causal list`` (best of ``--repeats``), then
``python -c "import dowhy"`` and a default ``causal run`` (10k rows, the default refuters, output files
and plots included) measured in alternation ``--repeats`` times each, so that both see the same machine
load: their medians, and the ratio of the medians (issue 5's target: under 2x). ``--no-prefetch`` also
times the run with ``CAUSAL_PREFETCH=0`` (DoWhy imported in the run's own process, no helper). Then
checks, with ``python -X importtime``, that ``causal --help``, ``causal list`` and a config error
(``causal run dgp.n=abc``) never import DoWhy, scikit-learn or matplotlib. The load average is printed
before and after: on a busy machine the ratio is not meaningful.

    python benchmarks/bench_startup.py [--repeats 5] [--skip-run] [--no-prefetch]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: modules the light commands must never import
HEAVY_MODULES = ("dowhy", "sklearn", "matplotlib")
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


def timed(argv: list[str], i: int = 0, cwd: str | None = None, env: dict | None = None) -> float:
    started = time.perf_counter()
    proc = subprocess.run(
        [a.replace("{i}", str(i)) for a in argv],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
    )
    elapsed = time.perf_counter() - started
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
    parser.add_argument(
        "--no-prefetch", action="store_true", help="also time the run without its helper (CAUSAL_PREFETCH=0)"
    )
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
        runs = {"dowhy": [], "run": [], "run_off": []}
        for i in range(1 if args.skip_run else args.repeats):
            runs["dowhy"].append(timed([sys.executable, "-c", "import dowhy"], cwd=tmp))
            if args.skip_run:
                break
            runs["run"].append(timed([*causal, "run", f"hydra.run.dir={tmp}/run{i}"], cwd=tmp))
            if args.no_prefetch:
                off = [*causal, "run", f"hydra.run.dir={tmp}/off{i}"]
                runs["run_off"].append(timed(off, cwd=tmp, env={"CAUSAL_PREFETCH": "0"}))
        import_dowhy = statistics.median(runs["dowhy"])
        rows.append(('python -c "import dowhy"', import_dowhy, "median", spread(runs["dowhy"])))
        for key, label in (
            ("run", "causal run (default, 10k rows)"),
            ("run_off", "  the same, CAUSAL_PREFETCH=0"),
        ):
            if runs[key]:
                run = statistics.median(runs[key])
                target = f"{run / import_dowhy:.2f}x import dowhy (target < 2x); {spread(runs[key])}"
                rows.append((label, run, "median", target))
        width = max(len(label) for label in [r[0] for r in rows] + [c[0] for c in LIGHT_COMMANDS])
        print(f"{'command':<{width}}  {'wall s':>7}  {'of':<6}  target / notes")
        for label, seconds, kind, target in rows:
            print(f"{label:<{width}}  {seconds:>7.3f}  {kind:<6}  {target}")
        print(f"load average after the timings: {load_average()}")
        print("\nheavy imports (must be none):")
        failed = False
        for label, cmd_args in LIGHT_COMMANDS:
            heavy = heavy_imports(cmd_args, tmp)
            failed |= bool(heavy)
            print(f"  {label:<{width}}  {', '.join(heavy) if heavy else 'none'}")
    return 1 if failed else 0


def spread(values: list[float]) -> str:
    return f"{len(values)} runs, {min(values):.2f}-{max(values):.2f} s"


if __name__ == "__main__":
    sys.exit(main())
