"""distance_matching on a grid cell: is its SE the estimate's true spread? (diagnosis, not a test)

One fit per replication and target, on the coverage grid's own data sets (replication r of cell c draws
from ``SeedSequence(2026, spawn_key=(c, r))`` like benchmarks/coverage_grid.py, so the rows are the grid's).
The standard error is recomputed on the same fit from raw, smoothed and true (= 1) conditional variances,
and compared with the EXACT conditional standard deviation: the estimate is linear in the outcomes,
``effect = a' y`` with weights ``a`` that depend only on the covariates and the treatment
(``DistanceMatchingEstimator.outcome_weights``), and every grid cell's noise has SD 1, so given the
covariates and the treatment the estimate's SD is ``||a||``. In the linear cells (all but misspecified and
nonlinear) the bias-adjusted estimate minus the sample ATE / ATT is exactly ``a' noise`` (printed as a
check), so ``z = (estimate - sample truth) / ||a||`` is exactly N(0, 1) and the CI with the exact SD covers the
sample truth 95% in expectation: a shortfall there is Monte Carlo noise, and the reported SE's ratio to
``||a||`` says how far the reported SE is from the exact one (with a constant effect the sample truth is
the population truth; with heterogeneous effects the reported SE also carries the effects' spread, so it
exceeds ``||a||``). The other columns are against the population truth, as in the grid.

    python benchmarks/matching_variance_diagnosis.py CELL REPS [FIRST_REP] [targets...]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from grid_dgps import CELLS, population_truth  # noqa: E402

import causal_cli.estimators.distance_matching as dm  # noqa: E402
from causal_cli.estimators.base import EstimationData  # noqa: E402

SEED = 2026  # benchmarks/coverage_grid.py's
VARIANTS = {
    "raw": lambda Z, sigma2: sigma2,
    "smoothed": dm.smoothed_variance,
    "sigma=1": lambda Z, sigma2: np.ones_like(sigma2),
}
Z95 = 1.959964


def replicate(cell_name: str, rep: int, targets) -> dict[str, dict]:
    """One grid data set: per target the estimate, its SE per variance variant, ||a|| and the linearity checks."""
    cell = CELLS[cell_name]
    data_seed = np.random.SeedSequence(SEED, spawn_key=(list(CELLS).index(cell_name), rep)).spawn(2)[0]
    draw = cell.simulate(cell.n, np.random.default_rng(data_seed))
    data = EstimationData(t=draw.t.copy(), y=draw.y.copy(), X=draw.X.copy(), covariates=draw.names)
    noise = draw.y - draw.m - draw.t * draw.tau
    treated = draw.t == 1
    sample = {"ate": draw.tau.mean(), "att": draw.tau[treated].mean(), "atc": draw.tau[~treated].mean()}
    original = dm.smoothed_variance
    out = {}
    for target in targets:
        est = dm.DistanceMatchingEstimator(target_units=target).fit(data)
        a = est.outcome_weights()
        row = {
            "est": est.effect_,
            "sample": sample[target],
            "exact": float(np.sqrt((a**2).sum())),
            "linear": abs(a @ data.y - est.effect_),
            "noise_part": abs(est.effect_ - sample[target] - a @ noise),
        }
        try:
            for name, variant in VARIANTS.items():
                dm.smoothed_variance = variant
                row[name] = est._std_error(data)
        finally:
            dm.smoothed_variance = original
        out[target] = row
    return out


def main() -> None:
    cell_name, reps = sys.argv[1], int(sys.argv[2])
    rest = sys.argv[3:]
    first = int(rest.pop(0)) if rest and rest[0].isdigit() else 0
    targets = rest or ["ate", "att"]
    truth = population_truth(CELLS[cell_name], 400_000)
    cpu = time.process_time()
    rows = [replicate(cell_name, rep, targets) for rep in range(first, first + reps)]
    print(f"{cell_name}, replications {first}-{first + reps - 1}, {time.process_time() - cpu:.0f} s CPU")
    for target in targets:
        mine = {key: np.array([r[target][key] for r in rows]) for key in rows[0][target]}
        est, exact = mine["est"], mine["exact"]
        sd = est.std(ddof=1)
        ratio = mine["smoothed"] / exact
        print(
            f"{target}: bias {est.mean() - truth[target]:+.4f} SD {sd:.4f} | max |a'y - estimate| "
            f"{mine['linear'].max():.1e}, max |estimate - sample truth - a'noise| {mine['noise_part'].max():.1e}"
        )
        z = (est - mine["sample"]) / exact
        line = (
            f"  exact SD ||a||: mean/SD {exact.mean() / sd:.3f}, covers the sample truth {cover(z, 0, 1):.3f}"
        )
        for name in VARIANTS:
            line += f" | {name}: SE/SD {mine[name].mean() / sd:.3f} cover {cover(est, truth[target], mine[name]):.3f}"
        print(line)
        print(
            f"  reported (smoothed) SE / exact SD per replication: mean {ratio.mean():.3f}, SD {ratio.std():.3f}, "
            f"min {ratio.min():.3f}; z = (estimate - sample truth) / exact SD: mean {z.mean():+.3f}, SD {z.std(ddof=1):.3f}",
            flush=True,
        )


def cover(est: np.ndarray, truth: float, se: np.ndarray) -> float:
    return float(np.mean(np.abs(est - truth) <= Z95 * se))


if __name__ == "__main__":
    main()
