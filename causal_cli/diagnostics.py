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


def smd(x: np.ndarray, t: np.ndarray, w: np.ndarray | None = None, scale: float | None = None) -> float:
    """Standardized mean difference (treated - control); ``scale`` defaults to the unweighted pooled SD."""
    treated = t == 1
    m1, _ = weighted_moments(x[treated], None if w is None else w[treated])
    m0, _ = weighted_moments(x[~treated], None if w is None else w[~treated])
    if scale is None:
        scale = pooled_sd(x, t)
    diff = m1 - m0
    if not np.isfinite(diff):
        return float("nan")
    if scale == 0:
        return 0.0 if diff == 0 else float("nan")
    return float(diff / scale)


def pooled_sd(x: np.ndarray, t: np.ndarray) -> float:
    treated = t == 1
    return float(np.sqrt((x[treated].var() + x[~treated].var()) / 2))


def variance_ratio(x: np.ndarray, t: np.ndarray, w: np.ndarray | None = None) -> float:
    """Treated over control (weighted) variance; NaN when the control variance is 0."""
    treated = t == 1
    _, v1 = weighted_moments(x[treated], None if w is None else w[treated])
    _, v0 = weighted_moments(x[~treated], None if w is None else w[~treated])
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
) -> list[dict[str, Any]]:
    """One row per covariate: SMD and variance ratio before and (with ``weights``) after adjustment.
    ``base_weights`` (observation weights, ``data.weights``) weight the "before" columns."""
    rows = []
    for j, name in enumerate(names):
        x = X[:, j]
        scale = pooled_sd(x, t)
        before = smd(x, t, base_weights, scale=scale)
        after = None if weights is None else smd(x, t, weights, scale=scale)
        rows.append(
            {
                "covariate": name,
                "smd_before": _finite(before),
                "smd_after": _finite(after),
                "variance_ratio_before": _finite(variance_ratio(x, t, base_weights)),
                "variance_ratio_after": None if weights is None else _finite(variance_ratio(x, t, weights)),
                "imbalanced_before": bool(np.isfinite(before) and abs(before) > threshold),
                "imbalanced_after": bool(after is not None and np.isfinite(after) and abs(after) > threshold),
            }
        )
    return rows


def _finite(value: float | None) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


def overlap_summary(
    ps: np.ndarray,
    t: np.ndarray,
    low: float = 0.05,
    high: float = 0.95,
    poor_share: float = 0.05,
    estimand: str = "ate",
) -> dict[str, Any]:
    """Propensity distribution per group, share outside ``[low, high]`` and the common-support range.

    The warning (``poor``) uses the bound that matters for the ``estimand``: for the ATE, every unit outside
    ``[low, high]``; for the ATT, the treated units above ``high`` (treated units without comparable
    controls; treated units with low scores have plenty); for the ATC, the controls below ``low``.
    ``share_outside`` stays the share of all units outside the band.
    """
    treated = t == 1
    outside = (ps < low) | (ps > high)
    groups = {}
    for label, rows in (("treated", treated), ("control", ~treated)):
        p = ps[rows]
        q = np.quantile(p, [0.0, 0.05, 0.5, 0.95, 1.0])
        groups[label] = {
            "n": int(rows.sum()),
            "min": float(q[0]),
            "p05": float(q[1]),
            "median": float(q[2]),
            "p95": float(q[3]),
            "max": float(q[4]),
            "share_outside": float(outside[rows].mean()),
        }
    support = [
        max(groups["treated"]["min"], groups["control"]["min"]),
        min(groups["treated"]["max"], groups["control"]["max"]),
    ]
    off_support = (
        (ps < support[0]) | (ps > support[1]) if support[0] <= support[1] else np.ones_like(ps, bool)
    )
    share = float(outside.mean())
    # tail index of the ATE's inverse-probability weights (reported; the warning itself is the share outside:
    # the index flags 12-17% of runs of a well-overlapping design, the 5% share none of them)
    with np.errstate(divide="ignore"):
        tails = [tail_index(1.0 / ps[treated]), tail_index(1.0 / (1.0 - ps[~treated]))]
    tails = [k for k in tails if k is not None and np.isfinite(k)]
    k_ate = max(tails) if tails else None
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
        "bounds": [float(low), float(high)],
        "share_outside": share,
        "n_outside": int(outside.sum()),
        "common_support": support if support[0] <= support[1] else None,
        "share_off_support": float(off_support.mean()),
        "poor_share": float(poor_share),
        "weight_tail_index": k_ate,
        "poor": bool(share_at_risk > poor_share),
        "groups": groups,
    }


def propensity_histogram(ps: np.ndarray, t: np.ndarray, num_bins: int = 40) -> list[dict[str, Any]]:
    """Counts per propensity bin and group on [0, 1]: enough to redraw ``overlap.png`` later."""
    edges = np.linspace(0.0, 1.0, num_bins + 1)
    treated = t == 1
    counts_t, _ = np.histogram(np.clip(ps[treated], 0, 1), bins=edges)
    counts_c, _ = np.histogram(np.clip(ps[~treated], 0, 1), bins=edges)
    return [
        {
            "bin_low": float(edges[i]),
            "bin_high": float(edges[i + 1]),
            "treated": int(counts_t[i]),
            "control": int(counts_c[i]),
        }
        for i in range(num_bins)
    ]


def weight_caveats(diag: Diagnostics | None, advice: str = DOUBLY_ROBUST_ADVICE) -> list[str]:
    """Heavy-tail caveats from a run's weight diagnostics (``balance_weights_``), for an estimator whose
    weights are inverse propensity weights but which does not state them itself (aipw)."""
    if diag is None or diag.adjustment != "weighting" or not diag.weights:
        return []
    return heavy_weight_caveats(diag.weights, advice=advice)


def weight_summary(w: np.ndarray, t: np.ndarray, top: int = 5) -> dict[str, Any]:
    """Kish effective sample size and the largest weights (with their share of the group's total), and the
    heavy-tail check of :func:`weight_tail` (``max_share``, ``ess_share_used``, ``heavy_tailed``)."""
    out = {}
    treated = t == 1
    for label, rows in (("treated", treated), ("control", ~treated)):
        idx = np.flatnonzero(rows)
        wg = w[idx]
        total = float(wg.sum())
        ess = total**2 / float((wg**2).sum()) if total > 0 else 0.0
        order = idx[np.argsort(-w[idx], kind="stable")[:top]]
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
        tail = weight_tail(w, rows)
        keys = ("max_share", "max_variance_share", "ess_share_used", "tail_index", "heavy_tailed")
        out[label].update({k: tail[k] for k in keys})
    return out


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
    from causal_cli.errors import EstimationError
    from causal_cli.estimators.base import EstimationData
    from causal_cli.estimators.propensity import propensity_scores

    low = float(_setting(settings, "overlap_low", 0.05))
    high = float(_setting(settings, "overlap_high", 0.95))
    threshold = float(_setting(settings, "smd_threshold", 0.1))
    notes: list[str] = []
    t = np.asarray(t, dtype=float)
    n = t.shape[0]
    weights, adjustment, problem = estimator_weights(estimator, n)
    if problem:
        notes.append(problem)
    diag = Diagnostics(adjustment=adjustment, smd_threshold=threshold)
    diag.balance = balance_table(X, list(names), t, weights, threshold, base_weights=observation_weights)
    if weights is not None:
        diag.weights = weight_summary(weights, t, int(_setting(settings, "top_weights", 5)))

    ps = getattr(estimator, "propensity_", None)
    source = "estimator"
    if ps is None or np.shape(ps) != (n,):
        source = "logistic model on the balance covariates"
        try:
            ps, _ = propensity_scores(EstimationData(t=t, y=np.zeros(n), X=X))
        except EstimationError as exc:
            notes.append(f"overlap diagnostic skipped: {exc}")
            return diag, notes
    ps = np.asarray(ps, dtype=float)
    diag.overlap = overlap_summary(
        ps,
        t,
        low,
        high,
        float(_setting(settings, "poor_overlap_share", 0.05)),
        getattr(estimator, "target_units", "ate"),
    )
    diag.overlap["propensity_source"] = source
    diag.histogram = propensity_histogram(ps, t, int(_setting(settings, "num_bins", 40)))
    return diag, notes


def _setting(settings, key: str, default):
    if settings is None:
        return default
    value = settings.get(key) if hasattr(settings, "get") else getattr(settings, key, None)
    return default if value is None else value
