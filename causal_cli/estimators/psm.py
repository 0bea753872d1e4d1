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
from causal_cli.estimators.matching import nearest_on_score, within_group_variance
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
        check(self.caliper is None or self.caliper > 0, "caliper", self.caliper, "a number > 0, or null for none")
        check(self.propensity_C > 0, "propensity_C", self.propensity_C, "a number > 0")


class PSMEstimator(BaseEstimator):
    config_class = PSMConfig
    name = "psm"
    has_analytic_se = True

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
            raise EstimationError(f"estimator.caliper={self.caliper}; it must be > 0 (or null for no caliper)")
        ps, coef = propensity_scores(
            data, self.propensity_model, self.propensity_C, getattr(self, "warm_start_", None)
        )
        self.warm_start_ = coef
        self.propensity_ = ps
        t = data.t == 1
        y = data.y
        treated, control = np.flatnonzero(t), np.flatnonzero(~t)
        k = int(self.k)
        # y_hat[i] = imputed missing potential outcome of unit i; used[i] = times unit i serves as a match
        y_missing = np.empty(data.n)
        keep = np.ones(data.n, dtype=bool)
        used_by_treated = np.zeros(data.n)
        used_by_control = np.zeros(data.n)
        logit = np.log(np.clip(ps, 1e-12, 1 - 1e-12) / np.clip(1 - ps, 1e-12, 1))
        caliper_width = None if self.caliper is None else float(self.caliper) * float(np.std(logit))
        for queries, pool, used in ((treated, control, used_by_treated), (control, treated, used_by_control)):
            idx, _ = nearest_on_score(ps[pool], ps[queries], k)
            matched = pool[idx]
            if caliper_width is not None:
                within = np.abs(logit[matched] - logit[queries][:, None]) <= caliper_width
                keep[queries] = within.any(axis=1)
                weights = within / np.maximum(within.sum(axis=1, keepdims=True), 1)
            else:
                weights = np.full(matched.shape, 1.0 / matched.shape[1])
            y_missing[queries] = (y[matched] * weights).sum(axis=1)
            np.add.at(used, matched.ravel(), (weights * keep[queries][:, None]).ravel())
        self.n_dropped_ = {"treated": int((~keep & t).sum()), "control": int((~keep & ~t).sum())}
        unit_effect = np.where(t, y - y_missing, y_missing - y)
        att_rows, atc_rows = keep & t, keep & ~t
        if self.target_units == "att" and not att_rows.any() or self.target_units == "atc" and not atc_rows.any():
            raise EstimationError("the caliper dropped every unit of the target group; widen estimator.caliper")
        att = unit_effect[att_rows].mean() if att_rows.any() else np.nan
        atc = unit_effect[atc_rows].mean() if atc_rows.any() else np.nan
        n_t, n_c = att_rows.sum(), atc_rows.sum()
        if self.target_units == "att":
            effect = att
        elif self.target_units == "atc":
            effect = atc
        else:
            effect = (np.nan_to_num(att) * n_t + np.nan_to_num(atc) * n_c) / (n_t + n_c)
        self._state = (t, keep, unit_effect, used_by_treated, used_by_control, k)
        return float(effect)

    def _std_error(self, data):
        t, keep, unit_effect, used_by_treated, used_by_control, k = self._state
        ps, y = self.propensity_, data.y
        sigma2 = np.empty(data.n)
        for group in (t, ~t):
            rows = np.flatnonzero(group)
            sigma2[rows] = within_group_variance(ps[rows], y[rows])
        effect = self.effect_
        if self.target_units == "ate":
            used = np.where(t, used_by_control, used_by_treated)  # K_M(i)/M, by the other group
            rows = keep
            terms = (unit_effect - effect) ** 2 + (used**2 + (2 * k - 1) / k * used) * sigma2
            return float(np.sqrt(terms[rows].sum()) / rows.sum())
        target = t if self.target_units == "att" else ~t
        used = used_by_treated if self.target_units == "att" else used_by_control
        rows_target = keep & target
        n_target = rows_target.sum()
        pool = ~target
        used_count = used * k
        var = ((unit_effect[rows_target] - effect) ** 2).sum()
        var += (used[pool] * (used_count[pool] - 1) / k * sigma2[pool]).sum()
        return float(np.sqrt(max(var, 0.0)) / n_target)

    def summary(self):
        return {"units_dropped_by_caliper": getattr(self, "n_dropped_", {})}
