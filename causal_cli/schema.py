"""Typed schemas for the composed config, registered in Hydra's ConfigStore.

Method-specific schemas (one per estimator, refuter, DGP and data source) live beside their
implementation and are registered here under ``schema/<group>/<name>``, so they never show up as
selectable options but every config file of a group is validated against its method's schema.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from omegaconf import MISSING


def check(ok: bool, key: str, value: Any, allowed: str) -> None:
    """Raise a ConfigError naming ``key`` (relative to its node) unless ``ok``."""
    if not ok:
        from causal_cli.errors import ConfigError

        raise ConfigError(f"{key}={value!r} is out of range; allowed: {allowed}")


class TargetUnits(str, Enum):
    ate = "ate"
    att = "att"
    atc = "atc"


class Confounding(str, Enum):
    none = "none"
    weak = "weak"
    strong = "strong"


@dataclass
class GraphConfig:
    """A causal graph: named roles expand to edges; extra edges are written ``"a -> b"``."""

    name: str = "custom"
    description: str = ""
    treatment: str = MISSING
    outcome: str = MISSING
    confounders: list[str] = field(default_factory=list)
    instruments: list[str] = field(default_factory=list)
    mediators: list[str] = field(default_factory=list)
    effect_modifiers: list[str] = field(default_factory=list)
    unobserved: list[str] = field(default_factory=list)
    edges: list[str] = field(default_factory=list)
    outcome_units: str = ""


@dataclass
class CIConfig:
    level: float = 0.95
    method: str = "analytic"
    num_bootstrap: int = 200

    def __post_init__(self):
        check(0 < self.level < 1, "ci.level", self.level, "a number strictly between 0 and 1")
        check(self.method in ("analytic", "bootstrap"), "ci.method", self.method, "analytic, bootstrap")
        check(self.num_bootstrap >= 2, "ci.num_bootstrap", self.num_bootstrap, "an integer >= 2")


@dataclass
class EstimatorConfig:
    """Options every estimator has; each estimator's module extends it."""

    name: str = MISSING
    target_units: TargetUnits = TargetUnits.ate
    ci: CIConfig = field(default_factory=CIConfig)

    def __post_init__(self):
        pass


@dataclass
class RefuterConfig:
    """Options every refuter has; each refuter's module extends it."""

    num_simulations: int = 100

    def __post_init__(self):
        check(self.num_simulations >= 1, "num_simulations", self.num_simulations, "an integer >= 1")


@dataclass
class DGPConfig:
    """Options every data-generating process has; each DGP's module extends it."""

    kind: str = MISSING
    description: str = ""
    n: int = 10_000
    seed: int = 0
    true_effect: float = 10.0
    confounding: Confounding = Confounding.strong
    noise_sd: float = 5.0

    def __post_init__(self):
        check(self.n >= 20, "n", self.n, "an integer >= 20")
        check(self.noise_sd >= 0, "noise_sd", self.noise_sd, "a number >= 0")


@dataclass
class DataConfig:
    """Options every data source has; each source's module extends it."""

    source: str = MISSING

    def __post_init__(self):
        pass


@dataclass
class IdentificationConfig:
    backdoor_method: str = "auto"


@dataclass
class ReportConfig:
    enabled: bool = True
    console: bool = True


@dataclass
class RunConfig:
    seed: int = 0
    question: str = ""
    reference: Any = None
    reference_kind: str = "auto"
    graph: GraphConfig = field(default_factory=GraphConfig)
    dgp: Any = None
    data: Any = MISSING
    estimator: Any = MISSING
    refuters: dict[str, Any] = field(default_factory=dict)
    identification: IdentificationConfig = field(default_factory=IdentificationConfig)
    report: ReportConfig = field(default_factory=ReportConfig)


def register_configs() -> None:
    """Store the run schema and every method's schema (idempotent)."""
    from hydra.core.config_store import ConfigStore

    from causal_cli import registry

    cs = ConfigStore.instance()
    cs.store(name="run_schema", node=RunConfig)
    cs.store(group="schema", name="graph", node=GraphConfig)
    for group, names in registry.ALL.items():
        for name in names:
            cs.store(group=f"schema/{group}", name=name, node=registry.config_class(group, name))
