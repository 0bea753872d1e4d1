"""Faults (issue #17): concurrent runs on one folder, kill -9, Ctrl-C / SIGTERM, a full disk, a dead
sweep worker, signals during the final writes. Real processes, real signals, a real full file system
(a tmpfs mounted when allowed, else a file-size limit that fails writes the same way)."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import causal_executable

FAST = ["dgp.n=200", "refuters=[]", "report.enabled=false", "report.console=false", "refuters.n_jobs=1"]
ENV = {**os.environ, "COLUMNS": "80"}


def lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.strip()]


def status_of(run_dir: Path) -> str | None:
    path = run_dir / "results.json"
    return json.loads(path.read_text(encoding="utf-8"))["status"] if path.exists() else None


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def wait_for(condition, timeout: float, step: float = 0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(step)
    return None


def test_concurrent_runs_on_one_folder_never_mix_records(tmp_path):
    """4 runs started together on one hydra.run.dir: one wins, the others fail in one line and write nothing."""
    run_dir = tmp_path / "shared"
    procs = [
        subprocess.Popen(
            [
                *causal_executable(),
                "run",
                *FAST,
                f"seed={seed}",
                f"question=run-{seed}",
                f"hydra.run.dir={run_dir}",
            ],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=ENV,
        )
        for seed in (1, 2, 3, 4)
    ]
    outcomes = [(proc, *proc.communicate(timeout=600)) for proc in procs]
    winners = [(p, err) for p, _, err in outcomes if p.returncode == 0]
    losers = [(p, err) for p, _, err in outcomes if p.returncode != 0]
    assert len(winners) == 1, [(p.returncode, err) for p, _, err in outcomes]
    for proc, err in losers:
        assert proc.returncode == 2 and len(lines(err)) == 1, err
        assert (
            lines(err)[0].startswith("causal: config error: output folder") and "already holds a run" in err
        )
    result = json.loads((run_dir / "results.json").read_text())
    saved = (run_dir / ".hydra" / "config.yaml").read_text()
    typed = (run_dir / "config.yaml").read_text()
    seed = result["seed"]
    assert result["status"] == "ok"
    assert f"question: run-{seed}" in saved and f"seed: {seed}" in saved  # the winner's own records
    assert f"question: run-{seed}" in typed
    overrides = (run_dir / ".hydra" / "overrides.yaml").read_text()
    assert f"seed={seed}" in overrides and all(f"seed={s}" not in overrides for s in {1, 2, 3, 4} - {seed})


def test_records_stay_inside_the_run_folder_and_follow_no_symlink(tmp_path):
    from causal_cli.cli import main

    victim = tmp_path / "victim"
    victim.write_text("keep\n")
    run_dir = tmp_path / "run"
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / ".hydra" / "config.yaml").symlink_to(victim)
    (run_dir / "summary.md").symlink_to(victim)
    assert main(["run", *FAST, f"hydra.run.dir={run_dir}"]) == 0
    assert victim.read_text() == "keep\n"
    assert not (run_dir / ".hydra" / "config.yaml").is_symlink()
    # a planted .hydra that is itself a link, and an output_subdir leaving the folder: refused, nothing written
    other = tmp_path / "other"
    (other).mkdir()
    (other / ".hydra").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (tmp_path / "elsewhere").mkdir()
    assert main(["run", *FAST, f"hydra.run.dir={other}"]) == 2
    assert not any((tmp_path / "elsewhere").iterdir()) and not (other / "results.json").exists()
    assert main(["run", *FAST, f"hydra.run.dir={tmp_path / 'third'}", "hydra.output_subdir=../A/.hydra"]) == 2
    assert not (tmp_path / "A").exists() and not (tmp_path / "third").exists()


def _start_parallel_run(tmp_path: Path, run_dir: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [
            *causal_executable(),
            "run",
            "dgp.n=100000",
            "refuters=[placebo]",
            "refuters.placebo.num_simulations=400",
            "refuters.n_jobs=2",
            "report.enabled=false",
            f"hydra.run.dir={run_dir}",
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=ENV,
        start_new_session=True,
    )


def _refuting(proc: subprocess.Popen) -> list[int] | None:
    """The worker pids once the main process holds the job's shared memory (the refutation runs)."""
    try:
        fds = [os.readlink(f"/proc/{proc.pid}/fd/{fd}") for fd in os.listdir(f"/proc/{proc.pid}/fd")]
    except OSError:
        return None
    workers = [
        pid for pid in children(proc.pid) if b"popen_loky" in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]
    return workers if workers and any("memfd:causal-cli" in fd for fd in fds) else None


@pytest.mark.skipif(not (sys.platform == "linux" and (os.cpu_count() or 1) >= 2), reason="Linux, 2+ cores")
def test_kill_9_mid_refutation_leaves_no_shared_memory_and_no_worker_holding_the_output(tmp_path):
    shm_before = {p.name for p in Path("/dev/shm").glob("causal-cli-*")}
    proc = _start_parallel_run(tmp_path, tmp_path / "run")
    workers = wait_for(lambda: _refuting(proc), timeout=240)
    assert workers, proc.communicate(timeout=60)[1][-2000:]
    os.kill(proc.pid, signal.SIGKILL)
    killed = time.monotonic()
    proc.communicate(timeout=30)  # a wrapper reading stdout/stderr: EOF once nobody holds them
    assert time.monotonic() - killed < 10
    assert wait_for(lambda: not any(alive(w) for w in workers), timeout=5)
    assert {p.name for p in Path("/dev/shm").glob("causal-cli-*")} <= shm_before


@pytest.mark.skipif(sys.platform != "linux", reason="process groups and /proc")
def test_ctrl_c_while_workers_start_and_sigterm_mid_refutation_print_one_line(tmp_path):
    # Ctrl-C to the whole process group (as a terminal sends it) the moment a worker process exists
    proc = _start_parallel_run(tmp_path, tmp_path / "int")
    assert wait_for(
        lambda: [p for p in children(proc.pid) if b"popen_loky" in Path(f"/proc/{p}/cmdline").read_bytes()],
        240,
    )
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and len(lines(err.decode())) == 1, err.decode()[-3000:]
    assert lines(err.decode())[0].startswith("causal: interrupted")
    assert status_of(tmp_path / "int") in (None, "interrupted")
    # SIGTERM to the main process during the refutation: 143 and results.json says interrupted
    proc = _start_parallel_run(tmp_path, tmp_path / "term")
    assert wait_for(lambda: _refuting(proc), timeout=240)
    os.kill(proc.pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143 and len(lines(err.decode())) == 1, err.decode()[-3000:]
    assert status_of(tmp_path / "term") == "interrupted"


def test_a_signal_during_the_final_writes_gives_agreeing_status_and_results(tmp_path, monkeypatch):
    from causal_cli.cli import main
    from causal_cli.report import files

    original = files.write_tables

    def interrupted_write(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)  # arrives while the final files are written (deferred)
        return original(*args, **kwargs)

    monkeypatch.setattr(files, "write_tables", interrupted_write)
    run_dir = tmp_path / "run"
    assert main(["run", *FAST, f"hydra.run.dir={run_dir}"]) == 143
    assert status_of(run_dir) == "interrupted"


def _full_disk_run(run_dir: Path, cwd: Path, fsize: int | None = None) -> subprocess.CompletedProcess:
    def limit():
        if fsize is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    return subprocess.run(
        [*causal_executable(), "run", *FAST, "report.enabled=true", f"hydra.run.dir={run_dir}"],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=ENV,
        preexec_fn=limit,
        timeout=600,
    )


def test_a_full_disk_gives_one_line_and_results_json_failed_or_absent_never_half_written(tmp_path):
    mount = tmp_path / "small"
    mount.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=24k", "tmpfs", str(mount)], capture_output=True
    )
    try:
        if mounted.returncode == 0:
            proc = _full_disk_run(mount / "run", tmp_path)
        else:  # no mount allowed: a file-size limit makes the writes fail the same way (EFBIG)
            proc = _full_disk_run(tmp_path / "run", tmp_path, fsize=3000)
            mount = tmp_path
        run_dir = mount / "run"
        assert proc.returncode == 1, proc.stderr
        assert len(lines(proc.stderr)) == 1 and str(run_dir) in proc.stderr, proc.stderr
        assert lines(proc.stderr)[0].startswith("causal: output error: cannot write")
        if (run_dir / "results.json").exists():
            assert json.loads((run_dir / "results.json").read_text())["status"] == "failed"
    finally:
        if mounted.returncode == 0:
            subprocess.run(["umount", str(mount)], check=False)


@pytest.mark.skipif(sys.platform != "linux", reason="/proc")
def test_a_sweep_survives_a_dead_joblib_worker(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    sweep = tmp_path / "sweep"
    proc = subprocess.Popen(
        [
            *causal_executable(),
            "run",
            "-m",
            "hydra/launcher=joblib",
            "hydra.launcher.n_jobs=2",
            "seed=1,2,3,4,5,6",
            "dgp.n=60000",
            "refuters=[placebo]",
            "refuters.placebo.num_simulations=40",
            "refuters.n_jobs=1",
            "report.enabled=false",
            "report.console=false",
            f"hydra.sweep.dir={sweep}",
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )

    def running_job_worker():
        for folder in sweep.glob("[0-9]*_*"):
            if status_of(folder) == "running":
                workers = [
                    p for p in children(proc.pid) if b"popen_loky" in Path(f"/proc/{p}/cmdline").read_bytes()
                ]
                return workers or None
        return None

    workers = wait_for(running_job_worker, timeout=300)
    assert workers, proc.communicate(timeout=300)
    os.kill(workers[0], signal.SIGKILL)
    out, err = proc.communicate(timeout=900)
    assert proc.returncode == 1, err[-3000:]
    statuses = [status_of(f) for f in sorted(sweep.glob("[0-9]*_*"))]
    assert len(statuses) == 6 and "running" not in statuses and None not in statuses, statuses
    assert statuses.count("ok") >= 4 and 1 <= statuses.count("failed") <= 2, statuses
    failed = [
        json.loads((f / "results.json").read_text())
        for f in sweep.glob("[0-9]*_*")
        if status_of(f) == "failed"
    ]
    assert all("worker error" in r["error"] for r in failed)
    assert (sweep / "summary.csv").exists()
