"""``causal reproduce RUN_DIR``: re-run a finished run from its saved config and check every number.

The run is repeated through the real ``causal run`` path with the validated ``config.yaml`` the
original run saved, from the folder it was started in (so relative data paths mean the same
file), into a new folder. Every local data file must still hash to what ``results.json``
recorded; otherwise the re-run is refused, since a different table would make any comparison
meaningless. Numbers are compared exactly, as written in the CSV files (``repr`` of each float).
"""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from causal_cli.errors import CausalCliError, ConfigError, DataError
from causal_cli.results import MAX_RESULTS_BYTES, read_results_json

USAGE = "usage: causal reproduce RUN_DIR [--out NEW_DIR]"
#: files whose every value must match (results.json also holds timings, paths and provenance)
HEADLINE = ("results.csv", "refutations.csv")
__all__ = ["MAX_RESULTS_BYTES", "Plan", "Reproduction", "execute", "prepare", "render"]


class ComposeError(ConfigError):
    """The saved config cannot be composed by Hydra (the cause is Hydra's own error)."""


@dataclass
class Plan:
    """A checked re-run: the original folder, its results and config, where it ran, the new folder."""

    run_dir: Path
    results: dict[str, Any]
    config_path: Path
    base_dir: Path
    new_dir: Path
    #: the run's local input files as they are now (``{key: {"path", "sha256"}}``), checked unchanged
    inputs: dict[str, dict[str, str]] = field(default_factory=dict)


@dataclass
class Reproduction:
    """What a re-run found: (field, original, new, equal) rows and (file, identical, detail) per CSV."""

    run_dir: Path
    new_dir: Path
    rows: list[tuple[str, str, str, bool]] = field(default_factory=list)
    files: list[tuple[str, bool, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r[3] for r in self.rows) and all(f[1] for f in self.files)

    def render(self) -> str:
        return render(self.rows, self.files)


def read_run(run_dir: Path) -> tuple[dict[str, Any], Path]:
    """The original run's ``results.json`` and saved config; refuse anything that is not a complete run."""
    config_path = run_dir / "config.yaml"
    results = read_results_json(run_dir)
    status = results.get("status")
    if status != "ok":
        raise ConfigError(
            f"{run_dir} has status '{status}'; only a complete run (status ok) can be reproduced"
        )
    if not config_path.is_file():
        raise ConfigError(f"{run_dir} has no config.yaml (the validated config every run saves)")
    check_config_unchanged(results, config_path)
    return results, config_path


def check_config_unchanged(results: dict[str, Any], config_path: Path) -> None:
    """Only the config that ran is re-run: its sha256 must match the one ``results.json`` recorded.

    A folder written before ``config_sha256`` was recorded is refused: nothing says its
    config.yaml is the one that ran. (The hash catches an edited config; it is no signature,
    so the allow-list still decides what any config may call.)
    """
    from causal_cli import trust
    from causal_cli.task import config_sha256

    trust.check_yaml_file(config_path, "the run's config.yaml")
    recorded = results.get("config_sha256")
    if not isinstance(recorded, str) or not recorded:
        raise ConfigError(
            f"{config_path.parent} records no config_sha256 (written by an older causal-cli), so its "
            "config.yaml cannot be checked; re-run it with causal run instead"
        )
    current = config_sha256(config_path)
    if current != recorded:
        raise ConfigError(
            f"{config_path} changed since the run (sha256 {recorded[:12]} recorded, {current[:12]} now); "
            "reproduce only re-runs the config that ran"
        )


def base_dir_of(results: dict[str, Any]) -> Path:
    """Where the original run was started: relative data paths are relative to it."""
    provenance = results.get("provenance")
    cwd = provenance.get("cwd") if isinstance(provenance, dict) else None
    return Path(cwd) if isinstance(cwd, str) and cwd and Path(cwd).is_dir() else Path.cwd()


def load_saved_config(config_path: Path):
    """The run's saved ``config.yaml`` (a mapping), read once; ConfigError in one line when it is not one."""
    from omegaconf import DictConfig, OmegaConf

    try:
        saved = OmegaConf.load(config_path)
    except Exception as exc:  # noqa: BLE001 - any unreadable config is one line
        raise ConfigError(f"{config_path} is not a config: {' '.join(str(exc).split())[:200]}") from exc
    if not isinstance(saved, DictConfig):
        raise ConfigError(f"{config_path} is not a config: a {type(saved).__name__}, not a mapping")
    return saved


def check_data_unchanged(results: dict[str, Any], saved, base_dir: Path) -> dict[str, dict[str, str]]:
    """The saved config's (``saved``) local input files now (data files and ``graph.file``, ``{key: {"path",
    "sha256"}}``); DataError when one the run read is gone or its bytes changed."""
    from causal_cli import provenance

    recorded = results.get("data_files") or {}
    if not isinstance(recorded, dict):
        raise ConfigError("results.json: data_files is not a mapping; not a run's results")
    now = provenance.source_file_hashes(saved.get("data"), str(base_dir), saved.get("graph"))
    for key, then in recorded.items():
        current = now.get(key)
        if current is None:
            raise DataError(f"{key}={then['path']} no longer exists; reproduce needs the data the run read")
        if current["sha256"] != then["sha256"]:
            raise DataError(
                f"{key}={current['path']} changed since the run (sha256 {_short(then['sha256'])} then, "
                f"{_short(current['sha256'])} now); reproduce needs the same data"
            )
    return now


def _short(digest: str) -> str:
    return digest.split(":")[-1][:12]


def _override_value(text: str) -> str:
    """Quote a path for Hydra's override grammar (no interpolation, quotes escaped)."""
    escaped = text.replace("\\", "\\\\").replace("'", "\\'").replace("${", "\\${")
    return f"'{escaped}'"


def ran_on_a_frame(saved) -> bool:
    """Whether the run analysed a pandas DataFrame passed in Python (``causal_cli.api.run(df)``): its
    saved config (``saved``) reads a table (``data.source: csv``) without a file, which only a frame can complete."""
    data = saved.get("data")
    return data is not None and data.get("source") == "csv" and data.get("path") is None


def prepare(run_dir: Path, out: Path | None = None, frame_given: bool = False) -> Plan:
    """Check that ``run_dir`` may be re-run (complete, config and data unchanged) and choose the new folder.

    A run on a DataFrame passed in Python can only be repeated in Python, with the frame
    (``causal_cli.api.reproduce(run_dir, data=df)``: ``frame_given``); the command refuses it in one line."""
    results, config_path = read_run(run_dir)
    saved = load_saved_config(config_path)
    on_frame = ran_on_a_frame(saved)
    if on_frame and not frame_given:
        raise ConfigError(
            f"{run_dir} analysed a pandas DataFrame passed in Python, which no file holds; reproduce it in "
            f"Python with the same frame: causal_cli.api.reproduce({str(run_dir)!r}, data=df)"
        )
    if frame_given and not on_frame:
        raise ConfigError(
            f"data= is only for runs on a DataFrame; {run_dir} read its own data "
            f"({results.get('data_description') or 'its data source'}): reproduce it without data="
        )
    base_dir = base_dir_of(results)
    inputs = check_data_unchanged(results, saved, base_dir)
    new_dir = (
        out
        or run_dir.parent
        / f"{run_dir.name}_reproduce_{time.strftime('%Y%m%d-%H%M%S')}-"
        f"{time.time_ns() // 1000 % 1_000_000:06d}"
    ).resolve()
    if new_dir.exists() and any(new_dir.iterdir()):
        raise ConfigError(f"--out {new_dir} is not empty; reproduce writes a new folder")
    return Plan(run_dir, results, config_path, base_dir, new_dir, inputs)


def rerun_args(plan: Plan) -> list[str]:
    """The ``causal run`` arguments that repeat the run from its saved config into the new folder (a
    ``graph.file`` by the absolute path it was read from, checked unchanged: the re-run may start elsewhere)."""
    graph_file = plan.inputs.get("graph.file")
    pinned = [f"graph.file={_override_value(graph_file['path'])}"] if graph_file else []
    return [
        "--config-path",
        str(plan.config_path.parent.resolve()),
        "--config-name",
        plan.config_path.stem,
        f"hydra.run.dir={_override_value(str(plan.new_dir))}",
        *pinned,
        "hydra/job_logging=disabled",
        "++report.console=false",
    ]


def execute(plan: Plan, show: bool = True) -> Reproduction:
    """Re-run through the real ``causal run`` path (relative data paths relative to where the original
    ran), then compare; ConfigError when the re-run did not start. ``show``: the job's own error line."""
    from causal_cli import preflight, task

    args = rerun_args(plan)
    try:
        preflight.check(args)  # the allow-list, before anything of the folder's config runs
    except CausalCliError:
        raise
    except Exception as exc:  # noqa: BLE001 - a config Hydra cannot compose: one line
        raise ComposeError(" ".join(str(exc).split())[:300]) from exc
    code = "not run"
    try:
        statuses = task.launch(args, base_dir=str(plan.base_dir)) if show else _quiet(task.launch, args, plan)
        code = ",".join(statuses)
    except CausalCliError:
        raise
    except Exception as exc:  # noqa: BLE001 - the folder says what happened, if it started
        code = f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
    if not (plan.new_dir / "results.json").is_file():
        raise ConfigError(f"the re-run did not start ({code}); nothing to compare")
    new_results = read_results_json(plan.new_dir)
    rows, files = compare(plan.run_dir, plan.new_dir, plan.results, new_results)
    return Reproduction(plan.run_dir, plan.new_dir, rows, files)


def _quiet(launch, args: list[str], plan: Plan) -> list[str]:
    """The re-run without its one-line messages on the console (the comparison says what differs)."""
    import contextlib
    import io

    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        return launch(args, base_dir=str(plan.base_dir))


def _read_csv(path: Path) -> list[dict[str, str]] | None:
    if not path.is_file():
        return None
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def compare(
    old_dir: Path, new_dir: Path, old: dict[str, Any], new: dict[str, Any]
) -> tuple[list[tuple[str, str, str, bool]], list[tuple[str, bool, str]]]:
    """(field, original, new, equal) for the headline numbers; (file, identical, detail) for every CSV."""
    rows = [("status", str(old.get("status")), str(new.get("status")), new.get("status") == "ok")]
    rows.append(
        (
            "data_hash",
            str(old.get("data_hash")),
            str(new.get("data_hash")),
            old.get("data_hash") == new.get("data_hash"),
        )
    )
    old_res, new_res = _read_csv(old_dir / "results.csv") or [{}], _read_csv(new_dir / "results.csv") or [{}]
    for column in dict.fromkeys([*old_res[0], *new_res[0]]):
        if column != "status":
            a, b = old_res[0].get(column, "—"), new_res[0].get(column, "—")
            rows.append((column, a, b, a == b))
    old_ref = {r["name"]: r for r in _read_csv(old_dir / "refutations.csv") or []}
    new_ref = {r["name"]: r for r in _read_csv(new_dir / "refutations.csv") or []}
    for name in dict.fromkeys([*old_ref, *new_ref]):
        a_row, b_row = old_ref.get(name, {}), new_ref.get(name, {})
        for column in dict.fromkeys([*a_row, *b_row]):
            if column not in ("name", "reason"):
                a, b = a_row.get(column, "—"), b_row.get(column, "—")
                rows.append((f"{name}.{column}", a, b, a == b))
    files = []
    names = sorted({p.name for d in (old_dir, new_dir) for p in d.glob("*.csv")})
    for name in names:
        a_path, b_path = old_dir / name, new_dir / name
        if not a_path.is_file() or not b_path.is_file():
            files.append((name, False, f"only in the {'new' if b_path.is_file() else 'original'} run"))
        elif a_path.read_bytes() == b_path.read_bytes():
            files.append((name, True, "byte-identical"))
        else:
            files.append((name, False, _first_difference(_read_csv(a_path), _read_csv(b_path))))
    return rows, files


def _first_difference(a: list[dict[str, str]], b: list[dict[str, str]]) -> str:
    cells = differ = 0
    first = ""
    for i in range(max(len(a), len(b))):
        ra, rb = (a[i] if i < len(a) else {}), (b[i] if i < len(b) else {})
        for column in dict.fromkeys([*ra, *rb]):
            cells += 1
            if ra.get(column) != rb.get(column):
                differ += 1
                first = first or f"row {i + 1} {column}: {ra.get(column, '—')} vs {rb.get(column, '—')}"
    return f"{differ} of {cells} values differ (first: {first})"


def render(rows: list[tuple[str, str, str, bool]], files: list[tuple[str, bool, str]]) -> str:
    """A plain text table (it is read in terminals, logs and CI output alike)."""
    width = max(len(r[0]) for r in rows)
    value_width = min(40, max(len("original"), *(len(r[1]) for r in rows)))
    lines = [f"{'field':<{width}}  {'original':<{value_width}}  {'new':<{value_width}}  match"]

    def cell(text: str) -> str:
        return text if len(text) <= value_width else text[: value_width - 1] + "…"

    for name, a, b, equal in rows:
        lines.append(
            f"{name:<{width}}  {cell(a):<{value_width}}  {cell(b):<{value_width}}  {'yes' if equal else 'NO'}"
        )
    lines.append("")
    for name, _, detail in files:
        lines.append(f"{name}: {detail}")
    mismatched = [r[0] for r in rows if not r[3]] + [f[0] for f in files if not f[1]]
    if mismatched:
        lines.append(f"NOT reproduced: {len(mismatched)} differ ({', '.join(mismatched)})")
    else:
        lines.append(
            f"reproduced: all {len(rows)} fields match and all {len(files)} CSV files are byte-identical"
        )
    return "\n".join(lines)
