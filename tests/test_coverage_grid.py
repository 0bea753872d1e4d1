"""Smoke test of the coverage grid (benchmarks/coverage_grid.py --quick) and checks of its data shapes."""

from __future__ import annotations

import csv
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def load(name: str):
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def grid_dgps():
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        yield load("grid_dgps")
    finally:
        sys.path.remove(str(REPO / "benchmarks"))


def test_quick_grid_writes_one_row_per_cell_estimator_and_target(tmp_path, capsys):
    coverage = load("coverage_grid")
    out = tmp_path / "grid.csv"
    argv = [
        "--quick",
        "--jobs",
        "1",
        "--cells",
        "baseline",
        "heterogeneous",
        "--estimators",
        "regression",
        "ipw",
    ]
    assert coverage.main([*argv, "--out", str(out), "--markdown", str(tmp_path / "grid.md")]) == 0
    rows = list(csv.DictReader(out.open()))
    # regression's defaults refuse att (constant effect) on main; whichever targets ran, both cells have them
    keys = {(r["cell"], r["estimator"], r["target"]) for r in rows}
    assert {("baseline", "ipw", "ate"), ("baseline", "ipw", "att"), ("baseline", "regression", "ate")} <= keys
    assert {(e, t) for c, e, t in keys if c == "heterogeneous"} == {
        (e, t) for c, e, t in keys if c == "baseline"
    }
    by_key = {(r["cell"], r["estimator"], r["target"]): r for r in rows}
    for row in rows:
        assert int(row["reps"]) + int(row["failed"]) == 3
        assert 0.0 <= float(row["coverage"]) <= 1.0
        assert float(row["width"]) > 0 and float(row["rmse"]) >= abs(float(row["bias"]))
    baseline = by_key[("baseline", "regression", "ate")]
    # correctly specified OLS: close to the truth 2 even at n = 400, and exactly unit-free
    assert float(baseline["truth"]) == 2.0
    assert abs(float(baseline["bias"])) < 0.3
    assert float(baseline["unit_shift"]) < 1e-6
    hetero = by_key[("heterogeneous", "ipw", "att")]
    assert float(hetero["truth"]) > float(by_key[("heterogeneous", "ipw", "ate")]["truth"]) + 0.5
    text = capsys.readouterr().out
    assert "| baseline | regression | ate | 3 |" in text
    assert (tmp_path / "grid.md").read_text().strip() == text.strip()
    # before/after table: one line per row of either file, both values side by side
    compare = load("grid_compare")
    after = compare.read(out)
    after[("baseline", "regression", "ate")]["coverage"] = "0.5"
    side_by_side = compare.compare(compare.read(out), after).splitlines()
    assert len(side_by_side) == 2 + len(rows)
    cov = f"{float(baseline['coverage']):.1%}"
    assert f"| {cov} | **50.0%** |" in next(
        line for line in side_by_side if "| baseline | regression | ate |" in line
    )


def test_heterogeneous_truth_matches_its_closed_form_ate_and_a_simulated_att(grid_dgps):
    cell = grid_dgps.CELLS["heterogeneous"]
    truth = grid_dgps.population_truth(cell, draws=400_000)
    assert truth["ate_simulated"] == pytest.approx(truth["ate"], abs=0.02)
    draw = cell.simulate(400_000, np.random.default_rng(3))
    assert draw.tau[draw.t == 1].mean() == pytest.approx(truth["att"], abs=0.02)
    assert truth["att"] - truth["ate"] > 0.5


def test_cells_have_the_shapes_they_promise(grid_dgps):
    cells = grid_dgps.CELLS
    assert 0.10 <= grid_dgps.share_outside(cells["limited_overlap"]) <= 0.15
    assert grid_dgps.share_outside(cells["baseline"]) < 0.02
    rng = np.random.default_rng(0)
    many = cells["many_covariates"].simulate(5000, rng)
    assert many.X.shape == (5000, 20)
    # the last 8 covariates are irrelevant: uncorrelated with treatment and outcome
    for j in range(12, 20):
        assert abs(np.corrcoef(many.X[:, j], many.t)[0, 1]) < 0.05
        assert abs(np.corrcoef(many.X[:, j], many.y)[0, 1]) < 0.05
    mixed = cells["mixed_scales"].simulate(20_000, rng)
    sd = mixed.X.std(axis=0)
    assert sd[0] == pytest.approx(20_000, rel=0.05) and sd[1] == pytest.approx(0.16, rel=0.05)
    assert np.all(mixed.X[:, 2] == np.round(mixed.X[:, 2]))
    for draw in (many, mixed):
        assert set(np.unique(draw.t)) == {0.0, 1.0}
        assert np.all((draw.e > 0) & (draw.e < 1))


def test_pooling_disjoint_replications_equals_summarising_them_together():
    """grid_compare.py --combine: two runs of disjoint replications pool to the summary of all of them."""
    coverage = load("coverage_grid")
    compare = load("grid_compare")
    rng = np.random.default_rng(3)
    rows = []
    for rep in range(40):
        est = 2.0 + 0.1 * rng.standard_normal()
        se = 0.1 * (1 + 0.2 * rng.random())
        rows.append(
            {
                "cell": "baseline",
                "label": "ipw",
                "target": "ate",
                "rep": rep,
                "n": 100,
                "truth_sample": 2.0 + 0.01 * rng.standard_normal(),
                "estimate": est,
                "std_error": se,
                "ci_low": est - 1.96 * se,
                "ci_high": est + 1.96 * se,
                "ci_method": "analytic",
                "seconds": rng.random(),
            }
        )
    jobs = [{"label": "ipw", "target": "ate", "cells": None}]
    truths = {"baseline": {"ate": 2.0}}

    def as_csv_row(table):
        (row,) = table
        return {k: (f"{v:.17g}" if isinstance(v, float) else str(v)) for k, v in row.items()}

    whole = coverage.summarize(rows, jobs, ["baseline"], truths)[0]
    parts = [
        as_csv_row(coverage.summarize(chunk, jobs, ["baseline"], truths)) for chunk in (rows[:15], rows[15:])
    ]
    pooled = compare.pool(parts)
    assert pooled["reps"] == 40
    for key in ("bias", "rmse", "coverage", "width", "mean_se", "sd", "se_sd", "fit_ms"):
        assert float(pooled[key]) == pytest.approx(whole[key], rel=1e-9), key


def test_nonlinear_cell_has_its_closed_form_ate_and_its_noise_is_y_minus_m_minus_t_tau(grid_dgps):
    cell = grid_dgps.CELLS["nonlinear"]
    truth = grid_dgps.population_truth(cell, draws=400_000)
    assert truth["ate"] == 2.5
    assert truth["ate_simulated"] == pytest.approx(2.5, abs=0.01)
    assert truth["att"] > truth["ate"] + 0.2
    draw = cell.simulate(50_000, np.random.default_rng(1))
    noise = draw.y - draw.m - draw.t * draw.tau
    assert noise.std() == pytest.approx(1.0, abs=0.02)
    for j in range(3):
        assert abs(np.corrcoef(noise, draw.X[:, j])[0, 1]) < 0.02
    # the untreated outcome is nonlinear in the confounders: a linear fit leaves most of its signal
    design = np.column_stack([np.ones(len(draw.m)), draw.X])
    resid = draw.m - design @ np.linalg.lstsq(design, draw.m, rcond=None)[0]
    assert resid.var() > 0.5 * draw.m.var()
