"""Data subset: re-estimate on random subsets of the rows (drawn without replacement).

Nested subsets of an asymptotically linear estimator spread by ``SE * sqrt((1 - f) / f)`` around the
full-data estimate (f = subset_fraction), so the subsets test two things: that the estimate is not an
artefact of the particular rows (their mean agrees with it) and that the reported standard error is
honest (the subsampling standard error ``sd * sqrt(f / (1 - f))`` is not much larger than it).
The subsampling SE is exact for linear estimators; for propensity score matching it ran about 25%
above the true sampling spread (60 simulated product_growth data sets of 5,000 rows), hence a tolerance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from causal_cli.refuters.base import (
    BaseRefuter,
    ResamplingConfig,
    implied_se_check,
    significance,
)
from causal_cli.schema import check


@dataclass
class DataSubsetConfig(ResamplingConfig):
    subset_fraction: float = 0.8

    def __post_init__(self):
        super().__post_init__()
        check(
            0 < self.subset_fraction < 1,
            "subset_fraction",
            self.subset_fraction,
            "a number strictly between 0 and 1",
        )


class DataSubsetRefuter(BaseRefuter):
    config_class = DataSubsetConfig
    name = "data_subset"
    rule = (
        "pass when the estimate lies within the subset estimates' distribution (p >= alpha) and their spread "
        "implies a standard error at most `max_se_ratio` times the reported one"
    )

    def subset_size(self, n: int) -> int:
        return int(min(n - 1, max(2, round(float(self.subset_fraction) * n))))

    def modify(self, data, rng):
        # the first subset_size rows of a permutation, in row order (a mask: O(n), no sort)
        chosen = np.zeros(data.n, dtype=bool)
        chosen[rng.permutation(data.n)[: self.subset_size(data.n)]] = True
        subset = data.take(np.flatnonzero(chosen))
        return subset if subset.has_both_groups else None

    def implied_se(self, sims: np.ndarray) -> float:
        f = float(self.subset_fraction)
        return float(sims.std(ddof=1) * np.sqrt(f / (1 - f)))

    def verdict(self, estimate, std_error, sims):
        alpha = float(self.alpha)
        mean, sd = float(sims.mean()), float(sims.std(ddof=1))
        p, test = significance(estimate, sims)
        se_ok, se_text = implied_se_check(self.implied_se(sims), std_error, float(self.max_se_ratio))
        desc = (
            f"subset estimates {mean:.4g} ± {sd:.3g} ({float(self.subset_fraction):.0%} of rows); "
            f"estimate {estimate:.4g}, p = {p:.3g} ({test}); {se_text}"
        )
        if p < alpha:
            return (
                False,
                p,
                (
                    f"{desc}: the estimate lies outside what its own subsets give, so it changes with the sample "
                    "(small-sample bias, or an estimate that depends on the number of rows)"
                ),
            )
        if not se_ok:
            return (
                False,
                p,
                (
                    f"{desc}: the estimate varies more across subsets than its standard error allows; it hinges on "
                    "a few rows or the reported CI is too narrow (try estimator.ci.method=bootstrap)"
                ),
            )
        return True, p, f"{desc}: the subsets agree with the estimate and its standard error"

    def details(self, estimate, std_error, sims):
        return {
            "subset_rows_fraction": float(self.subset_fraction),
            "subsampling_se": self.implied_se(sims),
        }
