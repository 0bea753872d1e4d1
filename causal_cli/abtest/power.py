"""Planning a two-arm test: sample size for a minimum detectable effect (MDE), or the MDE for a sample size.

Two-sided z-test for a difference in means with allocation share ``ratio`` in treatment:
n_total = (z_{1-alpha/2} + z_{power})^2 * sd^2 * (1/ratio + 1/(1 - ratio)) / mde^2.
CUPED with a pre-period covariate correlated ``rho`` with the metric shrinks sd^2 by (1 - rho^2).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict, dataclass

from causal_cli.errors import ConfigError


@dataclass(frozen=True)
class PowerAnswer:
    n_total: int
    n_control: int
    n_treatment: int
    mde: float
    mde_relative: float | None
    sd: float
    effective_sd: float
    alpha: float
    power: float
    ratio: float
    cuped_rho: float

    def to_dict(self) -> dict:
        return asdict(self)


def _answer(arms: tuple[int, int], mde: float, baseline_mean, sd, effective_sd, settings) -> PowerAnswer:
    """The answer for ``arms`` = (control, treatment) users; ``settings`` = (alpha, power, ratio, cuped_rho)."""
    alpha, power, ratio, cuped_rho = settings
    return PowerAnswer(
        n_total=arms[0] + arms[1],
        n_control=arms[0],
        n_treatment=arms[1],
        mde=float(mde),
        mde_relative=mde / baseline_mean if baseline_mean else None,
        sd=float(sd),
        effective_sd=effective_sd,
        alpha=alpha,
        power=power,
        ratio=ratio,
        cuped_rho=cuped_rho,
    )


def _check(alpha: float, power: float, ratio: float, sd: float, cuped_rho: float) -> None:
    if not 0 < alpha < 1:
        raise ConfigError(f"alpha={alpha} is out of range; allowed: a number strictly between 0 and 1")
    if not 0 < power < 1:
        raise ConfigError(f"power={power} is out of range; allowed: a number strictly between 0 and 1")
    if not 0 < ratio < 1:
        raise ConfigError(
            f"ratio={ratio} is out of range; allowed: the treatment share, strictly between 0 and 1"
        )
    if not sd > 0:
        raise ConfigError(f"sd={sd} is out of range; allowed: a standard deviation > 0")
    if not 0 <= cuped_rho < 1:
        raise ConfigError(f"cuped_rho={cuped_rho} is out of range; allowed: a correlation in [0, 1)")


def _z_sum(alpha: float, power: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(1 - alpha / 2) + norm.ppf(power))


def sample_size(
    mde: float,
    sd: float,
    alpha: float = 0.05,
    power: float = 0.8,
    ratio: float = 0.5,
    cuped_rho: float = 0.0,
    baseline_mean: float | None = None,
) -> PowerAnswer:
    """Users needed to detect an absolute effect ``mde`` with probability ``power``."""
    _check(alpha, power, ratio, sd, cuped_rho)
    if not mde > 0:
        raise ConfigError(f"mde={mde} is out of range; allowed: an absolute effect > 0")
    effective_sd = sd * math.sqrt(1 - cuped_rho**2)
    n = _z_sum(alpha, power) ** 2 * effective_sd**2 * (1 / ratio + 1 / (1 - ratio)) / mde**2
    arms = (math.ceil(n * (1 - ratio)), math.ceil(n * ratio))
    return _answer(arms, mde, baseline_mean, sd, effective_sd, (alpha, power, ratio, cuped_rho))


def minimum_detectable_effect(
    n_total: int,
    sd: float,
    alpha: float = 0.05,
    power: float = 0.8,
    ratio: float = 0.5,
    cuped_rho: float = 0.0,
    baseline_mean: float | None = None,
) -> PowerAnswer:
    """The smallest absolute effect detected with probability ``power`` by ``n_total`` users."""
    _check(alpha, power, ratio, sd, cuped_rho)
    if not n_total >= 4:
        raise ConfigError(f"n={n_total} is out of range; allowed: an integer >= 4 (users in both arms)")
    effective_sd = sd * math.sqrt(1 - cuped_rho**2)
    mde = _z_sum(alpha, power) * effective_sd * math.sqrt(1 / (n_total * ratio) + 1 / (n_total * (1 - ratio)))
    answer = _answer(
        (int(round(n_total * (1 - ratio))), int(round(n_total * ratio))),
        mde,
        baseline_mean,
        sd,
        effective_sd,
        (alpha, power, ratio, cuped_rho),
    )
    # n_total as asked (the arms' rounded shares can sum to one more or one less)
    return dataclasses.replace(answer, n_total=int(n_total))
