"""Bootstrap: re-estimate on resamples of the rows drawn with replacement; also a percentile CI.

The bootstrap distribution should be centred on the estimate (otherwise the estimator is biased at
this sample size) and its spread should not exceed the reported standard error by much (otherwise
the reported CI is too narrow). Matching estimators are a known case where the bootstrap variance is
not exact (Abadie & Imbens 2008), hence a tolerance (``max_se_ratio``) rather than equality.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from causal_cli.estimators.base import resample
from causal_cli.refuters.base import BaseRefuter, ResamplingConfig, implied_se_check, significance
from causal_cli.schema import check


@dataclass
class BootstrapConfig(ResamplingConfig):
    ci_level: float = 0.95

    def __post_init__(self):
        super().__post_init__()
        check(0 < self.ci_level < 1, "ci_level", self.ci_level, "a number strictly between 0 and 1")


class BootstrapRefuter(BaseRefuter):
    config_class = BootstrapConfig
    name = "bootstrap"
    rule = (
        "pass when the estimate lies within the bootstrap distribution (p >= alpha) and the bootstrap standard "
        "error is at most `max_se_ratio` times the reported one"
    )

    def modify(self, data, rng):
        return resample(data, rng)

    def verdict(self, estimate, std_error, sims):
        alpha = float(self.alpha)
        mean, sd = float(sims.mean()), float(sims.std(ddof=1))
        p, test = significance(estimate, sims)
        se_ok, se_text = implied_se_check(sd, std_error, float(self.max_se_ratio))
        low, high = self.ci(sims)
        level = float(self.ci_level)
        desc = (
            f"bootstrap estimates {mean:.4g} ± {sd:.3g}, {level:.0%} CI [{low:.4g}, {high:.4g}]; "
            f"estimate {estimate:.4g}, p = {p:.3g} ({test}); {se_text}"
        )
        if p < alpha:
            return (
                False,
                p,
                (
                    f"{desc}: resamples of the data do not reproduce the estimate; the estimator is biased at this "
                    "sample size or depends on which rows are present"
                ),
            )
        if not se_ok:
            return (
                False,
                p,
                (
                    f"{desc}: the reported standard error understates the sampling variation; report the bootstrap "
                    "CI instead (estimator.ci.method=bootstrap)"
                ),
            )
        return True, p, f"{desc}: the bootstrap agrees with the estimate and its standard error"

    def ci(self, sims: np.ndarray) -> tuple[float, float]:
        tail = (1 - float(self.ci_level)) / 2
        low, high = np.quantile(sims, [tail, 1 - tail])
        return float(low), float(high)

    def details(self, estimate, std_error, sims):
        low, high = self.ci(sims)
        return {
            "ci_low": low,
            "ci_high": high,
            "ci_level": float(self.ci_level),
            "ci_method": "bootstrap percentile",
            "bootstrap_se": float(sims.std(ddof=1)),
        }
