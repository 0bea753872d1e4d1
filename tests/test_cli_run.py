"""End to end: ``causal`` in process (and the installed command where a real process matters), asserting on the run folder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import FAST, causal_executable, read_results

REQUIRED_FIELDS = {
    "status",
    "error",
    "treatment",
    "outcome",
    "estimator",
    "target_units",
    "n_rows",
    "adjustment_set",
    "naive_estimate",
    "estimate",
    "std_error",
    "ci_low",
    "ci_high",
    "reference",
    "bias",
    "naive_overstatement_pct",
    "refutations",
    "seed",
    "runtime_s",
}


def test_default_run_tells_the_product_uplift_story(run_causal):
    proc, run_dir = run_causal("run")
    assert proc.returncode == 0, proc.stderr
    result = read_results(run_dir)
    assert REQUIRED_FIELDS <= set(result)
    assert result["status"] == "ok" and result["error"] is None
    assert 14.0 <= result["naive_estimate"] <= 15.0
    assert 9.5 <= result["estimate"] <= 10.5
    assert result["ci_low"] <= 10.0 <= result["ci_high"]
    assert result["reference"] == 10.0
    assert result["bias"] == pytest.approx(result["estimate"] - 10.0)
    assert result["naive_overstatement_pct"] == pytest.approx(
        (result["naive_estimate"] - result["estimate"]) / abs(result["estimate"]) * 100
    )
    assert sorted(result["adjustment_set"]) == ["account_age", "activity"]
    refutations = {r["name"]: r for r in result["refutations"]}
    assert abs(refutations["placebo"]["new_effect"]) < 0.5 and refutations["placebo"]["passed"] is True
    rcc = refutations["random_common_cause"]
    assert abs(rcc["new_effect"] - result["estimate"]) / result["estimate"] < 0.05 and rcc["passed"] is True
    for name in ("results.csv", "refutations.csv", "summary.md", "config.yaml", ".hydra/config.yaml"):
        assert (run_dir / name).is_file(), name
    assert "overstates the causal effect" in proc.stdout
    assert "Refutations" in proc.stdout and str(run_dir) in proc.stdout


def test_verbatim_override_form(run_causal):
    proc, run_dir = run_causal("run", "estimator=psm", "dgp.confounding=strong", *FAST)
    assert proc.returncode == 0, proc.stderr
    assert read_results(run_dir)["estimator"] == "psm"


def test_no_confounding_makes_naive_unbiased(run_causal):
    proc, run_dir = run_causal("run", "dgp.confounding=none", *FAST)
    assert proc.returncode == 0, proc.stderr
    assert abs(read_results(run_dir)["naive_estimate"] - 10.0) < 0.5


def test_multirun_writes_one_folder_per_job(run_causal):
    proc, sweep_dir = run_causal("run", "-m", "estimator=naive,psm", *FAST)
    assert proc.returncode == 0, proc.stderr
    results = sorted(
        (read_results(p.parent) for p in sweep_dir.glob("*/results.json")), key=lambda r: r["estimator"]
    )
    assert [r["estimator"] for r in results] == ["naive", "psm"]
    assert all(r["status"] == "ok" for r in results)
    naive, psm = results
    assert naive["estimate"] == pytest.approx(naive["naive_estimate"])
    assert abs(psm["estimate"] - 10) < abs(naive["estimate"] - 10)


def test_att_target_units(run_causal):
    proc, run_dir = run_causal("run", "estimator.target_units=att", *FAST)
    assert proc.returncode == 0, proc.stderr
    result = read_results(run_dir)
    assert result["target_units"] == "att" and abs(result["estimate"] - 10) < 0.6


def test_print_config_does_not_run(run_causal, tmp_path):
    proc, run_dir = run_causal("run", "--cfg", "job")
    assert proc.returncode == 0, proc.stderr
    assert "estimator:" in proc.stdout and "name: psm" in proc.stdout
    assert not run_dir.exists()
    # the Hydra node shows the job name every run folder's .hydra/hydra.yaml records
    proc, _ = run_causal("run", "--cfg", "hydra", "-p", "hydra.job.name")
    assert proc.returncode == 0 and proc.stdout.strip() == "app", proc.stdout


def test_hydra_help(run_causal):
    proc, _ = run_causal("run", "--help")
    assert proc.returncode == 0
    assert "estimator" in proc.stdout


@pytest.mark.parametrize(
    "args, expected",
    [
        (["estimator=foo"], "estimator=foo is not an option; available: "),
        (["dgp.n=abc"], "dgp.n"),
        (["dgp.n=-3"], "dgp.n=-3 is out of range"),
        (['graph.edges=["spend -> account_age"]'], "cycle"),
        (["graph.edges=[spend -> account_age]"], "cannot parse override"),
        (["graph.treatment=nope"], "nope"),
        (["refuters.placebo.placebo_type=bogus"], "placebo_type"),
    ],
)
def test_bad_input_gives_one_line_error_and_nonzero_exit(run_causal, args, expected):
    proc, run_dir = run_causal("run", *args, "refuters.placebo.num_simulations=2", "refuters.n_jobs=1")
    assert proc.returncode != 0
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert expected in lines[0]
    assert "Traceback" not in proc.stderr + proc.stdout
    if (run_dir / "results.json").exists():  # a job that started records its failure, never success
        result = read_results(run_dir)
        assert result["status"] == "failed" and result["error"]
        assert not (run_dir / "results.csv").exists()


def test_unknown_option_lists_valid_options(run_causal):
    proc, _ = run_causal("run", "estimator=foo")
    assert "naive" in proc.stderr and "psm" in proc.stderr


def test_debug_flag_shows_traceback(run_causal):
    proc, _ = run_causal("run", "--debug", "graph.treatment=nope", "refuters=[]")
    assert proc.returncode != 0
    assert "Traceback" in proc.stderr


def test_version_help_and_list(run_causal):
    exe = causal_executable()  # the installed command answers; the rest runs in process
    out = subprocess.run(exe + ["--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("causal-cli ")
    out, _ = run_causal("--help")
    assert out.returncode == 0 and "causal run" in out.stdout
    out, _ = run_causal("list")
    assert out.returncode == 0
    for expected in ("estimator:", "psm", "refuters:", "placebo", "experiment:", "product_uplift", "graph:"):
        assert expected in out.stdout
    launchers = out.stdout.split("launcher:")[1]
    for name in ("basic", "joblib", "submitit_local", "submitit_slurm", "ray", "ray_cluster"):
        assert f"\n  {name} " in launchers  # the sweep launchers, with the extra that provides them
    out, _ = run_causal("list", "nope")
    assert out.returncode != 0 and "allowed" in out.stderr


def test_runs_started_together_never_share_a_folder(tmp_path):
    """Two processes in the same second with the default timestamped folder pattern."""
    args = causal_executable() + ["run", "refuters=[]", "dgp.n=500", "report.console=false"]
    procs = [
        subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(3)
    ]
    for p in procs:
        assert p.wait(timeout=120) == 0, p.stderr.read().decode()
    folders = list((tmp_path / "outputs").glob("*/*/results.json"))
    assert len(folders) == 3
    assert all(json.loads(f.read_text())["status"] == "ok" for f in folders)


def test_experiment_from_another_directory(run_causal, tmp_path):
    other = tmp_path / "elsewhere"
    other.mkdir()
    proc, run_dir = run_causal("run", "experiment=product_uplift", *FAST, cwd=other)
    assert proc.returncode == 0, proc.stderr
    assert read_results(run_dir)["estimator"] == "psm"


@pytest.mark.slow
def test_wheel_installs_and_runs_outside_the_repo(tmp_path):
    """Build the wheel, install it (no deps: they come from this environment) into a new venv, run elsewhere."""
    repo = Path(__file__).resolve().parents[1]
    dist = tmp_path / "dist"
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(dist),
            str(repo),
        ],
        capture_output=True,
        text=True,
    )
    if build.returncode != 0 and "hatchling" in build.stderr:
        build = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(repo)],
            capture_output=True,
            text=True,
        )
    assert build.returncode == 0, build.stderr
    wheel = next(dist.glob("causal_cli-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    # dependencies come from this environment's site-packages (appended after the venv's own, so the
    # wheel's copy of causal_cli wins; .pth files there, like the editable install's, are not processed)
    import sysconfig

    site = next((venv / "lib").glob("python3*/site-packages"))
    (site / "zz_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    pip = subprocess.run(
        [venv / "bin" / "python", "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", str(wheel)],
        capture_output=True,
        text=True,
    )
    assert pip.returncode == 0, pip.stderr
    work = tmp_path / "somewhere"
    work.mkdir()
    proc = subprocess.run(
        [venv / "bin" / "causal", "run", "experiment=product_uplift", *FAST, f"hydra.run.dir={work / 'run'}"],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    # the installed copy, not the checkout, served the configs
    where = subprocess.run(
        [venv / "bin" / "python", "-c", "import causal_cli.task as a; print(a.conf_dir())"],
        cwd=work,
        capture_output=True,
        text=True,
    )
    assert "site-packages" in where.stdout
    assert read_results(work / "run")["status"] == "ok"
