"""Compose once (causal_cli/composition.py): every config it hands out is the one Hydra's own loader composes.

In process, against Hydra's stock ``ConfigLoaderImpl`` on the real config folder (and a user folder):
the whole config, ``hydra`` node included, as YAML, plus the struct / read-only flags; one lean loader
serves a whole sequence, so configs built from a kept merge (and after a failed composition) are compared.
"""

from __future__ import annotations

import pickle

import pytest
from hydra import version
from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra._internal.utils import create_automatic_config_search_path
from hydra.core.config_search_path import SearchPathQuery
from hydra.types import RunMode
from omegaconf import OmegaConf

from causal_cli.composition import Compositions, LeanConfigLoader
from causal_cli.schema import register_configs
from causal_cli.task import VERSION_BASE, conf_dir

#: command lines as ``causal run`` hands them to Hydra (after cli.prepare_run_args)
COMMAND_LINES = [
    [],
    ["dgp.seed=3", "dgp.n=2000"],
    ["dgp.n=2000", "dgp.seed=3"],
    ["dgp.seed=4", "refuters=[]", "report.console=false"],
    ["estimator=ipw", "dgp.seed=1"],
    ["estimator=ipw", "dgp.seed=2", "estimator.clip=0.02"],
    ["refuters=[placebo]", "refuters.placebo.num_simulations=7"],
    ["~refuters.placebo"],
    ["experiment=estimator_shootout"],
    ["experiment=iv_promo", "seed=5"],
    ["+extra=1", "dgp.seed=1"],
    ["++seed=9"],
    ["hydra.job.chdir=false", "hydra.run.dir=/tmp/x", "seed=2"],
    ["data=csv", "data.path=some.csv"],
    ["graph=custom", "graph.treatment=t", "graph.outcome=y"],
    ["dgp.seed=3", "dgp.n=2000"],  # the second time: from the kept merge
    [],
]


@pytest.fixture
def search_path(tmp_path):
    register_configs()
    version.setbase(VERSION_BASE)

    def build(user_dir=None):
        path = create_automatic_config_search_path(None, None, str(conf_dir()))
        if user_dir is not None:
            path.prepend(
                provider="command-line", path=f"file://{user_dir}", anchor=SearchPathQuery(provider="schema")
            )
        return path

    return build


def outcome(loader, overrides, run_mode=RunMode.RUN):
    """The composed config as text and flags, or the error Hydra raised."""
    try:
        cfg = loader.load_configuration(config_name="config", overrides=list(overrides), run_mode=run_mode)
    except Exception as exc:  # noqa: BLE001 - the same failure is part of the contract
        return ("error", type(exc).__name__, str(exc))
    return (
        OmegaConf.to_yaml(cfg),
        OmegaConf.is_struct(cfg),
        OmegaConf.is_readonly(cfg),
        OmegaConf.is_readonly(cfg.hydra),
        OmegaConf.is_struct(cfg.hydra),
    )


def test_every_config_is_the_one_hydra_composes(search_path):
    stock, lean = ConfigLoaderImpl(search_path()), LeanConfigLoader(search_path())
    for overrides in COMMAND_LINES:
        assert outcome(lean, overrides) == outcome(stock, overrides), overrides
    # the repeated choices were served from the kept merge, so the comparison covered that path
    assert lean.compositions.hits >= 8
    assert lean.compositions.misses == len(lean.compositions.templates)


def test_a_failed_composition_is_the_same_and_leaves_nothing_behind(search_path):
    stock, lean = ConfigLoaderImpl(search_path()), LeanConfigLoader(search_path())
    for overrides in (["estimator=nope"], ["dgp.n=abc"], ["dgp.seed=1"], ["dgp.n=abc"], ["nokey=1"], []):
        got, want = outcome(lean, overrides), outcome(stock, overrides)
        assert got == want, overrides
    assert outcome(lean, ["dgp.n=abc"])[0] == "error"


def test_multirun_master_config_and_a_user_config_folder(search_path, tmp_path):
    (tmp_path / "estimator").mkdir()
    (tmp_path / "estimator" / "my_ipw.yaml").write_text(
        "defaults:\n  - ipw\n  - _self_\nclip: [0.03, 0.97]\n"
    )
    stock, lean = ConfigLoaderImpl(search_path(tmp_path)), LeanConfigLoader(search_path(tmp_path))
    for overrides in (["estimator=my_ipw", "dgp.seed=1"], ["estimator=my_ipw", "dgp.seed=2"], ["dgp.seed=2"]):
        got = outcome(lean, overrides)
        assert got == outcome(stock, overrides) and got[0] != "error"
    assert "- 0.03" in outcome(lean, ["estimator=my_ipw"])[0]
    # the same folder through hydra.searchpath instead (the repository is kept per search path)
    stock, lean = ConfigLoaderImpl(search_path()), LeanConfigLoader(search_path())
    via = [f"hydra.searchpath=[file://{tmp_path}]", "estimator=my_ipw"]
    for overrides in (via, ["estimator=my_ipw"], via, [*via, "dgp.seed=4"]):
        assert outcome(lean, overrides) == outcome(stock, overrides), overrides
    assert outcome(lean, via)[0] != "error" and outcome(lean, ["estimator=my_ipw"])[0] == "error"
    sweep = ["dgp.seed=1,2,3", "estimator=my_ipw,psm", "hydra.mode=MULTIRUN"]
    assert outcome(lean, sweep, RunMode.MULTIRUN) == outcome(stock, sweep, RunMode.MULTIRUN)
    assert outcome(lean, sweep, RunMode.MULTIRUN)[0] != outcome(lean, ["estimator=my_ipw"])[0]


def test_a_job_config_from_the_batch_check_is_handed_to_the_launch_once(search_path):
    stock, lean = ConfigLoaderImpl(search_path()), LeanConfigLoader(search_path())
    master = lean.load_configuration("config", ["dgp.seed=1,2", "hydra.mode=MULTIRUN"], RunMode.MULTIRUN)
    want = OmegaConf.to_yaml(stock.load_sweep_config(master, ["dgp.seed=2"]))
    checked = lean.load_sweep_config(master, ["dgp.seed=2"])  # the sweeper's batch check
    launched = lean.load_sweep_config(master, ["dgp.seed=2"])
    assert launched is checked  # composed once
    assert OmegaConf.to_yaml(launched) == want
    kept = lean.load_sweep_config(master, ["dgp.seed=1"])
    other = lean.load_configuration("config", ["dgp.seed=1,2", "hydra.mode=MULTIRUN"], RunMode.MULTIRUN)
    assert lean.load_sweep_config(other, ["dgp.seed=1"]) is not kept  # another sweep's master: composed
    again = lean.load_sweep_config(master, ["dgp.seed=2"])  # handed once: a later call composes anew
    assert again is not launched and OmegaConf.to_yaml(again) == want


def test_a_pickled_loader_carries_no_kept_configs(search_path):
    lean = LeanConfigLoader(search_path(), Compositions())
    lean.load_configuration("config", ["dgp.seed=1"], RunMode.RUN)
    assert lean.compositions.templates
    copy = pickle.loads(pickle.dumps(lean))
    assert not copy.compositions.templates and not copy._delegates
    assert outcome(copy, ["dgp.seed=1"]) == outcome(lean, ["dgp.seed=1"])


def test_the_preflight_hands_its_merge_to_the_launch():
    """A ``causal run`` composes the files once: the launch's composition is served from the preflight's."""
    from hydra._internal.utils import get_args_parser
    from hydra.core.global_hydra import GlobalHydra

    from causal_cli import preflight, task

    checked = preflight.check(["dgp.seed=1", "dgp.n=500"])
    assert checked.compositions.misses == 1 and checked.compositions.hits == 0
    hydra = task.main_hydra(get_args_parser().parse_args(["dgp.seed=1", "dgp.n=500"]), checked.compositions)
    try:
        cfg = hydra.compose_config("config", ["dgp.seed=1", "dgp.n=500"], run_mode=RunMode.RUN)
    finally:
        GlobalHydra.instance().clear()
    assert checked.compositions.hits == 1 and checked.compositions.misses == 1
    assert cfg.dgp.n == 500 and cfg.hydra.job.name == task.JOB_NAME


def test_a_claimed_jobs_header_is_the_one_the_job_would_collect(compose_cfg):
    """The job takes its command line into the claim's header instead of collecting the provenance again."""
    from causal_cli.task import run_header, with_command_line

    cfg = compose_cfg(["dgp.seed=3"])
    argv = ["-m", "dgp.seed=range(3)", "report.console=false"]
    claimed = run_header(cfg)  # save_hydra_record's, from sys.argv
    got, want = with_command_line(claimed, argv), run_header(cfg, argv)
    assert got["provenance"] == want["provenance"] and list(got["provenance"]) == list(want["provenance"])
    assert {k: v for k, v in got.items() if k != "started_at"} == {
        k: v for k, v in want.items() if k != "started_at"
    }
    assert got["started_at"] == claimed["started_at"]


def test_a_value_sweep_reads_and_merges_the_config_files_once_whatever_its_size(run_causal, monkeypatch):
    """The preflight's merge serves the multirun's config and every job's."""
    import json

    merges = []
    full = ConfigLoaderImpl._compose_config_from_defaults_list

    def counted(self, *args, **kwargs):
        merges.append(1)
        return full(self, *args, **kwargs)

    monkeypatch.setattr(ConfigLoaderImpl, "_compose_config_from_defaults_list", counted)
    proc, out = run_causal(
        "run",
        "-m",
        "seed=0,1,2,3",
        "dgp.n=300",
        "refuters=[]",
        "report.enabled=false",
        "report.console=false",
    )
    assert proc.returncode == 0, proc.stderr
    assert len(merges) == 1
    jobs = sorted(out.glob("*/results.json"))
    assert [json.loads(p.read_text())["seed"] for p in jobs] == [0, 1, 2, 3]
    assert [OmegaConf.load(p.parent / ".hydra" / "config.yaml").seed for p in jobs] == [0, 1, 2, 3]
