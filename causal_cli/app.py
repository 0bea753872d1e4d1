"""The Hydra task: validate -> pipeline.run -> write the run folder. Each job records its own failure."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
import traceback
import warnings
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
    from causal_cli import provenance

    def value(key: str):
        """A header never fails: a bad value (``seed=${nope:1}``) is reported by validation, in the folder."""
        try:
            found = OmegaConf.select(cfg, key, throw_on_missing=False, throw_on_resolution_failure=False)
        except Exception:  # noqa: BLE001
            return None
        return found if isinstance(found, (str, int, float, bool)) or found is None else None

    return {
        "tool_version": __version__,
        "estimator": value("estimator.name"),
        "seed": value("seed"),
        "command": provenance.command_line(sys.argv[1:]),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "provenance": provenance.collect(sys.argv[1:]),
    }


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM during a job: ``results.json`` says ``interrupted``; the process exits 128+signum."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum
        self.reported = False

    def one_line(self) -> str:
        return f"interrupted: the run was stopped by {signal.Signals(self.signum).name}"


class Interrupts:
    """SIGINT/SIGTERM raise :class:`RunInterrupted` while the job works; while its folder is being
    claimed or its final files written they wait, so no file is left half-claimed or presented as complete."""

    def __init__(self):
        self.deferring, self.pending, self.previous = True, None, {}

    def __enter__(self) -> Interrupts:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self.previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum, frame) -> None:
        if self.deferring:
            self.pending = signum
        else:
            raise RunInterrupted(signum)

    def allow(self) -> None:
        self.deferring = False
        self.raise_pending()

    def defer(self) -> None:
        self.deferring = True

    def raise_pending(self) -> None:
        if self.pending is not None:
            signum, self.pending = self.pending, None
            raise RunInterrupted(signum)


def task(cfg: DictConfig) -> str:
    """Run one job in the folder Hydra made for it; return its status (``ok`` or ``failed``).

    Ctrl-C / SIGTERM stop the job promptly: ``results.json`` says ``interrupted`` and
    :class:`RunInterrupted` propagates (ending a sweep), so the command exits non-zero.
    """
    with Interrupts() as interrupts, warnings.catch_warnings(record=not debug_enabled()) as caught:
        warnings.simplefilter("default")
        status = _run_job(cfg, interrupts, caught or [])
    interrupts.raise_pending()  # a signal that came while the final files were being written
    return status


def warning_lines(caught: list[warnings.WarningMessage]) -> list[str]:
    """Library warnings, one line each: kept in ``results.json`` instead of cluttering stderr."""
    lines = (f"{w.category.__name__}: {' '.join(str(w.message).split())}" for w in caught)
    return list(dict.fromkeys(lines))


def _run_job(cfg: DictConfig, interrupts: Interrupts, caught: list) -> str:
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
    tables: dict[str, list[dict]] = {}
    try:
        interrupts.allow()
        from causal_cli import pipeline, prefetch
        from causal_cli.validate import validate

        typed = validate(cfg)
        prefetch.proceed()  # a valid job: the helper may import DoWhy now
        atomic_config(run_dir, typed)
        payload["config_sha256"] = config_sha256(run_dir / "config.yaml")  # what reproduce may re-run
        if typed.report.console:
            from causal_cli.report import console

            with console.progress() as bar:
                result = pipeline.run(typed, progress=bar, base_dir=os.getcwd())
        else:
            result = pipeline.run(typed, base_dir=os.getcwd())
        payload.update(result.to_dict())
        tables = result.tables()
    except KeyboardInterrupt as exc:
        interrupted = exc if isinstance(exc, RunInterrupted) else RunInterrupted(signal.SIGINT)
        status, error = "interrupted", interrupted.one_line()
    except CausalCliError as exc:
        status, error = "failed", exc.one_line()
        _report_error(exc)
    except Exception as exc:  # noqa: BLE001 - a job records any failure instead of killing the sweep
        status, error = "failed", f"internal error: {type(exc).__name__}: {' '.join(str(exc).split())}"
        _report_error(exc, internal=True)
    interrupts.defer()
    payload.update(
        status=status,
        error=error,
        runtime_s=round(time.perf_counter() - started, 3),
        output_dir=str(run_dir),
        warnings=warning_lines(caught),
    )
    if status == "interrupted":
        from causal_cli.report import console

        files.write_json(run_dir / "results.json", payload)
        console.error(f"{error}; {run_dir} is marked interrupted")
        interrupted.reported = True
        JOB_STATUSES.append(status)
        raise interrupted
    try:
        summary = files.summary_markdown(payload) if status == "ok" else None
        files.write_tables(run_dir, payload, summary, tables)
        if status == "ok" and cfg.get("report", {}).get("enabled", True):
            write_report(run_dir, payload)
        files.write_json(run_dir / "results.json", payload)
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


def write_report(run_dir: Path, payload: dict) -> None:
    """Plots and ``report.html`` from the files just written; a failure becomes a note, never a lost run."""
    started = time.perf_counter()
    try:
        from causal_cli.report import html

        path, problems = html.render_run_dir(run_dir, payload)
        payload["report_html"] = str(path)
    except Exception as exc:  # noqa: BLE001 - the results are already safe; say what is missing
        problems = [f"report.html not written: {type(exc).__name__}: {' '.join(str(exc).split())}"]
        if debug_enabled():
            traceback.print_exception(exc)
    payload.setdefault("notes", []).extend(problems)
    payload.setdefault("timings", {})["report"] = round(time.perf_counter() - started, 4)


def atomic_config(run_dir: Path, cfg: DictConfig) -> None:
    from causal_cli.report.files import atomic_write

    atomic_write(run_dir / "config.yaml", OmegaConf.to_yaml(cfg))


def config_sha256(path: Path) -> str:
    """The sha256 of the saved config: ``causal reproduce`` refuses a folder whose config.yaml differs."""
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def _report_error(exc: BaseException, internal: bool = False) -> None:
    from causal_cli.report import console

    if debug_enabled():
        traceback.print_exception(exc)
    message = (
        exc.one_line()
        if isinstance(exc, CausalCliError)
        else (
            f"internal error: {type(exc).__name__}: {' '.join(str(exc).split())} (rerun with --debug for the traceback)"
        )
    )
    console.error(message)


def hydra_entry():
    """The ``@hydra.main`` function, bound to the config folder found at run time."""
    import hydra

    from causal_cli.schema import register_configs

    register_configs()
    return hydra.main(version_base=VERSION_BASE, config_path=str(conf_dir()), config_name="config")(task)
