"""DGPs that need more than backdoor adjustment: hidden confounding (IV, front-door) and effect heterogeneity.

All three draw the same power-user covariates as ``product_growth`` (account age, weekly activity), so
the product-growth graph also fits their data: that is the analyst who forgets the hidden confounder.
The ground truth is computed from each unit's simulated potential outcomes, never copied from the config.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from causal_cli.data.synthetic import (
    MOMENTS,
    BaseDGP,
    ProductGrowthDGPConfig,
    adoption_logit,
    confounding_scale,
    power_users,
    sigmoid,
    untreated_spend,
)
from causal_cli.schema import check


@dataclass
class HiddenConfounderConfig(ProductGrowthDGPConfig):
    """Adds unobserved motivation, raising both feature use and spend."""

    hidden_treatment_coef: float = 1.0
    hidden_outcome_coef: float = 5.0

    def __post_init__(self):
        super().__post_init__()
        check(self.hidden_outcome_coef >= 0, "hidden_outcome_coef", self.hidden_outcome_coef, "a number >= 0")


def motivated_users(cfg, rng: np.random.Generator) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Covariates, adoption log-odds and untreated spend, the last two raised by unobserved motivation."""
    n = int(cfg.n)
    covariates, standardized = power_users(rng, n)
    motivation = rng.normal(0.0, 1.0, n)
    logit = (
        adoption_logit(cfg, standardized)
        + confounding_scale(cfg) * float(cfg.hidden_treatment_coef) * motivation
    )
    y0 = untreated_spend(cfg, covariates, rng) + float(cfg.hidden_outcome_coef) * motivation
    return covariates, logit, y0


@dataclass
class IVPromoDGPConfig(HiddenConfounderConfig):
    kind: str = "iv_promo"
    promo_share: float = 0.5
    promo_log_odds: float = 2.0

    def __post_init__(self):
        super().__post_init__()
        check(0 < self.promo_share < 1, "promo_share", self.promo_share, "a share strictly between 0 and 1")


class IVPromoDGP(BaseDGP):
    """A randomized promo email nudges feature use; hidden motivation drives both use and spend.

    promo_email ~ Bernoulli(promo_share), independent of everything (randomized);
    motivation ~ N(0, 1), unobserved;
    logit P(feature_used) = adoption_logit(covariates) + promo_log_odds * promo
                            + scale * hidden_treatment_coef * motivation;
    spend = untreated_spend + hidden_outcome_coef * motivation + true_effect * feature_used.
    The effect is constant, so the IV (complier) effect, ATE, ATT and ATC coincide; adjusting for the
    observed covariates leaves the motivation path open.
    """

    config_class = IVPromoDGPConfig
    description = "randomized promo email nudges feature use; unobserved motivation confounds use and spend"
    treatment_column = "feature_used"

    def simulate(self, rng):
        cfg = self.cfg
        n = int(cfg.n)
        covariates, logit, y0 = motivated_users(cfg, rng)
        promo = (rng.random(n) < float(cfg.promo_share)).astype(np.int64)
        logit = logit + float(cfg.promo_log_odds) * promo
        t = (rng.random(n) < sigmoid(logit)).astype(np.int64)
        effects = np.full(n, float(cfg.true_effect))
        frame = pd.DataFrame(
            {**covariates, "promo_email": promo, "feature_used": t, "spend": y0 + effects * t}
        )
        return frame, effects


@dataclass
class FrontdoorOnboardingDGPConfig(HiddenConfounderConfig):
    kind: str = "frontdoor_onboarding"
    onboarding_rate: float = 0.25
    onboarding_uplift: float = 0.5

    def __post_init__(self):
        super().__post_init__()
        rate, uplift = self.onboarding_rate, self.onboarding_uplift
        check(0 <= rate < 1, "onboarding_rate", rate, "a probability in [0, 1)")
        check(
            0 < uplift <= 1 - rate,
            "onboarding_uplift",
            uplift,
            f"a number in (0, 1 - onboarding_rate = {1 - rate}]",
        )


class FrontdoorOnboardingDGP(BaseDGP):
    """The feature raises spend only by getting users through onboarding; hidden motivation confounds.

    motivation ~ N(0, 1), unobserved; feature use as in ``product_growth`` plus motivation;
    onboarding_completed(t) = [u < onboarding_rate + onboarding_uplift * t], one u ~ U(0, 1) per user
    (so both potential mediator values are simulated); motivation does not affect onboarding;
    spend(t) = untreated_spend + hidden_outcome_coef * motivation + per_onboarding * onboarding_completed(t),
    with per_onboarding = true_effect / onboarding_uplift. Each user's effect is
    per_onboarding * (onboarding_completed(1) - onboarding_completed(0)); its mean is about true_effect.
    """

    config_class = FrontdoorOnboardingDGPConfig
    description = (
        "the feature lifts spend only through onboarding completion; unobserved motivation confounds"
    )
    treatment_column = "feature_used"

    def simulate(self, rng):
        cfg = self.cfg
        n = int(cfg.n)
        covariates, logit, y0 = motivated_users(cfg, rng)
        t = (rng.random(n) < sigmoid(logit)).astype(np.int64)
        u = rng.random(n)
        rate, uplift = float(cfg.onboarding_rate), float(cfg.onboarding_uplift)
        onboarded = {arm: (u < rate + uplift * arm).astype(np.int64) for arm in (0, 1)}
        per_onboarding = float(cfg.true_effect) / uplift
        spend = {arm: y0 + per_onboarding * onboarded[arm] for arm in (0, 1)}
        effects = spend[1] - spend[0]
        frame = pd.DataFrame(
            {
                **covariates,
                "feature_used": t,
                "onboarding_completed": np.where(t == 1, onboarded[1], onboarded[0]),
                "spend": np.where(t == 1, spend[1], spend[0]),
            }
        )
        return frame, effects


@dataclass
class HeterogeneousDGPConfig(ProductGrowthDGPConfig):
    kind: str = "heterogeneous"
    effect_slope: dict[str, float] = field(default_factory=lambda: {"account_age": 2.0, "activity": 1.5})

    def __post_init__(self):
        super().__post_init__()
        allowed = ", ".join(MOMENTS)
        check(
            set(self.effect_slope) <= set(MOMENTS),
            "effect_slope",
            dict(self.effect_slope),
            f"keys among {allowed}",
        )


class HeterogeneousDGP(BaseDGP):
    """Power users adopt the feature more AND gain more from it, so ATT > ATE > ATC.

    Covariates, adoption and untreated spend as in ``product_growth``; each user's effect is
    true_effect + sum(effect_slope * standardized covariate) ($ per SD), so the population ATE is
    true_effect and the treated (power users) gain more than the untreated.
    """

    config_class = HeterogeneousDGPConfig
    description = "power users adopt the feature more and gain more from it: ATT, ATE and ATC differ"
    treatment_column = "feature_used"

    def simulate(self, rng):
        cfg = self.cfg
        n = int(cfg.n)
        covariates, standardized = power_users(rng, n)
        t = (rng.random(n) < sigmoid(adoption_logit(cfg, standardized))).astype(np.int64)
        effects = np.full(n, float(cfg.true_effect))
        for name, slope in cfg.effect_slope.items():
            effects += float(slope) * standardized[name]
        y0 = untreated_spend(cfg, covariates, rng)
        frame = pd.DataFrame({**covariates, "feature_used": t, "spend": y0 + effects * t})
        return frame, effects
