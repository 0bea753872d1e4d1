"""Plain result objects: what a run found, independent of how it is printed or saved."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np


@dataclass
class RefutationResult:
    name: str
    new_effect: float | None
    new_effect_sd: float | None
    p_value: float | None
    passed: bool | None
    reason: str
    num_simulations: int
    options: dict[str, Any] = field(default_factory=dict)
    simulations: list[float] = field(default_factory=list, repr=False)
    table: list[dict[str, Any]] = field(default_factory=list, repr=False)
    runtime_s: float = 0.0
    #: the verdict rule the refuter applied, in words
    rule: str = ""
    #: refuter-specific numbers (bootstrap CI, robustness value, E-value, ...)
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self, with_simulations: bool = False) -> dict[str, Any]:
        out = asdict(self)
        if not with_simulations:
            out.pop("simulations")
        if not out["table"]:
            out.pop("table")
        return out


@dataclass
class EffectResult:
    """One estimator's answer (the main one, or one reported alongside it under ``compare``)."""

    estimator: str
    target_units: str
    estimate: float | None
    std_error: float | None
    ci_low: float | None
    ci_high: float | None
    identification: str = "backdoor"
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    #: the estimator's one-line warnings about this estimate (``BaseEstimator.caveats``)
    caveats: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RunResult:
    treatment: str
    outcome: str
    estimator: str
    target_units: str
    n_rows: int
    identification: str
    adjustment_set: list[str]
    naive_estimate: float
    naive_std_error: float
    estimate: float
    std_error: float
    ci_low: float
    ci_high: float
    ci_level: float
    ci_method: str
    reference: float | None
    reference_kind: str | None
    seed: int
    instruments: list[str] = field(default_factory=list)
    mediators: list[str] = field(default_factory=list)
    references: dict[str, float] | None = None
    #: the estimand ``reference`` is for (ate/att/atc), None when the config gave one number without saying
    reference_estimand: str | None = None
    #: where ``reference`` came from: config, config:<estimand>, <references.json>[<file>], column:<name>, data
    reference_source: str | None = None
    refutations: list[RefutationResult] = field(default_factory=list)
    comparisons: list[EffectResult] = field(default_factory=list)
    estimator_details: dict[str, Any] = field(default_factory=dict)
    graph: dict[str, Any] = field(default_factory=dict)
    data_description: str = ""
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    #: sha256 of the analysed columns' content, and of each local file the data source read
    data_hash: str | None = None
    data_files: dict[str, dict[str, str]] = field(default_factory=dict)
    #: a ``causal_cli.diagnostics.Diagnostics`` (balance, overlap, weights), or None
    diagnostics: Any = None
    #: closed-form sensitivity to an unobserved confounder (causal_cli.sensitivity.analyze), or None
    sensitivity: dict[str, Any] | None = None
    #: the estimator's one-line warnings about the estimate itself (units dropped, heavy weights, ...)
    caveats: list[str] = field(default_factory=list)
    #: a randomized design's ``causal_cli.abtest.analysis.ExperimentResult``, or None
    experiment: Any = None
    #: a ``causal_cli.heterogeneity.analysis.HeterogeneityResult`` (segments, CATE, targeting), or None
    heterogeneity: Any = None
    #: how the standard error was computed: analytic | bootstrap | cluster-robust (CR1) | cluster bootstrap
    se_method: str | None = None
    #: the ``data.weights`` column (observation weights), or None
    weights_column: str | None = None
    #: the ``data.cluster`` column and its number of clusters, or None
    cluster_column: str | None = None
    n_clusters: int | None = None

    @property
    def bias(self) -> float | None:
        return None if self.reference is None else self.estimate - self.reference

    @property
    def naive_bias(self) -> float | None:
        return None if self.reference is None else self.naive_estimate - self.reference

    @property
    def naive_overstatement_pct(self) -> float | None:
        if self.estimate == 0:
            return None
        return (self.naive_estimate - self.estimate) / abs(self.estimate) * 100

    @property
    def ci_covers_reference(self) -> bool | None:
        return None if self.reference is None else bool(self.ci_low <= self.reference <= self.ci_high)

    def to_dict(self) -> dict[str, Any]:
        # typed blocks serialise themselves below; asdict would deep-copy them for nothing
        own = ("refutations", "diagnostics", "experiment", "heterogeneity")
        out = {k: v for k, v in asdict(self).items() if k not in own}
        for row in out["comparisons"]:
            if row["estimate"] is not None and self.reference is not None:
                row["bias"] = row["estimate"] - self.reference
        out.update(
            bias=self.bias,
            naive_bias=self.naive_bias,
            naive_overstatement_pct=self.naive_overstatement_pct,
            ci_covers_reference=self.ci_covers_reference,
            refutations=[r.to_dict() for r in self.refutations],
            refutations_passed=sum(1 for r in self.refutations if r.passed is True),
            refutations_with_verdict=sum(1 for r in self.refutations if r.passed is not None),
        )
        diag = self.diagnostics
        overlap = diag.overlap if diag is not None else None
        out.update(
            diagnostics=diag.to_dict() if diag is not None else None,
            max_abs_smd_before=diag.max_abs_smd_before if diag is not None else None,
            max_abs_smd_after=diag.max_abs_smd_after if diag is not None else None,
            overlap_share_outside=overlap["share_outside"] if overlap else None,
            poor_overlap=diag.poor_overlap if diag is not None else None,
        )
        if self.experiment is not None:
            out["experiment"] = self.experiment.to_dict()
        if self.heterogeneity is not None:
            out["heterogeneity"] = self.heterogeneity.to_dict()
        return _plain(out)

    def tables(self) -> dict[str, list[dict[str, Any]]]:
        """Row tables saved beside ``results.json`` (``<name>.csv``) so the report can be redrawn later."""
        diag = self.diagnostics
        return _plain(
            {
                "balance": diag.balance if diag is not None else [],
                "overlap": diag.histogram if diag is not None else [],
                "experiment": self.experiment.rows() if self.experiment is not None else [],
                "refutation_simulations": [
                    {"refuter": r.name, "simulation": i, "effect": effect}
                    for r in self.refutations
                    for i, effect in enumerate(r.simulations)
                ],
                **({"cate": self.heterogeneity.unit_rows()} if self.heterogeneity is not None else {}),
            }
        )


def _plain(value):
    """JSON-safe: numpy scalars to Python, NaN/inf to None."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return v if np.isfinite(v) else None
    return value
