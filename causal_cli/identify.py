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
#: the disk cache's folder for DoWhy's identification results (causal_cli.disk_cache)
CACHE_NAMESPACE = "identification"
#: the estimand DoWhy identifies (its default, the non-parametric ATE); part of the cache key
ESTIMAND_TYPE = "nonparametric-ate"


def estimand_facts(graph, method: str, requested: str) -> dict:
    """What DoWhy's identified estimand says, as plain data: the variable sets, which kinds are
    identified and their formulas.

    Kept for this process, and on disk for later runs (keyed by the graph, the method and the DoWhy and
    causal-cli versions), so a repeat run with the same graph never imports DoWhy (~2 s of CPU).
    """
    key = (graph.treatment, graph.outcome, tuple(graph.edges), tuple(graph.unobserved), method)
    if key not in _ESTIMANDS:
        _ESTIMANDS[key] = _cached_estimand(graph, method, requested)
    return _ESTIMANDS[key]


def cache_key(graph, method: str) -> dict:
    """Everything DoWhy's answer depends on: the graph, which nodes are observed, the method, the versions."""
    from importlib.metadata import PackageNotFoundError, version

    import causal_cli

    try:
        dowhy_version = version("dowhy")
    except PackageNotFoundError:
        dowhy_version = None
    return {
        "treatment": graph.treatment,
        "outcome": graph.outcome,
        "nodes": list(graph.nodes),
        "edges": [list(edge) for edge in graph.edges],
        "unobserved": list(graph.unobserved),
        "observed": list(graph.observed_nodes),
        "method": method,
        "estimand_type": ESTIMAND_TYPE,
        "dowhy": dowhy_version,
        "causal_cli": causal_cli.__version__,
    }


def _cached_estimand(graph, method: str, requested: str) -> dict:
    from causal_cli import disk_cache

    key = cache_key(graph, method)
    facts = disk_cache.load(CACHE_NAMESPACE, key)
    if _well_formed(facts):
        return facts
    facts = _dowhy_estimand(graph, method, requested)
    if key["dowhy"] is not None:
        disk_cache.store(CACHE_NAMESPACE, key, facts)
    return facts


def _well_formed(facts) -> bool:
    """Whether a cache entry has the shape :func:`_dowhy_estimand` returns (else it is rebuilt)."""

    def names(value) -> bool:
        return isinstance(value, list) and all(isinstance(v, str) for v in value)

    def mapping(value, kind) -> bool:
        return isinstance(value, dict) and all(isinstance(v, kind) for v in value.values())

    return (
        isinstance(facts, dict)
        and all(names(facts.get(k)) for k in ("backdoor", "instruments", "frontdoor"))
        and mapping(facts.get("available"), bool)
        and mapping(facts.get("estimands"), str)
    )


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
