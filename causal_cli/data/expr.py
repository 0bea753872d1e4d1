"""A safe evaluator for row filters (``data.query``) and derived columns (``data.derive``).

``pandas.eval``/``DataFrame.query`` can run arbitrary Python (``@`` lookups, attribute access,
``__import__``), so config expressions are parsed with :mod:`ast` and evaluated by walking an
allow-list: column names, constants, arithmetic, comparisons, boolean logic and a few functions.
Integer and float columns are widened to 64 bits first, so ``age ** 2`` on an ``int8`` column
cannot overflow.
"""

from __future__ import annotations

import ast
import difflib
import operator

import numpy as np
import pandas as pd

from causal_cli.errors import ConfigError

FUNCTIONS = {
    "abs": np.abs,
    "exp": np.exp,
    "log": np.log,
    "log1p": np.log1p,
    "sqrt": np.sqrt,
    "isnull": pd.isna,
    "notnull": pd.notna,
}
ARITHMETIC = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
    ast.BitAnd: operator.and_,
    ast.BitOr: operator.or_,
}
COMPARISONS = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
ALLOWED = "column names, numbers, strings, + - * / // % **, comparisons, and/or/not, in [...], " + ", ".join(
    f"{name}()" for name in FUNCTIONS
)


def names_in(expression: str, key: str) -> set[str]:
    """The column names an expression reads (also checks that it parses)."""
    tree = _parse(expression, key)
    called = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and id(n) not in called}


def evaluate(expression: str, frame: pd.DataFrame, key: str):
    """Evaluate ``expression`` over the columns of ``frame``; ``key`` names it in errors."""
    tree = _parse(expression, key)
    evaluator = _Evaluator(frame, key, expression)
    try:
        with np.errstate(all="ignore"):
            return evaluator.visit(tree.body)
    except ZeroDivisionError:
        return evaluator.refuse("division by zero (of constants)")
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 - numpy/pandas/arrow refusing the operation: the expression's fault
        detail = " ".join(str(exc).split())[:200]
        raise ConfigError(
            f"{key}={_short(expression)} cannot be evaluated ({type(exc).__name__}: {detail}); allowed: {ALLOWED}"
        ) from exc


#: the longest expression accepted, and the longest string it may hold or build (characters)
MAX_EXPRESSION_CHARS = 10_000
MAX_STRING_CHARS = 10_000


def _short(expression) -> str:
    text = repr(str(expression))
    return text if len(text) <= 200 else f"{text[:120]}... ({len(text):,} characters)"


def _parse(expression: str, key: str) -> ast.Expression:
    text = str(expression).strip()
    if len(text) > MAX_EXPRESSION_CHARS:
        raise ConfigError(
            f"{key}={_short(text)} is too long; allowed: an expression of at most {MAX_EXPRESSION_CHARS:,} characters"
        )
    try:
        return ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise ConfigError(
            f"{key}={_short(text)} is not a valid expression ({exc.msg}); allowed: {ALLOWED}"
        ) from exc
    except (RecursionError, MemoryError, ValueError) as exc:  # deep nesting, a 5,000-digit number
        raise ConfigError(
            f"{key}={_short(text)} is too deeply nested or holds too large a number; allowed: {ALLOWED}"
        ) from exc


#: the largest constant exponent ``**`` accepts
MAX_EXPONENT = 64


def _is_scalar(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class _Evaluator:
    def __init__(self, frame: pd.DataFrame, key: str, expression: str):
        self.frame = frame
        self.key = key
        self.expression = expression

    def refuse(self, what: str):
        raise ConfigError(f"{self.key}={_short(self.expression)}: {what} is not allowed; allowed: {ALLOWED}")

    def check_strings(self, op, left, right) -> None:
        """``'a' * 3000000000`` or a string column times a large number: refused before it is built."""

        def longest(value) -> int:
            if isinstance(value, str):
                return len(value)
            if (
                isinstance(value, pd.Series)
                and not pd.api.types.is_numeric_dtype(value)
                and not pd.api.types.is_bool_dtype(value)
            ):
                lengths = value.map(lambda v: len(v) if isinstance(v, str) else 0)
                return int(lengths.max()) if len(lengths) else 0
            return -1  # not text

        left_len, right_len = longest(left), longest(right)
        if left_len < 0 and right_len < 0:
            return
        if isinstance(op, ast.Mult):
            text, count = (left_len, right) if left_len >= 0 else (right_len, left)
            if isinstance(count, pd.Series):
                count = count.max() if len(count) and pd.api.types.is_numeric_dtype(count) else 0
            size = text * count if _is_scalar(count) else text
        else:
            size = max(left_len, 0) + max(right_len, 0)
        if size > MAX_STRING_CHARS:
            self.refuse(f"building a string of {size:,} characters (at most {MAX_STRING_CHARS:,})")

    def visit(self, node):
        method = getattr(self, f"visit_{type(node).__name__}", None)
        if method is None:
            return self.refuse(_describe(node))
        return method(node)

    def visit_Name(self, node):
        if node.id in ("True", "False", "None"):
            return {"True": True, "False": False, "None": None}[node.id]
        if node.id not in self.frame.columns:
            close = difflib.get_close_matches(node.id, [str(c) for c in self.frame.columns], n=3)
            hint = f"; close matches: {', '.join(close)}" if close else ""
            raise ConfigError(f"{self.key}={self.expression!r}: unknown column '{node.id}'{hint}")
        return _widen(self.frame[node.id])

    def visit_Constant(self, node):
        if not isinstance(node.value, (bool, int, float, str)) and node.value is not None:
            return self.refuse(f"the constant {_short(node.value)}")
        return node.value

    def visit_List(self, node):
        return [
            self.visit_Constant(e) if isinstance(e, ast.Constant) else self.refuse(_describe(e))
            for e in node.elts
        ]

    visit_Tuple = visit_List

    def visit_UnaryOp(self, node):
        value = self.visit(node.operand)
        if isinstance(node.op, ast.USub):
            return -value
        if isinstance(node.op, ast.UAdd):
            return value
        if isinstance(node.op, (ast.Not, ast.Invert)):
            return ~value if isinstance(value, pd.Series) else not value
        return self.refuse(_describe(node.op))

    def visit_BinOp(self, node):
        op = ARITHMETIC.get(type(node.op))
        if op is None:
            return self.refuse(_describe(node.op))
        left, right = self.visit(node.left), self.visit(node.right)
        if isinstance(node.op, (ast.Mult, ast.Add)):
            self.check_strings(node.op, left, right)
        if isinstance(node.op, ast.Pow) and _is_scalar(right) and abs(right) > MAX_EXPONENT:
            # Python integers make 9 ** 9 ** 9 a minutes-long computation; no derived column needs it
            return self.refuse(f"an exponent of {right!r} (at most {MAX_EXPONENT})")
        if isinstance(node.op, ast.Pow) and _is_scalar(left) and _is_scalar(right):
            left = float(left)
        return op(left, right)

    def visit_BoolOp(self, node):
        values = [self.visit(v) for v in node.values]
        combine = operator.and_ if isinstance(node.op, ast.And) else operator.or_
        result = values[0]
        for value in values[1:]:
            result = combine(result, value)
        return result

    def visit_Compare(self, node):
        left = self.visit(node.left)
        result = None
        for op, right_node in zip(node.ops, node.comparators):
            right = self.visit(right_node)
            if isinstance(op, (ast.In, ast.NotIn)):
                if not isinstance(right, list):
                    return self.refuse("'in' without a list of constants, e.g. state in ['CA', 'NY'],")
                part = left.isin(right) if isinstance(left, pd.Series) else left in right
                part = ~part if isinstance(op, ast.NotIn) else part
            elif type(op) in COMPARISONS:
                part = COMPARISONS[type(op)](left, right)
            else:
                return self.refuse(_describe(op))
            result = part if result is None else result & part
            left = right
        return result

    def visit_Call(self, node):
        if not isinstance(node.func, ast.Name):
            return self.refuse(_describe(node.func))
        if node.func.id not in FUNCTIONS:
            return self.refuse(f"the function '{node.func.id}'")
        if node.keywords or len(node.args) != 1:
            return self.refuse(f"calling {node.func.id}() with other than one argument")
        return FUNCTIONS[node.func.id](self.visit(node.args[0]))


def _describe(node) -> str:
    if isinstance(node, ast.Attribute):
        return f"attribute access (.{node.attr})"
    if isinstance(node, ast.Subscript):
        return "indexing ([...])"
    if isinstance(node, ast.Call):
        return "this function call"
    return f"'{type(node).__name__}'"


def _widen(column: pd.Series) -> pd.Series:
    """64-bit arithmetic, whatever the stored width (no silent overflow of small integer types)."""
    if pd.api.types.is_bool_dtype(column):
        return column
    if pd.api.types.is_integer_dtype(column) and column.dtype != np.int64:
        return column.astype(np.int64) if not column.hasnans else column.astype(np.float64)
    if pd.api.types.is_float_dtype(column) and column.dtype != np.float64:
        return column.astype(np.float64)
    return column
