"""Run-folder files, each written to a temporary file and renamed, so none is ever half-written."""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

#: CSV tables must be byte-identical for the same config and seed: timings belong in results.json only
RESULT_COLUMNS = [
    "status",
    "treatment",
    "outcome",
    "estimator",
    "target_units",
    "n_rows",
    "adjustment_set",
    "naive_estimate",
    "estimate",
    "std_error",
    "ci_low",
    "ci_high",
    "ci_level",
    "reference",
    "reference_kind",
    "bias",
    "naive_overstatement_pct",
    "seed",
    "max_abs_smd_before",
    "max_abs_smd_after",
    "overlap_share_outside",
]
REFUTATION_COLUMNS = [
    "name",
    "new_effect",
    "new_effect_sd",
    "p_value",
    "passed",
    "reason",
    "num_simulations",
    "rule",
    "options",
    "details",
]


def atomic_write(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same folder, flush it to disk, then rename it into place.

    The rename replaces a symbolic link planted at ``path`` instead of writing through it. A full disk
    or a read-only folder is an :class:`~causal_cli.errors.OutputError` naming the file; the old
    content (if any) stays whole.
    """
    from causal_cli.errors import OutputError

    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a result file is as readable as any other
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and not isinstance(exc, OutputError):
            raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from exc
        raise


def records_dir(run_dir: Path, subdir: str | os.PathLike, key: str = "hydra.output_subdir") -> Path:
    """``run_dir/subdir`` made without following any symbolic link; refused if it would leave ``run_dir``.

    Hydra writes its records (``.hydra/config.yaml`` ...) where ``hydra.output_subdir`` says: a value
    like ``../other_run/.hydra`` or ``/etc`` would rewrite files of another run, and a symbolic link
    planted inside the folder would redirect the write to its target.
    """
    from causal_cli.errors import ConfigError, OutputError

    relative = Path(subdir)
    if relative.is_absolute() or ".." in relative.parts or not str(subdir).strip():
        raise ConfigError(
            f"{key}={str(subdir)!r} leaves the run folder; allowed: a relative folder name without '..', "
            "e.g. .hydra (or null for none)"
        )
    folder = Path(run_dir)
    for part in relative.parts:
        if part in ("", "."):
            continue
        folder = folder / part
        try:
            os.mkdir(folder, 0o777)
        except FileExistsError:
            pass
        except OSError as exc:
            raise OutputError(f"cannot create {folder}: {exc.strerror or exc}") from exc
        if folder.is_symlink() or not folder.is_dir():
            raise OutputError(
                f"{folder} is a symbolic link or not a folder; refusing to write the run's records through it"
            )
    return folder


def overwrite_in_place(path: Path, text: str) -> bool:
    """Replace the start of an existing file with ``text`` padded by spaces to the file's old size.

    For a disk with no room left: the claim file's own blocks take a short record (JSON allows the
    trailing spaces), where writing any new file fails. False if the file is shorter than ``text``,
    is not a regular file, or cannot be written; the file is then unchanged.
    """
    data = text.encode("utf-8")
    try:
        fd = os.open(path, os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return False
    try:
        size = os.fstat(fd).st_size
        if size < len(data) + 1 or not os.path.isfile(path):
            return False
        os.pwrite(fd, data + b" " * (size - len(data) - 1) + b"\n", 0)
        os.fsync(fd)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_json(path: Path, payload: dict[str, Any]) -> None:
    atomic_write(path, json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n")


def _csv(rows: list[dict[str, Any]], columns: list[str]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {k: (";".join(map(str, row[k])) if isinstance(row.get(k), list) else row.get(k)) for k in columns}
        )
    return buf.getvalue()


def _refutation_rows(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """Refutations as CSV rows: ``options`` and the scalar ``details`` as ``key=value; ...`` text."""

    def flat(values: dict[str, Any]) -> str:
        items = []
        for key, value in (values or {}).items():
            if isinstance(value, list) and all(not isinstance(v, (dict, list)) for v in value):
                value = ",".join(map(str, value))
            if not isinstance(value, (dict, list)):
                items.append(f"{key}={value}")
        return "; ".join(items)

    return [
        {**r, "options": flat(r.get("options")), "details": flat(r.get("details"))}
        for r in payload.get("refutations") or []
    ]


def claim_run_dir(run_dir: Path, header: dict[str, Any]) -> None:
    """Create ``results.json`` exclusively (status ``running``): no run ever reuses another's folder."""
    from causal_cli.errors import ConfigError, OutputError

    path = run_dir / "results.json"
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        # O_EXCL also fails on a symbolic link planted as results.json (it is never followed)
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0), 0o644)
    except FileExistsError as exc:
        raise ConfigError(
            f"output folder {run_dir} already holds a run; choose a new hydra.run.dir (hydra.sweep.dir for a sweep)"
        ) from exc
    except OSError as exc:
        raise OutputError(f"cannot create {path}: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(json.dumps({"status": "running", "error": None, **header}, indent=2, default=str) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:  # e.g. a full disk: no half-written claim stays behind
        path.unlink(missing_ok=True)
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from exc


def write_run_files(
    run_dir: Path,
    payload: dict[str, Any],
    summary_md: str | None,
    tables: dict[str, list[dict]] | None = None,
) -> None:
    """Tables first, ``results.json`` (whose status says the run is complete) last."""
    write_tables(run_dir, payload, summary_md, tables)
    write_json(run_dir / "results.json", payload)


def write_tables(
    run_dir: Path,
    payload: dict[str, Any],
    summary_md: str | None,
    row_tables: dict[str, list[dict]] | None = None,
) -> None:
    """Every file of a finished run except ``results.json``; ``row_tables`` (name -> rows) become ``name.csv``."""
    if payload.get("status") == "ok":
        for name, rows in (row_tables or {}).items():
            if rows:
                atomic_write(run_dir / f"{name}.csv", _csv(rows, list(rows[0])))
        atomic_write(run_dir / "results.csv", _csv([payload], RESULT_COLUMNS))
        atomic_write(run_dir / "refutations.csv", _csv(_refutation_rows(payload), REFUTATION_COLUMNS))
        tables = [row for r in payload.get("refutations") or [] for row in r.get("table") or []]
        if tables:
            atomic_write(run_dir / "sensitivity.csv", _csv(tables, list(tables[0])))
        if summary_md:
            atomic_write(run_dir / "summary.md", summary_md)
