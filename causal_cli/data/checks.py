"""Validate a loaded table against the graph, and make its columns usable without guessing.

Every refusal is one line naming the column (and where it came from) and what was expected.
The only changes made to the data are stated in ``Dataset.notes``: a yes/no or true/false
treatment mapped to 1/0, numbers stored as text converted, rows dropped under
``data.missing=drop``, and categorical confounders one-hot encoded (the graph keeps the
categorical's name; estimation uses its dummy columns, see :func:`causal_cli.data.expand_columns`).
"""

from __future__ import annotations

import difflib

import numpy as np
import pandas as pd

from causal_cli.data import CLUSTER, DUMMIES, WEIGHTS, Dataset
from causal_cli.errors import ConfigError, DataError

TRUE_WORDS = ("1", "true", "yes")
FALSE_WORDS = ("0", "false", "no")
#: a categorical with more levels than this is refused (an ID column, most likely)
MAX_LEVELS = 50


def require_columns(needed, present, graph, where: str) -> None:
    """Every needed column must exist; name the first missing one, its role and close matches."""
    present = [str(c) for c in present]
    missing = [c for c in needed if c not in present]
    if not missing:
        return
    name = missing[0]
    role = _role(graph, name)
    close = difflib.get_close_matches(name, present, n=3, cutoff=0.6)
    if close:
        hint = f"close matches: {', '.join(close)}"
    elif len(present) <= 12:
        hint = f"columns: {', '.join(present) or 'none'}"
    else:
        hint = f"no close match among its {len(present)} columns"
    more = f" (and {len(missing) - 1} more: {', '.join(missing[1:4])})" if len(missing) > 1 else ""
    raise DataError(f"column '{name}'{role} is not in {where}; {hint}{more}")


def validate(dataset: Dataset, graph, data_cfg) -> Dataset:
    """Check the graph's columns; return the dataset with its treatment coded 0/1 and categoricals encoded."""
    frame = dataset.frame
    where = dataset.info.get("where") or "the data"
    used = list(graph.observed_nodes)
    require_columns(used, frame.columns, graph, where)
    if frame.empty:
        raise DataError(f"{where} has no rows")
    categorical = [str(c) for c in (data_cfg.get("categorical") or [])]
    for name in categorical:
        if name not in used or name in (graph.treatment, graph.outcome):
            raise ConfigError(
                f"data.categorical: '{name}' is not a confounder (or other covariate) of the graph; "
                f"allowed: {', '.join(c for c in used if c not in (graph.treatment, graph.outcome))}"
            )
    notes = list(dataset.notes)
    design = [str(c) for c in (data_cfg.get("weights"), data_cfg.get("cluster")) if c]
    require_columns([c for c in design if c not in used], frame.columns, graph, where)
    frame = _handle_missing(
        frame,
        list(dict.fromkeys(used + design)),
        str(getattr(data_cfg.get("missing"), "value", data_cfg.get("missing"))),
        where,
        notes,
    )
    frame[graph.treatment] = binary_treatment(frame[graph.treatment], graph.treatment, notes)
    dummies: dict[str, list[str]] = {}
    for name in used:
        if name == graph.treatment:
            continue
        if name in categorical:
            frame, dummies[name] = one_hot(frame, name, notes, _max_categories(data_cfg))
        else:
            frame[name] = numeric(frame[name], name, _role(graph, name), notes)
            _not_constant(frame[name], name, _role(graph, name))
    frame.attrs[DUMMIES] = dummies
    if data_cfg.get("weights"):
        frame.attrs[WEIGHTS] = observation_weights(frame, str(data_cfg.weights), notes)
    if data_cfg.get("cluster"):
        frame.attrs[CLUSTER] = clusters(frame, str(data_cfg.cluster), notes)
    dataset.frame = frame
    dataset.notes = notes
    return dataset


def observation_weights(frame: pd.DataFrame, name: str, notes: list[str]) -> str:
    """``data.weights``: a numeric column, finite, >= 0 and not all zero; returns its name."""
    column = frame[name]
    if not pd.api.types.is_numeric_dtype(column):
        column = pd.to_numeric(column, errors="coerce")
        if column.isna().any():
            raise DataError(
                f"data.weights: column '{name}' has non-numeric values; allowed: finite numbers >= 0"
            )
    values = column.to_numpy(dtype=float)
    if not np.all(np.isfinite(values)) or (values < 0).any():
        bad = values[~np.isfinite(values) | (values < 0)][0]
        raise DataError(f"data.weights: column '{name}' has the value {bad}; allowed: finite numbers >= 0")
    if not (values > 0).any():
        raise DataError(f"data.weights: column '{name}' is zero in every row; allowed: weights not all zero")
    frame[name] = values
    zero = int((values == 0).sum())
    notes.append(
        f"data.weights: rows weighted by column '{name}' (sum {values.sum():,.4g}; Kish effective sample size "
        f"{values.sum() ** 2 / (values**2).sum():,.0f} of {len(values):,} rows"
        + (f"; {zero:,} rows have weight 0)" if zero else ")")
    )
    return name


def clusters(frame: pd.DataFrame, name: str, notes: list[str]) -> str:
    """``data.cluster``: cluster ids of any type; at least 2 clusters. Returns the column name."""
    groups = int(frame[name].nunique())
    if groups < 2:
        raise DataError(
            f"data.cluster: column '{name}' has {groups} cluster(s); allowed: a column with >= 2 ids"
        )
    notes.append(f"data.cluster: {groups:,} clusters in column '{name}'; standard errors are cluster-robust")
    return name


def _role(graph, name: str) -> str:
    role = graph.role_of(name) if name in graph.nodes else None
    return f" (graph {role})" if role and role != "other" else ""


def _handle_missing(frame: pd.DataFrame, used: list[str], policy: str, where: str, notes: list[str]):
    # column by column: frame[used].isna() would first copy every used column
    counts = pd.Series({c: int(frame[c].isna().sum()) for c in used}, dtype="int64")
    counts = counts[counts > 0]
    if counts.empty:
        return frame
    detail = ", ".join(f"{c} {int(n):,}" for c, n in counts.sort_values(ascending=False).items())
    if policy != "drop":
        raise DataError(
            f"missing values in used columns of {where}: {detail} (of {len(frame):,} rows); "
            "fix the data, filter the rows with data.query, or set data.missing=drop"
        )
    kept = frame.dropna(subset=list(counts.index)).reset_index(drop=True)
    if kept.empty:
        raise DataError(f"data.missing=drop dropped every row of {where} (missing: {detail})")
    notes.append(
        f"data.missing=drop: dropped {len(frame) - len(kept):,} of {len(frame):,} rows "
        f"with missing values ({detail})"
    )
    return kept


def binary_treatment(column: pd.Series, name: str, notes: list[str]) -> pd.Series:
    """0/1 as is; true/false and yes/no (any case) mapped to 1/0 and the mapping noted; else refused."""
    if pd.api.types.is_bool_dtype(column):
        coded = column.astype("int64")
        notes.append(f"treatment '{name}': true -> 1, false -> 0")
    elif pd.api.types.is_numeric_dtype(column):
        values = pd.unique(column)
        if not set(values.tolist()) <= {0, 1}:
            raise DataError(_not_binary(name, column))
        # already int64: no copy (pandas >= 3 copies lazily anyway; its copy= keyword is deprecated)
        coded = column if column.dtype == "int64" else column.astype("int64")
    else:
        text = column.astype(str).str.strip().str.lower()
        if not set(pd.unique(text)) <= {*TRUE_WORDS, *FALSE_WORDS}:
            raise DataError(_not_binary(name, column))
        coded = text.isin(TRUE_WORDS).astype("int64")
        mapping = {str(v): int(str(v).strip().lower() in TRUE_WORDS) for v in pd.unique(column)}
        shown = ", ".join(f"'{v}' -> {c}" for v, c in sorted(mapping.items(), key=lambda kv: (-kv[1], kv[0])))
        notes.append(f"treatment '{name}': {shown}")
    treated = int(coded.sum())
    if treated in (0, len(coded)):
        value = 1 if treated else 0
        raise DataError(
            f"treatment '{name}' is {value} in every row ({len(coded):,} rows): an effect needs both treated "
            "and control rows (check the data or data.query)"
        )
    return coded


def _not_binary(name: str, column: pd.Series) -> str:
    distinct = pd.unique(column)
    try:
        distinct = sorted(distinct)
    except TypeError:
        distinct = list(distinct)
    shown = ", ".join(
        repr(v) if isinstance(v, str) else f"{v:g}" if isinstance(v, float) else str(v) for v in distinct[:8]
    )
    more = f", ... ({len(distinct):,} distinct)" if len(distinct) > 8 else ""
    return (
        f"treatment '{name}' is not binary: distinct values {shown}{more}; expected 0/1, true/false or yes/no"
    )


def numeric(column: pd.Series, name: str, role: str, notes: list[str]) -> pd.Series:
    """Numbers (or booleans) as they are; numbers stored as text converted (noted); anything else refused."""
    if pd.api.types.is_bool_dtype(column) or pd.api.types.is_numeric_dtype(column):
        return column
    converted = _to_numeric(column) if not isinstance(column.dtype, pd.CategoricalDtype) else None
    if converted is None or converted.isna().sum() > column.isna().sum():
        bad = column[column.notna() & (converted.isna() if converted is not None else True)]
        examples = ", ".join(repr(str(v)) for v in pd.unique(bad)[:3])
        raise DataError(
            f"column '{name}'{role} is not numeric: {len(bad):,} value(s) are not numbers (e.g. {examples}); "
            f"expected numbers, or list it in data.categorical to one-hot encode it"
        )
    notes.append(f"column '{name}' held numbers stored as text; converted to numbers")
    return converted


def _to_numeric(column: pd.Series) -> pd.Series:
    """``pd.to_numeric`` (unparsable text -> NaN); a 400-digit number overflows it, and becomes inf here."""
    try:
        return pd.to_numeric(column, errors="coerce")
    except OverflowError:
        return pd.to_numeric(column.map(_as_float), errors="coerce")


def _as_float(value):
    try:
        return float(str(value)) if isinstance(value, (str, int)) else value
    except ValueError:
        return float("nan")


def _not_constant(column: pd.Series, name: str, role: str) -> None:
    if column.min() == column.max():
        value = column.iloc[0]
        value = value.item() if hasattr(value, "item") else value
        raise DataError(
            f"column '{name}'{role} is constant (every row is {value!r}); a constant column carries "
            "no information: remove it from the graph or check data.query"
        )


def _max_categories(data_cfg) -> int:
    value = data_cfg.get("max_categories", MAX_LEVELS) if hasattr(data_cfg, "get") else MAX_LEVELS
    if value is None:
        return MAX_LEVELS
    if isinstance(value, bool) or not isinstance(value, int) or value < 2:
        raise ConfigError(f"data.max_categories={value!r}; allowed: an integer >= 2")
    return int(value)


def one_hot(
    frame: pd.DataFrame, name: str, notes: list[str], max_levels: int = MAX_LEVELS
) -> tuple[pd.DataFrame, list[str]]:
    """One 0/1 column per level except the first (sorted): ``race`` -> ``race_black``, ``race_hispanic``."""
    column = frame[name]
    levels = [v.item() if hasattr(v, "item") else v for v in pd.unique(column)]
    try:
        levels = sorted(levels)
    except TypeError:
        levels = sorted(levels, key=str)
    if len(levels) < 2:
        raise DataError(
            f"column '{name}' (categorical) has a single level ({levels[0]!r}); it carries no information"
        )
    if len(levels) > max_levels:
        raise DataError(
            f"column '{name}' (categorical) has {len(levels):,} levels, more than data.max_categories="
            f"{max_levels}; list it in data.categorical only if it is a category (a numeric column is used "
            "as a number when not listed), group rare levels, or raise data.max_categories"
        )
    names = [f"{name}_{level}" for level in levels[1:]]
    clash = [c for c in names if c in frame.columns]
    if clash:
        raise DataError(
            f"one-hot column '{clash[0]}' for categorical '{name}' clashes with an existing column"
        )
    encoded = pd.DataFrame(
        {c: (column == level).astype("int64") for c, level in zip(names, levels[1:])}, index=frame.index
    )
    notes.append(f"one-hot encoded '{name}' -> {', '.join(names)} (reference level: {levels[0]!r})")
    return pd.concat([frame, encoded], axis=1), names


def check_overlap(overlap: dict | None, adjusts: bool = True) -> None:
    """Refuse a run whose treated and control propensity scores never overlap.

    ``overlap`` is the summary :func:`causal_cli.diagnostics.overlap_summary` computed for the run
    (its ``poor`` flag already drives the console's warning with the share outside the band).
    Without any common support an adjusting estimator has nothing to compare, so the run fails.
    """
    if not overlap or not adjusts:
        return
    groups = overlap.get("groups") or {}
    if overlap.get("common_support") is None and {"treated", "control"} <= set(groups):
        t, c = groups["treated"], groups["control"]
        raise DataError(
            f"no overlap: the propensity scores of treated units [{t['min']:.3g}, {t['max']:.3g}] "
            f"and control units [{c['min']:.3g}, {c['max']:.3g}] do not intersect, so no treated unit has "
            "a comparable control and an adjusted effect would be pure extrapolation (drop the confounder "
            "that separates them, or restrict the population with data.query)"
        )
