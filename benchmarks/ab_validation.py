"""Validation of the A/B analysis against simulated truth (not a test; numbers for the README).

    nice -n 10 python benchmarks/ab_validation.py              # the full validation (~ a few CPU-minutes)
    python benchmarks/ab_validation.py --scale 0.2             # a quick look with fewer simulated tests

Sections: CUPED's variance ratio vs 1 - rho^2; CI coverage (difference, CUPED, relative lift, ratio metric);
A/A false-positive rates per metric (fresh data sets and re-randomization); BH and Holm over 10 metrics
(family-wise error and FDR); SRM flag rates; power vs statsmodels and a simulated power check.
Everything is seeded: a rerun prints the same numbers.
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np
from omegaconf import OmegaConf

from causal_cli.abtest import aa, checks, estimates, multiple, power
from causal_cli.abtest.analysis import analyze_metrics
from causal_cli.abtest.config import ABConfig, MetricConfig
from causal_cli.data.ab import ABLaunchDGP, ABLaunchDGPConfig, ab_truth

LEVEL = 0.95


def ab_config(**kw):
    metrics = {
        "spend": MetricConfig(covariates=["pre_spend"]),
        "sessions": MetricConfig(covariates=["pre_sessions"]),
        "revenue_per_session": MetricConfig(numerator="spend", denominator="sessions"),
    }
    return OmegaConf.structured(ABConfig(metrics=metrics, pre_period=["pre_spend", "pre_sessions"], **kw))


def dgp(n, seed, **kw):
    cfg = OmegaConf.structured(ABLaunchDGPConfig(n=n, seed=seed, **kw))
    frame, _ = ABLaunchDGP(cfg).simulate(np.random.default_rng(np.random.SeedSequence([seed, 0xAB])))
    return cfg, frame


def rate_text(hits: int, n: int) -> str:
    low, high = aa.wilson_interval(hits, n)
    return f"{100 * hits / n:5.1f}% [{100 * low:.1f}, {100 * high:.1f}]"


def cuped_variance(reps: int, n: int) -> list[dict]:
    out = []
    for rho in (0.5, 0.65, 0.8):
        plain, cuped, reported = [], [], []
        for seed in range(reps):
            _, f = dgp(n, 10_000 + seed, pre_correlation=rho)
            y, t = f.spend.to_numpy(), f.variant.to_numpy(float)
            d = estimates.welch(y, t).difference(LEVEL)
            c = estimates.lin(y, t, f[["pre_spend"]].to_numpy()).difference(LEVEL)
            plain.append(d.value)
            cuped.append(c.value)
            reported.append((c.std_error / d.std_error) ** 2)
        ratio = np.var(cuped, ddof=1) / np.var(plain, ddof=1)
        # sampling error of a ratio of two correlated variances: bootstrap over the replications
        rng = np.random.default_rng(1)
        idx = rng.integers(0, reps, (2000, reps))
        boot = np.var(np.asarray(cuped)[idx], axis=1, ddof=1) / np.var(np.asarray(plain)[idx], axis=1, ddof=1)
        out.append(
            {
                "rho": rho,
                "theory_1_minus_rho2": 1 - rho**2,
                "empirical_variance_ratio": float(ratio),
                "empirical_ci": [float(np.quantile(boot, 0.025)), float(np.quantile(boot, 0.975))],
                "mean_reported_se2_ratio": float(np.mean(reported)),
                "reps": reps,
                "n": n,
            }
        )
    return out


def coverage(reps: int, n: int) -> dict:
    cfg = ab_config()
    keys = [
        ("spend", "difference"),
        ("spend", "cuped_difference"),
        ("spend", "relative_lift"),
        ("spend", "cuped_relative_lift"),
        ("revenue_per_session", "difference"),
        ("revenue_per_session", "relative_lift"),
    ]
    hits = dict.fromkeys(keys, 0)
    for seed in range(reps):
        dcfg, f = dgp(n, 20_000 + seed, true_effect=1.0)
        truth = ab_truth(dcfg)
        results = {m.name: m for m in analyze_metrics(f, f.variant.to_numpy(float), cfg)}
        for name, key in keys:
            est = getattr(results[name], key)
            column = "spend" if name == "spend" else "spend/sessions"
            target = truth[column]["relative_lift" if "relative" in key else "difference"]
            hits[(name, key)] += est.ci_low <= target <= est.ci_high
    return {f"{name}.{key}": hits[(name, key)] / reps for name, key in keys} | {"reps": reps, "n": n}


def aa_fresh(reps: int, n: int) -> dict:
    """A/A tests on independent data sets (true_effect = 0): the false-positive rate per metric."""
    cfg = ab_config(correction="bh")
    names = ["spend", "sessions", "revenue_per_session"]
    welch = dict.fromkeys(names, 0)
    cuped = dict.fromkeys(names, 0)
    family_raw = family_bh = family_holm = 0
    for seed in range(reps):
        _, f = dgp(n, 30_000 + seed, true_effect=0.0)
        results = analyze_metrics(f, f.variant.to_numpy(float), cfg)
        p = np.array([m.p_value for m in results])
        for m in results:
            welch[m.name] += m.difference.p_value < 0.05
            if m.cuped_difference is not None:
                cuped[m.name] += m.cuped_difference.p_value < 0.05
        family_raw += bool(np.any(p < 0.05))
        family_bh += bool(np.any(multiple.benjamini_hochberg(p) <= 0.05))
        family_holm += bool(np.any(multiple.holm(p) <= 0.05))
    return {
        "reps": reps,
        "n": n,
        "difference": {k: v / reps for k, v in welch.items()},
        "cuped": {k: v / reps for k, v in cuped.items() if k != "revenue_per_session"},
        "family_uncorrected": family_raw / reps,
        "family_bh": family_bh / reps,
        "family_holm": family_holm / reps,
        "counts": {"difference": welch, "cuped": cuped},
    }


def aa_rerandomized(sims: int, n: int) -> dict:
    """The run's A/A mode (``experiment=aa_check``): re-randomizations of one data set."""
    _, f = dgp(n, 40_000, true_effect=0.0)
    return aa.aa_sweep(f, ab_config(), sims, seed=0)


def ten_metrics(reps: int, n: int, effects: int, rho: float = 0.3) -> dict:
    """10 correlated normal metrics (common factor, pairwise correlation ``rho``); ``effects`` of them truly move.

    With every null true (effects = 0) the FWER and the FDR coincide. Otherwise FDR = E[false / max(discoveries, 1)]
    and FWER = P(any false discovery), for BH and Holm at q = alpha = 0.05.
    """
    m, alpha = 10, 0.05
    out = {name: {"fwer": 0, "fdp_sum": 0.0, "true_discoveries": 0} for name in ("none", "bh", "holm")}
    rng = np.random.default_rng(50_000 + effects)
    shift = np.zeros(m)
    shift[:effects] = 0.12  # in SDs: power about 0.8 per moved metric at n = 2,000
    for _ in range(reps):
        t = (rng.random(n) < 0.5).astype(float)
        common = rng.normal(0, 1, (n, 1))
        y = math.sqrt(rho) * common + math.sqrt(1 - rho) * rng.normal(0, 1, (n, m)) + t[:, None] * shift
        p = np.array([estimates.welch(y[:, k], t).difference(LEVEL).p_value for k in range(m)])
        for name in out:
            reject = multiple.adjust(p, name) <= alpha
            false = int(np.sum(reject[effects:]))
            out[name]["fwer"] += false > 0
            out[name]["fdp_sum"] += false / max(int(reject.sum()), 1)
            out[name]["true_discoveries"] += int(np.sum(reject[:effects]))
    return {
        name: {
            "fwer": v["fwer"] / reps,
            "fdr": v["fdp_sum"] / reps,
            "power_per_true_effect": v["true_discoveries"] / (reps * effects) if effects else None,
        }
        for name, v in out.items()
    } | {"reps": reps, "n": n, "true_effects": effects, "pairwise_correlation": rho}


def srm(reps: int) -> dict:
    rng = np.random.default_rng(60_000)
    n = 1_000_000
    exact = checks.sample_ratio_mismatch(495_000, 505_000, 0.5, 0.001)
    flagged_bad = flagged_good = flagged_good_05 = 0
    for _ in range(reps):
        k = int(rng.binomial(n, 0.505))
        flagged_bad += checks.sample_ratio_mismatch(n - k, k, 0.5, 0.001).mismatch
        k = int(rng.binomial(n, 0.5))
        check = checks.sample_ratio_mismatch(n - k, k, 0.5, 0.001)
        flagged_good += check.mismatch
        flagged_good_05 += check.p_value < 0.05
    return {
        "n": n,
        "reps": reps,
        "exact_50.5_49.5": {"chi2": exact.chi2, "p_value": exact.p_value, "mismatch": exact.mismatch},
        "flag_rate_at_50.5_share": flagged_bad / reps,
        "false_flag_rate_at_50_50_threshold_0.001": flagged_good / reps,
        "p_below_0.05_at_50_50": flagged_good_05 / reps,
    }


def power_check(reps: int) -> dict:
    from statsmodels.stats.power import NormalIndPower, TTestIndPower

    scenarios = [
        (30, 1, 0.05, 0.8, 0.5),
        (12, 0.5, 0.01, 0.9, 0.5),
        (30, 2, 0.05, 0.8, 0.2),
        (5, 0.1, 0.1, 0.95, 0.7),
    ]
    rows = []
    for sd, mde, alpha, target, ratio in scenarios:
        ours = power.sample_size(mde=mde, sd=sd, alpha=alpha, power=target, ratio=ratio)
        k = ratio / (1 - ratio)
        normal = NormalIndPower().solve_power(effect_size=mde / sd, alpha=alpha, power=target, ratio=k)
        ttest = TTestIndPower().solve_power(effect_size=mde / sd, alpha=alpha, power=target, ratio=k)
        rows.append(
            {
                "sd": sd,
                "mde": mde,
                "alpha": alpha,
                "power": target,
                "treatment_share": ratio,
                "n_control": ours.n_control,
                "statsmodels_normal": normal,
                "statsmodels_ttest": ttest,
                "rel_diff_normal": ours.n_control / normal - 1,
                "rel_diff_ttest": ours.n_control / ttest - 1,
            }
        )
    # simulated power at the planned n: the launch DGP (rho 0.65), effect $1, without and with CUPED
    dcfg = ABLaunchDGPConfig(true_effect=1.0)
    sd = dcfg.spend_slope * dcfg.pre_spend_mean * dcfg.pre_spend_cv / dcfg.pre_correlation
    simulated = {}
    for label, rho in (("without_cuped", 0.0), ("with_cuped", dcfg.pre_correlation)):
        n = power.sample_size(mde=1.0, sd=sd, cuped_rho=rho).n_total
        hits = 0
        for seed in range(reps):
            _, f = dgp(n, 70_000 + seed, true_effect=1.0)
            y, t = f.spend.to_numpy(), f.variant.to_numpy(float)
            est = (
                estimates.lin(y, t, f[["pre_spend"]].to_numpy()) if rho else estimates.welch(y, t)
            ).difference(LEVEL)
            hits += est.p_value < 0.05
        simulated[label] = {
            "n_total": n,
            "sd": sd,
            "planned_power": 0.8,
            "simulated_power": hits / reps,
            "reps": reps,
        }
    return {"vs_statsmodels": rows, "simulated": simulated}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every replication count")
    parser.add_argument("--json", help="also write the numbers to this file")
    args = parser.parse_args()

    def r(k: int) -> int:
        return max(20, int(k * args.scale))

    report: dict = {}
    started = time.perf_counter()

    def section(name, fn, *a):
        t0 = time.perf_counter()
        report[name] = fn(*a)
        print(f"\n== {name} ({time.perf_counter() - t0:.0f} s)")
        print(json.dumps(report[name], indent=1, default=float))

    section("cuped_variance", cuped_variance, r(500), 5_000)
    section("coverage_n2000", coverage, r(1000), 2_000)
    section("coverage_n20000", coverage, r(1000), 20_000)
    section("aa_fresh_data", aa_fresh, r(2000), 5_000)
    section("aa_rerandomized", aa_rerandomized, r(1000), 10_000)
    section("ten_metrics_all_null", ten_metrics, r(2000), 2_000, 0)
    section("ten_metrics_three_true", ten_metrics, r(2000), 2_000, 3)
    section("srm", srm, r(10_000))
    section("power", power_check, r(500))
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(report, fh, indent=1, default=float)


if __name__ == "__main__":
    main()
