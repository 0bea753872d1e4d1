"""Double / debiased machine learning (Chernozhukov et al. 2018), cross-fitted, with repeated splits.

``model: irm`` (default), the interactive regression model: outcome models per treatment group
``mu1(X)``, ``mu0(X)`` and the propensity ``e(X)``, all cross-fitted, plugged into the efficient
(doubly robust) score for the ATE, ATT (their sec. 5.1) or ATC. It is the same score as ``aipw``
(:func:`causal_cli.estimators.outcome.efficient_score`); dml adds repeated fold splits.

``model: plr``, the partially linear model ``y = theta t + g(X) + u``: Robinson's
residual-on-residual ``theta = sum(t_res y_res) / sum(t_res^2)`` with cross-fitted ``E[y | X]`` and
``E[t | X]`` (the "partialling-out" score, DML2), SE ``sqrt(mean(psi^2) / mean(t_res^2)^2 / n)``. With
heterogeneous effects it converges to the variance-weighted average
``E[e(X)(1 - e(X)) tau(X)] / E[e(X)(1 - e(X))]``, the ATE only when the effect is homogeneous; so it is
labelled that way and accepts only ``target_units: ate``.

``n_rep`` repeats the whole fit over independent fold splits and aggregates by the median, with the
variance ``median(se_s^2 + (theta_s - theta)^2)`` (their def. 3.3), so the answer does not hinge on one
random split. The first split is the one ``aipw`` with the same ``folds`` and seed draws.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from causal_cli.errors import EstimationError
from causal_cli.estimators.base import influence_se
from causal_cli.estimators.outcome import (
    cross_fit_outcome,
    cross_fitted_scores,
    efficient_score,
    median_aggregate,
    model_name,
    seed_sequence,
)
from causal_cli.estimators.propensity_score import PropensityConfig, PropensityScoreEstimator
from causal_cli.schema import check

ESTIMAND = (
    "variance-weighted average effect (weights e(1-e)); equals the ATE only if the effect is homogeneous"
)
MODELS = ("irm", "plr")
#: stream key of the fold split of repetition r >= 1 (repetition 0 uses the estimator's own seed)
REPEAT_KEY = 0xD4E9


@dataclass
class DMLConfig(PropensityConfig):
    name: str = "dml"
    model: str = "irm"
    folds: int = 5
    n_rep: int = 3
    outcome_model: Any = None

    def __post_init__(self):
        super().__post_init__()
        target = str(getattr(self.target_units, "value", self.target_units))
        check(self.model in MODELS, "model", self.model, " | ".join(MODELS))
        check(
            target == "ate" or self.model == "irm",
            "target_units",
            target,
            "ate (model: plr estimates a variance-weighted effect; use model: irm for att/atc)",
        )
        check(self.folds >= 2, "folds", self.folds, "an integer >= 2")
        check(self.n_rep >= 1, "n_rep", self.n_rep, "an integer >= 1")
        check(self.propensity_C > 0, "propensity_C", self.propensity_C, "a number > 0")


class DMLEstimator(PropensityScoreEstimator):
    config_class = DMLConfig
    name = "dml"
    has_analytic_se = True
    accepts_weights = True
    cluster_robust_se = True

    def _split_seed(self, repetition: int):
        return None if repetition == 0 else seed_sequence(self.random_state, REPEAT_KEY + repetition)

    def _estimate(self, data):
        n_rep = int(self.n_rep)
        fit = self._fit_irm if self.model == "irm" else self._fit_plr
        estimates, std_errors, scores, weights = [], [], [], []
        for repetition in range(n_rep):
            folds, e = cross_fitted_scores(self, data, self._split_seed(repetition))
            effect, se, weight = fit(data, folds, e)
            estimates.append(effect)
            std_errors.append(se)
            scores.append(e)
            weights.append(weight)
        effect, self._se = median_aggregate(np.array(estimates), np.array(std_errors))
        self.split_estimates_ = np.array(estimates)
        self.propensity_ = np.mean(scores, axis=0)  # out-of-fold e(X), averaged over the splits
        self.balance_weights_ = np.mean(weights, axis=0)
        return effect

    def _fit_irm(self, data, folds, e):
        t, y = data.t, data.y
        mu1, mu0 = cross_fit_outcome(data, folds, self.outcome_model, self.random_state, by_arm=True)
        if np.any(e <= 0) or np.any(e >= 1):
            raise EstimationError(
                "a cross-fitted propensity score is 0 or 1; dml model: irm needs overlap (use a classifier "
                "with predict_proba, or model: plr)"
            )
        effect, influence = efficient_score(y, t, mu1, mu0, e, self.target_units, weights=data.w)
        if self.target_units == "att":
            weight = t + (1 - t) * e / (1 - e)
        elif self.target_units == "atc":
            weight = t * (1 - e) / e + (1 - t)
        else:
            weight = t / e + (1 - t) / (1 - e)
        return effect, influence_se(influence, data), weight * data.weights

    def _fit_plr(self, data, folds, m):
        l_hat, _ = cross_fit_outcome(data, folds, self.outcome_model, self.random_state, by_arm=False)
        t_res, y_res = data.t - m, data.y - l_hat
        w = data.weights
        denominator = (w * t_res) @ t_res
        if denominator <= 0:
            raise EstimationError(
                "the treatment is fully predicted by the covariates; dml cannot separate its effect"
            )
        effect = float(((w * t_res) @ y_res) / denominator)
        psi = w * (y_res - effect * t_res) * t_res / (denominator / data.n)
        se = influence_se(psi, data)
        return effect, se, np.abs(t_res) * w  # the weight the partially linear fit gives each unit

    def _std_error(self, data):
        return self._se

    def caveats(self) -> list[str]:
        """One-line warnings about what the number means."""
        if self.model == "plr":
            return [f"dml model: plr estimates a {ESTIMAND}"]
        return []

    def summary(self):
        out = {
            "model": {"irm": "interactive (efficient score)", "plr": "partially linear"}.get(self.model, "?"),
            "estimand": ESTIMAND if self.model == "plr" else str(self.target_units).upper(),
            "folds": int(self.folds),
            "n_rep": int(self.n_rep),
            "outcome_model": model_name(
                self.outcome_model,
                "linear regression per treatment group"
                if self.model == "irm"
                else "linear regression of y on X",
            ),
            "propensity_model": model_name(self.propensity_model, f"logistic (C={self.propensity_C:g})"),
        }
        splits = getattr(self, "split_estimates_", None)
        if splits is not None and splits.size > 1:
            out["split_estimates"] = {"min": float(splits.min()), "max": float(splits.max())}
        return out
