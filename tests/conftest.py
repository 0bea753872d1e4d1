"""Shared fixtures: a real Hydra compose (global state cleared), ``causal`` in process, and the installed command."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from causal_cli.schema import register_configs
from causal_cli.task import VERSION_BASE, conf_dir

REPO = Path(__file__).resolve().parents[1]
#: fast settings for end-to-end tests: few simulations, in-process refuters
FAST = [
    "refuters.placebo.num_simulations=20",
    "refuters.random_common_cause.num_simulations=10",
    "refuters.n_jobs=1",
]


@pytest.fixture
def compose_cfg():
    """``compose_cfg([...overrides])`` -> the composed DictConfig, as ``causal run`` would see it."""
    register_configs()

    def _compose(overrides=(), config_name="config"):
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(conf_dir()), version_base=VERSION_BASE):
            return compose(config_name=config_name, overrides=list(overrides), return_hydra_config=False)

    yield _compose
    GlobalHydra.instance().clear()


def causal_executable() -> list[str]:
    exe = shutil.which("causal", path=str(Path(sys.executable).parent)) or shutil.which("causal")
    return [exe] if exe else [sys.executable, "-m", "causal_cli.cli"]


def _with_out_dir(args, out_dir) -> list[str]:
    """``causal run`` arguments with the run (or sweep) folder under the test's ``tmp_path`` unless given."""
    argv = list(args)
    if argv and argv[0] == "run" and not any(a.startswith("hydra.run.dir") for a in argv):
        if "-m" not in argv and "--multirun" not in argv:
            argv.append(f"hydra.run.dir={out_dir}")
        elif not any(a.startswith("hydra.sweep.dir") for a in argv):
            argv.append(f"hydra.sweep.dir={out_dir}")
    return argv


def run_in_process(argv: list[str], cwd, env: dict | None = None) -> subprocess.CompletedProcess:
    """``causal ARGV`` through ``cli.main`` in this process: stdout, stderr and the exit status captured.

    The working folder and environment are set for the call and restored after it, and Hydra's global
    state is cleared, so a test sees what a fresh process would print and return.
    """
    import contextlib
    import io
    import traceback

    from causal_cli import cli
    from causal_cli.report import console

    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    out, err = io.StringIO(), io.StringIO()
    try:
        os.environ.update({"COLUMNS": "120", **(env or {})})
        os.chdir(cwd)
        console._console = None  # its width follows COLUMNS, as in a new process
        GlobalHydra.instance().clear()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = cli.main(argv)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            except Exception:  # --debug re-raises: a process would print the traceback and exit 1
                traceback.print_exc()
                code = 1
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        GlobalHydra.instance().clear()
        console._console = None
    return subprocess.CompletedProcess(["causal", *argv], code, out.getvalue(), err.getvalue())


@pytest.fixture
def run_causal(tmp_path):
    """Run ``causal`` in this process from ``tmp_path`` (see :func:`run_in_process`).

    ``run_causal(*args)`` -> (CompletedProcess, run_dir). Run folders go to ``tmp_path/out``. Tests that
    need a real process (signals, the installed command, start-up) use :func:`run_causal_process`.
    """

    def _run(*args, cwd=None, timeout=None, env=None, out=None):
        out_dir = out or tmp_path / "out"
        return run_in_process(_with_out_dir(args, out_dir), cwd or tmp_path, env), out_dir

    return _run


@pytest.fixture
def run_causal_process(tmp_path):
    """Run the installed ``causal`` command in a subprocess from ``tmp_path``.

    ``run_causal_process(*args)`` -> (CompletedProcess, run_dir or None). Run folders go to ``tmp_path/out``.
    """

    def _run(*args, cwd=None, timeout=300, env=None, out=None):
        out_dir = out or tmp_path / "out"
        full_env = {**os.environ, "COLUMNS": "120", **(env or {})}
        proc = subprocess.run(
            causal_executable() + _with_out_dir(args, out_dir),
            cwd=cwd or tmp_path,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=full_env,
        )
        return proc, out_dir

    return _run


def read_results(run_dir: Path) -> dict:
    return json.loads((Path(run_dir) / "results.json").read_text())


def pytest_terminal_summary(terminalreporter):
    """The hostile-input counts table (tests/test_hostile_inputs.py), also when run under xdist."""
    for report in terminalreporter.stats.get("passed", []) + terminalreporter.stats.get("failed", []):
        for name, value in getattr(report, "user_properties", []):
            if name == "hostile_counts":
                terminalreporter.write_sep("=", "hostile inputs (issue #17)")
                terminalreporter.write_line(str(value))
