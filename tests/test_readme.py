"""Every command README.md shows is run here, so the README cannot drift (issue #18 item 11).

Which text is a command (``benchmarks/readme_outputs.py`` extracts it; a new example is picked up by itself):

* every line of a fenced ``bash`` block (``\\`` continuations joined, ``# comments`` dropped, leading
  ``VAR=value`` assignments become the environment);
* every ``$ ...`` line of a fenced ``console`` block; the lines under it are what it prints;
* the command named by a ``<!-- output: causal ... -->`` comment; the fenced ``text`` block under it is its
  (abridged) output;
* an inline code span ```causal ...``` in the prose that has an argument other than ``-m`` (a bare
  ```causal run``` or ```causal power``` names the command; it is not an example); prose right after it that
  quotes its output (```causal ...``` says "...") must match what it prints.

Every fenced ``python`` block and ``python -c CODE`` line is run too (``exec`` in the same folder, a fresh namespace; those that write a data
file first, since the commands read it); a block whose first line is ``# not run: REASON`` is skipped.

How each is run: ``causal_cli.cli.main(argv)`` in this process, from a temporary folder holding the files the
README's examples read (``readme_outputs.prepare_workdir``: its ``python`` blocks are run, its ``# path.yaml``
blocks written, the files it only describes simulated), run folders under that folder. Each command is checked
for its exit code (0, or the one the README documents for it: ``EXPECTED_EXIT``, or non-zero when its shown
output is a ``causal:`` error line) and, where the README shows output, for every shown line being printed, in
order (a line ending in ``...`` is a prefix). Overrides are only ever appended:

* always: run/sweep folders in the temporary folder, ``refuters.n_jobs=1`` and ``report.enabled=false`` (they
  change no printed number; ``causal report`` draws the pictures of a run);
* a command whose output is neither shown nor quoted, and is not expected to fail, runs small: ``dgp.n=2000``
  when its data set is larger, at most ``SMALL_SIMULATIONS`` simulations per refuter and ``SMALL_AA`` A/A
  re-randomizations; a multirun keeps the first two values of its first swept key and the first value of every
  other one (swept on the command line or by the experiment's ``hydra.sweeper.params``);
* placeholders: ``...`` (any further arguments) is dropped; a path ``outputs/...`` that does not exist is a run
  folder (a sweep folder for ``outputs/multirun/...``) this module made; ``/tmp/`` is the temporary folder.

Not run, each a visible skip with its reason: ``pip install`` and the development commands (``pytest``,
``ruff``), ``python benchmarks/...`` scripts (minutes each; ``benchmarks/readme_outputs.py`` itself is what
regenerates the outputs), other programs than ``causal``, templates with an upper-case placeholder (``NAME``,
``RUN_DIR``; their instances are run) and the commands in ``NOT_RUN`` (packages or services CI does not have,
launchers tested elsewhere).

After a change that moves a printed number: ``python benchmarks/readme_outputs.py --regenerate``.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SMALL_N = 2000
SMALL_SIMULATIONS = 10
SMALL_AA = 20

#: commands the README shows failing, with the exit code it documents
EXPECTED_EXIT = {
    "run estimator=foo": 2,
    "run dgp.n=-3": 2,
    "run estimator=iv": 1,
    "run refuters.placebo.alpha=0.01": 2,
}

#: commands not run here, with the reason (matched by the start of the arguments)
NOT_RUN = {
    "run experiment=acic2016": "needs the ACIC files benchmarks/acic2016_prepare.py makes from causallib",
    "run -m hydra/launcher=joblib": "a joblib pool of worker processes: tests/test_sweep.py::test_joblib_launcher",
    "run -m hydra/launcher=ray ": "starts a private Ray instance (seconds, GBs of memory); the plugin itself: "
    "tests/test_sweep.py::test_ray_launcher_on_a_local_cluster",
    "run -m hydra/launcher=ray_cluster": "needs a running Ray cluster (HEAD_IP): "
    "tests/test_sweep.py::test_ray_launcher_on_a_local_cluster starts one",
    "run -m hydra/launcher=submitit_local": "submitit job processes: tests/test_sweep.py::test_submitit_local_launcher",
    "run -m hydra/launcher=submitit_slurm": "needs a SLURM cluster",
    "run data=sql data.url=postgresql": "needs a PostgreSQL server and its driver (network)",
    "run graph=file graph.file=": "reads a DOT file the README only shows: tests/test_cli_contract.py runs DOT and GML graphs",
    "run refuters.backend=ray": "starts or joins a Ray cluster (seconds, GBs of memory): tests/test_ray.py",
}
NEEDS_MODULE = {"CAUSAL_ALLOW=xgboost": "xgboost"}


def _load():
    name = "readme_outputs"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


ro = _load()


def _key(example) -> str:
    return " ".join(example.argv)


def distinct_examples():
    """The README's commands, one entry per distinct command (its shown outputs merged)."""
    by_text: dict[str, object] = {}
    for example in ro.examples():
        if example.kind == "inline" and not _is_inline_example(example):
            continue
        key = example.text if not example.argv else " ".join(example.words)
        if key in by_text:
            by_text[key].shown += example.shown
            by_text[key].quoted += example.quoted
        else:
            by_text[key] = example
    return list(by_text.values())


def _is_inline_example(example) -> bool:
    return any(a not in ("-m", "--multirun") for a in example.argv[1:])


def not_run_reason(example) -> str | None:
    words = example.words
    if words[:2] in (["python", "-c"], ["python3", "-c"]) and len(words) == 3:
        return None
    if not example.argv:
        if {"pip", "pytest", "ruff"} & set(words):
            return "installs packages or runs the test suite / linters (development commands)"
        if any(w.startswith("benchmarks/") for w in words):
            return "a benchmark script (minutes; not part of the test suite)"
        return "another program, not causal"
    if re.search(r"\b[A-Z][A-Z_]{2,}\b", " ".join(a for a in example.argv if not a.startswith("outputs/"))):
        return "a template with an upper-case placeholder (an instance of it is run)"
    key = _key(example) + " "
    for prefix, reason in NOT_RUN.items():
        if key.startswith(prefix):
            return reason
    return None


EXAMPLES = distinct_examples()


def test_the_readme_shows_commands_and_outputs():
    """The extraction itself: the README's examples are found (a broken fence would silently drop them)."""
    runnable = [e for e in EXAMPLES if not_run_reason(e) is None]
    assert len(runnable) >= 30
    assert sum(bool(e.shown) for e in runnable) >= 3
    assert any(_key(e) == "run" for e in runnable)
    assert any(e.quoted for e in runnable)


def test_regeneration_rewrites_numbers_and_keeps_the_abridgement():
    printed = "Question: 10,000 rows\n│ naive │   $14.42 │\n│ psm   │    $9.99 │\nResults: /tmp/x\n"
    shown = ["│ psm   │   $10.01 │", "causal: config error: a, b, ..."]
    new, lost = ro.regenerated(shown, printed)
    assert new == ["│ psm   │    $9.99 │", "causal: config error: a, b, ..."] and lost == []
    assert ro.missing_lines(new[:1], printed) == []
    assert ro.missing_lines(["│ psm   │   $10.01 │"], printed) == ["│ psm   │   $10.01 │"]
    assert ro.missing_lines(["Question: 10,000 ..."], printed) == []
    assert ro.regenerated(["Nothing like it 1.0"], printed) == (
        ["Nothing like it 1.0"],
        ["Nothing like it 1.0"],
    )
    assert ro.missing_quotes(["naive │ $14.42"], printed) == [] and ro.missing_quotes(["$15"], printed) == [
        "$15"
    ]


# ------------------------------------------------------------------------------------------ running


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    path = tmp_path_factory.mktemp("readme")
    ro.prepare_workdir(path)
    return path


@pytest.fixture(scope="module")
def made_folders(workdir):
    """A run folder and a sweep folder, for the README's ``outputs/...`` placeholders."""
    run, sweep = workdir / "made" / "run", workdir / "made" / "sweep"
    code, output = ro.run_causal(["run", "dgp.n=500", "refuters=[]", f"hydra.run.dir={run}"], workdir)
    assert code == 0, output
    code, output = ro.run_causal(
        [
            "run",
            "-m",
            "estimator=naive",
            "dgp.n=500",
            "refuters=[]",
            *ro.QUIET,
            f"hydra.sweep.dir={sweep}",
        ],
        workdir,
    )
    assert code == 0, output
    return {"run": run, "sweep": sweep}


def _placeholders(argv: list[str], workdir: Path, made) -> list[str]:
    out = []
    for arg in argv:
        if arg == "...":
            continue
        if arg.startswith("outputs/") and not (workdir / arg).exists():
            arg = str(made()["sweep" if "multirun" in arg else "run"])
        elif arg.startswith("/tmp/"):
            arg = str(workdir / "tmp" / arg[len("/tmp/") :])
        out.append(arg)
    return out


def _first_job(overrides: list[str]) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """(the first job's overrides, the swept keys with their values) of a multirun's overrides."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    plain, swept = [], []
    for override in OverridesParser.create().parse_overrides(overrides):
        key = override.get_key_element()
        if override.is_sweep_override():
            if "glob(" in override.input_line:  # data.path=glob(...): files, the command expands it
                continue
            values = list(override.sweep_string_iterator())
            swept.append((key, values))
            plain.append(f"{key}={values[0]}")
        else:
            plain.append(override.input_line)
    return plain, swept


def _compose(overrides: list[str], config_dir: str | None, workdir: Path):
    """The first job's composed config (hydra keys included), or None when it does not compose here."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from causal_cli.schema import register_configs
    from causal_cli.task import VERSION_BASE, conf_dir

    register_configs()
    extra = [f"hydra.searchpath=[file://{(workdir / config_dir).resolve()}]"] if config_dir else []
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(conf_dir()), version_base=VERSION_BASE):
            return compose("config", overrides=[*overrides, *extra], return_hydra_config=True)
    except Exception:  # noqa: BLE001 - e.g. a data.path glob: then it simply runs unshrunk
        return None
    finally:
        GlobalHydra.instance().clear()


#: Hydra's flags that take a value (the value is no override)
VALUE_FLAGS = ("--cfg", "-c", "--package", "-p", "--config-path", "-cp", "--config-name", "-cn")


def _split_flags(argv: list[str]) -> tuple[list[str], str | None, bool]:
    """(the Hydra overrides, the --config-dir, whether it is a multirun) of ``run`` arguments."""
    overrides, config_dir, multirun, k = [], None, False, 0
    while k < len(argv):
        arg = argv[k]
        if arg in ("--config-dir", "-cd"):
            config_dir = argv[k + 1]
        multirun |= arg in ("-m", "--multirun")
        if arg in (*VALUE_FLAGS, "--config-dir", "-cd"):
            k += 2
            continue
        if not arg.startswith("-"):
            overrides.append(arg)
        k += 1
    return overrides, config_dir, multirun


def smaller(argv: list[str], workdir: Path) -> list[str]:
    """Overrides appended to a ``run`` whose output the README does not show (see the module docstring)."""
    overrides, config_dir, multirun = _split_flags(argv[1:])
    first, swept = _first_job(overrides)
    cfg = _compose(first, config_dir, workdir)
    extra = []
    if cfg is not None:
        params = cfg.hydra.sweeper.get("params") or {}
        if multirun or str(cfg.hydra.mode).endswith("MULTIRUN"):
            swept += _first_job([f"{key}={value}" for key, value in params.items()])[1]
        extra += _small_sizes(cfg)
    for position, (key, values) in enumerate(swept):
        extra.append(f"{key}={','.join(values[:2])}" if position == 0 else f"{key}={values[0]}")
    return extra


def _small_sizes(cfg) -> list[str]:
    extra = []
    if cfg.get("dgp") and int(cfg.dgp.get("n") or 0) > SMALL_N:
        extra.append(f"dgp.n={SMALL_N}")
    for name, options in (cfg.get("refuters") or {}).items():
        if hasattr(options, "get") and int(options.get("num_simulations") or 0) > SMALL_SIMULATIONS:
            extra.append(f"refuters.{name}.num_simulations={SMALL_SIMULATIONS}")
    if cfg.get("ab") and int(cfg.ab.get("aa_simulations") or 0) > SMALL_AA:
        extra.append(f"ab.aa_simulations={SMALL_AA}")
    return extra


def expected_exit(example) -> int | None:
    """The documented exit code; None means "any non-zero" (a shown ``causal:`` error line)."""
    code = EXPECTED_EXIT.get(_key(example))
    if code is not None:
        return code
    return None if any(s.startswith("causal: ") for s in example.shown) else 0


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: f"L{e.line}:{e.text[:60]}")
def test_readme_command(example, workdir, request):
    reason = not_run_reason(example)
    if reason:
        pytest.skip(reason)
    for marker, module in NEEDS_MODULE.items():
        if example.text.startswith(marker):
            pytest.importorskip(module)
    if not example.argv:  # python -c CODE: run in this process like a python block
        run_python(example.words[2], f"README.md:{example.line}", workdir, request)
        return
    argv = _placeholders(example.argv, workdir, lambda: request.getfixturevalue("made_folders"))
    out = workdir / "runs" / f"L{example.line}"
    expected = expected_exit(example)
    if argv[:1] == ["run"]:
        argv += ro.output_dirs(argv, out)
        argv += list(ro.QUIET)
        if not (example.shown or example.quoted) and expected == 0:
            argv += smaller(argv, workdir)
    code, output = ro.run_causal(argv, workdir, example.env)
    if expected is None:
        assert code != 0, (
            f"README.md:{example.line}: {example.text} should fail; it printed\n{output[-3000:]}"
        )
    else:
        assert code == expected, f"README.md:{example.line}: `{' '.join(argv)}` exit {code}\n{output[-3000:]}"
    missing = ro.missing_lines(example.shown, output) + ro.missing_quotes(example.quoted, output)
    assert not missing, (
        f"README.md:{example.line}: `{example.text}` no longer prints (run "
        f"`python benchmarks/readme_outputs.py --regenerate`):\n"
        + "\n".join(missing)
        + f"\n--- printed:\n{output}"
    )


@pytest.mark.parametrize("line,code", ro.python_blocks(), ids=lambda v: f"L{v}" if isinstance(v, int) else "")
def test_readme_python_block(line, code, workdir, request):
    first = code.lstrip().splitlines()[0] if code.strip() else ""
    if first.startswith("# not run:"):
        pytest.skip(first[len("# not run:") :].strip())
    run_python(code, f"README.md:{line}", workdir, request)


def run_python(code: str, where: str, workdir: Path, request) -> None:
    monkeypatch = request.getfixturevalue("monkeypatch")
    monkeypatch.chdir(workdir)
    exec(compile(code, where, "exec"), {"__name__": "readme_example"})  # noqa: S102
