"""Difference in means: the biased baseline every adjusted estimate is compared against."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from causal_cli.estimators.base import BaseEstimator, influence_se
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


def naive_effect(data) -> tuple[float, float]:
    """The difference in means of ``data``: weighted by ``data.weights`` and with a cluster-robust SE under
    ``data.cluster``; the plain Welch version otherwise."""
    if data.w is None and data.cluster is None:
        return difference_in_means(data.t, data.y)
    fit = NaiveEstimator()
    return fit._estimate(data), fit._se


class NaiveEstimator(BaseEstimator):
    config_class = NaiveConfig
    name = "naive"
    identification = "none"
    has_analytic_se = True

    accepts_weights = True
    cluster_robust_se = True

    def _estimate(self, data):
        if data.w is None and data.cluster is None:
            self.effect_, self._se = difference_in_means(data.t, data.y)
            return self.effect_
        # weighted means per group; the SE from their influence (CR1 by cluster with data.cluster)
        t, y, w = data.t, data.y, data.weights
        w1, w0 = w * t, w * (1 - t)
        m1, m0 = (w1 @ y) / w1.sum(), (w0 @ y) / w0.sum()
        n = data.n
        influence = n * (w1 * (y - m1) / w1.sum() - w0 * (y - m0) / w0.sum())
        self.effect_, self._se = float(m1 - m0), influence_se(influence, data)
        return self.effect_

    def _std_error(self, data):
        return self._se
