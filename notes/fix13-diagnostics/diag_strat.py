import sys, numpy as np
sys.path.insert(0, "/work/wt/fix13/benchmarks"); sys.path.insert(0, "/work/wt/fix13")
from grid_dgps import CELLS, population_truth
from causal_cli.estimators.base import EstimationData
from causal_cli.estimators.ps_stratification import PSStratificationEstimator
from causal_cli.estimators.propensity import standardizer

cellname, target, R = sys.argv[1], sys.argv[2], int(sys.argv[3])
cell = CELLS[cellname]
rng = np.random.default_rng(78)
rows = []
for r in range(R):
    d = cell.simulate(cell.n, rng)
    data = EstimationData(t=d.t.copy(), y=d.y.copy(), X=d.X.copy(), covariates=d.names)
    est = PSStratificationEstimator(target_units=target).fit(data)
    codes, keep, share, n_t, n_c, mean_t, mean_c, stratum_effect, within = est._state
    ps = est.propensity_; t = data.t; n = data.n
    cols = data.columns
    design = (cols.T @ standardizer(cols).jacobian)[:, ~standardizer(cols).constant]
    f = ps * (1 - ps)
    info = (design * f[:, None]).T @ design / n
    pt = ps if target == "att" else 1 - ps
    out = [est.effect_, est.std_error_]
    for tau in ():
        dd = (design * (f * (tau - est.effect_))[:, None]).mean(axis=0) / pt.mean()
        extra = dd @ np.linalg.solve(info, dd)
        out.append(np.sqrt(est.std_error_**2 + extra / n))
    rows.append(out)
a = np.array(rows)
truth = float(sys.argv[4])
sd = a[:, 0].std(ddof=1)
print(sys.argv[1:], "bias", a[:, 0].mean() - truth, "SD", sd)
for j, name in enumerate(["new"]):
    se = a[:, 1 + j]
    print(f"{name:16s} SE/SD {se.mean() / sd:.3f} cover {np.mean(np.abs(a[:, 0] - truth) <= 1.959964 * se):.3f}")
