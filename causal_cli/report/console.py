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

from causal_cli.report.sensitivity import headline, refutation_closing
from causal_cli.report.text import money as _money
from causal_cli.report.text import naive_sentence

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


def print_summary(result: dict, run_dir: str | None) -> None:
    """Render ``results.json``'s content: the question, the headline table, refutations, paths."""
    out = console()
    if result.get("experiment"):
        _print_experiment(out, result, run_dir)
        return
    units = (result.get("graph") or {}).get("outcome_units", "")
    adjust = ", ".join(result.get("adjustment_set") or []) or "nothing"
    out.print()
    out.print(
        f"[bold]Question:[/] effect of [cyan]{result['treatment']}[/] on [cyan]{result['outcome']}[/] "
        f"({result['target_units'].upper()}), {result['n_rows']:,} rows"
    )
    ident = result.get("identification")
    if ident == "iv":
        out.print(
            f"[bold]Identified by:[/] instrumental variables ({', '.join(result.get('instruments') or [])})"
        )
    elif ident == "frontdoor":
        out.print(
            f"[bold]Identified by:[/] front-door adjustment through {', '.join(result.get('mediators') or [])}"
        )
    elif ident == "backdoor":
        out.print(f"[bold]Identified by:[/] backdoor adjustment for {adjust}")
    else:
        out.print("[bold]Identified by:[/] nothing (no adjustment: the naive comparison)")

    level = int(round(result.get("ci_level", 0.95) * 100))
    ref_kind = (result.get("reference_kind") or "reference").replace("_", " ")
    table = Table(
        title="Effect estimates",
        caption=(
            f"naive = difference in means, no adjustment; {level}% CI from the "
            f"{result.get('se_method') or result.get('ci_method', '')} SE"
        ),
    )
    table.add_column("")
    table.add_column("estimate", justify="right")
    table.add_column(f"{level}% CI", justify="right")
    table.add_column(ref_kind, justify="right")
    table.add_column("bias", justify="right")
    ref = result.get("reference")
    table.add_row(
        "naive",
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
    for row in result.get("comparisons") or []:
        if row.get("estimate") is None:
            table.add_row(
                f"{row['estimator']} ({row['target_units'].upper()})",
                "[red]failed[/]",
                _escape(row.get("error") or ""),
                "",
                "",
            )
            continue
        table.add_row(
            f"{row['estimator']} ({row['target_units'].upper()})",
            _money(row["estimate"], units),
            f"[{_money(row['ci_low'], units)}, {_money(row['ci_high'], units)}]",
            _money(ref, units),
            _money(row.get("bias"), units),
        )
    out.print(table)
    _print_caveats(out, result)
    sentence = naive_sentence(result, units, emphasis=lambda text: f"[bold]{text}[/]")
    if sentence:
        out.print(sentence)
    if ref is not None:
        covered = result.get("ci_covers_reference")
        mark = "[green]covers[/]" if covered else "[red]does not cover[/]"
        out.print(f"The {level}% CI {mark} the {ref_kind} ({_money(ref, units)}).")
    for note in result.get("notes") or []:
        out.print(f"[yellow]note:[/] {_escape(note)}")
    _print_diagnostics(out, result.get("diagnostics") or {})

    refutations = result.get("refutations") or []
    if refutations:
        rt = Table(title="Refutations")
        for col, justify in (
            ("refuter", "left"),
            ("new effect", "right"),
            ("sd", "right"),
            ("p-value", "right"),
            ("verdict", "center"),
        ):
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
            colour = {True: "green", False: "red", None: "blue"}[r.get("passed")]
            out.print(f"  [bold {colour}]{r['name']}[/]: {_escape(r.get('reason', ''))}")
        judged = [r for r in refutations if r.get("passed") is not None]
        passed = sum(1 for r in judged if r["passed"])
        colour = "green" if passed == len(judged) else "red"
        if judged:
            closing = refutation_closing(passed, len(judged), result.get("sensitivity"))
            out.print(f"[{colour}]{_escape(closing)}[/]")
        for r in refutations:
            if r.get("table"):
                _print_sensitivity(out, r, units)
    sensitivity = headline(result.get("sensitivity"))
    if sensitivity:
        out.print(f"[bold]Sensitivity:[/] {_escape(sensitivity)}")
    if result.get("heterogeneity"):
        from causal_cli.report.heterogeneity import print_heterogeneity

        print_heterogeneity(out, result, units)
    if run_dir:
        out.print(f"[dim]Results: {run_dir}[/]")
    if result.get("report_html"):
        out.print(f"[dim]Report: {result['report_html']}[/]")


def _print_experiment(out: Console, result: dict, run_dir: str | None) -> None:
    """A randomized design: design and checks, every metric with and without CUPED, the A/A rates."""
    from causal_cli.report import experiment as ab

    e = result["experiment"]
    out.print()
    out.print(f"[bold]{_escape(ab.design_line(result))}[/]")
    for flagged, text in (ab.srm_line(e), ab.balance_line(e)):
        out.print(f"[bold red]{_escape(text)}[/]" if flagged else f"[green]{_escape(text)}[/]")
    table = Table(title="A/B test: metrics", caption=ab.metric_caption(e))
    for i, col in enumerate(ab.METRIC_HEADER):
        table.add_column(col, justify="left" if i < 2 else "right", no_wrap=True)
    for cells, significant in ab.metric_rows(e):
        table.add_row(*(_escape(c) for c in cells), style="bold" if significant else None)
    wide = out
    if not out.is_terminal:  # piped or captured: the whole table, not one squeezed into 110 columns
        from rich.measure import Measurement

        need = Measurement.get(out, out.options.update(max_width=1000), table).maximum
        if need > out.width:
            wide = Console(file=out.file, width=need, highlight=False, soft_wrap=False)
    wide.print(table)
    out.print(f"[bold]{_escape(ab.primary_sentence(result))}[/]")
    if e.get("aa"):
        aa = Table(title="A/A check: false-positive rate", caption=ab.aa_caption(e))
        for i, col in enumerate(ab.AA_HEADER):
            aa.add_column(col, justify="left" if i == 0 else "right")
        for row in ab.aa_rows(e):
            aa.add_row(*(_escape(c) for c in row))
        out.print(aa)
    for note in result.get("notes") or []:
        out.print(f"[yellow]note:[/] {_escape(note)}")
    if run_dir:
        out.print(f"[dim]Results: {run_dir}[/]")
    if result.get("report_html"):
        out.print(f"[dim]Report: {result['report_html']}[/]")


def _print_sensitivity(out: Console, refutation: dict, units: str) -> None:
    """The sensitivity grid, compactly: re-estimated effect by the confounder's partial R² with T and Y."""
    rows = [r for r in refutation["table"] if "r2_treatment" in r and "r2_outcome" in r]
    if not rows:
        return
    cols = sorted({r["r2_outcome"] for r in rows})
    table = Table(
        title=f"Sensitivity ({refutation['name']}): estimate after adjusting for a confounder U",
        caption="rows: partial R² of U with the treatment; columns: with the outcome; red: explained away",
    )
    table.add_column("R² T \\ Y", justify="right")
    for c in cols:
        table.add_column(f"{c:g}", justify="right")
    for r2_t in sorted({r["r2_treatment"] for r in rows}):
        cells = {r["r2_outcome"]: r for r in rows if r["r2_treatment"] == r2_t}
        values = []
        for c in cols:
            row = cells.get(c)
            text = _money(row.get("new_effect"), units) if row else ""
            values.append(f"[red]{text}[/]" if row and row.get("explains_away") else text)
        table.add_row(f"{r2_t:g}", *values)
    out.print(table)
    details = refutation.get("details") or {}
    rv, evalue = details.get("robustness_value"), details.get("e_value")
    line = "not reached on the curve" if rv is None else f"partial R² {rv:.3f} with both"
    out.print(
        f"  explained away by a confounder of strength: {line}"
        + (f"; E-value {evalue:.2f}" if evalue is not None else "")
    )


def all_caveats(result: dict) -> list[str]:
    """The main estimate's caveats, then each compared estimator's (prefixed with its name)."""
    lines = list(result.get("caveats") or [])
    for row in result.get("comparisons") or []:
        lines += [f"{row['estimator']}: {c}" for c in row.get("caveats") or []]
    return lines


def _print_caveats(out: Console, result: dict) -> None:
    """A yellow block right under the effect table: what the estimate's number does not say by itself."""
    lines = all_caveats(result)
    if lines:
        out.print("[bold yellow]Caveats[/]")
        for line in lines:
            out.print(f"  [yellow]![/] {_escape(line)}")


def _print_diagnostics(out: Console, diag: dict) -> None:
    """One balance line; a warning line when overlap is poor."""
    if diag.get("max_abs_smd_before") is not None:
        after = {"matching": "after matching", "weighting": "after weighting"}.get(diag.get("adjustment"))
        line = f"[bold]Balance:[/] max |SMD| {diag['max_abs_smd_before']:.3f} before adjustment"
        if after and diag.get("max_abs_smd_after") is not None:
            colour = "red" if diag["max_abs_smd_after"] > diag.get("smd_threshold", 0.1) else "green"
            line += f", [{colour}]{diag['max_abs_smd_after']:.3f} {after}[/]"
        out.print(f"{line} (threshold {diag.get('smd_threshold', 0.1):g}).")
    overlap = diag.get("overlap") or {}
    if overlap.get("poor") and overlap.get("estimand") in ("att", "atc"):
        out.print(
            f"[bold yellow]warning:[/] {_escape(overlap['message'])}; the estimate leans on extrapolation "
            "(see overlap.png)."
        )
    elif overlap.get("poor"):
        low, high = overlap["bounds"]
        groups = overlap.get("groups") or {}
        by_group = ", ".join(f"{g} {100 * v['share_outside']:.1f}%" for g, v in groups.items())
        out.print(
            f"[bold yellow]warning:[/] poor overlap: {100 * overlap['share_outside']:.1f}% of units have a propensity "
            f"score outside [{low:g}, {high:g}] ({by_group}); the estimate leans on extrapolation (see overlap.png)."
        )
        k = overlap.get("weight_tail_index")
        if k is not None and k > 0.5:
            out.print(
                f"  the inverse-propensity weights are heavy-tailed (tail index {k:.2f} > 0.5: infinite variance), "
                "so weighting CIs under-cover."
            )


def print_scorecard(
    rows: list[dict],
    settings: list[str],
    replications: dict[str, int],
    fixed: dict[str, str],
    units: str,
    failed: list[tuple[str, str]],
    n_jobs: int,
    sweep_dir: str,
    files: list[str],
    problems: list[str],
) -> None:
    """The sweep scorecard (``causal_cli.sweep``): one block per setting, best estimator of each in bold green."""
    out = console()
    truths = {round(r["truth"], 9) for r in rows if r.get("truth") is not None}
    notes = ["★ best per setting: smallest |mean bias|, then RMSE, no failures"]
    if replications:
        notes.append("replications over " + ", ".join(f"{k} ({n} values)" for k, n in replications.items()))
    kinds = {k for r in rows for k in str(r.get("reference_kind") or "").split("+") if k}
    label = (
        "truth"
        if kinds <= {"ground_truth"}
        else ("reference (" + ", ".join(sorted(kinds)).replace("_", " ") + ")")
    )
    if len(truths) == 1:
        notes.append(f"{label} {_money(next(iter(truths)), units)}")
    elif truths and label != "truth":
        notes.append(f"bias against the {label}")
    if fixed:
        notes.append("fixed: " + " ".join(f"{k}={v}" for k, v in fixed.items()))
    table = Table(
        title=f"Sweep scorecard: {n_jobs} jobs, {len(failed)} failed",
        caption=_escape(" · ".join(notes)),
        caption_justify="left",
    )
    for key in settings:
        table.add_column(_escape(key))
    columns = (
        ["estimator", "runs", "failed", "mean estimate"]
        + (["truth"] if len(truths) > 1 else [])
        + ["mean bias", "MAE", "RMSE", "CI coverage", "CI width", "refutations", "runtime"]
    )
    hte = any(row.get("mean_pehe") is not None for row in rows)
    if hte:
        columns += ["PEHE", "segment CI coverage"]
    for col in columns:
        table.add_column(col, justify="left" if col == "estimator" else "right", no_wrap=col == "estimator")
    previous = None
    for row in rows:
        setting = tuple(row.get(k) for k in settings)
        if previous is not None and setting != previous:
            table.add_section()
        cells = [_escape(str(v)) if setting != previous else "" for v in setting]
        previous = setting
        coverage = row.get("ci_coverage")
        judged = row.get("refutations_judged") or 0
        runtime = row.get("mean_runtime_s")
        values = [
            ("★ " if row.get("best") else "  ") + _escape(row["estimator"]),
            str(row["runs"]),
            f"[red]{row['failures']}[/]" if row["failures"] else "0",
            _money(row.get("mean_estimate"), units),
            *([_money(row.get("truth"), units)] if len(truths) > 1 else []),
            _money(row.get("mean_bias"), units),
            _money(row.get("mae"), units),
            _money(row.get("rmse"), units),
            "—" if coverage is None else f"{100 * coverage:.0f}%",
            _money(row.get("mean_ci_width"), units),
            f"{row.get('refutations_passed', 0)}/{judged}" if judged else "—",
            "—" if runtime is None else f"{runtime:.2f} s",
        ]
        if hte:
            pehe, seg = row.get("mean_pehe"), row.get("segment_ci_coverage")
            values += ["—" if pehe is None else f"{pehe:.3g}", "—" if seg is None else f"{100 * seg:.0f}%"]
        table.add_row(*cells, *values, style="bold green" if row.get("best") else None)
    wide = out
    if not out.is_terminal:  # piped or captured: the whole table, not one squeezed into 80 columns
        from rich.measure import Measurement

        need = Measurement.get(out, out.options.update(max_width=1000), table).maximum
        if need > out.width:
            wide = Console(file=out.file, width=need, highlight=False, soft_wrap=False)
    out.print()
    wide.print(table)
    for name, message in failed[:10]:
        out.print(f"[red]failed[/] {_escape(name)}: {_escape(message)}", soft_wrap=True)
    if len(failed) > 10:
        out.print(f"[red]... and {len(failed) - 10} more failed jobs[/] (see status in each results.json)")
    for problem in problems:
        out.print(f"[yellow]note:[/] {_escape(problem)}")
    out.print(f"[dim]Scorecard: {_escape(', '.join(files) or sweep_dir)}[/]")
