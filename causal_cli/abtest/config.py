"""The ``ab`` config group's schema: metrics, pre-period covariates, planned split, alpha, correction."""

from __future__ import annotations

from dataclasses import dataclass, field

from causal_cli.schema import MAX_REPLICATIONS, check


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
