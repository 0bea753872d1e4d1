"""The Python API (causal_cli.api) and the run record (RunResult): real Hydra compose, real DoWhy, real files."""

from __future__ import annotations

import json

import pandas as pd
import pytest

import causal_cli.api as causal
from causal_cli.errors import ConfigError
from causal_cli.results import RunResult
from tests.conftest import FAST, read_results, run_in_process

QUICK = ["dgp.n=800", *FAST, "report.enabled=false", "report.console=false"]
GRAPH = {"treatment": "feature_used", "outcome": "spend", "confounders": ["account_age", "activity"]}


@pytest.fixture(scope="module")
def product_growth() -> pd.DataFrame:
    """The product_growth DGP's table (known effect: 10)."""
    from causal_cli.data import load_dataset
    from causal_cli.graph import CausalGraph
    from causal_cli.validate import validate

    typed = validate(causal.compose(["dgp.n=800"]))
    return load_dataset(typed, CausalGraph.from_config(typed.graph)).frame


def assert_round_trip(run_dir) -> dict:
    """results.json -> RunResult -> results.json: the same dict, the same bytes."""
    text = (run_dir / "results.json").read_text()
    record = RunResult.load(run_dir)
    assert record.to_dict() == json.loads(text)
    assert list(record.to_dict()) == list(json.loads(text))  # the field order too
    assert record.to_json() + "\n" == text
    return json.loads(text)


def test_run_on_a_dataframe_gives_the_estimate_of_causal_run_on_the_same_csv(product_growth, tmp_path):
    product_growth.to_csv(tmp_path / "study.csv", index=False)
    proc = run_in_process(
        ["run", "data=csv", "data.path=study.csv", "graph=custom", "graph.treatment=feature_used",
         "graph.outcome=spend", "graph.confounders=[account_age,activity]", *QUICK,
         f"hydra.run.dir={tmp_path / 'cli'}"],
        tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    from_cli = read_results(tmp_path / "cli")

    before = product_growth.copy()
    result = causal.run(product_growth, graph=GRAPH, overrides=QUICK)
    pd.testing.assert_frame_equal(product_growth, before)  # the caller's frame is not touched
    assert result.status == "ok" and result.output_dir is None
    for key in ("estimate", "std_error", "ci_low", "ci_high", "naive_estimate", "n_rows", "data_hash"):
        assert getattr(result, key) == from_cli[key], key
    assert [r.name for r in result.refutations] == ["placebo", "random_common_cause"]
    assert result.diagnostics.max_abs_smd_before == from_cli["max_abs_smd_before"]
    # the same study with the graph as YAML text, and as a file
    yaml_text = "treatment: feature_used\noutcome: spend\nconfounders: [account_age, activity]\n"
    assert causal.run(product_growth, graph=yaml_text, overrides=QUICK).estimate == result.estimate
    (tmp_path / "g.yaml").write_text(yaml_text)
    assert (
        causal.run(product_growth, graph=str(tmp_path / "g.yaml"), overrides=QUICK).estimate
        == result.estimate
    )


def test_to_frame_has_one_row_per_estimate_with_the_truth(capsys):
    result = causal.run(overrides=[*QUICK, "+compare={naive: {}}"])
    frame = result.to_frame()
    assert list(frame["role"]) == ["main", "compare"]
    assert list(frame["estimator"]) == ["psm", "naive"]
    main, naive = frame.iloc[0], frame.iloc[1]
    assert main["estimate"] == result.estimate and main["ci_low"] == result.ci_low
    assert main["truth"] == 10.0 and main["bias"] == pytest.approx(result.estimate - 10.0, abs=0)
    assert naive["estimate"] == result.comparisons[0].estimate
    assert naive["bias"] > main["bias"]  # confounding inflates the naive difference
    assert capsys.readouterr().out == ""  # a notebook's run prints nothing unless asked


def test_a_run_folder_from_python_is_the_folder_causal_run_writes_and_loads_back(tmp_path):
    overrides = [*QUICK, "report.enabled=true"]
    result = causal.run(overrides=overrides, output_dir=tmp_path / "py")
    proc = run_in_process(["run", *overrides, f"hydra.run.dir={tmp_path / 'cli'}"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    for name in sorted(p.name for p in (tmp_path / "cli").glob("*.csv")):
        assert (tmp_path / "py" / name).read_bytes() == (tmp_path / "cli" / name).read_bytes(), name
    assert (tmp_path / "py" / "report.html").is_file()
    payload = assert_round_trip(tmp_path / "py")
    assert result.to_dict() == payload  # the returned record is the folder's record
    assert_round_trip(tmp_path / "cli")
    loaded = causal.load(tmp_path / "py")
    assert loaded.status == "ok" and loaded.estimate == result.estimate
    assert loaded.refutations[0].rule and loaded.diagnostics.balance
    path, problems = causal.report(tmp_path / "py")  # redrawn from the record
    assert path.name == "report.html" and problems == []
    check = causal.reproduce(tmp_path / "cli", tmp_path / "again")  # no printing, no os.chdir
    assert check.ok and check.new_dir == (tmp_path / "again").resolve(), check.render()


def test_a_failed_run_raises_and_its_record_round_trips(tmp_path):
    with pytest.raises(causal.RunFailed, match="identification error") as failed:
        causal.run(overrides=[*QUICK, "estimator=iv"], output_dir=tmp_path / "run")
    payload = assert_round_trip(tmp_path / "run")
    assert payload["status"] == "failed" and "estimate" not in payload
    record = failed.value.result
    assert record.status == "failed" and not record.has_analysis and record.to_frame().empty


@pytest.mark.parametrize(
    "overrides",
    [
        ["experiment=ab_feature_launch", "dgp.n=2000", "ab.aa_simulations=0"],
        ["experiment=uplift_segments", "dgp.n=600"],
    ],
    ids=["ab", "heterogeneity"],
)
def test_ab_and_heterogeneity_records_round_trip(tmp_path, overrides):
    causal.run(
        overrides=[*overrides, "refuters.n_jobs=1", "report.enabled=false"], output_dir=tmp_path / "run"
    )
    payload = assert_round_trip(tmp_path / "run")
    block = "experiment" if "ab" in overrides[0] else "heterogeneity"
    assert payload[block] and RunResult.load(tmp_path / "run").to_dict()[block] == payload[block]


def test_compose_with_a_user_config_folder_and_its_checks(tmp_path):
    mine = tmp_path / "mine" / "estimator"
    mine.mkdir(parents=True)
    (mine / "my_psm.yaml").write_text("defaults:\n  - psm\n  - _self_\ncaliper: 0.05\n")
    cfg = causal.compose(["estimator=my_psm"], config_dir=tmp_path / "mine")
    assert cfg.estimator.name == "psm" and cfg.estimator.caliper == 0.05
    assert "hydra" not in cfg
    with pytest.raises(ConfigError, match="dgp.n"):
        causal.compose(["dgp.n=-3"])  # validated as causal run validates
    with pytest.raises(ConfigError, match="nope"):
        causal.compose(["estimator=nope"])
    with pytest.raises(ConfigError, match="password"):
        causal.compose(["data=sql", "data.url=postgresql://me:secret@db/x"])  # the trust checks


def test_a_run_on_a_dataframe_is_reproduced_in_python_with_the_same_frame_only(product_growth, tmp_path):
    from causal_cli.errors import DataError
    from tests.conftest import run_in_process as run_command

    quick = ["dgp.n=800", *FAST, "report.console=false"]
    result = causal.run(product_growth, graph=GRAPH, overrides=quick, output_dir=tmp_path / "run")
    assert result.data_description == "a pandas DataFrame passed in Python"
    again = causal.reproduce(tmp_path / "run", out=tmp_path / "again", data=product_growth)
    assert again.ok, again.render()
    assert ("refutations.csv", True, "byte-identical") in again.files
    changed = product_growth.assign(spend=product_growth["spend"] + 1.0)
    with pytest.raises(DataError, match="not the DataFrame the run analysed"):
        causal.reproduce(tmp_path / "run", out=tmp_path / "changed", data=changed)
    assert not (tmp_path / "changed").exists()
    with pytest.raises(ConfigError, match=r"api\.reproduce\(.*data=df\)"):
        causal.reproduce(tmp_path / "run")
    # the command cannot re-read a frame: one line, exit 2, no new folder
    proc = run_command(["reproduce", str(tmp_path / "run"), "--out", str(tmp_path / "cli")], tmp_path)
    assert proc.returncode == 2 and "analysed a pandas DataFrame passed in Python" in proc.stderr
    assert proc.stderr.count("\n") == 1 and not (tmp_path / "cli").exists()
    # and a run that read its own data takes no frame
    causal.run(overrides=["dgp.n=800", "refuters=[]", "report.console=false"], output_dir=tmp_path / "own")
    with pytest.raises(ConfigError, match="data= is only for runs on a DataFrame"):
        causal.reproduce(tmp_path / "own", data=product_growth)
