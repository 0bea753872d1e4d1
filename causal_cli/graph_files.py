"""A causal graph read from a DOT (``.dot``/``.gv``) or GML (``.gml``) file: ``graph.file=PATH``.

Reading never executes anything from the file: DOT is read by the small parser below (the
``digraph { a -> b; }`` subset: node and edge statements, edge chains, attribute lists, comments;
no subgraphs), GML by networkx's parser without a destringizer. Roles may be given as node
attributes: ``role=treatment|outcome|unobserved`` (also ``observed=no``, DoWhy's GML convention).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from causal_cli.errors import GraphError

#: the largest graph file read, and the most edges it may declare (the config bound on lists)
MAX_FILE_BYTES = 1_000_000
MAX_EDGES = 1_000
SUFFIXES = {".dot": "dot", ".gv": "dot", ".gml": "gml"}
ROLES = ("treatment", "outcome", "unobserved")


@dataclass
class FileGraph:
    """Nodes (in order of appearance) with their attributes, and directed edges."""

    path: str
    nodes: dict[str, dict[str, str]] = field(default_factory=dict)
    edges: list[tuple[str, str]] = field(default_factory=list)

    def add_node(self, name: str, attrs: dict[str, str] | None = None) -> None:
        self.nodes.setdefault(name, {}).update(attrs or {})

    def marked(self, role: str) -> list[str]:
        """Nodes the file marks with ``role`` (``observed=no`` counts as unobserved)."""
        found = [n for n, a in self.nodes.items() if a.get("role", "").lower() == role]
        if role == "unobserved":
            found += [
                n for n, a in self.nodes.items() if a.get("observed", "").lower() in ("no", "false", "0")
            ]
        return list(dict.fromkeys(found))


def read(path: str) -> FileGraph:
    """The graph in ``path``; GraphError naming the file (and the line) when it cannot be read."""
    file = Path(path).expanduser()
    kind = SUFFIXES.get(file.suffix.lower())
    if kind is None:
        raise GraphError(
            f"graph.file={path}: unknown graph format '{file.suffix}'; allowed: .dot, .gv (DOT), .gml (GML)"
        )
    from causal_cli.trust import check_data_path

    check_data_path(str(file), key="graph.file")  # not /proc/self/environ behind a .dot symlink, nor a FIFO
    if not file.is_file():
        raise GraphError(f"graph.file={path}: no such file")
    if file.stat().st_size > MAX_FILE_BYTES:
        raise GraphError(f"graph.file={path} is larger than {MAX_FILE_BYTES:,} bytes")
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise GraphError(f"graph.file={path}: cannot read it ({type(exc).__name__}: {exc})") from exc
    graph = parse_dot(text, path) if kind == "dot" else parse_gml(text, path)
    if len(graph.edges) > MAX_EDGES:
        raise GraphError(
            f"graph.file={path} declares {len(graph.edges):,} edges; allowed: at most {MAX_EDGES:,}"
        )
    return graph


def parse_gml(text: str, path: str = "<gml>") -> FileGraph:
    """GML through networkx (node names from ``label``); a directed graph only."""
    import networkx as nx

    try:
        g = nx.parse_gml(text.splitlines(), label="label")
    except (nx.NetworkXError, ValueError, KeyError) as exc:
        detail = " ".join(str(exc).split())
        where = re.search(r"at \((\d+), (\d+)\)", detail)
        line = f" (line {where.group(1)})" if where else ""
        raise GraphError(f"graph.file={path}: not valid GML{line}: {detail}") from exc
    if not g.is_directed():
        raise GraphError(f"graph.file={path}: the GML graph is undirected; a causal graph needs 'directed 1'")
    graph = FileGraph(path=path)
    for node, attrs in g.nodes(data=True):
        graph.add_node(str(node), {str(k): str(v) for k, v in attrs.items()})
    graph.edges = list(dict.fromkeys((str(a), str(b)) for a, b in g.edges()))
    return graph


_TOKEN = re.compile(
    r"""
    (?P<space>[ \t\r]+)
  | (?P<newline>\n)
  | (?P<comment>//[^\n]*|/\*.*?\*/)
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<arrow>->)
  | (?P<undirected>--)
  | (?P<id>[A-Za-z_\x80-\uffff][A-Za-z0-9_\x80-\uffff]*|-?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?))
  | (?P<punct>[{}\[\];,=:])
    """,
    re.VERBOSE | re.DOTALL,
)
_KEYWORDS = ("strict", "graph", "digraph", "node", "edge", "subgraph")


def _tokens(text: str, path: str) -> list[tuple[str, str, int]]:
    """(kind, text, line) tokens; ``#`` lines (C preprocessor output) are skipped, as Graphviz does."""
    out, line, pos = [], 1, 0
    text = re.sub(r"(?m)^#[^\n]*", "", text)
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise GraphError(
                f"graph.file={path}: line {line}: unexpected {text[pos]!r} (not DOT this reader reads)"
            )
        kind, value = match.lastgroup, match.group()
        if kind == "string":
            out.append(("quoted", re.sub(r'\\(["\\])', r"\1", value[1:-1]).replace("\\\n", ""), line))
        elif kind in ("id", "arrow", "undirected", "punct"):
            out.append((kind, value, line))
        line += value.count("\n")
        pos = match.end()
    return out


class _DotReader:
    """A recursive-descent reader of one ``digraph { ... }``; every error names the line."""

    def __init__(self, tokens: list[tuple[str, str, int]], path: str):
        self.tokens, self.path, self.i = tokens, path, 0
        self.graph = FileGraph(path=path)

    def fail(self, message: str):
        line = self.tokens[min(self.i, len(self.tokens) - 1)][2] if self.tokens else 1
        raise GraphError(f"graph.file={self.path}: line {line}: {message}")

    def peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, value: str | None = None, kind: str | None = None) -> str:
        token = self.peek()
        if token is None:
            self.fail(f"the file ends where {value or kind or 'more'} was expected")
        found = "id" if token[0] == "quoted" else token[0]
        if (value is not None and token[1].lower() != value) or (kind is not None and found != kind):
            self.fail(f"expected {value or kind}, found {token[1]!r}")
        self.i += 1
        return token[1]

    def is_next(self, value: str) -> bool:
        token = self.peek()
        return token is not None and token[1].lower() == value and token[0] in ("punct", "id", "arrow")

    def read(self) -> FileGraph:
        if self.is_next("strict"):
            self.take("strict")
        if self.is_next("graph"):
            self.fail("an undirected graph; a causal graph is a digraph (write digraph { a -> b; })")
        self.take("digraph")
        if not self.is_next("{"):
            self.take(kind="id")  # the graph's name
        self.take("{")
        while not self.is_next("}"):
            self.statement()
        self.take("}")
        if self.peek() is not None:
            self.fail(f"text after the graph's closing brace: {self.peek()[1]!r}")
        return self.graph

    def statement(self) -> None:
        token = self.peek()
        if token is None:
            self.fail("the file ends before the graph's closing '}'")
        kind, value, _ = token
        if kind == "punct" and value == ";":
            self.i += 1
        elif (kind == "id" and value.lower() == "subgraph") or (kind == "punct" and value == "{"):
            self.fail("subgraphs are not supported; list the edges one by one (a -> b; a -> c;)")
        elif kind == "id" and value.lower() in ("graph", "node", "edge"):
            self.i += 1
            self.attributes()  # defaults for later statements: no roles are read from them
        elif kind in ("id", "quoted"):
            self.node_or_edges()
        else:
            self.fail(f"unexpected {value!r}")

    def node_or_edges(self) -> None:
        names = [self.node_id()]
        if self.is_next("="):  # a graph attribute, e.g. rankdir=LR
            self.take("=")
            self.take(kind="id")
            return
        while self.peek() is not None and self.peek()[0] in ("arrow", "undirected"):
            if self.peek()[0] == "undirected":
                self.fail("'--' is an undirected edge; a causal graph uses '->'")
            self.i += 1
            names.append(self.node_id())
        attrs = self.attributes()
        if len(names) == 1:
            self.graph.add_node(names[0], attrs)
            return
        for name in names:
            self.graph.add_node(name)
        self.graph.edges += [(a, b) for a, b in zip(names, names[1:]) if (a, b) not in self.graph.edges]

    def node_id(self) -> str:
        token = self.peek()
        if token is not None and token[:2] == ("punct", "{"):
            self.fail("subgraphs are not supported; list the edges one by one (a -> b; a -> c;)")
        if token is not None and token[0] == "id" and token[1].lower() in _KEYWORDS:
            self.fail(f"'{token[1]}' is a DOT keyword; quote it to use it as a node name")
        name = self.take(kind="id")
        if self.is_next(":"):
            self.fail("ports (node:port) are not supported")
        return name

    def attributes(self) -> dict[str, str]:
        attrs: dict[str, str] = {}
        while self.is_next("["):
            self.take("[")
            while not self.is_next("]"):
                key = self.take(kind="id")
                self.take("=")
                attrs[key] = self.take(kind="id")
                while self.is_next(",") or self.is_next(";"):
                    self.i += 1
            self.take("]")
        return attrs


def parse_dot(text: str, path: str = "<dot>") -> FileGraph:
    """The ``digraph { ... }`` subset of DOT (see the module docstring)."""
    return _DotReader(_tokens(text, path), path).read()
