"""Identification with DoWhy: which variables an estimator must adjust for (or use as instrument/mediator)."""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field

from causal_cli.errors import IdentificationError

#: above this many candidate variables DoWhy's default backdoor search becomes exponential
#: (12: 0.16 s, 14: 2.4 s, 25: ~13 s), so ``auto`` switches to the maximal adjustment set (~10 ms).
EXHAUSTIVE_SEARCH_LIMIT = 12


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
    observed = graph.observed_nodes
    if kind == "none":
        return Identification(kind="none", estimand="difference in means (no adjustment)")
    candidates = len(observed) - 2
    method = backdoor_method
    if method == "auto":
        method = "default" if candidates <= EXHAUSTIVE_SEARCH_LIMIT else "maximal-adjustment"
    facts = estimand_facts(graph, method, backdoor_method)
    result = Identification(
        kind=kind,
        adjustment_set=in_graph_order(graph, facts["backdoor"]),
        instruments=in_graph_order(graph, facts["instruments"]),
        mediators=in_graph_order(graph, facts["frontdoor"]),
        backdoor_method=method,
        available=dict(facts["available"]),
    )
    if not result.available.get(kind, False):
        raise IdentificationError(_why_not(graph, kind))
    if kind in ("iv", "frontdoor"):
        result.adjustment_set = exogenous_controls(graph, kind, result.instruments, result.mediators)
    result.estimand = facts["estimands"].get(kind, "")
    return result


#: DoWhy's identification per (graph, method): the main estimator and every ``compare`` entry
#: share one search, which for a dozen confounders is the slowest step of a run
_ESTIMANDS: dict[tuple, dict] = {}


def estimand_facts(graph, method: str, requested: str) -> dict:
    """What DoWhy's identified estimand says, as plain data: the variable sets, which kinds are
    identified and their formulas. Computed by the prefetch helper when ``causal run`` started one
    (it imported DoWhy meanwhile), else here."""
    from causal_cli import prefetch

    key = (graph.treatment, graph.outcome, tuple(graph.edges), tuple(graph.unobserved), method)
    if key not in _ESTIMANDS:
        try:
            _ESTIMANDS[key] = prefetch.call("estimand_facts", graph, method, requested)
        except prefetch.Unavailable:
            _ESTIMANDS[key] = _dowhy_estimand(graph, method, requested)
    return _ESTIMANDS[key]


def _dowhy_estimand(graph, method: str, requested: str) -> dict:
    import numpy as np
    import pandas as pd

    observed = graph.observed_nodes
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
                f"identification.backdoor_method='{requested}' failed: {exc}; allowed: auto, default, "
                "maximal-adjustment, minimal-adjustment, exhaustive-search, efficient-adjustment"
            ) from exc
    return {
        "backdoor": list(estimand.get_backdoor_variables() or []),
        "instruments": list(estimand.get_instrumental_variables() or []),
        "frontdoor": list(estimand.get_frontdoor_variables() or []),
        "available": {k: v is not None for k, v in estimand.estimands.items()},
        "estimands": {k: str(v.get("estimand", "")) for k, v in estimand.estimands.items() if v is not None},
    }


def exogenous_controls(graph, kind: str, instruments: list[str], mediators: list[str]) -> list[str]:
    """Observed pre-treatment causes of treatment or outcome that an iv/frontdoor estimator may condition on.

    They only add precision, so they are kept only if the estimand stays valid given them (d-separation
    in the full graph, unobserved nodes included); otherwise none are used.
    """
    import networkx as nx

    g = graph.to_networkx()
    t, y = graph.treatment, graph.outcome
    downstream = set(nx.descendants(g, t)).union(*(nx.descendants(g, z) for z in instruments))
    roles = {t, y, *instruments, *mediators, *graph.unobserved} | downstream
    causes = set(graph.parents(t)) | set(graph.parents(y))
    controls = [n for n in graph.observed_nodes if n in causes and n not in roles]

    def separated(source, target, given, cut):
        pruned = g.copy()
        pruned.remove_edges_from([(a, b) for a, b in g.edges if a in cut])
        return nx.is_d_separator(pruned, set(source), set(target), set(given))

    if kind == "iv":
        valid = separated(instruments, [y], controls, [t])
    else:
        valid = separated([t], mediators, controls, [t]) and separated(
            mediators, [y], [*controls, t], mediators
        )
    return controls if valid else []


def in_graph_order(graph, names) -> list[str]:
    """DoWhy returns variable sets in hash order, which changes between processes; the column order
    decides the last bits of every fitted number, so fix it to the graph's node order."""
    order = {node: i for i, node in enumerate(graph.nodes)}
    return sorted(dict.fromkeys(names or []), key=lambda n: (order.get(n, len(order)), n))


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
