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
    from causal_cli.report.view import naive_sentence as sentence

    found = sentence(result, units)
    if found is None:
        return None
    return "".join(emphasis(text) if bold else text for text, bold in found.parts)
