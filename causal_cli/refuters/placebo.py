"""Placebo treatment: replace the treatment by a permuted (or random) one and re-estimate.

``placebo_type`` is checked when the config is validated: an unknown value is an error, never a
silent fall-back to random data (DoWhy 0.14's functional API turns the string "permute" into random).
With instruments (IV estimators) the instruments are permuted together with the treatment, as DoWhy
does: the first stage survives and only the link to the outcome is broken (a permuted treatment alone
would leave no first stage and arbitrary placebo estimates).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from statistics import NormalDist

from causal_cli.refuters.base import (
    BaseRefuter,
    SignificanceConfig,
    centred_on_zero,
    significance,
)
from causal_cli.schema import check

PLACEBO_TYPES = ("permute", "random")


@dataclass
class PlaceboConfig(SignificanceConfig):
    placebo_type: str = "permute"

    def __post_init__(self):
        super().__post_init__()
        check(self.placebo_type in PLACEBO_TYPES, "placebo_type", self.placebo_type, ", ".join(PLACEBO_TYPES))


class PlaceboRefuter(BaseRefuter):
    config_class = PlaceboConfig
    name = "placebo"
    rule = (
        "pass when placebo effects are centred on 0 (mean within sampling error of 0, or under 5% of the estimate) "
        "and the estimate is distinguishable from them: outside their distribution (p < alpha) and its own "
        "(1 - alpha) CI excludes their mean"
    )

    def prepare(self, estimator, data):
        if data.instruments is not None and self.option("placebo_type") != "permute":
            from causal_cli.errors import ConfigError

            raise ConfigError(
                f"refuters.placebo.placebo_type='{self.option('placebo_type')}' cannot test an instrumental-variable "
                "estimator (a random treatment has no first stage); use placebo_type=permute"
            )

    def modify(self, data, rng):
        if self.option("placebo_type") == "permute":
            rows = rng.permutation(data.n)
            placebo = data.with_treatment(data.t[rows])
            if data.instruments is not None:
                placebo = replace(placebo, instruments=data.instruments[rows])
        else:
            placebo = data.with_treatment((rng.random(data.n) < data.t.mean()).astype(float))
        return placebo if placebo.has_both_groups else None

    def verdict(self, estimate, std_error, sims):
        alpha = float(self.option("alpha"))
        mean, sd = float(sims.mean()), float(sims.std(ddof=1))
        centred, _, why = centred_on_zero(sims, estimate, alpha)
        p, test = significance(estimate, sims)
        # a permuted treatment is unconfounded, so the placebo spread can be narrower than the estimate's own
        # sampling error: the estimate must also stand out by its standard error
        z = abs(estimate - mean) / std_error if std_error else float("inf")
        by_se = z > NormalDist().inv_cdf(1 - alpha / 2)
        desc = f"placebo effects {mean:.3g} ± {sd:.3g}; estimate {estimate:.3g}, p = {p:.3g} ({test}), {z:.1f} SE away"
        if not centred:
            return (
                False,
                p,
                (
                    f"{desc}: placebo effects are not centred on 0, so the estimator finds an effect of a treatment "
                    "that does nothing; check that it uses the treatment column"
                ),
            )
        if p >= alpha or not by_se:
            return (
                False,
                p,
                (
                    f"{desc}: the estimate is not distinguishable from placebo effects "
                    f"({'p ≥ ' + str(alpha) if p >= alpha else 'within its own CI'}); "
                    "the data do not show an effect larger than chance"
                ),
            )
        return True, p, f"{desc}: placebo effects centred on 0 ({why}) and the estimate lies outside them"
