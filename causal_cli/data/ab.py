"""A simulated A/B test on the product story: a feature launch randomized 50/50, spend and sessions.

pre_spend ~ LogNormal with mean ``pre_spend_mean`` and coefficient of variation ``pre_spend_cv``;
activity a = (pre_spend / pre_spend_mean)^0.5; pre_sessions, sessions ~ 1 + Poisson(base_sessions * a);
spend without the feature = spend_intercept + spend_slope * pre_spend + noise, the noise SD chosen so that
corr(pre_spend, spend) = ``pre_correlation`` within each arm (CUPED's variance reduction is its square);
the feature adds ``true_effect`` to every user's spend and leaves sessions unchanged.
variant ~ Bernoulli(treatment_share): 0.5 is the planned split; another value simulates a sample ratio mismatch.

Ground truth (population values, closed form): spend +true_effect (relative lift true_effect / E[spend0]);
sessions 0; revenue per session (sum spend / sum sessions) +true_effect / E[sessions], relative lift as spend's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from causal_cli.data import Dataset, ground_truth
from causal_cli.data.synthetic import BaseDGP
from causal_cli.schema import Confounding, DGPConfig, check


@dataclass
class ABLaunchDGPConfig(DGPConfig):
    kind: str = "ab_launch"
    true_effect: float = 1.0
    confounding: Confounding = Confounding.none
    treatment_share: float = 0.5
    pre_spend_mean: float = 40.0
    pre_spend_cv: float = 0.6
    pre_correlation: float = 0.65
    spend_intercept: float = 6.0
    spend_slope: float = 1.0
    base_sessions: float = 5.0

    def __post_init__(self):
        super().__post_init__()
        check(
            0 < self.treatment_share < 1,
            "treatment_share",
            self.treatment_share,
            "a share strictly between 0 and 1",
        )
        check(self.pre_spend_mean > 0, "pre_spend_mean", self.pre_spend_mean, "a number > 0")
        check(self.pre_spend_cv > 0, "pre_spend_cv", self.pre_spend_cv, "a number > 0")
        check(
            0 < self.pre_correlation < 1, "pre_correlation", self.pre_correlation, "a correlation in (0, 1)"
        )
        check(self.spend_slope > 0, "spend_slope", self.spend_slope, "a number > 0")
        check(self.base_sessions > 0, "base_sessions", self.base_sessions, "a number > 0")


def _lognormal_sigma(cv: float) -> float:
    return math.sqrt(math.log1p(cv**2))


def ab_truth(cfg) -> dict[str, dict[str, float]]:
    """Population effects of the feature on each metric (keys: column, or numerator/denominator)."""
    effect = float(cfg.true_effect)
    spend0 = float(cfg.spend_intercept) + float(cfg.spend_slope) * float(cfg.pre_spend_mean)
    sigma = _lognormal_sigma(float(cfg.pre_spend_cv))
    sessions = 1 + float(cfg.base_sessions) * math.exp(-(sigma**2) / 8)  # E[(X / E X)^0.5] for a log-normal X
    return {
        "spend": {"difference": effect, "relative_lift": effect / spend0},
        "sessions": {"difference": 0.0, "relative_lift": 0.0},
        "spend/sessions": {"difference": effect / sessions, "relative_lift": effect / spend0},
    }


class ABLaunchDGP(BaseDGP):
    config_class = ABLaunchDGPConfig
    description = "simulated A/B test: feature launch randomized by user; spend, sessions, pre-period spend"
    treatment_column = "variant"

    def simulate(self, rng):
        cfg = self.cfg
        n = int(cfg.n)
        sigma = _lognormal_sigma(float(cfg.pre_spend_cv))
        mu = math.log(float(cfg.pre_spend_mean)) - sigma**2 / 2
        pre_spend = rng.lognormal(mu, sigma, n)
        activity = np.sqrt(pre_spend / float(cfg.pre_spend_mean))
        pre_sessions = 1 + rng.poisson(float(cfg.base_sessions) * activity)
        sessions = 1 + rng.poisson(float(cfg.base_sessions) * activity)
        sd_pre = float(cfg.pre_spend_mean) * float(cfg.pre_spend_cv)
        rho = float(cfg.pre_correlation)
        noise_sd = float(cfg.spend_slope) * sd_pre * math.sqrt(1 / rho**2 - 1)
        spend0 = (
            float(cfg.spend_intercept) + float(cfg.spend_slope) * pre_spend + rng.normal(0.0, noise_sd, n)
        )
        variant = (rng.random(n) < float(cfg.treatment_share)).astype(np.int64)
        effects = np.full(n, float(cfg.true_effect))
        frame = pd.DataFrame(
            {
                "variant": variant,
                "pre_spend": pre_spend,
                "pre_sessions": pre_sessions,
                "sessions": sessions,
                "spend": spend0 + effects * variant,
            }
        )
        return frame, effects

    def dataset(self) -> Dataset:
        rng = np.random.default_rng(np.random.SeedSequence(int(self.cfg.seed)))
        frame, effects = self.simulate(rng)
        return Dataset(
            frame=frame,
            reference=ground_truth(effects, frame["variant"].to_numpy()),
            reference_kind="ground_truth",
            description=self.description,
            info={"ab_truth": ab_truth(self.cfg)},
        )
