"""Wording shared by every report format (terminal, Markdown, HTML): numbers with units, verdict sentences."""

from __future__ import annotations


def money(value, units: str = "") -> str:
    """A number with its outcome units: dollars get ``$1,234.56``; other units follow the number."""
    if value is None:
        return "—"
    if units == "$":
        sign = "-" if value < 0 else ""
        return f"{sign}${abs(value):,.2f}"
    return f"{value:,.3f}{(' ' + units) if units else ''}"
