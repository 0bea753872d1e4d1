"""Typed schemas for the composed config, registered in Hydra's ConfigStore.

Method-specific schemas (one per estimator, refuter, DGP and data source) live beside their
implementation and are registered here under ``schema/<group>/<name>``, so they never show up as
selectable options but every config file of a group is validated against its method's schema.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

#: omegaconf's marker of a mandatory value (``omegaconf.MISSING``), spelled out: worker processes import
#: the methods' modules (and with them these schemas) and need no omegaconf (~0.1-0.2 s of their start)
MISSING: Any = "???"

#: upper bounds that keep a typo (dgp.n=10000000000) from becoming an out-of-memory crash or a
#: run that never ends; far above anything a study needs
MAX_SIMULATED_ROWS = 10_000_000
MAX_REPLICATIONS = 100_000
#: the other size-like options (README, "Bounds"): each checked at validation, before any allocation
MAX_NEIGHBOURS = 1_000  # estimator.k (psm, distance_matching)
MAX_MATCHING_ROWS = MAX_SIMULATED_ROWS  # distance_matching.max_rows
MAX_STRATA = 10_000  # ps_stratification.num_strata, max_strata
MAX_FOLDS = 100  # aipw.folds, dml.folds
MAX_SPLITS = 100  # aipw.n_rep, dml.n_rep (each split is a whole cross-fit)
MAX_CURVE_POINTS = 10_000  # unobserved_common_cause.curve_points
MAX_STRENGTHS = 100  # unobserved_common_cause.strengths (values)
MAX_BINS = 10_000  # diagnostics.num_bins
MAX_TOP_WEIGHTS = 1_000  # diagnostics.top_weights
MAX_CHUNK_ROWS = MAX_SIMULATED_ROWS  # data.chunksize (sql)
#: where refuter simulations and bootstrap CIs run (``refuters.backend``): this machine's cores, or Ray
REFUTER_BACKENDS = ("local", "ray")
#: any list in a config (merging a 3,000-value list onto a typed schema takes minutes) and any string
MAX_LIST_VALUES = 1_000
MAX_STRING_CHARS = 100_000
#: the fewest treated and control rows a data_subset subset may keep (fewer estimate nothing useful)
MIN_GROUP_ROWS = 20


def check(ok: bool, key: str, value: Any, allowed: str) -> None:
    """Raise a ConfigError naming ``key`` (relative to its node) unless ``ok``."""
    if not ok:
        from causal_cli.errors import ConfigError

        raise ConfigError(f"{key}={_shown(value)} is out of range; allowed: {allowed}")


def check_max(value: Any, key: str, maximum: int, what: str = "") -> None:
    """A size-like option (or the length of a list option, ``what="values"``) is at most ``maximum``."""
    size = len(value) if what else value
    try:
        ok = size is None or isinstance(size, str) or size <= maximum
    except TypeError:
        ok = True  # the type is checked elsewhere; this check is about size
    check(
        ok,
        key,
        value if not what else f"<{size:,} {what}>",
        f"at most {maximum:,}{' ' + what if what else ''}",
    )


#: option name -> (maximum, unit): every method config with such an option is checked by its base class
BOUNDS: dict[str, tuple[int, str]] = {
    "n": (MAX_SIMULATED_ROWS, ""),
    "num_simulations": (MAX_REPLICATIONS, ""),
    "num_bootstrap": (MAX_REPLICATIONS, ""),
    "k": (MAX_NEIGHBOURS, ""),
    "max_rows": (MAX_MATCHING_ROWS, ""),
    "num_strata": (MAX_STRATA, ""),
    "max_strata": (MAX_STRATA, ""),
    "folds": (MAX_FOLDS, ""),
    "n_rep": (MAX_SPLITS, ""),
    "curve_points": (MAX_CURVE_POINTS, ""),
    "strengths": (MAX_STRENGTHS, "values"),
    "chunksize": (MAX_CHUNK_ROWS, ""),
    "num_bins": (MAX_BINS, ""),
    "top_weights": (MAX_TOP_WEIGHTS, ""),
}


def check_bounds(config: Any) -> None:
    """Every size-like option of ``config`` (see :data:`BOUNDS`) within its maximum, before any allocation."""
    for key, (maximum, unit) in BOUNDS.items():
        value = getattr(config, key, None)
        if isinstance(value, bool) or value is None:
            continue
        if unit and isinstance(value, (list, tuple)):
            check_max(value, key, maximum, unit)
        elif isinstance(value, (int, float)):
            check_max(value, key, maximum)


def check_sizes(node: Any, path: str = "") -> None:
    """No list longer than :data:`MAX_LIST_VALUES` and no string longer than :data:`MAX_STRING_CHARS`
    anywhere in a plain config container, checked before any typed merge or allocation."""
    from causal_cli.errors import ConfigError

    if isinstance(node, dict):
        for key, value in node.items():
            check_sizes(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, (list, tuple)):
        if len(node) > MAX_LIST_VALUES:
            raise ConfigError(f"{path} has {len(node):,} values; allowed: at most {MAX_LIST_VALUES:,}")
        for i, value in enumerate(node):
            check_sizes(value, f"{path}[{i}]")
    elif isinstance(node, str) and len(node) > MAX_STRING_CHARS:
        raise ConfigError(
            f"{path} is a string of {len(node):,} characters; allowed: at most {MAX_STRING_CHARS:,}"
        )


def codec_without_text(name: Any) -> bool:
    """A known codec that does not decode bytes to text (``rot13``, ``base64``); unknown names are
    reported by the data source itself."""
    import codecs

    try:
        return isinstance(name, str) and not codecs.lookup(name)._is_text_encoding
    except (LookupError, TypeError, ValueError):
        return False


def _shown(value: Any) -> str:
    """``value`` for a one-line message: a 20 MB string or a 3,000-value list is cut, not echoed."""
    text = repr(value)
    return text if len(text) <= 200 else f"{text[:120]}... ({len(text):,} characters)"


#: keys of the ``refuters`` node that are settings, not refuter names
REFUTER_SETTINGS = ("n_jobs", "backend", "address")

#: characters that would make one folder name into several (or be invalid on some file system)
_UNSAFE_IN_NAME = re.compile(r'[\x00-\x1f/\\:*?"<>|]')


def path_safe(value: Any, max_bytes: int = 150) -> str:
    """A config value as ONE folder name (Hydra resolver ``${path_safe:...}``): no separators, no ``..``.

    Run and sweep folder names interpolate user values (``estimator.name``, the overrides of a sweep
    job); without this, ``estimator.name=../../x`` or a sweep over ``graph.outcome_units=../../x``
    would write outside the output folder. Over-long names are cut and keep a hash, so they stay unique.
    """
    import hashlib

    text = _UNSAFE_IN_NAME.sub("_", str(value))
    if not text.strip("."):
        text = text.replace(".", "_")
    raw = text.encode("utf-8")
    if len(raw) > max_bytes:
        digest = hashlib.sha256(raw).hexdigest()[:10]
        text = raw[: max_bytes - 11].decode("utf-8", errors="ignore") + "~" + digest
    return text


ESTIMANDS = ("ate", "att", "atc")


def finite_number(value: Any, key: str) -> float:
    """``value`` as a finite float, else a ConfigError naming ``key``."""
    try:
        ok = not isinstance(value, bool) and math.isfinite(float(value))
    except (TypeError, ValueError):
        ok = False
    if not ok:
        from causal_cli.errors import ConfigError

        raise ConfigError(f"{key}={value!r} is not a number; allowed: a finite number, or null for none")
    return float(value)


def per_estimand(value: Any, key: str) -> dict[str, float]:
    """A mapping ``{ate: .., att: ..}`` checked: known estimands, finite numbers (null entries dropped)."""
    from causal_cli.errors import ConfigError

    out = {}
    for name, number in dict(value).items():
        name = str(name).lower()
        if name not in ESTIMANDS:
            raise ConfigError(f"{key}.{name} is not an estimand; allowed: {', '.join(ESTIMANDS)}")
        if number is not None:
            out[name] = finite_number(number, f"{key}.{name}")
    return out


def check_references(cfg) -> None:
    """``reference`` and ``reference_from`` checked before any work (validate.py; used by references.py)."""
    from omegaconf import DictConfig

    from causal_cli.errors import ConfigError

    value = cfg.get("reference")
    if isinstance(value, (DictConfig, dict)):
        per_estimand(value, "reference")
    elif value is not None:
        finite_number(value, "reference")
    source = cfg.get("reference_from")
    if source is not None and (not isinstance(source, str) or not source.strip()):
        raise ConfigError(
            f"reference_from={source!r} is not allowed; allowed: a JSON file keyed by data file "
            "(e.g. references.json) or column:NAME (a column of individual effects)"
        )


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
    #: observational (identify and adjust) or randomized (an A/B test, analysed with the ``ab`` group)
    design: str = "observational"
    #: a DOT (.dot, .gv) or GML (.gml) file holding the graph (causal_cli/graph_files.py); null = the roles above
    file: Any = None


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
        check_bounds(self)
        target = str(getattr(self.target_units, "value", self.target_units))
        check(target in ESTIMANDS, "target_units", target, ", ".join(ESTIMANDS))


@dataclass
class RefuterConfig:
    """Options every refuter has; each refuter's module extends it."""

    num_simulations: int = 100

    def __post_init__(self):
        check_bounds(self)
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
        check(math.isfinite(self.true_effect), "true_effect", self.true_effect, "a finite number")
        check(math.isfinite(self.noise_sd), "noise_sd", self.noise_sd, "a finite number >= 0")
        check(math.copysign(1.0, self.noise_sd) > 0, "noise_sd", self.noise_sd, "a number >= 0 (0, not -0.0)")


@dataclass
class DataConfig:
    """Options every data source has; each source's module extends it."""

    source: str = MISSING

    def __post_init__(self):
        check_bounds(self)
        encoding = getattr(self, "encoding", None)
        check(
            not codec_without_text(encoding),
            "encoding",
            encoding,
            "a text encoding, e.g. utf-8, latin-1 (this codec does not decode bytes to text)",
        )


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
        check_max(self.num_bins, "num_bins", MAX_BINS)
        check_max(self.top_weights, "top_weights", MAX_TOP_WEIGHTS)


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
class MetricConfig:
    """A mean metric (``column``, default: the metric's name) or a ratio metric (``numerator`` / ``denominator``,
    summed per arm, analysed at the randomisation unit with the delta method)."""

    column: str = ""
    numerator: str = ""
    denominator: str = ""
    #: pre-experiment covariates for CUPED / Lin adjustment (mean metrics); each must be in ``ab.pre_period``
    covariates: list[str] = field(default_factory=list)
    description: str = ""

    def __post_init__(self):
        ratio = bool(self.numerator or self.denominator)
        check(
            not ratio or bool(self.numerator and self.denominator),
            "numerator/denominator",
            f"{self.numerator}/{self.denominator}",
            "both set for a ratio metric",
        )
        check(not (ratio and self.column), "column", self.column, "empty for a ratio metric")
        check(not (ratio and self.covariates), "covariates", list(self.covariates), "[] for a ratio metric")


@dataclass
class ABConfig:
    """A randomized two-arm experiment (``graph.design: randomized``)."""

    description: str = ""
    metrics: dict[str, MetricConfig] = field(default_factory=dict)
    #: the metric reported in the headline fields (estimate, CI, ...); default: the first metric
    primary: str = ""
    #: columns measured before assignment: balance-checked, and the only ones allowed as CUPED covariates
    pre_period: list[str] = field(default_factory=list)
    #: planned share of units in treatment (the SRM check tests the observed split against it)
    planned_split: float = 0.5
    alpha: float = 0.05
    correction: str = "bh"
    cuped: bool = True
    #: robust covariance of Lin's regression: hc2 (equals Welch without covariates) or hc3
    hc: str = "hc2"
    srm_threshold: float = 0.001
    smd_threshold: float = 0.1
    #: > 0: also re-randomize the data this many times (A/A tests) and report the false-positive rates
    aa_simulations: int = 0

    def __post_init__(self):
        check(
            0 < self.planned_split < 1,
            "planned_split",
            self.planned_split,
            "a share strictly between 0 and 1",
        )
        check(0 < self.alpha < 1, "alpha", self.alpha, "a number strictly between 0 and 1")
        check(self.correction in ("bh", "holm", "none"), "correction", self.correction, "bh, holm, none")
        check(self.hc in ("hc2", "hc3"), "hc", self.hc, "hc2, hc3")
        check(
            0 < self.srm_threshold < 1, "srm_threshold", self.srm_threshold, "a p-value threshold in (0, 1)"
        )
        check(self.smd_threshold > 0, "smd_threshold", self.smd_threshold, "a number > 0")
        check(
            0 <= self.aa_simulations <= MAX_REPLICATIONS,
            "aa_simulations",
            self.aa_simulations,
            f"an integer from 0 to {MAX_REPLICATIONS:,}",
        )
        check(len(self.metrics) > 0, "metrics", dict(self.metrics), "at least one metric")
        check(
            not self.primary or self.primary in self.metrics,
            "primary",
            self.primary,
            ", ".join(self.metrics),
        )
        for name, metric in self.metrics.items():
            for covariate in metric.covariates:
                check(
                    covariate in self.pre_period,
                    f"metrics.{name}.covariates",
                    covariate,
                    f"a pre-period column declared in ab.pre_period ({', '.join(self.pre_period) or 'none'})",
                )


@dataclass
class RunConfig:
    seed: int = 0
    question: str = ""
    reference: Any = None
    reference_kind: str = "auto"
    #: per-job references: a JSON file keyed by data file, or column:NAME of individual effects (references.py)
    reference_from: Any = None
    #: sweep keys that are replications (averaged over in the scorecard), besides seeds; null = [data.path]
    replicate_over: Any = None
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
    #: the A/B analysis of a randomized design (:class:`ABConfig`)
    ab: Any = None
    cate: CateConfig = field(default_factory=CateConfig)


def register_configs() -> None:
    """Store the run schema and every method's schema (idempotent; a repeat call stores only new plugins)."""
    from hydra.core.config_store import ConfigStore
    from omegaconf import OmegaConf

    from causal_cli import registry

    if not OmegaConf.has_resolver("path_safe"):
        OmegaConf.register_new_resolver("path_safe", path_safe)
    cs = ConfigStore.instance()

    def store(group: str | None, name: str, node) -> None:
        """Only what the store lacks: converting a dataclass to a config costs ~10 ms a schema."""
        folder = cs.repo
        for part in group.split("/") if group else ():
            folder = folder.get(part) if isinstance(folder, dict) else None
        if not isinstance(folder, dict) or f"{name}.yaml" not in folder:
            cs.store(group=group, name=name, node=node)

    store(None, "run_schema", RunConfig)
    store("schema", "graph", GraphConfig)
    store("schema", "ab", ABConfig)
    for group in registry.ALL:
        for name in registry.names(group):
            store(f"schema/{group}", name, registry.config_class(group, name))
    for group, plugins in registry.PLUGINS.items():
        for name in plugins:  # a plugin ships no YAML: its schema's defaults are the selectable option
            node = registry.config_class(group, name)
            if group == "refuter":
                store("refuters", name, {name: node})
            else:
                store(group, name, node)
