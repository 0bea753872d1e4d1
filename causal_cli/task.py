"""The Hydra task and the run folder (api layer): validate -> pipeline.run -> write the folder.

Each job records its own failure in its folder. Signal handling lives here and is installed only by
the command line (:class:`Interrupts`); :func:`causal_cli.api.run` writes a folder without it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
import time
import traceback
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from omegaconf import DictConfig, OmegaConf

from causal_cli import __version__
from causal_cli.errors import CausalCliError

if TYPE_CHECKING:
    from causal_cli.results import RunResult

VERSION_BASE = "1.3"

#: a signal that arrived after a job's results.json was final (then the job stands as written)
STOP_REQUESTED: list[int] = []
#: set once the one "interrupted" line has been printed (by the job or by the command)
INTERRUPT_REPORTED: list[bool] = []
#: after Ctrl-C / SIGTERM the process ends within this many seconds, whatever blocks its clean-up
INTERRUPT_GRACE_SECONDS = 20.0
_WATCHDOG: list[threading.Timer] = []


def disarm_exit_watchdog() -> None:
    """For in-process callers (tests, notebooks): the command returned, and the process goes on."""
    while _WATCHDOG:
        _WATCHDOG.pop().cancel()
    INTERRUPT_REPORTED.clear()


def arm_exit_watchdog(signum: int) -> None:
    """End the process within :data:`INTERRUPT_GRACE_SECONDS` of a signal.

    A Ctrl-C that lands while worker processes start can leave the clean-up waiting on a worker that
    will never answer (seen in CI: a hang past 60 s). The normal path still reports and exits first; this
    only guarantees that a stopped run never hangs: it prints the one line if nobody has, then exits
    128 + signum."""
    if _WATCHDOG:
        return

    def expire() -> None:
        try:
            if not INTERRUPT_REPORTED:
                from causal_cli.report import console

                console.error(f"causal: interrupted: the run was stopped by {signal.Signals(signum).name}")
        finally:
            os._exit(128 + signum)

    timer = threading.Timer(INTERRUPT_GRACE_SECONDS, expire)
    timer.daemon = True
    timer.start()
    _WATCHDOG.append(timer)


#: run folders this process claimed before Hydra wrote its records into them: folder -> header
CLAIMED: dict[str, dict] = {}


def conf_dir() -> Path:
    """Configs ship inside the wheel as ``causal_cli/_conf``; a source checkout uses ``conf/``."""
    here = Path(__file__).resolve().parent
    packaged = here / "_conf"
    return packaged if packaged.is_dir() else here.parent / "conf"


def debug_enabled() -> bool:
    return os.environ.get("CAUSAL_DEBUG") == "1"


def run_header(cfg: DictConfig, argv: list[str] | None = None) -> dict:
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
        "command": provenance.command_line(argv),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "provenance": provenance.collect(argv),
    }


def with_command_line(header: dict, argv: list[str]) -> dict:
    """A claim's header (:func:`save_hydra_record`, which cannot know the job's command line) with it.

    The same as ``run_header(cfg, argv)`` but for the time it was made: the provenance the claim collected
    a moment before is kept, with the command line (``provenance.collect`` read package metadata again).
    """
    from causal_cli import provenance

    command = provenance.command_line(argv)
    collected = {**(header.get("provenance") or {}), "command": command, "argv": ["causal", "run", *argv]}
    return {**header, "command": command, "provenance": collected}


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

    def __init__(self, signals: bool = True):
        # a signal that came after the previous job's results.json was final stops this job at its start
        self.deferring, self.pending, self.previous = (
            True,
            STOP_REQUESTED.pop() if STOP_REQUESTED else None,
            {},
        )
        #: install the handlers (the command line); a notebook's run keeps its own (``api.run``)
        self.signals = signals

    def __enter__(self) -> Interrupts:
        if self.signals and threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self.previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum, frame) -> None:
        arm_exit_watchdog(signum)
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


class HydraTask:
    """The Hydra task function: one job in the folder Hydra made for it; returns ``ok`` or ``failed``.

    A callable object rather than a function so that it carries the command line it was started with
    (``results.json`` records it) into launcher workers too, and so that the statuses come back to the
    caller through Hydra's job returns instead of a module global.

    Ctrl-C / SIGTERM stop the job promptly: ``results.json`` says ``interrupted`` and
    :class:`RunInterrupted` propagates (ending a sweep), so the command exits non-zero.
    """

    def __init__(self, argv: list[str] | None = None, base_dir: str | None = None):
        self.argv = list(sys.argv[1:] if argv is None else argv)
        #: relative data paths are relative to this folder (default: where the process runs)
        self.base_dir = base_dir

    def __call__(self, cfg: DictConfig) -> str:
        import logging

        from hydra.core.hydra_config import HydraConfig

        logging.raiseExceptions = (
            False  # run.log on a full disk: no "--- Logging error ---" traceback on stderr
        )

        run_dir = Path(HydraConfig.get().runtime.output_dir)
        claimed = CLAIMED.pop(str(run_dir), None)  # the folder was claimed before Hydra wrote .hydra/ into it
        header = run_header(cfg, self.argv) if claimed is None else with_command_line(claimed, self.argv)
        with Interrupts() as interrupts:
            status, _, _ = run_in_folder(
                cfg, run_dir, header, interrupts, claimed=claimed is not None, base_dir=self.base_dir
            )
        if interrupts.pending is not None:
            # results.json already says how the job ended: it stands, and the signal stops what comes next
            STOP_REQUESTED.append(interrupts.pending)
        return status


def task(cfg: DictConfig) -> str:
    """The task as a plain function (``hydra.main`` style), for the command line this process was given."""
    return HydraTask()(cfg)


def warning_lines(caught: list[warnings.WarningMessage]) -> list[str]:
    """Library warnings, one line each: kept in ``results.json`` instead of cluttering stderr."""
    lines = (f"{w.category.__name__}: {' '.join(str(w.message).split())}" for w in caught)
    return list(dict.fromkeys(lines))


def run_in_folder(
    cfg: DictConfig,
    run_dir: Path,
    header: dict,
    interrupts: Interrupts,
    *,
    claimed: bool = False,
    show: bool = True,
    frame=None,
    base_dir: str | None = None,
) -> tuple[str, dict, RunResult | None]:
    """Validate, run the pipeline and write the complete run folder -> (status, results.json, record).

    Every outcome is recorded in ``run_dir/results.json``; ``show`` prints the summary and the one-line
    error (the command line), else nothing is printed (notebooks). ``frame``: analyse this DataFrame
    instead of loading the configured data.
    """
    with warnings.catch_warnings(record=not debug_enabled()) as caught:
        warnings.simplefilter("default")
        return _run_job(cfg, run_dir, header, interrupts, caught or [], claimed, show, frame, base_dir)


def _run_job(cfg, run_dir, header, interrupts, caught, claimed, show, frame, base_dir):
    from causal_cli.report import files

    started = time.perf_counter()
    if not claimed:
        try:
            files.claim_run_dir(run_dir, header)
        except CausalCliError as exc:
            if show:
                _report_error(exc)
            return "failed", {**header, "status": "failed", "error": exc.one_line()}, None
    payload = dict(header)
    job = _analyse(cfg, run_dir, payload, interrupts, show, frame, base_dir or os.getcwd())
    interrupts.defer()
    payload.update(
        status=job.status,
        error=job.error,
        runtime_s=round(time.perf_counter() - started, 3),
        output_dir=str(run_dir),
        warnings=warning_lines(caught),
    )
    if job.status != "interrupted":
        _write_outputs(cfg, run_dir, payload, job, interrupts)
    log_run(payload)  # before results.json, which is always the run folder's last file
    written = final_results(run_dir, payload)
    if job.status == "interrupted":
        _stop(run_dir, written, job)
    _report_outcome(run_dir, payload, written, job, show, show and cfg.get("report", {}).get("console", True))
    if job.result is not None:
        job.result.run = {k: payload[k] for k in payload if k not in job.analysed}
        job.result.notes, job.result.timings = payload["notes"], payload["timings"]
    return job.status, payload, job.result


class _Job:
    """What one analysis left: its status and error, the problem to report, the record and its tables."""

    def __init__(self):
        self.status, self.error = "ok", None
        self.problem: BaseException | None = None  # printed at the end, as the job's one line
        self.result: RunResult | None = None
        self.tables: dict[str, list[dict]] = {}
        self.analysed: set[str] = set()
        self.interrupted: RunInterrupted | None = None

    def fail(self, error: str, problem: BaseException) -> None:
        self.status, self.error, self.problem = "failed", error, problem

    def interrupt(self, interrupted: RunInterrupted) -> None:
        self.status, self.error, self.interrupted = "interrupted", interrupted.one_line(), interrupted


def _analyse(cfg, run_dir, payload, interrupts, show, frame, base_dir) -> _Job:
    job = _Job()
    try:
        interrupts.allow()
        from causal_cli import pipeline
        from causal_cli.validate import validate

        typed = validate(cfg)
        atomic_config(run_dir, typed)
        payload["config_sha256"] = config_sha256(run_dir / "config.yaml")  # what reproduce may re-run
        if show and typed.report.console:
            from causal_cli.report import console

            with console.progress() as bar:
                job.result = pipeline.run(typed, progress=bar, base_dir=base_dir, frame=frame)
        else:
            job.result = pipeline.run(typed, base_dir=base_dir, frame=frame)
        analysis = job.result.analysis_dict()
        job.analysed = set(analysis) - set(payload)
        payload.update(analysis)
        job.tables = job.result.tables()
    except KeyboardInterrupt as exc:
        job.interrupt(exc if isinstance(exc, RunInterrupted) else RunInterrupted(signal.SIGINT))
    except CausalCliError as exc:
        job.fail(exc.one_line(), exc)
    except Exception as exc:  # noqa: BLE001 - a job records any failure instead of killing the sweep
        job.fail(f"internal error: {type(exc).__name__}: {' '.join(str(exc).split())}", exc)
    return job


def _write_outputs(cfg, run_dir: Path, payload: dict, job: _Job, interrupts: Interrupts) -> None:
    """The CSV files, summary.md and the report; a failure here marks the run failed, never half-done."""
    from causal_cli.report import files, markdown

    try:
        summary = markdown.summary_markdown(payload) if job.status == "ok" else None
        files.write_tables(run_dir, payload, summary, job.tables)
        if job.status == "ok" and cfg.get("report", {}).get("enabled", True):
            write_report(run_dir, payload)
    except Exception as exc:  # noqa: BLE001 - never leave the folder claiming success
        error = (
            exc.one_line()
            if isinstance(exc, CausalCliError)
            else f"internal error: could not write results: {type(exc).__name__}: {exc}"
        )
        job.fail(error, exc)
        payload.update(status=job.status, error=job.error)
    if interrupts.pending is not None:  # a signal during the final writes: the run is not complete
        interrupted = RunInterrupted(interrupts.pending)
        interrupts.pending = None
        job.interrupt(interrupted)
        payload.update(status=job.status, error=job.error)


def _stop(run_dir: Path, written: str, job: _Job) -> None:
    """An interrupted job: its one line, then the interruption goes on up (ending a sweep)."""
    from causal_cli.report import console

    console.error(f"causal: {job.error}; {_folder_state(run_dir, written, job.status)}")
    job.interrupted.reported = True
    INTERRUPT_REPORTED.append(True)
    raise job.interrupted


def _report_outcome(run_dir: Path, payload: dict, written: str, job: _Job, show: bool, summary: bool) -> None:
    from causal_cli.errors import OutputError

    if written != "full" or isinstance(job.problem, OutputError):
        job.status = "failed"
        job.problem = OutputError(
            f"{_output_problem(job.problem, payload)}; {_folder_state(run_dir, written)}"
        )
        if show:
            _report_error(job.problem)
    elif job.problem is not None and show:
        _report_error(job.problem, internal=not isinstance(job.problem, CausalCliError))
    if job.status == "ok" and summary:
        from causal_cli.report import console

        console.print_summary(payload, str(run_dir))


def _output_problem(problem: BaseException | None, payload: dict) -> str:
    if problem is not None and isinstance(problem, CausalCliError):
        return " ".join(str(problem).split())
    return " ".join(
        str(payload.get("write_error") or payload.get("error") or "cannot write results.json").split()
    )


def _folder_state(run_dir: Path, written: str, status: str = "failed") -> str:
    if written == "absent":
        return f"{run_dir} has no results.json (nothing more could be written)"
    return f"{run_dir}/results.json says {status}"


def final_results(run_dir: Path, payload: dict) -> str:
    """Write the final ``results.json``: ``full``; if the disk refuses, a short record: ``short``; else ``absent``.

    ``results.json`` is never half-written (each attempt is atomic, or overwrites the claim's own
    bytes), and never left saying ``running`` or ``ok`` for a run whose files could not be written.
    """
    from causal_cli.errors import OutputError
    from causal_cli.report import files

    path = run_dir / "results.json"
    try:
        files.write_json(path, payload)
        return "full"
    except OutputError as exc:
        problem = " ".join(str(exc).split())
    status = "interrupted" if payload.get("status") == "interrupted" else "failed"
    error = payload.get("error") if status == "interrupted" else f"output error: {problem}"
    short = {k: payload.get(k) for k in ("tool_version", "estimator", "seed", "started_at")}
    short.update(status=status, error=error)
    payload.update(status=status, error=error, write_error=problem)
    if files.overwrite_in_place(path, json.dumps(short, default=str)):
        return "short"
    path.unlink(missing_ok=True)  # absent rather than saying "running" forever
    return "absent"


def log_run(payload: dict) -> None:
    """run.log (conf/hydra/job_logging/causal.yaml): the job's stages, warnings and error, from its record."""
    import logging

    log = logging.getLogger("causal_cli.run")
    log.info(
        "estimator %s, seed %s, folder %s",
        payload.get("estimator"),
        payload.get("seed"),
        payload.get("output_dir"),
    )
    for stage, seconds in (payload.get("timings") or {}).items():
        log.info("stage %s: %s s", stage, seconds)
    for line in payload.get("warnings") or []:
        log.warning("%s", line)
    if payload.get("error"):
        log.error("causal: %s", payload["error"])
    log.info("status %s after %s s", payload.get("status"), payload.get("runtime_s"))


def mark_interrupted(signum: int) -> None:
    """Folders claimed for a job that a signal stopped before it began say ``interrupted``, not ``running``."""
    while CLAIMED:
        run_dir, header = CLAIMED.popitem()
        error = RunInterrupted(signum).one_line()
        final_results(Path(run_dir), {**header, "status": "interrupted", "error": error})


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
    console.error(f"causal: {message}")


#: ``hydra.job.name`` of every run (the task lived in ``causal_cli/app.py`` when run folders began)
JOB_NAME = "app"


def launch(args: list[str], base_dir: str | None = None, checked=None) -> list[str]:
    """Run ``causal run ARGS`` through Hydra in this process -> the status of every job.

    Hydra's ``run`` / ``multirun`` are called directly (not through ``hydra.main``): the command line
    is passed in, never swapped into ``sys.argv``, and the jobs' statuses come back from Hydra's job
    returns, whichever launcher ran them. Help, ``--cfg``, ``--info`` and shell completion are Hydra's own.
    """
    from hydra import version
    from hydra._internal.utils import _run_hydra, get_args_parser
    from hydra.core.global_hydra import GlobalHydra

    from causal_cli.schema import register_configs

    version.setbase(VERSION_BASE)
    register_configs()
    guard_hydra_records()
    parser = get_args_parser()
    parsed = parser.parse_args(args)
    job = HydraTask(args, base_dir)
    if parsed.help or parsed.hydra_help or parsed.cfg or parsed.info or parsed.shell_completion:
        if (parsed.cfg or parsed.info) and not any(o.startswith("hydra.job.name=") for o in parsed.overrides):
            parsed.overrides.append(f"hydra.job.name={JOB_NAME}")  # as a run's (else: the module's name)
        with _program_name("causal", args):  # Hydra's help and completion scripts name sys.argv[0]
            _run_hydra(
                args=parsed,
                args_parser=parser,
                task_function=job,
                config_path=str(conf_dir()),
                config_name="config",
            )
        return []
    hydra = main_hydra(parsed, getattr(checked, "compositions", None))
    try:
        return _launch_jobs(hydra, parsed, job, checked)
    finally:
        GlobalHydra.instance().clear()


@contextlib.contextmanager
def _program_name(name: str, args: list[str]):
    """``sys.argv`` as the installed command's own, only while Hydra writes help or completion text."""
    saved = sys.argv
    sys.argv = [name, *args]
    try:
        yield
    finally:
        sys.argv = saved


def main_hydra(parsed, compositions=None):
    """Hydra's search path as ``hydra.main`` builds it: the config folder, then ``--config-dir``.

    ``compositions``: what the preflight composed (:mod:`causal_cli.composition`), so that the same
    config-group choices are not read and merged again."""
    from hydra._internal.utils import create_automatic_config_search_path
    from hydra.core.config_search_path import SearchPathQuery
    from hydra.errors import SearchPathException

    config_path = parsed.config_path if parsed.config_path is not None else str(conf_dir())
    search_path = create_automatic_config_search_path(None, __name__, config_path)
    if parsed.config_dir is not None:
        folder = os.path.abspath(parsed.config_dir)
        if not os.path.isdir(folder):
            raise SearchPathException(f"Additional config directory '{folder}' not found")
        search_path.prepend(
            provider="command-line", path=f"file://{folder}", anchor=SearchPathQuery(provider="schema")
        )
    from causal_cli import composition

    return composition.main_hydra(JOB_NAME, search_path, compositions)


def _launch_jobs(hydra, parsed, job: HydraTask, checked=None) -> list[str]:
    from hydra.core.utils import JobStatus
    from hydra.types import RunMode

    config_name = parsed.config_name or "config"
    overrides = list(parsed.overrides)
    if checked is not None and checked.composed:
        mode = checked.mode  # the preflight composed this command line already: no third composition
    else:
        mode = hydra.get_mode(config_name=config_name, overrides=overrides)
    multirun = parsed.multirun or mode == RunMode.MULTIRUN
    if mode is None or (parsed.multirun and mode == RunMode.RUN):
        overrides.append(f"hydra.mode={'MULTIRUN' if multirun else 'RUN'}")
    if not multirun:
        return [hydra.run(config_name=config_name, task_function=job, overrides=overrides).return_value]
    batches = hydra.multirun(config_name=config_name, task_function=job, overrides=overrides) or []
    returns = [ret for batch in batches for ret in (batch if isinstance(batch, list) else [batch])]
    return [str(ret.return_value) if ret.status == JobStatus.COMPLETED else "failed" for ret in returns]


def guard_hydra_records() -> None:
    """Route Hydra's ``.hydra/`` writes through :func:`save_hydra_record` (idempotent).

    Hydra (1.3) writes ``config.yaml``, ``hydra.yaml`` and ``overrides.yaml`` into the run folder before
    the task runs, through ``hydra.core.utils._save_config``. Two runs started together on one
    ``hydra.run.dir`` would both write them, so the winner's folder could hold a loser's config. Also
    applied on import, so launcher workers (joblib, Ray) that import this module are guarded too.
    """
    try:
        import hydra.core.utils as hydra_utils
    except ImportError:  # pragma: no cover - Hydra is a dependency
        return
    if hydra_utils._save_config is not save_hydra_record:
        hydra_utils._save_config = save_hydra_record


def save_hydra_record(cfg, filename: str, output_dir: Path) -> None:
    """Claim the run folder (first record), then write the record inside it, following no symbolic link."""
    from hydra.core.hydra_config import HydraConfig

    from causal_cli.errors import OutputError
    from causal_cli.report import files

    run_dir = Path(HydraConfig.get().runtime.output_dir)
    subdir = HydraConfig.get().output_subdir
    folder = files.records_dir(run_dir, subdir if subdir is not None else Path(output_dir).name)
    if str(run_dir) not in CLAIMED and filename == "config.yaml":
        header = run_header(cfg)
        files.claim_run_dir(run_dir, header)  # raises if another run holds the folder: nothing written
        CLAIMED[str(run_dir)] = header
    try:
        files.atomic_write(folder / filename, OmegaConf.to_yaml(cfg))
    except CausalCliError as exc:  # e.g. a full disk: the claimed folder says failed, not running
        header = CLAIMED.pop(str(run_dir), None)
        if header is not None:
            written = final_results(run_dir, {**header, "status": "failed", "error": exc.one_line()})
            claimed = OutputError(f"{' '.join(str(exc).split())}; {_folder_state(run_dir, written)}")
            claimed.run_dir = run_dir  # the run had begun: its folder records the failure (exit 1)
            raise claimed from exc
        raise


guard_hydra_records()
