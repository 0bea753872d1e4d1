"""The reference an estimate is compared with: which value, for which estimand, from where.

Sources, first match wins:

- ``reference: 1794`` - one number, for whatever estimand the estimator targets (the estimand is not stated,
  so a sweep that mixes ATE and ATT estimators is warned about in its scorecard);
- ``reference: {ate: 2.0, att: 2.5}`` - one number per estimand; a run is compared with the value of its own
  estimand (``estimator.target_units``) and with none when its estimand is not listed;
- ``reference_from: references.json`` - a JSON file keyed by data file: ``{"rep_01.csv": {"ate": 2.0, "att":
  2.5}, ...}`` (a bare number per file is an ATE). The file name is looked up as the run's ``data.path`` is
  written, then by its path relative to the JSON file's folder, then by its base name. A relative
  ``reference_from`` is looked for in the folder ``causal`` runs from, then beside the data file. This gives
  each job of a sweep over replication files (``data.path=a.csv,b.csv`` or ``data.path='glob(reps/*.csv)'``)
  its own truth;
- ``reference_from: column:ite`` - a column of individual effects (y1 - y0) in the data: the reference is its
  mean over the estimand's units (all, treated, controls);
- the data source's own truth (a simulated DGP's potential outcomes).

``reference_kind`` says what the number is (``ground_truth``, ``published``, ``experimental_benchmark``, ...);
``auto`` means ``ground_truth`` for a simulation's or a file's own truth and ``published`` for a number typed
in the config.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

from causal_cli.errors import ConfigError, DataError
from causal_cli.schema import check_references as check_config  # noqa: F401
from causal_cli.schema import finite_number as _finite
from causal_cli.schema import per_estimand

COLUMN_PREFIX = "column:"
#: a references.json larger than this is refused (it holds a few numbers per file)
MAX_REFERENCE_FILE_BYTES = 16 * 1024 * 1024


@dataclass
class Reference:
    value: float | None
    kind: str | None = None
    #: the estimand the value is for (ate/att/atc), or None when the config gave one number without saying
    estimand: str | None = None
    #: where it came from: config, config:<estimand>, <file.json>[<key>], column:<name>, data
    source: str | None = None
    #: every estimand's value known for this run (results.json ``references``)
    values: dict[str, float] | None = None


def _kind(cfg, default: str | None) -> str | None:
    kind = cfg.get("reference_kind")
    return str(kind) if kind not in (None, "auto") else default


def resolve(cfg, dataset, target: str, base_dir: str | None = None, frame=None, treatment=None) -> Reference:
    """The reference of a run whose estimand is ``target`` (see the module docstring)."""
    from omegaconf import DictConfig

    target = str(target).lower()
    value = cfg.get("reference")
    if isinstance(value, (DictConfig, dict)):
        values = per_estimand(value, "reference")
        return _pick(values, target, _kind(cfg, dataset.reference_kind or "published"), "config")
    if value is not None:
        kind = _kind(cfg, dataset.reference_kind or "published")
        return Reference(_finite(value, "reference"), kind, None, "config")
    source = cfg.get("reference_from")
    if source:
        source = str(source).strip()
        if source.startswith(COLUMN_PREFIX):
            values = _from_column(source[len(COLUMN_PREFIX) :].strip(), dataset, frame, treatment)
        else:
            values, source = _from_json(source, cfg, base_dir)
        return _pick(values, target, _kind(cfg, "ground_truth"), source)
    if dataset.reference:
        values = {k: float(v) for k, v in dataset.reference.items() if v is not None and math.isfinite(v)}
        return _pick(values, target, _kind(cfg, dataset.reference_kind), "data")
    return Reference(None)


def _pick(values: dict[str, float], target: str, kind: str | None, source: str) -> Reference:
    value = values.get(target)
    if value is None:
        return Reference(None, None, None, None, values or None)
    return Reference(value, kind, target, source if source != "config" else f"config:{target}", values)


def _data_path(cfg) -> str | None:
    data = cfg.get("data")
    path = data.get("path") if data is not None else None
    return str(path) if path else None


def _from_json(source: str, cfg, base_dir: str | None) -> tuple[dict[str, float], str]:
    from causal_cli.data.tables import resolve_path

    data_path = _data_path(cfg)
    if data_path is None:
        raise ConfigError(
            f"reference_from={source} is keyed by data file, but data.path is not set; use it with data=csv "
            "or data=parquet (or give reference: {ate: ..., att: ...})"
        )
    data_file = resolve_path(data_path, base_dir)
    candidates = [resolve_path(source, base_dir)]
    if not Path(source).is_absolute():
        candidates.append(data_file.parent / source)
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        raise DataError(
            f"reference_from={source} does not exist (looked in {', '.join(str(p.parent) for p in candidates)})"
        )
    if path.stat().st_size > MAX_REFERENCE_FILE_BYTES:
        raise DataError(f"reference_from={path} is larger than {MAX_REFERENCE_FILE_BYTES} bytes")
    try:
        table = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(
            f"reference_from={path} is not readable JSON: {' '.join(str(exc).split())[:200]}"
        ) from exc
    if not isinstance(table, dict):
        raise DataError(f"reference_from={path} must hold an object keyed by data file")
    keys = [data_path]
    with contextlib.suppress(ValueError):  # another drive (Windows)
        keys.append(os.path.relpath(data_file, path.parent))
    keys.append(data_file.name)
    key = next((k for k in keys if k in table), None)
    if key is None:
        raise DataError(
            f"reference_from={path} has no entry for data.path={data_path} (looked up as "
            f"{', '.join(dict.fromkeys(keys))}; it lists {len(table)} files)"
        )
    entry = table[key]
    label = f"{path.name}[{key}]"
    if isinstance(entry, dict):
        return per_estimand(entry, f"reference_from[{key}]"), label
    return {"ate": _finite(entry, f"reference_from[{key}]")}, label


def _from_column(column: str, dataset, frame, treatment) -> dict[str, float]:
    import numpy as np

    frame = dataset.frame if frame is None else frame
    if column not in frame.columns:
        raise DataError(
            f"reference_from=column:{column}: no column '{column}' in the data; list it in data.columns "
            "so the source reads it"
        )
    effects = np.asarray(frame[column], dtype=float)
    values = {"ate": float(np.nanmean(effects))}
    if treatment is not None and treatment in frame.columns:
        t = np.asarray(frame[treatment]) == 1
        if t.any():
            values["att"] = float(np.nanmean(effects[t]))
        if (~t).any():
            values["atc"] = float(np.nanmean(effects[~t]))
    return {k: v for k, v in values.items() if math.isfinite(v)}
