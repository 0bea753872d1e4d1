"""Propensity score matching with replacement (k nearest neighbours, optional caliper).

Point estimates follow DoWhy's ``propensity_score_matching``: ATT matches each treated unit to
control units, ATC each control to treated units, and ATE is their share-weighted average. Units
tied with the k-th nearest score share the match weight (so the row order never picks a match).
``bias_adjust`` corrects each matched difference with within-arm regressions on the confounders
(Abadie & Imbens 2011). Standard errors: Abadie & Imbens (2006) for the matches actually made, with
each conditional variance averaged over ~sqrt(m) same-arm neighbours on the score
(:func:`~causal_cli.estimators.matching.smoothed_variance_sorted`), adjusted for the estimation of the
built-in logistic propensity model (Abadie & Imbens 2016).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from causal_cli.errors import EstimationError
from causal_cli.estimators.matching import (
    abadie_imbens_se_shared,
    arm_moments,
    bias_adjusted_sum,
    combine_group_effects,
    combine_group_sums,
    large_weighted_slopes,
    match_balance_weights,
    match_ranges,
    match_ranges_in_score_order,
    matching_caveats,
    range_means,
    range_sums,
    range_use,
    range_within,
    regression_use,
    smoothed_variance_sorted,
    tied_neighbour_variance_sorted,
    use_in_row_order,
)
from causal_cli.estimators.propensity import propensity_scores, standardizer
from causal_cli.estimators.propensity_score import PropensityConfig, PropensityScoreEstimator
from causal_cli.numerics import run_concurrently, thread_map
from causal_cli.schema import check

#: same-arm neighbours on the score for the conditional covariances of the Abadie-Imbens (2016) adjustment
COVARIANCE_NEIGHBOURS = 4
#: the Abadie-Imbens (2016) adjustment averages over at most this many units (its cost is per unit)
AI2016_MAX_POINTS = 50_000
#: a group this many times larger than the units averaged over gathers their neighbourhoods instead of
#: summing over the whole group
GATHER_SHARE = 8


@dataclass
class PSMConfig(PropensityConfig):
    name: str = "psm"
    k: int = 1
    caliper: float | None = None
    bias_adjust: bool = True

    def __post_init__(self):
        super().__post_init__()
        check(self.k >= 1, "k", self.k, "an integer >= 1")
        check(
            self.caliper is None or self.caliper > 0,
            "caliper",
            self.caliper,
            "a number > 0, or null for none",
        )
        check(self.propensity_C > 0, "propensity_C", self.propensity_C, "a number > 0")


def unit_free(X: np.ndarray) -> np.ndarray:
    """The covariates over their standard deviations: the bias adjustment's regressions (and each unit's
    weight through them, which enters the SE) are unit-free in exact arithmetic, but the solvers' relative
    cut-offs on singular values are not (a covariate in units 1e7 larger moved the SE by 0.6%)."""
    sd = X.std(axis=0)
    return X / np.where(sd > 0, sd, 1.0)


def conditional_covariances(s, in_group, Xs, ys, at, neighbours=COVARIANCE_NEIGHBOURS):
    """Cov(X, Y | score, group) at the scores of units ``at``: over the ``neighbours`` nearest units of the
    group (ties shared), ``(len(at), p)``; the Abadie & Imbens (2016) estimator. Arrays in score order."""
    pool_at = np.flatnonzero(in_group)
    if pool_at.size < 2:
        return np.zeros((at.size, Xs.shape[1]))
    pos = (np.cumsum(in_group) - in_group)[at]
    lo, hi = match_ranges(s[pool_at], pos, s[at], neighbours)
    width = hi - lo
    if GATHER_SHARE * at.size < pool_at.size and np.all(width == width[0]):
        return _gathered_covariances(Xs, ys, pool_at[lo[:, None] + np.arange(width[0])])
    pooled = Xs[pool_at]  # gathered once, centred in place
    Xc = np.subtract(pooled, pooled.mean(axis=0), out=pooled)
    yc = ys[pool_at] - ys[pool_at].mean()
    count = (hi - lo).astype(float)[:, None]
    sum_x = range_sums(Xc, lo, hi)
    sum_y = range_sums(yc, lo, hi)[:, None]
    sum_xy = range_sums(Xc * yc[:, None], lo, hi)
    return (sum_xy - sum_x * sum_y / count) / np.maximum(count - 1, 1)


def _gathered_covariances(Xs, ys, neighbourhoods):
    """:func:`conditional_covariances` from each unit's neighbours gathered (``(units, width)`` rows):
    when the units are a sparse subsample, cheaper than sums over the whole group (the same numbers up
    to rounding)."""
    xg, yg = Xs[neighbourhoods], ys[neighbourhoods]
    count = float(neighbourhoods.shape[1])
    sum_x, sum_y = xg.sum(axis=1), yg.sum(axis=1)[:, None]
    sum_xy = (xg * yg[:, :, None]).sum(axis=1)
    return (sum_xy - sum_x * sum_y / count) / max(count - 1, 1)


def ai2016_variance_change(target_units, ps, design, unit_effect, effect, cov_treated, cov_control):
    """Change in ``N * Var`` from estimating the logistic propensity model (Abadie & Imbens 2016).

    ATE: ``-c' I^-1 c`` with ``c = E[f (Cov(X, mu1 | p) / p + Cov(X, mu0 | p) / (1 - p))]``, ``f = p (1 - p)``
    and ``I = E[f X X']`` the logit's information. ATT: ``-c_t' I^-1 c_t + d' I^-1 d`` with
    ``c_t = E[f (Cov(X, mu1 | p) + p / (1 - p) Cov(X, mu0 | p))] / E[p]`` and ``d = dtau_t / dtheta =
    E[f X (tau(X) - tau_t)] / E[p]`` (ATC by swapping the arms). Measured against a Monte Carlo of the
    estimator's spread (``benchmarks/matching_mc.py``, scenario ``psm_score_noise``): a ``c_t`` that
    also contains ``d`` over-adjusted (N * change -34.8 vs -24.4 +- 1.2 measured), this one gives -25.5.
    ``design`` is ``[1, X]``, ``unit_effect`` each unit's matched effect, ``cov_*`` Cov(X, Y | p, arm).
    """
    f = ps * (1 - ps)
    information = (design * f[:, None]).T @ design / ps.shape[0]
    pad = np.zeros((ps.shape[0], 1))  # the intercept does not covary
    cov1, cov0 = np.hstack([pad, cov_treated]), np.hstack([pad, cov_control])
    if target_units == "ate":
        c = ((cov1 / ps[:, None] + cov0 / (1 - ps)[:, None]) * f[:, None]).mean(axis=0)
        return -float(c @ np.linalg.lstsq(information, c, rcond=None)[0])
    p_target = ps if target_units == "att" else 1 - ps
    gap = unit_effect - effect if target_units == "att" else effect - unit_effect
    cov_target, cov_other = (cov1, cov0) if target_units == "att" else (cov0, cov1)
    share = p_target.mean()
    d = (design * (f * gap)[:, None]).mean(axis=0) / share
    odds = p_target / (1 - p_target)
    c = ((cov_target + odds[:, None] * cov_other) * f[:, None]).mean(axis=0) / share
    solve = np.linalg.lstsq(information, np.column_stack([c, d]), rcond=None)[0]
    return float(-c @ solve[:, 0] + d @ solve[:, 1])


def _rows_in_order(X: np.ndarray, order: np.ndarray) -> np.ndarray:
    """``X[order]`` (C-contiguous, as fancy indexing gives it), gathered column by column: 3x faster on the
    column-major ``X`` of :class:`EstimationData` (0.3 vs 1.0 s at 10M rows, 2 covariates)."""
    out = np.empty((order.shape[0], X.shape[1]))
    for j in range(X.shape[1]):
        np.take(X[:, j], order, out=out[:, j])
    return out


def _plus_where(a: np.ndarray, b: np.ndarray, where: np.ndarray) -> np.ndarray:
    """``np.where(where, a + b, a)`` (the same numbers) in one pass, without the full ``a + b``."""
    out = a.copy()
    np.add(a, b, out=out, where=where)
    return out


def _use_counts(n, match, use, pool_arm) -> tuple[np.ndarray, np.ndarray]:
    """How often each unit (score order) serves as a match for one group, and its squared-weight sum
    (``use``: the first for the group's pool, if already counted)."""
    _queries, pool, lo, hi, _kept, _ = match
    weight = 1.0 / np.maximum(hi - lo, 1)
    out = []
    for w, ready in ((weight, use), (weight**2, None)):
        full = np.zeros(n)
        full[pool_arm] = range_use(pool.size, lo, hi, w) if ready is None else ready
        out.append(full)
    return out[0], out[1]


def _kept_sums(data, rows, centres) -> np.ndarray:
    """The sums of ``v = [1, z, y]`` (:func:`arm_moments`) over ``rows`` (the queries a caliper keeps)."""
    y_centre, centre, scale = centres
    out = np.empty(data.columns.shape[0] + 1)
    out[0] = rows.size
    out[1:-1] = ((np.take(data.columns[1:], rows, axis=1) - centre[:, None]) / scale[:, None]).sum(axis=1)
    out[-1] = (data.y[rows] - y_centre).sum()
    return out


class PSMEstimator(PropensityScoreEstimator):
    config_class = PSMConfig
    name = "psm"
    has_analytic_se = True
    balance_adjustment = "matching"

    def _matched_ranges(self, data, also=None):
        """Fit the propensity model, sort once and match: ``(order, s, t, groups)``.

        Everything is in propensity-score order (unit ``order[i]`` at position ``i``); ``groups`` holds
        ``(queries, pool, lo, hi, kept or None)`` for the treated and the control queries (``kept``: the
        queries a caliper keeps). Sets ``n_dropped_``. With ``also``, ``also(order)`` runs alongside the
        matching and its result is a fifth element.
        """
        if int(self.k) < 1:
            raise EstimationError(f"estimator.k={self.k}; it must be at least 1")
        if self.caliper is not None and self.caliper <= 0:
            raise EstimationError(
                f"estimator.caliper={self.caliper}; it must be > 0 (or null for no caliper)"
            )
        ps, coef = propensity_scores(
            data, self.propensity_model, self.propensity_C, getattr(self, "warm_start_", None)
        )
        self.warm_start_ = coef
        self.propensity_ = ps
        order, s, t, groups, *extra = match_ranges_in_score_order(ps, data.t == 1, int(self.k), also)
        if self.caliper is not None:
            logit = np.log(np.clip(s, 1e-12, 1 - 1e-12) / np.clip(1 - s, 1e-12, 1))
            caliper_width = float(self.caliper) * float(np.std(logit))
        out = []
        for queries, pos, pool, lo, hi in groups:
            kept = None
            if self.caliper is not None:
                lo, hi = range_within(logit[pool], logit[queries], pos, lo, hi, caliper_width)
                kept = hi > lo
            out.append((queries, pool, lo, hi, kept))
        dropped = [0 if kept is None else int((~kept).sum()) for *_, kept in out]
        self.n_dropped_ = {"treated": dropped[0], "control": dropped[1]}
        return (order, s, t, out, *extra)

    def _estimate(self, data):
        def gather(order):  # the outcome and (for the bias adjustment) covariates in score order
            return data.y[order], _rows_in_order(unit_free(data.X), order) if self.bias_adjust else None

        order, s, t, groups, (y, Xs) = self._matched_ranges(data, gather)
        k = int(self.k)
        # per group (treated, control): (queries, pool, lo, hi, kept or None, effects), and for the SE
        # (with the bias adjustment) (pool, use, summed discrepancy); the two groups in two threads
        done = thread_map(
            lambda group, treated_queries: self._match_effects(y, Xs, k, group, treated_queries),
            zip(groups, (True, False)),
            y.shape[0],
        )
        matches = [match for match, _ in done]
        self._regression_terms = [terms for _, terms in done if terms is not None]
        kept_effects = [e if kept is None else e[kept] for *_, kept, e in matches]
        effect = combine_group_effects(*kept_effects, self.target_units)
        self._state = (order, s, t, y, matches, k)
        self._Xs = Xs
        self._used = self._unit_arrays = self._balance_weights = None
        return float(effect)

    def _match_effects(self, y, Xs, k, group, treated_queries):
        """One group's matched effects: ``((queries, pool, lo, hi, kept, effects), regression terms or None)``."""
        queries, pool, lo, hi, kept = group
        width = min(k, pool.size)
        y_pool = y[pool]
        y_missing = range_means(y_pool, lo, hi, width)
        # each unit's matched effect: y1 - y0, with its missing potential outcome imputed
        effects = y[queries] - y_missing if treated_queries else y_missing - y[queries]
        terms = None
        if self.bias_adjust:
            # Abadie & Imbens (2011): move each match to the query's covariates along the pool arm's
            # regression, fitted on the matched pool units weighted by their use
            use = range_use(pool.size, lo, hi, 1.0 / np.maximum(hi - lo, 1))
            X_pool = Xs[pool]
            slopes = large_weighted_slopes(X_pool, y_pool, use)
            discrepancy = Xs[queries] - range_means(X_pool, lo, hi, width)
            if kept is not None:
                discrepancy[~kept] = 0.0
            effects = effects - discrepancy @ slopes if treated_queries else effects + discrepancy @ slopes
            terms = (pool, use, discrepancy.sum(axis=0))
        return (queries, pool, lo, hi, kept, effects), terms

    def _point_estimate(self, data):
        """The estimate alone (refuter simulations): with the bias adjustment, from a few weighted sums over
        the rows in order (:func:`arm_moments`, :func:`bias_adjusted_sum`) instead of per-unit
        corrections; equal to :meth:`_estimate` up to floating-point summation order."""
        if not self.bias_adjust or data.X.shape[1] == 0:
            return self._estimate(data)
        order, _, _, groups = self._matched_ranges(data)
        t, n_treated = data.t, groups[0][0].size
        if not t.sum() == t @ t == n_treated:  # psm counts any value but 1 as control; the sums need 0/1
            return self._estimate(data)
        std = standardizer(data.columns)  # the propensity fit's, kept for these columns
        centres = (float(data.y.mean()), std.mean[1:], std.scale[1:])
        needed = {"att": (0,), "atc": (1,)}.get(self.target_units, (0, 1))  # ATT, ATC: one group's sum
        use = use_in_row_order(data.n, order, [groups[g][1:4] for g in needed])
        pools, treated, every = arm_moments(data.columns, data.y, t, use, centres, (0 in needed, 1 in needed))
        sums, counts = [0.0, 0.0], [0, 0]
        for g in needed:  # group 0: the treated queries, matched to the control pool; group 1 the reverse
            queries, *_, kept = groups[g]
            if kept is None:
                targets = treated if g == 0 else every - treated
            else:
                targets = _kept_sums(data, order[queries[kept]], centres)
            total = bias_adjusted_sum(pools[g], targets)
            if total is None:  # an ill-conditioned regression: the per-unit way, as the fit does it
                return self._estimate(data)
            sums[g], counts[g] = (total if g == 0 else -total), int(targets[0])
        return combine_group_sums(sums, counts, self.target_units)

    def _regression_use(self, Xs: np.ndarray) -> np.ndarray:
        """Each unit's weight through the bias adjustment's regression, in score order (for the SE;
        ``Xs``: the unit-free covariates in score order)."""
        regression = np.zeros(Xs.shape[0])
        t = self._state[2]
        # a group's pool is the other arm, in score order: a mask places it faster than its positions
        extra = thread_map(
            lambda pool, use, discrepancy_sum: regression_use(Xs[pool], use, discrepancy_sum),
            self._regression_terms,
            t.shape[0],
        )
        for more, pool_arm in zip(extra, (~t, t)):
            regression[pool_arm] += more
        return regression

    def _units(self) -> tuple[np.ndarray, np.ndarray]:
        """``(keep, unit_effect)`` for every unit, in score order (for the standard error and diagnostics)."""
        if self._unit_arrays is None:
            t, matches = self._state[2], self._state[4]
            keep = np.ones(t.shape[0], dtype=bool)
            unit_effect = np.empty(t.shape[0])
            for (_, _, _, _, kept, effects), arm in zip(matches, (t, ~t)):
                unit_effect[arm] = effects  # the group's queries are this arm, in score order
                if kept is not None:
                    keep[arm] = kept
            self._unit_arrays = (keep, unit_effect)
        return self._unit_arrays

    def _times_used(self) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
        """``((used_by_treated, used_by_control), (their squared-weight sums))`` in score order.

        ``used_by_treated[i]``: the summed weight with which unit i serves as a match for the treated
        units (K_M(i)/M without ties). Only the standard error and the diagnostics need these, so
        refuters' point estimates skip them.
        """
        if self._used is None:
            t, matches = self._state[2], self._state[4]
            # the bias adjustment already counted each pool unit's use: the same numbers
            known = [use for _, use, _ in self._regression_terms] or [None, None]
            pairs = thread_map(
                lambda match, use, pool_arm: _use_counts(t.shape[0], match, use, pool_arm),
                zip(matches, known, (~t, t)),
                t.shape[0],
            )
            self._used = (tuple(u for u, _ in pairs), tuple(q for _, q in pairs))
        return self._used

    @property
    def balance_weights_(self) -> np.ndarray:
        """Diagnostics protocol: kept target units count once, each match as often as it is used."""
        if getattr(self, "_state", None) is None:
            raise AttributeError("balance_weights_")
        if self._balance_weights is None:  # computed once per fit (0.1 s at 10M rows)
            order, t = self._state[0], self._state[2]
            out = np.empty(t.shape[0])
            out[order] = match_balance_weights(self.target_units, t, self._units()[0], *self._times_used()[0])
            self._balance_weights = out
        return self._balance_weights

    def _std_error(self, data):
        order, s, t, y, _, k = self._state
        keep, unit_effect = self._units()
        Xs = self._Xs if self._Xs is not None else _rows_in_order(unit_free(data.X), order)
        self._Xs = None  # changed in place below
        # with the bias adjustment, the outcome's covariate part is removed by regression, so only the
        # rest varies between units matched on the score: conditional variances and covariances net of
        # each arm's linear fit (without it they would count the covariates' spread at a score as noise)
        arms = (np.flatnonzero(t), np.flatnonzero(~t))
        # independent parts, in two threads from THREAD_MIN_ROWS rows: use counts, each unit's weight
        # through the bias adjustment's regression, each arm's conditional variances
        (used, squared), regression, *variances = run_concurrently(
            [
                self._times_used,
                lambda: self._regression_use(Xs) if self.bias_adjust else None,
                *(lambda rows=rows: self._arm_variances(s, y, Xs, rows) for rows in arms),
            ],
            data.n,
        )
        if self.bias_adjust:  # the pool arms' outcomes also enter through the regression
            used = tuple(_plus_where(u, regression, pool_arm) for u, pool_arm in zip(used, (~t, t)))
        y_net = np.empty(data.n) if self.bias_adjust else y
        sigma2 = np.empty(data.n)
        for rows, (y_arm, sigma2_arm) in zip(arms, variances):
            if self.bias_adjust:
                y_net[rows] = y_arm
            sigma2[rows] = sigma2_arm
        se = abadie_imbens_se_shared(
            self.target_units, self.effect_, unit_effect, t, keep, used, squared, sigma2
        )
        self.se_abadie_imbens_2006_ = se
        self.se_method_ = self._ai2016_fallback()
        if self.se_method_ is not None:
            return se
        # the adjustment's terms are averages over units: above AI2016_MAX_POINTS rows, average over
        # evenly spaced units in score order (the neighbourhoods still search every unit)
        at = np.arange(0, data.n, -(-data.n // AI2016_MAX_POINTS))
        # c' I^-1 c does not depend on the covariates' units in theory, and in floating point only on
        # comparable scales: a confounder in the tens of millions made the information matrix singular
        spread = Xs.std(axis=0)
        Zs = np.subtract(Xs, Xs.mean(axis=0), out=Xs)  # in place: Xs is not used again (two copies fewer)
        Zs /= np.where(spread > 0, spread, 1.0)
        covs = thread_map(
            lambda group: conditional_covariances(s, group, Zs, y_net, at), ((t,), (~t,)), data.n
        )
        design = np.column_stack([np.ones(at.size), Zs[at]])
        change = ai2016_variance_change(
            self.target_units, s[at], design, unit_effect[at], self.effect_, *covs
        )
        adjusted = se**2 + change / data.n
        if not adjusted > 0:
            self.se_method_ = "abadie_imbens_2006 (the Abadie-Imbens 2016 adjustment was not positive)"
            return se
        self.se_method_ = "abadie_imbens_2016"
        return float(np.sqrt(adjusted))

    def _arm_variances(self, s, y, Xs, rows):
        """One arm's outcomes net of its linear fit on the covariates (with the bias adjustment; else as
        they are) and their smoothed conditional variances, for the arm's positions ``rows`` in score order."""
        y_arm = y[rows]
        if self.bias_adjust:
            X_arm = Xs[rows]
            y_arm = y_arm - X_arm @ large_weighted_slopes(X_arm, y_arm)
        s_arm = s[rows]
        return y_arm, smoothed_variance_sorted(s_arm, tied_neighbour_variance_sorted(s_arm, y_arm))

    def _ai2016_fallback(self) -> str | None:
        """Why the Abadie-Imbens (2016) adjustment does not apply, or None when it does."""
        if not (self.propensity_model is None or self.propensity_model == "logistic"):
            return "abadie_imbens_2006 (ignores the estimation of the user-given propensity model)"
        groups = {"att": ("treated",), "atc": ("control",)}.get(self.target_units, ("treated", "control"))
        if any(self.n_dropped_[group] for group in groups):
            return "abadie_imbens_2006 (the caliper dropped units; the 2016 adjustment assumes none)"
        return None

    def caveats(self) -> list[str]:
        """One-line warnings: caliper drops, and few distinct units doing most of the matching."""
        if getattr(self, "_state", None) is None:
            return []
        t = self._state[2]
        used = self._times_used()[0]
        return matching_caveats(
            self.target_units,
            {"treated": int(t.sum()), "control": int((~t).sum())},
            self.n_dropped_,
            {"treated": used[0][~t], "control": used[1][t]},
        )

    def summary(self):
        out = {
            "units_dropped_by_caliper": getattr(self, "n_dropped_", {}),
            "bias_adjust": bool(self.bias_adjust),
        }
        if hasattr(self, "se_method_"):
            out["se_method"] = self.se_method_
            out["se_abadie_imbens_2006"] = self.se_abadie_imbens_2006_
        return out
