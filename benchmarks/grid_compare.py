"""Side-by-side table of two coverage-grid CSVs (before and after a change), markdown.

    python benchmarks/grid_compare.py benchmarks/results/coverage_grid_before.csv \\
        benchmarks/results/coverage_grid_after.csv

``--combine OUT A.csv B.csv ...`` instead pools summary CSVs of disjoint replications of the same rows
(``coverage_grid.py --first-rep``) into one CSV, from each part's moments (reps, bias, RMSE, SD, ...), and
appends rows found in one part only, in the grid's order. ``--assemble OUT BASE.csv NEWER.csv ...`` writes
BASE with each row that a later file also has replaced by the later file's (a rerun after a change), rows
found only in later files added, in the grid's order. ``--markdown CSV`` prints a summary CSV as
the grid's table, ``--coverage-table CSV`` the README's coverage table (ATE / ATT per cell and estimator).
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

BAND = (0.93, 0.97)
#: coverage_grid.py's ESTIMATORS and extra rows, in its order (not imported: "coverage" is also a PyPI package)
LABELS = (
    "psm",
    "ipw",
    "aipw",
    "dml",
    "regression",
    "ps_stratification",
    "distance_matching",
    "aipw_hgb",
    "aipw_hgb_folds2",
    "psm_plain",
)


def read(path: Path) -> dict[tuple[str, str, str], dict]:
    with path.open() as fh:
        return {(r["cell"], r["estimator"], r["target"]): r for r in csv.DictReader(fh)}


def number(row: dict | None, key: str) -> float | None:
    if row is None or row.get(key) in (None, "", "nan"):
        return None
    return float(row[key])


def cell_text(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def compare(before: dict, after: dict) -> str:
    keys = list(before) + [k for k in after if k not in before]
    lines = [
        "| cell | estimator | target | bias before | bias after | RMSE before | RMSE after "
        "| coverage before | coverage after | SE/SD before | SE/SD after | unit shift before | unit shift after |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key in keys:
        b, a = before.get(key), after.get(key)
        values = []
        for name, fmt in (
            ("bias", "+.3f"),
            ("rmse", ".3f"),
            ("coverage", ".1%"),
            ("se_sd", ".2f"),
            ("unit_shift", ".3g"),
        ):
            values += [cell_text(number(b, name), fmt), cell_text(number(a, name), fmt)]
        cov = number(a, "coverage")
        if cov is not None and not BAND[0] <= cov <= BAND[1]:
            values[5] = f"**{values[5]}**"
        lines.append("| " + " | ".join([*key, *values]) + " |")
    return "\n".join(lines)


#: averaged over the parts weighted by their replications
MEANS = ("bias", "rmse", "coverage", "coverage_sample", "width", "mean_se", "fit_ms", "truth_sample_mean")


def pool(parts: list[dict]) -> dict:
    """One summary row from rows of disjoint replications (means weighted by reps; SD from the moments)."""
    fitted = [p for p in parts if int(p["reps"]) > 0]
    if len(fitted) < 2:
        return dict(fitted[0] if fitted else parts[0])
    reps = np.array([int(p["reps"]) for p in fitted], dtype=float)
    out = dict(fitted[0])
    for key in MEANS:
        values = np.array([float(p[key]) for p in fitted])
        out[key] = float(values @ reps / reps.sum())
    # RMSE pools mean squares, not roots
    out["rmse"] = float(np.sqrt(np.array([float(p["rmse"]) ** 2 for p in fitted]) @ reps / reps.sum()))
    means = np.array([float(p["bias"]) for p in fitted])
    sds = np.array([float(p["sd"]) for p in fitted])
    total = reps.sum()
    squares = ((reps - 1) * sds**2 + reps * means**2).sum()
    out["sd"] = float(np.sqrt((squares - total * out["bias"] ** 2) / (total - 1)))
    out["se_sd"] = out["mean_se"] / out["sd"]
    out["reps"] = int(total)
    out["failed"] = sum(int(p["failed"] or 0) for p in parts)
    shifts = [float(p["unit_shift"]) for p in fitted if p["unit_shift"] not in ("", "nan")]
    out["unit_shift"] = max(shifts) if shifts else float("nan")
    out["ci_method"] = ",".join(sorted({m for p in fitted for m in p["ci_method"].split(",")}))
    lo, hi = BAND
    flags = ["UNDER-covers"] if out["coverage"] < lo else ["OVER-covers"] if out["coverage"] > hi else []
    flags += [
        f for p in fitted for f in p["flags"].split(", ") if f and "covers" not in f and "failed" not in f
    ]
    if out["failed"]:
        flags.append(f"{out['failed']} failed")
    out["flags"] = ", ".join(dict.fromkeys(flags))
    return out


def grid_order(key: tuple[str, str, str]) -> tuple:
    """Sort key: the grid's cell order, then the estimators' order in coverage.py, then the target."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from grid_dgps import CELLS

    cells, labels = list(CELLS), list(LABELS)
    cell, label, target = key
    return (
        cells.index(cell) if cell in cells else len(cells),
        labels.index(label) if label in labels else len(labels),
        target,
    )


def markdown(path: Path) -> str:
    """The grid's main table from a summary CSV (the columns coverage.py prints)."""
    lines = [
        "| cell | estimator | target | reps | bias | RMSE | coverage | width | SE/SD | unit shift (SE) | ms/fit | flags |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in read(path).values():
        if not int(r["reps"]):
            lines.append(
                f"| {r['cell']} | {r['estimator']} | {r['target']} | 0 | | | | | | | | {r['flags']} |"
            )
            continue
        lines.append(
            f"| {r['cell']} | {r['estimator']} | {r['target']} | {r['reps']} | {float(r['bias']):+.3f} | "
            f"{float(r['rmse']):.3f} | {float(r['coverage']):.1%} | {float(r['width']):.3f} | "
            f"{float(r['se_sd']):.2f} | {float(r['unit_shift']):.3g} | {float(r['fit_ms']):.0f} | {r['flags']} |"
        )
    return "\n".join(lines)


def coverage_table(path: Path) -> str:
    """README table: ATE / ATT coverage (%) per cell and estimator; a row's usual replications after the cell,
    other counts next to the entry."""
    from collections import Counter

    rows = read(path)
    cells = list(dict.fromkeys(c for c, _, _ in rows))
    labels = [x for x in LABELS if any(e == x for _, e, _ in rows)]
    heads = {
        "ps_stratification": "ps_strat.",
        "distance_matching": "dist. match.",
        "aipw_hgb": "aipw (HGB)",
        "aipw_hgb_folds2": "aipw (HGB) folds=2 n_rep=1",
        "psm_plain": "psm bias_adjust=false",
    }
    lines = [
        "| cell (reps) | " + " | ".join(heads.get(x, x) for x in labels) + " |",
        "| --- |" + " ---: |" * len(labels),
    ]
    for cell in cells:
        usual = Counter(r["reps"] for (c, _, _), r in rows.items() if c == cell).most_common(1)[0][0]
        entries = []
        for label in labels:
            found = [rows.get((cell, label, t)) for t in ("ate", "att")]
            if not any(found):
                entries.append("")
                continue
            text = " / ".join(
                f"{100 * float(r['coverage']):.1f}" if r and int(r["reps"]) else "-" for r in found
            )
            reps = {r["reps"] for r in found if r}
            entries.append(text + (f" ({'/'.join(sorted(reps))})" if reps != {usual} else ""))
        lines.append(f"| {cell} ({usual}) | " + " | ".join(entries) + " |")
    return "\n".join(lines)


def combine(paths: list[Path], out: Path) -> None:
    rows: dict[tuple, list[dict]] = {}
    fields: list[str] = []
    for path in paths:
        with path.open() as fh:
            reader = csv.DictReader(fh)
            fields = fields or list(reader.fieldnames)
            for row in reader:
                rows.setdefault((row["cell"], row["estimator"], row["target"]), []).append(row)
    with out.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        for key in sorted(rows, key=grid_order):
            row = pool(rows[key])
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})


def assemble(paths: list[Path], out: Path) -> None:
    rows: dict[tuple, dict] = {}
    fields: list[str] = []
    for path in paths:
        with path.open() as fh:
            reader = csv.DictReader(fh)
            fields = fields or list(reader.fieldnames)
            rows.update({(r["cell"], r["estimator"], r["target"]): r for r in reader})
    with out.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        for key in sorted(rows, key=grid_order):
            writer.writerow(rows[key])


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "--assemble":
        assemble([Path(p) for p in argv[2:]], Path(argv[1]))
        return 0
    if argv and argv[0] == "--combine":
        combine([Path(p) for p in argv[2:]], Path(argv[1]))
        return 0
    if argv and argv[0] == "--coverage-table":
        print(coverage_table(Path(argv[1])))
        return 0
    if argv and argv[0] == "--markdown":
        print(markdown(Path(argv[1])))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    args = parser.parse_args(argv)
    print(compare(read(args.before), read(args.after)))
    print(
        f"\n'-': not run (the defaults refuse that target) or every run failed. Bold: after-coverage outside "
        f"{BAND[0]:.0%}-{BAND[1]:.0%}."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
