"""Balance and overlap diagnostics: does the adjusted sample compare like with like?

Protocol with estimators. After ``fit`` an estimator may expose:

- ``propensity_``: P(treated | adjustment set) for every row it was fitted on. Without it (naive,
  regression, ...) the overlap diagnostic fits the built-in logistic model on the balance covariates.
- ``balance_weights_``: one non-negative weight per row that makes the adjusted treated and control
  groups comparable for the estimator's target units. Matching: 1 for each kept unit of the target
  group plus the number of times a unit serves as a match (fractional with k > 1; ATE matching adds
  both directions). Weighting: the unit's inverse-probability weight. Rows with weight 0 are out of
  the adjusted sample. Without it, balance is reported before adjustment only.
- ``balance_adjustment`` (class attribute, optional): ``"matching"`` or ``"weighting"``, how the
  weights arise; ``"weighting"`` is assumed when ``balance_weights_`` exists and it does not.

SMDs divide the treated-minus-control mean difference by the pooled standard deviation of the
*unadjusted* groups, before and after, so a change in SMD is a change in means only (Austin 2009).
Variances are (weighted) population variances, so identical weighted distributions give a ratio of
exactly 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from causal_cli.estimators.caveats import (  # noqa: F401  (re-exported: weight diagnostics use them)
    DOUBLY_ROBUST_ADVICE,
    HEAVY_ESS_SHARE,
    HEAVY_MAX_SHARE,
    HEAVY_MAX_UNITS,
    IPW_ADVICE,
    TAIL_INDEX_LIMIT,
    dropped_units_caveat,
    heavy_weight_caveats,
    tail_index,
    weight_tail,
)

#: what a missing ``balance_adjustment`` means when ``balance_weights_`` is set
DEFAULT_ADJUSTMENT = "weighting"


@dataclass
class Diagnostics:
    """Plain data: the summary goes to ``results.json``; ``histogram`` rows to ``overlap.csv``."""

    adjustment: str
    smd_threshold: float
    balance: list[dict[str, Any]] = field(default_factory=list)
    overlap: dict[str, Any] | None = None
    weights: dict[str, Any] | None = None
    histogram: list[dict[str, Any]] = field(default_factory=list)

    @property
    def max_abs_smd_before(self) -> float | None:
        return _max_abs(row["smd_before"] for row in self.balance)

    @property
    def max_abs_smd_after(self) -> float | None:
        return _max_abs(row["smd_after"] for row in self.balance)

    @property
    def poor_overlap(self) -> bool:
        return bool(self.overlap and self.overlap.get("poor"))

    def to_dict(self) -> dict[str, Any]:
        return {
            "adjustment": self.adjustment,
            "smd_threshold": self.smd_threshold,
            "max_abs_smd_before": self.max_abs_smd_before,
            "max_abs_smd_after": self.max_abs_smd_after,
            "n_imbalanced_before": sum(1 for r in self.balance if r["imbalanced_before"]),
            "n_imbalanced_after": sum(1 for r in self.balance if r["imbalanced_after"]),
            "balance": self.balance,
            "overlap": self.overlap,
            "weights": self.weights,
        }


def _max_abs(values) -> float | None:
    finite = [abs(v) for v in values if v is not None and np.isfinite(v)]
    return max(finite) if finite else None


def weighted_moments(x: np.ndarray, w: np.ndarray | None = None) -> tuple[float, float]:
    """Weighted mean and population variance (``w=None``: unweighted)."""
    if w is None:
        return float(x.mean()), float(x.var())
    total = w.sum()
    if total <= 0:
        return float("nan"), float("nan")
    mean = float((w * x).sum() / total)
    return mean, float((w * (x - mean) ** 2).sum() / total)


class Groups:
    """The treated and control rows of ``t``, found once and taken by position.

    Every diagnostic needs per-group copies of a few columns; taking them by position is ~5x faster than
    by a boolean mask (about 20 against 100 ms for 10M rows) and gives the same values in the same order.
    """

    def __init__(self, t: np.ndarray):
        treated = np.asarray(t) == 1
        self.treated = np.flatnonzero(treated)
        self.control = np.flatnonzero(~treated)

    def split(self, values: np.ndarray | None) -> tuple[np.ndarray, np.ndarray] | None:
        """``(values[treated], values[control])``, or None for None."""
        if values is None:
            return None
        return values.take(self.treated), values.take(self.control)

    def moments(self, groups, weights=None) -> list[tuple[float, float]]:
        """(mean, variance) of each group's values, weighted by its ``weights`` (None: unweighted)."""
        if weights is None:
            return [weighted_moments(x) for x in groups]
        return [weighted_moments(x, w) for x, w in zip(groups, weights)]


def smd(x: np.ndarray, t: np.ndarray, w: np.ndarray | None = None, scale: float | None = None) -> float:
    """Standardized mean difference (treated - control); ``scale`` defaults to the unweighted pooled SD."""
    groups = Groups(t)
    (m1, _), (m0, _) = groups.moments(groups.split(x), groups.split(w))
    return _smd_of_means(m1, m0, pooled_sd(x, t) if scale is None else scale)


def pooled_sd(x: np.ndarray, t: np.ndarray) -> float:
    treated, control = Groups(t).split(x)
    return _pooled_sd(treated.var(), control.var())


def _pooled_sd(var_treated: float, var_control: float) -> float:
    return float(np.sqrt((var_treated + var_control) / 2))


def variance_ratio(x: np.ndarray, t: np.ndarray, w: np.ndarray | None = None) -> float:
    """Treated over control (weighted) variance; NaN when the control variance is 0."""
    groups = Groups(t)
    (_, v1), (_, v0) = groups.moments(groups.split(x), groups.split(w))
    return _ratio_of_variances(v1, v0)


def _smd_of_means(m1: float, m0: float, scale: float) -> float:
    diff = m1 - m0
    if not np.isfinite(diff):
        return float("nan")
    if scale == 0:
        return 0.0 if diff == 0 else float("nan")
    return float(diff / scale)


def _ratio_of_variances(v1: float, v0: float) -> float:
    if not v0 > 0:
        return 1.0 if v1 == 0 and v0 == 0 else float("nan")
    return float(v1 / v0)


def balance_table(
    X: np.ndarray,
    names,
    t: np.ndarray,
    weights: np.ndarray | None,
    threshold: float = 0.1,
    base_weights: np.ndarray | None = None,
    groups: Groups | None = None,
) -> list[dict[str, Any]]:
    """One row per covariate: SMD and variance ratio before and (with ``weights``) after adjustment.
    ``base_weights`` (observation weights, ``data.weights``) weight the "before" columns.

    Each covariate's treated and control values are taken once (the weights' once for all covariates) and
    every number of its row comes from their moments, with the arithmetic of :func:`smd`,
    :func:`pooled_sd` and :func:`variance_ratio`."""
    groups = groups or Groups(t)
    after_w, before_w = groups.split(weights), groups.split(base_weights)
    return [
        _balance_row(name, groups, groups.split(X[:, j]), before_w, after_w, threshold)
        for j, name in enumerate(names)
    ]


def _balance_row(name, groups: Groups, values, before_w, after_w, threshold: float) -> dict[str, Any]:
    plain = groups.moments(values)
    scale = _pooled_sd(plain[0][1], plain[1][1])
    before = plain if before_w is None else groups.moments(values, before_w)
    after = None if after_w is None else groups.moments(values, after_w)
    smd_before = _smd_of_means(before[0][0], before[1][0], scale)
    smd_after = None if after is None else _smd_of_means(after[0][0], after[1][0], scale)
    ratio_after = None if after is None else _ratio_of_variances(after[0][1], after[1][1])
    return {
        "covariate": name,
        "smd_before": _finite(smd_before),
        "smd_after": _finite(smd_after),
        "variance_ratio_before": _finite(_ratio_of_variances(before[0][1], before[1][1])),
        "variance_ratio_after": _finite(ratio_after),
        "imbalanced_before": bool(np.isfinite(smd_before) and abs(smd_before) > threshold),
        "imbalanced_after": bool(
            smd_after is not None and np.isfinite(smd_after) and abs(smd_after) > threshold
        ),
    }


def _finite(value: float | None) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


def overlap_summary(
    ps: np.ndarray,
    t: np.ndarray,
    low: float = 0.05,
    high: float = 0.95,
    poor_share: float = 0.05,
    estimand: str = "ate",
    groups: Groups | None = None,
    ps_groups: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict[str, Any]:
    """Propensity distribution per group, share outside ``[low, high]`` and the common-support range.

    The warning (``poor``) uses the bound that matters for the ``estimand``: for the ATE, every unit outside
    ``[low, high]``; for the ATT, the treated units above ``high`` (treated units without comparable
    controls; treated units with low scores have plenty); for the ATC, the controls below ``low``.
    ``share_outside`` stays the share of all units outside the band. ``groups`` and ``ps_groups``
    (``groups.split(ps)``) save finding them again.
    """
    groups = groups or Groups(t)
    ps_treated, ps_control = ps_groups or groups.split(ps)
    summary = {
        label: _propensity_quantiles(p, low, high)
        for label, p in (("treated", ps_treated), ("control", ps_control))
    }
    support = [
        max(summary["treated"]["min"], summary["control"]["min"]),
        min(summary["treated"]["max"], summary["control"]["max"]),
    ]
    outside = (ps < low) | (ps > high)
    off_support = (
        (ps < support[0]) | (ps > support[1]) if support[0] <= support[1] else np.ones_like(ps, bool)
    )
    # tail index of the ATE's inverse-probability weights (reported; the warning itself is the share outside:
    # the index flags 12-17% of runs of a well-overlapping design, the 5% share none of them)
    with np.errstate(divide="ignore"):
        tails = [tail_index(1.0 / ps_treated), tail_index(1.0 / (1.0 - ps_control))]
    tails = [k for k in tails if k is not None and np.isfinite(k)]
    risk = _overlap_risk(ps, t == 1, outside, low, high, estimand)
    return {
        **risk,
        "bounds": [float(low), float(high)],
        "share_outside": float(outside.mean()),
        "n_outside": int(outside.sum()),
        "common_support": support if support[0] <= support[1] else None,
        "share_off_support": float(off_support.mean()),
        "poor_share": float(poor_share),
        "weight_tail_index": max(tails) if tails else None,
        "poor": bool(risk["share_at_risk"] > poor_share),
        "groups": summary,
    }


def _propensity_quantiles(p: np.ndarray, low: float, high: float) -> dict[str, Any]:
    q = np.quantile(p, [0.0, 0.05, 0.5, 0.95, 1.0])
    return {
        "n": int(p.size),
        "min": float(q[0]),
        "p05": float(q[1]),
        "median": float(q[2]),
        "p95": float(q[3]),
        "max": float(q[4]),
        "share_outside": float(((p < low) | (p > high)).mean()),
    }


def _overlap_risk(ps, treated, outside, low: float, high: float, estimand) -> dict[str, Any]:
    """The share of the ``estimand``'s units at risk, and the warning's message."""
    estimand = str(getattr(estimand, "value", estimand) or "ate").lower()
    if estimand == "att" and treated.any():
        at_risk, base = treated & (ps > high), treated
        what = f"treated units have a propensity score above {high:g}: too few comparable controls"
    elif estimand == "atc" and (~treated).any():
        at_risk, base = ~treated & (ps < low), ~treated
        what = f"control units have a propensity score below {low:g}: too few comparable treated units"
    else:
        estimand, at_risk, base = "ate", outside, np.ones_like(treated)
        what = f"units have a propensity score outside [{low:g}, {high:g}]"
    share_at_risk = float(at_risk.sum() / max(int(base.sum()), 1))
    return {
        "estimand": estimand,
        "share_at_risk": share_at_risk,
        "message": f"poor overlap for the {estimand.upper()}: {100 * share_at_risk:.1f}% of {what}",
    }


def propensity_histogram(
    ps: np.ndarray, t: np.ndarray, num_bins: int = 40, ps_groups: tuple[np.ndarray, np.ndarray] | None = None
) -> list[dict[str, Any]]:
    """Counts per propensity bin and group on [0, 1]: enough to redraw ``overlap.png`` later."""
    counts = []
    for p in ps_groups or Groups(t).split(ps):
        if not (p.size == 0 or (0 <= p.min() and p.max() <= 1)):
            p = np.clip(p, 0, 1)
        # bins given by number and range: numpy puts each value in its bin directly (exactly, against the
        # same edges); the edges given as an array made it sort the data block by block
        group_counts, edges = np.histogram(p, bins=num_bins, range=(0.0, 1.0))
        counts.append(group_counts)
    return [
        {
            "bin_low": float(edges[i]),
            "bin_high": float(edges[i + 1]),
            "treated": int(counts[0][i]),
            "control": int(counts[1][i]),
        }
        for i in range(num_bins)
    ]


def weight_caveats(diag: Diagnostics | None, advice: str = DOUBLY_ROBUST_ADVICE) -> list[str]:
    """Heavy-tail caveats from a run's weight diagnostics (``balance_weights_``), for an estimator whose
    weights are inverse propensity weights but which does not state them itself (aipw)."""
    if diag is None or diag.adjustment != "weighting" or not diag.weights:
        return []
    return heavy_weight_caveats(diag.weights, advice=advice)


def weight_summary(
    w: np.ndarray, t: np.ndarray, top: int = 5, groups: Groups | None = None
) -> dict[str, Any]:
    """Kish effective sample size and the largest weights (with their share of the group's total), and the
    heavy-tail check of :func:`weight_tail` (``max_share``, ``ess_share_used``, ``heavy_tailed``)."""
    out = {}
    groups = groups or Groups(t)
    for label, idx in (("treated", groups.treated), ("control", groups.control)):
        wg = w.take(idx)
        total = float(wg.sum())
        ess = total**2 / float((wg**2).sum()) if total > 0 else 0.0
        order = idx[largest(wg, top)]
        out[label] = {
            "n": int(idx.size),
            "n_used": int((wg > 0).sum()),
            "ess": float(ess),
            "ess_share": float(ess / idx.size) if idx.size else None,
            "largest": [
                {"row": int(i), "weight": float(w[i]), "share": float(w[i] / total) if total > 0 else None}
                for i in order
            ],
        }
        tail = weight_tail(w, idx)  # rows by position: the same values as by mask, faster
        keys = ("max_share", "max_variance_share", "ess_share_used", "tail_index", "heavy_tailed")
        out[label].update({k: tail[k] for k in keys})
    return out


def largest(values: np.ndarray, k: int) -> np.ndarray:
    """Positions of the ``k`` largest values, largest first, ties in position order: what
    ``np.argsort(-values, kind="stable")[:k]`` gives, from a partition instead of a full sort."""
    k = max(0, min(int(k), values.size))
    if k == 0:
        return np.zeros(0, dtype=np.intp)
    kth = np.partition(values, values.size - k)[values.size - k]
    above = np.flatnonzero(values > kth)
    ties = np.flatnonzero(values == kth)[: k - above.size]
    candidates = np.sort(np.concatenate([above, ties]))
    return candidates[np.argsort(-values[candidates], kind="stable")]


def estimator_weights(estimator, n: int) -> tuple[np.ndarray | None, str, str | None]:
    """``(balance_weights_, adjustment kind, problem)`` following the protocol in this module's docstring."""
    w = getattr(estimator, "balance_weights_", None)
    if w is None:
        return None, "none", None
    w = np.asarray(w, dtype=float)
    if w.shape != (n,) or not np.all(np.isfinite(w)) or np.any(w < 0):
        return (
            None,
            "none",
            f"estimator '{estimator.name}' gave unusable balance weights; balance after adjustment skipped",
        )
    return w, str(getattr(estimator, "balance_adjustment", DEFAULT_ADJUSTMENT)), None


def compute(
    t: np.ndarray,
    X: np.ndarray,
    names,
    estimator,
    settings=None,
    observation_weights: np.ndarray | None = None,
) -> tuple[Diagnostics, list[str]]:
    """All diagnostics for a fitted estimator on covariates ``X``; returns them and any notes.

    With ``observation_weights`` (``data.weights``) balance before adjustment is weighted by them; the
    estimator's ``balance_weights_`` already include them (ipw, aipw, dml)."""
    from causal_cli.numerics import run_concurrently

    low = float(_setting(settings, "overlap_low", 0.05))
    high = float(_setting(settings, "overlap_high", 0.95))
    threshold = float(_setting(settings, "smd_threshold", 0.1))
    notes: list[str] = []
    t = np.asarray(t, dtype=float)
    n = t.shape[0]
    weights, adjustment, problem = estimator_weights(estimator, n)
    if problem:
        notes.append(problem)
    groups = Groups(t)
    diag = Diagnostics(adjustment=adjustment, smd_threshold=threshold)
    top = int(_setting(settings, "top_weights", 5))
    # balance, weights and overlap are independent: in two threads on large data (the same numbers)
    diag.balance, diag.weights, (overlap, histogram, note) = run_concurrently(
        [
            lambda: balance_table(X, list(names), t, weights, threshold, observation_weights, groups),
            lambda: None if weights is None else weight_summary(weights, t, top, groups),
            lambda: _overlap(t, X, estimator, settings, groups, (low, high)),
        ],
        n,
    )
    if note:
        notes.append(note)
        return diag, notes
    diag.overlap, diag.histogram = overlap, histogram
    return diag, notes


def _overlap(t, X, estimator, settings, groups: Groups, limits: tuple[float, float]):
    """``(overlap summary, histogram rows, None)``, or ``(None, None, note)`` when no propensity score can
    be had: the estimator's, else a logistic model on the balance covariates."""
    from causal_cli.errors import EstimationError
    from causal_cli.estimators.base import EstimationData
    from causal_cli.estimators.propensity import propensity_scores

    n = t.shape[0]
    ps = getattr(estimator, "propensity_", None)
    source = "estimator"
    if ps is None or np.shape(ps) != (n,):
        source = "logistic model on the balance covariates"
        try:
            ps, _ = propensity_scores(EstimationData(t=t, y=np.zeros(n), X=X))
        except EstimationError as exc:
            return None, None, f"overlap diagnostic skipped: {exc}"
    ps = np.asarray(ps, dtype=float)
    ps_groups = groups.split(ps)
    poor_share = float(_setting(settings, "poor_overlap_share", 0.05))
    estimand = getattr(estimator, "target_units", "ate")
    overlap = overlap_summary(ps, t, *limits, poor_share, estimand, groups, ps_groups)
    overlap["propensity_source"] = source
    histogram = propensity_histogram(ps, t, int(_setting(settings, "num_bins", 40)), ps_groups)
    return overlap, histogram, None


def _setting(settings, key: str, default):
    if settings is None:
        return default
    value = settings.get(key) if hasattr(settings, "get") else getattr(settings, key, None)
    return default if value is None else value
