"""Placebo treatment: replace the treatment by a permuted (or random) one and re-estimate."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from causal_cli.refuters.base import BaseRefuter, empirical_p_value
from causal_cli.schema import RefuterConfig


@dataclass
class PlaceboConfig(RefuterConfig):
    placebo_type: str = "permute"
    alpha: float = 0.05


class PlaceboRefuter(BaseRefuter):
    config_class = PlaceboConfig
    name = "placebo"
    rule = (
        "pass when placebo effects are centred on 0 and the estimate lies outside their distribution "
        "(empirical p-value < alpha)"
    )

    def simulate(self, estimator, data, rng):
        kind = self.options.get("placebo_type", "permute")
        if kind == "permute":
            placebo = rng.permutation(data.t)
        elif kind == "random":
            placebo = (rng.random(data.n) < data.t.mean()).astype(float)
        else:
            from causal_cli.errors import ConfigError

            raise ConfigError(f"refuters.placebo.placebo_type='{kind}'; allowed: permute, random")
        if placebo.min() == placebo.max():
            return float("nan")
        return estimator.estimate(data.with_treatment(placebo))

    def verdict(self, estimate, std_error, sims):
        alpha = float(self.options.get("alpha", 0.05))
        finite = sims[np.isfinite(sims)]
        mean, sd = float(finite.mean()), float(finite.std(ddof=1))
        p = empirical_p_value(estimate, finite)
        # centred: the placebo mean is within sampling error of 0 (3 standard errors of the mean),
        # or negligible next to the estimate
        centred = abs(mean) <= 3 * sd / np.sqrt(finite.size) or abs(mean) <= 0.05 * abs(estimate)
        outside = p < alpha
        passed = bool(centred and outside)
        desc = f"placebo effects {mean:.3g} ± {sd:.3g}; estimate {estimate:.3g}, p = {p:.3g}"
        if passed:
            return True, p, f"{desc}: placebo centred on 0 and the estimate lies outside it"
        if not centred:
            return False, p, f"{desc}: placebo effects are not centred on 0 (the estimator sees an effect of nothing)"
        return False, p, f"{desc}: the estimate is not distinguishable from placebo effects (p ≥ {alpha})"
