"""Double / debiased machine learning, partially linear model (Robinson's residual-on-residual).

Model: ``y = theta t + g(X) + u``, ``t = m(X) + v``. With cross-fitted ``l(X) = E[y | X]`` and
``m(X) = E[t | X]``, ``theta = sum(t_res * y_res) / sum(t_res^2)`` (Chernozhukov et al. 2018, the
"partialling-out" score, DML2). The analytic standard error is theirs:
``sqrt(mean(psi^2) / mean(t_res^2)^2 / n)`` with ``psi = (y_res - theta t_res) t_res``.

What it estimates: with heterogeneous effects, PLR converges to a variance-weighted average effect,
``E[e(X)(1 - e(X)) tau(X)] / E[e(X)(1 - e(X))]`` (overlap-weighted), which is the ATE only when
the effect is homogeneous. Hence only ``target_units: ate`` is accepted; use ``aipw`` for ATT/ATC
or a heterogeneous ATE.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from causal_cli.errors import EstimationError
from causal_cli.estimators.base import BaseEstimator
from causal_cli.estimators.outcome import cross_fit_outcome, cross_fitted_scores, model_name
from causal_cli.schema import EstimatorConfig, check

ESTIMAND = (
    "variance-weighted average effect (weights e(1-e)); equals the ATE only if the effect is homogeneous"
)


@dataclass
class DMLConfig(EstimatorConfig):
    name: str = "dml"
    folds: int = 5
    outcome_model: Any = None
    propensity_model: Any = None
    propensity_C: float = 1.0

    def __post_init__(self):
        super().__post_init__()
        target = str(getattr(self.target_units, "value", self.target_units))
        check(
            target == "ate",
            "target_units",
            target,
            "ate (the partially linear model; use estimator=aipw for att/atc)",
        )
        check(self.folds >= 2, "folds", self.folds, "an integer >= 2")
        check(self.propensity_C > 0, "propensity_C", self.propensity_C, "a number > 0")


class DMLEstimator(BaseEstimator):
    config_class = DMLConfig
    name = "dml"
    has_analytic_se = True

    def __init__(
        self,
        target_units="ate",
        folds=5,
        outcome_model=None,
        propensity_model=None,
        propensity_C=1.0,
        ci_level=0.95,
        ci_method="analytic",
        num_bootstrap=200,
        random_state=0,
    ):
        super().__init__(target_units, ci_level, ci_method, num_bootstrap, random_state)
        self.folds = folds
        self.outcome_model = outcome_model
        self.propensity_model = propensity_model
        self.propensity_C = propensity_C

    def _estimate(self, data):
        if self.target_units != "ate":
            raise EstimationError(
                f"estimator.target_units={self.target_units}: dml (partially linear) estimates a variance-weighted "
                "effect; use estimator=aipw for att/atc"
            )
        folds, m = cross_fitted_scores(self, data)  # m: the out-of-fold E[t | X] of each unit
        l_hat, _ = cross_fit_outcome(data, folds, self.outcome_model, self.random_state, by_arm=False)
        t_res, y_res = data.t - m, data.y - l_hat
        denominator = t_res @ t_res
        if denominator <= 0:
            raise EstimationError(
                "the treatment is fully predicted by the covariates; dml cannot separate its effect"
            )
        effect = (t_res @ y_res) / denominator
        self.balance_weights_ = np.abs(t_res)  # the weight the partially linear fit gives each unit
        self._residuals = (t_res, y_res)
        return float(effect)

    def _std_error(self, data):
        t_res, y_res = self._residuals
        psi = (y_res - self.effect_ * t_res) * t_res
        return float(np.sqrt(np.mean(psi**2) / np.mean(t_res**2) ** 2 / data.n))

    def summary(self):
        return {
            "estimand": ESTIMAND,
            "folds": int(self.folds),
            "outcome_model": model_name(self.outcome_model, "linear regression of y on X"),
            "propensity_model": model_name(self.propensity_model, f"logistic (C={self.propensity_C:g})"),
        }
