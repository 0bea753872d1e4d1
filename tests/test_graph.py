"""Graph declaration: roles expand to edges; bad graphs are refused with one line."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from causal_cli.errors import GraphError
from causal_cli.graph import CausalGraph
from causal_cli.schema import GraphConfig


def graph(**kw):
    return CausalGraph.from_config(OmegaConf.structured(GraphConfig(**kw)))


def test_roles_expand_to_edges():
    g = graph(treatment="t", outcome="y", confounders=["a"], instruments=["z"], edges=["b -> y"])
    assert set(g.edges) == {("a", "t"), ("a", "y"), ("z", "t"), ("b", "y"), ("t", "y")}
    assert (
        g.role_of("a") == "confounder"
        and g.role_of("z") == "instrument"
        and g.role_of("b") == "outcome cause"
    )


def test_mediator_replaces_the_direct_edge():
    g = graph(treatment="t", outcome="y", mediators=["m"])
    assert ("t", "y") not in g.edges and {("t", "m"), ("m", "y")} <= set(g.edges)


def test_cycle_is_refused():
    with pytest.raises(GraphError, match="cycle"):
        graph(treatment="t", outcome="y", edges=["y -> a", "a -> t"])


def test_missing_treatment_is_refused():
    with pytest.raises(GraphError, match="graph.treatment is not set"):
        CausalGraph.from_config(OmegaConf.structured(GraphConfig(outcome="y")))


def test_same_treatment_and_outcome_is_refused():
    with pytest.raises(GraphError, match="must differ"):
        graph(treatment="y", outcome="y")


@pytest.mark.parametrize("role", ["confounders", "instruments", "mediators", "effect_modifiers"])
@pytest.mark.parametrize("key", ["treatment", "outcome"])
def test_treatment_or_outcome_listed_in_a_role_is_refused_naming_both(role, key):
    node = {"treatment": "t", "outcome": "y"}[key]
    with pytest.raises(
        GraphError, match=rf"graph\.{role} lists '{node}', the graph's {key}; a variable has one role"
    ):
        graph(treatment="t", outcome="y", **{role: ["a", node]})


def test_malformed_edge_is_refused_naming_it():
    with pytest.raises(GraphError, match=r"graph.edges\[0\]"):
        graph(treatment="t", outcome="y", edges=["a => t"])


def test_unobserved_treatment_is_refused():
    with pytest.raises(GraphError, match="unobserved"):
        graph(treatment="t", outcome="y", unobserved=["t"])


def test_exports():
    g = graph(treatment="t", outcome="y", confounders=["a"], unobserved=["u"], edges=["u -> y"])
    assert '"a" -> "t"' in g.to_dot()
    assert "graph [" in g.to_gml()
    assert g.observed_nodes == ["t", "y", "a"]
