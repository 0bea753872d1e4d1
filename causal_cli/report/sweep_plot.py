"""``summary.png`` of a sweep: each estimator's bias (every replication, mean and spread) per setting."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from causal_cli.report.figures import _figure, _save, units_suffix

POINTS, MEAN, BEST = "#0072B2", "#222222", "#009E73"


def setting_label(row: dict[str, Any], settings: list[str]) -> str:
    return ", ".join(f"{key}={row[key]}" for key in settings) or "all jobs"


def bias_png(
    rows: list[dict[str, Any]], settings: list[str], order: list[str], units: str, path: Path
) -> Path | None:
    """One panel per setting (shared y axis), estimators in ``order``; ``None`` when no job has a truth."""
    if not any(row.get("biases") for row in rows):
        return None
    panels: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        panels.setdefault(setting_label(row, settings), []).append(row)
    ncols = min(3, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig = _figure(max(7.0, min(16.0, ncols * (1.2 + 0.75 * len(order)))), 1.2 + 3.2 * nrows)
    axes = fig.subplots(nrows, ncols, sharey=True, squeeze=False).ravel()
    for ax, (label, block) in zip(axes, panels.items()):
        by_name = {row["estimator"]: row for row in block}
        ax.axhline(0.0, color="#999999", lw=1, zorder=1)
        for x, name in enumerate(order):
            row = by_name.get(name)
            if row is None or not row.get("biases"):
                continue
            biases = row["biases"]
            jitter = [x + 0.12 * ((i % 5) - 2) / 2 for i in range(len(biases))]
            ax.scatter(jitter, biases, s=14, color=POINTS, alpha=0.55, zorder=2, linewidths=0)
            spread = row.get("sd_bias") or 0.0
            ax.errorbar(
                [x],
                [row["mean_bias"]],
                yerr=[spread],
                fmt="D",
                ms=6,
                capsize=4,
                zorder=3,
                color=BEST if row.get("best") else MEAN,
                lw=1.6,
            )
        ax.set_xticks(
            range(len(order)),
            order,
            rotation=30 if len(order) > 4 else 0,
            ha="right" if len(order) > 4 else "center",
        )
        ax.set_xlim(-0.6, len(order) - 0.4)
        ax.set_title(label, fontsize=10)
        ax.grid(axis="y", color="#EEEEEE", zorder=0)
    for ax in axes[len(panels) :]:
        ax.set_axis_off()
    for ax in axes[::ncols]:
        ax.set_ylabel(f"bias = estimate − truth{units_suffix(units)}")
    fig.suptitle(
        "Bias by estimator and setting\ndots = replications, diamond = mean ± 1 SD, green = best per setting",
        fontsize=11,
    )
    return _save(fig, path)
