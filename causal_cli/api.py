"""The public Python entry point: compose, run, load, report, reproduce and summarize.

The ``causal`` command, the Hydra task and notebooks all go through these functions::

    import causal_cli.api as causal

    r = causal.run(df, graph={"treatment": "feature_used", "outcome": "spend",
                              "confounders": ["account_age", "activity"]})
    print(r.to_frame())

Nothing here prints unless asked (``verbose=True``) and nothing installs signal handlers (only the
command line does). Errors are raised as :class:`causal_cli.errors.CausalCliError` subclasses whose
``one_line()`` names the key or column and what is allowed.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from causal_cli.errors import CausalCliError, ConfigError, DataError
from causal_cli.results import RunResult

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from causal_cli.sweep import Scorecard

__all__ = ["RunFailed", "RunResult", "compose", "load", "report", "reproduce", "run", "summarize"]


class RunFailed(CausalCliError):
    """A run with an ``output_dir`` that failed: its folder records why (``.result`` is that record)."""

    kind = "run error"

    def __init__(self, message: str, result: RunResult):
        super().__init__(message)
        self.result = result

    def one_line(self) -> str:
        return " ".join(str(self).split())


def compose(
    overrides: tuple[str, ...] | list[str] = (),
    config_dir: str | Path | None = None,
    config_name: str = "config",
) -> DictConfig:
    """The config ``causal run OVERRIDES`` would run (Hydra's global state is cleared before and after).

    ``config_dir``: a folder of your own config files; they win over built-in ones of the same
    group/name, as ``causal run --config-dir DIR`` does. The same checks as the command apply: the
    allow-list and size bounds of :mod:`causal_cli.trust` (:mod:`causal_cli.preflight`), then the typed
    validation of every node (:func:`causal_cli.validate.validate`); the first problem is raised.
    """
    cfg = _compose(list(overrides), config_dir, config_name)
    from causal_cli.validate import validate

    validate(copy.deepcopy(cfg))
    return cfg


def _compose(overrides: list[str], config_dir, config_name: str) -> DictConfig:
    from hydra import version
    from hydra._internal.utils import get_args_parser
    from hydra.core.global_hydra import GlobalHydra
    from hydra.types import RunMode
    from omegaconf import open_dict

    from causal_cli import preflight, task
    from causal_cli.schema import register_configs

    args = [*overrides, "--config-name", config_name]
    if config_dir is not None:  # the user's folder first, the built-in one after it (as the command)
        user = os.path.abspath(os.path.expanduser(str(config_dir)))
        if not os.path.isdir(user):
            raise ConfigError(f"config_dir={user} is not a folder")
        args = ["--config-path", user, "--config-dir", str(task.conf_dir()), *args]
    version.setbase(task.VERSION_BASE)
    register_configs()
    GlobalHydra.instance().clear()
    try:
        checked = preflight.check(args, values=False)  # validated below, once the graph / frame are in
        parsed = get_args_parser().parse_args(args)
        hydra = task.main_hydra(parsed, checked.compositions)  # the preflight's merged config, not again
        cfg = hydra.compose_config(
            config_name=config_name,
            overrides=list(parsed.overrides),
            run_mode=RunMode.RUN,
            with_log_configuration=False,
        )
    except CausalCliError:
        raise
    except Exception as exc:  # noqa: BLE001 - Hydra's multi-line composition errors, as one line
        raise ConfigError(_one_line(exc)) from exc
    finally:
        GlobalHydra.instance().clear()
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def run(
    config_or_frame: Any = None,
    *,
    graph: Any = None,
    overrides: tuple[str, ...] | list[str] = (),
    output_dir: str | Path | None = None,
    config_dir: str | Path | None = None,
    verbose: bool = False,
) -> RunResult:
    """Run one study -> its :class:`RunResult`.

    ``config_or_frame``: a config from :func:`compose`; or a pandas DataFrame to analyse with
    ``graph`` (a :class:`~causal_cli.graph.CausalGraph`, a dict, YAML text or a YAML file with
    ``treatment``, ``outcome``, ``confounders`` ... as in ``conf/graph/*.yaml``; without it the
    composed config's graph) and the table options of ``data=csv`` (``overrides``, e.g.
    ``"data.missing=drop"``); or None to compose ``overrides``.

    No run folder is written unless ``output_dir`` is given; then it holds exactly what ``causal run``
    writes (``results.json``, the CSV files, ``report.html``), and a failure is raised as
    :class:`RunFailed` after the folder recorded it. ``verbose``: a progress bar and the summary.
    """
    frame, cfg = _study(config_or_frame, graph, list(overrides), config_dir)
    if output_dir is None:
        return _run_in_memory(cfg, frame, verbose)
    return _run_in_folder(cfg, frame, Path(output_dir), list(overrides), verbose)


def _study(config_or_frame, graph, overrides: list[str], config_dir):
    """(the DataFrame or None, the config to run)."""
    from omegaconf import DictConfig, OmegaConf, open_dict

    if isinstance(config_or_frame, DictConfig):
        if graph is not None or overrides or config_dir is not None:
            raise ConfigError(
                "run(cfg): give graph, overrides and config_dir to compose(), not with a config"
            )
        return None, config_or_frame
    if config_or_frame is None:
        return None, compose(overrides, config_dir)
    if not _is_frame(config_or_frame):
        raise ConfigError(
            f"run() takes a config from compose(), a pandas DataFrame or None; got {type(config_or_frame).__name__}"
        )
    start = ["data=csv"] if graph is None else ["graph=custom", "data=csv"]
    cfg = _compose([*start, *overrides], config_dir, "config")
    if graph is not None:
        with open_dict(cfg):
            cfg.graph = OmegaConf.merge(cfg.graph, graph_config(graph))
    from causal_cli.validate import validate

    validate(copy.deepcopy(cfg))
    return config_or_frame, cfg


def _is_frame(value) -> bool:
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is a dependency
        return False
    return isinstance(value, pd.DataFrame)


def graph_config(graph) -> DictConfig:
    """A graph given in Python or YAML, as the ``graph`` node of a config."""
    from omegaconf import DictConfig, OmegaConf

    from causal_cli.graph import CausalGraph

    if isinstance(graph, CausalGraph):
        node = {
            "name": graph.name,
            "treatment": graph.treatment,
            "outcome": graph.outcome,
            "edges": [f"{a} -> {b}" for a, b in graph.edges],
            "unobserved": list(graph.unobserved),
            "outcome_units": graph.outcome_units,
            "effect_modifiers": list(graph.effect_modifiers),
        }
    elif isinstance(graph, (dict, DictConfig)):
        node = graph
    elif isinstance(graph, (str, Path)):
        node = _graph_yaml(graph)
    else:
        raise ConfigError(
            f"graph: expected a CausalGraph, a dict, YAML text or a YAML file; got {type(graph).__name__}"
        )
    from causal_cli import trust

    created = OmegaConf.create(node)
    if not isinstance(created, DictConfig):
        raise ConfigError("graph: expected a mapping with treatment, outcome, confounders ...")
    trust.check_run_config(OmegaConf.create({"graph": created}))
    return created


def _graph_yaml(graph: str | Path):
    from omegaconf import OmegaConf

    text = str(graph)
    if "\n" not in text and ":" not in text:  # a file name
        path = Path(text).expanduser()
        if not path.is_file():
            raise ConfigError(f"graph={text}: no such YAML file (or give YAML text / a dict)")
        from causal_cli import trust

        trust.check_yaml_file(path, f"graph={text}")
        text = path.read_text(encoding="utf-8")
    try:
        return OmegaConf.to_container(OmegaConf.create(text))
    except Exception as exc:  # noqa: BLE001 - YAML errors as one line
        raise ConfigError(f"graph: not YAML: {_one_line(exc)}") from exc


def _run_in_memory(cfg, frame, verbose: bool) -> RunResult:
    import warnings

    from causal_cli import pipeline, task
    from causal_cli.validate import validate

    typed = validate(copy.deepcopy(cfg))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        if verbose:
            from causal_cli.report import console

            with console.progress() as bar:
                result = pipeline.run(typed, progress=bar, base_dir=os.getcwd(), frame=frame)
        else:
            result = pipeline.run(typed, base_dir=os.getcwd(), frame=frame)
    result.run = {"status": "ok", "error": None, "warnings": task.warning_lines(caught or [])}
    return result


def _run_in_folder(cfg, frame, run_dir: Path, overrides: list[str], verbose: bool) -> RunResult:
    from causal_cli import task

    run_dir = run_dir.expanduser().resolve()
    header = task.run_header(cfg, overrides)
    with task.Interrupts(signals=False) as interrupts:
        status, payload, result = task.run_in_folder(
            cfg, run_dir, header, interrupts, show=verbose, frame=frame
        )
    if status != "ok" or result is None:
        record = RunResult.from_dict(payload)
        raise RunFailed(f"{payload.get('error') or status}; {run_dir}/results.json says {status}", record)
    return result


def load(run_dir: str | Path) -> RunResult:
    """The record of a finished (or failed) run folder: ``RunResult.load(run_dir)``."""
    return RunResult.load(run_dir)


def report(run_dir: str | Path) -> tuple[Path, list[str]]:
    """Redraw the pictures and ``report.html`` of a finished run folder -> (report.html, problems)."""
    from causal_cli.report import html

    run_dir = Path(run_dir)
    if not (run_dir / "results.json").is_file():
        raise ConfigError("no results.json; pass a run folder written by causal run")
    try:
        record = RunResult.load(run_dir)
    except ConfigError as exc:
        raise ConfigError(f"cannot read results.json: {exc}") from exc
    if record.status != "ok":
        raise ConfigError(
            f"run status is '{record.run.get('status')}'; only finished runs (status ok) have a report"
        )
    return html.render_run_dir(run_dir, record.to_dict())


def reproduce(run_dir: str | Path, out: str | Path | None = None, data: Any = None):
    """Re-run a finished run from its saved config into a new folder and compare every number.

    ``data``: for a run made by ``run(df, ...)``, the same DataFrame (no file holds it); refused when
    its analysed columns do not hash to the ``data_hash`` the run recorded.
    -> :class:`causal_cli.reproduce.Reproduction` (``.ok``, ``.rows``, ``.files``, ``.new_dir``)."""
    from causal_cli import reproduce as reproducing

    if data is not None and not _is_frame(data):
        raise ConfigError(f"reproduce(data=...) takes a pandas DataFrame; got {type(data).__name__}")
    plan = reproducing.prepare(
        Path(run_dir), Path(out) if out is not None else None, frame_given=data is not None
    )
    if data is None:
        return reproducing.execute(plan, show=False)
    cfg = compose(config_dir=plan.config_path.parent, config_name=plan.config_path.stem)
    _check_same_frame(cfg, data, plan.results.get("data_hash"))
    new = _run_in_folder(cfg, data, plan.new_dir, [], verbose=False)
    rows, files = reproducing.compare(plan.run_dir, plan.new_dir, plan.results, new.to_dict())
    return reproducing.Reproduction(plan.run_dir, plan.new_dir, rows, files)


def _check_same_frame(cfg: DictConfig, frame, recorded: str | None) -> None:
    """DataError unless ``frame``'s analysed columns hash to ``recorded`` (what the run analysed). An A/B
    analysis hashes its metric columns instead: there the comparison's ``data_hash`` row says it."""
    from causal_cli import provenance
    from causal_cli.data.frame import frame_dataset
    from causal_cli.graph import CausalGraph
    from causal_cli.validate import validate

    typed = validate(copy.deepcopy(cfg))
    if typed.graph.get("design", "observational") == "randomized":
        return
    graph = CausalGraph.from_config(typed.graph)
    now = provenance.frame_hash(frame_dataset(typed, graph, frame).frame, graph.observed_nodes)
    if now != recorded:
        raise DataError(
            f"data= is not the DataFrame the run analysed (sha256 {str(recorded).split(':')[-1][:12]} then, "
            f"{now.split(':')[-1][:12]} now); reproduce needs the same data"
        )


def summarize(sweep_dir: str | Path) -> Scorecard:
    """Aggregate a sweep folder (``causal run -m``): writes ``summary.csv`` / ``summary.png``, returns the
    scorecard (``.rows``: bias, RMSE, CI coverage ... per estimator and setting)."""
    from causal_cli import sweep_task

    return sweep_task.summarize(Path(sweep_dir))
