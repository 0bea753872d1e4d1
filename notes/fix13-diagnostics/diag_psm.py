import sys, numpy as np
sys.path.insert(0, "/work/wt/fix13/benchmarks"); sys.path.insert(0, "/work/wt/fix13")
from grid_dgps import CELLS
from causal_cli.estimators.base import EstimationData
from causal_cli.estimators.psm import PSMEstimator, conditional_covariances, ai2016_variance_change

cell = CELLS[sys.argv[1]]; target = sys.argv[2]; R = int(sys.argv[3])
LS = (4, 8, 16, 32)
rng = np.random.default_rng(77)
rows = []
for r in range(R):
    d = cell.simulate(cell.n, rng)
    data = EstimationData(t=d.t.copy(), y=d.y.copy(), X=d.X.copy(), covariates=d.names)
    est = PSMEstimator(target_units=target).fit(data)
    order, s, t, y, _, k = est._state
    keep, unit_effect = est._units()
    Xs = data.X[order]
    se06 = est.se_abadie_imbens_2006_
    at = np.arange(data.n)
    spread = Xs.std(axis=0)
    Zs = (Xs - Xs.mean(axis=0)) / np.where(spread > 0, spread, 1.0)
    design = np.column_stack([np.ones(at.size), Zs[at]])
    out = [est.effect_, se06, est.std_error_]
    for L in LS:
        covs = [conditional_covariances(s, g, Zs, y, at, neighbours=L) for g in (t, ~t)]
        ch = ai2016_variance_change(target, s[at], design, unit_effect[at], est.effect_, *covs)
        out.append(np.sqrt(max(se06**2 + ch / data.n, 1e-12)))
    truth = 2.0 if target == "ate" else None
    rows.append(out)
a = np.array(rows)
sd = a[:, 0].std(ddof=1)
truth = 2.0 if target == "ate" or sys.argv[1] != "heterogeneous" else 2.728
print(sys.argv[1:], "bias", a[:, 0].mean() - truth, "SD", sd)
for j, name in enumerate(["2006", "current2016"] + [f"L={L}" for L in LS]):
    se = a[:, 1 + j]
    cov = np.mean(np.abs(a[:, 0] - truth) <= 1.959964 * se)
    print(f"{name:12s} SE/SD {se.mean() / sd:.3f} cover {cov:.3f}")
