"""The run folder's pictures, drawn headless with matplotlib's Agg canvas.

Each function draws from plain data (what ``results.json`` and the CSVs beside it hold), so
``causal report RUN_DIR`` redraws exactly what the run drew. Figures are built with
``matplotlib.figure.Figure`` (no pyplot, no global backend state).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from causal_cli.report.figures import DPI, _figure, _save, units_suffix  # noqa: F401

#: Okabe-Ito colours (colour-blind safe), one per role of ``CausalGraph.role_of``
ROLE_COLOURS = {
    "treatment": "#E69F00",
    "outcome": "#56B4E9",
    "confounder": "#CC79A7",
    "instrument": "#009E73",
    "mediator": "#F0E442",
    "outcome cause": "#0072B2",
    "unobserved": "#BBBBBB",
    "other": "#DDDDDD",
}
TREATED, CONTROL = "#D55E00", "#0072B2"
BEFORE, AFTER = "#D55E00", "#009E73"


def _tint(colour: str, amount: float = 0.55) -> tuple[float, float, float]:
    """``colour`` mixed with white, so dark text stays readable on it."""
    from matplotlib.colors import to_rgb

    return tuple(c + (1 - c) * amount for c in to_rgb(colour))


# ---------------------------------------------------------------- graph.png
def graph_layout(graph) -> dict[str, tuple[float, float]]:
    """A layered layout: causes of treatment/outcome in rows above, instruments, treatment and outcome
    on one row, mediators and other descendants of the treatment in the row below.

    Rows above are the topological generations of the upstream nodes (a chain of confounders stacks);
    a wide row is staggered so long names do not collide.
    """
    import networkx as nx

    g = graph.to_networkx()
    t, y = graph.treatment, graph.outcome
    downstream = nx.descendants(g, t) - {y}
    instruments = [n for n in graph.nodes if graph.role_of(n) == "instrument" and n not in downstream]
    upstream = [n for n in graph.nodes if n not in (t, y, *instruments) and n not in downstream]
    spacing = 1.6
    widest = max([len(upstream), len(downstream), 2])
    span = max(3.2, min(widest, 8) * spacing * 0.6)
    pos: dict[str, tuple[float, float]] = {t: (0.0, 0.0), y: (span, 0.0)}
    for i, node in enumerate(instruments):
        pos[node] = (-spacing * (i + 1), 0.0)

    def side(node: str) -> int:
        into_t, into_y = g.has_edge(node, t), g.has_edge(node, y)
        return 0 if into_t and not into_y else 2 if into_y and not into_t else 1

    def place(row: list[str], level: float, direction: float) -> float:
        """Spread ``row`` around the middle; more than 6 nodes zig-zag over 2-3 sub-rows. Returns its depth."""
        tiers = min(3, math.ceil(len(row) / 6))
        step = spacing * (1.0 if tiers == 1 else 1.15 / tiers)
        start = span / 2 - step * (len(row) - 1) / 2
        for i, node in enumerate(row):
            pos[node] = (start + i * step, level + direction * 0.5 * (i % tiers))
        return 0.5 * (tiers - 1)

    generations = list(nx.topological_generations(g.subgraph(upstream)))
    level = 1.3
    for generation in reversed(generations):
        row = sorted(generation, key=lambda n: (side(n), graph.nodes.index(n)))
        level += place(row, level, 1.0) + 1.3
    if downstream:
        place(sorted(downstream, key=graph.nodes.index), -1.3, -1.0)
    return pos


def graph_png(graph, path: Path) -> Path:
    pos = graph_layout(graph)
    xs = [p[0] for p in pos.values()]
    ys = [p[1] for p in pos.values()]
    longest = max(len(n) for n in graph.nodes)
    width = min(16.0, max(7.0, (max(xs) - min(xs)) * 1.05 + 0.09 * longest + 2.5))
    height = max(3.6, (max(ys) - min(ys)) * 1.1 + 2.3)
    fig = _figure(width, height)
    ax = fig.add_subplot()
    ax.set_axis_off()
    boxes = {}
    roles = {n: graph.role_of(n) for n in graph.nodes}
    for node, (x, yy) in pos.items():
        role = roles[node]
        unobserved = role == "unobserved"
        label = f"{node}\n(unobserved)" if unobserved else node
        text = ax.text(
            x,
            yy,
            label,
            ha="center",
            va="center",
            fontsize=10,
            zorder=3,
            fontweight="bold" if role in ("treatment", "outcome") else "normal",
            bbox={
                "boxstyle": "round,pad=0.45",
                "fc": _tint(ROLE_COLOURS.get(role, "#DDDDDD")),
                "ec": ROLE_COLOURS.get(role, "#888888"),
                "lw": 1.6,
                "ls": "--" if unobserved else "-",
            },
        )
        boxes[node] = text
    pad_x, pad_y = 0.9 + 0.045 * longest, 0.55
    ax.set_xlim(min(xs) - pad_x, max(xs) + pad_x)
    ax.set_ylim(min(ys) - pad_y, max(ys) + pad_y)
    from matplotlib.patches import Patch

    present = [r for r in ROLE_COLOURS if r in roles.values()]
    handles = [Patch(fc=_tint(ROLE_COLOURS[r]), ec=ROLE_COLOURS[r], label=r) for r in present]
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), frameon=False, fontsize=9)
    fig.suptitle(f"Declared causal graph: {graph.name}", fontsize=13, fontweight="bold")
    ax.set_title(
        f"{graph.treatment} → {graph.outcome}; arrows are assumed direct causes, dashed = unobserved",
        fontsize=9,
        color="#555555",
    )
    # lay the figure out once, then draw arrows (under the boxes) between the boxes' measured edges
    fig.draw_without_rendering()
    to_data = ax.transData.inverted()
    half = {}
    for node, text in boxes.items():
        (x0, y0), (x1, y1) = to_data.transform(text.get_bbox_patch().get_window_extent().get_points())
        half[node] = ((x1 - x0) / 2, (y1 - y0) / 2)
    for a, b in graph.edges:
        main = (a, b) == (graph.treatment, graph.outcome)
        arrow = ax.annotate(
            "",
            xy=_box_edge(pos[b], pos[a], half[b]),
            xytext=_box_edge(pos[a], pos[b], half[a]),
            zorder=2,
            annotation_clip=False,
            arrowprops={
                "arrowstyle": "-|>",
                "mutation_scale": 14,
                "lw": 2.4 if main else 1.1,
                "shrinkA": 1,
                "shrinkB": 1,
                "color": "#222222" if main else "#666666",
                "ls": "--" if a in graph.unobserved else "-",
            },
        )
        arrow.set_in_layout(False)
    return _save(fig, path)


def _box_edge(centre, towards, half) -> tuple[float, float]:
    """Where the segment from ``centre`` to ``towards`` leaves a box of half-size ``half`` around ``centre``."""
    dx, dy = towards[0] - centre[0], towards[1] - centre[1]
    scale = min(half[0] / abs(dx) if dx else math.inf, half[1] / abs(dy) if dy else math.inf)
    scale = min(scale, 1.0)
    return centre[0] + dx * scale, centre[1] + dy * scale


# -------------------------------------------------------------- overlap.png
def overlap_png(histogram: list[dict[str, Any]], overlap: dict[str, Any], path: Path) -> Path:
    """Propensity score distribution per group (share of the group per bin), bounds shaded."""
    import numpy as np

    low_edges = np.array([float(r["bin_low"]) for r in histogram])
    high_edges = np.array([float(r["bin_high"]) for r in histogram])
    widths = high_edges - low_edges
    fig = _figure(8.0, 5.2)
    axes = fig.subplots(2, 1, sharex=True)
    low, high = overlap["bounds"]
    support = overlap.get("common_support")
    for ax, group, colour in ((axes[0], "treated", TREATED), (axes[1], "control", CONTROL)):
        counts = np.array([float(r[group]) for r in histogram])
        info = overlap["groups"][group]
        share = 100 * counts / max(counts.sum(), 1)
        ax.bar(
            low_edges,
            share,
            width=widths,
            align="edge",
            color=colour,
            alpha=0.75,
            edgecolor="white",
            lw=0.4,
            label=f"{group} (n = {info['n']:,}): {100 * info['share_outside']:.1f}% outside [{low:g}, {high:g}]",
        )
        ax.axvspan(0, low, color="#999999", alpha=0.18, lw=0)
        ax.axvspan(high, 1, color="#999999", alpha=0.18, lw=0)
        if support:
            for edge in support:
                ax.axvline(edge, color="#333333", ls=":", lw=1.2)
        ax.set_ylabel(f"share of {group} (%)")
        ax.set_xlim(0, 1)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(loc="upper center", fontsize=9, frameon=True)
        ax.set_ylim(0, max(share.max() * 1.3, 1))
    axes[1].set_xlabel("propensity score P(treated | confounders)")
    source = overlap.get("propensity_source", "estimator")
    caption = (
        f"shaded: outside [{low:g}, {high:g}] ({100 * overlap['share_outside']:.1f}% of units); "
        f"dotted: common support"
    )
    if support:
        caption += f" [{support[0]:.3f}, {support[1]:.3f}]"
    fig.suptitle("Overlap: propensity score by group", fontsize=13, fontweight="bold")
    axes[0].set_title(f"{caption}; scores from the {source}", fontsize=8.5, color="#555555")
    return _save(fig, path)


# ------------------------------------------------------------ love_plot.png
def love_plot_png(balance: list[dict[str, Any]], threshold: float, label_after: str, path: Path) -> Path:
    """|SMD| per covariate before and after adjustment, the threshold as a dashed line."""
    rows = sorted(balance, key=lambda r: abs(r["smd_before"] or 0))
    names = [r["covariate"] for r in rows]
    before = [abs(r["smd_before"]) if r["smd_before"] is not None else math.nan for r in rows]
    after = [abs(r["smd_after"]) if r.get("smd_after") is not None else math.nan for r in rows]
    has_after = any(not math.isnan(a) for a in after)
    fig = _figure(8.0, 1.6 + 0.38 * len(rows))
    ax = fig.add_subplot()
    ys = list(range(len(rows)))
    if has_after:
        for yy, b, a in zip(ys, before, after):
            ax.plot([b, a], [yy, yy], color="#BBBBBB", lw=1.2, zorder=1)
    ax.scatter(
        before,
        ys,
        s=55,
        facecolors="white",
        edgecolors=BEFORE,
        linewidths=1.8,
        zorder=2,
        label="before adjustment",
    )
    if has_after:
        ax.scatter(after, ys, s=55, color=AFTER, zorder=3, label=label_after)
    ax.axvline(threshold, color="#333333", ls="--", lw=1.1, label=f"threshold |SMD| = {threshold:g}")
    ax.set_yticks(ys, names)
    ax.set_xlim(0, max([threshold * 1.5, *(v for v in before + after if not math.isnan(v))]) * 1.1)
    ax.set_ylim(-0.7, len(rows) - 0.3)
    ax.grid(axis="x", alpha=0.3)
    ax.set_xlabel("absolute standardized mean difference, treated − control (pooled SDs)")
    fig.suptitle("Covariate balance (love plot)", fontsize=13, fontweight="bold")
    if not has_after:
        ax.set_title(label_after, fontsize=9, color="#555555")
    fig.legend(loc="outside lower center", ncols=3, frameon=False, fontsize=9)
    return _save(fig, path)


# --------------------------------------------------------- refutations.png
def refutations_png(
    simulations: dict[str, list[float]],
    refutations: list[dict[str, Any]],
    estimate: float,
    units: str,
    path: Path,
) -> Path:
    """One panel per refuter: its simulated effects against the original estimate."""
    import numpy as np

    by_name = {r["name"]: r for r in refutations}
    names = [n for n in simulations if simulations[n]]
    cols = min(3, len(names))
    rows = math.ceil(len(names) / cols)
    fig = _figure(max(7.5, 5.0 * cols), 3.7 * rows + 0.4)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax, name in zip(axes, names):
        sims = np.asarray(simulations[name], dtype=float)
        sims = sims[np.isfinite(sims)]
        info = by_name.get(name, {})
        bins = int(min(30, max(8, np.sqrt(sims.size) * 2)))
        ax.hist(
            sims,
            bins=bins,
            histtype="stepfilled",
            fc="#B3C3E6",
            ec="#4C6FB5",
            lw=1.0,
            label=f"{sims.size} simulations",
        )
        ax.yaxis.get_major_locator().set_params(integer=True)
        ax.axvline(estimate, color="#D55E00", lw=2.2, label=f"original estimate {estimate:,.3g}")
        if sims.size:
            ax.axvline(
                sims.mean(), color="#222222", ls="--", lw=1.3, label=f"simulation mean {sims.mean():,.3g}"
            )
        verdict = {True: "pass", False: "FAIL", None: "no verdict"}[info.get("passed")]
        p = info.get("p_value")
        ax.set_title(
            f"{name}: {verdict}" + (f" (p = {p:.3g})" if p is not None else ""),
            fontsize=11,
            color={"pass": "#1B7837", "FAIL": "#B2182B"}.get(verdict, "#333333"),
            fontweight="bold",
        )
        ax.set_xlabel(f"re-estimated effect{units_suffix(units)}")
        ax.set_ylabel("simulations")
        ax.grid(axis="y", alpha=0.3)
        ax.set_ylim(0, ax.get_ylim()[1] * 1.45)
        ax.legend(fontsize=8, loc="upper right", framealpha=0.9)
    for ax in axes[len(names) :]:
        ax.set_axis_off()
    fig.suptitle("Refutations: simulated effects vs the original estimate", fontsize=13, fontweight="bold")
    return _save(fig, path)


# --------------------------------------------------------- sensitivity.png
def sensitivity_columns(rows: list[dict[str, Any]]) -> tuple[list[str], str] | None:
    """Guess ``(strength columns, value column)`` from a sensitivity table's names.

    Strength columns mention the treatment or the outcome (``effect_on_treatment``...); the value is the
    re-estimated effect (a column naming ``effect``/``estimate`` that is not a strength). None: unknown.
    """
    if not rows:
        return None
    numeric = [c for c in rows[0] if all(is_number(r.get(c)) for r in rows)]
    strengths = [
        c
        for c in numeric
        if any(k in c.lower() for k in ("treat", "outcome", "strength", "kappa"))
        and not any(k in c.lower() for k in ("new_effect", "estimate"))
    ]
    values = [
        c for c in numeric if c not in strengths and any(k in c.lower() for k in ("effect", "estimate"))
    ]
    if not strengths or not values:
        return None
    preferred = [c for c in values if c.lower() in ("new_effect", "estimate", "effect")]
    strengths = sorted(strengths, key=lambda c: 0 if "treat" in c.lower() else 1)[:2]
    return strengths, (preferred or values)[0]


def is_number(value) -> bool:
    if value is None or value == "":
        return False
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def sensitivity_png(rows: list[dict[str, Any]], estimate: float, units: str, path: Path) -> Path | None:
    """Re-estimated effect over the simulated confounder's strengths (heat map for a 2-D grid)."""
    import numpy as np

    found = sensitivity_columns(rows)
    if found is None:
        return None
    strengths, value = found
    fig = _figure(7.5, 5.2)
    ax = fig.add_subplot()
    label = f"re-estimated effect{units_suffix(units)}"
    if len(strengths) == 2:
        xs = sorted({float(r[strengths[0]]) for r in rows})
        ys = sorted({float(r[strengths[1]]) for r in rows})
        grid = np.full((len(ys), len(xs)), np.nan)
        for r in rows:
            grid[ys.index(float(r[strengths[1]])), xs.index(float(r[strengths[0]]))] = float(r[value])
        limit = float(np.nanmax(np.abs(grid))) or 1.0
        # one equal cell per grid point (the strengths are often unevenly spaced)
        image = ax.imshow(grid, origin="lower", cmap="RdBu", vmin=-limit, vmax=limit, aspect="auto")
        fig.colorbar(image, ax=ax, label=label)
        ax.set_xticks(range(len(xs)), [f"{v:g}" for v in xs])
        ax.set_yticks(range(len(ys)), [f"{v:g}" for v in ys])
        gone = np.isfinite(grid) & (np.sign(grid) != np.sign(estimate))
        from matplotlib.patches import Rectangle

        for i, j in zip(*np.nonzero(gone)):
            ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, ec="black", lw=2.2))
        if gone.any():
            ax.plot(
                [], [], "s", mfc="none", mec="black", mew=2, ms=10, label="effect explained away (sign flips)"
            )
            ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), fontsize=9, frameon=False)
        if grid.size <= 100:
            for i in range(len(ys)):
                for j in range(len(xs)):
                    if np.isfinite(grid[i, j]):
                        dark = abs(grid[i, j]) > 0.55 * limit
                        ax.text(
                            j,
                            i,
                            f"{grid[i, j]:.3g}",
                            ha="center",
                            va="center",
                            fontsize=8,
                            color="white" if dark else "black",
                        )
        ax.set_xlabel(f"confounder strength: {_pretty(strengths[0])}")
        ax.set_ylabel(f"confounder strength: {_pretty(strengths[1])}")
        ax.set_title(
            f"re-estimated effect for each strength; original estimate {estimate:,.3g}",
            fontsize=9,
            color="#555555",
        )
    else:
        points = sorted((float(r[strengths[0]]), float(r[value])) for r in rows)
        ax.plot([p[0] for p in points], [p[1] for p in points], "o-", color="#0072B2", label=label)
        ax.axhline(estimate, color="#D55E00", lw=2, label=f"original estimate {estimate:,.3g}")
        ax.axhline(0, color="#333333", ls="--", lw=1, label="no effect")
        ax.set_xlabel(f"confounder strength: {_pretty(strengths[0])}")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=9)
    fig.suptitle("Sensitivity to an unobserved common cause", fontsize=13, fontweight="bold")
    return _save(fig, path)


def _pretty(column: str) -> str:
    """``r2_treatment`` -> ``partial R² with treatment``-style labels from a column name."""
    words = column.replace("_", " ")
    return words.replace("r2 ", "partial R² with ") if words.startswith("r2 ") else words


# ------------------------------------------------------------------ all of them
def graph_from_payload(payload: dict[str, Any]):
    """The run's CausalGraph again, from the ``graph`` block of ``results.json``."""
    return graph_from_record(payload["graph"], payload["treatment"], payload["outcome"])


def graph_from_record(info: dict[str, Any], treatment: str, outcome: str):
    from causal_cli.graph import CausalGraph

    edges = [tuple(part.strip() for part in edge.split("->", 1)) for edge in info.get("edges") or []]
    return CausalGraph(
        treatment=treatment,
        outcome=outcome,
        edges=edges,
        unobserved=list(info.get("unobserved") or []),
        name=info.get("name", "custom"),
        outcome_units=info.get("outcome_units", ""),
    )


def graph_record_png(info: dict[str, Any], treatment: str, outcome: str, path: Path) -> Path:
    """graph.png from the ``graph`` block of ``results.json`` (plain data: the picture cache's key)."""
    return graph_png(graph_from_record(info, treatment, outcome), path)


def render_all(
    run_dir: Path, payload: dict[str, Any], tables: dict[str, list[dict]]
) -> tuple[list[str], list[str]]:
    """Draw every picture the saved results support, in this process; returns (files written, problems
    as notes).

    A figure that fails is reported and its stale file removed, the others are still drawn.
    """
    run_dir = Path(run_dir)
    jobs = _drawing_jobs(payload, tables)
    wanted = [name for name, (want, _, _) in jobs.items() if want]
    for name in jobs:
        if name not in wanted:
            (run_dir / name).unlink(missing_ok=True)
    outcomes = _draw(run_dir, jobs, wanted)
    written = [name for name in wanted if outcomes[name] is None]
    problems = [outcomes[name] for name in wanted if outcomes[name] is not None]
    return written, problems


def _draw(run_dir: Path, jobs: dict, names: list[str]) -> dict[str, str | None]:
    """Draw ``names`` (or copy what the same inputs drew before: :mod:`~causal_cli.report.picture_cache`):
    each one's problem, or None when its file was written."""
    from causal_cli.report import picture_cache

    outcomes: dict[str, str | None] = {}
    for name in names:
        path = run_dir / name
        _, function, args = jobs[name]
        try:
            if picture_cache.draw(name, function, args, path) is None:
                outcomes[name] = f"{name} not drawn: its table's columns were not recognised"
                path.unlink(missing_ok=True)
            else:
                outcomes[name] = None
        except Exception as exc:  # noqa: BLE001 - one failed figure must not cost the others
            path.unlink(missing_ok=True)
            outcomes[name] = f"{name} not drawn: {type(exc).__name__}: {' '.join(str(exc).split())}"
    return outcomes


def _drawing_jobs(
    payload: dict[str, Any], tables: dict[str, list[dict]]
) -> dict[str, tuple[bool, Any, tuple]]:
    """Each picture's (whether the results support it, the function that draws it, its arguments but
    the path): plain data, so that the picture cache can key a picture by them."""
    units = (payload.get("graph") or {}).get("outcome_units", "")
    diag = payload.get("diagnostics") or {}
    adjustment = diag.get("adjustment", "none")
    after = {
        "matching": f"after matching ({payload.get('estimator')})",
        "weighting": f"after weighting ({payload.get('estimator')})",
    }.get(
        adjustment,
        f"before adjustment only: {payload.get('estimator')} neither matches nor weights the sample",
    )
    # a refuter with its own table (the sensitivity grid) gets sensitivity.png instead of a histogram
    gridded = {r["name"] for r in payload.get("refutations") or [] if r.get("table")}
    simulations: dict[str, list[float]] = {}
    for row in tables.get("refutation_simulations") or []:
        if row["refuter"] not in gridded:
            effect = float(row["effect"]) if is_number(row["effect"]) else math.nan
            simulations.setdefault(row["refuter"], []).append(effect)
    graph = payload.get("graph")
    overlap = diag.get("overlap")
    # what refutations.png shows of each refuter (not its run time: the picture cache keys by this)
    verdicts = [
        {k: r.get(k) for k in ("name", "passed", "p_value")} for r in payload.get("refutations") or []
    ]
    estimate = payload.get("estimate")
    return {
        "graph.png": (
            bool(graph),
            graph_record_png,
            (graph, payload.get("treatment"), payload.get("outcome")),
        ),
        "overlap.png": (
            bool(overlap and tables.get("overlap")),
            overlap_png,
            (tables.get("overlap"), overlap),
        ),
        "love_plot.png": (
            bool(diag.get("balance")),
            love_plot_png,
            (diag.get("balance"), diag.get("smd_threshold", 0.1), after),
        ),
        "refutations.png": (
            bool(simulations),
            refutations_png,
            (simulations, verdicts, estimate, units),
        ),
        "sensitivity.png": (
            bool(tables.get("sensitivity")),
            sensitivity_png,
            (tables.get("sensitivity"), estimate, units),
        ),
        **heterogeneity_jobs(payload),
    }


def heterogeneity_jobs(payload: dict[str, Any]) -> dict[str, tuple[bool, Any, tuple]]:
    """segments.png, gates.png and qini.png (causal_cli.report.heterogeneity)."""
    from causal_cli.report import heterogeneity

    return heterogeneity.drawing_jobs(payload)
