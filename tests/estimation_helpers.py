"""Shared by the estimator tests: real config -> DGP -> DoWhy identification -> EstimationData, cached."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from causal_cli import registry
from causal_cli.validate import validate


@dataclass
class Prepared:
    data: object  # EstimationData
    frame: pd.DataFrame
    reference: dict[str, float]
    treatment: str
    outcome: str
    adjustment_set: list[str]


_CACHE: dict[tuple[str, ...], Prepared] = {}


def prepare(compose_cfg, *overrides: str) -> Prepared:
    """The data ``causal run <overrides>`` would estimate on (identification is DoWhy's, done once)."""
    key = tuple(overrides)
    if key not in _CACHE:
        from causal_cli.data import load_dataset
        from causal_cli.graph import CausalGraph
        from causal_cli.identify import identify
        from causal_cli.pipeline import build_estimation_data

        cfg = validate(compose_cfg(list(overrides)))
        graph = CausalGraph.from_config(cfg.graph)
        dataset = load_dataset(cfg, graph)
        identification = identify(graph, "backdoor")
        _CACHE[key] = Prepared(
            data=build_estimation_data(dataset.frame, graph, identification),
            frame=dataset.frame,
            reference=dataset.reference,
            treatment=graph.treatment,
            outcome=graph.outcome,
            adjustment_set=list(identification.adjustment_set),
        )
    return _CACHE[key]


def build(compose_cfg, name: str, *overrides: str, seed: int = 0):
    """An estimator built from its config file, exactly as the pipeline builds it."""
    cfg = validate(compose_cfg([f"estimator={name}", *overrides]))
    return registry.load("estimator", name).from_config(
        cfg.estimator, random_state=np.random.SeedSequence([seed, 0xE57])
    )


def backdoor_estimators() -> list[str]:
    return sorted(
        n for n in registry.ESTIMATORS if registry.load("estimator", n).identification == "backdoor"
    )
