"""The commands README.md shows, run for real; ``--regenerate`` rewrites its example outputs from those runs.

    python benchmarks/readme_outputs.py               # run every shown command, report what differs
    python benchmarks/readme_outputs.py --regenerate  # rewrite the README's output blocks from real runs

``tests/test_readme.py`` imports this module and runs the same commands (smaller where no output is shown);
the rules for which text counts as a command are in that test's docstring. Output blocks are

* a fenced ``text`` block directly after a ``<!-- output: causal ... -->`` comment: the output of that command,
  abridged (the lines shown must appear in the run's output, in order);
* a fenced ``console`` block: ``$ causal ...`` lines, each followed by the lines it prints;
* prose that quotes an inline command: ```causal ...``` says "..." (checked, not regenerated).

Regeneration keeps the abridgement: each shown line is replaced by the line of the new output with the same
shape (numbers masked), so changed numbers are rewritten and dropped lines stay dropped.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"

FENCE = re.compile(r"^```(\w*)\s*$")
OUTPUT_MARKER = re.compile(r"^<!--\s*output:\s*(causal\b.*?)\s*-->\s*$")
INLINE = re.compile(r"`(causal [^`]+)`")
ENV_ASSIGNMENT = re.compile(r"^[A-Z_][A-Z0-9_]*=")
#: a README python block that writes a data file the commands read
WRITES_FILE = re.compile(r"\.to_(csv|parquet)\(")
#: overrides appended to every run that change no printed number: one core, no pictures
QUIET = ("refuters.n_jobs=1", "report.enabled=false")


@dataclass
class Example:
    """One command the README shows, with the output lines it shows for it (if any)."""

    text: str  # the command as written (continuations joined, comment dropped)
    line: int  # 1-based line in README.md
    kind: str  # bash | console | inline | output
    shown: list[str] = field(default_factory=list)
    block: tuple[int, int] | None = None  # README line range (0-based, end exclusive) of the shown lines
    quoted: list[str] = field(default_factory=list)  # prose quoting what it prints: `causal ...` says "..."

    @property
    def words(self) -> list[str]:
        return shlex.split(self.text, comments=True)

    @property
    def env(self) -> dict[str, str]:
        return dict(w.split("=", 1) for w in self.words[: self._start()])

    @property
    def argv(self) -> list[str]:
        """The arguments after ``causal`` (empty when the line is not a causal command)."""
        words = self.words[self._start() :]
        return words[1:] if words[:1] == ["causal"] else []

    def _start(self) -> int:
        words = self.words
        k = 0
        while k < len(words) and ENV_ASSIGNMENT.match(words[k]):
            k += 1
        return k


def _logical_lines(lines: list[str], start: int):
    """(line number, text) of a code block's lines with ``\\`` continuations joined."""
    buf, first = "", None
    for k, raw in enumerate(lines):
        if first is None:
            first = start + k
        if raw.rstrip().endswith("\\"):
            buf += raw.rstrip()[:-1] + " "
            continue
        yield first, (buf + raw).strip()
        buf, first = "", None


def _strip_comment(text: str) -> str:
    """The command without its trailing ``# comment`` (a ``#`` inside quotes is kept)."""
    lex = shlex.shlex(text, posix=True, punctuation_chars=False)
    lex.whitespace_split, lex.commenters = True, "#"
    try:
        words = list(lex)
    except ValueError:
        return text
    if not words:
        return ""
    # cut the raw text after the last word so quoting stays as written
    cut = text.find(" #")
    while cut != -1:
        try:
            if shlex.split(text[:cut], comments=False) == words:
                return text[:cut].rstrip()
        except ValueError:
            pass
        cut = text.find(" #", cut + 1)
    return text.strip()


def _blocks(lines: list[str]):
    """(language, first content line index, content lines, index of the line before the fence)."""
    k = 0
    while k < len(lines):
        match = FENCE.match(lines[k])
        if not match:
            k += 1
            continue
        end = k + 1
        while end < len(lines) and not lines[end].startswith("```"):
            end += 1
        yield match.group(1), k + 1, lines[k + 1 : end], k - 1
        k = end + 1


def _console_examples(body: list[str], start: int) -> list[Example]:
    found: list[Example] = []
    for k, line in enumerate(body):
        if line.startswith("$ "):
            found.append(
                Example(line[2:].strip(), start + k + 1, "console", block=(start + k + 1, start + k + 1))
            )
        elif found:
            found[-1].shown.append(line)
            found[-1].block = (found[-1].block[0], start + k + 1)
    return found


def examples(text: str | None = None) -> list[Example]:
    """Every command README.md shows, in order."""
    lines = (README.read_text(encoding="utf-8") if text is None else text).splitlines()
    found: list[Example] = []
    in_block = set()
    for lang, start, body, before in _blocks(lines):
        in_block.update(range(start - 1, start + len(body) + 1))
        if lang == "bash":
            for number, logical in _logical_lines(body, start):
                command = _strip_comment(logical)
                if command:
                    found.append(Example(command, number + 1, "bash"))
        elif lang == "console":
            found += _console_examples(body, start)
        elif lang == "text" and before >= 0 and OUTPUT_MARKER.match(lines[before]):
            command = OUTPUT_MARKER.match(lines[before]).group(1)
            found.append(Example(command, before + 1, "output", list(body), (start, start + len(body))))
    for k, line in enumerate(lines):
        if k not in in_block:
            paragraph = " ".join(_paragraph(lines, k))
            for match in INLINE.finditer(line):
                quote = re.search(re.escape(match.group(0)) + r'[^"`]{0,40}?"([^"]+)"', paragraph)
                found.append(
                    Example(match.group(1).strip(), k + 1, "inline", quoted=[quote.group(1)] if quote else [])
                )
    return found


def python_blocks(text: str | None = None) -> list[tuple[int, str]]:
    """(line, code) of every fenced ``python`` block."""
    lines = (README.read_text(encoding="utf-8") if text is None else text).splitlines()
    return [(start, "\n".join(body)) for lang, start, body, _ in _blocks(lines) if lang == "python"]


def _paragraph(lines: list[str], k: int) -> list[str]:
    """Line ``k`` and the lines after it up to a blank line, stripped (an inline quote may wrap)."""
    end = k
    while end < len(lines) and lines[end].strip():
        end += 1
    return [line.strip() for line in lines[k:end]]


# ------------------------------------------------------------------------------------------ files


def prepare_workdir(workdir: Path, text: str | None = None) -> None:
    """The files the README's commands read: its ``python`` blocks that write a data file are run in ``workdir``
    and a ``yaml`` block whose first line is a ``# path/to/file.yaml`` comment is written to that path;
    the files the README only describes (the coupon study, the replication files) are simulated here."""
    lines = (README.read_text(encoding="utf-8") if text is None else text).splitlines()
    saved = os.getcwd()
    os.chdir(workdir)
    try:
        for lang, _start, body, _before in _blocks(lines):
            if lang == "python" and WRITES_FILE.search("\n".join(body)):
                exec(compile("\n".join(body), "README.md", "exec"), {"__name__": "readme_example"})  # noqa: S102
            elif lang == "yaml" and body and re.fullmatch(r"#\s*[\w./-]+\.yaml\s*", body[0]):
                target = workdir / body[0].lstrip("#").strip()
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text("\n".join(body[1:]) + "\n", encoding="utf-8")
    finally:
        os.chdir(saved)
    _coupon_study(workdir)
    _replications(workdir)


COUPON_CONFOUNDERS = [
    "age",
    "tenure_days",
    "visits_30d",
    "orders_90d",
    "spend_prev_90d",
    "avg_basket",
    "support_tickets",
    "is_member",
    "email_opt_in",
]


def _coupon_study(workdir: Path, n: int = 1500) -> None:
    """A coupons.csv with the columns of *Your own data* (three of them categorical, a few values missing)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(18)
    frame = pd.DataFrame(
        {name: rng.gamma(2.0, 1.0 + k, n).round(2) for k, name in enumerate(COUPON_CONFOUNDERS)}
    )
    frame["is_member"] = rng.integers(0, 2, n)
    frame["email_opt_in"] = rng.integers(0, 2, n)
    for name, levels in {
        "region": ["north", "south", "west"],
        "device": ["app", "web"],
        "plan": ["basic", "plus", "pro"],
    }.items():
        frame[name] = rng.choice(levels, n)
    score = 0.3 * (frame["visits_30d"] - frame["visits_30d"].mean()) / frame["visits_30d"].std()
    frame["got_coupon"] = (rng.random(n) < 1 / (1 + np.exp(-score))).astype(int)
    frame["spend_90d"] = (
        5.0 * frame["got_coupon"] + 0.2 * frame["spend_prev_90d"] + rng.normal(0, 3, n)
    ).round(2)
    with_missing = frame.copy()
    with_missing.loc[rng.choice(n, 10, replace=False), "avg_basket"] = np.nan
    frame.to_csv(workdir / "coupons.csv", index=False)
    (workdir / "data").mkdir(exist_ok=True)
    with_missing.to_csv(workdir / "data" / "coupons.csv", index=False)
    graph = workdir / "my_conf" / "graph" / "coupons.yaml"
    graph.parent.mkdir(parents=True, exist_ok=True)
    confounders = ", ".join([*COUPON_CONFOUNDERS, "region", "device", "plan"])
    graph.write_text(
        "name: coupons\ntreatment: got_coupon\noutcome: spend_90d\n"
        f'confounders: [{confounders}]\noutcome_units: "$"\n',
        encoding="utf-8",
    )


def _replications(workdir: Path, files: int = 2, n: int = 400) -> None:
    """reps/rep_01.csv ... with references.json (truth 2 for every estimand)."""
    import json

    import numpy as np
    import pandas as pd

    (workdir / "reps").mkdir(exist_ok=True)
    references = {}
    for k in range(1, files + 1):
        rng = np.random.default_rng(k)
        x = rng.normal(size=n)
        t = (rng.random(n) < 1 / (1 + np.exp(-x))).astype(int)
        pd.DataFrame({"x": x, "t": t, "y": 2.0 * t + x + rng.normal(size=n)}).to_csv(
            workdir / "reps" / f"rep_{k:02d}.csv", index=False
        )
        references[f"rep_{k:02d}.csv"] = {"ate": 2.0, "att": 2.0}
    (workdir / "references.json").write_text(json.dumps(references), encoding="utf-8")


# ------------------------------------------------------------------------------------------ running


def run_causal(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[int, str]:
    """``causal ARGV`` in this process, from ``cwd``: (exit code, stdout + stderr as printed when piped)."""
    from hydra.core.global_hydra import GlobalHydra

    from causal_cli.cli import main

    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    os.environ.pop("COLUMNS", None)  # piped output: the console's fixed width, as in the README
    os.environ.update(env or {})
    _reset_console()
    out = io.StringIO()
    try:
        os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            code = main(list(argv))
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        GlobalHydra.instance().clear()
        _reset_console()
    return code, out.getvalue()


def _reset_console() -> None:
    """Forget a console created for another stdout or width (it is created once per process)."""
    for name, module in list(sys.modules.items()):
        if name.startswith("causal_cli.report") and getattr(module, "_console", None) is not None:
            module._console = None


def output_dirs(argv: list[str], out: Path) -> list[str]:
    """Run and sweep folders under ``out`` for a ``run`` command that names none."""
    if argv[:1] != ["run"] or any(a.startswith(("hydra.run.dir", "hydra.sweep.dir")) for a in argv):
        return []
    return [f"hydra.run.dir={out}/run", f"hydra.sweep.dir={out}/sweep"]


# ------------------------------------------------------------------------------------------ comparing


def _shape(line: str) -> str:
    line = re.sub(r"\d[\d,]*(?:\.\d+)?(?:e[-+]?\d+)?", "0", line)
    line = re.sub(r"(.)\1+", r"\1", line)  # box rules and padding change length with the numbers
    return re.sub(r"\s+", " ", line).strip()


def _matches(shown: str, printed: str) -> bool:
    shown = shown.rstrip()
    if shown.endswith("..."):  # an abridged line: the printed one starts the same
        return printed.startswith(shown[:-3].rstrip(" ,"))
    return printed.rstrip() == shown


def missing_lines(shown: list[str], output: str) -> list[str]:
    """The shown lines (in order) that the output does not print; [] when all are there."""
    printed = output.splitlines()
    cursor, missing = 0, []
    for line in (s for s in shown if s.strip()):
        hit = next((k for k in range(cursor, len(printed)) if _matches(line, printed[k])), None)
        if hit is None:
            missing.append(line)
        else:
            cursor = hit + 1
    return missing


def missing_quotes(quoted: list[str], output: str) -> list[str]:
    """The quoted sentences (whitespace-insensitive) that the output does not print."""
    flat = " ".join(output.split())
    return [q for q in quoted if " ".join(q.split()) not in flat]


def regenerated(shown: list[str], output: str) -> tuple[list[str], list[str]]:
    """(new block lines, shown lines that matched no printed line): each shown line replaced by its match."""
    printed = [p.rstrip() for p in output.splitlines()]
    cursor, new, lost = 0, [], []
    for line in shown:
        if not line.strip() or line.rstrip().endswith("..."):
            new.append(line)
            continue
        hit = next((k for k in range(cursor, len(printed)) if _shape(printed[k]) == _shape(line)), None)
        if hit is None:
            new.append(line)
            lost.append(line)
        else:
            new.append(printed[hit])
            cursor = hit + 1
    return new, lost


def with_outputs(found: list[Example]) -> list[Example]:
    return [e for e in found if e.shown and e.argv]


def regenerate(workdir: Path, readme: Path = README) -> int:
    """Rewrite every output block of ``readme`` from a real run; returns the number of lines not matched."""
    lines = readme.read_text(encoding="utf-8").splitlines()
    lost_total = 0
    for k, example in enumerate(with_outputs(examples("\n".join(lines)))):
        argv = example.argv + output_dirs(example.argv, workdir / f"regen{k}") + _quiet(example.argv)
        code, output = run_causal(argv, workdir, example.env)
        new, lost = regenerated(example.shown, output)
        first, end = example.block
        lines[first:end] = new
        for line in lost:
            print(f"README.md:{example.line}: `{example.text}` no longer prints a line like: {line}")
        lost_total += len(lost)
        print(
            f"README.md:{example.line}: `{example.text}` exit {code}, {len(new) - len(lost)} lines rewritten"
        )
    readme.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return lost_total


def _quiet(argv: list[str]) -> list[str]:
    return list(QUIET) if argv[:1] == ["run"] else []


def check(workdir: Path) -> int:
    bad = 0
    for example in with_outputs(examples()):
        argv = (
            example.argv + output_dirs(example.argv, workdir / f"check{example.line}") + _quiet(example.argv)
        )
        code, output = run_causal(argv, workdir, example.env)
        for line in missing_lines(example.shown, output):
            bad += 1
            print(f"README.md:{example.line}: `{example.text}` (exit {code}) does not print: {line}")
    return bad


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--regenerate", action="store_true", help="rewrite README.md's output blocks")
    parser.add_argument(
        "--workdir", type=Path, default=None, help="where the runs write (default: a temp dir)"
    )
    args = parser.parse_args(argv)
    import tempfile

    with tempfile.TemporaryDirectory(prefix="readme-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        prepare_workdir(workdir)
        bad = regenerate(workdir) if args.regenerate else check(workdir)
    print("README outputs: " + ("all match" if not bad else f"{bad} lines differ"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
