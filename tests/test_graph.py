"""Graph declaration: roles expand to edges; bad graphs are refused with one line."""

from __future__ import annotations

import re

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


# --- graph.file: DOT and GML files (causal_cli/graph_files.py) ---------------------------------------

PRODUCT_DOT = """\
/* the product graph, drawn elsewhere */
strict digraph "product growth" {
  rankdir=LR; node [shape=box]   // defaults carry no roles
  feature_used [role=treatment, label="Used the feature"];
  "spend" [role="outcome"]
  account_age -> feature_used -> spend;
  account_age -> spend
  activity -> feature_used; activity -> spend;
}
"""

PRODUCT_GML = """\
graph [
  directed 1
  node [ id 0 label "feature_used" role "treatment" ]
  node [ id 1 label "spend" role "outcome" ]
  node [ id 2 label "account_age" ]
  node [ id 3 label "activity" ]
  node [ id 4 label "taste" observed "no" ]
  edge [ source 0 target 1 ]
  edge [ source 2 target 0 ]
  edge [ source 2 target 1 ]
  edge [ source 3 target 0 ]
  edge [ source 3 target 1 ]
  edge [ source 4 target 1 ]
]
"""


def file_graph(tmp_path, name, text, **kw):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return graph(file=str(path), **kw)


def test_a_dot_file_is_the_same_graph_as_its_roles(tmp_path):
    from_file = file_graph(tmp_path, "product.dot", PRODUCT_DOT)
    from_roles = graph(treatment="feature_used", outcome="spend", confounders=["account_age", "activity"])
    assert (from_file.treatment, from_file.outcome) == ("feature_used", "spend")
    assert set(from_file.edges) == set(from_roles.edges)
    assert from_file.role_of("activity") == "confounder" and from_file.name == "product"


@pytest.mark.parametrize("suffix", [".gml", ".GML"])
def test_a_gml_file_with_an_unobserved_node(tmp_path, suffix):
    g = file_graph(tmp_path, f"product{suffix}", PRODUCT_GML)
    assert (g.treatment, g.outcome) == ("feature_used", "spend")
    assert g.unobserved == ["taste"] and ("taste", "spend") in g.edges
    assert set(g.observed_nodes) == {"feature_used", "spend", "account_age", "activity"}


def test_config_roles_name_the_treatment_when_the_file_does_not(tmp_path):
    text = 'digraph { "ad seen" -> bought; age -> "ad seen"; age -> bought; }'
    g = file_graph(tmp_path, "g.gv", text, treatment="ad seen", outcome="bought", edges=["z -> ad seen"])
    assert g.parents("ad seen") == ["age", "z"] and g.role_of("age") == "confounder"


def test_our_own_dot_export_reads_back(tmp_path):
    original = graph(treatment="t", outcome="y", confounders=["a"], edges=["b -> y"])
    again = file_graph(tmp_path, "export.dot", original.to_dot(), treatment="t", outcome="y")
    assert set(again.edges) == set(original.edges) and set(again.nodes) == set(original.nodes)


@pytest.mark.parametrize(
    "name, text, kw, message",
    [
        ("missing.dot", None, {}, r"graph.file=\S+missing.dot: no such file"),
        ("g.txt", "a -> b", {}, r"unknown graph format '.txt'; allowed: .dot, .gv \(DOT\), .gml \(GML\)"),
        ("cycle.dot", "digraph { t [role=treatment]; y [role=outcome]; t -> y -> a -> t; }", {}, "cycle"),
        (
            "bad.dot",
            "digraph {\n  t [role=treatment]\n  y [role=outcome]\n  t -> ;\n}",
            {},
            r"line 4: expected id, found ';'",
        ),
        ("open.dot", "digraph {\n a -> b\n", {}, r"line 2: the file ends"),
        ("undirected.dot", "graph { a -- b }", {}, "undirected graph; a causal graph is a digraph"),
        ("dashes.dot", "digraph {\n a -- b }", {}, r"line 2: '--' is an undirected edge"),
        ("sub.dot", "digraph { a -> { b c } }", {}, "subgraphs are not supported"),
        ("bad.gml", 'graph [\n directed 1\n node [ id 0 label "a" \n]', {}, r"not valid GML \(line \d+\)"),
        ("und.gml", 'graph [ node [ id 0 label "a" ] ]', {}, "the GML graph is undirected"),
        ("u.dot", "digraph { a -> b }", {}, r"graph.treatment is not set and graph.file=\S+ marks none"),
        (
            "n.dot",
            "digraph { a -> b }",
            {"treatment": "x", "outcome": "b"},
            r"graph.treatment=x is not a node",
        ),
        (
            "two.dot",
            "digraph { a [role=treatment]; c [role=treatment]; a -> b; c -> b }",
            {"outcome": "b"},
            r"marks 2 nodes \(a, c\) with role=treatment",
        ),
        (
            "clash.dot",
            "digraph { a [role=treatment]; b [role=outcome]; a -> b }",
            {"treatment": "b"},
            "graph.treatment=b but graph.file=",
        ),
        (
            "roles.dot",
            "digraph { a -> b }",
            {"confounders": ["c"]},
            r"graph.confounders=\['c'\] is set beside",
        ),
        ("nopath.dot", "digraph { t [role=treatment]; y [role=outcome]; y -> t }", {}, "no directed path"),
    ],
)
def test_bad_graph_files_are_one_line_errors(tmp_path, name, text, kw, message):
    with pytest.raises(GraphError) as info:
        if text is None:
            graph(file=str(tmp_path / name), **kw)
        else:
            file_graph(tmp_path, name, text, **kw)
    assert re.search(message, str(info.value)), str(info.value)
    assert "\n" not in str(info.value)


def test_nothing_in_a_graph_file_is_executed(tmp_path):
    marker = tmp_path / "pwned"
    text = f'digraph {{ t [role=treatment, label="$(touch {marker})"]; y [role=outcome]; t -> y }}'
    g = file_graph(tmp_path, "label.dot", text)
    gml = f'graph [ directed 1 node [ id 0 label "t" role "treatment" x "__import__(\'os\').system(\'touch {marker}\')" ] node [ id 1 label "y" role "outcome" ] edge [ source 0 target 1 ] ]'
    h = file_graph(tmp_path, "label.gml", gml)
    assert g.edges == h.edges == [("t", "y")] and not marker.exists()


def test_graph_file_template_asks_for_the_file(compose_cfg):
    from causal_cli.validate import validate

    cfg = validate(compose_cfg(["graph=file"]))
    with pytest.raises(GraphError, match="graph.file is not set"):
        CausalGraph.from_config(cfg.graph)


def test_a_graph_file_that_resolves_to_a_system_file_is_refused_unread(tmp_path, monkeypatch):
    """A .dot name is not enough: a symlink to /proc/self/environ would put the environment in the error."""
    from causal_cli.errors import ConfigError
    from causal_cli.graph_files import read

    monkeypatch.setenv("CAUSAL_TEST_SECRET", "hunter2")
    link = tmp_path / "evil.dot"
    link.symlink_to("/proc/self/environ")
    with pytest.raises(ConfigError, match=r"graph.file=.*evil.dot is a system file") as caught:
        read(str(link))
    assert "hunter2" not in str(caught.value)
