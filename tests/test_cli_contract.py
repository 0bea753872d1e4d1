"""The command a Hydra user expects: one error format and exit codes, app help, shell completion,
``~`` deletions, a per-run log and graph files end to end. In-process (``cli.main``) where possible."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from causal_cli import cli
from causal_cli.preflight import hydra_deletions
from causal_cli.validate import validate

ERROR_LINE = re.compile(r"^causal: [a-z][a-z ]* error: \S")
QUICK = ["dgp.n=300", "report.enabled=false", "report.console=false", "refuters.n_jobs=1"]

PRODUCT_DOT = """\
digraph product {
  feature_used [role=treatment]; spend [role=outcome];
  account_age -> feature_used -> spend; account_age -> spend;
  activity -> feature_used; activity -> spend;
}
"""


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """Run from an empty folder: anything a refused command wrote would show up in it."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize(
    "args, kind, needle",
    [
        (["run", "dgp.n=-3"], "config", "dgp.n=-3 is out of range"),
        (["run", "dgp.n=abc"], "config", "dgp.n"),
        (["run", "seed=-1"], "config", "seed=-1"),
        (["run", "estimator=nope"], "config", "estimator=nope is not an option; available: "),
        (["run", "refuters.placebo.placebo_type=bogus"], "config", "placebo_type"),
        (["run", "nokey=1"], "config", "nokey"),
        (["run", "~estimator"], "config", "estimator is not set"),
        (["run", "graph.edges=[spend -> account_age]"], "config", "cannot parse override"),
        (["run", 'graph.edges=["spend -> account_age"]'], "graph", "cycle"),
        (["run", "graph=custom"], "graph", "graph.treatment is not set"),
        (["run", "graph=file", "graph.file=missing.dot"], "graph", "missing.dot: no such file"),
        (["run", "-m", "dgp.n=500,-3"], "config", "dgp.n=-3 is out of range"),
        (["run", "-m", "estimator=psm,bogus"], "config", "estimator=bogus is not an option"),
        (["run", "-m", "seed=0,1", "refuters.placebo.num_simulations=5,0"], "config", "num_simulations=0"),
        (["run", "--bogus"], "usage", "unrecognized arguments: --bogus"),
        (["run", "--experiment=x"], "usage", "experiment=NAME (no dashes)"),
        (["frobnicate"], "usage", "unknown command 'frobnicate'"),
    ],
)
def test_refused_inputs_print_one_line_exit_2_and_write_nothing(in_tmp, capsys, args, kind, needle):
    code = cli.main([*args, f"hydra.run.dir={in_tmp}/run"] if args[0] == "run" else args)
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert code == 2, err
    assert len(lines) == 1 and ERROR_LINE.match(lines[0]), err
    assert lines[0].startswith(f"causal: {kind} error: ") and needle in lines[0], lines[0]
    assert "Traceback" not in out + err
    assert list(in_tmp.iterdir()) == []  # no run folder, no outputs/, no log


def test_every_error_line_names_its_kind():
    from causal_cli.errors import CausalCliError

    kinds = {cls.kind for cls in CausalCliError.__subclasses__()}
    assert all(re.fullmatch(r"[a-z]+ error", k) for k in kinds), kinds
    assert "usage error" in kinds


def test_run_help_is_our_own_text_without_schema_groups(capsys):
    assert cli.main(["run", "--help"]) == 0
    text = capsys.readouterr().out
    assert "powered by Hydra" not in text and "schema" not in text
    for group in ("estimator:", "refuters:", "graph:", "dgp:", "experiment:"):
        assert f"\n  {group}" in text, group
    assert "psm" in text and "file" in text  # options, including the graph-file template
    assert text.count("\n  causal run ") == 3  # three examples
    for code in ("0 ", "1 ", "2 ", "130", "143"):
        assert f"\n  {code}" in text, code
    assert "outputs/DATE/TIME_ESTIMATOR/" in text and "run.log" in text


def test_run_help_imports_nothing_heavy():
    code = (
        "import sys; from causal_cli import cli; assert cli.main(['run', '--help']) == 0; "
        "heavy = [m for m in ('dowhy', 'sklearn', 'matplotlib', 'hydra', 'numpy') if m in sys.modules]; "
        "print(heavy)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("[]"), proc.stdout[-300:]


def test_hydra_help_advertises_only_commands_that_work(capsys):
    assert cli.main(["run", "--hydra-help"]) == 0
    text = capsys.readouterr().out
    assert 'eval "$(causal -sc install=bash)"' in text and "causal -sc install=fish | source" in text
    assert "--experimental-rerun" not in text  # refused by causal run (use causal reproduce)


def test_the_help_config_is_hydras_too(compose_cfg):
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from causal_cli.task import VERSION_BASE, conf_dir

    compose_cfg([])  # registers the schemas, clears Hydra's state after
    with initialize_config_dir(config_dir=str(conf_dir()), version_base=VERSION_BASE):
        cfg = compose("config", return_hydra_config=True)
    assert cfg.hydra.help.app_name == "causal run" and "$APP_CONFIG_GROUPS" in cfg.hydra.help.template
    handler = OmegaConf.to_container(cfg.hydra.job_logging, resolve=False)["handlers"]["file"]
    assert handler["class"] == "logging.FileHandler"
    assert handler["filename"] == "${hydra.runtime.output_dir}/run.log"  # each run folder its own file


@pytest.mark.parametrize(
    "line, expected, absent",
    [
        ("causal run estimator=", {"estimator=psm", "estimator=ipw", "estimator=naive"}, set()),
        ("causal run ", {"estimator=", "refuters=", "dgp.", "seed="}, {"schema/", "schema="}),
        ("causal run dgp.", {"dgp.n=", "dgp.confounding="}, set()),
        ("causal re", {"report", "reproduce"}, {"run"}),
        ("causal ", {"run", "list", "show"}, set()),
    ],
)
def test_completion_queries(line, expected, absent):
    found = set(cli.completions(line))
    assert expected <= found, sorted(found)
    assert not any(w.startswith("schema") for w in found) and not (absent & found)


def test_completion_offers_the_users_own_options(tmp_path):
    (tmp_path / "estimator").mkdir()
    (tmp_path / "estimator" / "my_psm.yaml").write_text("defaults:\n  - psm\n  - _self_\nk: 3\n")
    found = cli.completions(f"causal run --config-dir {tmp_path} estimator=")
    assert {"estimator=my_psm", "estimator=psm"} <= set(found)


@pytest.mark.parametrize("first", [["-sc"], ["run", "-sc"], ["--shell-completion"]])
def test_the_query_the_installed_script_makes(monkeypatch, capsys, first):
    monkeypatch.setenv("COMP_LINE", "causal run estimator=p")
    assert cli.main([*first, "query=bash"]) == 0
    words = capsys.readouterr().out.split()
    assert "estimator=psm" in words and "estimator=ps_stratification" in words
    monkeypatch.setenv("COMP_LINE", "causal run refuters=")
    assert cli.main([*first, "query=fish"]) == 0
    assert "refuters=placebo" in capsys.readouterr().out.splitlines()


@pytest.mark.parametrize("shell, marker", [("bash", "complete -o nospace"), ("zsh", "complete -o nospace")])
def test_completion_install_scripts_call_a_working_command(capsys, shell, marker):
    assert cli.main(["run", "-sc", f"install={shell}"]) == 0
    script = capsys.readouterr().out
    assert marker in script and "hydra_bash_completion causal" in script
    assert "$helper -sc query=bash" in script  # `causal -sc query=bash`: see test_the_query_...


def test_fish_install_script(capsys):
    assert cli.main(["-sc", "install=fish"]) == 0
    script = capsys.readouterr().out
    assert "complete -c causal" in script and "-sc query=fish" in script


@pytest.mark.parametrize(
    "override, kept",
    [
        ("~refuters", set()),
        ("~refuters=placebo", {"random_common_cause"}),
        ("~refuters.placebo", {"random_common_cause"}),
        ("~refuters.random_common_cause", {"placebo"}),
    ],
)
def test_refuter_deletions_compose(compose_cfg, override, kept):
    cfg = validate(compose_cfg(hydra_deletions([override])))
    assert set(cfg.refuters) - {"n_jobs", "backend", "address"} == kept


def read(folder):
    return json.loads((folder / "results.json").read_text())


def test_runs_log_to_their_own_run_log_and_graph_files_give_the_same_estimate(in_tmp, capsys):
    """Three real runs in this process: the default graph without refuters, the same graph from a
    DOT file, and a run that fails after its folder exists (exit 1, the error in run.log)."""
    (in_tmp / "product.dot").write_text(PRODUCT_DOT)
    assert cli.main(["run", "~refuters", *QUICK, f"hydra.run.dir={in_tmp / 'a'}"]) == 0
    dot = [
        "graph=file",
        "graph.file=product.dot",
        "~refuters.placebo",
        "refuters.random_common_cause.num_simulations=3",
    ]
    assert cli.main(["run", *dot, *QUICK, f"hydra.run.dir={in_tmp / 'b'}"]) == 0
    failing = ["data=csv", f"data.path={in_tmp / 'absent.csv'}", "refuters=[]"]
    assert cli.main(["run", *failing, *QUICK, f"hydra.run.dir={in_tmp / 'c'}"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("causal: data error: "), err

    a, b, c = (read(in_tmp / name) for name in "abc")
    assert a["status"] == b["status"] == "ok" and c["status"] == "failed"
    assert a["refutations"] == [] and [r["name"] for r in b["refutations"]] == ["random_common_cause"]
    assert a["estimate"] == b["estimate"] and b["graph"]["name"] == "product"

    logs = {name: (in_tmp / name / "run.log").read_text() for name in "abc"}
    for name, text in logs.items():  # each run its own file, holding only its own lines
        assert text.count("INFO causal_cli.run: estimator ") == 1 and f"folder {in_tmp / name}\n" in text, (
            text
        )
    assert re.search(r"INFO causal_cli.run: stage estimate: [\d.]+ s", logs["a"])
    assert "status ok after" in logs["a"]
    assert f"ERROR causal_cli.run: {err[0]}" in logs["c"] and "status failed" in logs["c"]
    import logging  # nothing this process logs later lands in a finished run's log

    assert not [h for h in logging.getLogger().handlers if getattr(h, "baseFilename", "").endswith("run.log")]
