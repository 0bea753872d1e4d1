"""distance_matching on a grid cell: SE from raw, smoothed and true (= 1) conditional variances (diagnosis).

One fit per replication and target; the standard error is recomputed three ways on the same fit, so the
coverage differences are due to the conditional-variance estimates alone.

    python benchmarks/matching_variance_diagnosis.py CELL REPS [targets...]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from grid_dgps import CELLS, population_truth  # noqa: E402

import causal_cli.estimators.distance_matching as dm  # noqa: E402
from causal_cli.estimators.base import EstimationData  # noqa: E402

VARIANTS = {
    "raw": lambda Z, sigma2: sigma2,
    "smoothed": dm.smoothed_variance,
    "sigma=1": lambda Z, sigma2: np.ones_like(sigma2),
}


def main() -> None:
    cell = CELLS[sys.argv[1]]
    reps = int(sys.argv[2])
    targets = sys.argv[3:] or ["ate", "att"]
    truth = population_truth(cell, 400_000)
    original = dm.smoothed_variance
    out = {t: {"est": [], **{v: [] for v in VARIANTS}} for t in targets}
    for rep in range(reps):
        draw = cell.simulate(cell.n, np.random.default_rng([7, rep]))
        data = EstimationData(t=draw.t.copy(), y=draw.y.copy(), X=draw.X.copy(), covariates=draw.names)
        for target in targets:
            est = dm.DistanceMatchingEstimator(target_units=target).fit(data)
            out[target]["est"].append(est.effect_)
            for name, variant in VARIANTS.items():
                dm.smoothed_variance = variant
                out[target][name].append(est._std_error(data))
            dm.smoothed_variance = original
    for target, rows in out.items():
        est = np.array(rows["est"])
        sd = est.std(ddof=1)
        line = f"{target}: bias {est.mean() - truth[target]:+.4f} SD {sd:.4f}"
        for name in VARIANTS:
            se = np.array(rows[name])
            cover = np.mean(np.abs(est - truth[target]) <= 1.959964 * se)
            line += f" | {name}: SE/SD {se.mean() / sd:.3f} cover {cover:.3f}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
