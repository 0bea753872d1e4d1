"""A sweep folder (one ``causal run -m``) aggregated into one scorecard: ``summary.csv``, ``summary.png``, a table.

Everything is read back from the job folders (``results.json`` and ``.hydra/overrides.yaml``), so the
scorecard is the same whichever launcher ran the jobs (in this process, joblib, Ray, SLURM) and
``causal summarize SWEEP_DIR`` re-creates it later. A job that failed still has its ``results.json``
(``status: failed`` and the one-line error); a job folder with no readable ``results.json`` counts as failed.

Rows: one per estimator and *setting* (a combination of the swept values other than the estimator and
the replication keys); the replications are what a row averages over: every ``seed`` key, and the keys
listed in ``replicate_over`` (default ``[data.path]``: a sweep over replication files, each job compared with
its own file's reference). Each job is compared with the reference of its own estimand (see
causal_cli/references.py); ``reference_kind`` says whether the references are simulated truth or published
values. Within a setting the rows are sorted by |mean bias|, then RMSE, and the first estimator without
failures is marked best.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback

#: the multirun that last ended in this process (set by :class:`ScorecardCallback`, read by ``causal run``)
LAST_SWEEP_DIR: Path | None = None

#: summary.csv columns after the setting columns
SUMMARY_COLUMNS = [
    "estimator",
    "runs",
    "failures",
    "mean_estimate",
    "truth",
    "reference_kind",
    "mean_bias",
    "sd_bias",
    "mae",
    "rmse",
    "ci_coverage",
    "mean_ci_width",
    "refutations_passed",
    "refutations_judged",
    "mean_runtime_s",
    "best",
]
#: appended to summary.csv when the jobs ran the heterogeneity stage on simulated data
HETEROGENEITY_COLUMNS = ["mean_pehe", "segment_ci_coverage"]
ESTIMATOR_KEY = "estimator"
_JOB_NUM = re.compile(r"^(\d+)_")


#: swept keys that are replications when the config does not say (``replicate_over``)
DEFAULT_REPLICATE_OVER = ("data.path",)


def is_replication_key(key: str, replicate_over=DEFAULT_REPLICATE_OVER) -> bool:
    """Seeds, and the keys of ``replicate_over``, are replications (averaged over), not settings (compared)."""
    return key.rsplit(".", 1)[-1] == "seed" or key in set(replicate_over)


def replicate_over(sweep_dir: Path) -> tuple[str, ...]:
    """The sweep's ``replicate_over`` (from its ``multirun.yaml``), or :data:`DEFAULT_REPLICATE_OVER`."""
    from omegaconf import OmegaConf

    try:
        value = OmegaConf.select(OmegaConf.load(Path(sweep_dir) / "multirun.yaml"), "replicate_over")
    except Exception:  # noqa: BLE001 - no multirun.yaml (copied folders): the default
        value = None
    if value is None:
        return DEFAULT_REPLICATE_OVER
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value)


@dataclass
class Job:
    """One job folder of a sweep: its overrides and its ``results.json`` (``{}`` if unreadable)."""

    folder: Path
    overrides: dict[str, str]
    result: dict[str, Any]
    problem: str | None = None

    @property
    def num(self) -> int:
        match = _JOB_NUM.match(self.folder.name)
        return int(match.group(1)) if match else 1 << 30

    @property
    def status(self) -> str:
        return str(self.result.get("status") or "missing")

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def error(self) -> str:
        if self.problem:
            return self.problem
        if self.status == "running":
            return "the job stopped before writing its results (results.json still says running)"
        return str(self.result.get("error") or self.status)

    @property
    def estimator(self) -> str:
        """The swept estimator choice (a preset such as ``regression_additive`` keeps its own row), else the
        estimator the job ran."""
        return str(self.overrides.get(ESTIMATOR_KEY) or self.result.get("estimator") or "?")


@dataclass
class Scorecard:
    sweep_dir: Path
    jobs: list[Job]
    settings: list[str]
    replications: dict[str, int]
    fixed: dict[str, str]
    rows: list[dict[str, Any]] = field(default_factory=list)
    units: str = ""
    #: one-line warnings about the references (a number of unstated estimand in a mixed-estimand sweep)
    warnings: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[Job]:
        return [job for job in self.jobs if not job.ok]

    def columns(self) -> list[str]:
        extra = [c for c in HETEROGENEITY_COLUMNS if any(row.get(c) is not None for row in self.rows)]
        return [*self.settings, *SUMMARY_COLUMNS, *extra]


def parse_override(line: str) -> tuple[str, str] | None:
    """``key=value`` of one Hydra override line (``+key``/``++key`` alike; deletions ``~key`` skipped)."""
    key, sep, value = str(line).partition("=")
    key = key.strip().lstrip("+")
    if not sep or key.startswith("~"):
        return None
    return key, value.strip()


def read_job(folder: Path) -> Job:
    overrides: dict[str, str] = {}
    problem = None
    listed = folder / ".hydra" / "overrides.yaml"
    if listed.is_file():
        from omegaconf import OmegaConf

        for line in OmegaConf.load(listed) or []:
            parsed = parse_override(line)
            if parsed:
                overrides[parsed[0]] = parsed[1]
    try:
        result = json.loads((folder / "results.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        result, problem = {}, "no results.json (the job did not start, or its process died)"
    except (OSError, ValueError) as exc:
        result, problem = {}, f"results.json unreadable: {' '.join(str(exc).split())}"
    return Job(folder, overrides, result if isinstance(result, dict) else {}, problem)


def load_jobs(sweep_dir: Path) -> list[Job]:
    """The job folders directly under ``sweep_dir`` (those with ``results.json`` or ``.hydra``), by job number."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        return []
    folders = [
        p
        for p in sweep_dir.iterdir()
        if p.is_dir()
        and not p.name.startswith(".")
        and ((p / "results.json").exists() or (p / ".hydra").is_dir())
    ]
    jobs = [read_job(p) for p in folders]
    return sorted(jobs, key=lambda job: (job.num, job.folder.name))


def job_outcomes(sweep_dir: Path) -> tuple[int, int]:
    """(jobs, failed jobs) of a sweep folder, for launchers that run the jobs in other processes."""
    jobs = load_jobs(sweep_dir)
    return len(jobs), sum(1 for job in jobs if not job.ok)


def _swept(
    jobs: list[Job], replicate=DEFAULT_REPLICATE_OVER
) -> tuple[list[str], dict[str, int], dict[str, str]]:
    """(setting keys, replication key -> number of values, fixed overrides) from the jobs' overrides."""
    keys: list[str] = []
    for job in jobs:
        keys += [k for k in job.overrides if k not in keys]
    settings, replications, fixed = [], {}, {}
    for key in keys:
        values = {job.overrides.get(key) for job in jobs}
        if len(values) == 1:
            fixed[key] = next(iter(values))
        elif is_replication_key(key, replicate):
            replications[key] = len(values)
        elif key != ESTIMATOR_KEY:
            settings.append(key)
    return settings, replications, fixed


def _mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


def _number(value) -> float | None:
    return (
        float(value)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        else None
    )


def score(jobs: list[Job]) -> dict[str, Any]:
    """The scorecard numbers of one (setting, estimator) cell; failed jobs count only in runs/failures."""
    ok = [job.result for job in jobs if job.ok]
    estimates = [e for e in (_number(r.get("estimate")) for r in ok) if e is not None]
    with_truth = [
        r for r in ok if _number(r.get("estimate")) is not None and _number(r.get("reference")) is not None
    ]
    biases = [r["estimate"] - r["reference"] for r in with_truth]
    with_ci = [
        r for r in ok if _number(r.get("ci_low")) is not None and _number(r.get("ci_high")) is not None
    ]
    covered = [
        r["ci_low"] <= r["reference"] <= r["ci_high"]
        for r in with_ci
        if _number(r.get("reference")) is not None
    ]
    runtimes = [t for t in (_number(r.get("runtime_s")) for r in ok) if t is not None]
    kinds = sorted({str(r.get("reference_kind")) for r in with_truth if r.get("reference_kind")})
    return {
        "runs": len(jobs),
        "failures": len(jobs) - len(ok),
        "mean_estimate": _mean(estimates),
        "truth": _mean([r["reference"] for r in with_truth]),
        "reference_kind": "+".join(kinds) or None,
        "mean_bias": _mean(biases),
        "sd_bias": statistics.stdev(biases) if len(biases) > 1 else None,
        "mae": _mean([abs(b) for b in biases]),
        "rmse": math.sqrt(_mean([b * b for b in biases])) if biases else None,
        "ci_coverage": _mean([float(c) for c in covered]),
        "mean_ci_width": _mean([r["ci_high"] - r["ci_low"] for r in with_ci]),
        "refutations_passed": sum(int(r.get("refutations_passed") or 0) for r in ok),
        "refutations_judged": sum(int(r.get("refutations_with_verdict") or 0) for r in ok),
        "mean_runtime_s": _mean(runtimes),
        "biases": biases,
        **heterogeneity_score(ok),
    }


def heterogeneity_score(results: list[dict[str, Any]]) -> dict[str, float | None]:
    """Mean PEHE and segment-CI coverage over the jobs whose heterogeneity stage knew the truth."""
    truths = [(r.get("heterogeneity") or {}).get("truth") for r in results]
    truths = [t for t in truths if t]
    return {
        "mean_pehe": _mean([t["pehe"] for t in truths]) if truths else None,
        "segment_ci_coverage": _mean([t["segment_coverage"] for t in truths]) if truths else None,
    }


def reference_warnings(jobs: list[Job]) -> list[str]:
    """A sweep whose jobs target different estimands but share one reference of unstated estimand."""
    ok = [job.result for job in jobs if job.ok and _number(job.result.get("reference")) is not None]
    targets = sorted({str(r.get("target_units")) for r in ok if r.get("target_units")})
    unstated = [r for r in ok if not r.get("reference_estimand")]
    if len(targets) > 1 and unstated:
        return [
            f"the jobs estimate {', '.join(targets)} but {len(unstated)} of them were compared with one "
            "reference number of unstated estimand; give one per estimand: reference: {ate: ..., att: ...}"
        ]
    return []


def _rank(row: dict[str, Any]) -> tuple:
    bias, rmse = row["mean_bias"], row["rmse"]
    return (bias is None, abs(bias) if bias is not None else 0.0, rmse if rmse is not None else math.inf)


def scorecard(sweep_dir: Path) -> Scorecard:
    """Aggregate the job folders of ``sweep_dir``; raise ConfigError if it holds no job folder."""
    from causal_cli.errors import ConfigError

    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise ConfigError(f"{sweep_dir} is not a folder; pass a sweep folder written by causal run -m")
    if (sweep_dir / "results.json").is_file():
        raise ConfigError(
            f"{sweep_dir} is one run's folder; pass the sweep folder that holds the job folders"
        )
    jobs = load_jobs(sweep_dir)
    if not jobs:
        raise ConfigError(
            f"{sweep_dir} holds no job folders (with results.json); pass a folder written by causal run -m"
        )
    settings, replications, fixed = _swept(jobs, replicate_over(sweep_dir))
    cells: dict[tuple, dict[str, list[Job]]] = {}
    for job in jobs:  # job order: settings and estimators appear in the order they were swept
        setting = tuple(job.overrides.get(key) for key in settings)
        cells.setdefault(setting, {}).setdefault(job.estimator, []).append(job)
    rows = []
    for setting, by_estimator in cells.items():
        block = [
            {**dict(zip(settings, setting)), "estimator": name, **score(group)}
            for name, group in by_estimator.items()
        ]
        block.sort(key=_rank)
        best = next((r for r in block if r["mean_bias"] is not None and r["failures"] == 0), None)
        for row in block:
            row["best"] = row is best
        rows += block
    units = next(((job.result.get("graph") or {}).get("outcome_units", "") for job in jobs if job.ok), "")
    return Scorecard(sweep_dir, jobs, settings, replications, fixed, rows, units, reference_warnings(jobs))


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


def summarize(sweep_dir: Path, show: bool = True) -> Scorecard:
    """Build the scorecard of ``sweep_dir``, write its files and (``show``) print its table."""
    card = scorecard(sweep_dir)
    paths, problems = write_summary(card)
    problems = [*card.warnings, *problems]
    if show:
        from causal_cli.report import console

        console.print_scorecard(
            rows=card.rows,
            settings=card.settings,
            replications=card.replications,
            fixed=card.fixed,
            units=card.units,
            failed=[(job.folder.name, job.error) for job in card.failed],
            n_jobs=len(card.jobs),
            sweep_dir=str(card.sweep_dir),
            files=[str(p) for p in paths],
            problems=problems,
        )
    return card


class ScorecardCallback(Callback):
    """Hydra callback: the scorecard at the end of every multirun (jobs never raise, so it always runs)."""

    def on_multirun_end(self, config, **kwargs: Any) -> None:
        global LAST_SWEEP_DIR
        sweep_dir = Path(str(config.hydra.sweep.dir))
        LAST_SWEEP_DIR = sweep_dir
        try:
            summarize(sweep_dir)
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
        total = cached[1] if cached and cached[0] == sweep_dir else sweep_size(sweep_dir)
        self._size = (sweep_dir, total)
        elapsed = sweep_elapsed_s(sweep_dir)
        console.sweep_progress(done, failed, total, elapsed, eta_s=self._eta(done, total, elapsed))

    def _eta(self, done: int, total: int | None, elapsed: float | None) -> float | None:
        """Seconds left at the pace of the jobs since the first one this process saw end.

        The first job also pays the imports and the first composition (seconds, against a fraction of a
        second per later job): timed from the sweep's start, its pace made the first ETAs 15x too long.
        None (the console then divides the elapsed time by the jobs done) until a second job has ended,
        and for launchers whose jobs end in other processes.
        """
        first = getattr(self, "_first_end", None)
        if elapsed is None or not total:
            return None
        if first is None or done <= first[0]:
            self._first_end = (done, elapsed)
            return None
        return (elapsed - first[1]) / (done - first[0]) * max(total - done, 0)


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


def sweep_elapsed_s(sweep_dir: Path) -> float | None:
    """Seconds since the sweep started (Hydra writes ``multirun.yaml`` before the first job)."""
    import time

    try:
        return max(0.0, time.time() - (sweep_dir / "multirun.yaml").stat().st_mtime)
    except OSError:
        return None


def sweep_size(sweep_dir: Path) -> int | None:
    """How many jobs the basic sweeper makes of the sweep's overrides and ``hydra.sweeper.params``, or None."""
    from omegaconf import OmegaConf

    try:
        conf = OmegaConf.load(sweep_dir / "multirun.yaml")
        params = OmegaConf.select(conf, "hydra.sweeper.params") or {}
        lines = [f"{key}={value}" for key, value in params.items()]
        lines += list(OmegaConf.select(conf, "hydra.overrides.task") or [])
        return count_sweep_jobs(lines)
    except Exception:  # noqa: BLE001 - no size means a line without a bar, never a failed sweep
        return None


def count_sweep_jobs(lines: list[str]) -> int | None:
    """Jobs in the cross product of the sweep overrides ``lines`` (later lines win per key), or None."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import Glob

    sizes: dict[str, int] = {}
    for override in OverridesParser.create().parse_overrides(lines):
        key = override.get_key_element()
        if not override.is_sweep_override():
            sizes[key] = 1
        elif (override.is_discrete_sweep() or override.is_range_sweep()) and not isinstance(
            override.value(), Glob
        ):
            sizes[key] = sum(1 for _ in override.sweep_string_iterator())
        else:  # glob and interval sweeps: their size depends on the config repository or the sweeper
            return None
    return math.prod(sizes.values())


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
        folders = {job.num: job.folder for job in load_jobs(sweep_dir)}
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
