"""The terminal summary: the only module that talks to rich."""

from __future__ import annotations

import sys
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from causal_cli.report import view as views

_console: Console | None = None


def console() -> Console:
    global _console
    if _console is None:
        import os

        # piped output (CI logs, files) gets a readable width instead of rich's 80-column fallback
        width = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 110
        _console = Console(highlight=False, soft_wrap=False, width=width)
    return _console


def error(message: str) -> None:
    # soft_wrap: one error is one line, however narrow the terminal (or 80 columns when piped)
    Console(stderr=True, highlight=False, soft_wrap=True).print(f"[bold red]{_escape(message)}[/]")


def notice(message: str) -> None:
    """A one-line heads-up with the run's output (e.g. a long refutation ahead; above a live progress bar)."""
    console().print(f"[yellow]note:[/] {_escape(message)}", soft_wrap=True)


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
def progress(bars: bool = True):
    """The progress object the pipeline passes down to long loops (``add``, ``advance``).

    ``bars=False`` (e.g. ``report.console=false``) draws no bars; bars are never drawn when stderr is
    not a terminal. One-line heads-ups go through :func:`notice`.
    """
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
        disable=not bars or not sys.stderr.isatty(),
    )
    with bar:
        yield RichProgress(bar)


def sweep_progress(
    done: int, failed: int, total: int | None, elapsed_s: float | None, eta_s: float | None = None
) -> None:
    """One line after each job of a sweep: a bar, ``done/total jobs``, failures, elapsed time and ETA."""
    Console(stderr=True, highlight=False, soft_wrap=True).print(
        sweep_progress_line(done, failed, total, elapsed_s, eta_s)
    )


def sweep_progress_line(
    done: int, failed: int, total: int | None, elapsed_s: float | None, eta_s: float | None = None
) -> str:
    """``eta_s``: the caller's estimate of the seconds left; None = elapsed time / jobs done x jobs left."""
    from datetime import timedelta

    def clock(seconds: float) -> str:
        return str(timedelta(seconds=round(seconds)))

    parts = []
    if total:
        filled = min(20, round(20 * done / total))
        parts.append(
            f"sweep {'━' * filled}{'╺' if filled < 20 else ''}{' ' * max(0, 19 - filled)} {done}/{total} jobs"
        )
    else:
        parts.append(f"sweep: {done} jobs done")
    if failed:
        parts.append(f"{failed} failed")
    if elapsed_s is not None:
        parts.append(f"{clock(elapsed_s)} elapsed")
        if total and 0 < done < total:
            parts.append(f"eta {clock(eta_s if eta_s is not None else elapsed_s * (total - done) / done)}")
    return " · ".join(parts)


def _rich(sentence: views.Sentence) -> str:
    return "".join(f"[bold]{_escape(t)}[/]" if bold else _escape(t) for t, bold in sentence.parts)


def _wide(out: Console, table: Table) -> Console:
    """Piped or captured output gets the whole table, not one squeezed into the fallback width."""
    if out.is_terminal:
        return out
    from rich.measure import Measurement

    need = Measurement.get(out, out.options.update(max_width=1000), table).maximum
    return Console(file=out.file, width=need, highlight=False, soft_wrap=False) if need > out.width else out


def print_summary(result: dict, run_dir: str | None) -> None:
    """Render a run record (``results.json``'s content): the question, the headline table, refutations, paths."""
    render(views.build(result), run_dir)


def render(run: views.RunView, run_dir: str | None) -> None:
    """The terminal summary of one run's view model."""
    out = console()
    out.print()
    if run.experiment is not None:
        _print_experiment(out, run.experiment)
    if run.headline is not None:
        _print_headline(out, run.headline)
    _print_notes(out, run.notes)
    if run.headline is not None:
        _print_diagnostics(out, run.diagnostics)
    if run.refutations is not None:
        _print_refutations(out, run.refutations)
    if run.sensitivity is not None:
        out.print(f"[bold]Sensitivity:[/] {_escape(run.sensitivity.headline)}")
    if run.heterogeneity is not None:
        _print_heterogeneity(out, run.heterogeneity)
    if run_dir:
        out.print(f"[dim]Results: {_escape(run_dir)}[/]")
    if run.report_html:
        out.print(f"[dim]Report: {_escape(run.report_html)}[/]")


def _print_notes(out: Console, notes: list[str]) -> None:
    for note in notes:
        out.print(f"[yellow]note:[/] {_escape(note)}")


def _print_headline(out: Console, h: views.Headline) -> None:
    out.print(
        f"[bold]Question:[/] effect of [cyan]{_escape(h.treatment)}[/] on [cyan]{_escape(h.outcome)}[/] "
        f"({h.target_units}), {h.n_rows} rows"
    )
    out.print(
        f"[bold]Identified by:[/] {_escape(' '.join(filter(None, (h.identified_by, h.identified_names))))}"
    )
    table = Table(title="Effect estimates", caption=_escape(h.se_caption))
    table.add_column("")
    table.add_column("estimate", justify="right")
    table.add_column(h.ci_label, justify="right")
    table.add_column(_escape(h.reference_label), justify="right")
    table.add_column("bias", justify="right")
    for row in h.rows:
        if row.error is not None:
            table.add_row(_escape(row.label), "[red]failed[/]", _escape(row.error), "", "")
            continue
        estimate = f"[bold]{_escape(row.estimate)}[/]" if row.main else _escape(row.estimate)
        table.add_row(
            _escape(row.label), estimate, _escape(row.ci), _escape(row.reference), _escape(row.bias)
        )
    out.print(table)
    if h.caveats:
        out.print("[bold yellow]Caveats[/]")
        for line in h.caveats:
            out.print(f"  [yellow]![/] {_escape(line)}")
    if h.naive_sentence is not None:
        out.print(_rich(h.naive_sentence))
    if h.coverage is not None:
        out.print(
            "".join(
                _escape(t) if i != 1 else f"[{'red' if bold else 'green'}]{_escape(t)}[/]"
                for i, (t, bold) in enumerate(h.coverage.parts)
            )
        )


def _print_diagnostics(out: Console, diag: views.Diagnostics) -> None:
    """One balance line; a warning line when overlap is poor."""
    b = diag.balance
    if b is not None:
        line = f"[bold]Balance:[/] max |SMD| {b.max_before} before adjustment"
        if b.max_after is not None:
            colour = "red" if b.after_above_threshold else "green"
            line += f", [{colour}]{b.max_after} {b.after_label}[/]"
        out.print(f"{line} (threshold {b.threshold}).")
    for i, warning in enumerate(diag.overlap.warnings if diag.overlap else []):
        prefix = "[bold yellow]warning:[/] " if i == 0 else "  "
        out.print(prefix + _escape(warning))


def _print_refutations(out: Console, refs: views.Refutations) -> None:
    table = Table(title="Refutations")
    for col, justify in (
        ("refuter", "left"),
        ("new effect", "right"),
        ("sd", "right"),
        ("p-value", "right"),
        ("verdict", "center"),
    ):
        table.add_column(col, justify=justify, no_wrap=col == "refuter")
    colours = {"pass": "green", "fail": "red", "info": "blue"}
    for r in refs.rows:
        verdict = f"[{colours[r.status]}]{r.verdict}[/]"
        table.add_row(_escape(r.name), _escape(r.new_effect), r.sd, r.p_value, verdict)
    out.print(table)
    for r in refs.rows:
        out.print(f"  [bold {colours[r.status]}]{_escape(r.name)}[/]: {_escape(r.reason)}")
    if refs.closing is not None:
        colour = "green" if refs.all_passed else "red"
        out.print(f"[{colour}]{_escape(refs.closing.plain)}[/]")
    for grid in refs.grids:
        _print_grid(out, grid)


def _print_grid(out: Console, grid: views.SensitivityGrid) -> None:
    """The sensitivity grid, compactly: re-estimated effect by the confounder's partial R² with T and Y."""
    table = Table(title=_escape(grid.title), caption=_escape(grid.caption))
    table.add_column("R² T \\ Y", justify="right")
    for c in grid.columns:
        table.add_column(c, justify="right")
    for row in grid.rows:
        table.add_row(row.label, *(f"[red]{text}[/]" if away else text for text, away in row.cells))
    out.print(table)
    out.print(f"  {_escape(grid.explain_away)}")


def _print_experiment(out: Console, e: views.Experiment) -> None:
    """A randomized design: design and checks, every metric with and without CUPED, the A/A rates."""
    out.print(f"[bold]{_escape(e.design)}[/]")
    for flagged, text in e.checks:
        out.print(f"[bold red]{_escape(text)}[/]" if flagged else f"[green]{_escape(text)}[/]")
    table = Table(title="A/B test: metrics", caption=_escape(e.metric_caption))
    for i, col in enumerate(e.metric_header):
        table.add_column(col, justify="left" if i < 2 else "right", no_wrap=True)
    for cells, significant in e.metric_rows:
        table.add_row(*(_escape(c) for c in cells), style="bold" if significant else None)
    _wide(out, table).print(table)
    out.print(f"[bold]{_escape(e.primary)}[/]")
    if e.aa_rows:
        aa = Table(title="A/A check: false-positive rate", caption=_escape(e.aa_caption))
        for i, col in enumerate(e.aa_header):
            aa.add_column(col, justify="left" if i == 0 else "right")
        for row in e.aa_rows:
            aa.add_row(*(_escape(c) for c in row))
        out.print(aa)


def _print_heterogeneity(out: Console, h: views.Heterogeneity) -> None:
    """The segment table and the one-line answers (is it real? whom to target?)."""
    table = Table(title=_escape(h.title))
    columns = [("modifier", "left"), ("segment", "left"), ("n", "right"), ("effect", "right")]
    columns += [("95% CI", "right")] + ([("true", "right")] if h.has_truth else [])
    for name, justify in columns:
        table.add_column(name, justify=justify)
    for seg in h.segments:
        for row in seg.rows:
            cells = [row.modifier, row.segment, row.n, row.effect, row.ci] + (
                [row.truth] if h.has_truth else []
            )
            table.add_row(*(_escape(c) for c in cells))
        padding = [""] * (len(columns) - 2)
        table.add_row("", f"[dim]differ? p = {seg.p_value}[/]", *padding)
    out.print(table)
    for line in h.summary:
        out.print(_escape(line))


def render_scorecard(card) -> None:
    """Print a :class:`causal_cli.report.scorecard.ScorecardView`."""
    out = console()
    table = Table(title=_escape(card.title), caption=_escape(card.caption), caption_justify="left")
    for key in card.settings:
        table.add_column(_escape(key))
    for col in card.columns:
        table.add_column(col, justify="left" if col == "estimator" else "right", no_wrap=col == "estimator")
    failed_col = card.columns.index("failed")
    for row in card.rows:
        if row.new_section:
            table.add_section()
        values = [_escape(v) for v in row.values]
        if row.failures:
            values[failed_col] = f"[red]{values[failed_col]}[/]"
        table.add_row(*(_escape(v) for v in row.setting), *values, style="bold green" if row.best else None)
    out.print()
    _wide(out, table).print(table)
    for name, message in card.failed:
        out.print(f"[red]failed[/] {_escape(name)}: {_escape(message)}", soft_wrap=True)
    if card.more_failed:
        out.print(f"[red]... and {card.more_failed} more failed jobs[/] (see status in each results.json)")
    for problem in card.problems:
        out.print(f"[yellow]note:[/] {_escape(problem)}")
    out.print(f"[dim]Scorecard: {_escape(card.files)}[/]")
