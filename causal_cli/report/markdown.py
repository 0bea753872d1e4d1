"""``summary.md``: the run's view model through the Markdown template."""

from __future__ import annotations

from typing import Any


def summary_markdown(result: dict[str, Any]) -> str:
    """``summary.md``: the run's view model through the Markdown template."""
    from causal_cli.report import view
    from causal_cli.report.templating import render

    return render("summary.md.j2", run=view.build(result)).rstrip("\n") + "\n"
