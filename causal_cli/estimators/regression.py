"""Linear outcome regression: ``y ~ 1 + X + t`` (optionally ``+ t x (X - mean of the target group)``).

Without interactions the model assumes one constant effect (DoWhy's ``linear_regression``), so only
``target_units: ate`` is accepted; under heterogeneous effects its coefficient is a
variance-weighted average, like the partially linear ``dml``. With interactions the fit is equivalent to one regression
per treatment group; centring the interaction at the target group's covariate mean makes the
treatment coefficient the ATE, ATT or ATC (Imbens & Rubin 2015, ch. 12; ``causalinference``'s
``est_via_ols(adj=2)``). Standard errors are HC1 robust; with interactions they add the sampling
variance of the target group's covariate mean (delta method), so they cover the population effect.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from causal_cli.errors import EstimationError
from causal_cli.estimators.base import BaseEstimator
from causal_cli.estimators.linear import influence, robust_covariance
from causal_cli.estimators.outcome import ols
from causal_cli.schema import EstimatorConfig, check

CONSTANT_EFFECT = "without interactions the model has one constant effect; set interactions: true for att/atc"


@dataclass
class RegressionConfig(EstimatorConfig):
    name: str = "regression"
    interactions: bool = False

    def __post_init__(self):
        super().__post_init__()
        target = str(getattr(self.target_units, "value", self.target_units))
        check(target == "ate" or self.interactions, "target_units", target, f"ate ({CONSTANT_EFFECT})")


class RegressionEstimator(BaseEstimator):
    config_class = RegressionConfig
    name = "regression"
    has_analytic_se = True

    def __init__(
        self,
        target_units="ate",
        interactions=False,
        ci_level=0.95,
        ci_method="analytic",
        num_bootstrap=200,
        random_state=0,
    ):
        super().__init__(target_units, ci_level, ci_method, num_bootstrap, random_state)
        self.interactions = interactions

    def _target_rows(self, t: np.ndarray) -> np.ndarray:
        if self.target_units == "att":
            return t == 1
        if self.target_units == "atc":
            return t == 0
        return np.ones(t.shape[0], dtype=bool)

    def _estimate(self, data):
        if self.target_units != "ate" and not self.interactions:
            raise EstimationError(f"estimator.target_units={self.target_units}: {CONSTANT_EFFECT}")
        t, X = data.t, data.X
        p = X.shape[1]
        if self.interactions and p:
            self.center_ = X[self._target_rows(t)].mean(axis=0)
            Z = np.column_stack([data.design, t, t[:, None] * (X - self.center_)])
        else:
            Z = np.column_stack([data.design, t])
        beta = ols(Z, data.y)
        self._model = (Z, beta)
        return float(beta[p + 1])

    def _std_error(self, data):
        Z, beta = self._model
        p = data.X.shape[1]
        se = float(np.sqrt(robust_covariance(influence(Z, data.y - Z @ beta))[p + 1, p + 1]))
        if self.interactions and p:
            rows = self._target_rows(data.t)
            gamma = beta[p + 2 :]
            spread = data.X[rows] @ gamma
            se = float(np.sqrt(se**2 + spread.var(ddof=1) / rows.sum()))
        return se

    def summary(self):
        if self.interactions:
            model = "y ~ 1 + X + t + t x (X - mean of the target group's X)"
        else:
            model = "y ~ 1 + X + t (one constant effect)"
        return {"model": model, "interactions": bool(self.interactions), "std_error": "HC1 robust"}
