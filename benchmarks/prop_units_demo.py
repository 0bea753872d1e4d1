"""psm / ipw / ps_stratification on product_growth (n = 5,000, seed 0, truth 10) with one confounder
recorded in other units. Run it on the old and new code (PYTHONPATH) to compare.

    python benchmarks/prop_units_demo.py
"""

import sys

import numpy as np

sys.path.insert(0, ".")
from benchmarks.coverage_grid import compose  # noqa: E402
from causal_cli import registry  # noqa: E402
from causal_cli.data import load_dataset  # noqa: E402
from causal_cli.graph import CausalGraph  # noqa: E402
from causal_cli.identify import identify  # noqa: E402
from causal_cli.pipeline import build_estimation_data  # noqa: E402

cfg = compose(["graph=product_growth", "dgp=product_growth", "dgp.n=5000", "seed=0"])
graph = CausalGraph.from_config(cfg.graph)
frame = load_dataset(cfg, graph).frame
identification = identify(graph, "backdoor")
print(f"adjustment set {identification.adjustment_set}; rescaling {identification.adjustment_set[0]}")
for name in ("psm", "ipw", "ps_stratification"):
    cells = []
    for factor in (1.0, 0.02, 1000.0):
        scaled = frame.copy()
        column = identification.adjustment_set[0]
        scaled[column] = scaled[column] * factor
        data = build_estimation_data(scaled, graph, identification)
        est = registry.load("estimator", name)(random_state=np.random.SeedSequence([0, 0xE57])).fit(data)
        cells.append(f"x{factor:g}: {est.effect_:.3f} (SE {est.std_error_:.3f})")
    print(f"{name:18s} " + "  ".join(cells))
