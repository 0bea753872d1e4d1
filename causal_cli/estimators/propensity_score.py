"""The propensity-score estimators' shared parameters: ``propensity_model`` and ``propensity_C``.

``psm``, ``ps_stratification``, ``ipw``, ``aipw`` and ``dml`` extend :class:`PropensityConfig` and
:class:`PropensityScoreEstimator`, so these two options are declared, defaulted and checked once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from causal_cli.estimators.base import BaseEstimator
from causal_cli.schema import EstimatorConfig, check


@dataclass
class PropensityConfig(EstimatorConfig):
    """Options of every estimator built on a propensity score."""

    #: null = the built-in penalised logistic regression, or ``{_target_: sklearn...Classifier, ...}``
    propensity_model: Any = None
    #: inverse L2 penalty of the built-in model on standardised slopes (``.inf`` = none)
    propensity_C: float = 1.0

    def __post_init__(self):
        super().__post_init__()
        check(self.propensity_C > 0, "propensity_C", self.propensity_C, "a number > 0")


class PropensityScoreEstimator(BaseEstimator):
    """An estimator whose parameters include the propensity model (:class:`PropensityConfig`)."""

    config_class = PropensityConfig

    def fit_propensity(self, data) -> np.ndarray:
        """Scores of ``data`` (kept as ``propensity_``), warm-started from the last fit's coefficients."""
        from causal_cli.estimators.propensity import propensity_scores

        ps, coef = propensity_scores(
            data, self.propensity_model, self.propensity_C, getattr(self, "warm_start_", None)
        )
        self.warm_start_ = coef
        self.propensity_ = ps
        return ps
