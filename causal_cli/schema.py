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

#: upper bounds that keep a typo (dgp.n=10000000000) from becoming an out-of-memory crash or a
#: run that never ends; far above anything a study needs
MAX_SIMULATED_ROWS = 10_000_000
MAX_REPLICATIONS = 100_000


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
        check(
            2 <= self.num_bootstrap <= MAX_REPLICATIONS,
            "ci.num_bootstrap",
            self.num_bootstrap,
            f"an integer from 2 to {MAX_REPLICATIONS:,}",
        )


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
        check(
            1 <= self.num_simulations <= MAX_REPLICATIONS,
            "num_simulations",
            self.num_simulations,
            f"an integer from 1 to {MAX_REPLICATIONS:,}",
        )


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
        check(
            20 <= self.n <= MAX_SIMULATED_ROWS, "n", self.n, f"an integer from 20 to {MAX_SIMULATED_ROWS:,}"
        )
        check(self.seed >= 0, "seed", self.seed, "an integer >= 0")
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
class DiagnosticsConfig:
    """Balance and overlap diagnostics (causal_cli/diagnostics.py)."""

    overlap_low: float = 0.05
    overlap_high: float = 0.95
    #: warn about poor overlap when more than this share of units lies outside [overlap_low, overlap_high]
    #: (5%: ipw CIs already cover only 84-89% at 6-10% outside; product_growth has 2%)
    poor_overlap_share: float = 0.05
    smd_threshold: float = 0.1
    num_bins: int = 40
    top_weights: int = 5

    def __post_init__(self):
        check(0 <= self.overlap_low < 1, "overlap_low", self.overlap_low, "a number in [0, 1)")
        check(
            self.overlap_low < self.overlap_high <= 1,
            "overlap_high",
            self.overlap_high,
            f"a number in ({self.overlap_low}, 1] (above overlap_low)",
        )
        check(
            0 <= self.poor_overlap_share <= 1,
            "poor_overlap_share",
            self.poor_overlap_share,
            "a share in [0, 1]",
        )
        check(self.smd_threshold > 0, "smd_threshold", self.smd_threshold, "a number > 0")
        check(self.num_bins >= 2, "num_bins", self.num_bins, "an integer >= 2")
        check(self.top_weights >= 1, "top_weights", self.top_weights, "an integer >= 1")


@dataclass
class CateConfig:
    """The heterogeneity stage (causal_cli/heterogeneity): who benefits, and whom to target."""

    #: null = on exactly when effect modifiers are declared (``graph.effect_modifiers`` or ``cate.by``)
    enabled: Any = None
    #: modifier columns; empty = ``graph.effect_modifiers``
    by: list[str] = field(default_factory=list)
    #: per-unit effect learner: dr (DR-learner) | t (T-learner) | x (X-learner)
    learner: str = "dr"
    #: the learner's regression model (``{_target_: sklearn...}``); null = OLS on the modifiers
    model: Any = None
    #: nuisance outcome model E[y | t, X, modifiers]; null = OLS per arm
    outcome_model: Any = None
    #: nuisance propensity model; null = the built-in penalised logistic regression
    propensity_model: Any = None
    propensity_C: float = 1.0
    folds: int = 5
    #: quantile bins for a continuous modifier's segments
    bins: int = 4
    #: GATES groups (quantiles of the predicted effect)
    groups: int = 5
    #: cost per treated unit, in outcome units: the policy treats when the predicted effect exceeds it
    cost: float = 0.0
    #: depth of the readable policy tree (0 = none; at most 2)
    tree_depth: int = 2
    ci_level: float = 0.95

    def __post_init__(self):
        check(self.enabled in (None, True, False), "cate.enabled", self.enabled, "true, false or null")
        check(self.learner in ("dr", "t", "x"), "cate.learner", self.learner, "dr, t, x")
        check(2 <= self.folds <= 20, "cate.folds", self.folds, "an integer from 2 to 20")
        check(2 <= self.bins <= 20, "cate.bins", self.bins, "an integer from 2 to 20")
        check(2 <= self.groups <= 20, "cate.groups", self.groups, "an integer from 2 to 20")
        check(0 <= self.tree_depth <= 2, "cate.tree_depth", self.tree_depth, "0, 1 or 2")
        check(0 < self.ci_level < 1, "cate.ci_level", self.ci_level, "a number strictly between 0 and 1")
        check(self.propensity_C > 0, "cate.propensity_C", self.propensity_C, "a number > 0")


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
    #: more estimators reported side by side with the main one: ``{name: {option: value}}``
    compare: dict[str, Any] = field(default_factory=dict)
    identification: IdentificationConfig = field(default_factory=IdentificationConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    diagnostics: DiagnosticsConfig = field(default_factory=DiagnosticsConfig)
    cate: CateConfig = field(default_factory=CateConfig)


def register_configs() -> None:
    """Store the run schema and every method's schema (idempotent)."""
    from hydra.core.config_store import ConfigStore
    from omegaconf import OmegaConf

    from causal_cli import registry
    from causal_cli.report.files import path_safe

    if not OmegaConf.has_resolver("path_safe"):
        OmegaConf.register_new_resolver("path_safe", path_safe)
    cs = ConfigStore.instance()
    cs.store(name="run_schema", node=RunConfig)
    cs.store(group="schema", name="graph", node=GraphConfig)
    for group, names in registry.ALL.items():
        for name in names:
            cs.store(group=f"schema/{group}", name=name, node=registry.config_class(group, name))
