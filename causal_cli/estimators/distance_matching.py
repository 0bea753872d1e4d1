"""Covariate nearest-neighbour matching with replacement (Mahalanobis by default), k neighbours.

Distances: ``mahalanobis`` uses the average of the two groups' covariance matrices (as
``causalinference``'s ``est_via_matching(weights='maha')``), ``inverse_variance`` scales each
covariate by its standard deviation (Abadie & Imbens' default), ``euclidean`` uses the raw
covariates (DoWhy's ``distance_matching``). The covariates are whitened once and searched with a
KD-tree, O(n log n) in a few dimensions, but nearest-neighbour search in covariate space is
inherently super-linear and degrades towards O(n^2) as dimensions grow, so ``max_rows`` refuses
larger data with a one-line error (psm matches on a 1-D score and has no such limit).
Standard errors: Abadie & Imbens (2006), shared with psm.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from causal_cli.errors import EstimationError
from causal_cli.estimators.base import BaseEstimator
from causal_cli.estimators.matching import abadie_imbens_se, match_balance_weights, matched_effect
from causal_cli.schema import EstimatorConfig, check

DISTANCES = ("mahalanobis", "inverse_variance", "euclidean")


@dataclass
class DistanceMatchingConfig(EstimatorConfig):
    name: str = "distance_matching"
    k: int = 1
    distance: str = "mahalanobis"
    max_rows: int = 200_000

    def __post_init__(self):
        super().__post_init__()
        check(self.k >= 1, "k", self.k, "an integer >= 1")
        check(self.distance in DISTANCES, "distance", self.distance, ", ".join(DISTANCES))
        check(self.max_rows >= 2, "max_rows", self.max_rows, "an integer >= 2")


def whiten(X: np.ndarray, treated: np.ndarray, distance: str) -> np.ndarray:
    """Coordinates in which the chosen distance is the Euclidean one."""
    if distance == "euclidean":
        return X
    if distance == "inverse_variance":
        sd = X.std(axis=0)
        return X[:, sd > 0] / sd[sd > 0]
    cov = (np.cov(X[treated], rowvar=False, ddof=0) + np.cov(X[~treated], rowvar=False, ddof=0)) / 2
    values, vectors = np.linalg.eigh(np.atleast_2d(cov))
    # directions without variance (constant or collinear covariates) do not separate units
    informative = values > values.max() * 1e-12
    return X @ (vectors[:, informative] / np.sqrt(values[informative]))


def nearest_same_group_variance(Z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Abadie–Imbens conditional variance: half the squared outcome gap to the nearest same-group unit."""
    from sklearn.neighbors import KDTree

    if Z.shape[0] < 2:
        return np.zeros(Z.shape[0])
    _, idx = KDTree(Z).query(Z, k=2)
    own = np.arange(Z.shape[0])
    neighbour = np.where(idx[:, 0] == own, idx[:, 1], idx[:, 0])
    return 0.5 * (y - y[neighbour]) ** 2


class DistanceMatchingEstimator(BaseEstimator):
    config_class = DistanceMatchingConfig
    name = "distance_matching"
    has_analytic_se = True
    balance_adjustment = "matching"

    def __init__(
        self,
        target_units="ate",
        k=1,
        distance="mahalanobis",
        max_rows=200_000,
        ci_level=0.95,
        ci_method="analytic",
        num_bootstrap=200,
        random_state=0,
    ):
        super().__init__(target_units, ci_level, ci_method, num_bootstrap, random_state)
        self.k = k
        self.distance = distance
        self.max_rows = max_rows

    def _estimate(self, data):
        from sklearn.neighbors import KDTree

        if data.n > int(self.max_rows):
            raise EstimationError(
                f"distance_matching on {data.n} rows exceeds estimator.max_rows={self.max_rows} (covariate "
                "nearest-neighbour search is super-linear); raise estimator.max_rows or use estimator=psm"
            )
        if self.distance not in DISTANCES:
            raise EstimationError(f"estimator.distance='{self.distance}'; allowed: {', '.join(DISTANCES)}")
        if data.X.shape[1] == 0:
            raise EstimationError("distance_matching needs at least one covariate in the adjustment set")
        t = data.t == 1
        y = data.y
        Z = whiten(data.X, t, self.distance)
        k = int(self.k)
        treated, control = np.flatnonzero(t), np.flatnonzero(~t)
        y_missing = np.zeros(data.n)
        used_by_treated = np.zeros(data.n)
        used_by_control = np.zeros(data.n)
        directions = {
            "att": ((treated, control, used_by_treated),),
            "atc": ((control, treated, used_by_control),),
        }.get(self.target_units, ((treated, control, used_by_treated), (control, treated, used_by_control)))
        for queries, pool, used in directions:
            m = min(k, pool.size)
            _, idx = KDTree(Z[pool]).query(Z[queries], k=m)
            matched = pool[idx]
            y_missing[queries] = y[matched].mean(axis=1)
            np.add.at(used, matched.ravel(), 1.0 / m)
        keep = np.zeros(data.n, dtype=bool)
        for queries, _, _ in directions:
            keep[queries] = True
        unit_effect = np.where(t, y - y_missing, y_missing - y)
        self._state = (t, keep, unit_effect, used_by_treated, used_by_control, k, Z)
        # diagnostics protocol: target units count once, each match as often as it is used
        self.balance_weights_ = match_balance_weights(
            self.target_units, t, keep, used_by_treated, used_by_control
        )
        return matched_effect(unit_effect, t, keep, self.target_units)

    def _std_error(self, data):
        t, keep, unit_effect, used_by_treated, used_by_control, k, Z = self._state
        sigma2 = np.empty(data.n)
        for group in (t, ~t):
            rows = np.flatnonzero(group)
            sigma2[rows] = nearest_same_group_variance(Z[rows], data.y[rows])
        return abadie_imbens_se(
            self.target_units, self.effect_, unit_effect, t, keep, used_by_treated, used_by_control, k, sigma2
        )

    def summary(self):
        return {"distance": self.distance, "k": int(self.k), "max_rows": int(self.max_rows)}
