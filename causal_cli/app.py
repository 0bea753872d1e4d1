"""The Hydra task: validate -> pipeline.run -> write the run folder. Each job records its own failure."""

from __future__ import annotations

import os
import sys
import time
import traceback
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from causal_cli import __version__
from causal_cli.errors import CausalCliError

VERSION_BASE = "1.3"

#: outcomes of the jobs run in this process (the basic launcher runs them all here)
JOB_STATUSES: list[str] = []


def conf_dir() -> Path:
    """Configs ship inside the wheel as ``causal_cli/_conf``; a source checkout uses ``conf/``."""
    here = Path(__file__).resolve().parent
    packaged = here / "_conf"
    return packaged if packaged.is_dir() else here.parent / "conf"


def debug_enabled() -> bool:
    return os.environ.get("CAUSAL_DEBUG") == "1"


def run_header(cfg: DictConfig) -> dict:
    return {
        "tool_version": __version__,
        "estimator": cfg.get("estimator", {}).get("name") if isinstance(cfg.get("estimator"), DictConfig) else None,
        "seed": cfg.get("seed"),
        "command": " ".join(["causal", "run", *sys.argv[1:]]),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def task(cfg: DictConfig) -> str:
    """Run one job in the folder Hydra made for it; return its status (``ok`` or ``failed``)."""
    from hydra.core.hydra_config import HydraConfig

    from causal_cli.report import files

    started = time.perf_counter()
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    header = run_header(cfg)
    status, error = "ok", None
    try:
        files.claim_run_dir(run_dir, header)
    except CausalCliError as exc:
        _report_error(exc)
        JOB_STATUSES.append("failed")
        return "failed"
    payload = dict(header)
    try:
        from causal_cli import pipeline
        from causal_cli.validate import validate

        typed = validate(cfg)
        atomic_config(run_dir, typed)
        if typed.report.console:
            from causal_cli.report import console

            with console.progress() as bar:
                result = pipeline.run(typed, progress=bar, base_dir=os.getcwd())
        else:
            result = pipeline.run(typed, base_dir=os.getcwd())
        payload.update(result.to_dict())
    except CausalCliError as exc:
        status, error = "failed", exc.one_line()
        _report_error(exc)
    except Exception as exc:  # noqa: BLE001 - a job records any failure instead of killing the sweep
        status, error = "failed", f"internal error: {type(exc).__name__}: {' '.join(str(exc).split())}"
        _report_error(exc, internal=True)
    payload.update(status=status, error=error, runtime_s=round(time.perf_counter() - started, 3),
                   output_dir=str(run_dir))
    try:
        summary = files.summary_markdown(payload) if status == "ok" else None
        files.write_run_files(run_dir, payload, summary)
    except Exception as exc:  # noqa: BLE001 - never leave the folder claiming success
        status, error = "failed", f"could not write results: {type(exc).__name__}: {exc}"
        payload.update(status=status, error=error)
        files.write_json(run_dir / "results.json", payload)
        _report_error(exc, internal=True)
    if status == "ok" and cfg.get("report", {}).get("console", True):
        from causal_cli.report import console

        console.print_summary(payload, str(run_dir))
    JOB_STATUSES.append(status)
    return status


def atomic_config(run_dir: Path, cfg: DictConfig) -> None:
    from causal_cli.report.files import atomic_write

    atomic_write(run_dir / "config.yaml", OmegaConf.to_yaml(cfg))


def _report_error(exc: BaseException, internal: bool = False) -> None:
    from causal_cli.report import console

    if debug_enabled():
        traceback.print_exception(exc)
    message = exc.one_line() if isinstance(exc, CausalCliError) else (
        f"internal error: {type(exc).__name__}: {' '.join(str(exc).split())} (rerun with --debug for the traceback)"
    )
    console.error(message)


def hydra_entry():
    """The ``@hydra.main`` function, bound to the config folder found at run time."""
    import hydra

    from causal_cli.schema import register_configs

    register_configs()
    return hydra.main(version_base=VERSION_BASE, config_path=str(conf_dir()), config_name="config")(task)
