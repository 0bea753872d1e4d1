"""The prefetch helper of ``causal run`` (causal_cli/prefetch.py): same results as without it, same
one-line errors, and it never outlives the run, whatever happens to either process.

Real ``causal`` processes throughout; ``CAUSAL_PREFETCH=0`` runs the same command without the helper.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests import test_reliability as reliability
from tests.conftest import FAST, read_results

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc")

SMALL = ["dgp.n=2000", *FAST]
#: what differs between two runs of the same job: clocks, paths, the command line
VOLATILE = {"timings", "runtime_s", "started_at", "output_dir", "report_html", "provenance", "command"}


def start(*args, cwd, prefetch=True) -> subprocess.Popen:
    return reliability.start(*args, cwd=cwd, env={"CAUSAL_PREFETCH": "1" if prefetch else "0"})


def run(*args, cwd, prefetch=True) -> subprocess.CompletedProcess:
    proc = start(*args, cwd=cwd, prefetch=prefetch)
    stdout, stderr = proc.communicate(timeout=300)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_for_helper(proc: subprocess.Popen) -> int:
    """The helper's pid: the run's only child (refuters.n_jobs=1 starts no workers)."""
    deadline = time.monotonic() + 60  # a hang guard, not a speed assertion
    while time.monotonic() < deadline and proc.poll() is None:
        found = children(proc.pid)
        if found:
            return found[0]
        time.sleep(0.01)
    raise AssertionError(f"no helper process appeared: {proc.communicate()}")


def gone(pid: int, within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.02)
    return False


def stable(value):
    if isinstance(value, dict):
        return {k: stable(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [stable(v) for v in value]
    return value


#: ``causal`` as its console script runs it (``main()`` reads sys.argv), then which heavy modules the
#: run's own process loaded
DRIVER = (
    "import sys; from causal_cli.cli import main; sys.argv = ['causal', *sys.argv[1:]]; code = main(); "
    "print('heavy:', sorted(m for m in ('dowhy', 'sklearn', 'matplotlib') if m in sys.modules)); sys.exit(code)"
)


def test_results_pictures_and_warnings_are_those_of_a_run_without_the_helper(tmp_path):
    """Same numbers, byte-identical tables and PNGs, the same warnings (a graph name with glyphs the font
    lacks: matplotlib warns while the helper draws; --debug prints them); only the helper loads DoWhy."""
    folders, outputs = {}, {}
    for prefetch in (True, False):
        folders[prefetch] = tmp_path / f"prefetch_{prefetch}"
        args = ["run", "--debug", "graph.name='growth 图表'", *SMALL, f"hydra.run.dir={folders[prefetch]}"]
        proc = subprocess.run(
            [sys.executable, "-c", DRIVER, *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "COLUMNS": "120", "CAUSAL_PREFETCH": "1" if prefetch else "0"},
        )
        assert proc.returncode == 0, proc.stderr
        outputs[prefetch] = proc
    assert outputs[True].stdout.splitlines()[-1] == "heavy: []"
    assert outputs[False].stdout.splitlines()[-1] == "heavy: ['dowhy', 'matplotlib', 'sklearn']"
    warned = {p: sorted(ln for ln in outputs[p].stderr.splitlines() if "Warning:" in ln) for p in outputs}
    assert any("Glyph" in ln for ln in warned[False])
    assert warned[True] == warned[False]
    with_helper, without = (read_results(folders[p]) for p in (True, False))
    assert with_helper["status"] == "ok"
    assert stable(with_helper) == stable(without)
    files = sorted(p.name for p in folders[True].iterdir() if p.suffix in (".csv", ".png", ".md"))
    assert {"graph.png", "overlap.png", "love_plot.png", "refutations.png"} <= set(files)
    assert files == sorted(p.name for p in folders[False].iterdir() if p.suffix in (".csv", ".png", ".md"))
    for name in files:
        assert (folders[True] / name).read_bytes() == (folders[False] / name).read_bytes(), name


def test_an_identification_error_inside_the_helper_is_the_same_one_line_error(tmp_path):
    """DoWhy's efficient adjustment fails inside the helper (a confounder is unobserved)."""
    args = ["experiment=iv_promo", "identification.backdoor_method=efficient-adjustment", "dgp.n=300"]
    outcomes = {}
    for prefetch in (True, False):
        folder = tmp_path / f"prefetch_{prefetch}"
        proc = run("run", *args, "refuters=[]", f"hydra.run.dir={folder}", cwd=tmp_path, prefetch=prefetch)
        outcomes[prefetch] = (proc.returncode, proc.stderr, read_results(folder)["error"])
    assert outcomes[True] == outcomes[False]
    code, stderr, error = outcomes[True]
    assert code == 1
    assert stderr.strip().splitlines() == [f"causal: {error}"]  # the printed line adds the command's prefix
    assert error.startswith(
        "identification error: identification.backdoor_method='efficient-adjustment' failed"
    )


def test_sigterm_while_the_helper_works_gives_interrupted_and_ends_the_helper(tmp_path):
    run_dir = tmp_path / "run"
    slow = ["dgp.n=100000", "refuters=[placebo]", "refuters.placebo.num_simulations=100000", *FAST[2:]]
    proc = start("run", *slow, "report.console=false", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    try:
        helper = wait_for_helper(proc)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (run_dir / "config.yaml").is_file():
            time.sleep(0.01)  # validated: the job is identifying (the helper imports DoWhy) or refuting
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    assert len(stderr.strip().splitlines()) == 1 and "SIGTERM" in stderr
    assert read_results(run_dir)["status"] == "interrupted"
    assert gone(helper), "the helper outlived the run"


def test_the_helper_dies_with_a_killed_run(tmp_path):
    proc = start("run", *SMALL, f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    try:
        helper = wait_for_helper(proc)
        proc.kill()
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert gone(helper), "the helper outlived a killed run"


def test_a_run_whose_helper_dies_still_finishes_in_process(tmp_path):
    proc = start("run", *SMALL, f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    try:
        os.kill(wait_for_helper(proc), signal.SIGKILL)
        _, stderr = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr
    result = read_results(tmp_path / "run")
    assert result["status"] == "ok" and result["adjustment_set"] == ["account_age", "activity"]
    assert (tmp_path / "run" / "refutations.png").is_file()


def test_a_sweep_shares_one_helper_across_its_jobs(tmp_path):
    sweep = tmp_path / "sweep"
    proc = run(
        "run", "-m", "estimator=naive,psm,regression", *SMALL, f"hydra.sweep.dir={sweep}", cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    results = [json.loads(p.read_text()) for p in sorted(sweep.glob("*/results.json"))]
    assert [r["estimator"] for r in results] == ["naive", "psm", "regression"]
    assert all(r["status"] == "ok" for r in results)
    adjusted = ["account_age", "activity"]
    assert [r["adjustment_set"] for r in results] == [[], adjusted, adjusted]
    assert all((Path(r["output_dir"]) / "graph.png").is_file() for r in results)
