"""Monte Carlo of the random_common_cause verdict: false failures at a true model, and power (not a test).

For each of ``--reps`` product_growth data sets (both confounders adjusted for, so every estimator's model
is right), each estimator is fitted and refuted by random_common_cause with ``--num-simulations`` random
covariates; a failed verdict is a false failure. The rule before s5 (pass only when the mean new estimate
is within ``tolerance``, 5%, of the estimate, or of its SE when that is larger) and two candidate rules
(the old one, or: the "spread rule", the estimate is a typical draw among the new estimates, two-sided p >=
0.05; the "CI rule", the mean new estimate lies within the estimate's 95% CI, 1.96 SE) are applied to the
same simulated estimates, so all are compared on identical draws with the refuter's own verdict. ``--effect`` sets the true effect
(0, the default, is where a relative tolerance is tightest: the scale is then the SE). Power: a
regression that adjusts for the LAST covariate only, which the random covariate displaces, so its
estimate depends on what is adjusted for and must fail.

    python benchmarks/random_common_cause_mc.py --reps 200 --n 2000 --num-simulations 100
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from verdicts_mc import make_estimator, make_estimator_from, product_data, rate  # noqa: E402

ESTIMATORS = ("psm", "ipw", "ps_stratification", "regression", "distance_matching")


def last_covariate_only():
    from causal_cli.estimators.base import BaseEstimator
    from causal_cli.sensitivity import ols

    class AdjustsForLastCovariateOnly(BaseEstimator):
        """Least squares on the treatment and the last covariate: an extra covariate changes what is adjusted for."""

        name = "adjusts_for_last_covariate_only"
        has_analytic_se = True

        def _design(self, data):
            return np.column_stack([np.ones(data.n), data.X[:, -1:], data.t])

        def _estimate(self, data):
            return float(np.linalg.lstsq(self._design(data), data.y, rcond=None)[0][-1])

        def _std_error(self, data):
            return float(ols(self._design(data), data.y)[1][-1])

    return make_estimator_from(AdjustsForLastCovariateOnly)


def old_rule(estimate: float, std_error: float, sims: np.ndarray, tolerance: float = 0.05) -> bool:
    scale = max(abs(estimate), std_error or 0.0)
    return bool(abs(sims.mean() - estimate) / scale <= tolerance if scale > 0 else True)


def spread_rule(estimate: float, std_error: float, sims: np.ndarray, tolerance: float = 0.05) -> bool:
    """Alternative: the old rule, or the estimate a typical draw among the new estimates (two-sided p >= 0.05)."""
    from causal_cli.refuters.base import significance

    return old_rule(estimate, std_error, sims, tolerance) or significance(estimate, sims)[0] >= 0.05


def ci_rule(estimate: float, std_error: float, sims: np.ndarray, tolerance: float = 0.05) -> bool:
    """Alternative: the old rule, or the mean new estimate inside the estimate's 95% CI (1.96 SE)."""
    return (
        old_rule(estimate, std_error, sims, tolerance) or abs(sims.mean() - estimate) <= 1.959964 * std_error
    )


def main(argv=None) -> None:
    from causal_cli import registry

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--power-reps", type=int, default=50)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--effect", type=float, default=0.0)
    parser.add_argument("--num-simulations", type=int, default=100)
    parser.add_argument("--estimators", nargs="+", default=list(ESTIMATORS))
    args = parser.parse_args(argv)
    cpu, started = time.process_time(), time.perf_counter()
    refuter_cls = registry.load("refuter", "random_common_cause")
    cells: dict[str, dict[str, list[bool]]] = {}
    for rep in range(max(args.reps, args.power_reps)):
        data = product_data(args.n, 20_000 + rep, args.effect)
        fits = [(name, make_estimator(name, rep)) for name in args.estimators] if rep < args.reps else []
        if rep < args.power_reps:
            fits.append(("broken: adjusts for the last covariate only", last_covariate_only()))
        for label, estimator in fits:
            estimator.fit(data)
            refuter = refuter_cls(num_simulations=args.num_simulations)
            result = refuter.refute(estimator, data, estimator.effect_, estimator.std_error_, seed=rep)
            sims = np.asarray(result.simulations)
            sims = sims[np.isfinite(sims)]
            cell = cells.setdefault(label, {"new": [], "old": [], "spread": [], "ci": [], "shift_se": []})
            cell["spread"].append(not spread_rule(estimator.effect_, estimator.std_error_, sims))
            cell["ci"].append(not ci_rule(estimator.effect_, estimator.std_error_, sims))
            cell["new"].append(not result.passed)
            cell["old"].append(not old_rule(estimator.effect_, estimator.std_error_, sims))
            cell["shift_se"].append(abs(sims.mean() - estimator.effect_) / estimator.std_error_)
    print(
        f"product_growth, true effect {args.effect:g}, n = {args.n:,}, {args.num_simulations} random covariates per "
        f"data set; {time.process_time() - cpu:.0f} s CPU, {time.perf_counter() - started:.0f} s wall\n"
    )
    print(
        "| estimator | failed (the refuter's rule) | failed (old rule) | failed (spread rule) | failed (CI rule) "
        "| median shift / SE | data sets |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for label, cell in cells.items():
        text = " | ".join(
            f"{r['rate']:.1%} ± {r['mc_se']:.1%}"
            for r in (rate(cell[k]) for k in ("new", "old", "spread", "ci"))
        )
        print(f"| {label} | {text} | {np.median(cell['shift_se']):.3f} | {len(cell['new'])} |")


if __name__ == "__main__":
    main()
