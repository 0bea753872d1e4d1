"""Random common cause: add an independent random covariate to the adjustment set and re-estimate."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from causal_cli.refuters.base import BaseRefuter, consistency_p_value
from causal_cli.schema import RefuterConfig


@dataclass
class RandomCommonCauseConfig(RefuterConfig):
    tolerance: float = 0.05


class RandomCommonCauseRefuter(BaseRefuter):
    config_class = RandomCommonCauseConfig
    name = "random_common_cause"
    rule = "pass when the mean new estimate is within `tolerance` (relative) of the original estimate"

    def simulate(self, estimator, data, rng):
        return estimator.estimate(data.with_covariate(rng.standard_normal(data.n), "random_common_cause"))

    def verdict(self, estimate, std_error, sims):
        tol = float(self.options.get("tolerance", 0.05))
        finite = sims[np.isfinite(sims)]
        mean = float(finite.mean())
        scale = max(abs(estimate), std_error or 0.0)
        shift = abs(mean - estimate) / scale if scale > 0 else 0.0
        p = consistency_p_value(estimate, finite)
        desc = f"new effect {mean:.4g} vs estimate {estimate:.4g} ({shift:.1%} shift, tolerance {tol:.0%})"
        if shift <= tol:
            return True, p, f"{desc}: an irrelevant confounder leaves the estimate unchanged"
        return False, p, f"{desc}: adding an irrelevant confounder moves the estimate"
