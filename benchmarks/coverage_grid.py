"""Coverage grid: bias, RMSE and 95% CI coverage of the backdoor estimators over data shapes (not a test).

Each cell of the grid (``benchmarks/grid_dgps.py``) simulates potential outcomes, so the true ATE and
ATT are known. Every estimator is built from its composed config (``estimator=NAME``, tool defaults,
``estimator.target_units=att`` for the ATT) and fitted on ``EstimationData`` the way ``pipeline.run``
fits it. Coverage is measured against the POPULATION ATE / ATT of the cell (``E[tau]`` exactly, and
``E[tau e] / E[e]`` from a 2-million-unit simulation); coverage of the replication's own sample ATE /
ATT is in the CSV too (``coverage_sample``). Replications run in 2 joblib processes; replication ``r`` of
cell ``c`` draws from ``SeedSequence(seed, spawn_key=(c, r))``, so any subset of the grid reproduces.

Unit-freeness: on the first ``--unit-reps`` replications of each cell every estimator is refitted with
the first covariate multiplied by 1,000 and the second by 0.02; ``unit_shift`` is the largest change of
the estimate in units of its SE (flagged above 1%).

    python benchmarks/coverage_grid.py                        # full grid, 500 reps per cell, 2 processes
    python benchmarks/coverage_grid.py --quick                # 3 reps, small n: a smoke test (seconds)
    python benchmarks/coverage_grid.py --cells baseline heterogeneous --estimators psm aipw --reps 200
    python benchmarks/coverage_grid.py --product-growth       # the tool's own DGP (the former coverage.py)
    python benchmarks/coverage_grid.py --cells misspecified --estimators aipw_hgb --targets ate --n 8000 --reps 60
    python benchmarks/coverage_grid.py ... --first-rep 150    # more replications of an earlier run (then
                                                         # grid_compare.py --combine pools the two CSVs)
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from grid_dgps import CELLS, population_truth, share_outside  # noqa: E402

ESTIMATORS = ("psm", "ipw", "aipw", "dml", "regression", "ps_stratification", "distance_matching")
TARGETS = ("ate", "att")
#: a 95% CI should cover between these (500 reps: one Monte Carlo SE of coverage is ~1 point)
COVERAGE_BAND = (0.93, 0.97)
#: an estimate moving more than this many SEs when a covariate's unit changes is not unit-free
UNIT_TOLERANCE = 0.01
#: covariate rescaling for the unit-freeness check: column 0 x 1,000, column 1 x 0.02
UNIT_SCALES = (1000.0, 0.02)
#: extra rows: (label, estimator, cells, overrides)
#: HistGradientBoosting nuisances for aipw; early stopping (10% validation split) keeps a fit ~3x cheaper
HGB = (
    "estimator.outcome_model={_target_:sklearn.ensemble.HistGradientBoostingRegressor,early_stopping:true}",
    "estimator.propensity_model={_target_:sklearn.ensemble.HistGradientBoostingClassifier,early_stopping:true}",
)
#: psm without the Abadie-Imbens (2011) bias adjustment (DoWhy's plain matching; the default until s4)
EXTRAS = (
    ("aipw_hgb", "aipw", ("misspecified", "nonlinear"), HGB),
    # aipw with scikit-learn models used 2 folds and one split until s5 (now 5 folds, median over 3 splits)
    (
        "aipw_hgb_folds2",
        "aipw",
        ("misspecified", "nonlinear"),
        (*HGB, "estimator.folds=2", "estimator.n_rep=1"),
    ),
    ("psm_plain", "psm", None, ("estimator.bias_adjust=false",)),
)
SEED = 2026


def compose(overrides: list[str]):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from causal_cli.schema import register_configs
    from causal_cli.task import VERSION_BASE, conf_dir
    from causal_cli.validate import validate

    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base=VERSION_BASE):
        return validate(hydra_compose(config_name="config", overrides=overrides))


def variants(estimators, cells, targets=TARGETS) -> tuple[list[dict], list[dict]]:
    """Composed estimator configs: one per (estimator, target) the defaults accept; the others with why not."""
    from omegaconf import OmegaConf

    from causal_cli import registry

    specs = [(name, name, None, ()) for name in estimators if name not in {e[0] for e in EXTRAS}]
    specs += [e for e in EXTRAS if e[0] in estimators and (e[2] is None or set(e[2]) & set(cells))]
    ok, skipped = [], []
    for label, name, only, overrides in specs:
        for target in targets:
            row = {"label": label, "estimator": name, "target": target, "cells": only}
            try:
                registry.load("estimator", name)
                cfg = compose([f"estimator={name}", f"estimator.target_units={target}", *overrides])
            except Exception as exc:  # noqa: BLE001 - an option the defaults refuse is reported, not fatal
                one_line = getattr(exc, "one_line", None)
                skipped.append({**row, "why": one_line() if one_line else f"{type(exc).__name__}: {exc}"})
                continue
            # a plain dict: cheap to send to the workers, read by from_config as the config node
            ok.append(
                {**row, "config": OmegaConf.to_container(cfg.estimator, resolve=True, enum_to_str=True)}
            )
    return ok, skipped


def fit_one(cls, cfg, X, draw, seed):
    """Fit like the pipeline: a fresh estimator from its config on fresh ``EstimationData``."""
    from causal_cli.estimators.base import EstimationData

    estimator = cls.from_config(cfg, random_state=seed)
    data = EstimationData(t=draw.t.copy(), y=draw.y.copy(), X=np.array(X, dtype=float), covariates=draw.names)
    return estimator.fit(data)


def one_replication(
    cell_name: str, cell_index: int, rep: int, n: int, jobs: list[dict], seed: int, unit_check
):
    """Simulate one dataset of a cell and fit every estimator on it; one row per (estimator, target)."""
    from causal_cli import registry
    from causal_cli.errors import CausalCliError

    cell = CELLS[cell_name]
    data_seed, fit_seed = np.random.SeedSequence(seed, spawn_key=(cell_index, rep)).spawn(2)
    draw = cell.simulate(n, np.random.default_rng(data_seed))
    treated = draw.t == 1
    sample = {"ate": float(draw.tau.mean()), "att": float(draw.tau[treated].mean())}
    rows = []
    for job in jobs:
        if job["cells"] is not None and cell_name not in job["cells"]:
            continue
        cls = registry.load("estimator", job["estimator"])
        row = {"cell": cell_name, "label": job["label"], "target": job["target"], "rep": rep, "n": n}
        row["truth_sample"] = sample[job["target"]]
        started = time.perf_counter()
        try:
            est = fit_one(cls, job["config"], draw.X, draw, fit_seed)
        except (CausalCliError, np.linalg.LinAlgError, ValueError) as exc:
            one_line = getattr(exc, "one_line", None)
            rows.append({**row, "error": one_line() if one_line else f"{type(exc).__name__}: {exc}"})
            continue
        row.update(
            estimate=est.effect_,
            std_error=est.std_error_,
            ci_low=est.ci_low_,
            ci_high=est.ci_high_,
            ci_method=est.ci_method_,
            seconds=time.perf_counter() - started,
        )
        if unit_check:
            scaled = draw.X.copy()
            for j, factor in enumerate(UNIT_SCALES):
                scaled[:, j] *= factor
            try:
                moved = fit_one(cls, job["config"], scaled, draw, fit_seed).effect_
                row["unit_shift"] = abs(moved - est.effect_) / est.std_error_
            except (CausalCliError, np.linalg.LinAlgError, ValueError):
                row["unit_shift"] = float("inf")
        rows.append(row)
    return rows


def summarize(rows: list[dict], jobs: list[dict], cells: list[str], truths: dict) -> list[dict]:
    table = []
    for cell in cells:
        for job in jobs:
            if job["cells"] is not None and cell not in job["cells"]:
                continue
            mine = [
                r
                for r in rows
                if r["cell"] == cell and r["label"] == job["label"] and r["target"] == job["target"]
            ]
            fitted = [r for r in mine if "estimate" in r]
            failed = [r for r in mine if "error" in r]
            out = {
                "cell": cell,
                "estimator": job["label"],
                "target": job["target"],
                "n": mine[0]["n"] if mine else 0,
                "reps": len(fitted),
                "failed": len(failed),
                "truth": truths[cell][job["target"]],
                "first_error": failed[0]["error"] if failed else "",
            }
            if fitted:
                est = np.array([r["estimate"] for r in fitted])
                low, high = np.array([r["ci_low"] for r in fitted]), np.array([r["ci_high"] for r in fitted])
                se = np.array([r["std_error"] for r in fitted])
                sample = np.array([r["truth_sample"] for r in fitted])
                truth = out["truth"]
                sd = float(np.std(est, ddof=1)) if len(est) > 1 else float("nan")
                shifts = [r["unit_shift"] for r in fitted if "unit_shift" in r]
                out.update(
                    truth_sample_mean=float(sample.mean()),
                    bias=float(np.mean(est - truth)),
                    rmse=float(np.sqrt(np.mean((est - truth) ** 2))),
                    coverage=float(np.mean((low <= truth) & (truth <= high))),
                    coverage_sample=float(np.mean((low <= sample) & (sample <= high))),
                    width=float(np.mean(high - low)),
                    mean_se=float(se.mean()),
                    sd=sd,
                    se_sd=float(se.mean() / sd) if sd > 0 else float("nan"),
                    unit_shift=float(max(shifts)) if shifts else float("nan"),
                    fit_ms=float(1000 * np.mean([r["seconds"] for r in fitted])),
                    ci_method=",".join(sorted({r["ci_method"] for r in fitted})),
                )
            out["flags"] = flags(out)
            table.append(out)
    return table


def flags(row: dict) -> str:
    lo, hi = COVERAGE_BAND
    out = []
    if row["reps"] == 0:
        return "ALL FAILED"
    if row["coverage"] < lo:
        out.append("UNDER-covers")
    elif row["coverage"] > hi:
        out.append("OVER-covers")
    if row["unit_shift"] > UNIT_TOLERANCE:
        out.append("NOT unit-free")
    if row["failed"]:
        out.append(f"{row['failed']} failed")
    return ", ".join(out)


COLUMNS = (
    "cell",
    "estimator",
    "target",
    "n",
    "reps",
    "failed",
    "truth",
    "truth_sample_mean",
    "bias",
    "rmse",
    "coverage",
    "coverage_sample",
    "width",
    "mean_se",
    "sd",
    "se_sd",
    "unit_shift",
    "fit_ms",
    "ci_method",
    "flags",
    "first_error",
)


def write_csv(table: list[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for row in table:
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})


def render(table, skipped, truths, cells, args, seconds, outside) -> str:
    lo, hi = COVERAGE_BAND
    lines = [
        f"## Coverage grid: {args.reps} replications per cell, seed {args.seed}, tool defaults",
        "",
        "Truth = the population ATE / ATT of the cell; coverage = share of 95% CIs containing it.",
        "",
        "| cell | n | truth ATE | truth ATT | scores outside [0.05, 0.95] | data |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for cell in cells:
        c = CELLS[cell]
        n = args.n or (c.quick_n if args.quick else c.n)
        lines.append(
            f"| {cell} | {n:,} | {truths[cell]['ate']:.3f} | {truths[cell]['att']:.3f} | {outside[cell]:.1%} | {c.about} |"
        )
    lines += [
        "",
        "| cell | estimator | target | reps | bias | RMSE | coverage | width | SE/SD | unit shift (SE) | ms/fit | flags |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in table:
        if not r["reps"]:
            lines.append(
                f"| {r['cell']} | {r['estimator']} | {r['target']} | 0 | | | | | | | | ALL FAILED: {r['first_error']} |"
            )
            continue
        lines.append(
            f"| {r['cell']} | {r['estimator']} | {r['target']} | {r['reps']} | {r['bias']:+.3f} | {r['rmse']:.3f} | "
            f"{r['coverage']:.1%} | {r['width']:.3f} | {r['se_sd']:.2f} | {r['unit_shift']:.3g} | "
            f"{r['fit_ms']:.0f} | {r['flags']} |"
        )
    for s in skipped:
        lines.append(f"\nnot run: {s['label']} {s['target']}: {s['why']}")
    errors = {(r["estimator"], r["target"]): r["first_error"] for r in table if r["failed"]}
    for (label, target), why in errors.items():
        lines.append(f"\nfailures, e.g. {label} {target}: {why}")
    lines.append(
        f"\nFlags: coverage outside {lo:.0%}-{hi:.0%}; unit shift = largest |change| of the estimate, in SEs, when "
        f"x1 is multiplied by {UNIT_SCALES[0]:g} and x2 by {UNIT_SCALES[1]:g} (first {args.unit_reps} reps; "
        f"flagged above {UNIT_TOLERANCE:g}). SE/SD = mean reported SE over the SD of the estimates. "
        f"{seconds:.0f} s wall on {args.jobs} process(es)."
    )
    return "\n".join(lines)


def product_growth(argv) -> int:
    """The former benchmarks/coverage_grid.py: the tool's own product_growth DGP, through its own loader."""
    from joblib import Parallel, delayed

    parser = argparse.ArgumentParser(description="coverage on the product_growth DGP")
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--confounding", default="strong", choices=["none", "weak", "strong"])
    parser.add_argument("--estimators", nargs="+", default=list(ESTIMATORS))
    args = parser.parse_args(argv)
    configs = {
        name: compose([f"estimator={name}", "graph=product_growth", "dgp=product_growth"])
        for name in args.estimators
    }
    chunks = Parallel(n_jobs=args.jobs)(
        delayed(product_growth_seed)(seed, configs, args.n, args.confounding) for seed in range(args.seeds)
    )
    rows = [row for chunk in chunks for row in chunk]
    print(f"product_growth, confounding={args.confounding}, n={args.n:,}, seeds 0-{args.seeds - 1}")
    print("| estimator | runs | coverage | width | bias | SE/SD |\n|---|---:|---:|---:|---:|---:|")
    for name in args.estimators:
        mine = [r for r in rows if r["estimator"] == name and "estimate" in r]
        if not mine:
            print(f"| {name} | 0 | | | | |")
            continue
        est = np.array([r["estimate"] for r in mine])
        truth = np.array([r["truth"] for r in mine])
        low, high = np.array([r["ci_low"] for r in mine]), np.array([r["ci_high"] for r in mine])
        sd = np.std(est - truth, ddof=1) if len(mine) > 1 else float("nan")
        print(
            f"| {name} | {len(mine)} | {np.mean((low <= truth) & (truth <= high)):.1%} | {np.mean(high - low):.3f} | "
            f"{np.mean(est - truth):+.3f} | {np.mean([r['std_error'] for r in mine]) / sd:.2f} |"
        )
    return 0


def product_growth_seed(seed: int, configs: dict, n: int, confounding: str) -> list[dict]:
    from omegaconf import OmegaConf

    from causal_cli import registry
    from causal_cli.data import load_dataset
    from causal_cli.errors import CausalCliError
    from causal_cli.graph import CausalGraph
    from causal_cli.identify import identify
    from causal_cli.pipeline import build_estimation_data

    run_cfg = OmegaConf.merge(
        next(iter(configs.values())),
        {"seed": seed, "dgp": {"seed": seed, "n": n, "confounding": confounding}},
    )
    graph = CausalGraph.from_config(run_cfg.graph)
    dataset = load_dataset(run_cfg, graph)
    identification = identify(graph, "backdoor", run_cfg.identification.backdoor_method)
    data = build_estimation_data(dataset.frame, graph, identification)
    rows = []
    for name, cfg in configs.items():
        cls = registry.load("estimator", name)
        estimator = cls.from_config(cfg.estimator, random_state=np.random.SeedSequence([seed, 0xE57]))
        target = str(getattr(estimator.target_units, "value", estimator.target_units))
        row = {"estimator": name, "truth": dataset.reference[target]}
        try:
            estimator.fit(data)
        except CausalCliError as exc:
            rows.append({**row, "error": exc.one_line()})
            continue
        rows.append({**row, "estimate": estimator.effect_, "std_error": estimator.std_error_})
        rows[-1].update(ci_low=estimator.ci_low_, ci_high=estimator.ci_high_)
    return rows


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--product-growth" in argv:
        argv.remove("--product-growth")
        return product_growth(argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--reps", type=int, default=None, help="replications per cell (default 500; 3 with --quick)"
    )
    parser.add_argument("--quick", action="store_true", help="a handful of reps at small n (CI smoke test)")
    parser.add_argument("--cells", nargs="+", default=list(CELLS), choices=list(CELLS))
    parser.add_argument(
        "--estimators",
        nargs="+",
        default=[*ESTIMATORS, *(e[0] for e in EXTRAS if e[0] != "aipw_hgb_folds2")],
        help="estimators and extra rows by label (aipw_hgb: aipw with gradient boosting, misspecified and nonlinear cells)",
    )
    parser.add_argument("--targets", nargs="+", default=list(TARGETS), choices=list(TARGETS))
    parser.add_argument("--n", type=int, default=None, help="sample size of every cell (default: the cell's)")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument(
        "--first-rep",
        type=int,
        default=0,
        help="replications first-rep .. first-rep + reps - 1 (extend an earlier run; grid_compare.py --combine)",
    )
    parser.add_argument("--unit-reps", type=int, default=None, help="reps per cell with the unit check (10)")
    parser.add_argument(
        "--truth-draws", type=int, default=None, help="units simulated for the population ATT"
    )
    parser.add_argument("--out", type=Path, default=None, help="CSV of the summary table")
    parser.add_argument("--markdown", type=Path, default=None, help="also write the printed table here")
    args = parser.parse_args(argv)
    args.reps = args.reps or (3 if args.quick else 500)
    args.unit_reps = args.unit_reps if args.unit_reps is not None else (1 if args.quick else 10)
    draws = args.truth_draws or (100_000 if args.quick else 2_000_000)
    if args.reps < 2:
        parser.error("--reps must be >= 2")
    # one thread per worker: 2 processes share 2 cores (HistGradientBoosting would start one per core each)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")

    from joblib import Parallel, delayed

    started = time.perf_counter()
    jobs, skipped = variants(args.estimators, args.cells, args.targets)
    if not jobs:
        print("nothing to run: " + "; ".join(f"{s['label']} {s['target']}: {s['why']}" for s in skipped))
        return 1
    truths = {cell: population_truth(CELLS[cell], draws) for cell in args.cells}
    outside = {cell: share_outside(CELLS[cell]) for cell in args.cells}
    rows: list[dict] = []
    done: list[str] = []
    # one cell at a time, the files rewritten after each: a run cut short still leaves its finished cells
    with Parallel(n_jobs=args.jobs, batch_size=4) as parallel:
        for cell in args.cells:
            index = list(CELLS).index(cell)
            n = args.n or (CELLS[cell].quick_n if args.quick else CELLS[cell].n)
            chunks = parallel(
                delayed(one_replication)(cell, index, rep, n, jobs, args.seed, rep < args.unit_reps)
                for rep in range(args.first_rep, args.first_rep + args.reps)
            )
            rows += [row for chunk in chunks for row in chunk]
            done.append(cell)
            done.sort(key=list(CELLS).index)  # tables in the grid's order, whatever order the cells ran in
            seconds = time.perf_counter() - started
            print(f"cell {cell} done ({len(done)}/{len(args.cells)}), {seconds:.0f} s", file=sys.stderr)
            table = summarize(rows, jobs, done, truths)
            text = render(table, skipped, truths, done, args, seconds, outside)
            if len(done) < len(args.cells):
                text += f"\n\nPARTIAL: {len(done)} of {len(args.cells)} cells so far."
            if args.out:
                write_csv(table, args.out)
            if args.markdown:
                args.markdown.parent.mkdir(parents=True, exist_ok=True)
                args.markdown.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
