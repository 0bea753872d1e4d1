"""The A/B test part of a run's report, as plain text rows for the view model (causal_cli.report.view).

Everything is read from ``results.json``'s ``experiment`` block, so ``causal report RUN_DIR`` redraws it.
"""

from __future__ import annotations

from typing import Any

CORRECTION_NAMES = {"bh": "Benjamini-Hochberg", "holm": "Holm", "none": "no correction"}


def num(value) -> str:
    return "—" if value is None else f"{value:,.4g}"


def pct(value, digits: int = 2) -> str:
    return "—" if value is None else f"{100 * value:+.{digits}f}%"


def interval(est: dict | None, fmt=num) -> str:
    if not est or est.get("ci_low") is None:
        return ""
    return f"[{fmt(est['ci_low'])}, {fmt(est['ci_high'])}]"


def design_line(r: dict[str, Any]) -> str:
    e = r["experiment"]
    srm = e["srm"]
    return (
        f"A/B test of {e['treatment']} (randomized, planned {100 * srm['planned_treatment_share']:g}% in treatment): "
        f"{r['n_rows']:,} units, {e['n_control']:,} control / {e['n_treatment']:,} treatment"
    )


def srm_line(e: dict[str, Any]) -> tuple[bool, str]:
    """(mismatch, sentence): a mismatch is a loud failure, the results are not to be trusted."""
    s = e["srm"]
    observed = f"{100 * s['observed_treatment_share']:.2f}% in treatment vs planned {100 * s['planned_treatment_share']:g}%"
    test = f"chi-square {s['chi2']:.2f}, p = {s['p_value']:.3g} (flag below {s['threshold']:g})"
    if s["mismatch"]:
        return True, (
            f"SAMPLE RATIO MISMATCH: {observed}; {test}. The assignment or the logging is broken: "
            "do not trust these estimates until the cause is found."
        )
    return False, f"Sample ratio check: {observed}; {test}: no mismatch."


def balance_line(e: dict[str, Any]) -> tuple[bool, str]:
    rows = e.get("balance") or []
    if not rows:
        return False, "Pre-period balance: no pre-period covariates declared (ab.pre_period)."
    parts = ", ".join(f"{row['covariate']} {row['smd']:+.3f}" for row in rows)
    bad = e.get("imbalanced") or []
    if bad:
        return True, (
            f"Pre-period imbalance: |SMD| above {e['smd_threshold']:g} for {', '.join(bad)} (SMD {parts}); "
            "check the randomization; CUPED corrects chance imbalance in the adjusted estimate."
        )
    return False, f"Pre-period balance: SMD {parts} (all within ±{e['smd_threshold']:g})."


METRIC_HEADER = [
    "metric",
    "method",
    "control",
    "treatment",
    "difference [CI]",
    "lift [CI]",
    "p (adj.)",
    "truth",
]


def short(value) -> str:
    return "—" if value is None else f"{value:,.3g}"


def metric_rows(e: dict[str, Any]) -> list[tuple[list[str], bool]]:
    """(cells, significant) per metric and method: the difference in means, then CUPED when it applies."""
    out = []
    for m in e["metrics"]:
        variants = [
            ("difference", "relative_lift", "diff. in means" if m["kind"] == "mean" else "ratio (delta)")
        ]
        if m.get("cuped_difference"):
            reduction = m.get("variance_reduction")
            label = f"CUPED, var −{100 * reduction:.0f}%" if reduction is not None else "CUPED"
            variants.append(("cuped_difference", "cuped_relative_lift", label))
        truth = m.get("truth_difference")
        for i, (diff_key, lift_key, label) in enumerate(variants):
            diff, lift = m[diff_key], m[lift_key]
            reported = i == len(variants) - 1
            p = "—" if diff.get("p_value") is None else f"{diff['p_value']:.2g}"
            if reported and m.get("p_adjusted") is not None:
                p += f" ({m['p_adjusted']:.2g})"
            truth_text = ""
            if truth is not None and i == 0:
                truth_text = short(truth)
                if m.get("truth_relative_lift") is not None:
                    truth_text += f" ({pct(m['truth_relative_lift'])})"
            out.append(
                (
                    [
                        m["name"] if i == 0 else "",
                        label,
                        num(m["control_mean"]) if i == 0 else "",
                        num(m["treatment_mean"]) if i == 0 else "",
                        f"{num(diff['value'])} {interval(diff, short)}",
                        f"{pct(lift['value'])} {interval(lift, lambda v: pct(v, 1))}",
                        p,
                        truth_text,
                    ],
                    bool(reported and m.get("significant")),
                )
            )
    return out


def metric_caption(e: dict[str, Any]) -> str:
    level = int(round(100 * e["ci_level"]))
    return (
        f"{level}% CIs (normal); lift = treatment / control − 1, delta-method CI; p (adj.): two-sided, "
        f"{CORRECTION_NAMES.get(e['correction'], e['correction'])} over {len(e['metrics'])} metrics; bold: "
        f"significant at {e['alpha']:g} after correction; truth: the simulation's"
    )


def primary_sentence(r: dict[str, Any]) -> str:
    e = r["experiment"]
    m = next(x for x in e["metrics"] if x["name"] == e["primary"])
    level = int(round(100 * e["ci_level"]))
    plain = f"{pct(m['relative_lift']['value'])} {interval(m['relative_lift'], pct)}"
    if m.get("cuped_relative_lift"):
        text = (
            f"Lift in {m['name']}: {pct(m['cuped_relative_lift']['value'])} {interval(m['cuped_relative_lift'], pct)} "
            f"with CUPED, {plain} without ({level}% CIs); CUPED removed "
            f"{100 * m['variance_reduction']:.0f}% of the variance."
        )
    else:
        text = f"Lift in {m['name']}: {plain} ({level}% CI)."
    if m.get("truth_relative_lift") is not None:
        text += f" Ground truth: {pct(m['truth_relative_lift'])}."
    return text


AA_HEADER = ["metric / family", "tests", "false positives", "rate", "95% MC CI"]


def aa_rows(e: dict[str, Any]) -> list[list[str]]:
    aa = e.get("aa")
    if not aa:
        return []
    n = aa["simulations"]

    def cells(label: str, rate: dict) -> list[str]:
        return [
            label,
            f"{n:,}",
            f"{rate['rejections']:,}",
            pct(rate["rate"], 1).lstrip("+"),
            interval(rate, lambda v: f"{100 * v:.1f}%"),
        ]

    rows = []
    for m in aa["metrics"]:
        rows.append(cells(f"{m['metric']} (diff. in means)", m["difference"]))
        if m.get("cuped"):
            rows.append(cells(f"{m['metric']} (CUPED)", m["cuped"]))
    for name, rate in aa["family"].items():
        label = (
            "any metric, uncorrected"
            if name == "uncorrected"
            else f"any metric, {CORRECTION_NAMES.get(name, name)}"
        )
        rows.append(cells(label, rate))
    return rows


def aa_caption(e: dict[str, Any]) -> str:
    aa = e["aa"]
    return (
        f"A/A: {aa['simulations']:,} re-randomizations of these units (planned split), p < {aa['alpha']:g}; "
        "every null is true, so the family rate is both the FWER and the FDR"
    )
