"""Random common cause: add an independent random covariate to the adjustment set and re-estimate."""

from __future__ import annotations

from dataclasses import dataclass

from causal_cli.refuters.base import BaseRefuter, significance
from causal_cli.schema import RefuterConfig, check


@dataclass
class RandomCommonCauseConfig(RefuterConfig):
    tolerance: float = 0.05

    def __post_init__(self):
        super().__post_init__()
        check(self.tolerance > 0, "tolerance", self.tolerance, "a number > 0 (relative, e.g. 0.05 = 5%)")


class RandomCommonCauseRefuter(BaseRefuter):
    config_class = RandomCommonCauseConfig
    name = "random_common_cause"
    rule = (
        "pass when the mean new estimate is within `tolerance` (relative to the estimate, or to its standard "
        "error when that is larger) of the original estimate"
    )

    def modify(self, data, rng):
        return data.with_covariate(rng.standard_normal(data.n), "random_common_cause")

    def verdict(self, estimate, std_error, sims):
        tol = float(self.tolerance)
        mean = float(sims.mean())
        scale = max(abs(estimate), std_error or 0.0)
        shift = abs(mean - estimate) / scale if scale > 0 else 0.0
        p, _ = significance(estimate, sims)
        desc = f"new effect {mean:.4g} vs estimate {estimate:.4g} ({shift:.1%} shift, tolerance {tol:.0%})"
        if shift <= tol:
            return True, p, f"{desc}: an irrelevant confounder leaves the estimate unchanged"
        return (
            False,
            p,
            (
                f"{desc}: adding an irrelevant covariate moves the estimate, so it depends on what is adjusted for, "
                "not only on the confounders (e.g. distances on unscaled covariates, or a propensity model whose "
                "penalty shrinks small-scale confounders); standardise the covariates or change the estimator"
            ),
        )
