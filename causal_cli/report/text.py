"""Wording shared by every report format (terminal, Markdown, HTML): numbers with units, verdict sentences."""

from __future__ import annotations

from collections.abc import Callable


def money(value, units: str = "") -> str:
    """A number with its outcome units: dollars get ``$1,234.56``; other units follow the number."""
    if value is None:
        return "—"
    if units == "$":
        sign = "-" if value < 0 else ""
        return f"{sign}${abs(value):,.2f}"
    return f"{value:,.3f}{(' ' + units) if units else ''}"


def naive_sentence(result: dict, units: str = "", emphasis: Callable[[str], str] = str) -> str | None:
    """How far the naive comparison is from the causal estimate, in words (None when undefined)."""
    pct = result.get("naive_overstatement_pct")
    if pct is None or result.get("estimator") == "naive":  # the naive estimate compared with itself
        return None
    naive, estimate = result["naive_estimate"], result["estimate"]
    pair = f"({money(naive, units)} vs {money(estimate, units)})"
    if naive * estimate < 0:
        return f"The naive difference has the wrong sign {pair}: confounding reverses the apparent effect."
    verb = "overstates" if abs(naive) > abs(estimate) else "understates"
    return f"The naive difference {verb} the causal effect by {emphasis(f'{abs(pct):.1f}%')} {pair}."
