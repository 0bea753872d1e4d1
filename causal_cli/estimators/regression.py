"""Linear outcome regression (Lin 2013): ``y ~ 1 + X + t + t x (X - mean of the target group's X)``.

The default fully interacts treatment with the covariates, which is the same fit as one regression
per treatment group; centring the interaction at the target group's covariate mean makes the
treatment coefficient the ATE, ATT or ATC (Lin 2013; Imbens & Rubin 2015, ch. 12; ``causalinference``'s
``est_via_ols(adj=2)``) even when the effect varies with X. Standard errors are HC2 robust (Lin's
choice; ``robust_se``: hc1 | hc2 | hc3) plus the sampling variance of the target group's covariate
mean (delta method; the two are asymptotically uncorrelated because OLS residuals are orthogonal to
X), so they cover the population effect, not only the effect at the sample's covariates.

``interactions: false`` is DoWhy's ``linear_regression``, ``y ~ 1 + X + t``: one constant effect. Under
heterogeneous effects its coefficient is the variance-weighted average ``E[var(t|X) tau(X)] / E[var(t|X)]``
(Angrist 1998), like the partially linear ``dml``; it is labelled so, and only ``target_units: ate``
is accepted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from causal_cli.estimators.base import BaseEstimator, influence_se
from causal_cli.estimators.linear import HC_KINDS, hc_covariance
from causal_cli.estimators.outcome import ols
from causal_cli.schema import EstimatorConfig, check

CONSTANT_EFFECT = "without interactions the model has one constant effect; set interactions: true for att/atc"
#: what the additive model's coefficient estimates when effects vary with X
VARIANCE_WEIGHTED = (
    "variance-weighted average effect (weights var(t | X)); equals the ATE only if the effect is constant"
)


@dataclass
class RegressionConfig(EstimatorConfig):
    name: str = "regression"
    interactions: bool = True
    robust_se: str = "hc2"

    def __post_init__(self):
        super().__post_init__()
        target = str(getattr(self.target_units, "value", self.target_units))
        check(target == "ate" or self.interactions, "target_units", target, f"ate ({CONSTANT_EFFECT})")
        check(self.robust_se in HC_KINDS, "robust_se", self.robust_se, " | ".join(HC_KINDS))


class RegressionEstimator(BaseEstimator):
    config_class = RegressionConfig
    name = "regression"
    has_analytic_se = True
    accepts_weights = True
    cluster_robust_se = True

    def _target_rows(self, t: np.ndarray) -> np.ndarray:
        if self.target_units == "att":
            return t == 1
        if self.target_units == "atc":
            return t == 0
        return np.ones(t.shape[0], dtype=bool)

    def _estimate(self, data):
        t = data.t
        C, D, self._modifier_index = self._blocks(data)
        if D.shape[1]:
            rows = self._target_rows(t)
            self.center_ = np.average(D[rows], axis=0, weights=None if data.w is None else data.w[rows])
            Z = np.column_stack([np.ones(data.n), C, t, t[:, None] * (D - self.center_)])
        else:
            Z = (
                np.column_stack([np.ones(data.n), C, t])
                if C is not data.X
                else np.column_stack([data.design, t])
            )
        if data.w is None:
            beta = ols(Z, data.y)
        else:  # weighted least squares: OLS on rows scaled by sqrt(w)
            root = np.sqrt(data.w)
            beta = ols(Z * root[:, None], data.y * root)
        self._model = (Z, beta)
        self._layout = (C.shape[1] + 1, D)  # the treatment column, the columns interacted with it
        self._weighted_or_clustered = data.w is not None or data.cluster is not None
        if self._modifier_index:
            self.modifier_terms_ = {
                name: {
                    "interaction": float(beta[C.shape[1] + 2 + k]),
                    "std_error": influence_se(
                        self._influence(data, C.shape[1] + 2 + k, with_mean=False), data
                    ),
                }
                for name, k in self._modifier_index.items()
            }
        return float(beta[C.shape[1] + 1])

    def _blocks(self, data) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
        """(covariates C = X plus declared effect modifiers not already in X, the columns interacted with t,
        modifier name -> its position among the interacted columns)."""
        X, names = data.X, list(data.covariates)
        extra = [j for j, m in enumerate(data.modifier_names) if m not in names]
        C = np.column_stack([X, data.modifiers[:, extra]]) if extra else X
        all_names = names + [data.modifier_names[j] for j in extra]
        if self.interactions:
            return C, C, {m: all_names.index(m) for m in data.modifier_names}
        if data.modifiers is not None and len(data.modifier_names):
            return C, data.modifiers, {m: j for j, m in enumerate(data.modifier_names)}
        return C, np.empty((data.n, 0)), {}

    def _std_error(self, data):
        (Z, beta), (q, D) = self._model, self._layout
        if data.w is not None or data.cluster is not None:
            return influence_se(self._influence(data, q), data)
        se = float(np.sqrt(hc_covariance(Z, data.y - Z @ beta, self.robust_se)[q, q]))
        if D.shape[1]:
            rows = self._target_rows(data.t)
            gamma = beta[q + 1 :]
            spread = D[rows] @ gamma
            se = float(np.sqrt(se**2 + spread.var(ddof=1) / rows.sum()))
        return se

    def _influence(self, data, index: int, with_mean: bool = True) -> np.ndarray:
        """Per-row influence of coefficient ``index``, ``n (Z'WZ)^-1 z_i w_i e_i``, plus (for the effect) that of
        the target group's (weighted) mean of the interacted columns: the sandwich's meat, summed by cluster
        for CR1."""
        (Z, beta), (q, D) = self._model, self._layout
        w, n = data.weights, data.n
        bread_row = np.linalg.solve((Z * w[:, None]).T @ Z, np.eye(Z.shape[1])[index])
        influence = n * (Z @ bread_row) * w * (data.y - Z @ beta)
        if with_mean and D.shape[1]:
            rows = self._target_rows(data.t)
            spread = (D - self.center_) @ beta[q + 1 :]
            influence = influence + n * rows * w * spread / (w * rows).sum()
        return influence

    def caveats(self) -> list[str]:
        """One-line warnings about what the number means."""
        if self.interactions or not getattr(self, "n_rows_", 0):
            return []
        return [f"regression with interactions: false estimates a {VARIANCE_WEIGHTED}"]

    def summary(self):
        if self.interactions:
            model = "y ~ 1 + X + t + t x (X - mean of the target group's X)"
            estimand = str(self.target_units).upper()
        else:
            model = "y ~ 1 + X + t (one constant effect)"
            estimand = VARIANCE_WEIGHTED
        out = {
            "model": model,
            "estimand": estimand,
            "interactions": bool(self.interactions),
            "std_error": f"{self.robust_se.upper()} robust",
        }
        if getattr(self, "modifier_terms_", None):
            out["model"] += (
                " + t x (declared effect modifiers - their target mean)" if not self.interactions else ""
            )
            out["effect_modifiers"] = self.modifier_terms_
        if getattr(self, "_weighted_or_clustered", False):
            out["std_error"] = "sandwich (HC0 on the weighted fit; CR1 by data.cluster when set)"
        return out
