"""``report.html``: one self-contained page per run (images base64-embedded, inline CSS, no links).

Everything comes from the run folder (``results.json``, the CSVs beside it, ``config.yaml``), so
``causal report RUN_DIR`` rebuilds the same page later. The page is the Jinja2 template
``templates/report.html.j2`` rendered from the run's view model (:mod:`causal_cli.report.view`) with
autoescaping on: no value from a data file or config can inject markup. Module import is light.
"""

from __future__ import annotations

import base64
import csv
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from causal_cli.report import view as views
from causal_cli.report.heterogeneity import IMAGES as HETEROGENEITY_IMAGES

#: tables saved beside results.json that the pictures are redrawn from
TABLES = ("balance", "overlap", "refutation_simulations", "sensitivity")
IMAGES = {
    "graph.png": "Declared causal graph",
    "love_plot.png": "Covariate balance before and after adjustment",
    "overlap.png": "Propensity score distribution by group",
    "refutations.png": "Refuter simulations against the original estimate",
    "sensitivity.png": "Sensitivity to an unobserved common cause",
    **HETEROGENEITY_IMAGES,
}
#: rows of sensitivity.csv shown in the page (all of them are in the file)
SENSITIVITY_ROWS_SHOWN = 40

CSS = """
body { font-family: -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: #222;
       background: #f6f7f9; margin: 0; line-height: 1.45; }
main { max-width: 1080px; margin: 0 auto; padding: 24px 32px 48px; background: #fff; }
h1 { font-size: 1.7em; margin: 0.2em 0 0.1em; }
h2 { font-size: 1.25em; margin-top: 1.8em; padding-bottom: 4px; border-bottom: 2px solid #e3e6ea; }
h3 { font-size: 1.05em; margin: 1.2em 0 0.4em; }
.question { font-size: 1.15em; color: #333; margin: 0.3em 0 0.8em; }
.meta { color: #555; font-size: 0.9em; }
.meta code, td code { background: #f0f2f5; padding: 1px 4px; border-radius: 3px; }
table { border-collapse: collapse; margin: 0.6em 0 1em; font-size: 0.92em; }
th, td { padding: 5px 10px; border-bottom: 1px solid #e3e6ea; text-align: left; vertical-align: top; }
th { background: #f0f2f5; font-weight: 600; }
td:first-child { white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.main td { font-weight: 600; background: #fff8e6; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 0.85em; font-weight: 600; }
.pass { background: #d9f2e1; color: #1b7837; } .fail { background: #fadbd8; color: #b2182b; }
.info { background: #e1ecf7; color: #205493; }
.flag { color: #b2182b; font-weight: 600; }
.rule { display: inline-block; margin-top: 2px; }
.warning { background: #fff4e5; border-left: 5px solid #e69f00; padding: 8px 14px; margin: 0.8em 0; }
.note { background: #f0f2f5; border-left: 5px solid #999; padding: 6px 14px; margin: 0.5em 0; }
.scroll { overflow-x: auto; max-width: 100%; }
figure { margin: 0.8em 0 1.2em; }
figure img { max-width: 100%; height: auto; border: 1px solid #e3e6ea; }
figcaption { color: #666; font-size: 0.85em; }
pre { background: #f6f8fa; border: 1px solid #e3e6ea; padding: 10px 14px; overflow-x: auto; font-size: 0.82em; }
.summary { font-size: 1.02em; }
.software { display: flex; flex-wrap: wrap; gap: 6px 10px; font-size: 0.9em; }
.software span { background: #f0f2f5; border-radius: 4px; padding: 2px 8px; }
footer { color: #888; font-size: 0.8em; margin-top: 2.5em; }
"""


def software_versions(result: dict[str, Any]) -> dict[str, str]:
    """Versions recorded in the run's provenance (those of this installation for older folders)."""
    return views.software_versions(result)


def load_tables(run_dir: Path) -> dict[str, list[dict[str, str]]]:
    tables = {}
    for name in TABLES:
        path = Path(run_dir) / f"{name}.csv"
        if path.is_file():
            with path.open(encoding="utf-8", newline="") as fh:
                tables[name] = list(csv.DictReader(fh))
    return tables


def render_run_dir(run_dir: Path, payload: dict[str, Any] | None = None) -> tuple[Path, list[str]]:
    """Draw the pictures and write ``report.html`` in ``run_dir``; returns its path and any problems."""
    from causal_cli.report import plots
    from causal_cli.report.files import atomic_write

    run_dir = Path(run_dir)
    if payload is None:
        payload = json.loads((run_dir / "results.json").read_text(encoding="utf-8"))
    tables = load_tables(run_dir)
    written, problems = plots.render_all(run_dir, payload, tables)
    images = {name: (run_dir / name).read_bytes() for name in IMAGES if name in written}
    config_path = run_dir / "config.yaml"
    config_text = config_path.read_text(encoding="utf-8") if config_path.is_file() else ""
    page = render_html(payload, images, tables, config_text, problems)
    path = run_dir / "report.html"
    atomic_write(path, page)
    return path, problems


@dataclass
class Figure:
    caption: str
    data: str


@dataclass
class TableView:
    columns: list[str]
    rows: list[list[str]]
    numeric: set[int]
    total: int


@dataclass
class Page:
    """What the HTML page shows beyond the run's view model: pictures, the saved tables, the config."""

    title: str
    question: str
    css: str
    identified_by: str
    identified_names: str
    unobserved: str
    metric_classes: list[str]
    sensitivity_table: TableView | None
    notes: list[str]
    config_text: str
    generated: str
    heterogeneity_images: list[str] = field(default_factory=lambda: list(HETEROGENEITY_IMAGES))


def sensitivity_table(rows: list[dict[str, Any]]) -> TableView | None:
    """The first rows of ``sensitivity.csv`` (a column constant over all rows is dropped, but for the refuter's)."""
    from causal_cli.report.plots import is_number

    if not rows:
        return None
    cols = [c for c in rows[0] if len({row.get(c) for row in rows}) > 1 or c != "refuter"]
    shown = rows[:SENSITIVITY_ROWS_SHOWN]
    numeric = {i for i, c in enumerate(cols) if all(is_number(row.get(c)) for row in shown)}
    return TableView(cols, [[views.num(row.get(c), 4) for c in cols] for row in shown], numeric, len(rows))


def page(
    r: dict[str, Any], run: views.RunView, tables: dict[str, list[dict]], config_text: str, problems
) -> Page:
    how, names = views.identification(r)
    experiment = run.experiment
    notes = list(run.notes) + [p for p in problems if p not in run.notes]
    return Page(
        title=run.title,
        question=_question(config_text),
        css=CSS,
        identified_by=how,
        identified_names=names,
        unobserved=", ".join((r.get("graph") or {}).get("unobserved") or []),
        metric_classes=["main" if s else "" for _, s in experiment.metric_rows] if experiment else [],
        sensitivity_table=sensitivity_table(tables.get("sensitivity") or []),
        notes=notes,
        config_text=config_text,
        generated=time.strftime("%Y-%m-%d %H:%M:%S"),
    )


def render_html(
    r: dict[str, Any],
    images: dict[str, bytes],
    tables: dict[str, list[dict]],
    config_text: str,
    problems: list[str] = (),
) -> str:
    """The whole page, from a run record (``results.json``), its pictures, saved tables and config text."""
    from causal_cli.report.templating import render

    run = views.build(r, software=True)
    figures = {
        name: Figure(IMAGES[name], base64.b64encode(data).decode("ascii"))
        for name, data in images.items()
        if name in IMAGES
    }
    return render(
        "report.html.j2",
        run=run,
        h=run.headline,
        page=page(r, run, tables, config_text, problems),
        figures=figures,
    )


def _question(config_text: str) -> str:
    import yaml

    try:
        return str((yaml.safe_load(config_text) or {}).get("question") or "")
    except yaml.YAMLError:
        return ""
