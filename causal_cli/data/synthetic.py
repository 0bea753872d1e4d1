"""Simulated data with known ground truth: structural causal models consistent with a graph."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from causal_cli.data import Dataset, ground_truth
from causal_cli.schema import DataConfig, DGPConfig

CONFOUNDING_SCALE = {"none": 0.0, "weak": 0.35, "strong": 1.0}


def confounding_scale(cfg) -> float:
    return CONFOUNDING_SCALE[str(getattr(cfg.confounding, "value", cfg.confounding))]


def sigmoid(x: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(-x))`` in one new array (the same operations, in place: at 10M rows 3 fewer 80 MB arrays)."""
    out = np.negative(x)
    np.exp(out, out=out)
    out += 1.0
    return np.divide(1.0, out, out=out)


#: mean and SD of the covariates: account_age ~ Gamma(2, 1.5) years, activity ~ Gamma(4, 2.5) sessions/week
MOMENTS = {"account_age": (3.0, np.sqrt(2.0) * 1.5), "activity": (10.0, 2.0 * 2.5)}


def power_users(rng: np.random.Generator, n: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The observed covariates and their standardized versions (population moments)."""
    covariates = {"account_age": rng.gamma(2.0, 1.5, n), "activity": rng.gamma(4.0, 2.5, n)}
    standardized = {}
    for name, x in covariates.items():
        z = standardized[name] = x - MOMENTS[name][0]
        z /= MOMENTS[name][1]
    return covariates, standardized


def adoption_logit(cfg, standardized: dict[str, np.ndarray]) -> np.ndarray:
    """Log-odds of feature use from the observed covariates (scaled by ``cfg.confounding``)."""
    scale = confounding_scale(cfg)
    logit = np.full(int(cfg.n), float(cfg.treatment_intercept))
    term = np.empty_like(logit)
    for name, coef in cfg.treatment_coef.items():
        logit += np.multiply(scale * float(coef), standardized[name], out=term)
    return logit


def untreated_spend(cfg, covariates: dict[str, np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """Spend without the feature: baseline + covariate terms + noise."""
    y0 = np.full(int(cfg.n), float(cfg.baseline_spend))
    term = np.empty_like(y0)
    for name, coef in cfg.outcome_coef.items():
        y0 += np.multiply(float(coef), covariates[name], out=term)
    del term
    y0 += rng.normal(0.0, float(cfg.noise_sd), int(cfg.n))
    return y0


class BaseDGP:
    """A DGP draws confounders, treatment and both potential outcomes from one seeded generator."""

    config_class = DGPConfig
    description = ""

    def __init__(self, cfg):
        self.cfg = cfg

    def simulate(self, rng: np.random.Generator) -> tuple[pd.DataFrame, np.ndarray]:
        """Return the observed table and each unit's true effect (y1 - y0)."""
        raise NotImplementedError

    def dataset(self) -> Dataset:
        rng = np.random.default_rng(np.random.SeedSequence(int(self.cfg.seed)))
        frame, effects = self.simulate(rng)
        treatment = frame[self.treatment_column].to_numpy()
        return Dataset(
            frame=frame,
            reference=ground_truth(effects, treatment),
            reference_kind="ground_truth",
            description=self.description,
            info={"unit_effects": effects},
        )

    treatment_column = "treatment"


@dataclass
class ProductGrowthDGPConfig(DGPConfig):
    kind: str = "product_growth"
    baseline_spend: float = 20.0
    treatment_intercept: float = -0.2
    treatment_coef: dict[str, float] = field(default_factory=lambda: {"account_age": 0.9, "activity": 0.9})
    outcome_coef: dict[str, float] = field(default_factory=lambda: {"account_age": 1.6, "activity": 0.65})
    #: $ of extra uplift per SD of weekly activity (0 = the same effect for everyone)
    heterogeneity: float = 0.0


class ProductGrowthDGP(BaseDGP):
    """Power users (older accounts, more activity) use the feature more and spend more.

    account_age ~ Gamma(2, 1.5) years; activity ~ Gamma(4, 2.5) sessions/week;
    logit P(feature_used) = intercept + scale * sum(coef * standardized confounder);
    spend = baseline + sum(coef * confounder) + effect * feature_used + noise, with
    effect = true_effect + heterogeneity * standardized activity. With the default heterogeneity 0 the
    effect is the same for everyone, so ATE = ATT = ATC = true_effect exactly; otherwise active users gain more.
    """

    config_class = ProductGrowthDGPConfig
    description = "simulated product logs: feature usage and spend, confounded by power use"
    treatment_column = "feature_used"

    def simulate(self, rng):
        covariates, standardized = power_users(rng, int(self.cfg.n))
        t = (rng.random(int(self.cfg.n)) < sigmoid(adoption_logit(self.cfg, standardized))).astype(np.int64)
        y0 = untreated_spend(self.cfg, covariates, rng)
        activity = standardized.pop("activity")
        effects = np.multiply(float(getattr(self.cfg, "heterogeneity", 0.0)), activity, out=activity)
        effects += float(self.cfg.true_effect)
        spend = np.multiply(effects, t)
        spend += y0  # y0 + effects * t, in place
        del y0, standardized
        # copy=False: the columns are not copied into one block (at 10M rows, 0.3 GB and a second less)
        frame = pd.DataFrame({**covariates, "feature_used": t, "spend": spend}, copy=False)
        return frame, effects


@dataclass
class SyntheticDataConfig(DataConfig):
    source: str = "synthetic"


class SyntheticSource:
    """Simulate from ``cfg.dgp``; the reference is the DGP's computed ground truth."""

    config_class = SyntheticDataConfig

    def __init__(self, cfg):
        self.cfg = cfg

    def load(self, run_cfg, graph, base_dir=None) -> Dataset:
        from causal_cli import registry
        from causal_cli.errors import ConfigError

        if run_cfg.get("dgp") is None:
            raise ConfigError("data=synthetic needs a dgp; choose one with dgp=NAME (see `causal list dgp`)")
        dgp = registry.load("dgp", run_cfg.dgp.kind)(run_cfg.dgp)
        return dgp.dataset()
