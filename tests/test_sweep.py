"""Sweeps end to end: the real ``causal`` command, real launchers, the scorecard checked against each job's results.json."""

from __future__ import annotations

import contextlib
import csv
import importlib.util
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from causal_cli import pipeline, registry
from causal_cli.cli import main as causal_main
from causal_cli.schema import register_configs
from causal_cli.task import VERSION_BASE, conf_dir
from causal_cli.validate import validate

#: quick jobs: small data, no per-job report files, no per-job console summary
QUICK = ["dgp.n=400", "report.enabled=false", "report.console=false", "refuters.n_jobs=1"]
NO_REFUTERS = ["refuters=[]"]


def job_results(sweep_dir: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in sorted(Path(sweep_dir).glob("*/results.json"))}


def summary_rows(sweep_dir: Path) -> list[dict[str, str]]:
    with open(Path(sweep_dir) / "summary.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def number(text: str) -> float | None:
    return None if text in ("", None) else float(text)


def assert_one_ok_one_failed(proc, sweep_dir: Path, failing: str = "iv") -> None:
    """A 2-job sweep (naive + a job that fails on purpose): both folders have results.json, the run exits 1."""
    assert proc.returncode == 1, proc.stderr
    assert "1 of 2 jobs failed" in proc.stderr
    results = job_results(sweep_dir)
    assert len(results) == 2, list(results)
    by_estimator = {r["estimator"]: r for r in results.values()}
    assert by_estimator["naive"]["status"] == "ok"
    assert by_estimator[failing]["status"] == "failed"
    assert by_estimator[failing]["error"].startswith("identification error")
    rows = {r["estimator"]: r for r in summary_rows(sweep_dir)}
    assert rows[failing]["runs"] == "1" and rows[failing]["failures"] == "1"
    assert rows["naive"]["failures"] == "0"
    assert number(rows["naive"]["mean_estimate"]) == pytest.approx(by_estimator["naive"]["estimate"])
    assert "Sweep scorecard: 2 jobs, 1 failed" in proc.stdout


def test_small_sweep_scorecard_matches_the_jobs(run_causal, capsys):
    proc, sweep_dir = run_causal(
        "run",
        "-m",
        "estimator=naive,psm",
        "dgp.confounding=none,strong",
        "dgp.seed=range(0,2)",
        "refuters=[placebo]",
        "refuters.placebo.num_simulations=5",
        *QUICK,
    )
    assert proc.returncode == 0, proc.stderr
    results = job_results(sweep_dir)
    assert len(results) == 8 and all(r["status"] == "ok" for r in results.values())
    # a progress line after each job, with the sweep's size and an ETA until the last one
    progress = [line for line in proc.stderr.splitlines() if line.startswith("sweep ")]
    assert [line.split(" jobs")[0].split()[-1] for line in progress] == [f"{k}/8" for k in range(1, 9)]
    assert "eta" in progress[0] and "eta" not in progress[-1] and "elapsed" in progress[-1]
    # folder names: job number, then the job's own overrides, readable and one path component each
    assert "0_dgp.confounding=none,dgp.n=400,dgp.seed=0,estimator=naive," in " ".join(results)
    for name in results:
        assert "/" not in name and len(name.encode()) < 255

    # the scorecard: one row per (setting, estimator), numbers recomputed from the jobs' results.json
    rows = summary_rows(sweep_dir)
    assert [(r["dgp.confounding"], r["estimator"]) for r in rows if r["best"] == "True"] == [
        ("none", rows[0]["estimator"]),
        ("strong", "psm"),
    ]
    assert sorted((r["dgp.confounding"], r["estimator"]) for r in rows) == [
        ("none", "naive"),
        ("none", "psm"),
        ("strong", "naive"),
        ("strong", "psm"),
    ]
    for row in rows:
        jobs = [
            r
            for r in results.values()
            if r["estimator"] == row["estimator"]
            and f"dgp.confounding={row['dgp.confounding']}," in r["output_dir"]
        ]
        assert len(jobs) == 2
        biases = [j["estimate"] - j["reference"] for j in jobs]
        assert int(row["runs"]) == 2 and int(row["failures"]) == 0
        assert number(row["mean_estimate"]) == pytest.approx(sum(j["estimate"] for j in jobs) / 2)
        assert number(row["mean_bias"]) == pytest.approx(sum(biases) / 2)
        assert number(row["rmse"]) == pytest.approx(math.sqrt(sum(b * b for b in biases) / 2))
        assert number(row["sd_bias"]) == pytest.approx(abs(biases[0] - biases[1]) / math.sqrt(2))
        covered = [j["ci_low"] <= j["reference"] <= j["ci_high"] for j in jobs]
        assert number(row["ci_coverage"]) == pytest.approx(sum(covered) / 2)
        assert number(row["mean_ci_width"]) == pytest.approx(
            sum(j["ci_high"] - j["ci_low"] for j in jobs) / 2
        )
        assert int(row["refutations_passed"]) == sum(j["refutations_passed"] for j in jobs)
        assert int(row["refutations_judged"]) == sum(j["refutations_with_verdict"] for j in jobs) == 2
        assert number(row["mean_runtime_s"]) == pytest.approx(sum(j["runtime_s"] for j in jobs) / 2)
    for setting in ("none", "strong"):  # sorted: smallest |mean bias| first within each setting
        block = [abs(number(r["mean_bias"])) for r in rows if r["dgp.confounding"] == setting]
        assert block == sorted(block)
    naive = {r["dgp.confounding"]: number(r["mean_bias"]) for r in rows if r["estimator"] == "naive"}
    assert naive["strong"] > 2.0 > abs(naive["none"])  # confounding biases the naive comparison
    assert (sweep_dir / "summary.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Sweep scorecard: 8 jobs, 0 failed" in proc.stdout and "★" in proc.stdout

    # a seed sweep changes the data; jobs differing only in dgp.seed differ
    naive_none = [
        r for r in results.values() if r["estimator"] == "naive" and "confounding=none," in r["output_dir"]
    ]
    assert naive_none[0]["estimate"] != naive_none[1]["estimate"]

    # causal summarize re-creates the same summary.csv from the folder
    first = (sweep_dir / "summary.csv").read_text()
    (sweep_dir / "summary.csv").unlink()
    assert causal_main(["summarize", str(sweep_dir)]) == 0
    assert (sweep_dir / "summary.csv").read_text() == first
    assert "Sweep scorecard: 8 jobs, 0 failed" in capsys.readouterr().out


def test_failing_job_is_recorded_and_the_others_complete(run_causal):
    # iv needs an instrument; product_growth has none, so that job fails first and the next one still runs
    proc, sweep_dir = run_causal("run", "-m", "estimator=iv,naive", *NO_REFUTERS, *QUICK)
    assert_one_ok_one_failed(proc, sweep_dir)
    assert "failed 0_" in proc.stdout and "identification error" in proc.stdout


def test_summarize_rejects_what_is_not_a_sweep_folder(tmp_path, capsys):
    assert causal_main(["summarize"]) == 2
    assert causal_main(["summarize", str(tmp_path / "nope")]) == 2
    assert "is not a folder" in capsys.readouterr().err
    assert causal_main(["summarize", str(tmp_path)]) == 2
    assert "holds no job folders" in capsys.readouterr().err
    (tmp_path / "results.json").write_text("{}")
    assert causal_main(["summarize", str(tmp_path)]) == 2
    assert "one run's folder" in capsys.readouterr().err


def test_unfinished_job_counts_as_failed(tmp_path, capsys):
    from causal_cli import sweep

    done = tmp_path / "0_estimator=naive"
    done.mkdir()
    (done / "results.json").write_text(
        json.dumps(
            {
                "status": "ok",
                "estimator": "naive",
                "estimate": 11.0,
                "reference": 10.0,
                "ci_low": 9.0,
                "ci_high": 13.0,
                "runtime_s": 0.5,
                "refutations_passed": 1,
                "refutations_with_verdict": 1,
            }
        )
    )
    died = tmp_path / "1_estimator=psm"
    (died / ".hydra").mkdir(parents=True)
    (died / ".hydra" / "overrides.yaml").write_text("- estimator=psm\n")
    (died / "results.json").write_text(json.dumps({"status": "running", "estimator": "psm"}))
    assert sweep.job_outcomes(tmp_path) == (2, 1)
    assert causal_main(["summarize", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "2 jobs, 1 failed" in out and "results.json still says running" in out
    rows = {r["estimator"]: r for r in summary_rows(tmp_path)}
    assert rows["naive"]["best"] == "True" and number(rows["naive"]["mean_bias"]) == pytest.approx(1.0)
    assert rows["psm"]["failures"] == "1" and rows["psm"]["mean_bias"] == ""


@pytest.fixture
def compose_hydra():
    register_configs()

    def _compose(overrides):
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(conf_dir()), version_base=VERSION_BASE):
            return compose(config_name="config", overrides=list(overrides), return_hydra_config=True)

    yield _compose
    GlobalHydra.instance().clear()


def test_estimator_shootout_sets_multirun_and_its_sweep(compose_hydra):
    cfg = compose_hydra(["experiment=estimator_shootout"])
    assert str(cfg.hydra.mode) == "RunMode.MULTIRUN"
    params = cfg.hydra.sweeper.params
    estimators = params["estimator"].split(",")
    assert set(estimators) == {"naive", "regression", "psm", "ipw", "aipw", "dml"}
    assert set(estimators) <= set(registry.ESTIMATORS)
    assert params["dgp.confounding"].split(",") == ["none", "weak", "strong"]
    assert cfg.hydra.callbacks.scorecard._target_ == "causal_cli.sweep_task.ScorecardCallback"


def test_estimator_shootout_runs_as_a_sweep_without_dash_m(run_causal, tmp_path):
    # command-line values narrow the experiment's own sweep to one quick job
    out = tmp_path / "shootout"
    proc, _ = run_causal(
        "run",
        "experiment=estimator_shootout",
        "estimator=naive",
        "dgp.confounding=strong",
        "dgp.seed=0",
        "dgp.n=400",
        "refuters.placebo.num_simulations=5",
        f"hydra.sweep.dir={out}",
    )
    assert proc.returncode == 0, proc.stderr
    assert [r["estimator"] for r in job_results(out).values()] == ["naive"]
    assert [r["estimator"] for r in summary_rows(out)] == ["naive"]
    assert "Sweep scorecard: 1 jobs, 0 failed" in proc.stdout


def test_a_dgp_seed_sweep_gives_each_job_its_own_reproducible_streams(compose_cfg):
    def cfg(*overrides):
        return compose_cfg(
            [
                "estimator=naive",
                "dgp.n=300",
                "refuters=[placebo]",
                "refuters.placebo.num_simulations=4",
                "refuters.n_jobs=1",
                *overrides,
            ]
        )

    assert (
        pipeline.stream_seed(cfg()) == 0
    )  # dgp.seed follows seed: the streams are the run seed's, as before
    assert pipeline.stream_seed(cfg("seed=7")) == 7
    seeds = {pipeline.stream_seed(cfg(f"dgp.seed={s}")) for s in range(4)}
    assert len(seeds) == 4 and 0 in seeds  # dgp.seed=0 == seed; the others get their own streams
    assert pipeline.stream_seed(cfg("dgp.seed=3")) == pipeline.stream_seed(cfg("dgp.seed=3"))
    one, two = (pipeline.run(validate(cfg("dgp.seed=3"))) for _ in range(2))  # job by job reproducible
    assert one.estimate == two.estimate
    assert one.refutations[0].simulations == two.refutations[0].simulations
    assert one.seed == 0  # results.json keeps the configured seed


# ------------------------------------------------------------------------------------------- launchers
def require_plugin(module: str) -> None:
    """Launcher plugins come with the ``[distributed]`` extra: CI installs it (fail there), elsewhere skip."""
    if importlib.util.find_spec(module) is None:
        message = f"{module} is not installed (pip install -e '.[distributed]')"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def test_joblib_launcher(run_causal_process):  # workers print to the process's own stderr
    run_causal = run_causal_process
    require_plugin("hydra_plugins.hydra_joblib_launcher")
    proc, sweep_dir = run_causal(
        "run",
        "-m",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "estimator=naive,iv",
        *NO_REFUTERS,
        *QUICK,
    )
    assert "Joblib.Parallel" in proc.stdout + proc.stderr  # the plugin was found through our `causal` command
    assert_one_ok_one_failed(proc, sweep_dir)
    # the jobs ran in worker processes; the progress count is shared through the sweep folder
    assert "2/2 jobs · 1 failed" in proc.stderr


def test_submitit_local_launcher(run_causal_process):  # workers print to the process's own stderr
    run_causal = run_causal_process
    require_plugin("hydra_plugins.hydra_submitit_launcher")
    proc, sweep_dir = run_causal(
        "run",
        "-m",
        "hydra/launcher=submitit_local",
        "hydra.launcher.timeout_min=5",
        "estimator=naive,iv",
        *NO_REFUTERS,
        *QUICK,
    )
    assert "Submitit 'local' sweep" in proc.stdout + proc.stderr
    assert_one_ok_one_failed(proc, sweep_dir)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def ray_head():
    """A local Ray cluster (``ray start --head``) in its own process group, ended by that group's id."""
    require_plugin("hydra_plugins.hydra_ray_launcher")
    ray = Path(sys.executable).with_name("ray")
    temp_dir = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths must stay < 108 bytes
    port = _free_port()
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    head = subprocess.Popen(
        [
            str(ray),
            "start",
            "--head",
            "--block",
            f"--port={port}",
            "--node-ip-address=127.0.0.1",
            "--num-cpus=2",
            "--include-dashboard=false",
            f"--ray-client-server-port={_free_port()}",
            f"--dashboard-agent-listen-port={_free_port()}",
            f"--temp-dir={temp_dir}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        env=env,
    )
    started, lines = threading.Event(), []

    def watch():
        for line in head.stdout:
            lines.append(line)
            if "Ray runtime started" in line:
                started.set()

    threading.Thread(target=watch, daemon=True).start()
    try:
        if not started.wait(120):
            pytest.fail("ray start --head did not start within 120 s:\n" + "".join(lines[-30:]))
        yield f"127.0.0.1:{port}", env
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGKILL)  # the head and every Ray process it started share its group
        head.wait(30)
        shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.mark.slow
def test_ray_launcher_on_a_local_cluster(run_causal_process, ray_head):
    run_causal = run_causal_process  # Ray's own output goes to the process's stdout and stderr
    address, env = ray_head
    proc, sweep_dir = run_causal(
        "run",
        "-m",
        "hydra/launcher=ray_cluster",
        f"hydra.launcher.ray.init.address={address}",
        "estimator=naive,iv",
        *NO_REFUTERS,
        *QUICK,
        env=env,
    )
    assert "Ray Launcher is launching 2 jobs" in proc.stdout + proc.stderr, proc.stderr[-2000:]
    assert "Connected to Ray cluster" in proc.stdout + proc.stderr
    assert_one_ok_one_failed(proc, sweep_dir)


@pytest.mark.parametrize(
    ("lines", "jobs"),
    [
        (["estimator=naive,psm", "dgp.seed=range(0,5)", "dgp.n=300"], 10),
        (["estimator=naive,psm,ipw", "dgp.confounding=none,strong"], 6),
        (["estimator=naive,psm", "estimator=ipw"], 1),  # a later override of the same key wins
        (["dgp.n=300"], 1),
        (["estimator=glob(*)"], None),  # depends on the config repository: no size, no bar
    ],
)
def test_sweep_size_counts_the_basic_sweepers_jobs(lines, jobs):
    from causal_cli.sweep import count_sweep_jobs

    assert count_sweep_jobs(lines) == jobs


def test_sweep_progress_line():
    from causal_cli.report.console import sweep_progress_line

    assert sweep_progress_line(3, 1, 12, 30.0).endswith(
        "3/12 jobs · 1 failed · 0:00:30 elapsed · eta 0:01:30"
    )
    assert sweep_progress_line(12, 0, 12, 65.0).endswith("12/12 jobs · 0:01:05 elapsed")
    assert sweep_progress_line(2, 0, None, 5.0) == "sweep: 2 jobs done · 0:00:05 elapsed"


def test_a_reused_sweep_folder_counts_progress_from_zero(tmp_path):
    from omegaconf import OmegaConf

    from causal_cli.sweep_task import PROGRESS_FILE, ProgressCallback, record_job_end

    (tmp_path / PROGRESS_FILE).write_text("ok\nok\nfailed\n")  # left by an earlier sweep into this folder
    assert record_job_end(tmp_path, "ok") == (4, 1)
    ProgressCallback().on_multirun_start(OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}}))
    assert record_job_end(tmp_path, "failed") == (1, 1)
    assert record_job_end(tmp_path, "ok") == (2, 1)


def test_sweep_eta_uses_the_pace_after_the_first_job():
    """The first job also pays the imports: the ETA from the second job on is the later jobs' pace."""
    from causal_cli.report.console import sweep_progress_line
    from causal_cli.sweep_task import ProgressCallback

    callback = ProgressCallback()
    assert callback._eta(1, 50, 30.0) is None  # first job: 30 s, mostly imports
    assert callback._eta(2, 50, 32.0) == 2.0 * (48 + 1)  # then 2 s per job, and the scorecard as one more
    assert callback._eta(4, 50, 36.0) == 2.0 * (46 + 1)
    assert callback._eta(50, 50, 132.0) == 0.0
    assert "eta 0:01:36" in sweep_progress_line(2, 0, 50, 32.0, eta_s=96.0)
    assert "eta 0:12:00" in sweep_progress_line(2, 0, 50, 30.0)  # without it: elapsed / done x left
    # the first job's own time (its results.json) is the pace until a second job has ended
    callback = ProgressCallback()
    assert callback._eta(1, 50, 30.0, job_s=1.5) == 1.5 * (49 + 1)
    assert callback._eta(2, 50, 31.0, job_s=9.0) == 1.0 * (48 + 1)


def test_the_first_eta_reads_the_first_jobs_own_time(tmp_path):
    import json

    from omegaconf import OmegaConf

    from causal_cli.sweep_task import job_seconds

    config = OmegaConf.create({"hydra": {"runtime": {"output_dir": str(tmp_path)}}})
    assert job_seconds(config) is None  # no results.json: the console's estimate
    (tmp_path / "results.json").write_text(json.dumps({"runtime_s": 0.25, "timings": {"report": 1.0}}))
    assert job_seconds(config) == 1.25
