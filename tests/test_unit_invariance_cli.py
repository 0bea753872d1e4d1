"""A confounder's unit must not change the answer: the real ``causal`` command on one CSV in two units.

The same rows are written twice, once with ``x1`` multiplied by 0.02 and once by 1,000 (say, thousands of
dollars against cents). Every backdoor estimator is invariant to that in theory, so each estimate must
move by less than 1% of its standard error. One multirun of the ``causal`` command per scaling.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import run_in_process

ESTIMATORS = ("psm", "ipw", "ps_stratification", "aipw", "dml")
SCALES = {"small": 0.02, "large": 1000.0}
#: an estimate may move by at most this share of its SE
TOLERANCE = 0.01


def write_csv(path: Path, scale: float, n: int = 2000, seed: int = 7) -> None:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 3))
    e = 1.0 / (1.0 + np.exp(-(0.2 + x @ np.array([0.8, -0.5, 0.4]))))
    t = (rng.random(n) < e).astype(int)
    y = 1.0 + x @ np.array([1.0, 0.8, -0.6]) + 2.0 * t + rng.standard_normal(n)
    table = np.column_stack([x[:, 0] * scale, x[:, 1:], t, y])
    np.savetxt(
        path, table, fmt=["%.17g"] * 3 + ["%d", "%.17g"], delimiter=",", header="x1,x2,x3,t,y", comments=""
    )


@pytest.fixture(scope="module")
def estimates(tmp_path_factory):
    """``{scaling: {estimator: results.json}}`` from one ``causal run -m`` per scaling."""
    root = tmp_path_factory.mktemp("units")
    out: dict[str, dict[str, dict]] = {}
    for label, scale in SCALES.items():
        csv = root / f"{label}.csv"
        write_csv(csv, scale)
        sweep = root / f"sweep_{label}"
        argv = [
            "run",
            "-m",
            "data=csv",
            f"data.path={csv}",
            "graph=custom",
            "graph.treatment=t",
            "graph.outcome=y",
            "graph.confounders=[x1,x2,x3]",
            "estimator=" + ",".join(ESTIMATORS),
            "refuters=[]",
            "report.enabled=false",
            f"hydra.sweep.dir={sweep}",
        ]
        proc = run_in_process(argv, root)
        assert proc.returncode == 0, proc.stderr[-2000:]
        runs = [json.loads(p.read_text()) for p in sweep.glob("*/results.json")]
        out[label] = {r["estimator"]: r for r in runs}
    return out


def test_every_job_ran_on_the_csv(estimates):
    for label, runs in estimates.items():
        assert sorted(runs) == sorted(ESTIMATORS), label
        for name, result in runs.items():
            assert result["status"] == "ok", (label, name, result["error"])
            assert result["n_rows"] == 2000
            assert sorted(result["adjustment_set"]) == ["x1", "x2", "x3"]


@pytest.mark.parametrize("name", ESTIMATORS)
def test_estimate_does_not_depend_on_the_unit_of_a_confounder(estimates, name):
    small, large = estimates["small"][name], estimates["large"][name]
    se = min(small["std_error"], large["std_error"])
    shift = abs(small["estimate"] - large["estimate"])
    assert shift < TOLERANCE * se, (
        f"{name}: estimate {small['estimate']:.5f} with x1 x 0.02 but {large['estimate']:.5f} with x1 x 1000 "
        f"({shift / se:.3f} SE apart; allowed {TOLERANCE} SE)"
    )
