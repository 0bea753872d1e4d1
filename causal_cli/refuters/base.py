"""Refuter base: seeded, parallel simulations that re-fit the whole estimator on modified data.

A refuter says how one simulation modifies the data (:meth:`BaseRefuter.modify`) and gives each
simulation its own random stream spawned from the run's seed (``SeedSequence.spawn``); the executor it
is handed (:mod:`causal_cli.simulate`) runs them, so the numbers are identical whichever runs them
(this process, all local cores, a Ray cluster). Every simulation re-fits the estimator, propensity model included, on a fresh
:class:`EstimationData`; nothing fitted on the original data (DoWhy's stale ``propensity_score``
column) leaks into a simulation.

All refuters share one significance test (:func:`significance`) and one "centred on 0" test
(:func:`centred_on_zero`), so their verdicts mean the same thing.
"""

from __future__ import annotations

import time
import zlib
from dataclasses import MISSING, dataclass, fields
from statistics import NormalDist
from typing import Any, ClassVar

import numpy as np

from causal_cli.parameters import Parameters, signature
from causal_cli.results import RefutationResult
from causal_cli.schema import RefuterConfig, check

#: from this many simulations on, p-values are percentile ranks; below, a normal approximation (DoWhy's rule)
EMPIRICAL_MIN_SIMULATIONS = 100
#: a mean simulated effect below this share of the estimate counts as 0 whatever its standard error
NEGLIGIBLE_SHARE = 0.05


@dataclass
class SignificanceConfig(RefuterConfig):
    """Options of a refuter whose verdict uses a significance level."""

    alpha: float = 0.05
    #: the verdict (or a number reported beside it) uses percentile p-values: refuse an unreachable alpha
    percentile_test: ClassVar[bool] = True

    def __post_init__(self):
        super().__post_init__()
        check(0 < self.alpha < 1, "alpha", self.alpha, "a number strictly between 0 and 1")
        if self.percentile_test:
            check_reachable_alpha(int(self.num_simulations), float(self.alpha))


def smallest_percentile_p(num_simulations: int) -> float | None:
    """The smallest two-sided p-value :func:`significance` can give, or None when it uses the normal approximation."""
    if num_simulations < EMPIRICAL_MIN_SIMULATIONS:
        return None
    return 2 / (num_simulations + 1)


def check_reachable_alpha(num_simulations: int, alpha: float) -> None:
    """Refuse a percentile test that can never reach p < alpha (it would never fail, or never pass)."""
    floor = smallest_percentile_p(num_simulations)
    if floor is None or floor < alpha:
        return
    from causal_cli.errors import ConfigError

    needed = max(EMPIRICAL_MIN_SIMULATIONS, int(np.floor(2 / alpha)))
    while 2 / (needed + 1) >= alpha:
        needed += 1
    raise ConfigError(
        f"num_simulations={num_simulations} cannot reach p < alpha={alpha:g} (smallest p = 2/{num_simulations + 1} "
        f"= {floor:.3g}); use num_simulations >= {needed} (or < {EMPIRICAL_MIN_SIMULATIONS}, a normal "
        f"approximation) or alpha > {floor:.3g}"
    )


@dataclass
class ResamplingConfig(SignificanceConfig):
    """Options of a refuter that re-estimates on resampled rows and checks the reported standard error."""

    max_se_ratio: float = 2.0

    def __post_init__(self):
        super().__post_init__()
        check(self.max_se_ratio >= 1, "max_se_ratio", self.max_se_ratio, "a number >= 1")


class BaseRefuter(Parameters):
    config_class: ClassVar[type] = RefuterConfig
    name: ClassVar[str] = ""
    #: the verdict rule, stated in the output
    rule: ClassVar[str] = ""

    @classmethod
    def param_defaults(cls) -> dict[str, Any]:
        """Every field of :attr:`config_class` with its default: adding an option is one field (and its YAML)."""
        return {
            spec.name: spec.default_factory() if spec.default_factory is not MISSING else spec.default
            for spec in fields(cls.config_class)
        }

    @classmethod
    def from_config(cls, cfg) -> BaseRefuter:
        from omegaconf import OmegaConf

        values = (
            OmegaConf.to_container(cfg, resolve=True, enum_to_str=True) if not isinstance(cfg, dict) else cfg
        )
        return cls(**dict(values))

    def to_config(self):
        """The config dataclass of these parameters; a bad value is a ConfigError naming ``refuters.<name>.<key>``."""
        from causal_cli.errors import ConfigError

        try:
            return self.config_class(**self.get_params())
        except ConfigError as exc:
            raise ConfigError(f"refuters.{self.name}.{exc}") from None

    def _params_set(self) -> None:
        """Refuter options are checked when set (by the config dataclass, the one place they are validated)."""
        self.to_config()

    @property
    def options(self) -> dict[str, Any]:
        """The options besides ``num_simulations``, as results.json and refutations.csv record them."""
        return {k: v for k, v in self.get_params().items() if k != "num_simulations"}

    def prepare(self, estimator, data) -> None:
        """Compute, once and before any simulation, what every simulation shares (kept on ``self``)."""

    def num_tasks(self) -> int:
        return int(self.num_simulations)

    def modify(self, data, rng: np.random.Generator):
        """One simulation's modified data (drawn with ``rng``), or None when it can give no estimate."""
        raise NotImplementedError

    def modify_task(self, data, index: int, rng: np.random.Generator):
        """Simulation number ``index``; refuters whose simulations differ by more than their stream override it."""
        return self.modify(data, rng)

    def verdict(
        self, estimate: float, std_error: float, sims: np.ndarray
    ) -> tuple[bool | None, float | None, str]:
        """``(passed, p_value, reason)`` for the simulated effects."""
        raise NotImplementedError

    def details(self, estimate: float, std_error: float, sims: np.ndarray) -> dict[str, Any]:
        """Extra numbers for results.json (e.g. the bootstrap CI)."""
        return {}

    def streams(self, seed: int) -> list[np.random.SeedSequence]:
        """One independent stream per simulation, derived from the run seed and this refuter's name."""
        root = np.random.SeedSequence([int(seed), zlib.crc32(self.name.encode())])
        return root.spawn(self.num_tasks())

    def refute(
        self,
        estimator,
        data,
        estimate: float,
        std_error: float,
        seed: int = 0,
        executor=None,
        progress=None,
    ):
        """The refutation, its simulations run by ``executor`` (a :class:`causal_cli.simulate.Executor`;
        default: this process)."""
        from causal_cli.simulate import SerialExecutor

        started = time.perf_counter()
        self.prepare(estimator, data)
        executor = executor or SerialExecutor()
        sims = executor.run(self, estimator, data, self.streams(seed), progress, label=f"refuter {self.name}")
        result = self.summarize(estimate, std_error, sims)
        result.runtime_s = time.perf_counter() - started
        return result

    def summarize(self, estimate: float, std_error: float, sims: np.ndarray) -> RefutationResult:
        finite = sims[np.isfinite(sims)]
        if finite.size < 2:
            passed, p_value, reason = (
                False,
                None,
                (
                    f"only {finite.size} of {sims.size} simulations gave a finite estimate; nothing to compare "
                    "(the estimator could not estimate on the modified data)"
                ),
            )
        else:
            passed, p_value, reason = self.verdict(estimate, std_error, finite)
        reason += no_estimate_note(sims)
        return RefutationResult(
            name=self.name,
            new_effect=float(finite.mean()) if finite.size else None,
            new_effect_sd=float(finite.std(ddof=1)) if finite.size > 1 else None,
            p_value=None if p_value is None else float(p_value),
            passed=passed,
            reason=reason,
            num_simulations=int(self.num_simulations),
            options=dict(self.options),
            simulations=[float(s) for s in sims],
            rule=self.rule,
            details=self.details(estimate, std_error, finite) if finite.size > 1 else {},
        )


def no_estimate_note(sims: np.ndarray) -> str:
    """`` (k of n simulations gave no estimate)`` when some did not, else empty."""
    missing = int(np.sum(~np.isfinite(sims)))
    return f" ({missing} of {sims.size} simulations gave no estimate)" if missing else ""


def empirical_p_value(estimate: float, sims: np.ndarray, center: float = 0.0) -> float:
    """Share of simulations at least as far from ``center`` as the estimate (with the +1 correction)."""
    sims = sims[np.isfinite(sims)]
    extreme = np.sum(np.abs(sims - center) >= abs(estimate - center))
    return float((1 + extreme) / (1 + sims.size))


def consistency_p_value(estimate: float, sims: np.ndarray) -> float:
    """Two-sided normal p-value of the original estimate under the simulations' distribution."""
    sims = sims[np.isfinite(sims)]
    sd = float(np.std(sims, ddof=1)) if sims.size > 1 else 0.0
    if sd == 0:
        return 1.0 if np.isclose(sims.mean(), estimate) else 0.0
    z = abs(estimate - sims.mean()) / sd
    return 2 * (1 - NormalDist().cdf(z))


def significance(value: float, sims: np.ndarray) -> tuple[float, str]:
    """Two-sided p-value of ``value`` as a draw from the simulated distribution, and the test used.

    Percentile rank (with the +1 correction) from :data:`EMPIRICAL_MIN_SIMULATIONS` simulations on;
    below that a rank cannot resolve small p-values, so a normal approximation is used instead.
    """
    sims = sims[np.isfinite(sims)]
    if sims.size >= EMPIRICAL_MIN_SIMULATIONS:
        tail = min(np.sum(sims >= value), np.sum(sims <= value))
        return float(min(1.0, 2 * (1 + tail) / (1 + sims.size))), "percentile"
    return consistency_p_value(value, sims), "normal approximation"


def centred_on_zero(
    sims: np.ndarray, estimate: float, alpha: float, shared_se: float | None = None
) -> tuple[bool, float, str]:
    """Whether simulated effects of a non-existent effect average 0: ``(centred, p of mean = 0, why)``.

    Centred means the mean is within sampling error of 0 (two-sided p >= ``alpha``), or negligible
    next to the estimate (under :data:`NEGLIGIBLE_SHARE` of it) when many simulations make that
    test sensitive to a bias too small to matter. The sampling error is the Monte Carlo error of the
    mean (sd / sqrt(simulations)) plus, when the simulations share an error that more of them cannot
    average away, ``shared_se`` (e.g. the estimator's own standard error for a dummy outcome built on
    the same covariates and treatment in every simulation).
    """
    sims = sims[np.isfinite(sims)]
    mean = float(sims.mean())
    sem = float(sims.std(ddof=1) / np.sqrt(sims.size)) if sims.size > 1 else 0.0
    if shared_se is not None and np.isfinite(shared_se) and shared_se > 0:
        sem = float(np.hypot(sem, shared_se))
    if sem == 0:
        p = 1.0 if np.isclose(mean, 0.0) else 0.0
    else:
        p = 2 * (1 - NormalDist().cdf(abs(mean) / sem))
    if p >= alpha:
        return True, float(p), "within sampling error of 0"
    if abs(mean) <= NEGLIGIBLE_SHARE * abs(estimate):
        return True, float(p), f"under {NEGLIGIBLE_SHARE:.0%} of the estimate"
    return False, float(p), ""


def implied_se_check(implied_se: float, std_error: float | None, max_ratio: float) -> tuple[bool, str]:
    """Compare a resampling standard error with the estimator's reported one.

    Fails only when the reported SE understates the resampling spread by more than ``max_ratio``:
    the reported confidence interval is then too narrow to trust.
    """
    if std_error is None or not np.isfinite(std_error) or std_error <= 0:
        return True, f"resampling SE {implied_se:.3g} (the estimator reports none)"
    ratio = implied_se / std_error
    text = f"resampling SE {implied_se:.3g} = {ratio:.2f}× the reported SE {std_error:.3g}"
    return bool(ratio <= max_ratio), text


BaseRefuter.__signature__ = signature(BaseRefuter)
