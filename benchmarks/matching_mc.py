"""Monte Carlo of the matching estimators' CI coverage off and on our own DGP (not a test).

Scenarios (each replication draws a fresh data set from its own seed):

- ``dm5`` / ``dm20``: distance_matching (Mahalanobis, k = 1) with 5 / 20 standard normal covariates,
  logistic propensity, linear outcome in each arm with a heterogeneous effect 1 + 0.5 x1; with and
  without the bias adjustment.
- ``psm_growth``: psm on the product_growth DGP (``causal_cli.data.synthetic``, strong confounding).
- ``psm_binary``: psm on 3 binary confounders (8 distinct propensity scores: ties everywhere),
  heterogeneous effect 1 + x1.
- ``psm_score_noise``: psm where the estimated score matters (Abadie & Imbens 2016's point): two
  normal covariates, only x1 drives treatment, the outcome and the effect depend on x2 as well, so
  matching on the estimated score (which puts noise on x2) changes the variance.

For psm the table shows the Abadie-Imbens (2016) SE (the default) and the 2006 one it replaces, for
plain matching (the default) and with ``bias_adjust``.

    python benchmarks/matching_mc.py --reps 500            # all scenarios, n = 2,000
    python benchmarks/matching_mc.py --reps 100 --scenarios psm_binary
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

Z95 = 1.959963984540054
SCENARIOS = ("dm5", "dm20", "psm_growth", "psm_binary", "psm_score_noise")
TARGETS = ("ate", "att")


def data_of(t, y, X):
    from causal_cli.estimators.base import EstimationData

    return EstimationData(t=t.astype(float), y=y.astype(float), X=np.ascontiguousarray(X, dtype=float))


# --- distance matching: p normal covariates ------------------------------------------------------------------


def dm_draw(rng, n, p):
    X = rng.standard_normal((n, p))
    logit = 0.2 + X @ np.full(p, 1.0 / np.sqrt(p))
    t = rng.random(n) < 1 / (1 + np.exp(-logit))
    y = X @ np.full(p, 1.0) + t * (1 + 0.5 * X[:, 0]) + rng.standard_normal(n)
    return t, y, X


def dm_truth(p, draws=4_000_000):
    """Population ATE (exactly 1) and ATT (1 + 0.5 E[x1 | treated], by a large seeded draw)."""
    rng = np.random.default_rng(12345)
    x1 = rng.standard_normal(draws)
    rest = rng.standard_normal(draws) * np.sqrt(p - 1)  # the sum of the other p - 1 covariates
    w = 1 / (1 + np.exp(-(0.2 + (x1 + rest) / np.sqrt(p))))
    return {"ate": 1.0, "att": 1 + 0.5 * float((w * x1).sum() / w.sum())}


# --- psm: three binary confounders ---------------------------------------------------------------------------

BIN_P = (0.5, 0.4, 0.6)


def bin_logit(X):
    return -0.3 + 1.0 * X[:, 0] + 0.8 * X[:, 1] - 0.7 * X[:, 2]


def bin_draw(rng, n):
    X = (rng.random((n, 3)) < np.array(BIN_P)).astype(float)
    t = rng.random(n) < 1 / (1 + np.exp(-bin_logit(X)))
    y = 1 + 2 * X[:, 0] + X[:, 1] - X[:, 2] + t * (1 + X[:, 0]) + rng.standard_normal(n)
    return t, y, X


def bin_truth():
    """Exact, by enumerating the 8 cells."""
    cells = np.array([[a, b, c] for a in (0, 1) for b in (0, 1) for c in (0, 1)], dtype=float)
    prob = np.prod(np.where(cells == 1, BIN_P, 1 - np.array(BIN_P)), axis=1)
    e = 1 / (1 + np.exp(-bin_logit(cells)))
    tau = 1 + cells[:, 0]
    return {"ate": float(prob @ tau), "att": float((prob * e) @ tau / (prob @ e))}


# --- psm: the estimated score's noise direction matters ----------------------------------------------------


def noise_draw(rng, n):
    X = rng.standard_normal((n, 2))
    t = rng.random(n) < 1 / (1 + np.exp(-(0.3 + 0.8 * X[:, 0])))
    y = X[:, 0] + 2 * X[:, 1] + t * (1 + X[:, 1] + 0.5 * X[:, 0]) + rng.standard_normal(n)
    return t, y, X


def noise_truth(draws=4_000_000):
    """ATE = 1 exactly; ATT = 1 + 0.5 E[x1 | treated] (x2 is independent of treatment)."""
    rng = np.random.default_rng(54321)
    x1 = rng.standard_normal(draws)
    w = 1 / (1 + np.exp(-(0.3 + 0.8 * x1)))
    return {"ate": 1.0, "att": 1 + 0.5 * float((w * x1).sum() / w.sum())}


# --- psm: product_growth -------------------------------------------------------------------------------------


def growth_draw(seed, n):
    sys.path.insert(0, str(Path(__file__).parent))
    from coverage_grid import compose

    from causal_cli.data.synthetic import ProductGrowthDGP

    global _GROWTH_CFG
    if _GROWTH_CFG is None:
        _GROWTH_CFG = compose(["dgp=product_growth"]).dgp
    from omegaconf import OmegaConf

    cfg = OmegaConf.merge(_GROWTH_CFG, {"seed": seed, "n": n})
    dataset = ProductGrowthDGP(cfg).dataset()
    frame = dataset.frame
    X = frame[["account_age", "activity"]].to_numpy(dtype=float)
    return frame["feature_used"].to_numpy(), frame["spend"].to_numpy(dtype=float), X, dataset.reference


_GROWTH_CFG = None


def run(scenario, reps, n):
    from causal_cli.estimators.distance_matching import DistanceMatchingEstimator
    from causal_cli.estimators.psm import PSMEstimator

    rows = []
    truth = {
        "dm5": lambda: dm_truth(5),
        "dm20": lambda: dm_truth(20),
        "psm_binary": bin_truth,
        "psm_score_noise": noise_truth,
    }.get(scenario, lambda: None)()
    for rep in range(reps):
        rng = np.random.default_rng(np.random.SeedSequence([rep, SCENARIOS.index(scenario)]))
        if scenario.startswith("dm"):
            data = data_of(*dm_draw(rng, n, int(scenario[2:])))
            fits = {
                f"{target}{'' if adjust else ' unadjusted'}": DistanceMatchingEstimator(
                    target_units=target, bias_adjust=adjust
                )
                for target in TARGETS
                for adjust in (True, False)
            }
        else:
            if scenario == "psm_binary":
                data = data_of(*bin_draw(rng, n))
            elif scenario == "psm_score_noise":
                data = data_of(*noise_draw(rng, n))
            else:
                t, y, X, truth = growth_draw(rep, n)
                data = data_of(t, y, X)
            fits = {
                f"{target}{' bias-adjusted' if adjust else ''}": PSMEstimator(
                    target_units=target, bias_adjust=adjust
                )
                for target in TARGETS
                for adjust in (False, True)
            }
        for label, est in fits.items():
            est.fit(data)
            target = label.split()[0]
            row = {"label": label, "truth": truth[target], "estimate": est.effect_, "se": est.std_error_}
            if isinstance(est, PSMEstimator):
                row["se_2006"] = est.se_abadie_imbens_2006_
                row["se_method"] = est.se_method_
            rows.append(row)
    return rows


def table(scenario, rows, reps, n, seconds):
    lines = [f"{scenario}: {reps} replications, n = {n:,} ({seconds:.0f} s)"]
    lines.append(
        f"  {'estimand':<16} {'truth':>7} {'bias':>8} {'SD':>7} {'mean SE':>8} {'SE/SD':>6} {'coverage':>9}"
        "   (AI 2006 SE: SE/SD, coverage)"
    )
    for label in dict.fromkeys(r["label"] for r in rows):
        sel = [r for r in rows if r["label"] == label]
        est = np.array([r["estimate"] for r in sel])
        truth = np.array([r["truth"] for r in sel])
        se = np.array([r["se"] for r in sel])
        sd = float(np.std(est, ddof=1))
        cover = float(np.mean(np.abs(est - truth) <= Z95 * se))
        line = (
            f"  {label:<16} {truth.mean():7.3f} {np.mean(est - truth):+8.4f} {sd:7.4f} {se.mean():8.4f} "
            f"{se.mean() / sd:6.2f} {100 * cover:8.1f}%"
        )
        if "se_2006" in sel[0]:
            old = np.array([r["se_2006"] for r in sel])
            old_cover = float(np.mean(np.abs(est - truth) <= Z95 * old))
            fallback = sum(r["se_method"] != "abadie_imbens_2016" for r in sel)
            line += f"   ({old.mean() / sd:.2f}, {100 * old_cover:.1f}%)"
            if fallback:
                line += f"  [{fallback} runs fell back to AI 2006]"
        lines.append(line)
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=500)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--scenarios", nargs="+", default=list(SCENARIOS), choices=SCENARIOS)
    args = parser.parse_args(argv)
    for scenario in args.scenarios:
        start = time.perf_counter()
        rows = run(scenario, args.reps, args.n)
        print(table(scenario, rows, args.reps, args.n, time.perf_counter() - start), flush=True)


if __name__ == "__main__":
    main()
