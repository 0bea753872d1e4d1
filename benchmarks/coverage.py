"""95% CI coverage of the ground truth, over many seeds, for the backdoor estimators (not a test).

Each estimator is built from its composed config (``estimator=NAME``) and fitted the way
``pipeline.run`` fits it (same identification, same ``EstimationData``, same seeding) on the
product-growth DGP. Seeds run in joblib worker processes.

    python benchmarks/coverage.py                 # 100 seeds, n = 5,000, strong confounding, 2 cores
    python benchmarks/coverage.py --seeds 20 --n 2000 --estimators psm ipw
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

ESTIMATORS = ("psm", "ipw", "aipw", "dml", "regression")
#: the issue's target band for a 95% CI
COVERAGE_BAND = (0.90, 0.99)


def compose(overrides: list[str]):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from causal_cli.app import VERSION_BASE, conf_dir
    from causal_cli.schema import register_configs
    from causal_cli.validate import validate

    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base=VERSION_BASE):
        return validate(hydra_compose(config_name="config", overrides=overrides))


def available(names) -> tuple[list[str], dict[str, str]]:
    """Estimators that are registered and import; the others with the reason they are skipped."""
    from causal_cli import registry

    ok, skipped = [], {}
    for name in names:
        if name not in registry.ESTIMATORS:
            skipped[name] = "not registered"
            continue
        try:
            registry.load("estimator", name)
        except Exception as exc:  # noqa: BLE001 - a half-written estimator is skipped, not fatal
            skipped[name] = f"does not import ({type(exc).__name__}: {exc})"
            continue
        ok.append(name)
    return ok, skipped


def one_seed(seed: int, configs: dict, n: int, confounding: str) -> list[dict]:
    """Simulate one dataset; fit every estimator on it; one row per estimator."""
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
    identifications = {}
    rows = []
    for name, cfg in configs.items():
        cls = registry.load("estimator", name)
        estimator = cls.from_config(cfg.estimator, random_state=np.random.SeedSequence([seed, 0xE57]))
        target = str(getattr(estimator.target_units, "value", estimator.target_units))
        row = {"estimator": name, "seed": seed, "truth": dataset.reference[target]}
        try:
            kind = cls.identification
            if kind not in identifications:
                identifications[kind] = identify(graph, kind, run_cfg.identification.backdoor_method)
            estimator.fit(build_estimation_data(dataset.frame, graph, identifications[kind]))
        except CausalCliError as exc:
            rows.append({**row, "error": exc.one_line()})
            continue
        rows.append(
            {
                **row,
                "estimate": estimator.effect_,
                "std_error": estimator.std_error_,
                "ci_low": estimator.ci_low_,
                "ci_high": estimator.ci_high_,
                "ci_method": estimator.ci_method_,
            }
        )
    return rows


def summarize(rows: list[dict], names: list[str]) -> list[dict]:
    table = []
    for name in names:
        fitted = [r for r in rows if r["estimator"] == name and "estimate" in r]
        failed = [r for r in rows if r["estimator"] == name and "error" in r]
        if not fitted:
            table.append({"estimator": name, "runs": 0, "failed": len(failed)})
            continue
        est = np.array([r["estimate"] for r in fitted])
        truth = np.array([r["truth"] for r in fitted])
        low, high = np.array([r["ci_low"] for r in fitted]), np.array([r["ci_high"] for r in fitted])
        se = np.array([r["std_error"] for r in fitted])
        table.append(
            {
                "estimator": name,
                "runs": len(fitted),
                "failed": len(failed),
                "coverage": float(np.mean((low <= truth) & (truth <= high))),
                "width": float(np.mean(high - low)),
                "bias": float(np.mean(est - truth)),
                "mean_se": float(np.mean(se)),
                "sd": float(np.std(est - truth, ddof=1)) if len(fitted) > 1 else float("nan"),
                "ci_method": ",".join(sorted({r["ci_method"] for r in fitted})),
                "first_error": failed[0]["error"] if failed else "",
            }
        )
    return table


def render(table: list[dict], args, skipped: dict[str, str], seconds: float) -> str:
    lo, hi = COVERAGE_BAND
    lines = [
        f"95% CI coverage of the ground truth: product_growth, confounding={args.confounding}, "
        f"n={args.n:,}, seeds 0-{args.seeds - 1}",
        f"{'estimator':<12} {'runs':>5} {'coverage':>9} {'mean width':>11} {'mean bias':>10} "
        f"{'mean SE':>8} {'SD of est':>10} {'SE/SD':>6}  {'CI':<10} target",
    ]
    for row in table:
        if not row["runs"]:
            lines.append(f"{row['estimator']:<12} {0:>5}  every run failed ({row['failed']})")
            continue
        ratio = row["mean_se"] / row["sd"] if row["sd"] > 0 else float("nan")
        inside = lo <= row["coverage"] <= hi
        verdict = "ok" if inside else ("UNDER-covers" if row["coverage"] < lo else "OVER-covers")
        lines.append(
            f"{row['estimator']:<12} {row['runs']:>5} {row['coverage']:>8.0%} {row['width']:>11.3f} "
            f"{row['bias']:>10.3f} {row['mean_se']:>8.3f} {row['sd']:>10.3f} {ratio:>6.2f}  "
            f"{row['ci_method']:<10} {verdict}"
        )
        if row["failed"]:
            lines.append(f"{'':<12} {row['failed']} run(s) failed, e.g. {row['first_error']}")
    for name, why in skipped.items():
        lines.append(f"skipped {name}: {why}")
    lines.append(
        f"target: coverage between {lo:.0%} and {hi:.0%}; width in $ (outcome units); SE/SD = mean reported SE "
        f"over the SD of the estimates (1 = calibrated). {seconds:.0f} s."
    )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=100, help="number of seeds (0 .. N-1)")
    parser.add_argument("--n", type=int, default=5000, help="rows per simulated dataset")
    parser.add_argument("--jobs", type=int, default=2, help="joblib worker processes")
    parser.add_argument("--confounding", default="strong", choices=["none", "weak", "strong"])
    parser.add_argument("--estimators", nargs="+", default=list(ESTIMATORS))
    args = parser.parse_args(argv)
    if args.seeds < 1 or args.n < 20:
        parser.error("--seeds must be >= 1 and --n >= 20")

    from joblib import Parallel, delayed

    names, skipped = available(args.estimators)
    if not names:
        print("no estimator to run: " + "; ".join(f"{k}: {v}" for k, v in skipped.items()), file=sys.stderr)
        return 1
    configs = {
        name: compose([f"estimator={name}", "graph=product_growth", "dgp=product_growth"]) for name in names
    }
    started = time.perf_counter()
    chunks = Parallel(n_jobs=args.jobs)(
        delayed(one_seed)(seed, configs, args.n, args.confounding) for seed in range(args.seeds)
    )
    rows = [row for chunk in chunks for row in chunk]
    print(render(summarize(rows, names), args, skipped, time.perf_counter() - started))
    return 0


if __name__ == "__main__":
    sys.exit(main())
