"""Side-by-side table of two coverage-grid CSVs (before and after a change), markdown.

    python benchmarks/grid_compare.py benchmarks/results/coverage_grid_before.csv \\
        benchmarks/results/coverage_grid_after.csv
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

BAND = (0.93, 0.97)


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


def main(argv=None) -> int:
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
