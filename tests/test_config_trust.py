"""The config trust boundary: Hydra callbacks and logging, user config folders, ``causal show``,
size bounds and ``causal reproduce`` (causal_cli.preflight, causal_cli.trust, causal_cli.reproduce)."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest

from causal_cli import cli, preflight, trust
from causal_cli.errors import ConfigError
from causal_cli.task import conf_dir


@pytest.fixture(autouse=True)
def no_user_allow_list(monkeypatch, tmp_path):
    monkeypatch.delenv(trust.ALLOW_ENV, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


EVIL_LOGGING = """# @package _global_
hydra:
  job_logging:
    version: 1
    handlers:
      x:
        (): os.system
        command: touch pwned
    root:
      handlers: [x]
"""


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["+hydra.callbacks.x._target_=os.system"], "hydra.callbacks.x._target_='os.system' is not allowed"),
        (
            ["-m", "estimator=naive,psm", "+hydra.callbacks.x._target_=builtins.exec"],
            "hydra.callbacks.x._target_='builtins.exec' is not allowed",
        ),
        (
            ["+hydra.job_logging.handlers.h.class=evil.Handler"],
            "hydra.job_logging.handlers.h.class='evil.Handler'",
        ),
        (["+hydra.job_logging.handlers.h.stream=ext://antigravity.x"], "allowed: ext://sys.stdout"),
        (["hydra.launcher._target_=os.system"], "hydra.launcher._target_='os.system' is not allowed"),
        (["+hydra.job.env_set.LD_PRELOAD=/tmp/x.so"], "hydra.job.env_set.LD_PRELOAD is not allowed"),
        (
            ["+compare.ipw.propensity_model={_target_: builtins.open, file: x}"],
            "compare.ipw.propensity_model",
        ),
    ],
)
def test_hydra_callbacks_logging_and_models_are_refused_before_hydra_runs(args, expected):
    problem = cli._check_trust(args)
    assert problem is not None and expected in problem and "\n" not in problem
    assert problem.startswith("config error: ")


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["-m", "estimator=naive,psm", "seed=1,2"],
        ["-m", "estimator=glob(*,exclude=[iv,frontdoor])", "seed=range(1,3)"],
        ["hydra/job_logging=default", "hydra/hydra_logging=default"],
        ["+hydra.job_logging.handlers.f.class=logging.StreamHandler"],
        ["+hydra.job.env_set.OMP_NUM_THREADS=1"],
        [
            "estimator=aipw",
            "estimator.outcome_model={_target_: sklearn.ensemble.RandomForestRegressor, n_estimators: 5}",
        ],
    ],
)
def test_the_tools_own_configs_pass(args):
    assert cli._check_trust(args) is None


def test_an_experiment_file_is_composed_per_swept_choice(tmp_path):
    user = tmp_path / "mine"
    write(user / "experiment" / "evil.yaml", EVIL_LOGGING)
    write(user / "experiment" / "fine.yaml", "# @package _global_\nseed: 3\n")
    args = cli.user_config_first(["--config-dir", str(user), "experiment=evil"])
    assert "handlers.x.()='os.system' is not allowed" in cli._check_trust(args)
    sweep = cli.user_config_first(["-m", "--config-dir", str(user), "experiment=fine,evil"])
    assert "handlers.x.()='os.system' is not allowed" in cli._check_trust(sweep)
    assert cli._check_trust(cli.user_config_first(["--config-dir", str(user), "experiment=fine"])) is None
    write(
        user / "hydra" / "hydra_logging" / "mine.yaml", "version: 1\nformatters:\n  f:\n    (): os.getcwd\n"
    )
    problem = cli._check_trust(cli.user_config_first(["--config-dir", str(user), "hydra/hydra_logging=mine"]))
    assert "hydra.hydra_logging.formatters.f.()='os.getcwd' is not allowed" in problem
    assert not (tmp_path / "pwned").exists()


def test_the_users_config_dir_file_wins_over_the_built_in_one(tmp_path):
    from hydra._internal.utils import get_args_parser

    user = tmp_path / "mine"
    builtin = (conf_dir() / "estimator" / "psm.yaml").read_text(encoding="utf-8")
    write(user / "estimator" / "psm.yaml", re.sub(r"(?m)^caliper:.*$", "caliper: 0.123", builtin))
    for spelling in (["--config-dir", str(user)], ["-cd", str(user)], [f"--config-dir={user}"]):
        args = cli.user_config_first([*spelling, "dgp.n=100"])
        assert args[:4] == ["--config-path", str(user.resolve()), "--config-dir", str(conf_dir())]
        [cfg] = preflight.compose_all(get_args_parser().parse_args(args), [user])
        assert cfg.estimator.caliper == 0.123 and cfg.dgp.n == 100
    # where the folders cannot swap (an explicit --config-path too), shadowing is refused, not ignored
    with pytest.raises(ConfigError, match=r"estimator/psm.yaml has the name of a built-in config"):
        preflight.check_shadowing(user)


def test_show_prints_only_built_in_config_files(tmp_path, monkeypatch, capsys):
    assert cli.cmd_show(["estimator/psm"]) == 0
    assert "name: psm" in capsys.readouterr().out
    for name in [
        "graph/../../x",
        "graph/../../../../etc/hostname",
        "experiment//etc/passwd",
        "../estimator/psm",
    ]:
        assert cli.cmd_show([name]) == 2
        assert capsys.readouterr().err.startswith("causal: usage error: no config")
    fake = tmp_path / "conf"
    shutil.copytree(conf_dir() / "graph", fake / "graph")
    secret = write(tmp_path / "outside.yaml", "token: 1\n")
    (fake / "graph" / "leak.yaml").symlink_to(secret)
    monkeypatch.setattr("causal_cli.task.conf_dir", lambda: fake)
    assert cli.shown_config("graph", "leak") is None
    assert cli.shown_config("graph", "custom") is not None


def test_config_files_beyond_the_bounds_are_refused_before_parsing(tmp_path):
    big = write(tmp_path / "big.yaml", "a: " + "x" * (trust.MAX_FILE_BYTES + 10))
    keys = write(tmp_path / "keys.yaml", "".join(f"k{i}: {i}\n" for i in range(trust.MAX_KEYS + 1)))
    laughs = write(
        tmp_path / "laughs.yaml",
        'a: &a ["lol","lol","lol"]\nb: &b [*a,*a,*a]\nc: &c [*b,*b,*b]\nd: [*c,*c,*c]\n',
    )
    broken = write(tmp_path / "broken.yaml", "a: [b\n")
    cases = [
        (big, "bytes; allowed: at most"),
        (keys, "keys; allowed"),
        (laughs, "anchors/aliases"),
        (broken, "not valid YAML"),
    ]
    for path, expected in cases:
        with pytest.raises(ConfigError, match=expected) as err:
            trust.check_yaml_file(path)
        assert "\n" not in err.value.one_line()
    ok = write(tmp_path / "ok.yaml", "".join(f"k{i}: {i}\n" for i in range(trust.MAX_KEYS)))
    trust.check_yaml_file(ok)
    user = tmp_path / "mine"
    shutil.copy(laughs, write(user / "experiment" / "x.yaml", "").parent / "x.yaml")
    problem = cli._check_trust(cli.user_config_first(["--config-dir", str(user), "experiment=x"]))
    assert "uses YAML anchors/aliases" in problem
    assert "is 100,001 characters" in cli._check_trust(["seed=" + "1" * (trust.MAX_OVERRIDE_CHARS - 4)])


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """One real run folder (small), made by the ``causal`` command (in process)."""
    from tests.conftest import run_in_process

    base = tmp_path_factory.mktemp("run")
    run_dir = base / "run"
    proc = run_in_process(
        [
            "run",
            "dgp.n=300",
            "refuters=[]",
            "report.enabled=false",
            "report.console=false",
            f"hydra.run.dir={run_dir}",
        ],
        base,
    )
    assert proc.returncode == 0, proc.stderr
    return run_dir


def copy_run(run_dir: Path, tmp_path: Path, config_extra: str = "", rehash: bool = False) -> Path:
    new = tmp_path / "copy"
    shutil.copytree(run_dir, new)
    if config_extra:
        with (new / "config.yaml").open("a", encoding="utf-8") as fh:
            fh.write(config_extra)
    if rehash:
        payload = json.loads((new / "results.json").read_text())
        payload["config_sha256"] = hashlib.sha256((new / "config.yaml").read_bytes()).hexdigest()
        (new / "results.json").write_text(json.dumps(payload))
    return new


def test_a_run_records_the_sha256_of_its_saved_config(finished_run):
    payload = json.loads((finished_run / "results.json").read_text())
    assert payload["config_sha256"] == hashlib.sha256((finished_run / "config.yaml").read_bytes()).hexdigest()


CALLBACK = "hydra:\n  callbacks:\n    x:\n      _target_: os.system\n      _args_: [touch pwned]\n"


@pytest.mark.parametrize(
    ("extra", "rehash", "results_text", "expected"),
    [
        ("seed: 7\n", False, None, "changed since the run (sha256"),
        (CALLBACK, True, None, "hydra.callbacks.x._target_='os.system' is not allowed"),
        ("a: [b\n", True, None, "is not valid YAML"),
        ("x: &a [1]\ny: *a\n", True, None, "anchors/aliases"),
        ("", False, "{{{", "is not readable JSON"),
        ("", False, "[1, 2]", "is not a run's results"),
        ("", False, '{"status": "ok"}', "records no config_sha256"),
    ],
)
def test_reproduce_refuses_in_one_line(finished_run, tmp_path, capsys, extra, rehash, results_text, expected):
    folder = copy_run(finished_run, tmp_path, extra, rehash)
    if results_text is not None:
        (folder / "results.json").write_text(results_text)
    code = cli.main(["reproduce", str(folder), "--out", str(tmp_path / "again")])
    err = capsys.readouterr().err
    assert code == 2
    assert expected in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "again").exists() and not (tmp_path / "pwned").exists()


def test_interpolations_that_would_explode_are_refused_before_resolving():
    doubling = {"a0": "x" * 10, **{f"a{i}": f"${{a{i - 1}}}${{a{i - 1}}}" for i in range(1, 40)}}
    with pytest.raises(ConfigError, match=r"a17 would resolve to about 1,310,720 characters") as err:
        trust.check_interpolation_growth(doubling)
    assert "\n" not in err.value.one_line()
    # the same limit on the command line, before Hydra runs (nothing is resolved)
    args = ["+a0=" + "x" * 10, *(f'+a{i}="${{a{i - 1}}}${{a{i - 1}}}"' for i in range(1, 40))]
    assert "would resolve to about" in cli._check_trust(args)
    # ordinary interpolations, nested and self-referencing (OmegaConf reports the cycle), pass
    trust.check_interpolation_growth({"seed": 0, "dgp": {"seed": "${seed}"}, "x": "${x}", "y": "${dgp}"})
    # (valid keys: the command line's check also validates the config, which refuses unknown keys)
    assert cli._check_trust(["question=abc", "graph.description=${question}${question}"]) is None


def test_a_cluster_address_comes_only_from_the_command_line(tmp_path):
    """A shared experiment may not send the data to a Ray cluster of its choosing (and unpickle its answers)."""
    user = tmp_path / "mine"
    write(user / "experiment" / "exfil.yaml", "# @package _global_\nrefuters:\n  address: ray://evil:10001\n")
    args = cli.user_config_first(["--config-dir", str(user), "experiment=exfil"])
    assert "refuters.address='ray://evil:10001' is set by a config file" in cli._check_trust(args)
    typed = cli.user_config_first(["--config-dir", str(user), "refuters.address=ray://head:10001"])
    assert cli._check_trust(typed) is None  # the person running the command chose it
