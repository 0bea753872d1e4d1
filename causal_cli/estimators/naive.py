"""Difference in means: the biased baseline every adjusted estimate is compared against."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from causal_cli.estimators.base import BaseEstimator
from causal_cli.schema import EstimatorConfig


@dataclass
class NaiveConfig(EstimatorConfig):
    name: str = "naive"


def difference_in_means(t: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Mean outcome of treated minus control, with the Welch (unequal variance) standard error."""
    treated, control = y[t == 1], y[t == 0]
    diff = treated.mean() - control.mean()
    se = np.sqrt(treated.var(ddof=1) / treated.size + control.var(ddof=1) / control.size)
    return float(diff), float(se)


class NaiveEstimator(BaseEstimator):
    config_class = NaiveConfig
    name = "naive"
    identification = "none"
    has_analytic_se = True

    def _estimate(self, data):
        self.effect_, self._se = difference_in_means(data.t, data.y)
        return self.effect_

    def _std_error(self, data):
        return self._se
