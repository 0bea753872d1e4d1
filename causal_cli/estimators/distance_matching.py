"""Covariate nearest-neighbour matching with replacement (Mahalanobis by default), k neighbours.

Distances: ``mahalanobis`` uses the average of the two groups' covariance matrices (as
``causalinference``'s ``est_via_matching(weights='maha')``), ``inverse_variance`` scales each
covariate by its standard deviation (Abadie & Imbens' default), ``euclidean`` uses the raw
covariates (DoWhy's ``distance_matching``). The covariates are whitened once and searched with a
KD-tree, O(n log n) in a few dimensions, but nearest-neighbour search in covariate space is
inherently super-linear and degrades towards O(n^2) as dimensions grow, so ``max_rows`` refuses
larger data with a one-line error (psm matches on a 1-D score and has no such limit).
Units tied with the k-th nearest distance (up to rounding) share the match weight. ``bias_adjust``
(on by default) corrects each matched difference with within-arm regressions on the covariates
fitted on the matched units (Abadie & Imbens 2011; Stata's ``teffects nnmatch, biasadj``): without it
the estimate carries a matching bias that grows with the number of covariates.
Standard errors: Abadie & Imbens (2006) with the bias-corrected unit effects, shared with psm, each
conditional variance averaged over ~sqrt(m) nearest same-arm units (:func:`smoothed_variance`). The estimate
is exactly linear in the outcomes (:meth:`DistanceMatchingEstimator.outcome_weights`), so on a linear model its
SD given covariates and treatment is known exactly; with 20 covariates the reported SE is that SD to 0.1% on
average (benchmarks/matching_variance_diagnosis.py: ratio 0.999, SD 0.039 over the grid's 200 data sets; the
regression's own weights are counted by :func:`~causal_cli.estimators.matching.regression_use`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from causal_cli.errors import EstimationError
from causal_cli.estimators.base import BaseEstimator
from causal_cli.estimators.matching import (
    abadie_imbens_se_shared,
    match_balance_weights,
    matched_effect,
    matching_caveats,
    regression_use,
    smoothing_neighbours,
    weighted_slopes,
)
from causal_cli.schema import EstimatorConfig, check

DISTANCES = ("mahalanobis", "inverse_variance", "euclidean")


@dataclass
class DistanceMatchingConfig(EstimatorConfig):
    name: str = "distance_matching"
    k: int = 1
    distance: str = "mahalanobis"
    max_rows: int = 200_000
    bias_adjust: bool = True

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
    cov = np.atleast_2d(
        (np.cov(X[treated], rowvar=False, ddof=0) + np.cov(X[~treated], rowvar=False, ddof=0)) / 2
    )
    # The Mahalanobis distance is unit-free in exact arithmetic: with D = diag(sd),
    # (Dx)' (D S D)^-1 (Dx) = x' S^-1 x. Make it so numerically by standardising the columns first, so
    # that the eigenvalue cut-off below compares correlations, not the covariates' units (before, a
    # covariate in units 1e7 larger pushed a second one's direction below the cut-off and dropped it).
    sd = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    keep = sd > 0  # constant within both groups: does not separate units
    X, sd = X[:, keep], sd[keep]
    corr = cov[np.ix_(keep, keep)] / np.outer(sd, sd)
    values, vectors = np.linalg.eigh(corr)
    # directions without variance (collinear covariates) do not separate units
    informative = values > values.max() * 1e-12
    return (X / sd) @ (vectors[:, informative] / np.sqrt(values[informative]))


def unit_free_columns(X: np.ndarray) -> np.ndarray:
    """The covariates divided by their standard deviations, for the bias adjustment's regressions.

    The adjustment (and each unit's weight through it) is invariant to rescaling a covariate in exact
    arithmetic; the least-squares solvers' relative cut-offs on singular values are not, so a covariate
    in units 1e7 larger would otherwise push another one's direction below the cut-off.
    """
    sd = X.std(axis=0)
    return X / np.where(sd > 0, sd, 1.0)


#: distances within this relative gap of the k-th nearest count as tied with it (rounding in the KD-tree)
TIE_TOLERANCE = 1e-10


def tied_neighbours(Z_pool: np.ndarray, Z_queries: np.ndarray, k: int, exclude_self: bool = False):
    """Each query's k nearest pool rows and every row tied with the k-th, as ``(query, pool_row, weight)``.

    Weights are ``1 / (number of matches)`` per query. Only queries with a tie at the k-th distance pay
    for a radius search. With ``exclude_self`` the pool is the queries themselves and a query never
    matches its own row.
    """
    from sklearn.neighbors import KDTree

    tree = KDTree(Z_pool)
    skip = int(exclude_self)
    m = min(k + skip, Z_pool.shape[0])
    probe = min(m + 1, Z_pool.shape[0])
    dist, idx = tree.query(Z_queries, k=probe)
    n_q = Z_queries.shape[0]
    if exclude_self:
        # drop the query's own row (it may not come first among exact duplicates)
        own = idx == np.arange(n_q)[:, None]
        own[~own.any(axis=1), -1] = True
        keep = ~own
        dist = dist[keep].reshape(n_q, probe - 1)
        idx = idx[keep].reshape(n_q, probe - 1)
        m -= 1
    kth = dist[:, m - 1]
    limit = kth * (1 + TIE_TOLERANCE) + 1e-300
    tied = (dist[:, m] <= limit) if dist.shape[1] > m else np.zeros(n_q, dtype=bool)
    queries = [np.repeat(np.flatnonzero(~tied), m)]
    rows = [idx[~tied, :m].ravel()]
    if tied.any():
        at = np.flatnonzero(tied)
        found = tree.query_radius(Z_queries[at], r=limit[at])
        if exclude_self:
            found = [f[f != q] for f, q in zip(found, at)]
        queries.append(np.repeat(at, [f.size for f in found]))
        rows.append(np.concatenate(found))
    queries, rows = np.concatenate(queries), np.concatenate(rows).astype(np.intp)
    count = np.bincount(queries, minlength=n_q)
    return queries, rows, 1.0 / count[queries]


def nearest_same_group_variance(
    Z: np.ndarray, y: np.ndarray, X: np.ndarray | None = None, slopes: np.ndarray | None = None
) -> np.ndarray:
    """Abadie–Imbens conditional variance: ``J / (J + 1) * (y - mean of its J nearest same-group units)^2``.

    J = 1 (half the squared gap to the nearest unit) unless several are tied at the nearest distance.
    With ``slopes`` (the bias adjustment) the neighbours' outcomes are first moved to the unit's
    covariates ``X`` along that linear fit, so the covariate gap to a neighbour (large with many
    covariates) is not counted as outcome noise.
    """
    n = Z.shape[0]
    if n < 2:
        return np.zeros(n)
    queries, rows, weight = tied_neighbours(Z, Z, 1, exclude_self=True)
    j = np.bincount(queries, minlength=n).astype(float)
    gap = y[queries] - y[rows]
    if slopes is not None:
        gap = gap - (X[queries] - X[rows]) @ slopes
    neighbour_gap = np.bincount(queries, weights=weight * gap, minlength=n)
    return j / (j + 1) * neighbour_gap**2


def smoothed_variance(Z: np.ndarray, sigma2: np.ndarray) -> np.ndarray:
    """Each unit's conditional variance averaged over itself and its ~sqrt(m) nearest same-group units:
    the one-degree-of-freedom estimates are noisy, and the SE weighs them by the square of how often a
    unit is used (psm's :func:`~causal_cli.estimators.matching.smoothed_variance_sorted` on a score)."""
    n = Z.shape[0]
    if n < 2:
        return sigma2
    # the unit itself (distance 0) and its nearest others, every unit tied with the farthest included
    queries, rows, weight = tied_neighbours(Z, Z, min(smoothing_neighbours(n) + 1, n))
    return np.bincount(queries, weights=weight * sigma2[rows], minlength=n)


class DistanceMatchingEstimator(BaseEstimator):
    config_class = DistanceMatchingConfig
    name = "distance_matching"
    has_analytic_se = True
    balance_adjustment = "matching"

    def _estimate(self, data):
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
        X = unit_free_columns(data.X)
        k = int(self.k)
        treated, control = np.flatnonzero(t), np.flatnonzero(~t)
        used = {"treated": np.zeros(data.n), "control": np.zeros(data.n)}
        squared = {"treated": np.zeros(data.n), "control": np.zeros(data.n)}
        unit_effect = np.zeros(data.n)
        # how often each unit is used, plus its weight through the bias adjustment's regression
        adjusted = {"treated": np.zeros(data.n), "control": np.zeros(data.n)}
        directions = {
            "att": (("treated", treated, control),),
            "atc": (("control", control, treated),),
        }.get(self.target_units, (("treated", treated, control), ("control", control, treated)))
        for group, queries, pool in directions:
            at, rows, weight = tied_neighbours(Z[pool], Z[queries], k)
            matched = pool[rows]
            n_q = queries.size
            y_missing = np.bincount(at, weights=weight * y[matched], minlength=n_q)
            used[group] += np.bincount(matched, weights=weight, minlength=data.n)
            squared[group] += np.bincount(matched, weights=weight**2, minlength=data.n)
            effects = y[queries] - y_missing if group == "treated" else y_missing - y[queries]
            if self.bias_adjust:
                # Abadie & Imbens (2011): move each match to the query's covariates along the pool arm's
                # linear regression, fitted on the matched pool units weighted by their use
                slopes = weighted_slopes(X[pool], y[pool], used[group][pool])
                x_missing = np.column_stack(
                    [
                        np.bincount(at, weights=weight * X[matched, j], minlength=n_q)
                        for j in range(X.shape[1])
                    ]
                )
                gap = (X[queries] - x_missing) @ slopes
                effects = effects - gap if group == "treated" else effects + gap
                extra = regression_use(X[pool], used[group][pool], (X[queries] - x_missing).sum(axis=0))
                adjusted[group][pool] += extra
            unit_effect[queries] = effects
        keep = np.zeros(data.n, dtype=bool)
        for _, queries, _ in directions:
            keep[queries] = True
        used_pair = (used["treated"], used["control"])
        for group in adjusted:
            adjusted[group] += used[group]
        self._state = (
            t,
            keep,
            unit_effect,
            used_pair,
            (squared["treated"], squared["control"]),
            Z,
            (adjusted["treated"], adjusted["control"]),
        )
        # diagnostics protocol: target units count once, each match as often as it is used
        self.balance_weights_ = match_balance_weights(self.target_units, t, keep, *used_pair)
        return matched_effect(unit_effect, t, keep, self.target_units)

    def _std_error(self, data):
        t, keep, unit_effect, _, squared, Z, used = self._state
        sigma2 = np.empty(data.n)
        for group in (t, ~t):
            rows = np.flatnonzero(group)
            X, slopes = unit_free_columns(data.X)[rows], None
            if self.bias_adjust:
                slopes = weighted_slopes(X, data.y[rows], np.ones(rows.size))
            sigma2[rows] = smoothed_variance(
                Z[rows], nearest_same_group_variance(Z[rows], data.y[rows], X, slopes)
            )
        return abadie_imbens_se_shared(
            self.target_units, self.effect_, unit_effect, t, keep, used, squared, sigma2
        )

    def outcome_weights(self) -> np.ndarray:
        """Each unit's weight ``a_i`` in the fitted estimate, ``effect_ = a' y`` (signed: minus for controls).

        The matches and the use-weighted bias-adjustment regressions depend only on the covariates and the
        treatment, and the regressions' slopes are linear in the outcomes, so the estimate is exactly linear
        in ``y``: ``a_i = (2 t_i - 1) (own_i + K_i + R_i) / N`` with ``own_i`` 1 for a unit of the target
        group, ``K_i`` how often it serves as a match and ``R_i`` its weight through the regression
        (:func:`~causal_cli.estimators.matching.regression_use`). Given covariates and treatment the
        estimate's variance is ``sum_i a_i^2 sigma2_i`` plus, for the ATE/ATT, the spread of the unit
        effects: what the Abadie-Imbens SE estimates. A diagnostic (benchmarks/matching_variance_diagnosis.py).
        """
        t, keep, _, _, _, _, used = self._state
        if self.target_units == "ate":
            own, use = keep, np.where(t, used[1], used[0])
        else:
            own = keep & (t if self.target_units == "att" else ~t)
            use = used[0] if self.target_units == "att" else used[1]
        return (2.0 * t - 1.0) * (own + use) / own.sum()

    def caveats(self) -> list[str]:
        """One-line warnings: few distinct units doing most of the matching."""
        if getattr(self, "_state", None) is None:
            return []
        t, _, _, used, _, _, _ = self._state
        return matching_caveats(
            self.target_units,
            {"treated": int(t.sum()), "control": int((~t).sum())},
            {},
            {"treated": used[0][~t], "control": used[1][t]},
        )

    def summary(self):
        return {
            "distance": self.distance,
            "k": int(self.k),
            "max_rows": int(self.max_rows),
            "bias_adjust": bool(self.bias_adjust),
        }
