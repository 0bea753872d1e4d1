"""The house keeps its shape: one-way layers (import-linter), printing only in report/ and the CLI."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "causal_cli"
#: the only code that may write to the terminal
PRINTERS = ("report/", "cli.py")


def test_import_layers_hold():
    """The contract in pyproject.toml ([tool.importlinter]): cli > api > report > app > runtime > core > config."""
    lint = pytest.importorskip("importlinter.cli", reason="pip install -e '.[test]' (import-linter)")
    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        assert lint.lint_imports(config_filename=str(REPO / "pyproject.toml")) == 0
    finally:
        os.chdir(cwd)


def _terminal_writes(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id == "print":
                found.append(f"print() at line {node.lineno}")
            elif (
                isinstance(func, ast.Attribute)
                and func.attr in ("write", "flush")
                and isinstance(func.value, ast.Attribute)
                and func.value.attr in ("stdout", "stderr")
            ):
                found.append(f"sys.{func.value.attr}.{func.attr} at line {node.lineno}")
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
            if any(name == "rich" or name.startswith("rich.") for name in names):
                found.append(f"imports rich at line {node.lineno}")
    return found


def test_only_report_and_cli_print():
    offenders = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.startswith(PRINTERS):
            continue
        writes = _terminal_writes(ast.parse(path.read_text(), filename=str(path)))
        if writes:
            offenders[rel] = writes
    assert not offenders, offenders


def test_the_scan_finds_a_print():
    """The scan above is not vacuous: it sees each kind of terminal write it looks for."""
    tree = ast.parse("import sys\nimport rich.console\nprint(1)\nsys.stderr.write('x')\n")
    assert len(_terminal_writes(tree)) == 3
