"""Shared fixtures: a real Hydra compose (global state cleared) and the installed ``causal`` command."""

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


@pytest.fixture
def run_causal(tmp_path):
    """Run the installed ``causal`` command in a subprocess from ``tmp_path``.

    ``run_causal(*args)`` -> (CompletedProcess, run_dir or None). Run folders go to ``tmp_path/out``.
    """

    def _run(*args, cwd=None, timeout=300, env=None, out=None):
        out_dir = out or tmp_path / "out"
        argv = list(args)
        if argv and argv[0] == "run" and not any(a.startswith("hydra.run.dir") for a in argv):
            if "-m" not in argv and "--multirun" not in argv:
                argv.append(f"hydra.run.dir={out_dir}")
            elif not any(a.startswith("hydra.sweep.dir") for a in argv):
                argv.append(f"hydra.sweep.dir={out_dir}")
        full_env = {**os.environ, "COLUMNS": "120", **(env or {})}
        proc = subprocess.run(
            causal_executable() + argv,
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
