"""Sentences about the closed-form sensitivity block (causal_cli.sensitivity), shared by every report."""

from __future__ import annotations

from typing import Any


def headline(block: dict[str, Any] | None) -> str | None:
    """One sentence for the terminal and summary.md: how strong a confounder would explain the estimate away."""
    if not block:
        return None
    if not block.get("applies"):
        return block.get("message")
    rv, rv_a = block.get("robustness_value"), block.get("robustness_value_alpha")
    if rv is None:
        return None
    level = 1 - float(block.get("alpha", 0.05))
    text = (
        f"An unobserved confounder explaining {rv:.1%} of the residual variance of both treatment and outcome "
        f"would explain the estimate away ({rv_a:.1%} would bring the {level:.0%} CI to include 0)"
    )
    if block.get("e_value") is not None:
        ci = block.get("e_value_ci")
        text += f"; E-value {block['e_value']:.2f}" + (f" (CI limit {ci:.2f})" if ci is not None else "")
    bench = [b for b in block.get("benchmarks") or [] if b.get("k") == 1.0]
    if bench:
        b = bench[0]
        text += (
            f"; one as strong as {b['covariate']} would move the regression estimate "
            f"{block['regression_estimate']:.4g} to {b['adjusted_estimate']:.4g}"
        )
    return text + ". Refuters cannot detect unobserved confounding."


def refutation_closing(passed: int, judged: int, block: dict[str, Any] | None) -> str:
    """The closing sentence of the refutation summary: what surviving the refuters does and does not mean."""
    text = (
        f"The estimate survived {passed} of {judged} refutations; refuters test the estimator and the data, "
        "not the absence of unobserved confounding"
    )
    if block and block.get("applies") and block.get("robustness_value") is not None:
        return text + f" (robustness value {block['robustness_value']:.1%}: see Sensitivity)."
    if block and not block.get("applies"):
        return text + " (see Sensitivity for what this design assumes)."
    return text + "."


def rows(block: dict[str, Any] | None) -> list[tuple[str, str]]:
    """(quantity, value) pairs of the block, for tables in summary.md and report.html."""
    if not block or not block.get("applies") or block.get("robustness_value") is None:
        return []
    level = 1 - float(block.get("alpha", 0.05))
    out = [
        ("partial R² of treatment with outcome", f"{block['partial_r2_treatment']:.2%}"),
        ("robustness value (estimate to 0)", f"{block['robustness_value']:.2%}"),
        (f"robustness value ({level:.0%} CI to include 0)", f"{block['robustness_value_alpha']:.2%}"),
        (
            "regression estimate (t, dof)",
            f"{block['regression_estimate']:.4g} (t = {block['t_statistic']:.2f}, {block['dof']:,})",
        ),
        ("E-value (estimate)", _fmt(block.get("e_value"))),
        ("E-value (CI limit nearest 0)", _fmt(block.get("e_value_ci"))),
        ("standardised effect d = estimate / residual SD of Y", _fmt(block.get("standardized_effect"), 3)),
    ]
    for b in block.get("benchmarks") or []:
        out.append(
            (
                f"confounder {b['k']:g}× as strong as {b['covariate']} (R² {b['r2_treatment']:.1%} with T, "
                f"{b['r2_outcome']:.1%} with Y)",
                f"bias up to {b['bias_bound']:.4g}: estimate {b['adjusted_estimate']:.4g}"
                + (" (explained away)" if b.get("explains_away") else ""),
            )
        )
    return out


def _fmt(value, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"
