"""Front-door adjustment, two-stage: (treatment -> mediator) x (mediator -> outcome given treatment).

Stage 1 regresses each mediator on [1, t, controls]: nothing confounds t -> mediator under the
front-door criterion. Stage 2 regresses the outcome on [1, mediators, t, mediators x t, controls]:
conditioning on t blocks the hidden confounder's path from mediator to outcome. The mediator's slope
may differ by treatment group (``b_j + g_j t``) because the hidden confounder can change how much the
mediator is worth, and treated and untreated units differ in it. The front-door formula
``sum_m P(m | do(t)) sum_t' E[y | m, t'] P(t')`` averages that slope over the treatment distribution,
so the effect is ``sum_j a_j (b_j + g_j P(t = 1))``: exact when the outcome is linear in the mediators
given t (Pearl 2009, sec. 3.3.2). ``interaction: false`` drops the ``mediators x t`` terms: ``sum_j a_j
b_j``, DoWhy's ``two_stage_regression``, biased when the slope does vary. The standard error is the
delta method on the stacked OLS influence functions of both stages and of the treated share (same
rows, so their covariances are included).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from causal_cli.errors import EstimationError
from causal_cli.estimators.base import BaseEstimator
from causal_cli.estimators.iv import only_ate
from causal_cli.estimators.linear import influence, least_squares
from causal_cli.schema import EstimatorConfig


@dataclass
class FrontdoorConfig(EstimatorConfig):
    name: str = "frontdoor"
    controls: bool = True
    interaction: bool = True

    def __post_init__(self):
        super().__post_init__()
        only_ate(self.target_units)


class FrontdoorEstimator(BaseEstimator):
    config_class = FrontdoorConfig
    name = "frontdoor"
    identification = "frontdoor"
    has_analytic_se = True

    def _estimate(self, data):
        if data.mediators is None or data.mediators.shape[1] == 0:
            raise EstimationError(
                "estimator 'frontdoor' needs a mediator; declare it in graph.mediators (DoWhy must identify it)"
            )
        controls = data.X if self.controls else np.empty((data.n, 0))
        mediators = data.mediators
        k = mediators.shape[1]
        first = np.column_stack([np.ones(data.n), data.t, controls])
        first_coef, first_residuals = least_squares(first, mediators)
        t = data.t
        interactions = mediators * t[:, None] if self.interaction else np.empty((data.n, 0))
        second = np.column_stack([np.ones(data.n), mediators, t, interactions, controls])
        second_coef, second_residuals = least_squares(second, data.y)
        self.treated_share_ = float(t.mean())
        slope = second_coef[1 : 1 + k]
        if self.interaction:
            self.mediator_treatment_interaction_ = second_coef[2 + k : 2 + 2 * k]
            slope = slope + self.treated_share_ * self.mediator_treatment_interaction_
        self.treatment_to_mediator_ = first_coef[1]
        self.mediator_to_outcome_ = slope  # averaged over the treatment distribution
        self.mediator_names_ = data.mediator_names or tuple(f"mediator_{j}" for j in range(k))
        self._state = (first, first_residuals, second, second_residuals)
        return float(self.treatment_to_mediator_ @ self.mediator_to_outcome_)

    def _std_error(self, data):
        first, first_residuals, second, second_residuals = self._state
        a, b = self.treatment_to_mediator_, self.mediator_to_outcome_
        k = a.size
        infl_a = np.column_stack([influence(first, first_residuals[:, j])[:, 1] for j in range(k)])
        infl_second = influence(second, second_residuals)
        psi = infl_a @ b + infl_second[:, 1 : 1 + k] @ a
        if self.interaction:
            g, share = self.mediator_treatment_interaction_, self.treated_share_
            psi += share * (infl_second[:, 2 + k : 2 + 2 * k] @ a) + (a @ g) * (data.t - share)
        return float(np.sqrt(np.sum(psi**2)) / data.n)

    def summary(self):
        names = getattr(self, "mediator_names_", ())
        stages = {
            "treatment_to_mediator": "treatment_to_mediator_",
            "mediator_to_outcome": "mediator_to_outcome_",
        }
        out = {
            key: dict(zip(names, map(float, getattr(self, attr)))) for key, attr in stages.items() if names
        }
        if self.interaction and names and hasattr(self, "mediator_treatment_interaction_"):
            out["mediator_x_treatment"] = dict(zip(names, map(float, self.mediator_treatment_interaction_)))
        return {**out, "controls": bool(self.controls), "interaction": bool(self.interaction)}
