"""The terminal summary: the only module that talks to rich."""

from __future__ import annotations

import sys
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

_console: Console | None = None


def console() -> Console:
    global _console
    if _console is None:
        _console = Console(highlight=False, soft_wrap=False)
    return _console


def error(message: str) -> None:
    Console(stderr=True, highlight=False).print(f"[bold red]{_escape(message)}[/]")


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


class RichProgress:
    """Progress bars with ETA for refuter simulations; silent when output is not a terminal."""

    def __init__(self, progress: Progress):
        self.progress = progress

    def add(self, description: str, total: int):
        return self.progress.add_task(description, total=total)

    def advance(self, task, n: int = 1) -> None:
        self.progress.advance(task, n)


@contextmanager
def progress():
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
        disable=not sys.stderr.isatty(),
    )
    with bar:
        yield RichProgress(bar)


def _money(value, units: str = "") -> str:
    if value is None:
        return "—"
    if units == "$":
        sign = "-" if value < 0 else ""
        return f"{sign}${abs(value):,.2f}"
    return f"{value:,.3f}{(' ' + units) if units else ''}"


def print_summary(result: dict, run_dir: str | None) -> None:
    """Render ``results.json``'s content: the question, the headline table, refutations, paths."""
    out = console()
    units = (result.get("graph") or {}).get("outcome_units", "")
    adjust = ", ".join(result.get("adjustment_set") or []) or "nothing"
    out.print()
    out.print(
        f"[bold]Question:[/] effect of [cyan]{result['treatment']}[/] on [cyan]{result['outcome']}[/] "
        f"({result['target_units'].upper()}), {result['n_rows']:,} rows"
    )
    ident = result.get("identification")
    if ident == "iv":
        out.print(f"[bold]Identified by:[/] instrumental variables ({', '.join(result.get('instruments') or [])})")
    elif ident == "frontdoor":
        out.print(f"[bold]Identified by:[/] front-door adjustment through {', '.join(result.get('mediators') or [])}")
    elif ident == "backdoor":
        out.print(f"[bold]Identified by:[/] backdoor adjustment for {adjust}")
    else:
        out.print("[bold]Identified by:[/] nothing (no adjustment: the naive comparison)")

    level = int(round(result.get("ci_level", 0.95) * 100))
    ref_kind = (result.get("reference_kind") or "reference").replace("_", " ")
    table = Table(title="Effect estimates", caption=f"{level}% CI by {result.get('ci_method', '')}")
    table.add_column("")
    table.add_column("estimate", justify="right")
    table.add_column(f"{level}% CI", justify="right")
    table.add_column(ref_kind, justify="right")
    table.add_column("bias", justify="right")
    ref = result.get("reference")
    table.add_row(
        "naive (difference in means)",
        _money(result["naive_estimate"], units),
        "",
        _money(ref, units),
        _money(result.get("naive_bias"), units),
    )
    table.add_row(
        f"causal ({result['estimator']})",
        f"[bold]{_money(result['estimate'], units)}[/]",
        f"[{_money(result['ci_low'], units)}, {_money(result['ci_high'], units)}]",
        _money(ref, units),
        _money(result.get("bias"), units),
    )
    out.print(table)
    pct = result.get("naive_overstatement_pct")
    if pct is not None:
        verb = "overstates" if pct > 0 else "understates"
        out.print(
            f"The naive difference {verb} the causal effect by [bold]{abs(pct):.1f}%[/] "
            f"({_money(result['naive_estimate'], units)} vs {_money(result['estimate'], units)})."
        )
    if ref is not None:
        covered = result.get("ci_covers_reference")
        mark = "[green]covers[/]" if covered else "[red]does not cover[/]"
        out.print(f"The {level}% CI {mark} the {ref_kind} ({_money(ref, units)}).")
    for note in result.get("notes") or []:
        out.print(f"[yellow]note:[/] {_escape(note)}")

    refutations = result.get("refutations") or []
    if refutations:
        rt = Table(title="Refutations")
        for col, justify in (("refuter", "left"), ("new effect", "right"), ("sd", "right"), ("p-value", "right"),
                             ("verdict", "center")):
            rt.add_column(col, justify=justify, no_wrap=col == "refuter")
        for r in refutations:
            verdict = {True: "[green]pass[/]", False: "[red]FAIL[/]", None: "[blue]info[/]"}[r.get("passed")]
            rt.add_row(
                r["name"],
                _money(r.get("new_effect"), units),
                "—" if r.get("new_effect_sd") is None else f"{r['new_effect_sd']:.3g}",
                "—" if r.get("p_value") is None else f"{r['p_value']:.3g}",
                verdict,
            )
        out.print(rt)
        for r in refutations:
            out.print(f"  [bold]{r['name']}[/]: {_escape(r.get('reason', ''))}")
        judged = [r for r in refutations if r.get("passed") is not None]
        passed = sum(1 for r in judged if r["passed"])
        colour = "green" if passed == len(judged) else "red"
        out.print(f"[{colour}]The estimate survived {passed} of {len(judged)} refutations.[/]")
    if run_dir:
        out.print(f"[dim]Results: {run_dir}[/]")
