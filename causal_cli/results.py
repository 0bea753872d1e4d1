"""Plain result objects: what a run found, independent of how it is printed or saved.

:class:`RunResult` is the run record between the pipeline and every consumer: the pipeline returns
one, the Hydra task and :func:`causal_cli.api.run` add the run around it (``run``: header, status,
paths), ``to_dict`` is ``results.json`` and ``RunResult.load`` reads it back (report, reproduce,
summarize and notebooks).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
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


#: results.json keys written before the analysis (the run's header), in this order
RUN_HEAD = ("tool_version", "estimator", "seed", "command", "started_at", "provenance", "config_sha256")
#: results.json keys computed from the record's fields (never stored twice)
DERIVED = (
    "bias",
    "naive_bias",
    "naive_overstatement_pct",
    "ci_covers_reference",
    "refutations_passed",
    "refutations_with_verdict",
    "max_abs_smd_before",
    "max_abs_smd_after",
    "overlap_share_outside",
    "poor_overlap",
)
#: a run's results.json is well under this; a larger file is not read
MAX_RESULTS_BYTES = 64 << 20


@dataclass
class Recorded:
    """A typed block read back from ``results.json`` (A/B experiment, heterogeneity): kept as written.

    Its per-unit tables live in the run folder's CSV files, not in the record."""

    data: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return self.data

    def rows(self) -> list[dict[str, Any]]:
        return []

    def unit_rows(self) -> list[dict[str, Any]]:
        return []


@dataclass
class RunResult:
    """One run: the analysis (the fields below; all None for a run that failed before it) and ``run``.

    ``run`` holds what ``results.json`` records around the analysis, in its order: the header
    (``tool_version``, ``command``, ``started_at``, ``provenance``, ``config_sha256``) and the outcome
    (``status``, ``error``, ``runtime_s``, ``output_dir``, ``warnings``, ``report_html``). A result the
    pipeline returns has an empty ``run``; ``to_dict`` is then the analysis alone.
    """

    treatment: str | None = None
    outcome: str | None = None
    estimator: str | None = None
    target_units: str | None = None
    n_rows: int | None = None
    identification: str | None = None
    adjustment_set: list[str] | None = None
    naive_estimate: float | None = None
    naive_std_error: float | None = None
    estimate: float | None = None
    std_error: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    ci_level: float | None = None
    ci_method: str | None = None
    reference: float | None = None
    reference_kind: str | None = None
    seed: int | None = None
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
    #: the run around the analysis, as results.json records it (see the class docstring)
    run: dict[str, Any] = field(default_factory=dict)

    @property
    def has_analysis(self) -> bool:
        return self.treatment is not None

    @property
    def status(self) -> str:
        """ok | failed | interrupted | running; a pipeline result that no task wrapped is ok."""
        return str(self.run.get("status") or ("ok" if self.has_analysis else "missing"))

    @property
    def error(self) -> str | None:
        return self.run.get("error")

    @property
    def output_dir(self) -> Path | None:
        folder = self.run.get("output_dir")
        return Path(folder) if folder else None

    @property
    def warnings(self) -> list[str]:
        return list(self.run.get("warnings") or [])

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
        """``results.json``: the run's header, the analysis, then the run's outcome."""
        analysis = self.analysis_dict() if self.has_analysis else {}
        out = {}
        if any(k in self.run for k in RUN_HEAD):  # the header's estimator and seed: the analysis's values
            out = {k: analysis.get(k, self.run.get(k)) for k in RUN_HEAD if k in self.run or k in analysis}
        out.update(analysis)
        out.update({k: v for k, v in self.run.items() if k not in RUN_HEAD})
        return out

    def to_json(self) -> str:
        """``results.json`` text, as the run folder holds it."""
        return json.dumps(self.to_dict(), indent=2, default=str)

    def analysis_dict(self) -> dict[str, Any]:
        """The analysis alone (what the pipeline found), JSON-safe."""
        # typed blocks serialise themselves below; asdict would deep-copy them for nothing
        own = ("refutations", "diagnostics", "experiment", "heterogeneity", "run")
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

    def to_frame(self):
        """One row per estimate (the run's own, then each ``compare`` estimator) as a pandas DataFrame."""
        import pandas as pd

        columns = ["role", "estimator", "estimand", "identification", "estimate", "std_error", "ci_low"]
        columns += ["ci_high", "truth", "bias", "error"]
        if not self.has_analysis:
            return pd.DataFrame(columns=columns)
        rows = [_frame_row("main", self, self.reference, None)]
        rows += [_frame_row("compare", row, self.reference, row.error) for row in self.comparisons]
        return pd.DataFrame(rows, columns=columns)

    @classmethod
    def from_dict(cls, payload: dict[str, Any]) -> RunResult:
        """The record ``results.json`` holds; ``from_dict(d).to_dict() == d`` for every run's file."""
        own = {f.name for f in fields(cls)} - {"run"}
        analysed = "treatment" in payload and "estimate" in payload
        keys = own | set(DERIVED) if analysed else set()
        run = {k: v for k, v in payload.items() if k not in keys}
        if not analysed:
            return cls(run=run)
        values = {k: payload[k] for k in own if k in payload}
        values["refutations"] = [_known(RefutationResult, r) for r in payload.get("refutations") or []]
        values["comparisons"] = [_known(EffectResult, row) for row in payload.get("comparisons") or []]
        values["diagnostics"] = _diagnostics(payload.get("diagnostics"))
        for block in ("experiment", "heterogeneity"):
            values[block] = Recorded(payload[block]) if payload.get(block) is not None else None
        return cls(**values, run=run)

    @classmethod
    def load(cls, path: str | Path) -> RunResult:
        """Read a run folder's ``results.json`` (``path`` is the folder or the file itself)."""
        return cls.from_dict(read_results_json(path))

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


def read_results_json(path: str | Path) -> dict[str, Any]:
    """A run folder's ``results.json`` as a dict; ConfigError (one line) for anything that is not one."""
    from causal_cli.errors import ConfigError

    folder = Path(path)
    path = folder / "results.json" if folder.is_dir() or not folder.name.endswith(".json") else folder
    if not path.is_file():
        raise ConfigError(f"{path.parent} is not a run folder (it has no results.json)")
    try:
        if path.stat().st_size > MAX_RESULTS_BYTES:
            raise ConfigError(f"{path} is larger than {MAX_RESULTS_BYTES:,} bytes; not a run's results")
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise ConfigError(f"{path} is not readable JSON: {' '.join(str(exc).split())}") from exc
    if not isinstance(payload, dict):
        raise ConfigError(f"{path} is not a run's results (a JSON object)")
    return payload


def _known(cls, row: dict[str, Any]):
    """A row of results.json as ``cls``; keys it does not know (``bias``: derived) are left out."""
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in row.items() if k in names})


def _diagnostics(block: dict[str, Any] | None):
    """The diagnostics block back as a ``Diagnostics`` (its summary numbers are recomputed from the rows)."""
    if block is None:
        return None
    from causal_cli.diagnostics import Diagnostics

    return Diagnostics(
        adjustment=block["adjustment"],
        smd_threshold=block["smd_threshold"],
        balance=block.get("balance") or [],
        overlap=block.get("overlap"),
        weights=block.get("weights"),
    )


def _frame_row(role: str, effect, truth: float | None, error: str | None) -> dict[str, Any]:
    """One row of :meth:`RunResult.to_frame`: ``effect`` is the run itself or one of its comparisons."""
    bias = None if effect.estimate is None or truth is None else effect.estimate - truth
    return dict(
        role=role,
        estimator=effect.estimator,
        estimand=effect.target_units,
        identification=effect.identification,
        estimate=effect.estimate,
        std_error=effect.std_error,
        ci_low=effect.ci_low,
        ci_high=effect.ci_high,
        truth=truth,
        bias=bias,
        error=error,
    )
