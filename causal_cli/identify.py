"""Identification with DoWhy: which variables an estimator must adjust for (or use as instrument/mediator)."""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field

from causal_cli.errors import IdentificationError

#: above this many candidate variables DoWhy's default backdoor search becomes exponential
#: (25 confounders: ~13 s), so ``auto`` switches to the maximal adjustment set (~10 ms).
EXHAUSTIVE_SEARCH_LIMIT = 14


@dataclass
class Identification:
    kind: str
    adjustment_set: list[str] = field(default_factory=list)
    instruments: list[str] = field(default_factory=list)
    mediators: list[str] = field(default_factory=list)
    backdoor_method: str = ""
    estimand: str = ""
    available: dict[str, bool] = field(default_factory=dict)


def identify(graph, kind: str, backdoor_method: str = "auto") -> Identification:
    """Identify the effect for an estimator that needs ``kind`` (backdoor, iv, frontdoor or none)."""
    import numpy as np
    import pandas as pd

    observed = graph.observed_nodes
    if kind == "none":
        return Identification(kind="none", estimand="difference in means (no adjustment)")
    candidates = len(observed) - 2
    method = backdoor_method
    if method == "auto":
        method = "default" if candidates <= EXHAUSTIVE_SEARCH_LIMIT else "maximal-adjustment"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.getLogger("dowhy").setLevel(logging.ERROR)
        from dowhy import CausalModel

        # identification only reads the graph; a two-row frame tells DoWhy which nodes are observed
        stub = pd.DataFrame(np.zeros((2, len(observed))), columns=observed)
        stub[graph.treatment] = [0, 1]
        model = CausalModel(data=stub, treatment=graph.treatment, outcome=graph.outcome, graph=graph.to_gml())
        try:
            estimand = model.identify_effect(proceed_when_unidentifiable=True, method_name=method)
        except ValueError as exc:
            raise IdentificationError(
                f"identification.backdoor_method='{backdoor_method}' failed: {exc}; allowed: auto, default, "
                "maximal-adjustment, minimal-adjustment, exhaustive-search, efficient-adjustment"
            ) from exc
    result = Identification(
        kind=kind,
        adjustment_set=list(estimand.get_backdoor_variables() or []),
        instruments=list(estimand.get_instrumental_variables() or []),
        mediators=list(estimand.get_frontdoor_variables() or []),
        backdoor_method=method,
        available={k: v is not None for k, v in estimand.estimands.items()},
    )
    if not result.available.get(kind, False):
        raise IdentificationError(_why_not(graph, kind))
    result.estimand = str(estimand.estimands[kind].get("estimand", "")) if kind in estimand.estimands else ""
    return result


def _why_not(graph, kind: str) -> str:
    t, y = graph.treatment, graph.outcome
    if kind == "backdoor":
        hidden = [u for u in graph.unobserved if (u, t) in graph.edges or (u, y) in graph.edges]
        via = f" through unobserved {', '.join(hidden)}" if hidden else ""
        return (
            f"the effect of '{t}' on '{y}' is not identified by backdoor adjustment: a backdoor path stays open{via}; "
            "try estimator=iv (needs an instrument) or estimator=frontdoor (needs a mediator) if the graph has one"
        )
    if kind == "iv":
        return f"estimator needs an instrument, but the graph has no valid instrument for '{t}' -> '{y}' (declare graph.instruments)"
    if kind == "frontdoor":
        return f"estimator needs a front-door mediator, but the graph has none for '{t}' -> '{y}' (declare graph.mediators)"
    return f"the graph does not identify the effect by '{kind}'"
