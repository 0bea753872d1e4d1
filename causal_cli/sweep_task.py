"""The Hydra side of a sweep (api layer): the scorecard files, the callbacks and dead joblib workers.

:mod:`causal_cli.sweep` aggregates the job folders into a :class:`~causal_cli.sweep.Scorecard` (no
files, no printing); this module writes ``summary.csv`` / ``summary.png``, prints the table at the end
of a multirun (``ScorecardCallback``), a progress line after each job (``ProgressCallback``), and keeps a
joblib sweep going when a worker process dies.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback

from causal_cli import sweep
from causal_cli.sweep import Scorecard


def write_summary(card: Scorecard) -> tuple[list[Path], list[str]]:
    """``summary.csv`` and ``summary.png`` in the sweep folder -> (paths written, problems)."""
    from causal_cli.report import files

    paths, problems = [], []
    csv_path = card.sweep_dir / "summary.csv"
    files.atomic_write(csv_path, files._csv(card.rows, card.columns()))
    paths.append(csv_path)
    try:
        from causal_cli.report.sweep_plot import bias_png

        order = list(dict.fromkeys(job.estimator for job in card.jobs))
        png = bias_png(card.rows, card.settings, order, card.units, card.sweep_dir / "summary.png")
        if png is not None:
            paths.append(png)
    except Exception as exc:  # noqa: BLE001 - the table and CSV stand without the picture
        problems.append(f"summary.png not written: {type(exc).__name__}: {' '.join(str(exc).split())}")
    return paths, problems


def summarize(sweep_dir: Path) -> Scorecard:
    """Build the scorecard of ``sweep_dir`` and write its files (``card.files``; ``card.problems`` says
    what is missing or doubtful). Nothing is printed: :func:`show` does that."""
    card = sweep.scorecard(sweep_dir)
    paths, problems = write_summary(card)
    card.files, card.problems = paths, [*card.warnings, *problems]
    return card


def show(card: Scorecard) -> None:
    """The scorecard table, failures and files on the console."""
    from causal_cli.report import console, scorecard

    card_view = scorecard.build(
        rows=card.rows,
        settings=card.settings,
        replications=card.replications,
        fixed=card.fixed,
        units=card.units,
        failed=[(job.folder.name, job.error) for job in card.failed],
        n_jobs=len(card.jobs),
        sweep_dir=str(card.sweep_dir),
        files=[str(p) for p in card.files],
        problems=card.problems,
    )
    console.render_scorecard(card_view)


class ScorecardCallback(Callback):
    """Hydra callback: the scorecard at the end of every multirun (jobs never raise, so it always runs)."""

    def on_multirun_end(self, config, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        try:
            show(summarize(sweep_dir))
        except Exception as exc:  # noqa: BLE001 - the jobs' own results are safe; say why there is no scorecard
            from causal_cli.errors import CausalCliError
            from causal_cli.report import console

            message = exc.one_line() if isinstance(exc, CausalCliError) else f"{type(exc).__name__}: {exc}"
            console.error(f"causal: no scorecard for {sweep_dir}: {' '.join(message.split())}")


#: one line per finished job, appended by whichever process ran it (O_APPEND keeps lines whole)
PROGRESS_FILE = ".progress"


class ProgressCallback(Callback):
    """Hydra callback: after each job, ``k/N jobs`` with a bar, failures, elapsed time and ETA (on stderr).

    Works whichever launcher runs the jobs: each job appends a line to the sweep folder's
    :data:`PROGRESS_FILE`, and the count comes from there. ``N`` is the size of the sweep, from the
    sweep's own overrides in ``multirun.yaml``; when it cannot be known the line has no bar or ETA.
    """

    def on_multirun_start(self, config, **kwargs: Any) -> None:
        """A sweep folder used again starts counting from 0 (the scorecard still reads every job folder)."""
        with contextlib.suppress(OSError):
            (Path(str(config.hydra.sweep.dir)) / PROGRESS_FILE).unlink()
        survive_dead_workers()

    def on_job_end(self, config, job_return=None, **kwargs: Any) -> None:
        try:
            sweep_dir = Path(str(config.hydra.sweep.dir))
        except Exception:  # noqa: BLE001 - not a multirun job
            return
        if not (sweep_dir / "multirun.yaml").exists():
            return
        status = getattr(job_return, "return_value", None) or "failed"
        try:
            done, failed = record_job_end(sweep_dir, str(status))
        except OSError:  # e.g. a symbolic link planted as the progress file: no progress line, the job stands
            return
        from causal_cli.report import console

        # the size is fixed for the sweep: parse multirun.yaml once (after every job it took 3% of a sweep)
        cached = getattr(self, "_size", None)
        total = cached[1] if cached and cached[0] == sweep_dir else sweep.sweep_size(sweep_dir)
        self._size = (sweep_dir, total)
        elapsed = sweep.sweep_elapsed_s(sweep_dir)
        own = job_seconds(config) if getattr(self, "_first_end", None) is None else None
        console.sweep_progress(done, failed, total, elapsed, eta_s=self._eta(done, total, elapsed, own))

    def _eta(
        self, done: int, total: int | None, elapsed: float | None, job_s: float | None = None
    ) -> float | None:
        """Seconds left at the pace of the jobs since the first one this process saw end.

        The first job also pays the imports and the first composition (seconds, against a fraction of a
        second per later job): timed from the sweep's start, its pace made the first ETAs 15x too long.
        After the first job, its own time (``job_s``, from its ``results.json``) is the pace; without it
        None (the console then divides the elapsed time by the jobs done), as for launchers whose jobs
        end in other processes. The end of the sweep (the scorecard reads every job folder and draws
        ``summary.png``, then the process exits) is counted as one job more: in a 50-job sweep of 2k-row
        jobs it took 2.9 s after the last job, at a pace of 1.1 s per job (benchmarks/bench_sweep.py).
        """
        first = getattr(self, "_first_end", None)
        if elapsed is None or not total:
            return None
        left = max(total - done, 0)
        tail = 1 if left else 0
        if first is None or done <= first[0]:
            self._first_end = (done, elapsed)
            return None if job_s is None else job_s * (left + tail)
        return (elapsed - first[1]) / (done - first[0]) * (left + tail)


def job_seconds(config) -> float | None:
    """A finished job's own time from its ``results.json``: ``runtime_s`` plus its report; None if unknown."""
    try:
        record = json.loads((Path(str(config.hydra.runtime.output_dir)) / "results.json").read_text())
        return float(record["runtime_s"]) + float((record.get("timings") or {}).get("report") or 0.0)
    except Exception:  # noqa: BLE001 - no pace from this job: the console's estimate stands
        return None


def record_job_end(sweep_dir: Path, status: str) -> tuple[int, int]:
    """Append ``status`` to the progress file; return (jobs finished, jobs failed) so far."""
    import os

    path = sweep_dir / PROGRESS_FILE
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
    try:
        os.write(fd, f"{status}\n".encode())
    finally:
        os.close(fd)
    lines = path.read_text().split()
    return len(lines), sum(1 for line in lines if line != "ok")


#: the joblib launcher's own ``launch``, wrapped by :func:`survive_dead_workers`
_JOBLIB_LAUNCH = None
DEAD_WORKER_ERROR = (
    "worker error: the process running this job died (killed, e.g. SIGKILL or out of memory); jobs running "
    "beside it in the same pool are stopped too and recorded so"
)


def survive_dead_workers() -> None:
    """A joblib sweep whose worker process dies runs its other jobs and still writes the scorecard.

    joblib's ``Parallel`` raises when a worker dies, so the launcher (and the whole multirun, with its
    scorecard) would end and the jobs not yet started would never run. The launch is wrapped: the jobs
    whose folder still says ``running`` are recorded as failed (``results.json`` says why), the jobs not
    started yet run in a new pool, and the finished ones keep their results. Idempotent.
    """
    global _JOBLIB_LAUNCH
    try:
        from hydra_plugins.hydra_joblib_launcher import _core
    except ImportError:
        return
    if _JOBLIB_LAUNCH is None:
        _JOBLIB_LAUNCH = _core.launch
        _core.launch = _launch_surviving_dead_workers


def _launch_surviving_dead_workers(launcher, job_overrides, initial_job_idx):
    from hydra.core.utils import JobReturn, JobStatus
    from joblib.externals.loky.process_executor import BrokenProcessPool

    sweep_dir = Path(str(launcher.config.hydra.sweep.dir))
    todo = list(range(len(job_overrides)))
    returns: dict[int, Any] = {}
    while todo:
        block = _contiguous(todo)
        try:
            runs = _JOBLIB_LAUNCH(
                launcher=launcher,
                job_overrides=[job_overrides[i] for i in block],
                initial_job_idx=initial_job_idx + block[0],
            )
            returns.update(zip(block, runs))
            todo = [i for i in todo if i not in block]
            continue
        except BrokenProcessPool:
            pass
        folders = {job.num: job.folder for job in sweep.load_jobs(sweep_dir)}
        progressed = False
        for i in block:
            folder = folders.get(initial_job_idx + i)
            if folder is None:
                continue  # never started: runs in the next pool
            status = _folder_status(folder)
            if status == "running" or status is None:
                _record_dead(folder)
                status = "failed"
            returns[i] = JobReturn(
                overrides=list(job_overrides[i]), status=JobStatus.COMPLETED, _return_value=status
            )
            todo.remove(i)
            progressed = True
        if not progressed:  # the pool died before any job of the block started: do not loop forever
            for i in block:
                returns[i] = JobReturn(
                    overrides=list(job_overrides[i]), status=JobStatus.COMPLETED, _return_value="failed"
                )
                todo.remove(i)
    return [returns[i] for i in range(len(job_overrides))]


def _contiguous(indices: list[int]) -> list[int]:
    block = [indices[0]]
    for i in indices[1:]:
        if i != block[-1] + 1:
            break
        block.append(i)
    return block


def _folder_status(folder: Path) -> str | None:
    try:
        return json.loads((folder / "results.json").read_text(encoding="utf-8")).get("status")
    except (OSError, ValueError, AttributeError):
        return None


def _record_dead(folder: Path) -> None:
    """The job's ``results.json`` says failed and why (written whole, or not at all)."""
    from causal_cli.report import files

    try:
        payload = json.loads((folder / "results.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        payload = {}
    payload.update(status="failed", error=DEAD_WORKER_ERROR, output_dir=str(folder))
    with contextlib.suppress(Exception):
        files.write_json(folder / "results.json", payload)
