"""Random common cause: add an independent random covariate to the adjustment set and re-estimate."""

from __future__ import annotations

from dataclasses import dataclass

from causal_cli.refuters.base import BaseRefuter, centred_on_zero, significance
from causal_cli.schema import RefuterConfig, check
from causal_cli.simulate import spare_row

#: a shift beyond tolerance fails only when it is significant at this level against the estimate's sampling error
SHIFT_ALPHA = 0.05


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
        "error when that is larger) of the original estimate, or within its sampling error: the shift is "
        "tested against the estimate's standard error (and the simulations' Monte Carlo error), two-sided at "
        f"{SHIFT_ALPHA:g}, as dummy_outcome tests its mean"
    )

    def modify(self, data, rng):
        block = spare_row(data.columns)
        if block is None:
            return data.with_covariate(rng.standard_normal(data.n), "random_common_cause")
        # with_covariate's values, drawn straight into the row the data were given room for (no copy)
        rng.standard_normal(out=block[-1])
        return data.with_covariate_row(block, "random_common_cause")

    def verdict(self, estimate, std_error, sims):
        tol = float(self.tolerance)
        mean = float(sims.mean())
        scale = max(abs(estimate), std_error or 0.0)
        shift = abs(mean - estimate) / scale if scale > 0 else 0.0
        p, _ = significance(estimate, sims)
        desc = f"new effect {mean:.4g} vs estimate {estimate:.4g} ({shift:.1%} shift, tolerance {tol:.0%})"
        if shift <= tol:
            return True, p, f"{desc}: an irrelevant confounder leaves the estimate unchanged"
        # A relative tolerance alone ignores sampling error: where the estimate rests on few units (psm on
        # Lalonde's 185 treated men: any extra covariate changes the matches), a refit moves it by a good part
        # of its SE. Like dummy_outcome, test the shift against the estimate's own SE (the refits share the
        # data, so more simulations cannot average that error away) plus the simulations' Monte Carlo error.
        centred, p_shift, _ = centred_on_zero(sims - estimate, estimate, SHIFT_ALPHA, shared_se=std_error)
        against = f"SE {std_error:.4g}, " if std_error else ""
        if centred:
            return (
                True,
                p,
                f"{desc}, within the estimate's sampling error ({against}p = {p_shift:.3g}): an irrelevant "
                "covariate moves it less than its own uncertainty",
            )
        return (
            False,
            p,
            (
                f"{desc}, beyond its sampling error ({against}p = {p_shift:.3g}): adding an irrelevant covariate "
                "moves the estimate, so it depends on what is adjusted for, "
                "not only on the confounders (e.g. distances on unscaled covariates, or a propensity model whose "
                "penalty shrinks small-scale confounders); standardise the covariates or change the estimator"
            ),
        )
