"""The report's view model and its three renderers, in-process, from run records of real runs.

``tests/fixtures/runs/*.json`` are ``results.json`` files written by real ``causal run`` commands (each
file's ``command`` field says which); one fixture here runs compose + pipeline in-process for a fresh
record. Nothing is hand-written: the expected strings are computed from the record's own numbers.
"""

from __future__ import annotations

import copy
import html
import io
import json
import os
import re
from pathlib import Path

import pytest

from causal_cli.report import markdown, view
from causal_cli.report.text import money

RUNS = Path(__file__).parent / "fixtures" / "runs"
ESTIMATE_RUNS = ["compare", "iv", "uplift"]
ALL_RUNS = ESTIMATE_RUNS + ["ab", "aa", "failed"]


def record(name: str) -> dict:
    return json.loads((RUNS / f"{name}.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def fresh():
    """A run record straight from the pipeline (``RunResult.to_dict()``), as a fresh run hands it to the report."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from causal_cli import pipeline
    from causal_cli.schema import register_configs
    from causal_cli.task import VERSION_BASE, conf_dir
    from causal_cli.validate import validate

    register_configs()
    GlobalHydra.instance().clear()
    overrides = [
        "dgp.n=500",
        "estimator=regression",
        "refuters=[placebo]",
        "refuters.placebo.num_simulations=5",
        "refuters.n_jobs=1",
    ]
    with initialize_config_dir(config_dir=str(conf_dir()), version_base=VERSION_BASE):
        cfg = compose(config_name="config", overrides=overrides)
    GlobalHydra.instance().clear()
    return pipeline.run(validate(cfg), base_dir=os.getcwd()).to_dict()


def console_text(result: dict, run_dir: str | None = None) -> str:
    from rich.console import Console

    from causal_cli.report import console

    buf = io.StringIO()
    saved = console._console
    console._console = Console(file=buf, width=240, highlight=False, soft_wrap=False, color_system=None)
    try:
        console.print_summary(result, run_dir)
    finally:
        console._console = saved
    return buf.getvalue()


def page(result: dict, tables=None) -> str:
    from causal_cli.report.html import render_html

    return render_html(result, {}, tables or {}, "question: why?\n", [])


def headline_numbers(r: dict) -> list[str]:
    units = (r.get("graph") or {}).get("outcome_units", "")
    keys = ("naive_estimate", "estimate", "ci_low", "ci_high", "reference", "bias", "naive_bias")
    numbers = [money(r[k], units) for k in keys if r.get(k) is not None]
    return numbers + [money(c["estimate"], units) for c in r.get("comparisons") or [] if c.get("estimate")]


@pytest.mark.parametrize("name", ALL_RUNS)
def test_every_stored_record_builds_a_view(name):
    r = record(name)
    run = view.build(r)
    assert run.status == r["status"] and run.ok is (r["status"] == "ok")
    assert (run.headline is not None) is (name in ESTIMATE_RUNS)
    assert (run.experiment is not None) is bool(r.get("experiment"))
    assert (run.heterogeneity is not None) is bool(r.get("heterogeneity"))
    assert (run.refutations is not None) is bool(r.get("refutations"))
    if not run.ok:
        assert run.error == r["error"] and run.headline is None


@pytest.mark.parametrize("name", ESTIMATE_RUNS)
def test_headline_formats_the_records_numbers(name):
    r = record(name)
    units = r["graph"]["outcome_units"]
    h = view.build(r).headline
    naive, main, *compared = h.rows
    assert (naive.estimate, naive.bias) == (money(r["naive_estimate"], units), money(r["naive_bias"], units))
    assert main.main and main.estimate == money(r["estimate"], units)
    assert main.ci == f"[{money(r['ci_low'], units)}, {money(r['ci_high'], units)}]"
    assert main.std_error == money(r["std_error"], units)
    assert h.reference == money(r["reference"], units)
    assert [c.estimate for c in compared] == [money(c["estimate"], units) for c in r["comparisons"]]
    assert h.naive_sentence.parts[1] == (f"{abs(r['naive_overstatement_pct']):.1f}%", True)
    verb = "covers" if r["ci_covers_reference"] else "does not cover"
    assert h.coverage.plain.startswith(f"The {round(100 * r['ci_level'])}% CI {verb} the ")


def test_refutation_rows_carry_verdict_rule_and_p_value():
    r = record("compare")
    refs = view.build(r).refutations
    assert (refs.passed, refs.judged) == (r["refutations_passed"], r["refutations_with_verdict"])
    assert f"survived {refs.passed} of {refs.judged}" in refs.closing.plain
    for row, x in zip(refs.rows, r["refutations"]):
        assert row.rule == x["rule"] and row.rule, f"{x['name']} has a rule"
        assert row.verdict == {True: "pass", False: "FAIL", None: "info"}[x["passed"]]
        assert row.p_value == ("—" if x["p_value"] is None else f"{x['p_value']:.3g}")
        assert row.new_effect == money(x["new_effect"], "$")
    grid = refs.grids[0]  # the unobserved_common_cause refuter's sensitivity grid
    table = next(x["table"] for x in r["refutations"] if x.get("table"))
    cells = [text for row in grid.rows for text, _ in row.cells if text]
    assert len(cells) == len({(t["r2_treatment"], t["r2_outcome"]) for t in table if "r2_outcome" in t})


@pytest.mark.parametrize("name", ESTIMATE_RUNS)
def test_console_markdown_and_html_agree_on_the_headline(name):
    r = record(name)
    text, md, pg = console_text(r), markdown.summary_markdown(r), page(r)
    for number in headline_numbers(r):
        assert number in text and number in md and html.escape(number) in pg, number
    pct = f"{abs(r['naive_overstatement_pct']):.1f}%"
    assert pct in text and f"**{pct}**" in md and f"<b>{pct}</b>" in pg


def test_a_fresh_pipeline_record_renders_the_same_numbers_everywhere(fresh):
    run = view.build(fresh)
    assert (
        run.headline.estimator == "regression"
        and run.refutations.rows[0].rule == fresh["refutations"][0]["rule"]
    )
    text, md, pg = console_text(fresh), markdown.summary_markdown(fresh), page(fresh)
    for number in headline_numbers(fresh):
        assert number in text and number in md and number in pg, number
    assert html.escape(fresh["refutations"][0]["rule"]) in pg


def test_html_shows_every_refuters_rule():
    r = record("compare")
    pg = page(r)
    for x in r["refutations"]:
        assert f"rule: {html.escape(x['rule'])}" in pg, x["name"]


HOSTILE = "<script>alert(1)</script>"


def test_values_from_data_cannot_inject_markup():
    r = copy.deepcopy(record("compare"))
    r["treatment"] = HOSTILE
    r["adjustment_set"] = [HOSTILE, *r["adjustment_set"][1:]]
    r["diagnostics"]["balance"][0]["covariate"] = HOSTILE
    r["refutations"][0]["reason"] = f'reason <img src=x onerror="alert(2)"> {HOSTILE}'
    r["refutations"][0]["rule"] = HOSTILE
    r["notes"] = [HOSTILE]
    r["comparisons"][0].update(estimate=None, error=HOSTILE)
    pg = page(r, {"sensitivity": [{"refuter": "x", HOSTILE: "1"}, {"refuter": "y", HOSTILE: "2"}]})
    assert "<script" not in pg and "<img" not in pg and 'onerror="' not in pg
    assert pg.count(html.escape(HOSTILE)) >= 7
    assert re.search(r"<title>Effect of &lt;script&gt;alert\(1\)&lt;/script&gt; on spend</title>", pg)


def test_markdown_tables_keep_their_columns_whatever_the_text():
    r = copy.deepcopy(record("compare"))
    r["refutations"][0]["reason"] = "a | b\nc"
    md = markdown.summary_markdown(r)
    row = next(line for line in md.splitlines() if line.startswith(f"| {r['refutations'][0]['name']} |"))
    header = next(line for line in md.splitlines() if line.startswith("| refuter |"))

    def cells(line):
        return len(re.findall(r"(?<!\\)\|", line))

    assert cells(row) == cells(header) and "a \\| b c" in row


@pytest.mark.parametrize("name", ["ab", "aa"])
def test_experiment_renders_the_same_rows_everywhere(name):
    r = record(name)
    e = view.build(r).experiment
    text, md, pg = console_text(r), markdown.summary_markdown(r), page(r)
    assert e.primary in text and e.primary in md and html.escape(e.primary) in pg
    lift = r["experiment"]["metrics"][0]["relative_lift"]["value"]
    assert f"{100 * lift:+.2f}%" in e.primary
    for cells, _ in e.metric_rows:
        assert cells[4] in text and cells[4] in md and html.escape(cells[4]) in pg
    assert bool(e.aa_rows) is bool(r["experiment"].get("aa"))
    for row in e.aa_rows:
        assert " | ".join(row) in md


def test_heterogeneity_segments_everywhere():
    r = record("uplift")
    het = view.build(r).heterogeneity
    text, md, pg = console_text(r), markdown.summary_markdown(r), page(r)
    segments = [row for seg in r["heterogeneity"]["segments"] for row in seg["segments"]]
    assert sum(len(seg.rows) for seg in het.segments) == len(segments)
    for row in segments:
        effect = money(row["effect"], "$")
        assert effect in text and effect in md and effect in pg
    flat = " ".join(text.split())
    for line in het.summary:
        assert line in md and " ".join(line.split()) in flat and html.escape(line) in pg


def test_a_failed_run_renders_its_status_and_error():
    r = record("failed")
    md, pg = markdown.summary_markdown(r), page(r)
    assert md.startswith("# Run failed") and r["error"] in md
    assert f"<b>Run failed:</b> {html.escape(r['error'])}" in pg


def test_scorecard_view_from_a_real_sweep_folder(tmp_path):
    """Job folders holding the stored run records, read by the sweep's own aggregation."""
    from causal_cli import sweep
    from causal_cli.report import scorecard

    for i, name in enumerate(["compare", "iv", "failed"]):
        job = tmp_path / f"{i}_run={name}"
        (job / ".hydra").mkdir(parents=True)
        (job / "results.json").write_text((RUNS / f"{name}.json").read_text())
        (job / ".hydra" / "overrides.yaml").write_text(f"- run={name}\n")
    card = sweep.scorecard(tmp_path)
    failed = [(job.folder.name, job.error) for job in card.failed]
    v = scorecard.build(
        card.rows,
        card.settings,
        card.replications,
        card.fixed,
        card.units,
        failed,
        len(card.jobs),
        "x",
        [],
        [],
    )
    assert v.title == "Sweep scorecard: 3 jobs, 1 failed" and v.failed == failed
    assert len(v.rows) == len(card.rows) and v.columns[0] == "estimator"
    column = v.columns.index("mean estimate")
    for row, shown in zip(card.rows, v.rows):
        assert shown.values[column] == money(row["mean_estimate"], "$")
        assert shown.best is bool(row.get("best")) and shown.values[0].endswith(row["estimator"])


def test_progress_object_reports_notices_without_bars():
    """What the api passes down to simulations (add/advance), and the one-line heads-up they may print."""
    from rich.console import Console

    from causal_cli.report import console

    buf = io.StringIO()
    saved = console._console
    console._console = Console(file=buf, width=200, highlight=False, color_system=None)
    try:
        with console.progress(bars=False) as bar:
            task = bar.add("placebo", total=3)
            bar.advance(task, 3)
            console.notice("placebo: 3 simulations projected to take about 2 h")
    finally:
        console._console = saved
    assert bar.progress.tasks[0].completed == 3
    assert buf.getvalue() == "note: placebo: 3 simulations projected to take about 2 h\n"
