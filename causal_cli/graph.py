"""The causal graph declared in config: roles expand to edges, then DAG checks and export."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from causal_cli.errors import GraphError

_EDGE = re.compile(r"^\s*([^\s<>-][^<>]*?)\s*->\s*([^\s<>-][^<>]*?)\s*$")


#: the role lists of a graph config, each expanded to edges around the treatment and outcome
ROLES = ("confounders", "instruments", "mediators", "effect_modifiers")


@dataclass
class CausalGraph:
    treatment: str
    outcome: str
    edges: list[tuple[str, str]]
    unobserved: list[str] = field(default_factory=list)
    name: str = "custom"
    outcome_units: str = ""
    #: ``graph.effect_modifiers``: variables the effect may vary with (regression adds t x modifier terms)
    effect_modifiers: list[str] = field(default_factory=list)

    @classmethod
    def from_config(cls, cfg, base_dir: str | None = None) -> CausalGraph:
        """The graph a ``graph`` config node declares: roles and edges, or a DOT/GML file (``graph.file``,
        a relative path is relative to ``base_dir``, where the user ran ``causal``; default: the cwd)."""
        from omegaconf import OmegaConf

        if "file" in cfg and OmegaConf.is_missing(cfg, "file"):
            raise GraphError("graph.file is not set; name a DOT or GML file, e.g. graph.file=my_graph.dot")
        if cfg.get("file") is not None:
            return cls.from_file(cfg, base_dir)
        treatment, outcome = _required(cfg, "treatment"), _required(cfg, "outcome")
        _check_roles(cfg, treatment, outcome)
        edges = _role_edges(cfg, treatment, outcome) + _extra_edges(cfg)
        if not cfg.mediators and (treatment, outcome) not in edges:
            edges.append((treatment, outcome))
        graph = cls(
            treatment=treatment,
            outcome=outcome,
            edges=list(dict.fromkeys(edges)),
            unobserved=list(cfg.unobserved),
            name=cfg.name,
            outcome_units=cfg.outcome_units,
            effect_modifiers=[str(m) for m in cfg.effect_modifiers],
        )
        graph.check()
        return graph

    @classmethod
    def from_file(cls, cfg, base_dir: str | None = None) -> CausalGraph:
        """``graph.file``: the file's nodes and edges are the graph; treatment and outcome come from
        ``graph.treatment`` / ``graph.outcome`` or the file's ``role`` node attributes; ``graph.edges``,
        ``graph.unobserved`` and ``graph.effect_modifiers`` add to it. Role lists (confounders, ...) are
        refused: the file declares those edges."""
        from causal_cli import graph_files

        path = cfg.file
        if not isinstance(path, str) or not path.strip():
            raise GraphError("graph.file is not set; name a DOT or GML file, e.g. graph.file=my_graph.dot")
        for role in ("confounders", "instruments", "mediators"):
            if cfg.get(role):
                raise GraphError(
                    f"graph.{role}={list(cfg[role])} is set beside graph.file={path}; the file declares the "
                    f"edges: choose graph=file (no roles of its own) or add edges with graph.edges"
                )
        read = graph_files.read(graph_file_path(path, base_dir))
        treatment, outcome = (_file_role(cfg, read, key) for key in ("treatment", "outcome"))
        _check_roles(cfg, treatment, outcome)
        edges = read.edges + [(e, outcome) for e in cfg.effect_modifiers] + _extra_edges(cfg)
        name = cfg.name if cfg.get("name") not in (None, "", "custom", "file") else Path(path).stem
        graph = cls(
            treatment=treatment,
            outcome=outcome,
            edges=list(dict.fromkeys(edges)),
            unobserved=list(dict.fromkeys([*read.marked("unobserved"), *cfg.unobserved])),
            name=name,
            outcome_units=cfg.outcome_units,
            effect_modifiers=[str(m) for m in cfg.effect_modifiers],
        )
        graph.check()
        return graph

    @property
    def nodes(self) -> list[str]:
        seen = dict.fromkeys([self.treatment, self.outcome])
        for a, b in self.edges:
            seen.setdefault(a)
            seen.setdefault(b)
        return list(seen)

    @property
    def observed_nodes(self) -> list[str]:
        return [n for n in self.nodes if n not in self.unobserved]

    def to_networkx(self):
        import networkx as nx

        g = nx.DiGraph()
        g.add_nodes_from(self.nodes)
        g.add_edges_from(self.edges)
        for node in self.unobserved:
            g.nodes[node]["observed"] = "no"
        return g

    def check(self) -> None:
        for role in ("treatment", "outcome"):
            node = getattr(self, role)
            if node in self.unobserved:
                raise GraphError(f"graph.{role} '{node}' is listed in graph.unobserved; it must be observed")
        for a, b in self.edges:
            if a == b:
                raise GraphError(f"graph edge '{a} -> {b}' is a self-loop; a causal graph must be acyclic")
        if _acyclic_with_path(self.nodes, self.edges, self.treatment, self.outcome):
            return  # the usual case, decided without importing networkx (~0.1 s of a run's start-up)
        import networkx as nx

        g = self.to_networkx()
        try:
            cycle = nx.find_cycle(g)
        except nx.NetworkXNoCycle:
            cycle = None
        if cycle:
            path = " -> ".join([e[0] for e in cycle] + [cycle[0][0]])
            raise GraphError(f"graph has a cycle ({path}); a causal graph must be acyclic")
        if not nx.has_path(g, self.treatment, self.outcome):
            raise GraphError(
                f"graph has no directed path from treatment '{self.treatment}' to outcome '{self.outcome}'"
            )

    def parents(self, node: str) -> list[str]:
        return [a for a, b in self.edges if b == node]

    def role_of(self, node: str) -> str:
        if node == self.treatment:
            return "treatment"
        if node == self.outcome:
            return "outcome"
        if node in self.unobserved:
            return "unobserved"
        into_t = (node, self.treatment) in self.edges
        into_y = (node, self.outcome) in self.edges
        if into_t and into_y:
            return "confounder"
        if (self.treatment, node) in self.edges and (node, self.outcome) in self.edges:
            return "mediator"
        if into_t:
            return "instrument"
        if into_y:
            return "outcome cause"
        return "other"

    def to_dot(self) -> str:
        lines = ["digraph causal {"]
        for node in self.nodes:
            style = ' [style="dashed"]' if node in self.unobserved else ""
            lines.append(f'  "{node}"{style};')
        lines += [f'  "{a}" -> "{b}";' for a, b in self.edges]
        lines.append("}")
        return "\n".join(lines)

    def to_gml(self) -> str:
        import networkx as nx

        return "\n".join(nx.generate_gml(self.to_networkx()))


def _acyclic_with_path(nodes: list[str], edges: list[tuple[str, str]], source: str, target: str) -> bool:
    """Whether the graph has no directed cycle and a directed path ``source`` -> ``target`` (Kahn's order)."""
    children: dict[str, list[str]] = {n: [] for n in nodes}
    parents = dict.fromkeys(nodes, 0)
    for a, b in edges:
        children[a].append(b)
        parents[b] += 1
    ready = [n for n in nodes if parents[n] == 0]
    reaches = {source}
    ordered = 0
    while ready:
        node = ready.pop()
        ordered += 1
        for child in children[node]:
            if node in reaches:
                reaches.add(child)
            parents[child] -= 1
            if parents[child] == 0:
                ready.append(child)
    return ordered == len(nodes) and target in reaches


def _check_roles(cfg, treatment: str, outcome: str) -> None:
    if treatment == outcome:
        raise GraphError(f"graph.treatment and graph.outcome are both '{treatment}'; they must differ")
    for role in ROLES:
        for key, node in (("treatment", treatment), ("outcome", outcome)):
            if node in cfg[role]:
                raise GraphError(
                    f"graph.{role} lists '{node}', the graph's {key}; a variable has one role "
                    f"(remove it from graph.{role} or choose another graph.{key})"
                )


def _role_edges(cfg, treatment: str, outcome: str) -> list[tuple[str, str]]:
    """The edges each role list stands for."""
    edges: list[tuple[str, str]] = []
    for c in cfg.confounders:
        edges += [(c, treatment), (c, outcome)]
    edges += [(z, treatment) for z in cfg.instruments]
    for m in cfg.mediators:
        edges += [(treatment, m), (m, outcome)]
    return edges + [(e, outcome) for e in cfg.effect_modifiers]


def _extra_edges(cfg) -> list[tuple[str, str]]:
    """``graph.edges``: each written ``cause -> effect``."""
    edges = []
    for i, text in enumerate(cfg.edges):
        match = _EDGE.match(str(text))
        if not match:
            raise GraphError(f"graph.edges[{i}] = '{text}' is not an edge; write it as 'cause -> effect'")
        edges.append((match.group(1), match.group(2)))
    return edges


def _file_role(cfg, read, key: str) -> str:
    """``graph.<key>`` if set, else the one node the file marks ``role=<key>``; it must be a node of the file."""
    from omegaconf import OmegaConf

    named = None if OmegaConf.is_missing(cfg, key) or not str(cfg.get(key) or "").strip() else str(cfg[key])
    marked = read.marked(key)
    if named is None and len(marked) != 1:
        found = f"marks {len(marked)} nodes ({', '.join(marked)})" if marked else "marks none"
        raise GraphError(
            f"graph.{key} is not set and graph.file={read.path} {found} with role={key}; "
            f"name it with graph.{key}=NODE or mark one node [role={key}]"
        )
    if named is not None and marked and marked != [named]:
        raise GraphError(
            f"graph.{key}={named} but graph.file={read.path} marks {', '.join(marked)} with role={key}; "
            "make them agree"
        )
    node = named if named is not None else marked[0]
    if node not in read.nodes:
        nodes = ", ".join(list(read.nodes)[:20])
        raise GraphError(f"graph.{key}={node} is not a node of graph.file={read.path}; its nodes: {nodes}")
    return node


def _required(cfg, key: str) -> str:
    from omegaconf import OmegaConf

    if OmegaConf.is_missing(cfg, key) or not str(cfg[key]).strip():
        raise GraphError(f"graph.{key} is not set; name the {key} column, e.g. graph.{key}=my_column")
    return str(cfg[key])


def graph_file_path(path: str, base_dir: str | None = None) -> str:
    """``graph.file`` as read: ``~`` expanded, relative to ``base_dir`` (where the user ran ``causal``;
    Hydra does not chdir, and ``causal reproduce`` re-runs from the original folder)."""
    p = Path(os.path.expanduser(str(path)))
    return str(p if p.is_absolute() or base_dir is None else Path(base_dir) / p)
