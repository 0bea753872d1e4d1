"""Kang-Schafer cell, aipw with boosted nuisances: folds, repeated splits, a regularised propensity, clipping.

Diagnosis for issue #13 (not a test). Each replication is the coverage grid's own data set (replication r
of the misspecified cell draws from ``SeedSequence(2026, spawn_key=(1, r))`` like benchmarks/coverage_grid.py),
and the first fold split is the one ``aipw`` draws with ``random_state`` = the grid's fit seed, so the
``F2 s0`` rows are exactly aipw with ``folds=2 n_rep=1`` (the grid's ``aipw_hgb`` until s5, now
``aipw_hgb_folds2``) and the ``F5 s0`` rows exactly aipw with ``folds=5 n_rep=1``. Per replication the nuisances are cross-fitted once per (folds, split, model) and every
combination is scored on them:

- folds 2 (one split) and 5 (three independent splits: ``s0`` the first, ``med3`` the median over the
  three with the variance ``median(se^2 + (theta_s - theta)^2)``, Chernozhukov et al. 2018, def. 3.3,
  as ``dml``'s ``n_rep``);
- propensity ``P0``: HistGradientBoostingClassifier with early stopping (the grid's), ``P1``: the same
  regularised (min_samples_leaf 100, learning rate 0.05, l2 1.0);
- outcome ``O0``: HistGradientBoostingRegressor with early stopping (the grid's), one per arm;
- scores unclipped (``c0.0``) and clipped to [0.025, 0.975] (``c0.025``).

The ``F5 med3`` rows are exactly aipw's default with scikit-learn models since s5 (5 folds, the median over
3 splits; split r >= 1 seeds folds and models from stream 100 + r of the fit seed).

    python benchmarks/kang_schafer_crossfit.py run FIRST REPS > ks.jsonl    # one JSON line per replication
    python benchmarks/kang_schafer_crossfit.py run FIRST REPS default       # only P0, O0, 5 folds x 3 splits
    python benchmarks/kang_schafer_crossfit.py summarize ks.jsonl [more.jsonl ...]   # bias, SD, RMSE, coverage
    python benchmarks/kang_schafer_crossfit.py csv OUT.csv ks.jsonl [more.jsonl ...]  # coverage-grid rows

``csv`` writes benchmarks/coverage_grid.py's summary rows (same columns, for grid_compare.py) for ``aipw_hgb``
(the new default, ``P0O0_F5_c0.0 med3``) and, where the files have it, ``aipw_hgb_folds2`` (``P0O0_F2_c0.0
s0``); CIs are estimate +- 1.96 SE as aipw's analytic CI, ms/fit is the CPU time of the fits.
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from grid_dgps import CELLS  # noqa: E402

from causal_cli.estimators.base import EstimationData  # noqa: E402
from causal_cli.estimators.outcome import (  # noqa: E402
    cross_fit_outcome,
    cross_fit_propensity,
    efficient_score,
    fold_ids,
    fold_rows,
    seed_sequence,
)

SEED, CELL_INDEX, TRUTH = 2026, list(CELLS).index("misspecified"), 10.0
HGB = "sklearn.ensemble.HistGradientBoosting"
PROPENSITY = {
    "P0": {"_target_": HGB + "Classifier", "early_stopping": True},
    "P1": {
        "_target_": HGB + "Classifier",
        "early_stopping": True,
        "min_samples_leaf": 100,
        "learning_rate": 0.05,
        "l2_regularization": 1.0,
    },
}
OUTCOME = {"O0": {"_target_": HGB + "Regressor", "early_stopping": True}}
#: folds -> independent splits
PLAN = {2: 1, 5: 3}
CLIPS = (0.0, 0.025)


def replication(rep: int, plan=None, propensity=None) -> dict:
    plan, propensity = plan or PLAN, propensity or PROPENSITY
    data_seed, fit_seed = np.random.SeedSequence(SEED, spawn_key=(CELL_INDEX, rep)).spawn(2)
    d = CELLS["misspecified"].simulate(CELLS["misspecified"].n, np.random.default_rng(data_seed))
    data = EstimationData(t=d.t.copy(), y=d.y.copy(), X=d.X.copy(), covariates=d.names)
    rec = {"rep": rep, "emin": float(d.e.min()), "emax": float(d.e.max())}
    for folds, n_split in plan.items():
        for s in range(n_split):
            seed = fit_seed if s == 0 else seed_sequence(fit_seed, 100 + s)
            splits = fold_rows(fold_ids(data.t, folds, seed))
            scores, outcomes = {}, {}
            for key, spec in propensity.items():
                cpu = time.process_time()
                scores[key] = cross_fit_propensity(data, splits, spec, 1.0, None, seed)[0]
                rec[f"cpu_{key}_{folds}_{s}"] = time.process_time() - cpu
            for key, spec in OUTCOME.items():
                cpu = time.process_time()
                mu1, mu0 = outcomes[key] = cross_fit_outcome(data, splits, spec, seed, by_arm=True)
                rec[f"cpu_{key}_{folds}_{s}"] = time.process_time() - cpu
                residual = data.y - np.where(data.t == 1, mu1, mu0)
                rec[f"rmse_{key}_{folds}_{s}"] = float(np.sqrt(np.mean(residual**2)))
            for pk, e in scores.items():
                rec[f"emin_{pk}_{folds}_{s}"], rec[f"emax_{pk}_{folds}_{s}"] = float(e.min()), float(e.max())
                for ok, (mu1, mu0) in outcomes.items():
                    for clip in CLIPS:
                        clipped = np.clip(e, clip, 1 - clip) if clip else e
                        for target in ("ate", "att"):
                            eff, infl = efficient_score(data.y, data.t, mu1, mu0, clipped, target)
                            se = float(np.sqrt((infl**2).sum()) / data.n)
                            rec[f"{pk}{ok}_F{folds}_c{clip}_{target}_{s}"] = [eff, se]
    return rec


def summary_line(name: str, est: np.ndarray, se: np.ndarray) -> str:
    sd = est.std(ddof=1)
    cover = np.mean(np.abs(est - TRUTH) <= 1.959964 * se)
    return (
        f"| {name} | {est.mean() - TRUTH:+.3f} | {sd:.3f} | {np.sqrt(np.mean((est - TRUTH) ** 2)):.3f} | "
        f"{se.mean():.3f} | {se.mean() / sd:.2f} | {cover:.1%} |"
    )


def summarize(paths: list[Path]) -> None:
    recs = [json.loads(line) for path in paths for line in path.read_text().splitlines() if line.strip()]
    common = set.intersection(*(set(r) for r in recs))
    recs = [{k: v for k, v in r.items() if k in common} for r in recs]
    print(f"{len(recs)} replications (truth 10)\n")
    print("| variant | bias | SD | RMSE | mean SE | SE/SD | coverage |\n|---|---:|---:|---:|---:|---:|---:|")
    variants = sorted({re.sub(r"_\d+$", "", k) for k in recs[0] if k.startswith("P")})
    for key in variants:
        splits = sorted(int(k.rsplit("_", 1)[1]) for k in recs[0] if re.sub(r"_\d+$", "", k) == key)
        fits = np.array([[r[f"{key}_{s}"] for s in splits] for r in recs])  # reps x splits x (est, se)
        print(summary_line(f"{key} s0", fits[:, 0, 0], fits[:, 0, 1]))
        if len(splits) > 1:
            median = np.median(fits[:, :, 0], axis=1)
            se = np.sqrt(np.median(fits[:, :, 1] ** 2 + (fits[:, :, 0] - median[:, None]) ** 2, axis=1))
            print(summary_line(f"{key} med{len(splits)}", median, se))
    print()
    for key in sorted(k for k in recs[0] if k.startswith(("rmse", "emin", "emax"))):
        values = np.array([r[key] for r in recs])
        print(f"{key}: median {np.median(values):.4g}, min {values.min():.4g}, max {values.max():.4g}")
    cpu = {k: np.mean([r[k] for r in recs]) for k in recs[0] if k.startswith("cpu")}
    print("CPU s per replication: " + ", ".join(f"{k[4:]} {v:.2f}" for k, v in cpu.items()))


def grid_rows(paths: list[Path], out: Path) -> None:
    import coverage

    recs = [json.loads(line) for path in paths for line in path.read_text().splitlines() if line.strip()]
    rows, jobs = [], []
    variants = {"aipw_hgb": ("P0O0_F5_c0.0", 3), "aipw_hgb_folds2": ("P0O0_F2_c0.0", 1)}
    for label, (key, n_split) in variants.items():
        folds = 5 if n_split == 3 else 2
        if not all(f"{key}_ate_0" in r for r in recs):
            continue
        for target in ("ate", "att"):
            jobs.append({"label": label, "target": target, "cells": None})
            for r in recs:
                fits = np.array([r[f"{key}_{target}_{s}"] for s in range(n_split)])
                effect = float(np.median(fits[:, 0]))
                se = (
                    float(np.sqrt(np.median(fits[:, 1] ** 2 + (fits[:, 0] - effect) ** 2)))
                    if n_split > 1
                    else fits[0, 1]
                )
                cpu = sum(r[f"cpu_{m}_{folds}_{s}"] for m in ("P0", "O0") for s in range(n_split))
                rows.append(
                    {
                        "cell": "misspecified",
                        "label": label,
                        "target": target,
                        "rep": r["rep"],
                        "n": CELLS["misspecified"].n,
                        "truth_sample": TRUTH,
                        "estimate": effect,
                        "std_error": se,
                        "ci_low": effect - 1.959964 * se,
                        "ci_high": effect + 1.959964 * se,
                        "ci_method": "analytic",
                        "seconds": cpu,
                    }
                )
    table = coverage.summarize(rows, jobs, ["misspecified"], {"misspecified": {"ate": TRUTH, "att": TRUTH}})
    coverage.write_csv(table, out)


def main() -> None:
    if sys.argv[1] == "csv":
        grid_rows([Path(p) for p in sys.argv[3:]], Path(sys.argv[2]))
        return
    if sys.argv[1] == "summarize":
        summarize([Path(p) for p in sys.argv[2:]])
        return
    first, reps = int(sys.argv[2]), int(sys.argv[3])
    default_only = sys.argv[4:] == ["default"]
    plan = {5: 3} if default_only else PLAN
    propensity = {"P0": PROPENSITY["P0"]} if default_only else PROPENSITY
    for rep in range(first, first + reps):
        print(json.dumps(replication(rep, plan, propensity)), flush=True)


if __name__ == "__main__":
    main()
