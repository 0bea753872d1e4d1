"""The sweep scorecard's view model: the aggregated rows of ``causal_cli.sweep`` formatted once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from causal_cli.report.text import money

#: failed jobs listed by name; the rest are counted
FAILED_SHOWN = 10


@dataclass
class ScorecardRow:
    #: the setting's values, empty when the row continues the setting above it
    setting: list[str]
    values: list[str]
    best: bool
    #: the first row of a new setting (a section break above it, except for the first row)
    new_section: bool
    failures: bool


@dataclass
class ScorecardView:
    title: str
    caption: str
    settings: list[str]
    columns: list[str]
    rows: list[ScorecardRow]
    failed: list[tuple[str, str]]
    more_failed: int
    problems: list[str]
    files: str


def _reference_label(rows: list[dict[str, Any]]) -> str:
    kinds = {k for r in rows for k in str(r.get("reference_kind") or "").split("+") if k}
    if kinds <= {"ground_truth"}:
        return "truth"
    return "reference (" + ", ".join(sorted(kinds)).replace("_", " ") + ")"


def _caption(rows, replications, fixed, units, truths) -> str:
    notes = ["★ best per setting: smallest |mean bias|, then RMSE, no failures"]
    if replications:
        notes.append("replications over " + ", ".join(f"{k} ({n} values)" for k, n in replications.items()))
    label = _reference_label(rows)
    if len(truths) == 1:
        notes.append(f"{label} {money(next(iter(truths)), units)}")
    elif truths and label != "truth":
        notes.append(f"bias against the {label}")
    if fixed:
        notes.append("fixed: " + " ".join(f"{k}={v}" for k, v in fixed.items()))
    return " · ".join(notes)


def _columns(several_truths: bool, hte: bool) -> list[str]:
    columns = ["estimator", "runs", "failed", "mean estimate"] + (["truth"] if several_truths else [])
    columns += ["mean bias", "MAE", "RMSE", "CI coverage", "CI width", "refutations", "runtime"]
    return columns + (["PEHE", "segment CI coverage"] if hte else [])


def _share(value) -> str:
    return "—" if value is None else f"{100 * value:.0f}%"


def _values(row: dict[str, Any], units: str, several_truths: bool, hte: bool) -> list[str]:
    judged = row.get("refutations_judged") or 0
    runtime = row.get("mean_runtime_s")
    values = [
        ("★ " if row.get("best") else "  ") + row["estimator"],
        str(row["runs"]),
        str(row["failures"]),
        money(row.get("mean_estimate"), units),
        *([money(row.get("truth"), units)] if several_truths else []),
        money(row.get("mean_bias"), units),
        money(row.get("mae"), units),
        money(row.get("rmse"), units),
        _share(row.get("ci_coverage")),
        money(row.get("mean_ci_width"), units),
        f"{row.get('refutations_passed', 0)}/{judged}" if judged else "—",
        "—" if runtime is None else f"{runtime:.2f} s",
    ]
    if hte:
        pehe = row.get("mean_pehe")
        values += ["—" if pehe is None else f"{pehe:.3g}", _share(row.get("segment_ci_coverage"))]
    return values


def build(
    rows: list[dict],
    settings: list[str],
    replications: dict[str, int],
    fixed: dict[str, str],
    units: str,
    failed: list[tuple[str, str]],
    n_jobs: int,
    sweep_dir: str,
    files: list[str],
    problems: list[str],
) -> ScorecardView:
    """The scorecard of a sweep: one block of rows per setting, the best estimator of each marked."""
    truths = {round(r["truth"], 9) for r in rows if r.get("truth") is not None}
    several, hte = len(truths) > 1, any(row.get("mean_pehe") is not None for row in rows)
    out, previous = [], None
    for row in rows:
        setting = tuple(row.get(k) for k in settings)
        new = setting != previous
        out.append(
            ScorecardRow(
                [str(v) for v in setting] if new else [""] * len(settings),
                _values(row, units, several, hte),
                bool(row.get("best")),
                new and previous is not None,
                bool(row["failures"]),
            )
        )
        previous = setting
    return ScorecardView(
        title=f"Sweep scorecard: {n_jobs} jobs, {len(failed)} failed",
        caption=_caption(rows, replications, fixed, units, truths),
        settings=list(settings),
        columns=_columns(several, hte),
        rows=out,
        failed=list(failed[:FAILED_SHOWN]),
        more_failed=max(0, len(failed) - FAILED_SHOWN),
        problems=list(problems),
        files=", ".join(files) or sweep_dir,
    )
