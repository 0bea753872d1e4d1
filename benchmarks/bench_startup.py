"""Start-up costs of the ``causal`` command, and the check that light commands stay light.

Times (best of ``--repeats`` wall-clock runs, each a fresh process): ``causal --help``, ``causal list``,
``python -c "import dowhy"`` and a default ``causal run`` (10k rows, the default refuters, output
files and plots included). Then checks, with ``python -X importtime``, that ``causal --help``,
``causal list`` and a config error (``causal run dgp.n=abc``) never import DoWhy, scikit-learn or
matplotlib. Targets (issue 5): ``--help`` under 0.3 s; the default run under twice ``import dowhy``.

    python benchmarks/bench_startup.py [--repeats 3] [--skip-run]
"""

from __future__ import annotations

import argparse
import os
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


def wall(argv: list[str], repeats: int, cwd: str | None = None) -> float:
    """Best wall time of ``repeats`` runs; ``{i}`` in an argument becomes the run number."""
    best = float("inf")
    for i in range(repeats):
        started = time.perf_counter()
        proc = subprocess.run(
            [a.replace("{i}", str(i)) for a in argv], cwd=cwd, capture_output=True, text=True
        )
        elapsed = time.perf_counter() - started
        if proc.returncode != 0:
            raise SystemExit(
                f"{' '.join(argv)} failed (exit {proc.returncode}): {proc.stderr.strip()[-500:]}"
            )
        best = min(best, elapsed)
    return best


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
    parser.add_argument("--repeats", type=int, default=3, help="runs per timing (the best is reported)")
    parser.add_argument("--skip-run", action="store_true", help="skip timing the default `causal run`")
    args = parser.parse_args(argv)
    causal = causal_command()
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"# causal start-up, python {sys.version.split()[0]}, {os.cpu_count()} cores, load average {load}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        rows.append(("causal --help", wall([*causal, "--help"], args.repeats, tmp), "< 0.3 s"))
        rows.append(("causal list", wall([*causal, "list"], args.repeats, tmp), ""))
        import_dowhy = wall([sys.executable, "-c", "import dowhy"], args.repeats, tmp)
        rows.append(('python -c "import dowhy"', import_dowhy, ""))
        if not args.skip_run:
            run = wall([*causal, "run", f"hydra.run.dir={tmp}/run{{i}}"], args.repeats, tmp)
            rows.append(
                ("causal run (default, 10k rows)", run, f"< 2x import dowhy: {run / import_dowhy:.2f}x")
            )
        width = max(len(label) for label in [r[0] for r in rows] + [c[0] for c in LIGHT_COMMANDS])
        print(f"{'command':<{width}}  {'wall s':>7}  target")
        for label, seconds, target in rows:
            print(f"{label:<{width}}  {seconds:>7.3f}  {target}")
        print("\nheavy imports (must be none):")
        failed = False
        for label, cmd_args in LIGHT_COMMANDS:
            heavy = heavy_imports(cmd_args, tmp)
            failed |= bool(heavy)
            print(f"  {label:<{width}}  {', '.join(heavy) if heavy else 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
