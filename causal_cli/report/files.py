"""Run-folder files, each written to a temporary file and renamed, so none is ever half-written."""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

RESULT_COLUMNS = [
    "status", "treatment", "outcome", "estimator", "target_units", "n_rows", "adjustment_set",
    "naive_estimate", "estimate", "std_error", "ci_low", "ci_high", "ci_level", "reference",
    "reference_kind", "bias", "naive_overstatement_pct", "seed", "runtime_s",
]
REFUTATION_COLUMNS = ["name", "new_effect", "new_effect_sd", "p_value", "passed", "reason", "num_simulations"]


def atomic_write(path: Path, text: str) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, payload: dict[str, Any]) -> None:
    atomic_write(path, json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n")


def _csv(rows: list[dict[str, Any]], columns: list[str]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (";".join(map(str, row[k])) if isinstance(row.get(k), list) else row.get(k))
                         for k in columns})
    return buf.getvalue()


def claim_run_dir(run_dir: Path, header: dict[str, Any]) -> None:
    """Create ``results.json`` exclusively (status ``running``): no run ever reuses another's folder."""
    from causal_cli.errors import ConfigError

    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(run_dir / "results.json", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError as exc:
        raise ConfigError(f"output folder {run_dir} already holds a run; choose a new hydra.run.dir") from exc
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(json.dumps({"status": "running", "error": None, **header}, indent=2, default=str) + "\n")


def write_run_files(run_dir: Path, payload: dict[str, Any], summary_md: str | None) -> None:
    """Tables first, ``results.json`` (whose status says the run is complete) last."""
    if payload.get("status") == "ok":
        atomic_write(run_dir / "results.csv", _csv([payload], RESULT_COLUMNS))
        atomic_write(run_dir / "refutations.csv", _csv(payload.get("refutations") or [], REFUTATION_COLUMNS))
        if summary_md:
            atomic_write(run_dir / "summary.md", summary_md)
    write_json(run_dir / "results.json", payload)


def summary_markdown(result: dict[str, Any]) -> str:
    units = (result.get("graph") or {}).get("outcome_units", "")

    def fmt(v):
        if v is None:
            return "—"
        return f"{'-' if v < 0 else ''}{units if units == '$' else ''}{abs(v):,.2f}" if units == "$" else f"{v:,.4g}"

    level = int(round(result.get("ci_level", 0.95) * 100))
    lines = [
        f"# Effect of `{result['treatment']}` on `{result['outcome']}`",
        "",
        f"- estimator: `{result['estimator']}` ({result['target_units'].upper()}), {result['n_rows']:,} rows",
        f"- identification: {result.get('identification')}; adjustment set: "
        f"{', '.join(result.get('adjustment_set') or []) or 'none'}",
        "",
        f"| | estimate | {level}% CI | reference | bias |",
        "| --- | ---: | ---: | ---: | ---: |",
        f"| naive | {fmt(result['naive_estimate'])} | | {fmt(result.get('reference'))} | {fmt(result.get('naive_bias'))} |",
        f"| {result['estimator']} | **{fmt(result['estimate'])}** | [{fmt(result['ci_low'])}, {fmt(result['ci_high'])}] "
        f"| {fmt(result.get('reference'))} | {fmt(result.get('bias'))} |",
        "",
    ]
    if result.get("naive_overstatement_pct") is not None:
        lines.append(f"The naive difference overstates the causal effect by {result['naive_overstatement_pct']:.1f}%.")
        lines.append("")
    refs = result.get("refutations") or []
    if refs:
        lines += ["## Refutations", "", "| refuter | new effect | p-value | verdict | reason |", "| --- | ---: | ---: | --- | --- |"]
        for r in refs:
            verdict = {True: "pass", False: "FAIL", None: "info"}[r.get("passed")]
            p = "—" if r.get("p_value") is None else f"{r['p_value']:.3g}"
            lines.append(f"| {r['name']} | {fmt(r.get('new_effect'))} | {p} | {verdict} | {r.get('reason', '')} |")
        lines.append("")
    return "\n".join(lines)
