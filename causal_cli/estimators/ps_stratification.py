"""Propensity score stratification: differences in means within strata of the propensity score.

Units are ranked by propensity score and cut into ``num_strata`` equal-count strata (stratum =
``round(rank / n * num_strata)``, so the two end strata are half as wide). The effect is the
within-stratum difference in means, averaged with weights of all units (ATE), treated units (ATT) or
control units (ATC).

Sparse strata (``sparse_strata``). ``merge`` (default): adjacent strata are joined, in propensity
order, until each holds at least ``clipping_threshold`` treated and control units, so no unit is lost
and the estimand stays the ATE/ATT/ATC; ``num_strata: auto`` starts at ``min(max_strata,
n / (2 * clipping_threshold))``. ``drop`` is DoWhy's ``propensity_score_stratification``: a stratum is
kept only when it holds MORE than ``clipping_threshold`` treated and control units, ``auto`` halves the
number of strata until at least half are kept, and ``max_strata: null`` makes it DoWhy's ``auto``
exactly. Dropping changes the estimand: on ``product_growth`` at n = 2,000 it dropped 42% of
the units (mean of 100 seeds); the dropped share is reported as a caveat when it exceeds 1%.

Within strata (``within_stratum``). ``score`` (default): each stratum's difference in means is adjusted
for its treated-minus-control gap in logit propensity score, with each arm's slope pooled over the strata
(blocking plus regression on the balancing score, Imbens & Rubin 2015 ch. 17); it removes the bias of
strata coarse enough to hold ``clipping_threshold`` units of each group (product_growth, n = 2,000:
ATE +0.156 -> -0.026, ATT +0.314 -> +0.001; coverage 96% / 92%, at n = 500 95% / 97%). ``none`` is
DoWhy's plain difference in means.

Standard error: the blocking variance (Imbens & Rubin 2015, ch. 17), i.e. each unit's contribution to
its stratum's difference in means plus the variance of the stratum weights, written as an influence
function; with the built-in propensity model it is then projected off the logistic fit's scores, the
estimated-score correction of weighting estimators (Hirano, Imbens & Ridder 2003). With a
scikit-learn propensity model the scores are treated as known.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from causal_cli.errors import EstimationError
from causal_cli.estimators.base import influence_se
from causal_cli.estimators.propensity import propensity_scores
from causal_cli.estimators.propensity_score import PropensityConfig, PropensityScoreEstimator
from causal_cli.schema import check


@dataclass
class PSStratificationConfig(PropensityConfig):
    name: str = "ps_stratification"
    num_strata: Any = "auto"
    max_strata: int | None = 50
    clipping_threshold: int = 10
    sparse_strata: str = "merge"
    within_stratum: str = "score"

    def __post_init__(self):
        super().__post_init__()
        check(self.sparse_strata in SPARSE_STRATA, "sparse_strata", self.sparse_strata, SPARSE_ALLOWED)
        check(self.within_stratum in WITHIN_STRATUM, "within_stratum", self.within_stratum, WITHIN_ALLOWED)
        check(_valid_num_strata(self.num_strata), "num_strata", self.num_strata, "auto, or an integer >= 1")
        check(self.max_strata is None or self.max_strata >= 2, "max_strata", self.max_strata, "null or >= 2")
        check(self.clipping_threshold >= 0, "clipping_threshold", self.clipping_threshold, "an integer >= 0")
        check(self.propensity_C > 0, "propensity_C", self.propensity_C, "a number > 0")


WITHIN_STRATUM = ("score", "none")
WITHIN_ALLOWED = (
    "score (difference in means adjusted for the logit propensity score, one pooled slope) or none (DoWhy)"
)
SPARSE_STRATA = ("merge", "drop")
SPARSE_ALLOWED = (
    "merge (join a stratum with too few treated or control units to its neighbour) or drop (DoWhy)"
)


def merge_sparse_strata(codes: np.ndarray, t: np.ndarray, minimum: int) -> np.ndarray:
    """Stratum codes after joining adjacent strata, in propensity order, until each holds at least
    ``minimum`` treated and ``minimum`` control units; a short last block joins the one before it."""
    size = np.bincount(codes)
    treated = np.bincount(codes, weights=t, minlength=size.shape[0])
    control = size - treated
    new = np.empty(size.shape[0], dtype=np.int64)
    block, have_t, have_c = 0, 0.0, 0.0
    for s in range(size.shape[0]):
        new[s] = block
        have_t += treated[s]
        have_c += control[s]
        if have_t >= minimum and have_c >= minimum:
            block, have_t, have_c = block + 1, 0.0, 0.0
    if (have_t or have_c) and block > 0:
        new[new == block] = block - 1
    return new[codes]


def _valid_num_strata(value) -> bool:
    if value == "auto":
        return True
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 1


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks with ties sharing their average rank (pandas ``Series.rank()``)."""
    order = np.argsort(values, kind="stable")
    sorted_values = values[order]
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    ends = np.r_[starts[1:], values.shape[0]]
    tie_rank = (starts + ends + 1) / 2.0
    ranks = np.empty(values.shape[0])
    ranks[order] = np.repeat(tie_rank, ends - starts)
    return ranks


def propensity_residual(phi: np.ndarray, columns: np.ndarray, ps: np.ndarray, t: np.ndarray) -> np.ndarray:
    """``phi`` minus its least-squares projection on the logistic model's scores ``x (t - e(x))``.

    An estimator built on a propensity score fitted by maximum likelihood is more precise than the same
    estimator on the true score: the fit removes the chance imbalance in the covariates (its score
    equations balance them exactly), and that part of the variance is the projection of the influence
    function on the scores (Hirano, Imbens & Ridder 2003; Lunceford & Davidian 2004 for weighting).
    """
    from causal_cli.estimators.propensity import standardizer

    design = columns.T @ standardizer(columns).jacobian  # standardised: the projection is unit-free
    scores = design[:, ~standardizer(columns).constant] * (t - ps)[:, None]
    coef = np.linalg.lstsq(scores, phi, rcond=None)[0]
    return phi - scores @ coef


def estimand_score_change(columns, ps, tau_p, effect, target_units) -> float:
    """``d' I^-1 d``: the rise in ``N * Var`` of an ATT/ATC estimate from estimating its target population.

    The ATT weights units by their propensity score, ``tau_t(theta) = E[p_theta tau(p)] / E[p_theta]``, so
    an estimated logistic score moves the estimand itself, by ``d = dtau_t / dtheta = E[f X (tau(p) -
    tau_t)] / E[p]`` (``f = p (1 - p)``; the ATC with ``1 - p`` and the sign reversed, which the quadratic
    form ignores). Abadie & Imbens (2016, Theorem 2) add ``d' I^-1 d`` (``I = E[f X X']``, the logit's
    information) to the variance after the projection on the scores; it is zero when the effect does not
    vary with the score. ``tau_p`` is each unit's stratum effect. Measured (``heterogeneous`` grid cell,
    ATT, 300 replications): SE / SD 0.944 without it, 1.009 with it.
    """
    from causal_cli.estimators.propensity import standardizer

    found = standardizer(columns)
    design = (columns.T @ found.jacobian)[:, ~found.constant]  # standardised: unit-free
    f = ps * (1 - ps)
    information = (design * f[:, None]).T @ design / ps.shape[0]
    p_target = ps if target_units == "att" else 1 - ps
    d = (design * (f * (tau_p - effect))[:, None]).mean(axis=0) / p_target.mean()
    return float(d @ np.linalg.lstsq(information, d, rcond=None)[0])


class PSStratificationEstimator(PropensityScoreEstimator):
    config_class = PSStratificationConfig
    name = "ps_stratification"
    has_analytic_se = True
    cluster_robust_se = True

    def _strata(self, ranks: np.ndarray, t: np.ndarray, num: float):
        codes = np.round(ranks / ranks.shape[0] * num).astype(np.int64)
        size = np.bincount(codes)
        treated = np.bincount(codes, weights=t, minlength=size.shape[0])
        kept = np.minimum(treated, size - treated) > self.clipping_threshold
        return codes, kept

    def _estimate(self, data):
        ps, coef = propensity_scores(
            data, self.propensity_model, self.propensity_C, getattr(self, "warm_start_", None)
        )
        self.warm_start_ = coef
        self.propensity_ = ps  # propensity score of each unit
        t, y = data.t, data.y
        ranks = average_ranks(ps)
        if self.sparse_strata == "merge":
            codes, kept, num = self._merged_strata(ranks, t, data.n)
        else:
            codes, kept, num = self._dropped_strata(ranks, t, data.n)
        keep = kept[codes]
        size = kept.shape[0]
        n_t = np.bincount(codes, weights=t * keep, minlength=size)
        n_c = np.bincount(codes, weights=(1 - t) * keep, minlength=size)
        safe_t, safe_c = np.maximum(n_t, 1), np.maximum(n_c, 1)
        mean_t = np.bincount(codes, weights=t * y, minlength=size) / safe_t
        mean_c = np.bincount(codes, weights=(1 - t) * y, minlength=size) / safe_c
        stratum_effect = np.where(kept, mean_t - mean_c, 0.0)
        treated = t == 1
        within = self._within_stratum_slope(ps, t, y, codes, keep, kept, safe_t, safe_c, mean_t, mean_c)
        stratum_effect = stratum_effect - within[0]
        if self.target_units == "att":
            target_count = n_t
        elif self.target_units == "atc":
            target_count = n_c
        else:
            target_count = n_t + n_c
        share = target_count / target_count.sum()
        # per-unit weights giving each group the target group's stratum mix (1 for target units under att/atc)
        own_count = np.where(treated, safe_t[codes], safe_c[codes])
        self.balance_weights_ = np.where(keep, target_count[codes] / own_count, 0.0)
        self.n_strata_ = num
        self.n_strata_used_ = int(kept.sum())
        self.n_dropped_ = {"treated": int((~keep & treated).sum()), "control": int((~keep & ~treated).sum())}
        self._state = (codes, keep, share, n_t, n_c, mean_t, mean_c, stratum_effect, within)
        return float((share * stratum_effect).sum())

    def _merged_strata(self, ranks, t, n):
        """``(codes, kept, num)`` with sparse strata joined to a neighbour (``sparse_strata: merge``)."""
        threshold = self.clipping_threshold
        minimum = max(int(threshold), 2)  # two per group at least: a within-stratum variance needs them
        n_treated = int(t.sum())
        if min(n_treated, n - n_treated) < minimum:
            raise EstimationError(
                f"fewer than {minimum} treated or control units ({n_treated} treated of {n}); "
                "lower estimator.clipping_threshold"
            )
        if self.num_strata == "auto":
            num = 0.5 * n / minimum
            if self.max_strata is not None:
                num = min(num, int(self.max_strata))
            num = max(int(num), 1)
        else:
            num = int(self.num_strata)
        codes = merge_sparse_strata(np.round(ranks / ranks.shape[0] * num).astype(np.int64), t, minimum)
        kept = np.ones(int(codes.max()) + 1, dtype=bool)
        return codes, kept, num

    def _dropped_strata(self, ranks, t, n):
        """``(codes, kept, num)`` with strata too sparse to compare dropped (``sparse_strata: drop``, DoWhy's)."""
        threshold = self.clipping_threshold
        if self.num_strata == "auto":
            if threshold < 1:
                raise EstimationError("estimator.num_strata=auto needs estimator.clipping_threshold >= 1")
            num = 0.5 * n / threshold
            if self.max_strata is not None:
                num = min(num, int(self.max_strata))
            while True:
                codes, kept = self._strata(ranks, t, num)
                if kept.any() and kept.sum() >= 0.5 * num:
                    break
                num = int(num / 2)
                if num < 2:
                    raise EstimationError(
                        f"no two propensity strata hold more than {threshold} treated and control units; "
                        "lower estimator.clipping_threshold"
                    )
        else:
            num = int(self.num_strata)
            codes, kept = self._strata(ranks, t, num)
            if not kept.any():
                raise EstimationError(
                    f"no propensity stratum holds more than {threshold} treated and control units; lower "
                    "estimator.num_strata or estimator.clipping_threshold"
                )
        return codes, kept, num

    def _within_stratum_slope(self, ps, t, y, codes, keep, kept, safe_t, safe_c, mean_t, mean_c):
        """``(adjustment, centred score, slope, pull)`` of the within-stratum regression on the logit score.

        Strata coarse enough to hold ``clipping_threshold`` units of each group leave the treated at higher
        scores than the controls inside a stratum (most at the tails); on ``product_growth`` that biased the
        plain difference in means by +0.16 (ATE) and +0.31 (ATT) at n = 2,000 (about one SE). Each arm's
        mean is moved along that arm's slope on the logit score (pooled over the strata) to the target
        units' mean score in the stratum: the treated mean for the ATT (only the controls' slope is used),
        the controls' for the ATC, all units' for the ATE (Imbens & Rubin 2015 ch. 17, blocking plus
        regression, here on the balancing score, with separate slopes as in Lin 2013). One slope pooled
        over both arms left a bias when the effect varies with the score (``heterogeneous`` grid cell,
        ATT: -0.029, 0.3 SD). ``adjustment`` is per stratum; ``slope`` (each unit's arm's slope) and
        ``pull`` (``sum_s share_s weight_s gap_s`` of the unit's arm) give the slopes' own error in the SE.
        """
        size = kept.shape[0]
        if self.within_stratum == "none":
            return np.zeros(size), None, None, None
        if self.within_stratum not in WITHIN_STRATUM:
            raise EstimationError(
                f"estimator.within_stratum={self.within_stratum!r}; allowed: {WITHIN_ALLOWED}"
            )
        e = np.clip(ps, 1e-12, 1 - 1e-12)
        q = np.log(e) - np.log1p(-e)
        treated = t == 1
        q_t = np.bincount(codes, weights=t * q * keep, minlength=size) / safe_t
        q_c = np.bincount(codes, weights=(1 - t) * q * keep, minlength=size) / safe_c
        centred = np.where(treated, q - q_t[codes], q - q_c[codes]) * keep
        resid = np.where(treated, y - mean_t[codes], y - mean_c[codes]) * keep
        slopes = []
        for arm in (treated, ~treated):
            ss = float(centred[arm] @ centred[arm])
            slopes.append(float(centred[arm] @ resid[arm]) / ss if ss > 0 else 0.0)
        gap = np.where(kept, q_t - q_c, 0.0)
        # weight of each arm's slope in a stratum's adjustment: the target's mean score minus the arm's
        treated_share = safe_t / (safe_t + safe_c)
        weight_t, weight_c = {
            "att": (np.zeros(size), np.ones(size)),
            "atc": (np.ones(size), np.zeros(size)),
        }.get(self.target_units, (1 - treated_share, treated_share))
        adjustment = (weight_t * slopes[0] + weight_c * slopes[1]) * gap
        slope = np.where(treated, slopes[0], slopes[1])
        return adjustment, centred, slope, (weight_t * gap, weight_c * gap)

    def _std_error(self, data):
        codes, keep, share, n_t, n_c, mean_t, mean_c, stratum_effect, within = self._state
        t, y, n = data.t, data.y, data.n
        treated = t == 1
        # influence of each unit (scaled by n): its stratum's difference in means, then the stratum weights
        own = np.where(treated, np.maximum(n_t, 1)[codes], -np.maximum(n_c, 1)[codes])
        resid = np.where(treated, y - mean_t[codes], y - mean_c[codes])
        _, centred, slope, pull = within
        if centred is not None:
            resid = resid - slope * centred
        phi = n * share[codes] * resid / own
        if centred is not None:  # each arm's estimated slope's own error
            for arm, arm_pull in zip((treated, ~treated), pull):
                ss = float(centred[arm] @ centred[arm])
                if ss > 0:
                    phi[arm] -= (share @ arm_pull) * n * centred[arm] * resid[arm] / ss
        rows = {"att": treated, "atc": ~treated}.get(self.target_units, np.ones(n, dtype=bool))
        phi += np.where(rows, n / rows[keep].sum() * (stratum_effect[codes] - self.effect_), 0.0)
        phi *= keep
        self.std_error_blocking_ = influence_se(phi, data)  # CR1 by cluster with data.cluster
        self.se_includes_propensity_ = bool(self.warm_start_ is not None)
        if not self.se_includes_propensity_:
            return self.std_error_blocking_
        se = influence_se(propensity_residual(phi, data.columns, self.propensity_, t), data)
        if self.target_units in ("att", "atc"):
            # estimating the score also moves the target population: Abadie & Imbens (2016)'s d' I^-1 d
            tau_p = np.where(keep, stratum_effect[codes], self.effect_)
            change = estimand_score_change(
                data.columns, self.propensity_, tau_p, self.effect_, self.target_units
            )
            se = float(np.sqrt(se**2 + change / data.n))
        return se

    def caveats(self) -> list[str]:
        """Units in dropped strata (``sparse_strata: drop``) and the estimand that leaves."""
        from causal_cli.estimators.caveats import dropped_units_caveat

        dropped = getattr(self, "n_dropped_", None)
        if dropped is None:
            return []
        return dropped_units_caveat(
            dropped["treated"],
            dropped["control"],
            self._state[0].shape[0],
            f"in propensity strata with at most {self.clipping_threshold} treated or control units",
            f"the effect on the units of the kept strata, not the {self.target_units.upper()} "
            "(estimator.sparse_strata=merge keeps them)",
        )

    def summary(self):
        return {
            "num_strata": getattr(self, "n_strata_", None),
            "num_strata_setting": self.num_strata,
            "max_strata": self.max_strata,
            "clipping_threshold": self.clipping_threshold,
            "rule": (
                "adjacent strata are merged until each has at least clipping_threshold treated and control units"
                if self.sparse_strata == "merge"
                else "strata with at most clipping_threshold treated or control units are dropped"
            ),
            "units_dropped": getattr(self, "n_dropped_", {}),
            "sparse_strata": self.sparse_strata,
            "strata_used": getattr(self, "n_strata_used_", None),
            "std_error": (
                "blocking variance, projected off the propensity fit's scores"
                if getattr(self, "se_includes_propensity_", False)
                else "blocking variance, propensity scores as known"
            ),
            "std_error_blocking": getattr(self, "std_error_blocking_", None),
        }
