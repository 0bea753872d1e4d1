import sys, numpy as np
sys.path.insert(0, "/work/wt/fix13/benchmarks")
from grid_dgps import BASE_PS, BASE_OUTCOME
for scale in (1.0, 2.0):
    a = scale * BASE_PS; b = BASE_OUTCOME
    bperp = b - a * (a @ b) / (a @ a)
    rng = np.random.default_rng(0); Z = rng.standard_normal((400000, 5))
    p = 1 / (1 + np.exp(-(0.2 + Z @ a))); f = p * (1 - p)
    D = np.column_stack([np.ones(len(p)), Z]); I = (D * f[:, None]).T @ D / len(p)
    c = np.r_[0, bperp]
    print(scale, "ATE c'I^-1c oracle", c @ np.linalg.solve(I, c))
    ct = np.r_[0, bperp] * (f * (1 + p / (1 - p))).mean() / p.mean()
    print(scale, "ATT c'I^-1c oracle", ct @ np.linalg.solve(I, ct))
