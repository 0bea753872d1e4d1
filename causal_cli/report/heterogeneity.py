"""The heterogeneity part of a run's report: its summary sentences and the segments/gates/qini pictures.

Everything is drawn from the ``heterogeneity`` block of results.json, so a saved run can be redrawn.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from causal_cli.report.text import money

IMAGES = {
    "segments.png": "Segment effects against the average effect (95% CIs)",
    "gates.png": "Group effects by quintile of the predicted effect (GATES)",
    "qini.png": "Uplift (Qini) curve: gain from treating the top share first",
}


def _p(value) -> str:
    return "—" if value is None else f"{value:.3g}"


def summary_lines(block: dict, units: str) -> list[str]:
    gates = block["gates"]["top_minus_bottom"]
    policy = block["policy"]
    lines = [
        f"Heterogeneity: BLP test p = {_p(block['blp']['test']['p_value'])}; top minus bottom CATE quintile "
        f"{money(gates['effect'], units)} [{money(gates['ci_low'], units)}, {money(gates['ci_high'], units)}].",
        f"Targeting (cost {money(policy['cost'], units)} per treated unit): treat {100 * policy['share_treated']:.0f}% "
        f"-> {money(policy['targeted']['value'], units)} per user vs treat-all "
        f"{money(policy['treat_all']['value'], units)} (difference {money(policy['targeted_minus_treat_all']['value'], units)} "
        f"[{money(policy['targeted_minus_treat_all']['ci_low'], units)}, "
        f"{money(policy['targeted_minus_treat_all']['ci_high'], units)}]); Qini area {block['qini']['area']:.3g}.",
    ]
    if block.get("truth"):
        t = block["truth"]
        lines.append(
            f"Against the simulated truth: PEHE {t['pehe']:.3g}, segment CIs cover {100 * t['segment_coverage']:.0f}% "
            f"of {t['segments']} segments, mean |bias| {t['segment_mean_abs_bias']:.3g}."
        )
    return lines


def segments_png(block: dict, units: str, path: Path) -> Path:
    from causal_cli.report.figures import _figure, _save

    rows = [(seg["modifier"], r) for seg in block["segments"] for r in seg["segments"]]
    fig = _figure(7.0, 0.6 + 0.35 * len(rows))
    ax = fig.add_subplot()
    for i, (_, r) in enumerate(reversed(rows)):
        ax.errorbar(
            r["effect"],
            i,
            xerr=[[r["effect"] - r["ci_low"]], [r["ci_high"] - r["effect"]]],
            fmt="o",
            color="#1f77b4",
            capsize=3,
        )
        if r.get("true_effect") is not None:
            ax.plot(r["true_effect"], i, "x", color="#d62728")
    ax.set_yticks(range(len(rows)), [f"{m}: {r['segment']}" for m, r in reversed(rows)])
    ax.axvline(block["ate"], color="grey", linestyle="--", label="average effect")
    ax.set_xlabel(f"effect{f' ({units})' if units else ''}")
    ax.legend(loc="best", fontsize=8)
    return _save(fig, path)


def gates_png(block: dict, units: str, path: Path) -> Path:
    from causal_cli.report.figures import _figure, _save

    groups = block["gates"]["groups"]
    fig = _figure(6.0, 3.6)
    ax = fig.add_subplot()
    x = [g["group"] for g in groups]
    ax.errorbar(
        x,
        [g["effect"] for g in groups],
        yerr=[[g["effect"] - g["ci_low"] for g in groups], [g["ci_high"] - g["effect"] for g in groups]],
        fmt="o",
        capsize=4,
        label="estimated (DR scores)",
    )
    ax.plot(x, [g["predicted"] for g in groups], "s", color="#ff7f0e", label="mean predicted CATE")
    if groups[0].get("true_effect") is not None:
        ax.plot(x, [g["true_effect"] for g in groups], "x", color="#d62728", label="true")
    ax.axhline(block["ate"], color="grey", linestyle="--", label="average effect")
    ax.set_xlabel("group (quantile of predicted effect, low to high)")
    ax.set_ylabel(f"effect{f' ({units})' if units else ''}")
    ax.legend(fontsize=8)
    return _save(fig, path)


def qini_png(block: dict, units: str, path: Path) -> Path:
    from causal_cli.report.figures import _figure, _save

    curve = block["qini"]["curve"]
    fig = _figure(6.0, 3.6)
    ax = fig.add_subplot()
    ax.plot(
        [c["share_treated"] for c in curve],
        [c["gain"] for c in curve],
        "-o",
        markersize=3,
        label="target by predicted effect",
    )
    ax.plot(
        [c["share_treated"] for c in curve],
        [c["random"] for c in curve],
        "--",
        color="grey",
        label="random targeting",
    )
    ax.set_xlabel("share of users treated (highest predicted effect first)")
    ax.set_ylabel(f"gain per user{f' ({units})' if units else ''}")
    ax.set_title(f"Qini area {block['qini']['area']:.3g}")
    ax.legend(fontsize=8)
    return _save(fig, path)


def drawing_jobs(payload: dict[str, Any]) -> dict[str, tuple[bool, Any, tuple]]:
    """Each picture's (whether the run has a heterogeneity block, its drawing function, its arguments)."""
    block = payload.get("heterogeneity")
    units = (payload.get("graph") or {}).get("outcome_units", "")
    return {
        "segments.png": (bool(block), segments_png, (block, units)),
        "gates.png": (bool(block), gates_png, (block, units)),
        "qini.png": (bool(block), qini_png, (block, units)),
    }
