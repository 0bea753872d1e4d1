"""Instrumental variables: the Wald ratio for one binary instrument, two-stage least squares otherwise.

With one binary instrument and no controls, 2SLS is exactly the Wald ratio
(E[y | z=1] - E[y | z=0]) / (E[t | z=1] - E[t | z=0]), so one code path serves both. The
standard error is the heteroskedasticity-robust (HC1) 2SLS sandwich. The estimand is the effect for
compliers (units whose treatment the instrument moves), which is the ATE when the effect is the same
for everyone. A weak instrument makes 2SLS drift towards the confounded estimate with a CI that
cannot be trusted, so ``fit`` refuses one whose first-stage F is below ``min_first_stage_f``
(10: Staiger & Stock's rule of thumb).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from causal_cli.errors import EstimationError
from causal_cli.estimators.base import BaseEstimator
from causal_cli.estimators.linear import influence, least_squares, robust_covariance
from causal_cli.schema import EstimatorConfig, check

#: Staiger & Stock (1997): below this first-stage F the instrument is weak
WEAK_INSTRUMENT_F = 10.0


def only_ate(target_units) -> None:
    """IV and front-door estimate one population effect; ATT/ATC would be mislabelled."""
    value = str(getattr(target_units, "value", target_units))
    check(value == "ate", "target_units", value, "ate (this estimator does not estimate ATT or ATC)")


@dataclass
class IVConfig(EstimatorConfig):
    name: str = "iv"
    controls: bool = True
    min_first_stage_f: float = WEAK_INSTRUMENT_F

    def __post_init__(self):
        super().__post_init__()
        only_ate(self.target_units)
        check(self.min_first_stage_f >= 0, "min_first_stage_f", self.min_first_stage_f, "a number >= 0")


class IVEstimator(BaseEstimator):
    config_class = IVConfig
    name = "iv"
    identification = "iv"
    has_analytic_se = True

    def _designs(self, data) -> tuple[np.ndarray, np.ndarray]:
        """(instrument matrix [1, controls, instruments], regressors [1, controls, t])."""
        if data.instruments is None or data.instruments.shape[1] == 0:
            raise EstimationError(
                "estimator 'iv' needs an instrument; declare it in graph.instruments (DoWhy must identify it)"
            )
        exogenous = np.column_stack([np.ones(data.n), data.X if self.controls else np.empty((data.n, 0))])
        return np.column_stack([exogenous, data.instruments]), np.column_stack([exogenous, data.t])

    def _estimate(self, data):
        instruments, regressors = self._designs(data)
        first_coef, _ = least_squares(instruments, data.t)
        projected = regressors.copy()
        projected[:, -1] = instruments @ first_coef
        coef, _ = least_squares(projected, data.y)
        self._projected = projected
        self._residuals = data.y - regressors @ coef
        return float(coef[-1])

    def _std_error(self, data):
        return float(np.sqrt(robust_covariance(influence(self._projected, self._residuals))[-1, -1]))

    def first_stage_f(self, data) -> float:
        """Robust Wald F of the instruments in the regression of treatment on [1, controls, instruments]."""
        instruments, _ = self._designs(data)
        q = data.instruments.shape[1]
        coef, residuals = least_squares(instruments, data.t)
        cov = robust_covariance(influence(instruments, residuals))[-q:, -q:]
        slopes = coef[-q:]
        return float(slopes @ np.linalg.pinv(cov) @ slopes / q)

    def fit(self, data, executor=None, progress=None):
        self._check(data)
        names = ", ".join(data.instrument_names) or "instrument"
        if data.instruments is not None:
            constant = [i for i in range(data.instruments.shape[1]) if np.ptp(data.instruments[:, i]) == 0]
            if constant:
                raise EstimationError(
                    f"instrument column(s) {names} do not vary; an instrument must move the treatment"
                )
        self.first_stage_f_ = self.first_stage_f(data)
        if not self.first_stage_f_ >= float(self.min_first_stage_f):
            raise EstimationError(
                f"instrument(s) {names} too weak: first-stage F = {self.first_stage_f_:.2f} < "
                f"estimator.min_first_stage_f = {float(self.min_first_stage_f):g} (Staiger-Stock rule of thumb); "
                "a weak instrument pulls the estimate towards the confounded one and its CI cannot be trusted"
            )
        self.method_ = self._method(data)
        return super().fit(data, executor, progress)

    def _method(self, data) -> str:
        one_binary = data.instruments.shape[1] == 1 and np.unique(data.instruments[:, 0]).size == 2
        no_controls = not self.controls or data.X.shape[1] == 0
        return "wald" if one_binary and no_controls else "2sls"

    def summary(self):
        return {
            "method": getattr(self, "method_", None),
            "first_stage_f": getattr(self, "first_stage_f_", None),
            "min_first_stage_f": float(self.min_first_stage_f),
            "controls": bool(self.controls),
            "estimand": "effect on compliers (LATE); equals the ATE when the effect is constant",
        }
