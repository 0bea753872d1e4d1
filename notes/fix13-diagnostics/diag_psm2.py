import sys, numpy as np
sys.path.insert(0, "/work/wt/fix13/benchmarks"); sys.path.insert(0, "/work/wt/fix13")
from grid_dgps import CELLS
from causal_cli.estimators.base import EstimationData
from causal_cli.estimators.psm import PSMEstimator, conditional_covariances

cell = CELLS[sys.argv[1]]; target = sys.argv[2]; R = int(sys.argv[3]); truth = float(sys.argv[4])
rng = np.random.default_rng(79)
rows = []
for r in range(R):
    d = cell.simulate(cell.n, rng)
    data = EstimationData(t=d.t.copy(), y=d.y.copy(), X=d.X.copy(), covariates=d.names)
    est = PSMEstimator(target_units=target).fit(data)
    order, s, t, y, _, k = est._state
    keep, ue = est._units()
    Xs = data.X[order]; n = data.n
    Zs = (Xs - Xs.mean(0)) / Xs.std(0)
    covs = [conditional_covariances(s, g, Zs, y, np.arange(n)) for g in (t, ~t)]
    design = np.column_stack([np.ones(n), Zs])
    ps = s; f = ps * (1 - ps)
    I = (design * f[:, None]).T @ design / n
    pad = np.zeros((n, 1)); cov1, cov0 = np.hstack([pad, covs[0]]), np.hstack([pad, covs[1]])
    if target == "ate":
        c = ((cov1 / ps[:, None] + cov0 / (1 - ps)[:, None]) * f[:, None]).mean(0)
        cc, dd, dsm, dtrue = c @ np.linalg.solve(I, c), 0, 0, 0
    else:
        share = ps.mean()
        c = ((cov1 + (ps / (1 - ps))[:, None] * cov0) * f[:, None]).mean(0) / share
        cc = c @ np.linalg.solve(I, c)
        dv = (design * (f * (ue - est.effect_))[:, None]).mean(0) / share
        dd = dv @ np.linalg.solve(I, dv)
        # smoothed unit effect: running mean over 41 units in score order
        w = 41; sm = np.convolve(ue, np.ones(w) / w, mode="same")
        dv2 = (design * (f * (sm - est.effect_))[:, None]).mean(0) / share
        dsm = dv2 @ np.linalg.solve(I, dv2)
        tt = d.tau[order]
        dv3 = (design * (f * (tt - est.effect_))[:, None]).mean(0) / share
        dtrue = dv3 @ np.linalg.solve(I, dv3)
    rows.append([est.effect_, est.se_abadie_imbens_2006_, est.std_error_, cc, dd, dsm, dtrue])
a = np.array(rows); n = cell.n
sd = a[:, 0].std(ddof=1)
print(sys.argv[1:], "bias %.4f SD %.4f" % (a[:, 0].mean() - truth, sd))
print("N*(SD^2 - se06^2) needed change: %.2f" % (n * (sd**2 - np.mean(a[:, 1] ** 2))))
print("mean -c'Ic %.2f  d'Id %.2f  d_smooth %.2f  d_true %.2f" % (-a[:, 3].mean(), a[:, 4].mean(), a[:, 5].mean(), a[:, 6].mean()))
print("SE/SD current %.3f" % (a[:, 2].mean() / sd))
