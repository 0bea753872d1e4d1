"""Data sources: each returns a :class:`Dataset` whose columns the graph names."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

#: ``frame.attrs`` key set by validation: categorical column -> its one-hot columns
DUMMIES = "causal_cli.one_hot"
#: ``frame.attrs`` keys set by validation: the ``data.weights`` and ``data.cluster`` column names
WEIGHTS = "causal_cli.weights"
CLUSTER = "causal_cli.cluster"


@dataclass
class Dataset:
    frame: pd.DataFrame
    reference: dict[str, float] | None = None
    reference_kind: str | None = None
    description: str = ""
    notes: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)


def ground_truth(individual_effects: np.ndarray, treatment: np.ndarray) -> dict[str, float]:
    """Sample ATE/ATT/ATC from the simulated potential outcomes (y1 - y0 per unit)."""
    t = np.asarray(treatment) == 1
    treated, control = np.flatnonzero(t), np.flatnonzero(~t)  # by position: faster than a mask, same values
    return {
        "ate": float(np.mean(individual_effects)),
        "att": float(np.mean(individual_effects.take(treated))) if treated.size else float("nan"),
        "atc": float(np.mean(individual_effects.take(control))) if control.size else float("nan"),
    }


def load_dataset(cfg, graph, base_dir: str | None = None) -> Dataset:
    """Build the configured source, load its data and validate it against the graph.

    ``cfg`` is the whole run config; relative paths resolve against ``base_dir`` (the folder
    the user ran ``causal`` from).
    """
    from causal_cli import registry
    from causal_cli.data.checks import validate

    source_cls = registry.load("data", cfg.data.source)
    dataset = source_cls(cfg.data).load(cfg, graph, base_dir=base_dir)
    return validate(dataset, graph, cfg.data)


def expand_columns(frame: pd.DataFrame, names) -> list[str]:
    """Graph names -> frame columns: a one-hot encoded categorical stands for its dummy columns."""
    dummies = frame.attrs.get(DUMMIES) or {}
    return [column for name in names for column in dummies.get(name, [name])]
