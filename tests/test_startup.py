"""Start-up fast paths give what the slow paths give: the picture cache's bytes are the drawn bytes,
its key covers what a picture depends on, and the graph check without networkx agrees with networkx."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from causal_cli import disk_cache
from causal_cli.graph import _acyclic_with_path
from causal_cli.report import picture_cache, plots

GRAPH = {
    "name": "product_growth",
    "nodes": ["feature_used", "spend", "account_age", "activity"],
    "edges": [
        "account_age -> feature_used",
        "account_age -> spend",
        "activity -> feature_used",
        "activity -> spend",
        "feature_used -> spend",
    ],
    "unobserved": [],
    "outcome_units": "$",
}
BALANCE = [
    {"covariate": "account_age", "smd_before": 0.66, "smd_after": 0.018},
    {"covariate": "activity", "smd_before": 0.69, "smd_after": -0.01},
]


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CAUSAL_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / picture_cache.NAMESPACE


def draw(tmp_path: Path, name: str, function, args: tuple) -> bytes:
    path = tmp_path / f"{len(list(tmp_path.glob('*.png')))}-{name}"
    assert picture_cache.draw(name, function, args, path) == path
    return path.read_bytes()


def test_a_cached_picture_is_byte_identical_to_a_fresh_drawing(tmp_path, cache):
    args = (GRAPH, "feature_used", "spend")
    first = draw(tmp_path, "graph.png", plots.graph_record_png, args)  # drawn and stored
    assert len(list(cache.glob("*.json"))) == 1
    second = draw(tmp_path, "graph.png", plots.graph_record_png, args)  # copied from the cache
    fresh = tmp_path / "fresh.png"
    plots.graph_record_png(*args, fresh)  # drawn without the cache
    assert first == second == fresh.read_bytes()
    assert first.startswith(picture_cache.PNG_SIGNATURE)


def test_a_hit_is_not_drawn_again(tmp_path, cache):
    """A corrupt entry is a miss (redrawn); an intact one is what the next run gets, whatever it holds:
    so an entry replaced by another valid PNG shows that a hit copies instead of drawing."""
    args = (BALANCE, 0.1, "after matching (psm)")
    love = draw(tmp_path, "love_plot.png", plots.love_plot_png, args)
    (entry,) = cache.glob("*.json")
    record = json.loads(entry.read_text())
    entry.write_text("{not json")
    assert draw(tmp_path, "love_plot.png", plots.love_plot_png, args) == love  # redrawn, stored again
    graph = draw(tmp_path, "graph.png", plots.graph_record_png, (GRAPH, "feature_used", "spend"))
    stored = json.loads(entry.read_text())
    assert stored["key"] == record["key"]
    stored["value"] = picture_cache.base64.b64encode(graph).decode()
    entry.write_text(json.dumps(stored))
    assert draw(tmp_path, "love_plot.png", plots.love_plot_png, args) == graph


def test_the_key_covers_inputs_code_and_in_process_settings(monkeypatch, tmp_path):
    import matplotlib

    args = (BALANCE, 0.1, "after matching (psm)")
    key = picture_cache.picture_key("love_plot.png", plots.love_plot_png, args)
    assert key == picture_cache.picture_key("love_plot.png", plots.love_plot_png, args)
    changed = ([{**BALANCE[0], "smd_after": 0.019}, BALANCE[1]], 0.1, "after matching (psm)")
    assert picture_cache.picture_key("love_plot.png", plots.love_plot_png, changed) != key
    assert picture_cache.picture_key("love_plot.png", plots.love_plot_png, (*args[:2], "x")) != key
    assert key["renderer"]["matplotlib"] == matplotlib.__version__
    assert len(key["renderer"]["code"]) == 64
    monkeypatch.chdir(tmp_path)  # a matplotlibrc in the working folder restyles the pictures drawn there
    (tmp_path / "matplotlibrc").write_text("lines.linewidth: 5\n")
    assert picture_cache.picture_key("love_plot.png", plots.love_plot_png, args) != key
    monkeypatch.setitem(matplotlib.rcParams, "lines.linewidth", 7.0)  # a notebook's own style
    assert picture_cache.picture_key("love_plot.png", plots.love_plot_png, args) != key
    assert picture_cache.picture_key("x.png", plots.love_plot_png, (object(),)) is None  # not plain data


def test_a_rebuilt_font_list_changes_the_key(monkeypatch, tmp_path):
    """matplotlib picks fonts from its font list: a list rebuilt with other fonts installed is a new key."""
    monkeypatch.setenv("MPLCONFIGDIR", str(tmp_path))
    args = (GRAPH, "feature_used", "spend")
    before = picture_cache.picture_key("graph.png", plots.graph_record_png, args)
    (tmp_path / "fontlist-v390.json").write_text('{"ttflist": []}')
    assert picture_cache.font_lists() == {
        "fontlist-v390.json": [15, (tmp_path / "fontlist-v390.json").stat().st_mtime_ns]
    }
    assert picture_cache.picture_key("graph.png", plots.graph_record_png, args) != before


def test_refuter_run_times_do_not_change_the_refutations_key():
    def jobs(runtime: float):
        payload = {
            "estimate": 9.96,
            "graph": GRAPH,
            "refutations": [{"name": "placebo", "passed": True, "p_value": 0.92, "runtime_s": runtime}],
        }
        tables = {"refutation_simulations": [{"refuter": "placebo", "effect": "0.1"}]}
        _, function, args = plots._drawing_jobs(payload, tables)["refutations.png"]
        return picture_cache.picture_key("refutations.png", function, args)

    assert jobs(1.25) == jobs(0.6)


def test_prune_keeps_the_most_recently_used(cache):
    for i in range(5):
        disk_cache.store(picture_cache.NAMESPACE, {"i": i}, "v")
    for i, entry in enumerate(
        sorted(cache.glob("*.json"), key=lambda p: json.loads(p.read_text())["key"]["i"])
    ):
        import os

        os.utime(entry, (1_000_000 + i, 1_000_000 + i))
    assert disk_cache.load(picture_cache.NAMESPACE, {"i": 0}, touch=True) == "v"  # used now: kept
    disk_cache.prune(picture_cache.NAMESPACE, 2)
    kept = sorted(json.loads(p.read_text())["key"]["i"] for p in cache.glob("*.json"))
    assert kept == [0, 4]


def test_a_report_from_cached_pictures_does_not_import_matplotlib(tmp_path, cache):
    """The second render of the same folder copies every picture: matplotlib is never imported."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    payload = {"treatment": "feature_used", "outcome": "spend", "graph": GRAPH, "estimate": 9.96}
    (run_dir / "results.json").write_text(json.dumps(payload))
    script = textwrap.dedent(
        f"""
        import sys
        from causal_cli.report import plots
        written, problems = plots.render_all({str(run_dir)!r}, {payload!r}, {{}})
        print(written, problems, "matplotlib" in sys.modules)
        """
    )
    env = {**__import__("os").environ, "CAUSAL_CACHE_DIR": str(cache.parent)}
    runs = [
        subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env) for _ in "12"
    ]
    assert [r.stdout.split()[-1] for r in runs] == ["True", "False"], [r.stderr for r in runs]
    assert "['graph.png'] []" in runs[1].stdout


def random_graph(seed: int) -> tuple[list[str], list[tuple[str, str]]]:
    """Mostly forward edges (a DAG with a path more often than not), some backward ones (cycles)."""
    rng = random.Random(seed)
    nodes = [f"v{i}" for i in range(rng.randint(2, 8))]
    edges = []
    for _ in range(rng.randint(1, 14)):
        a, b = sorted(rng.sample(range(len(nodes)), 2))
        edges.append((nodes[b], nodes[a]) if rng.random() < 0.1 else (nodes[a], nodes[b]))
    return nodes, list(dict.fromkeys(edges))


@pytest.mark.parametrize("seed", range(60))
def test_the_graph_check_without_networkx_agrees_with_networkx(seed):
    import networkx as nx

    nodes, edges = random_graph(seed)
    g = nx.DiGraph()
    g.add_nodes_from(nodes)
    g.add_edges_from(edges)
    source, target = nodes[0], nodes[-1]
    expected = nx.is_directed_acyclic_graph(g) and nx.has_path(g, source, target)
    assert _acyclic_with_path(nodes, edges, source, target) == expected


def test_the_random_graphs_cover_both_answers():
    import networkx as nx

    answers = set()
    for seed in range(60):
        nodes, edges = random_graph(seed)
        g = nx.DiGraph(edges)
        g.add_nodes_from(nodes)
        answers.add((nx.is_directed_acyclic_graph(g), nx.has_path(g, nodes[0], nodes[-1])))
    assert answers == {(True, True), (True, False), (False, True), (False, False)}
