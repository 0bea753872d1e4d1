"""What every table source shares: the options schema and the read -> rename -> derive -> filter steps.

A source module (csv, parquet, sql, causaldata) only says how to read the columns it is asked
for; this module decides which columns those are (the graph's, plus what ``derive`` and the row
filter read, so a wide file is never loaded whole) and applies the options in a fixed order.
Validation of the result (types, missing values, overlap) is :mod:`causal_cli.data.checks`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

import pandas as pd

from causal_cli.data import Dataset
from causal_cli.data.expr import evaluate, names_in
from causal_cli.errors import ConfigError, DataError
from causal_cli.schema import DataConfig


class MissingPolicy(str, Enum):
    error = "error"
    drop = "drop"


@dataclass
class TableDataConfig(DataConfig):
    """Options every table source has (each source adds where the table comes from)."""

    description: str = ""
    #: source columns to read; null = exactly what the graph, ``derive`` and the row filter use
    columns: list[str] | None = None
    #: source column -> name used in the graph
    rename: dict[str, str] = field(default_factory=dict)
    #: new column -> expression over (renamed) columns, evaluated in order
    derive: dict[str, str] = field(default_factory=dict)
    #: confounders to one-hot encode (the first level, sorted, is the reference and gets no column)
    categorical: list[str] = field(default_factory=list)
    #: a categorical column with more levels than this is refused (a continuous column listed by mistake)
    max_categories: int = 50
    #: rows with missing values in a used column: error (with counts per column) | drop (reported)
    missing: MissingPolicy = MissingPolicy.error
    #: column of observation (sampling) weights: finite, >= 0, not all zero; null = every row weighs 1
    weights: str | None = None
    #: column of cluster ids (users within teams, repeated users): cluster-robust standard errors
    cluster: str | None = None


class TableSource:
    """Base class: subclasses implement :meth:`read` (and :meth:`where` for messages)."""

    config_class = TableDataConfig
    kind = "table"
    #: the config key of the row filter, for messages
    filter_key = "data.query"

    def __init__(self, cfg):
        self.cfg = cfg

    def where(self, base_dir: str | None) -> str:
        """Where the table comes from, for messages (``data.path=/abs/file.csv``)."""
        raise NotImplementedError

    def describe(self, where: str) -> str:
        """The run's ``data_description`` when the config gives none (``csv data.path=/abs/file.csv``)."""
        return f"{self.kind} {where}"

    def read(self, columns: list[str] | None, base_dir: str | None) -> tuple[pd.DataFrame, list[str]]:
        """Return (the requested columns that exist, every column the source has)."""
        raise NotImplementedError

    def row_filter(self) -> str | None:
        return self.cfg.get("query")

    def load(self, run_cfg, graph, base_dir=None) -> Dataset:
        from causal_cli.data.checks import require_columns

        cfg = self.cfg
        rename = {str(k): str(v) for k, v in (cfg.get("rename") or {}).items()}
        derive = {str(k): str(v) for k, v in (cfg.get("derive") or {}).items()}
        row_filter = self.row_filter()
        needed = needed_columns(graph, derive, row_filter)
        needed += [str(c) for c in (cfg.get("weights"), cfg.get("cluster")) if c and str(c) not in needed]
        source_name = {new: old for old, new in rename.items()}
        if cfg.get("columns") is not None:
            wanted = [str(c) for c in cfg.columns]
        else:
            wanted = list(dict.fromkeys(source_name.get(c, c) for c in needed if c not in derive))
        where = self.where(base_dir)
        frame, available = self.read(wanted, base_dir)
        rows_read = len(frame)
        unknown = [old for old in rename if old not in available]
        if unknown:
            raise ConfigError(f"data.rename: column '{unknown[0]}' is not in {where}")
        frame = frame.rename(columns=rename)
        present = [rename.get(c, c) for c in available] + list(derive)
        require_columns([c for c in needed if c not in derive], present, graph, where)
        if rows_read == 0:
            raise DataError(f"{where} has no rows (only a header)")
        notes = []
        for name, expression in derive.items():
            frame[name] = _derived(
                evaluate(expression, frame, f"data.derive.{name}"), frame, name, expression
            )
        if row_filter:
            keep = evaluate(row_filter, frame, self.filter_key)
            if not isinstance(keep, pd.Series) or not pd.api.types.is_bool_dtype(keep):
                raise ConfigError(
                    f"{self.filter_key}={row_filter!r} must be a condition (true/false per row)"
                )
            frame = frame.loc[keep.fillna(False).to_numpy(dtype=bool)].reset_index(drop=True)
            if frame.empty:
                raise DataError(f"{self.filter_key}={row_filter!r} kept 0 of {rows_read:,} rows of {where}")
            notes.append(f"{self.filter_key}={row_filter!r} kept {len(frame):,} of {rows_read:,} rows")
        return Dataset(
            frame=frame,
            description=cfg.get("description") or self.describe(where),
            notes=notes,
            info={"source": self.kind, "where": where, "rows_read": rows_read},
        )


@dataclass
class FileDataConfig(TableDataConfig):
    """A table in a local file."""

    #: required: the file (relative paths: relative to the folder you run causal from)
    path: str | None = None
    #: row filter over (renamed and derived) columns, e.g. "country == 'US' and age >= 18"
    query: str | None = None


class FileSource(TableSource):
    config_class = FileDataConfig

    def where(self, base_dir):
        return f"data.path={resolve_path(self.cfg.path, base_dir)}"


def needed_columns(graph, derive: dict[str, str], row_filter: str | None) -> list[str]:
    """The graph's observed columns, then every column an expression reads (in a stable order)."""
    names = list(graph.observed_nodes)
    for name, expression in derive.items():
        names += sorted(names_in(expression, f"data.derive.{name}"))
    if row_filter:
        names += sorted(names_in(row_filter, "data.query"))
    return list(dict.fromkeys(names))


def resolve_path(path: str, base_dir: str | None) -> Path:
    """Relative paths are relative to where the user ran ``causal`` (Hydra does not chdir)."""
    p = Path(os.path.expanduser(str(path)))
    if not p.is_absolute():
        p = Path(base_dir or os.getcwd()) / p
    return p


def existing_file(path, base_dir: str | None, key: str = "data.path") -> Path:
    if path is None or not str(path).strip():
        raise ConfigError(f"{key} is not set; give the file, e.g. {key}=my_data.csv")
    p = resolve_path(path, base_dir)
    if not p.exists():
        raise DataError(
            f"{key}={p} does not exist (relative paths are relative to the folder you ran causal from)"
        )
    if not p.is_file():
        raise DataError(f"{key}={p} is not a file")
    regular_file(p, key)
    if not os.access(p, os.R_OK):
        raise DataError(f"{key}={p} is not readable (permission denied)")
    return p


def regular_file(path: Path, key: str) -> Path:
    """A data file is a regular file after resolving symlinks: never a device, FIFO, socket or /proc entry."""
    import stat

    from causal_cli.trust import SPECIAL_ROOTS

    real = Path(os.path.realpath(path))
    if any(real == Path(root) or Path(root) in real.parents for root in SPECIAL_ROOTS):
        raise DataError(f"{key}={path} is a system file ({real}); allowed: a regular data file")
    try:
        mode = os.stat(real).st_mode
    except OSError as exc:
        raise DataError(f"{key}={path} cannot be read: {exc.strerror}") from exc
    if not stat.S_ISREG(mode):
        raise DataError(
            f"{key}={path} is not a regular file (a device, FIFO, socket or directory); allowed: a data file"
        )
    return real


def check_unique_columns(header, where: str) -> None:
    """A repeated column name would silently stand for its first column (pandas renames the rest x.1)."""
    seen = set()
    for name in (str(c) for c in header):
        if name in seen:
            raise DataError(f"column '{name}' appears more than once in the header of {where}; rename one")
        seen.add(name)


def _derived(value, frame: pd.DataFrame, name: str, expression: str):
    """A derived column: a per-row value; true/false becomes 1/0."""
    if not isinstance(value, pd.Series):
        if isinstance(value, (list, tuple, dict)):
            raise ConfigError(f"data.derive.{name}={expression!r} must give one value per row")
        value = pd.Series(value, index=frame.index)
    if pd.api.types.is_bool_dtype(value):
        value = value.astype("int64") if not value.hasnans else value.astype("float64")
    return value
