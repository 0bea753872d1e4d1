"""Why does psm under-cover on the limited_overlap / small_n grid cells? (diagnosis, not a test)

Per replication of a grid cell: psm (tool defaults) on the estimated logistic score and on the TRUE
score, for ATE and ATT: estimate, the reported SE (Abadie-Imbens 2016) and the Abadie-Imbens 2006 SE.
Prints SE/SD and coverage of each, so a gap can be put on the point estimate (bias), on the 2006 variance
(checked with the true score, where it is the right formula) or on the 2016 estimated-score adjustment.

    python benchmarks/psm_se_diagnosis.py CELL REPS [k] [bias_adjust|none] [sigma1] [raw_sigma]

``sigma1``: the conditional variances set to the true noise variance 1 (isolates the noise of their
nearest-neighbour estimates); only the estimated score then.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from grid_dgps import CELLS, population_truth  # noqa: E402

import causal_cli.estimators.psm as psm_module  # noqa: E402
from causal_cli.estimators.base import EstimationData  # noqa: E402


def fit(draw, target, true_score, k, **extra):
    original = psm_module.propensity_scores
    if true_score:
        psm_module.propensity_scores = lambda *a, **kw: (draw.e.copy(), None)
    try:
        data = EstimationData(t=draw.t.copy(), y=draw.y.copy(), X=draw.X.copy(), covariates=draw.names)
        est = psm_module.PSMEstimator(target_units=target, k=k, **extra).fit(data)
    finally:
        psm_module.propensity_scores = original
    return est.effect_, est.std_error_, est.se_abadie_imbens_2006_


def main() -> None:
    cell = CELLS[sys.argv[1]]
    reps = int(sys.argv[2])
    k = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    extra = {"bias_adjust": len(sys.argv) > 4 and sys.argv[4] == "bias_adjust"}
    scores = (False, True)
    if "sigma1" in sys.argv[5:]:
        psm_module.tied_neighbour_variance_sorted = lambda s, y: np.ones(s.shape[0])
    if "raw_sigma" in sys.argv[5:]:  # the unsmoothed nearest-neighbour variances
        psm_module.smoothed_variance_sorted = lambda sigma2: sigma2
        scores = (False,)
    truth = population_truth(cell, 400_000)
    rows = {}
    for rep in range(reps):
        draw = cell.simulate(cell.n, np.random.default_rng([7, rep]))
        for target in ("ate", "att"):
            for true_score in scores:
                rows.setdefault((target, true_score), []).append(fit(draw, target, true_score, k, **extra))
    for (target, true_score), values in rows.items():
        est, se16, se06 = (np.array(v) for v in zip(*values))
        sd = est.std(ddof=1)
        tr = truth[target]
        line = f"{target} {'true ' if true_score else 'estim'} score: bias {est.mean() - tr:+.4f} SD {sd:.4f}"
        for name, se in (("2016", se16), ("2006", se06)):
            cover = np.mean(np.abs(est - tr) <= 1.959964 * se)
            line += f" | {name}: SE/SD {se.mean() / sd:.3f} cover {cover:.3f}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
