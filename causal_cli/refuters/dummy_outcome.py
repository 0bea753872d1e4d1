"""Dummy outcome: replace the outcome by one the treatment cannot affect and re-estimate; expect ~0.

``dummy_type: model`` (default) keeps the confounding: the dummy outcome is the control units' linear
fit of the outcome on the adjustment set plus residuals resampled from that fit, so it depends on the
confounders but not on the treatment. An estimator that does not remove confounding finds an effect
on it. ``dummy_type: permute`` permutes the outcome (independent of everything; a weaker check).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from causal_cli.refuters.base import BaseRefuter, SignificanceConfig, centred_on_zero
from causal_cli.schema import check

DUMMY_TYPES = ("model", "permute")


@dataclass
class DummyOutcomeConfig(SignificanceConfig):
    dummy_type: str = "model"
    #: the verdict is a normal test of the mean: no percentile floor
    percentile_test: ClassVar[bool] = False

    def __post_init__(self):
        super().__post_init__()
        check(self.dummy_type in DUMMY_TYPES, "dummy_type", self.dummy_type, ", ".join(DUMMY_TYPES))


class DummyOutcomeRefuter(BaseRefuter):
    config_class = DummyOutcomeConfig
    name = "dummy_outcome"
    rule = (
        "pass when the effects on the dummy outcome are centred on 0: their mean within sampling error of 0 "
        "(two-sided p >= alpha, the error combining the Monte Carlo error sd/sqrt(simulations) with the "
        "estimator's standard error, since every simulation shares the same covariates and treatment), or "
        "under 5% of the estimate; the p-value tests mean = 0"
    )

    def prepare(self, estimator, data):
        self._fitted = self._residuals = None
        if self.dummy_type != "model":
            return
        control = data.t == 0
        design = data.design
        coef, *_ = np.linalg.lstsq(design[control], data.y[control], rcond=None)
        self._fitted = design @ coef
        self._residuals = data.y[control] - self._fitted[control]

    def modify(self, data, rng):
        if self._fitted is None:
            dummy = rng.permutation(data.y)
        else:
            dummy = self._fitted + rng.choice(self._residuals, data.n, replace=True)
        return data.with_outcome(dummy)

    def verdict(self, estimate, std_error, sims):
        alpha = float(self.alpha)
        mean, sd = float(sims.mean()), float(sims.std(ddof=1))
        kind = self.dummy_type
        # the dummy outcome keeps the data's covariates and treatment, so the estimator's own error in removing
        # the confounding of this sample is shared by all simulations: more simulations cannot average it away
        centred, p, why = centred_on_zero(
            sims, estimate, alpha, shared_se=std_error if kind == "model" else None
        )
        share = f" ({abs(mean) / abs(estimate):.1%} of the estimate)" if estimate else ""
        se = f", SE {std_error:.3g}" if std_error and kind == "model" else ""
        desc = f"effect on a {kind} dummy outcome {mean:.3g} ± {sd:.3g}{share}{se}, p(mean = 0) = {p:.3g}"
        if centred:
            return True, p, f"{desc}: no effect where there is none ({why})"
        cause = (
            "it does not remove the confounding by the adjustment set"
            if kind == "model"
            else "it finds an effect on an outcome unrelated to anything"
        )
        return False, p, f"{desc}: the estimator reports an effect the treatment cannot have; {cause}"
