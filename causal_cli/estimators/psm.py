"""Propensity score matching with replacement (k nearest neighbours, optional caliper).

Point estimates follow DoWhy's ``propensity_score_matching``: ATT matches each treated unit to
control units, ATC each control to treated units, and ATE is their share-weighted average.
Standard errors are Abadie & Imbens (2006), which ignore the propensity model's own estimation
error; for the ATE that makes them conservative (Abadie & Imbens 2016).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from causal_cli.errors import EstimationError
from causal_cli.estimators.base import BaseEstimator
from causal_cli.estimators.matching import (
    abadie_imbens_se,
    combine_group_effects,
    match_balance_weights,
    match_in_score_order,
    within_group_variance_sorted,
)
from causal_cli.estimators.propensity import propensity_scores
from causal_cli.schema import EstimatorConfig, check


@dataclass
class PSMConfig(EstimatorConfig):
    name: str = "psm"
    k: int = 1
    caliper: float | None = None
    propensity_model: Any = None
    propensity_C: float = 1.0

    def __post_init__(self):
        super().__post_init__()
        check(self.k >= 1, "k", self.k, "an integer >= 1")
        check(
            self.caliper is None or self.caliper > 0,
            "caliper",
            self.caliper,
            "a number > 0, or null for none",
        )
        check(self.propensity_C > 0, "propensity_C", self.propensity_C, "a number > 0")


class PSMEstimator(BaseEstimator):
    config_class = PSMConfig
    name = "psm"
    has_analytic_se = True
    balance_adjustment = "matching"

    def __init__(
        self,
        target_units="ate",
        k=1,
        caliper=None,
        propensity_model=None,
        propensity_C=1.0,
        ci_level=0.95,
        ci_method="analytic",
        num_bootstrap=200,
        random_state=0,
    ):
        super().__init__(target_units, ci_level, ci_method, num_bootstrap, random_state)
        self.k = k
        self.caliper = caliper
        self.propensity_model = propensity_model
        self.propensity_C = propensity_C

    def _estimate(self, data):
        if int(self.k) < 1:
            raise EstimationError(f"estimator.k={self.k}; it must be at least 1")
        if self.caliper is not None and self.caliper <= 0:
            raise EstimationError(
                f"estimator.caliper={self.caliper}; it must be > 0 (or null for no caliper)"
            )
        ps, coef = propensity_scores(
            data, self.propensity_model, self.propensity_C, getattr(self, "warm_start_", None)
        )
        self.warm_start_ = coef
        self.propensity_ = ps
        k = int(self.k)
        # everything below is in propensity-score order (unit order[i] at position i): one sort,
        # and the matched units' outcomes are read sequentially
        order, t, groups = match_in_score_order(ps, data.t == 1, k)
        y = data.y[order]
        if self.caliper is not None:
            logit = np.log(np.clip(ps, 1e-12, 1 - 1e-12) / np.clip(1 - ps, 1e-12, 1))
            caliper_width = float(self.caliper) * float(np.std(logit))
            logit = logit[order]
        matches = []  # per group (treated, control): (queries, matched, weights, kept or None, effects)
        for (queries, matched), treated_queries in zip(groups, (True, False)):
            kept = None
            if self.caliper is not None:
                within = np.abs(logit[matched] - logit[queries][:, None]) <= caliper_width
                kept = within.any(axis=1)
                w = within / np.maximum(within.sum(axis=1, keepdims=True), 1)
                y_missing = (y[matched] * w).sum(axis=1)
            elif k == 1:
                w = None
                y_missing = y[matched[:, 0]]
            else:
                w = np.full(matched.shape, 1.0 / matched.shape[1])
                y_missing = (y[matched] * w).sum(axis=1)
            # each unit's matched effect: y1 - y0, with its missing potential outcome imputed
            effects = y[queries] - y_missing if treated_queries else y_missing - y[queries]
            matches.append((queries, matched, w, kept, effects))
        dropped = [0 if kept is None else int((~kept).sum()) for *_, kept, _ in matches]
        self.n_dropped_ = {"treated": dropped[0], "control": dropped[1]}
        kept_effects = [e if kept is None else e[kept] for *_, kept, e in matches]
        effect = combine_group_effects(*kept_effects, self.target_units)
        self._state = (order, t, y, matches, k)
        self._used = self._unit_arrays = None
        return float(effect)

    def _units(self) -> tuple[np.ndarray, np.ndarray]:
        """``(keep, unit_effect)`` for every unit, in score order (for the standard error and diagnostics)."""
        if self._unit_arrays is None:
            _, t, _, matches, _ = self._state
            keep = np.ones(t.shape[0], dtype=bool)
            unit_effect = np.empty(t.shape[0])
            for queries, _, _, kept, effects in matches:
                unit_effect[queries] = effects
                if kept is not None:
                    keep[queries] = kept
            self._unit_arrays = (keep, unit_effect)
        return self._unit_arrays

    def _times_used(self) -> tuple[np.ndarray, np.ndarray]:
        """``(used_by_treated, used_by_control)`` in score order: K_M(i)/M, how often unit i is a match.

        Only the standard error and the diagnostics need these, so refuters' point estimates skip them.
        """
        if self._used is None:
            _, t, _, matches, _ = self._state
            used = []
            for _queries, matched, w, kept, _ in matches:
                share = (1.0 / matched.shape[1] if w is None else w) * (
                    1.0 if kept is None else kept[:, None]
                )
                share = np.broadcast_to(share, matched.shape).ravel()
                used.append(np.bincount(matched.ravel(), weights=share, minlength=t.shape[0]))
            self._used = tuple(used)
        return self._used

    @property
    def balance_weights_(self) -> np.ndarray:
        """Diagnostics protocol: kept target units count once, each match as often as it is used."""
        if getattr(self, "_state", None) is None:
            raise AttributeError("balance_weights_")
        order, t = self._state[:2]
        out = np.empty(t.shape[0])
        out[order] = match_balance_weights(self.target_units, t, self._units()[0], *self._times_used())
        return out

    def _std_error(self, data):
        order, t, y, _, k = self._state
        keep, unit_effect = self._units()
        ps = self.propensity_[order]
        sigma2 = np.empty(data.n)
        for group in (t, ~t):
            rows = np.flatnonzero(group)
            sigma2[rows] = within_group_variance_sorted(ps[rows], y[rows])
        return abadie_imbens_se(
            self.target_units, self.effect_, unit_effect, t, keep, *self._times_used(), k, sigma2
        )

    def summary(self):
        return {"units_dropped_by_caliper": getattr(self, "n_dropped_", {})}
