"""Refit cost of the built-in propensity model, as the refuters pay it (prop's before/after check).

python benchmarks/prop_bench_refits.py            # 100k rows: placebo, random common cause and subset refits
"""

import sys
import time

import numpy as np

from causal_cli.estimators.base import EstimationData
from causal_cli.estimators.propensity import propensity_scores
from causal_cli.estimators.psm import PSMEstimator

n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
rng = np.random.default_rng(0)
X = np.column_stack([rng.normal(size=n), rng.gamma(2, 1.5, n), rng.uniform(0, 1, n), rng.normal(50, 10, n)])
t = (
    rng.random(n) < 1 / (1 + np.exp(-(-0.5 + 0.5 * X[:, 0] + 0.3 * X[:, 1] - 0.02 * (X[:, 3] - 50))))
).astype(float)
y = 2 * t + X @ np.array([1.0, 0.5, 2.0, 0.05]) + rng.normal(size=n)
data = EstimationData(t=t, y=y, X=X)
est = PSMEstimator().fit(data)
cases = {
    "placebo": lambda i: data.with_treatment(np.random.default_rng(i).permutation(t)),
    "random_common_cause": lambda i: data.with_covariate(np.random.default_rng(i).normal(size=n), "w"),
    "data_subset": lambda i: data.take(np.sort(np.random.default_rng(i).permutation(n)[: int(0.8 * n)])),
}

for name, make in cases.items():
    inputs = [make(i) for i in range(20)]
    best = np.inf
    for _ in range(5):
        start = time.process_time()
        for d in inputs:
            propensity_scores(d, None, 1.0, est.warm_start_)
        best = min(best, time.process_time() - start)
    print(
        f"{name:22s} {best / len(inputs) * 1000:7.2f} ms CPU per propensity refit (best of 5 x 20, n = {n:,})"
    )
