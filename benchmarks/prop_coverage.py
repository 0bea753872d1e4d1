"""Monte Carlo coverage of one estimator under config overrides (prop's measurements for issue #13).

    python benchmarks/prop_coverage.py --seeds 200 --n 2000 estimator=ps_stratification estimator.target_units=att
    python benchmarks/prop_coverage.py --seeds 200 --n 5000 estimator=ipw 'dgp.treatment_coef={account_age:2.2,activity:2.2}'

Prints coverage of the 95% CI, mean bias, mean SE / SD of the estimates, the share of units the
estimator dropped, how often it raised a caveat, and the overlap diagnostic (share of scores outside
[0.05, 0.95], how often the poor-overlap warning fired).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np


def one_seed(seed: int, cfg, n: int) -> dict:
    from omegaconf import OmegaConf

    from causal_cli import diagnostics, registry
    from causal_cli.data import load_dataset
    from causal_cli.graph import CausalGraph
    from causal_cli.identify import identify
    from causal_cli.pipeline import build_estimation_data

    run = OmegaConf.merge(cfg, {"seed": seed, "dgp": {"seed": seed, "n": n}})
    graph = CausalGraph.from_config(run.graph)
    dataset = load_dataset(run, graph)
    cls = registry.load("estimator", run.estimator.name)
    est = cls.from_config(run.estimator, random_state=np.random.SeedSequence([seed, 0xE57]))
    data = build_estimation_data(dataset.frame, graph, identify(graph, cls.identification))
    est.fit(data)
    target = str(est.target_units)
    diag, _ = diagnostics.compute(data.t, data.X, data.covariates, est)
    weights = getattr(est, "balance_weights_", None)
    return {
        "truth": dataset.reference[target],
        "estimate": est.effect_,
        "se": est.std_error_,
        "se_blocking": getattr(est, "std_error_blocking_", np.nan),
        "dropped": float(np.mean(weights == 0)) if weights is not None else 0.0,
        "caveats": len(est.caveats()) if hasattr(est, "caveats") else 0,
        "outside": diag.overlap["share_outside"],
        "tails": diag.weights or {},
        "poor": bool(diag.poor_overlap),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=200)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args(argv)
    sys.path.insert(0, ".")
    from joblib import Parallel, delayed

    from benchmarks.coverage_grid import compose

    cfg = compose(["graph=product_growth", "dgp=product_growth", *args.overrides])
    rows = Parallel(n_jobs=args.jobs)(delayed(one_seed)(s, cfg, args.n) for s in range(args.seeds))
    est = np.array([r["estimate"] for r in rows])
    truth = np.array([r["truth"] for r in rows])
    sd = est.std(ddof=1)
    print(f"{' '.join(args.overrides)}  n={args.n:,} seeds={args.seeds}")
    for key in ("se", "se_blocking"):
        se = np.array([r[key] for r in rows])
        if np.all(np.isnan(se)):
            continue
        cover = np.mean(np.abs(est - truth) <= 1.959964 * se)
        print(f"  {key:12s} coverage {cover:6.1%}  mean SE / SD {se.mean() / sd:5.2f}")
    print(
        f"  bias {np.mean(est - truth):+.3f}  SD {sd:.3f}  dropped {np.mean([r['dropped'] for r in rows]):.1%}  "
        f"caveat raised {np.mean([r['caveats'] > 0 for r in rows]):.0%}  outside [0.05,0.95] "
        f"{np.mean([r['outside'] for r in rows]):.1%}  poor-overlap warning {np.mean([r['poor'] for r in rows]):.0%}"
    )
    if any(r["tails"] for r in rows):
        covered = np.abs(est - truth) <= 1.959964 * np.array([r["se"] for r in rows])
        for key in ("ess_share_used", "max_share", "max_variance_share"):
            worst = np.array(
                [
                    (min if key == "ess_share_used" else max)(g.get(key) or 0 for g in r["tails"].values())
                    for r in rows
                ]
            )
            cuts = np.quantile(worst, [0.25, 0.5, 0.75])
            parts = []
            for lo, hi in zip(np.r_[-np.inf, cuts], np.r_[cuts, np.inf]):
                sel = (worst > lo) & (worst <= hi)
                parts.append(f"({lo:.3g}, {hi:.3g}]: {covered[sel].mean():.0%} of {sel.sum()}")
            print(f"  coverage by worst arm's {key}: " + "; ".join(parts))
        flagged = np.array([any(g.get("heavy_tailed") for g in r["tails"].values()) for r in rows])
        if flagged.any():
            print(
                f"  heavy-weight caveat: {flagged.mean():.0%} of runs; coverage {covered[flagged].mean():.0%} flagged"
            )
        if (~flagged).any():
            print(f"  coverage {covered[~flagged].mean():.0%} when not flagged")
    return 0


if __name__ == "__main__":
    sys.exit(main())
