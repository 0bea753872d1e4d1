"""The analysis of one randomized experiment: every metric's estimates, the corrections and the checks."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from causal_cli.abtest import checks, estimates, multiple
from causal_cli.errors import DataError


@dataclass
class MetricResult:
    name: str
    kind: str  # mean | ratio
    columns: list[str]
    control_mean: float
    treatment_mean: float
    difference: estimates.Estimate
    relative_lift: estimates.Estimate
    covariates: list[str] = field(default_factory=list)
    #: Lin / CUPED estimates (None without covariates or with ``cuped: false``)
    cuped_difference: estimates.Estimate | None = None
    cuped_relative_lift: estimates.Estimate | None = None
    #: 1 - var(CUPED difference) / var(difference), from the two standard errors
    variance_reduction: float | None = None
    p_value: float = float("nan")  # of the reported estimate (CUPED when available)
    p_adjusted: float = float("nan")
    significant: bool = False
    truth_difference: float | None = None
    truth_relative_lift: float | None = None

    @property
    def estimate(self) -> estimates.Estimate:
        return self.cuped_difference or self.difference

    @property
    def lift(self) -> estimates.Estimate:
        return self.cuped_relative_lift or self.relative_lift

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["method"] = "cuped" if self.cuped_difference is not None else "difference_in_means"
        for key, truth in (
            ("difference", self.truth_difference),
            ("relative_lift", self.truth_relative_lift),
        ):
            for prefix in ("", "cuped_"):
                est = out.get(prefix + key)
                if est is not None and truth is not None:
                    est["covers_truth"] = bool(est["ci_low"] <= truth <= est["ci_high"])
        return out

    def row(self) -> dict[str, Any]:
        """One flat row of ``experiment.csv``."""
        out: dict[str, Any] = {
            "metric": self.name,
            "kind": self.kind,
            "columns": ";".join(self.columns),
            "control_mean": self.control_mean,
            "treatment_mean": self.treatment_mean,
        }
        for key in ("difference", "relative_lift", "cuped_difference", "cuped_relative_lift"):
            est = getattr(self, key)
            for part in ("value", "std_error", "ci_low", "ci_high", "p_value"):
                out[f"{key}_{part}" if part != "value" else key] = getattr(est, part) if est else None
        out.update(
            covariates=";".join(self.covariates),
            variance_reduction=self.variance_reduction,
            p_value=self.p_value,
            p_adjusted=self.p_adjusted,
            significant=self.significant,
            truth_difference=self.truth_difference,
            truth_relative_lift=self.truth_relative_lift,
        )
        return out


@dataclass
class ExperimentResult:
    treatment: str
    n_control: int
    n_treatment: int
    alpha: float
    correction: str
    primary: str
    metrics: list[MetricResult]
    srm: checks.SRMCheck
    balance: list[dict[str, Any]]
    smd_threshold: float
    aa: dict[str, Any] | None = None

    @property
    def primary_metric(self) -> MetricResult:
        return next(m for m in self.metrics if m.name == self.primary)

    @property
    def imbalanced(self) -> list[str]:
        return [row["covariate"] for row in self.balance if row["imbalanced"]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "design": "randomized",
            "treatment": self.treatment,
            "n_control": self.n_control,
            "n_treatment": self.n_treatment,
            "alpha": self.alpha,
            "ci_level": 1 - self.alpha,
            "correction": self.correction,
            "primary": self.primary,
            "metrics": [m.to_dict() for m in self.metrics],
            "srm": self.srm.to_dict(),
            "balance": self.balance,
            "smd_threshold": self.smd_threshold,
            "imbalanced": self.imbalanced,
            "aa": self.aa,
        }

    def rows(self) -> list[dict[str, Any]]:
        return [m.row() for m in self.metrics]


def metric_columns(name: str, metric) -> list[str]:
    if metric.numerator:
        return [str(metric.numerator), str(metric.denominator)]
    return [str(metric.column or name)]


def _numeric(frame, column: str, name: str) -> np.ndarray:
    if column not in frame.columns:
        raise DataError(
            f"metric '{name}': column '{column}' is not in the data; columns: {', '.join(map(str, frame.columns))}"
        )
    try:
        values = frame[column].to_numpy(dtype=float)
    except (TypeError, ValueError) as exc:
        raise DataError(f"metric '{name}': column '{column}' is not numeric") from exc
    if not np.all(np.isfinite(values)):
        raise DataError(f"metric '{name}': column '{column}' has missing or infinite values")
    return values


def metric_result(name: str, metric, frame, t: np.ndarray, cfg, truth: dict | None = None) -> MetricResult:
    level = 1 - float(cfg.alpha)
    columns = metric_columns(name, metric)
    if metric.numerator:
        num, den = (_numeric(frame, c, name) for c in columns)
        if den[t == 0].sum() == 0 or den[t == 1].sum() == 0:
            raise DataError(f"metric '{name}': the denominator '{columns[1]}' sums to 0 in an arm")
        arms, adjusted = estimates.ratio(num, den, t), None
        kind = "ratio"
    else:
        y = _numeric(frame, columns[0], name)
        arms = estimates.welch(y, t)
        kind = "mean"
        adjusted = None
        if cfg.cuped and metric.covariates:
            X = np.column_stack([_numeric(frame, c, name) for c in metric.covariates])
            adjusted = estimates.lin(y, t, X, hc=str(cfg.hc))
    difference = arms.difference(level)
    result = MetricResult(
        name=name,
        kind=kind,
        columns=columns,
        control_mean=arms.mu0,
        treatment_mean=arms.mu1,
        difference=difference,
        relative_lift=arms.relative_lift(level),
        covariates=list(metric.covariates) if adjusted is not None else [],
    )
    if adjusted is not None:
        result.cuped_difference = adjusted.difference(level)
        result.cuped_relative_lift = adjusted.relative_lift(level)
        if difference.std_error > 0:
            result.variance_reduction = 1 - (result.cuped_difference.std_error / difference.std_error) ** 2
    result.p_value = result.estimate.p_value
    key = f"{columns[0]}/{columns[1]}" if kind == "ratio" else columns[0]
    if truth and key in truth:
        result.truth_difference = truth[key].get("difference")
        result.truth_relative_lift = truth[key].get("relative_lift")
    return result


def treatment_vector(frame, treatment: str) -> np.ndarray:
    t = frame[treatment].to_numpy(dtype=float)
    n1 = int((t == 1).sum())
    if n1 == 0 or n1 == len(t):
        raise DataError(f"column '{treatment}' puts every unit in one arm; an A/B test needs both")
    if min(n1, len(t) - n1) < 2:
        raise DataError(f"column '{treatment}' has fewer than 2 units in an arm")
    return t


def analyze_metrics(frame, t: np.ndarray, cfg, truth: dict | None = None) -> list[MetricResult]:
    results = [metric_result(name, metric, frame, t, cfg, truth) for name, metric in cfg.metrics.items()]
    adjusted = multiple.adjust([m.p_value for m in results], str(cfg.correction))
    for m, p in zip(results, adjusted):
        m.p_adjusted = float(p)
        m.significant = bool(p <= float(cfg.alpha))
    return results


def analyze(frame, treatment: str, cfg, truth: dict | None = None) -> ExperimentResult:
    """Estimates for every metric of ``cfg.metrics``, the multiple-testing correction, SRM and balance."""
    t = treatment_vector(frame, treatment)
    for column in cfg.pre_period:
        _numeric(frame, str(column), f"pre_period {column}")
    metrics = analyze_metrics(frame, t, cfg, truth)
    n1 = int((t == 1).sum())
    return ExperimentResult(
        treatment=treatment,
        n_control=len(t) - n1,
        n_treatment=n1,
        alpha=float(cfg.alpha),
        correction=str(cfg.correction),
        primary=str(cfg.primary or next(iter(cfg.metrics))),
        metrics=metrics,
        srm=checks.sample_ratio_mismatch(len(t) - n1, n1, float(cfg.planned_split), float(cfg.srm_threshold)),
        balance=checks.balance(frame, t, [str(c) for c in cfg.pre_period], float(cfg.smd_threshold)),
        smd_threshold=float(cfg.smd_threshold),
    )
