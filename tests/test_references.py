"""References per estimand and per data file, and the scorecard that compares each job with its own."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from causal_cli import references, sweep
from causal_cli.cli import expand_data_globs, multirun_first
from causal_cli.data import Dataset
from causal_cli.errors import ConfigError, DataError
from tests.conftest import run_in_process


def _cfg(**values):
    return OmegaConf.create({"reference": None, "reference_kind": "auto", "reference_from": None, **values})


def _frame(seed: int, n: int = 300) -> tuple[pd.DataFrame, dict[str, float]]:
    """Confounded data with heterogeneous effects tau = 1 + x (so ATT > ATE): frame and its sample truths."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    t = (rng.random(n) < 1 / (1 + np.exp(-x))).astype(int)
    tau = 1 + x
    y = x + t * tau + rng.normal(size=n)
    frame = pd.DataFrame({"x": x, "t": t, "y": y, "ite": tau})
    return frame, {"ate": float(tau.mean()), "att": float(tau[t == 1].mean())}


def test_a_mapping_gives_each_estimand_its_own_reference():
    ds = Dataset(frame=pd.DataFrame())
    cfg = _cfg(reference={"ate": 1.0, "att": 2.5})
    att = references.resolve(cfg, ds, "att")
    assert (att.value, att.estimand, att.kind, att.source) == (2.5, "att", "published", "config:att")
    assert references.resolve(cfg, ds, "ate").value == 1.0
    atc = references.resolve(cfg, ds, "atc")  # not listed: no comparison rather than a wrong one
    assert atc.value is None and atc.values == {"ate": 1.0, "att": 2.5}
    plain = references.resolve(_cfg(reference=3, reference_kind="experimental_benchmark"), ds, "att")
    assert (plain.value, plain.estimand, plain.kind) == (3.0, None, "experimental_benchmark")
    with pytest.raises(ConfigError, match=r"reference\.ett is not an estimand"):
        references.check_config(_cfg(reference={"ett": 1}))
    with pytest.raises(ConfigError, match=r"reference\.att='x' is not a number"):
        references.check_config(_cfg(reference={"att": "x"}))


def test_a_json_file_keyed_by_data_file_and_a_column_of_effects(tmp_path):
    (tmp_path / "reps").mkdir()
    (tmp_path / "reps" / "references.json").write_text(
        json.dumps({"a.csv": {"ate": 1.5, "att": 2.0}, "b.csv": 0.5})
    )
    ds = Dataset(frame=pd.DataFrame())
    # looked for beside the data file, keyed by the file's name
    cfg = _cfg(reference_from="references.json", data={"path": "reps/a.csv"})
    ref = references.resolve(cfg, ds, "att", base_dir=str(tmp_path))
    assert (ref.value, ref.kind, ref.source) == (2.0, "ground_truth", "references.json[a.csv]")
    cfg = _cfg(reference_from="reps/references.json", data={"path": "reps/b.csv"})
    assert references.resolve(cfg, ds, "ate", base_dir=str(tmp_path)).value == 0.5
    cfg = _cfg(reference_from="reps/references.json", data={"path": "reps/c.csv"})
    with pytest.raises(DataError, match="has no entry for data.path=reps/c.csv"):
        references.resolve(cfg, ds, "ate", base_dir=str(tmp_path))

    frame, truth = _frame(0)
    cfg = _cfg(reference_from="column:ite")
    for target in ("ate", "att"):
        ref = references.resolve(cfg, Dataset(frame=frame), target, treatment="t")
        assert ref.value == pytest.approx(truth[target]) and ref.source == "column:ite"


def test_multirun_flag_anywhere_and_data_globs(tmp_path, monkeypatch):
    assert multirun_first(["estimator=a,b", "-m", "seed=1"]) == ["-m", "estimator=a,b", "seed=1"]
    assert multirun_first(["--multirun", "x=1"]) == ["--multirun", "x=1"]
    assert multirun_first(["-cn", "-m", "x=1"]) == ["-cn", "-m", "x=1"]  # a value, not the flag
    for name in ("r2.csv", "r1.csv", "notes.txt"):
        (tmp_path / name).write_text("x\n1\n")
    monkeypatch.chdir(tmp_path)
    assert expand_data_globs(["-m", "data.path=glob(r*.csv)"]) == ["-m", "data.path=r1.csv,r2.csv"]
    assert expand_data_globs(["data.path=glob(r*.csv)"]) == ["data.path=glob(r*.csv)"]  # one run: untouched


def _job(folder: Path, overrides: list[str], **result) -> None:
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    (folder / "results.json").write_text(json.dumps({"status": "ok", **result}))


def test_scorecard_groups_over_swept_keys_and_averages_over_replication_files(tmp_path):
    """Two estimands (a setting) x three files (replications): MAE, RMSE, coverage per row, each job
    against its own reference; estimands mixed under one unstated reference are warned about."""
    k = 0
    for target, refs in (("ate", [1.0, 2.0, 3.0]), ("att", [2.0, 3.0, 4.0])):
        for i, ref in enumerate(refs):
            estimate = ref + (0.5 if i == 0 else -1.0)
            _job(
                tmp_path / f"{k}_job",
                ["estimator=regression", f"estimator.target_units={target}", f"data.path=r{i}.csv"],
                estimator="regression",
                target_units=target,
                estimate=estimate,
                reference=ref,
                reference_kind="ground_truth",
                reference_estimand=target,
                ci_low=estimate - 0.8,
                ci_high=estimate + 0.8,
            )
            k += 1
    card = sweep.scorecard(tmp_path)
    assert card.settings == ["estimator.target_units"] and card.replications == {"data.path": 3}
    assert card.warnings == []
    for row in card.rows:
        assert row["runs"] == 3
        assert row["mean_bias"] == pytest.approx(-0.5)
        assert row["mae"] == pytest.approx((0.5 + 1 + 1) / 3)
        assert row["rmse"] == pytest.approx(math.sqrt((0.25 + 1 + 1) / 3))
        assert row["ci_coverage"] == pytest.approx(1 / 3)
        assert row["reference_kind"] == "ground_truth"
    assert [r["truth"] for r in card.rows] == [pytest.approx(2.0), pytest.approx(3.0)]

    # replicate_over=[] in the sweep's config: the files become settings, compared side by side
    (tmp_path / "multirun.yaml").write_text("replicate_over: []\n")
    card = sweep.scorecard(tmp_path)
    assert set(card.settings) == {"estimator.target_units", "data.path"} and len(card.rows) == 6

    for path in tmp_path.glob("*_job/results.json"):
        payload = json.loads(path.read_text())
        payload["reference_estimand"] = None  # one number for both estimands
        path.write_text(json.dumps(payload))
    warnings = sweep.scorecard(tmp_path).warnings
    assert len(warnings) == 1 and "att" in warnings[0] and "reference: {ate: ..., att: ...}" in warnings[0]


def test_a_real_multirun_over_replication_files_with_their_own_truths(tmp_path):
    """``causal run`` over 3 files (data.path glob, ``-m`` last) x ATE/ATT, truths from references.json."""
    (tmp_path / "reps").mkdir()
    truths = {}
    for i in range(3):
        frame, truth = _frame(i)
        frame.drop(columns="ite").to_csv(tmp_path / "reps" / f"rep_{i}.csv", index=False)
        truths[f"rep_{i}.csv"] = truth
    (tmp_path / "reps" / "references.json").write_text(json.dumps(truths))
    proc = run_in_process(
        [
            "run",
            "data=csv",
            "data.path=glob(reps/rep_*.csv)",
            "reference_from=references.json",
            "graph=custom",
            "graph.treatment=t",
            "graph.outcome=y",
            "graph.confounders=[x]",
            "estimator=regression",
            "estimator.target_units=ate,att",
            "refuters=[]",
            "report.enabled=false",
            "report.console=false",
            "hydra.sweep.dir=sweep",
            "-m",
        ],
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    jobs = [json.loads(p.read_text()) for p in sorted((tmp_path / "sweep").glob("*/results.json"))]
    assert len(jobs) == 6
    for job in jobs:
        name = Path(job["data_files"]["data.path"]["path"]).name
        assert job["reference_estimand"] == job["target_units"]
        assert job["reference"] == pytest.approx(truths[name][job["target_units"]])
        assert job["reference_source"] == f"references.json[{name}]"
    with open(tmp_path / "sweep" / "summary.csv", newline="") as fh:
        rows = {r["estimator.target_units"]: r for r in csv.DictReader(fh)}
    assert set(rows) == {"ate", "att"}
    for target, row in rows.items():
        mine = [j for j in jobs if j["target_units"] == target]
        biases = [j["estimate"] - j["reference"] for j in mine]
        assert float(row["mae"]) == pytest.approx(np.mean(np.abs(biases)))
        assert float(row["rmse"]) == pytest.approx(math.sqrt(np.mean(np.square(biases))))
        covered = [j["ci_low"] <= j["reference"] <= j["ci_high"] for j in mine]
        assert float(row["ci_coverage"]) == pytest.approx(np.mean(covered))
        assert row["reference_kind"] == "ground_truth" and row["runs"] == "3"
    assert "MAE" in proc.stdout and "replications over data.path (3 values)" in proc.stdout


def test_estimator_presets_set_an_option_for_one_estimator(compose_cfg):
    from causal_cli.validate import validate

    preset = validate(compose_cfg(["estimator=regression_additive"]))
    plain = validate(compose_cfg(["estimator=regression"]))
    assert preset.estimator.name == plain.estimator.name == "regression"
    assert preset.estimator.interactions is False and plain.estimator.interactions is True
    assert validate(compose_cfg(["estimator=ipw_crump"])).estimator.trimming == "crump"


def test_max_categories_refuses_a_continuous_column_listed_as_categorical():
    from causal_cli.data.checks import one_hot

    frame = pd.DataFrame({"income": np.arange(60) * 1.5, "region": ["a", "b", "c"] * 20})
    with pytest.raises(DataError, match=r"column 'income' \(categorical\) has 60 levels.*max_categories=50"):
        one_hot(frame, "income", [])
    with pytest.raises(DataError, match="max_categories=2"):
        one_hot(frame, "region", [], max_levels=2)
    _, names = one_hot(frame, "region", [], max_levels=3)
    assert names == ["region_b", "region_c"]


def test_a_naive_run_has_no_over_or_understatement_sentence():
    from causal_cli.report.view import naive_sentence

    row = {"naive_estimate": 2.0, "estimate": 2.0, "naive_overstatement_pct": 0.0}
    assert naive_sentence({**row, "estimator": "naive"}) is None
    found = naive_sentence({**row, "estimator": "regression", "naive_estimate": 1.0})
    assert "understates" in "".join(text for text, _ in found.parts)


def test_acic2016_preparation_writes_files_and_truths_from_the_potential_outcomes(tmp_path):
    """The preparation script on a 4-row stand-in of causallib's files (same layout and column names)."""
    import importlib.util

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "acic2016_prepare.py"
    spec = importlib.util.spec_from_file_location("acic2016_prepare", script)
    prepare = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(prepare)
    source = tmp_path / "src"
    source.mkdir()
    pd.DataFrame({"x_1": [1, 2, 3, 4], "x_2": ["A", "B", "A", "C"]}).to_csv(source / "x.csv", index=False)
    pd.DataFrame(
        {
            "z": [1, 0, 1, 0],
            "y0": [0.0, 1.0, 2.0, 3.0],
            "y1": [5.0, 6.0, 7.0, 8.0],
            "mu0": [0.0, 1.0, 2.0, 3.0],
            "mu1": [1.0, 3.0, 5.0, 7.0],  # effects 1, 2, 3, 4
        }
    ).to_csv(source / "zymu_3.csv", index=False)
    refs = prepare.prepare(source, tmp_path / "out", instances=[3])
    assert refs == {"instance_03.csv": {"ate": 2.5, "att": 2.0, "atc": 3.0}}
    assert json.loads((tmp_path / "out" / "references.json").read_text()) == refs
    frame = pd.read_csv(tmp_path / "out" / "instance_03.csv")
    assert list(frame.columns) == ["x_1", "x_2", "z", "y"]
    assert frame["y"].tolist() == [5.0, 1.0, 7.0, 3.0]  # y1 for the treated, y0 for the controls


def test_the_overlap_warning_uses_the_bound_that_matters_for_the_estimand():
    """Many treated units with scores near 0 (plenty of controls) and few near 1: bad for the ATE,
    fine for the ATT; treated units near 1 (no comparable controls) are what the ATT warning counts."""
    from causal_cli.diagnostics import overlap_summary

    ps = np.r_[np.full(50, 0.01), np.full(50, 0.5), np.full(100, 0.3)]
    t = np.r_[np.ones(100), np.zeros(100)].astype(int)
    ate, att = overlap_summary(ps, t, estimand="ate"), overlap_summary(ps, t, estimand="att")
    assert ate["poor"] and ate["share_at_risk"] == pytest.approx(0.25)
    assert not att["poor"] and att["share_at_risk"] == 0.0
    assert att["share_outside"] == ate["share_outside"] == pytest.approx(0.25)  # the field keeps its meaning
    ps[:10] = 0.99  # ten treated units above 0.95
    att = overlap_summary(ps, t, estimand="att")
    assert att["poor"] and att["share_at_risk"] == pytest.approx(0.10)
    assert att["message"].startswith("poor overlap for the ATT: 10.0% of treated units")


def test_a_long_refutation_is_announced_from_its_first_simulations(capsys):
    from causal_cli.report.console import notice
    from causal_cli.simulate import CostWatch

    now = [0.0]
    watch = CostWatch(200, "refuter placebo", clock=lambda: now[0], notice=notice)
    now[0] = 4.0
    assert watch.update(1) is None and watch.update(1) is None  # 2 of the first 3, under 5 s: not yet
    now[0] = 16.2
    message = watch.update(1)  # 5.4 s each -> 18 min for 200
    assert message.startswith("refuter placebo: 200 simulations projected to take about 18 min")
    assert "5.4 s each over the first 3" in capsys.readouterr().out
    assert watch.update(1) is None  # said once
    quick = CostWatch(200, "refuter placebo", clock=lambda: 0.5)
    assert [quick.update(1) for _ in range(5)] == [None] * 5 and quick.projected_s < 60


def test_a_ray_address_nothing_answers_fails_in_one_line():
    import socket

    from causal_cli.cli import ray_address_problem

    with socket.socket() as sock:  # a port that was free a moment ago: connection refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    problem = ray_address_problem(["-m", f"hydra.launcher.ray.init.address=127.0.0.1:{port}"], timeout=2)
    assert problem.startswith(
        f"launcher error: no Ray cluster answers at hydra.launcher.ray.init.address=127.0.0.1:{port}"
    )
    assert "\n" not in problem
    with socket.socket() as server:  # something listening: no objection
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert (
            ray_address_problem([f"hydra.launcher.ray.init.address=ray://127.0.0.1:{port}"], timeout=2)
            is None
        )
    assert ray_address_problem(["hydra.launcher.ray.init.address=auto"]) is None
    assert "is not a port" in ray_address_problem(["hydra.launcher.ray.init.address=h:x"])
