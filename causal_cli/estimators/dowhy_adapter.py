"""DoWhy plug-in: causal-cli's estimators as DoWhy ``CausalEstimator`` subclasses.

DoWhy loads an external estimator from a dotted method name, so every class here works with
DoWhy's identification and refuters unchanged::

    estimate = model.estimate_effect(
        estimand,
        method_name="backdoor.causal_cli.estimators.dowhy_adapter.IPW",
        target_units="att",
        method_params={"clip": None, "trimming": "crump"},
    )
    model.refute_estimate(estimand, estimate, method_name="placebo_treatment_refuter")

``method_params`` are the estimator's options (as in ``conf/estimator/<name>.yaml``, without
``name``, ``target_units`` and ``ci``), plus DoWhy's own (``confidence_level``, ...). DoWhy's
refuters copy the estimator through ``get_new_estimator_object``; the copy is fresh except for
the propensity model's coefficients, which warm-start its fit. This module imports DoWhy; nothing
else in causal-cli imports it at start-up.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from dowhy.causal_estimator import CausalEstimate, CausalEstimator

from causal_cli import registry
from causal_cli.errors import EstimationError
from causal_cli.estimators.base import EstimationData

#: options set by the adapter itself, not passed through ``method_params``
MANAGED = ("target_units", "ci_level", "random_state")
#: DoWhy's base-class options, kept to rebuild the estimator for refuters
DOWHY_OPTIONS = (
    "test_significance",
    "evaluate_effect_strength",
    "confidence_intervals",
    "num_null_simulations",
    "num_simulations",
    "sample_size_fraction",
    "confidence_level",
    "need_conditional_estimates",
    "num_quantiles_to_discretize_cont_cols",
)


class CausalCliEstimator(CausalEstimator):
    """Runs the causal-cli estimator registered as ``registry_name`` on DoWhy's data frame."""

    registry_name: ClassVar[str] = ""

    def __init__(self, identified_estimand, random_state: int = 0, **kwargs: Any):
        dowhy_kwargs = {k: kwargs.pop(k) for k in DOWHY_OPTIONS if k in kwargs}
        # DoWhy adds the dotted class name of an external estimator to its parameters
        kwargs.pop("causal_cli_estimator", None)
        super().__init__(identified_estimand, **dowhy_kwargs)
        self.estimator_class = registry.load("estimator", self.registry_name)
        allowed = [p for p in self.estimator_class.param_names() if p not in MANAGED]
        unknown = sorted(set(kwargs) - set(allowed))
        if unknown:
            raise EstimationError(
                f"unknown method_params {', '.join(unknown)} for {self.registry_name}; allowed: {', '.join(allowed)}"
            )
        self.options = kwargs
        self.random_state = random_state
        self._dowhy_kwargs = dowhy_kwargs
        self._warm_start = None
        self.estimator_ = None

    def fit(self, data, effect_modifier_names=None, **_):
        """Read treatment, outcome and the adjustment set from DoWhy's frame into numpy arrays."""
        self.reset_encoders()
        self._set_effect_modifiers(data, effect_modifier_names)
        estimand = self._target_estimand
        if len(estimand.treatment_variable) != 1 or len(estimand.outcome_variable) != 1:
            raise EstimationError(f"{self.registry_name} needs exactly one treatment and one outcome")
        t = data[estimand.treatment_variable[0]].to_numpy(dtype=float)
        if not np.isin(t, (0.0, 1.0)).all():
            raise EstimationError(f"treatment '{estimand.treatment_variable[0]}' must be binary 0/1")
        self._adjustment_set = list(estimand.get_adjustment_set() or [])
        instruments = list(estimand.get_instrumental_variables() or [])
        mediators = list(estimand.get_frontdoor_variables() or [])
        self._data = EstimationData(
            t=t,
            y=data[estimand.outcome_variable[0]].to_numpy(dtype=float),
            X=self._block(data, self._adjustment_set, "observed_common_causes"),
            covariates=tuple(self._adjustment_set),
            instruments=self._block(data, instruments, "instruments") if instruments else None,
            instrument_names=tuple(instruments),
            mediators=self._block(data, mediators, "mediators") if mediators else None,
            mediator_names=tuple(mediators),
        )
        self.symbolic_estimator = self.construct_symbolic_estimator(estimand)
        return self

    def _block(self, data, names: list[str], encoder: str) -> np.ndarray:
        if not names:
            return np.empty((len(data), 0))
        return self._encode(data[names], encoder).to_numpy(dtype=float)

    def estimate_effect(self, data, treatment_value: Any = 1, control_value: Any = 0, target_units=None, **_):
        target = target_units or "ate"
        if not isinstance(target, str) or target not in ("ate", "att", "atc"):
            raise EstimationError(f"target_units={target!r}; {self.registry_name} supports ate, att, atc")
        if treatment_value != 1 or control_value != 0:
            raise EstimationError("causal-cli estimators compare treatment_value=1 with control_value=0")
        self._target_units, self._treatment_value, self._control_value = (
            target,
            treatment_value,
            control_value,
        )
        self.estimator_ = self._build(target, self.confidence_level)
        self.estimator_.warm_start_ = self._warm_start
        self.estimator_.fit(self._data)
        estimate = CausalEstimate(
            data=data,
            treatment_name=self._target_estimand.treatment_variable,
            outcome_name=self._target_estimand.outcome_variable,
            estimate=self.estimator_.effect_,
            control_value=control_value,
            treatment_value=treatment_value,
            target_estimand=self._target_estimand,
            realized_estimand_expr=self.symbolic_estimator,
            propensity_scores=getattr(self.estimator_, "propensity_", None),
            details=self.estimator_.summary(),
        )
        estimate.add_estimator(self)
        return estimate

    def _build(self, target: str, level: float):
        return self.estimator_class(
            target_units=target, ci_level=level, random_state=self.random_state, **self.options
        )

    def _estimate_std_error(self, method=None, **_):
        return self.estimator_.std_error_

    def _estimate_confidence_intervals(self, confidence_level=None, method=None, **_):
        fitted = self.estimator_
        if confidence_level is not None and confidence_level != fitted.ci_level:
            fitted = self._build(self._target_units, confidence_level)
            fitted.warm_start_ = self._warm_start
            fitted.fit(self._data)
        return fitted.ci_low_, fitted.ci_high_

    def get_new_estimator_object(
        self,
        identified_estimand,
        test_significance=False,
        evaluate_effect_strength=False,
        confidence_intervals=None,
    ):
        """A fresh copy for refuters and bootstraps (no data copied), warm-started from this fit."""
        kwargs = {
            **self._dowhy_kwargs,
            "test_significance": test_significance,
            "evaluate_effect_strength": evaluate_effect_strength,
            "confidence_intervals": self._confidence_intervals
            if confidence_intervals is None
            else confidence_intervals,
        }
        new = type(self)(identified_estimand, random_state=self.random_state, **kwargs, **self.options)
        new._warm_start = getattr(self.estimator_, "warm_start_", None)
        return new

    def construct_symbolic_estimator(self, estimand):
        outcome = ",".join(estimand.outcome_variable)
        terms = "+".join(estimand.treatment_variable + self._adjustment_set)
        return f"causal-cli {self.registry_name}: {outcome}~{terms}"


class Regression(CausalCliEstimator):
    registry_name = "regression"


class PSM(CausalCliEstimator):
    registry_name = "psm"


class PSStratification(CausalCliEstimator):
    registry_name = "ps_stratification"


class IPW(CausalCliEstimator):
    registry_name = "ipw"


class AIPW(CausalCliEstimator):
    registry_name = "aipw"


class DML(CausalCliEstimator):
    registry_name = "dml"


class DistanceMatching(CausalCliEstimator):
    registry_name = "distance_matching"


#: registry name -> adapter class, for callers that start from a causal-cli estimator name
ADAPTERS = {cls.registry_name: cls for cls in CausalCliEstimator.__subclasses__()}
