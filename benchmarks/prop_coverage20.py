"""ipw coverage with 20 confounders (prop's measurement for issue #13): no single covariate separates the
groups, yet the scores spread out and the weights get heavy.

    python benchmarks/prop_coverage20.py --seeds 100 --n 5000 --target ate

X ~ N(0, I_20); logit P(T=1) = 0.35 * sum(X); y = 2 T + 0.5 * sum(X) + N(0, 1); true ATE = ATT = 2.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np


def one_seed(seed: int, n: int, target: str, coef: float) -> dict:
    from causal_cli import diagnostics
    from causal_cli.estimators.base import EstimationData
    from causal_cli.estimators.ipw import IPWEstimator

    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 20))
    t = (rng.random(n) < 1 / (1 + np.exp(-coef * X.sum(axis=1)))).astype(float)
    y = 2.0 * t + 0.5 * X.sum(axis=1) + rng.standard_normal(n)
    data = EstimationData(t=t, y=y, X=X)
    est = IPWEstimator(target_units=target).fit(data)
    diag, _ = diagnostics.compute(t, X, [f"x{j}" for j in range(20)], est)
    return {
        "covered": abs(est.effect_ - 2.0) <= 1.959964 * est.std_error_,
        "estimate": est.effect_,
        "se": est.std_error_,
        "outside": diag.overlap["share_outside"],
        "poor": diag.poor_overlap,
        "caveat": any(c.startswith("heavy") for c in est.caveats()),
        "ess_share": min(g["ess_share_used"] for g in diag.weights.values()),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--target", default="ate")
    parser.add_argument("--coef", type=float, default=0.35)
    args = parser.parse_args(argv)
    rows = [one_seed(s, args.n, args.target, args.coef) for s in range(args.seeds)]
    est = np.array([r["estimate"] for r in rows])
    print(
        f"20 covariates, coef {args.coef}, {args.target}, n={args.n:,}, seeds={args.seeds}: coverage "
        f"{np.mean([r['covered'] for r in rows]):.1%}, bias {est.mean() - 2:+.3f}, mean SE / SD "
        f"{np.mean([r['se'] for r in rows]) / est.std(ddof=1):.2f}, outside [0.05, 0.95] "
        f"{np.mean([r['outside'] for r in rows]):.1%}, poor-overlap warning {np.mean([r['poor'] for r in rows]):.0%}, "
        f"heavy-weight caveat {np.mean([r['caveat'] for r in rows]):.0%}, worst-arm ESS share "
        f"{np.quantile([r['ess_share'] for r in rows], [0.1, 0.5, 0.9]).round(3).tolist()} (10/50/90%)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
