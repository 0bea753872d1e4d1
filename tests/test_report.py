"""End to end: a real ``causal run`` writes the pictures, balance tables and a self-contained report.html."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
from html import escape
from pathlib import Path

import pytest

from tests.conftest import FAST, REPO, causal_executable, read_results

PICTURES = ["graph.png", "overlap.png", "love_plot.png", "refutations.png"]
TABLES = ["balance.csv", "overlap.csv", "refutation_simulations.csv"]


def causal(*args, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        causal_executable() + list(args), cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env
    )


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    """One default study (FAST settings), shared by the tests of this module."""
    base = tmp_path_factory.mktemp("report")
    proc = causal("run", *FAST, f"hydra.run.dir={base / 'run'}", cwd=base)
    assert proc.returncode == 0, proc.stderr
    return proc, base / "run"


def money(value: float) -> str:
    """The report's dollar format (the console's)."""
    return f"{'-' if value < 0 else ''}${abs(value):,.2f}"


def check_picture(path: Path) -> None:
    from matplotlib.image import imread

    pixels = imread(path)
    height, width = pixels.shape[:2]
    assert 300 <= width <= 2500 and 200 <= height <= 2500, f"{path.name} is {width}x{height}"
    assert pixels[..., :3].std() > 0.05, f"{path.name} looks blank"


def check_self_contained(page: str) -> int:
    """Only embedded resources: every src is a data: PNG, no href/url()/external script or stylesheet."""
    sources = re.findall(r"""\bsrc\s*=\s*["']([^"']*)["']""", page, flags=re.I)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    for source in sources:
        assert base64.b64decode(source.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert not re.search(r"\bhref\s*=", page, flags=re.I)
    assert not re.search(r"url\s*\(", page, flags=re.I)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page, flags=re.I)
    assert "<link" not in page.lower() and "@import" not in page
    return len(sources)


def check_headline(page: str, result: dict) -> None:
    for key in ("naive_estimate", "estimate", "ci_low", "ci_high", "reference"):
        if result.get(key) is not None:
            assert money(result[key]) in page, f"{key} {money(result[key])} not in report.html"
    for row in result.get("comparisons") or []:
        if row.get("estimate") is not None:
            assert money(row["estimate"]) in page


def test_default_run_writes_report_pictures_and_tables(default_run):
    proc, run_dir = default_run
    for name in PICTURES + TABLES + ["report.html"]:
        assert (run_dir / name).is_file(), f"{name} missing"
    assert not (run_dir / "sensitivity.png").exists(), "no sensitivity refuter ran"
    for name in PICTURES:
        check_picture(run_dir / name)
    result = read_results(run_dir)
    assert result["status"] == "ok"
    assert result["report_html"] == str(run_dir / "report.html")
    assert f"Report: {run_dir / 'report.html'}" in proc.stdout
    # results.json says the run is complete, so it is written after everything else
    last = max((p for p in run_dir.iterdir() if p.is_file()), key=lambda p: p.stat().st_mtime_ns)
    assert last.stat().st_mtime_ns == (run_dir / "results.json").stat().st_mtime_ns


def test_results_json_and_balance_csv_agree(default_run):
    _, run_dir = default_run
    result = read_results(run_dir)
    diag = result["diagnostics"]
    assert diag["adjustment"] == "matching"
    assert result["max_abs_smd_before"] == max(abs(b["smd_before"]) for b in diag["balance"])
    assert result["max_abs_smd_after"] < 0.1 < result["max_abs_smd_before"], (
        "PSM must balance the default study"
    )
    assert result["overlap_share_outside"] == diag["overlap"]["share_outside"]
    assert diag["weights"]["control"]["ess"] > 0
    import csv

    with (run_dir / "balance.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [r["covariate"] for r in rows] == result["adjustment_set"]
    for row, b in zip(rows, diag["balance"]):
        assert float(row["smd_after"]) == pytest.approx(b["smd_after"], rel=1e-12)
    with (run_dir / "refutation_simulations.csv").open() as fh:
        sims = list(csv.DictReader(fh))
    counts = {r["name"]: r["num_simulations"] for r in result["refutations"]}
    assert {n: sum(1 for s in sims if s["refuter"] == n) for n in counts} == counts


def test_report_html_is_self_contained_and_shows_the_headline(default_run):
    _, run_dir = default_run
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    result = read_results(run_dir)
    assert check_self_contained(page) == len(PICTURES)
    check_headline(page, result)
    assert "Did using the new feature raise spend per user?" in page
    assert f"{result['max_abs_smd_before']:.3g}" in page and f"{result['max_abs_smd_after']:.3g}" in page
    for r in result["refutations"]:
        assert r["name"] in page and escape(r["reason"]) in page
        assert r["rule"] and f"rule: {escape(r['rule'])}" in page, f"{r['name']}'s verdict rule is shown"
    assert "backdoor_method: auto" in page, "the composed config is shown"
    block = result["sensitivity"]  # the closed-form sensitivity: in report.html and summary.md
    assert "Sensitivity to an unobserved confounder" in page and f"{block['robustness_value']:.2%}" in page
    summary = (run_dir / "summary.md").read_text(encoding="utf-8")
    assert (
        "## Sensitivity to an unobserved confounder" in summary and "not the absence of unobserved" in summary
    )
    assert "dowhy" in page and result["provenance"]["packages"]["numpy"] in page


def test_causal_report_redraws_from_the_saved_files(default_run, tmp_path):
    _, run_dir = default_run
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    results_before = (copy / "results.json").read_bytes()
    for name in PICTURES + ["report.html"]:
        (copy / name).unlink()
    proc = causal("report", str(copy), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(copy / "report.html")
    for name in PICTURES:
        check_picture(copy / name)
        # the same inputs give the same bytes, drawn again or copied from the picture cache
        assert (copy / name).read_bytes() == (run_dir / name).read_bytes(), name
    page = (copy / "report.html").read_text(encoding="utf-8")
    check_self_contained(page)
    check_headline(page, read_results(copy))
    assert (copy / "results.json").read_bytes() == results_before


def test_a_broken_table_costs_one_picture_not_the_report(default_run, tmp_path):
    """In-process (``causal report`` prints each of these problems on stderr)."""
    from causal_cli.report.html import render_run_dir

    _, run_dir = default_run
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    (copy / "overlap.csv").write_text("something,else\n1,2\n")
    path, problems = render_run_dir(copy)
    assert any(p.startswith("overlap.png not drawn: KeyError") for p in problems), problems
    assert not (copy / "overlap.png").exists()
    page = path.read_text(encoding="utf-8")
    assert "overlap.png not drawn" in page and check_self_contained(page) == len(PICTURES) - 1


def test_sensitivity_grid_is_drawn_from_sensitivity_csv(default_run, tmp_path):
    """The sensitivity refuter's grid (columns as it writes them) becomes sensitivity.png."""
    _, run_dir = default_run
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    lines = ["refuter,r2_treatment,r2_outcome,new_effect,new_effect_sd,explains_away"]
    for a in (0.01, 0.1, 0.3):
        for b in (0.01, 0.1, 0.3):
            lines.append(f"unobserved_common_cause,{a},{b},{10 - 40 * a * b},0.1,{10 - 40 * a * b < 0}")
    (copy / "sensitivity.csv").write_text("\n".join(lines) + "\n")
    from causal_cli.report.html import render_run_dir

    _, problems = render_run_dir(copy)  # in-process: the command is tested above
    assert not problems
    check_picture(copy / "sensitivity.png")
    assert check_self_contained((copy / "report.html").read_text(encoding="utf-8")) == len(PICTURES) + 1


def test_causal_report_refuses_a_folder_without_a_finished_run(tmp_path):
    proc = causal("report", str(tmp_path), cwd=tmp_path)
    assert proc.returncode == 1
    assert (
        proc.stderr.strip()
        == f"causal: usage error: {tmp_path}: no results.json; pass a run folder written by causal run"
    )
    (tmp_path / "results.json").write_text(json.dumps({"status": "failed"}))
    proc = causal("report", str(tmp_path), cwd=tmp_path)
    assert proc.returncode == 1 and "status is 'failed'" in proc.stderr


def test_report_disabled_skips_pictures_and_html(tmp_path):
    proc = causal(
        "run", *FAST, "report.enabled=false", "dgp.n=2000", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    run_dir = tmp_path / "run"
    assert not list(run_dir.glob("*.png")) and not (run_dir / "report.html").exists()
    assert all((run_dir / name).is_file() for name in TABLES)
    result = read_results(run_dir)
    assert "report_html" not in result and "Report:" not in proc.stdout
    assert result["diagnostics"]["balance"], "diagnostics are computed even without the report"


def test_lalonde_study_report(tmp_path):
    if not (REPO / "experiments" / "lalonde_cps.yaml").is_file():
        pytest.skip("experiments/lalonde_cps.yaml is not in this checkout")
    pytest.importorskip("causaldata", reason="the Lalonde study reads its data from the causaldata package")
    fast = [
        "refuters.placebo.num_simulations=10",
        "refuters.random_common_cause.num_simulations=5",
        "refuters.n_jobs=1",
    ]
    proc = causal("run", "experiment=lalonde_cps", *fast, f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    run_dir = tmp_path / "run"
    for name in PICTURES:
        check_picture(run_dir / name)
    result = read_results(run_dir)
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    assert check_self_contained(page) == len(PICTURES)
    check_headline(page, result)
    assert len(result["diagnostics"]["balance"]) >= 8, "every Lalonde confounder has a balance row"
    assert "experimental benchmark" in page
