"""Inverse propensity weighting for the ATE, ATT or ATC.

Weights: ATE ``t/e + (1-t)/(1-e)``; ATT ``t + (1-t) e/(1-e)``; ATC ``t (1-e)/e + (1-t)``.
``normalized: true`` (Hajek, default) divides each group's weighted outcome sum by its weight sum;
this is what DoWhy's ``propensity_score_weighting`` computes for every ``weighting_scheme``.
``normalized: false`` is Horvitz-Thompson (divide by the number of target units). ``stabilized``
multiplies the weights by the group's share P(T=t): it changes the reported weights, never the
estimate (Hajek weights are renormalized within each group anyway).

Overlap is handled explicitly and reported: ``clip: [low, high]`` bounds the scores (default none;
DoWhy's hidden default [0.05, 0.95] turns the Lalonde ATT into about -$7,000), ``trimming: a``
drops units with a score outside ``[a, 1-a]``, and ``trimming: crump`` picks ``a`` by Crump et al.
(2009) (the rule ``causalinference``'s ``trim_s`` uses). Trimming keeps the scores fitted on all
units and changes the estimand to the trimmed population.

Standard error: the M-estimation sandwich, i.e. the influence function of the weighted means
stacked with the logistic score equations, so the propensity model's own estimation error is
included (Lunceford & Davidian 2004). With a scikit-learn propensity model the scores are treated
as known (usually conservative for the ATE, not always for the ATT).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from causal_cli.errors import EstimationError
from causal_cli.estimators.base import influence_se
from causal_cli.estimators.propensity_score import PropensityConfig, PropensityScoreEstimator
from causal_cli.schema import check

CLIP_ALLOWED = "null (no clipping) or [low, high] with 0 <= low < high <= 1"
TRIMMING_ALLOWED = "null (none), a number a in (0, 0.5) (drop units with a score outside [a, 1-a]), or crump"


def valid_clip(clip) -> bool:
    if clip is None:
        return True
    try:
        low, high = (float(v) for v in clip)
    except (TypeError, ValueError):
        return False
    return 0 <= low < high <= 1


def valid_trimming(trimming) -> bool:
    if trimming is None or trimming == "crump":
        return True
    return isinstance(trimming, (int, float)) and not isinstance(trimming, bool) and 0 < trimming < 0.5


def crump_cutoff(ps: np.ndarray) -> float:
    """Crump, Hotz, Imbens & Mitnik (2009) optimal trimming bound ``a`` (0 when nothing needs trimming)."""
    g = 1.0 / (ps * (1.0 - ps))
    if g.max() <= 2 * g.mean():
        return 0.0
    ordered = np.sort(g)
    count = np.searchsorted(ordered, ordered, side="right")
    below = np.cumsum(ordered)[count - 1]
    gamma = ordered[ordered * count <= 2 * below].max()
    return float(0.5 - np.sqrt(0.25 - 1.0 / gamma))


@dataclass
class Overlap:
    """Scores after clipping, the units kept after trimming, and what was done (for the summary)."""

    ps: np.ndarray
    keep: np.ndarray
    unclipped: np.ndarray
    details: dict[str, Any]


def apply_overlap(ps: np.ndarray, t: np.ndarray, clip, trimming) -> Overlap:
    """``clip`` and ``trimming`` as checked by :class:`OverlapConfig`."""
    cutoff = crump_cutoff(ps) if trimming == "crump" else float(trimming or 0.0)
    keep = (ps >= cutoff) & (ps <= 1 - cutoff) if cutoff > 0 else np.ones(ps.shape[0], dtype=bool)
    treated = t == 1
    if not (keep & treated).any() or not (keep & ~treated).any():
        raise EstimationError(f"trimming at {cutoff:.3g} dropped every treated or every control unit")
    if clip is None:
        low, high = 0.0, 1.0
        clipped = ps
    else:
        low, high = (float(v) for v in clip)
        clipped = np.clip(ps, low, high)
    unclipped = (ps > low) & (ps < high)
    if not np.all((clipped[keep] > 0) & (clipped[keep] < 1)):
        raise EstimationError("some propensity scores are exactly 0 or 1; set estimator.clip or .trimming")
    details = {
        "clip": None if clip is None else [low, high],
        "units_clipped": 0 if clip is None else int((~unclipped & keep).sum()),
        "trimming": trimming,
        "trimming_bound": cutoff if cutoff > 0 else None,
        "units_trimmed": {"treated": int((~keep & treated).sum()), "control": int((~keep & ~treated).sum())},
    }
    return Overlap(clipped, keep, unclipped, details)


def target_weights(e: np.ndarray, target_units: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(a1, a0, da1, da0)``: treated/control weights and their derivatives w.r.t. the logit, per unit."""
    ones, zeros = np.ones_like(e), np.zeros_like(e)
    odds = e / (1 - e)
    if target_units == "att":
        return ones, odds, zeros, odds
    if target_units == "atc":
        return 1 / odds, ones, -1 / odds, zeros
    return 1 / e, 1 / (1 - e), -1 / odds, odds


def logistic_correction(columns, ps_raw, C, sensitivity: np.ndarray, t) -> np.ndarray:
    """Per-unit term that adds the logistic fit's estimation error to an influence function.

    ``columns`` is the transposed design (``EstimationData.columns``); ``sensitivity`` is the mean
    derivative of the estimating equation w.r.t. the coefficients on it. Solved on the standardised
    covariates the built-in model is fitted on (its penalty lives there; the covariates' units then do
    not affect the conditioning).
    """
    from causal_cli.estimators.propensity import standardizer

    std = standardizer(columns)
    n, p = columns.shape[1], columns.shape[0]
    design = columns.T @ std.jacobian  # standardised covariates; a constant one is all zeros
    info = (design * (ps_raw * (1 - ps_raw))[:, None]).T @ design
    penalty = std.penalty(C)
    penalty[std.constant] = 1.0  # its column is zero: any positive value leaves the term unchanged
    info[np.diag_indices(p)] += penalty
    direction = np.linalg.solve(info / n, std.jacobian.T @ sensitivity)
    return (design @ direction) * (t - ps_raw)


@dataclass
class OverlapConfig(PropensityConfig):
    """Options of an estimator that weights by the propensity score: ``clip`` and ``trimming``."""

    clip: list[float] | None = None
    trimming: Any = None

    def __post_init__(self):
        super().__post_init__()
        check(valid_clip(self.clip), "clip", self.clip, CLIP_ALLOWED)
        check(valid_trimming(self.trimming), "trimming", self.trimming, TRIMMING_ALLOWED)


@dataclass
class IPWConfig(OverlapConfig):
    name: str = "ipw"
    normalized: bool = True
    stabilized: bool = False


class IPWEstimator(PropensityScoreEstimator):
    config_class = IPWConfig
    name = "ipw"
    has_analytic_se = True
    accepts_weights = True
    cluster_robust_se = True

    def _estimate(self, data):
        ps = self.fit_propensity(data)  # propensity_: the score of each unit (before clipping)
        overlap = apply_overlap(ps, data.t, self.clip, self.trimming)
        t, y, keep = data.t, data.y, overlap.keep
        a1, a0, _, _ = target_weights(overlap.ps, self.target_units)
        w1, w0 = t * a1 * keep * data.weights, (1 - t) * a0 * keep * data.weights
        if self.normalized:
            effect = (w1 @ y) / w1.sum() - (w0 @ y) / w0.sum()
        else:
            effect = (w1 @ y - w0 @ y) / self._target_count(t, keep, data.w)
        share = t[keep].mean()
        scale = np.where(t == 1, share, 1 - share) if self.stabilized else 1.0
        self.balance_weights_ = (w1 + w0) * scale  # the IPW weights (0 for trimmed units)
        self.overlap_ = overlap
        self._groups = (("treated", (t == 1) & keep), ("control", (t == 0) & keep))
        return float(effect)

    def _target_count(self, t, keep, w=None) -> float:
        rows = {"att": t == 1, "atc": t == 0}.get(self.target_units, np.ones(t.shape[0], dtype=bool))
        if w is not None:
            return float(w[rows & keep].sum())
        return float((rows & keep).sum())

    def _std_error(self, data):
        overlap = self.overlap_
        t, y, keep, e = data.t, data.y, overlap.keep, overlap.ps
        a1, a0, da1, da0 = target_weights(e, self.target_units)
        # a clipped score does not move with the coefficients
        ow = data.weights  # observation weights (ones without data.weights)
        da1, da0 = da1 * overlap.unclipped * keep * ow, da0 * overlap.unclipped * keep * ow
        w1, w0 = t * a1 * keep * ow, (1 - t) * a0 * keep * ow
        n = data.n
        if self.normalized:
            mu1, mu0 = (w1 @ y) / w1.sum(), (w0 @ y) / w0.sum()
            W1, W0 = w1.sum() / n, w0.sum() / n
            r1, r0 = t * (y - mu1), (1 - t) * (y - mu0)
            influence = w1 * r1 / W1 - w0 * r0 / W0
            sensitivity = data.design.T @ (t * da1 * r1 / W1 - (1 - t) * da0 * r0 / W0) / n
        else:
            R = self._target_count(t, keep, data.w) / n
            rows = {"att": t, "atc": 1 - t}.get(self.target_units, np.ones(n)) * keep * ow
            influence = (w1 * y - w0 * y - self.effect_ * rows) / R
            sensitivity = data.design.T @ ((t * da1 - (1 - t) * da0) * y) / (n * R)
        self.se_includes_propensity_ = bool(self.warm_start_ is not None)
        if self.se_includes_propensity_:
            influence = influence + logistic_correction(
                data.columns, self.propensity_, self.propensity_C, sensitivity, t
            )
        return influence_se(influence, data)

    def caveats(self) -> list[str]:
        """Units trimmed (and the estimand that leaves), scores clipped, heavy-tailed weights."""
        from causal_cli.estimators.caveats import dropped_units_caveat, heavy_weight_caveats, weight_tail

        overlap = getattr(self, "overlap_", None)
        if overlap is None:
            return []
        details = overlap.details
        trimmed = details["units_trimmed"]
        bound = details.get("trimming_bound")
        target = self.target_units.upper()
        lines = dropped_units_caveat(
            trimmed["treated"],
            trimmed["control"],
            overlap.keep.shape[0],
            f"by trimming scores outside [{bound or 0:.3g}, {1 - (bound or 0):.3g}]",
            f"the effect on the remaining units (common support), not the {target}",
        )
        clipped = details.get("units_clipped") or 0
        if clipped > 0.01 * overlap.keep.shape[0]:
            low, high = details["clip"]
            lines.append(
                f"{clipped / overlap.keep.shape[0]:.1%} of the propensity scores were clipped to [{low:g}, {high:g}]: "
                f"their weights are capped, which biases the {target} toward the unweighted comparison"
            )
        tails = {label: weight_tail(self.balance_weights_, rows) for label, rows in self._groups}
        return lines + heavy_weight_caveats(tails)

    def summary(self):
        out: dict[str, Any] = {
            "weighting": "normalized (Hajek)" if self.normalized else "Horvitz-Thompson",
            "stabilized": bool(self.stabilized),
        }
        overlap = getattr(self, "overlap_", None)
        if overlap is not None:
            out.update(overlap.details)
            for label, rows in self._groups:
                w = self.balance_weights_[rows]
                out.setdefault("max_weight", {})[label] = float(w.max())
                out.setdefault("effective_sample_size", {})[label] = float(w.sum() ** 2 / (w**2).sum())
        else:
            out.update({"clip": self.clip, "trimming": self.trimming})
        if hasattr(self, "se_includes_propensity_"):
            how = (
                "including the propensity fit"
                if self.se_includes_propensity_
                else "propensity scores as known"
            )
            out["std_error"] = f"influence function (sandwich), {how}"
        return out
