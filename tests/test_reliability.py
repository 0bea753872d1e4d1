"""Reliability: reproducible runs, provenance, safe outputs under concurrency and interruption, hostile inputs.

``causal`` runs in process through ``cli.main`` (cwd = tmp_path, so the default ``outputs/`` pattern
lands in the test's folder); what needs real processes (a fresh hash seed, signals, runs started
together) runs the installed command in subprocesses.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from causal_cli import registry
from tests.conftest import FAST, causal_executable, read_results, run_in_process

#: deterministic files of a run: every CSV (results.json holds the timings, paths and provenance)
TIMING_COLUMN = re.compile(r"(time|timing|runtime|duration|elapsed|_s$|started|finished|date)", re.I)
QUICK = ["dgp.n=300", "refuters=[]", "report.console=false", "report.enabled=false"]


def causal(*args, cwd, env=None) -> subprocess.CompletedProcess:
    return run_in_process(list(args), cwd, env)


def causal_process(*args, cwd, env=None, timeout=180) -> subprocess.CompletedProcess:
    return subprocess.run(
        causal_executable() + list(args),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "120", **(env or {})},
    )


def start(*args, cwd, env=None) -> subprocess.Popen:
    return subprocess.Popen(
        causal_executable() + list(args),
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "120", **(env or {})},
    )


def one_line(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def csv_files(run_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(Path(run_dir).glob("*.csv"))}


def refuter_overrides() -> list[str]:
    """Every fast refuter that is registered, with few simulations (data_subset when present)."""
    names = [n for n in ("placebo", "random_common_cause", "data_subset") if n in registry.REFUTERS]
    return [
        f"refuters=[{','.join(names)}]",
        *FAST,
        *(["refuters.data_subset.num_simulations=10"] if "data_subset" in names else []),
    ]


# --- reproducibility --------------------------------------------------------------------------


def test_same_config_and_seed_give_byte_identical_tables_across_processes_and_reproduce_matches(tmp_path):
    args = [
        "run",
        "dgp.n=600",
        "seed=3",
        *refuter_overrides(),
        "report.console=false",
        "report.enabled=false",
    ]
    first = causal(*args, f"hydra.run.dir={tmp_path / 'a'}", cwd=tmp_path, env={"PYTHONHASHSEED": "1"})
    assert first.returncode == 0, first.stderr
    original = read_results(tmp_path / "a")
    assert original["status"] == "ok"
    tables = csv_files(tmp_path / "a")
    assert {"results.csv", "refutations.csv"} <= set(tables)
    if (original.get("diagnostics") or {}).get("balance"):  # written by the diagnostics step when present
        assert "balance.csv" in tables
    for name, content in tables.items():  # no timing or timestamp column sneaks into a table
        header = next(csv.reader([content.decode().splitlines()[0]]))
        assert not [c for c in header if TIMING_COLUMN.search(c)], (name, header)
    assert "runtime_s" in original and "timings" in original  # ... they live in results.json

    # a fresh process with a different hash seed (set iteration order) re-runs from the saved config
    proc = causal_process(
        "reproduce",
        str(tmp_path / "a"),
        "--out",
        str(tmp_path / "b"),
        cwd=tmp_path,
        env={"PYTHONHASHSEED": "2"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "reproduced: all" in proc.stdout
    assert re.search(r"^estimate\s+(\S+)\s+\1\s+yes$", proc.stdout, flags=re.M), proc.stdout
    assert csv_files(tmp_path / "b") == tables  # byte-identical, balance.csv included when written
    again = read_results(tmp_path / "b")
    assert again["data_hash"] == original["data_hash"]
    assert again["estimate"] == original["estimate"]


def test_reproduce_reports_every_differing_number(tmp_path):
    """The comparison itself can fail: a tampered original is reported field by field, exit status 1."""
    from causal_cli.reproduce import compare, render

    for name in ("old", "new"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.csv").write_text("status,estimate,std_error\nok,1.5,0.25\n")
        (tmp_path / name / "refutations.csv").write_text(
            "name,new_effect,p_value,passed,reason\nplacebo,0.1,0.5,True,x\n"
        )
    (tmp_path / "old" / "results.csv").write_text("status,estimate,std_error\nok,1.5000000000000002,0.25\n")
    rows, files = compare(
        tmp_path / "old",
        tmp_path / "new",
        {"status": "ok", "data_hash": "h"},
        {"status": "ok", "data_hash": "h"},
    )
    assert [r[0] for r in rows if not r[3]] == ["estimate"]
    assert [f[0] for f in files if not f[1]] == ["results.csv"]
    text = render(rows, files)
    assert "NOT reproduced: 2 differ (estimate, results.csv)" in text


def test_reproduce_refuses_a_changed_data_file_and_records_provenance(tmp_path):
    import pandas as pd

    rng_frame = pd.DataFrame(
        {
            "account_age": [1.0 + (i % 7) for i in range(200)],
            "activity": [2.0 + (i * 37 % 11) for i in range(200)],
            "feature_used": [(i * 13) % 3 == 0 for i in range(200)],
        }
    )
    rng_frame["feature_used"] = rng_frame["feature_used"].astype(int)
    rng_frame["spend"] = (
        5 + 2 * rng_frame["account_age"] + 3 * rng_frame["feature_used"] + (rng_frame.index % 5)
    )
    data = tmp_path / "study.csv"
    rng_frame.to_csv(data, index=False)
    proc = causal(
        "run", "data=csv", "data.path=study.csv", *QUICK, f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    result = read_results(tmp_path / "run")
    assert_finished_files(tmp_path / "run")

    # provenance: versions, command line, git commit of the checkout, data hashes
    prov = result["provenance"]
    assert prov["tool_version"] == result["tool_version"]
    assert set(prov["packages"]) >= {"dowhy", "pandas", "numpy", "scikit-learn"}
    assert all(prov["packages"][k] for k in ("dowhy", "pandas", "numpy", "scikit-learn"))
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", prov["python"])
    assert prov["argv"][:2] == ["causal", "run"] and "data.path=study.csv" in prov["command"]
    repo = Path(__file__).resolve().parents[1]
    if (repo / ".git").exists():
        assert re.fullmatch(r"[0-9a-f]{40}", prov["git"]["commit"] or ""), prov["git"]
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", result["data_hash"])
    recorded = result["data_files"]["data.path"]
    assert recorded == {
        "path": str(data),
        "sha256": "sha256:" + hashlib.sha256(data.read_bytes()).hexdigest(),
    }

    # the data file changes: reproduce refuses in one line, before running anything
    with data.open("a") as fh:
        fh.write("3.0,4.0,1,30.0\n")
    proc = causal("reproduce", str(tmp_path / "run"), "--out", str(tmp_path / "again"), cwd=tmp_path)
    assert proc.returncode == 2
    line = one_line(proc.stderr)
    assert "data.path" in line and "changed since the run" in line
    assert not (tmp_path / "again").exists()


def test_reproduce_refuses_what_is_not_a_complete_run(tmp_path):
    from causal_cli.cli import main

    assert main(["reproduce", str(tmp_path)]) == 2
    (tmp_path / "results.json").write_text(json.dumps({"status": "interrupted"}))
    assert main(["reproduce", str(tmp_path)]) == 2
    assert main(["reproduce"]) == 2


# --- provenance helpers -----------------------------------------------------------------------


def test_git_commit_is_read_without_git_from_loose_packed_detached_and_worktree_checkouts(tmp_path):
    from causal_cli.provenance import git_info

    sha1, sha2 = "a" * 40, "b" * 40
    loose = tmp_path / "loose"
    (loose / ".git" / "refs" / "heads").mkdir(parents=True)
    (loose / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (loose / ".git" / "refs" / "heads" / "main").write_text(sha1 + "\n")
    (loose / "src" / "pkg").mkdir(parents=True)
    assert git_info(loose / "src" / "pkg") == {"commit": sha1, "branch": "main", "root": str(loose)}

    packed = tmp_path / "packed"
    (packed / ".git").mkdir(parents=True)
    (packed / ".git" / "HEAD").write_text("ref: refs/heads/dev\n")
    (packed / ".git" / "packed-refs").write_text(f"# pack-refs with: peeled\n{sha2} refs/heads/dev\n")
    assert git_info(packed)["commit"] == sha2

    detached = tmp_path / "detached"
    (detached / ".git").mkdir(parents=True)
    (detached / ".git" / "HEAD").write_text(sha2 + "\n")
    assert git_info(detached) == {"commit": sha2, "branch": None, "root": str(detached)}

    worktree = tmp_path / "worktree"
    worktree.mkdir()
    (worktree / ".git").write_text(f"gitdir: {loose / '.git'}\n")
    assert git_info(worktree)["commit"] == sha1

    broken = tmp_path / "broken"
    (broken / ".git").mkdir(parents=True)  # no HEAD: never fails, just unknown
    assert git_info(broken) is None


def test_data_hash_depends_on_content_and_order_not_on_unused_columns():
    import pandas as pd

    from causal_cli.provenance import frame_hash

    frame = pd.DataFrame({"t": [0, 1, 1], "y": [1.0, 2.0, 3.5], "extra": ["a", "b", "c"]})
    base = frame_hash(frame, ["t", "y"])
    assert base == frame_hash(frame.assign(extra="z"), ["t", "y"])
    assert base != frame_hash(frame.assign(y=[1.0, 2.0, 3.5000001]), ["t", "y"])
    assert base != frame_hash(frame.iloc[::-1].reset_index(drop=True), ["t", "y"])
    assert base != frame_hash(frame.astype({"y": "float32"}), ["t", "y"])


def assert_finished_files(run_dir: Path) -> None:
    """A finished run: its tables are there, readable like any user file, and no temporary is left."""
    names = {p.name for p in run_dir.iterdir()}
    assert {"results.json", "results.csv", "refutations.csv", "config.yaml"} <= names
    assert not [n for n in names if n.startswith(".") and n != ".hydra"]
    umask = os.umask(0o022)
    os.umask(umask)
    for path in run_dir.iterdir():
        if path.is_file():  # mkstemp alone would leave them 0600
            assert path.stat().st_mode & 0o777 == 0o666 & ~umask, path


# --- safe outputs: interruption ---------------------------------------------------------------


def test_sigterm_mid_run_marks_the_run_interrupted_and_presents_nothing_as_complete(tmp_path):
    run_dir = tmp_path / "slow"
    proc = start(
        "run",
        "dgp.n=100000",
        "refuters=[placebo]",
        "refuters.placebo.num_simulations=100000",
        "refuters.n_jobs=1",
        "report.console=false",
        f"hydra.run.dir={run_dir}",
        cwd=tmp_path,
    )
    try:
        deadline = time.monotonic() + 120  # a hang guard, not a speed assertion
        while time.monotonic() < deadline and proc.poll() is None:
            results = run_dir / "results.json"
            if results.is_file() and (run_dir / "config.yaml").is_file():  # claimed and validated: working
                break
            time.sleep(0.05)
        assert proc.poll() is None, proc.communicate()
        assert read_results(run_dir)["status"] == "running"
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM
    assert "interrupted" in one_line(stderr) and "SIGTERM" in stderr
    result = read_results(run_dir)
    assert result["status"] == "interrupted"
    assert "SIGTERM" in result["error"]
    presented = {"results.csv", "refutations.csv", "summary.md", "report.html", "balance.csv"}
    assert not presented & {p.name for p in run_dir.iterdir()}
    assert not [
        p for p in run_dir.iterdir() if p.name.startswith(".") and p.name != ".hydra"
    ]  # no temp files


# --- safe outputs: concurrency ----------------------------------------------------------------
# (two plain `causal run` processes started together: tests/test_cli_run.py::test_runs_started_together_...)


def test_parallel_multirun_jobs_each_get_their_own_folder(tmp_path):
    """Two sweeps started together (default sweep folder pattern), one of them with parallel jobs."""
    sweeps = [start("run", "-m", "seed=0", *QUICK, cwd=tmp_path)]
    launcher = []
    try:
        import hydra_plugins.hydra_joblib_launcher  # noqa: F401

        launcher = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]
    except ImportError:
        pass
    sweeps.append(start("run", "-m", "seed=1,2", *QUICK, *launcher, cwd=tmp_path))
    outs = [p.communicate(timeout=240) for p in sweeps]
    assert [p.returncode for p in sweeps] == [0, 0], outs
    folders = sorted(p.parent for p in (tmp_path / "outputs" / "multirun").glob("*/*/*/results.json"))
    assert len({f.parent for f in folders}) == 2  # two sweep folders
    assert sorted(read_results(f)["seed"] for f in folders) == [0, 1, 2]
    assert all(read_results(f)["status"] == "ok" for f in folders)


def test_a_folder_that_holds_a_run_is_never_reused(tmp_path):
    from causal_cli.errors import ConfigError
    from causal_cli.report.files import claim_run_dir

    claim_run_dir(tmp_path / "x", {"seed": 0})
    with pytest.raises(ConfigError, match="already holds a run"):
        claim_run_dir(tmp_path / "x", {"seed": 1})
    assert json.loads((tmp_path / "x" / "results.json").read_text())["seed"] == 0

    # the command refuses before Hydra writes anything into the existing folder
    (tmp_path / "x" / ".hydra").mkdir()
    (tmp_path / "x" / ".hydra" / "config.yaml").write_text("seed: 0\n")
    proc = causal("run", "seed=5", f"hydra.run.dir={tmp_path / 'x'}", cwd=tmp_path)
    assert proc.returncode == 2
    assert "already holds a run" in one_line(proc.stderr)
    assert (tmp_path / "x" / ".hydra" / "config.yaml").read_text() == "seed: 0\n"


# --- hostile inputs ---------------------------------------------------------------------------

OUT_OF_RANGE = [
    (["dgp.n=-5"], "dgp.n", "allowed"),
    (["refuters.placebo.num_simulations=0"], "refuters.placebo.num_simulations", "allowed"),
    (["estimator=psm", "estimator.caliper=-1"], "estimator.caliper", "allowed"),
    (["estimator.ci.level=0"], "estimator.ci.level", "between 0 and 1"),
    (["estimator.ci.level=1.5"], "estimator.ci.level", "between 0 and 1"),
]
if "data_subset" in registry.REFUTERS:
    OUT_OF_RANGE.append(
        (
            ["refuters=[data_subset]", "refuters.data_subset.subset_fraction=1.5"],
            "refuters.data_subset.subset_fraction",
            "allowed",
        )
    )


def test_out_of_range_values_are_refused_naming_the_key_and_the_allowed_range(tmp_path):
    for i, (overrides, key, allowed) in enumerate(OUT_OF_RANGE):
        proc = causal(
            "run", *overrides, "report.console=false", f"hydra.run.dir={tmp_path / str(i)}", cwd=tmp_path
        )
        assert proc.returncode == 2, (key, proc.stderr)  # refused before the run (preflight validates values)
        line = one_line(proc.stderr)
        assert f"{key}=" in line and allowed in line, line
        # refused before any work: no run folder, nothing loaded, estimated or presented
        assert not (tmp_path / str(i)).exists()


def test_config_values_cannot_move_output_folders_outside_the_output_root(tmp_path):
    from causal_cli.schema import path_safe

    proc = causal("run", "estimator.name=../../../escaped", *QUICK, cwd=tmp_path)
    assert proc.returncode == 2 and "estimator.name" in one_line(proc.stderr)
    proc = causal("run", "-m", "graph.outcome_units=../../../../escaped2", *QUICK, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    created = [p for p in tmp_path.rglob("*") if "escaped" in p.name]
    assert created and all((tmp_path / "outputs") in p.parents for p in created)
    # each interpolated value is one folder name: no separators, no '..', bounded length
    assert "/" not in path_safe("a/b\\c") and path_safe("..") != ".." and path_safe("") == ""
    long = path_safe("é" * 400)
    assert len(long.encode()) <= 150 and long != path_safe("é" * 399)


GRAPH_DOT = """\
digraph product {
  feature_used [role=treatment]; spend [role=outcome];
  account_age -> feature_used -> spend; account_age -> spend;
  activity -> feature_used; activity -> spend;
}
"""


def test_reproduce_pins_and_checks_the_graph_file(tmp_path):
    """A run whose graph came from ``graph.file`` records the file's sha256 beside the data's; reproduce
    started from another folder reads the same file (relative to where the run started) and refuses in
    one line once the file changed."""
    (tmp_path / "product.dot").write_text(GRAPH_DOT)
    run = ["run", "graph=file", "graph.file=product.dot", *QUICK, f"hydra.run.dir={tmp_path / 'run'}"]
    assert causal(*run, cwd=tmp_path).returncode == 0
    recorded = read_results(tmp_path / "run")["data_files"]["graph.file"]
    assert recorded["path"] == str((tmp_path / "product.dot").resolve())
    assert recorded["sha256"] == "sha256:" + hashlib.sha256(GRAPH_DOT.encode()).hexdigest()

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = causal("reproduce", str(tmp_path / "run"), "--out", str(tmp_path / "again"), cwd=elsewhere)
    assert proc.returncode == 0, proc.stderr
    assert read_results(tmp_path / "again")["estimate"] == read_results(tmp_path / "run")["estimate"]

    (tmp_path / "product.dot").write_text(GRAPH_DOT.replace("activity -> spend;", ""))
    proc = causal("reproduce", str(tmp_path / "run"), "--out", str(tmp_path / "third"), cwd=elsewhere)
    assert proc.returncode == 2
    line = one_line(proc.stderr)
    assert "graph.file" in line and "changed since the run" in line
    assert not (tmp_path / "third").exists()
