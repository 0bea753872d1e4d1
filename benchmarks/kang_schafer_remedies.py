"""Kang-Schafer cell with gradient-boosting nuisances: does clipping or a Hajek AIPW restore coverage?

One line per replication (fix13's diagnosis for issue #13): replication, min and max cross-fitted
propensity, then (estimate, SE) for ATE and ATT with the raw scores, with scores clipped to [0.01, 0.99]
(plus the normalised/Hajek ATE), and clipped to [0.025, 0.975]. Usage:
``python benchmarks/kang_schafer_remedies.py REPS FIRST_REP > out.txt``.
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from grid_dgps import CELLS  # noqa: E402

from causal_cli.estimators.aipw import AIPWEstimator  # noqa: E402
from causal_cli.estimators.base import EstimationData  # noqa: E402
from causal_cli.estimators.outcome import cross_fit_outcome, cross_fitted_scores, efficient_score  # noqa: E402

cell = CELLS["misspecified"]
R = int(sys.argv[1])
start = int(sys.argv[2])
reg = {"_target_": "sklearn.ensemble.HistGradientBoostingRegressor", "early_stopping": True}
clf = {"_target_": "sklearn.ensemble.HistGradientBoostingClassifier", "early_stopping": True}


def hajek_ate(y, t, mu1, mu0, e):
    w1, w0 = t / e, (1 - t) / (1 - e)
    r1 = (w1 * (y - mu1)).sum() / w1.sum()
    r0 = (w0 * (y - mu0)).sum() / w0.sum()
    tau = (mu1 - mu0).mean() + r1 - r0
    n = len(y)
    phi = mu1 - mu0 - (mu1 - mu0).mean() + w1 * (y - mu1 - r1) / w1.mean() - w0 * (y - mu0 - r0) / w0.mean()
    return tau, np.sqrt((phi**2).sum()) / n


for r in range(start, start + R):
    rng = np.random.default_rng(1000 + r)
    d = cell.simulate(cell.n, rng)
    data = EstimationData(t=d.t.copy(), y=d.y.copy(), X=d.X.copy(), covariates=d.names)
    est = AIPWEstimator(outcome_model=reg, propensity_model=clf, random_state=r)
    folds, ps = cross_fitted_scores(est, data)
    mu1, mu0 = cross_fit_outcome(data, folds, reg, r, by_arm=True)
    y, t = data.y, data.t
    out = [r, ps.min(), ps.max()]
    for lo in (0.0, 0.01, 0.025):
        e = np.clip(ps, lo, 1 - lo) if lo else ps
        for tgt in ("ate", "att"):
            eff, infl = efficient_score(y, t, mu1, mu0, e, tgt)
            out += [eff, np.sqrt((infl**2).sum()) / data.n]
        if lo == 0.01:
            out += list(hajek_ate(y, t, mu1, mu0, e))
    print(" ".join(f"{v:.6g}" for v in out), flush=True)
