"""The heterogeneity stage: cross-fitted AIPW scores -> segments, CATE, BLP, GATES, targeting.

Runs after the average effect on any backdoor design. Nuisance models see the adjustment set plus
the modifiers; the CATE learners and every test see only the modifiers.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from types import SimpleNamespace
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from causal_cli.errors import ConfigError, DataError
from causal_cli.heterogeneity import calibration, learners, segments, targeting

#: propensity scores are clipped to this band before they divide the scores (documented in the result)
PROPENSITY_CLIP = 0.01


@dataclass
class HeterogeneityResult:
    modifiers: list[str]
    learner: str
    model: str
    n: int
    ate: float
    ate_std_error: float
    segments: list[dict[str, Any]]
    blp: dict[str, Any]
    gates: dict[str, Any]
    qini: dict[str, Any]
    policy: dict[str, Any]
    policy_tree: dict[str, Any] | None
    truth: dict[str, Any] | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    # ``units`` (set by :func:`analyze`, deliberately not a field, so that ``dataclasses.asdict`` of a
    # RunResult never deep-copies the per-unit table): modifiers, predicted effects, scores, truth
    units: ClassVar[pd.DataFrame | None] = None

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["cate_summary"] = self.cate_summary()
        return out

    def cate_summary(self) -> dict[str, float]:
        tau = self.units["cate"].to_numpy()
        q = np.quantile(tau, [0.1, 0.5, 0.9])
        return {
            "mean": float(tau.mean()),
            "sd": float(tau.std()),
            "p10": float(q[0]),
            "p50": float(q[1]),
            "p90": float(q[2]),
        }

    def unit_rows(self) -> list[dict[str, Any]]:
        return self.units.to_dict(orient="records") if self.units is not None else []


def modifiers_of(cfg, graph) -> list[str]:
    node = cfg.get("cate") or {}
    by = list(node.get("by") or []) or list((cfg.get("graph") or {}).get("effect_modifiers") or [])
    return [str(m) for m in by]


def enabled(cfg, graph) -> bool:
    node = cfg.get("cate") or {}
    flag = node.get("enabled")
    if flag is None:
        return bool(modifiers_of(cfg, graph))
    return bool(flag)


def _modifier_matrix(frame: pd.DataFrame, names: list[str]) -> tuple[np.ndarray, list[str]]:
    """Numeric modifiers as they are; text ones one-hot encoded (first level as reference)."""
    blocks, columns = [], []
    for name in names:
        col = frame[name]
        if col.dtype.kind in "biuf":
            blocks.append(col.to_numpy(dtype=float)[:, None])
            columns.append(name)
        else:
            dummies = pd.get_dummies(col.astype(str), prefix=name, drop_first=True, dtype=float)
            blocks.append(dummies.to_numpy())
            columns += list(dummies.columns)
    return np.column_stack(blocks), columns


def restore_categoricals(frame: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """A modifier listed in ``data.categorical`` arrives one-hot encoded: rebuild its level column."""
    from causal_cli.data import DUMMIES

    dummies = frame.attrs.get(DUMMIES) or {}
    restored = {}
    for name in names:
        if name not in frame.columns and dummies.get(name):
            columns = dummies[name]
            block = frame[columns].to_numpy()
            levels = np.array(["(reference level)", *[c[len(name) + 1 :] for c in columns]], dtype=object)
            restored[name] = levels[np.where(block.any(axis=1), block.argmax(axis=1) + 1, 0)]
    return frame.assign(**restored) if restored else frame


def analyze(
    cfg, frame: pd.DataFrame, graph, data, truth: np.ndarray | None, random_state
) -> HeterogeneityResult:
    from scipy import stats

    from causal_cli.estimators.base import EstimationData
    from causal_cli.estimators.outcome import cross_fit_outcome, cross_fitted_scores

    node = cfg.cate
    names = modifiers_of(cfg, graph)
    frame = restore_categoricals(frame, names)
    missing = [m for m in names if m not in frame.columns]
    if missing:
        raise ConfigError(
            f"cate.by / graph.effect_modifiers name column(s) {', '.join(missing)} not in the data"
        )
    if graph.treatment in names or graph.outcome in names:
        raise ConfigError("cate.by may not include the treatment or the outcome")
    learner = str(node.learner)
    if learner not in learners.LEARNERS:
        raise ConfigError(f"cate.learner={learner!r}; allowed: {', '.join(learners.LEARNERS)}")
    if set(np.unique(data.t)) - {0.0, 1.0}:
        raise DataError(f"the heterogeneity stage needs a 0/1 treatment; {graph.treatment} has other values")

    M, m_columns = _modifier_matrix(frame, names)
    extra = [j for j, c in enumerate(m_columns) if c not in data.covariates]
    X = np.column_stack([data.X, M[:, extra]]) if extra else data.X
    nuisance = EstimationData(t=data.t, y=data.y, X=np.ascontiguousarray(X))
    holder = SimpleNamespace(
        folds=int(node.folds),
        propensity_model=node.get("propensity_model"),
        propensity_C=float(node.get("propensity_C", 1.0)),
        random_state=random_state,
    )
    splits, e = cross_fitted_scores(holder, nuisance)
    e = np.clip(e, PROPENSITY_CLIP, 1 - PROPENSITY_CLIP)
    mu1, mu0 = cross_fit_outcome(nuisance, splits, node.get("outcome_model"), random_state, by_arm=True)
    t, y = data.t, data.y
    scores = mu1 - mu0 + t * (y - mu1) / e - (1 - t) * (y - mu0) / (1 - e)

    spec = node.get("model")
    # tau: out of fold (ranks GATES and the Qini curve); cate: the reported per-unit effect
    if learner == "dr":
        tau, cate = learners.dr_learner(M, scores, splits, spec, random_state)
    elif learner == "t":
        if spec is not None and spec != "linear":
            mu1, mu0 = cross_fit_outcome(nuisance, splits, spec, random_state, by_arm=True)
        tau = cate = learners.t_learner(mu1, mu0)
    else:
        tau, cate = learners.x_learner(M, y, t, mu1, mu0, e, splits, spec, random_state)

    z = float(stats.norm.ppf(0.5 + float(node.ci_level) / 2))
    ate, ate_se = segments.mean_effect(scores)
    segment_tables = [
        segments.segment_effects(name, segments.segment_labels(frame[name], int(node.bins)), scores, z, truth)
        for name in names
    ]
    blp = calibration.best_linear_projection(M, m_columns, scores, z)
    fold = np.empty(len(frame), dtype=int)
    for k, (_, test) in enumerate(splits):
        fold[test] = k
    gates = calibration.gates(tau, scores, int(node.groups), float(node.ci_level), truth, fold)
    qini = targeting.qini_curve(tau, scores, folds=fold)
    policy = targeting.policy_values(tau, scores, float(node.cost), z)
    tree = (
        targeting.policy_tree(M, m_columns, scores, float(node.cost), int(node.tree_depth), random_state)
        if int(node.tree_depth) > 0
        else None
    )
    units = pd.DataFrame({name: frame[name].to_numpy() for name in names})
    units["cate"] = cate
    units["cate_out_of_fold"] = tau
    units["dr_score"] = scores
    truth_block = None
    if truth is not None:
        units["true_effect"] = truth
        seg_rows = [r for table in segment_tables for r in table["segments"]]
        truth_block = {
            "pehe": float(np.sqrt(np.mean((cate - truth) ** 2))),
            "pehe_out_of_fold": float(np.sqrt(np.mean((tau - truth) ** 2))),
            "true_ate": float(truth.mean()),
            "true_cate_sd": float(truth.std()),
            "segment_coverage": float(np.mean([r["covers"] for r in seg_rows])),
            "segment_mean_abs_bias": float(np.mean([abs(r["bias"]) for r in seg_rows])),
            "segments": len(seg_rows),
            "cate_corr": float(np.corrcoef(cate, truth)[0, 1])
            if np.std(cate) > 0 and np.std(truth) > 0
            else None,
        }
    result = HeterogeneityResult(
        modifiers=names,
        learner=learner,
        model=_model_name(spec),
        n=int(len(frame)),
        ate=ate,
        ate_std_error=ate_se,
        segments=segment_tables,
        blp=blp,
        gates=gates,
        qini=qini,
        policy=policy,
        policy_tree=tree,
        truth=truth_block,
        settings={
            "folds": int(node.folds),
            "bins": int(node.bins),
            "groups": int(node.groups),
            "ci_level": float(node.ci_level),
            "cost": float(node.cost),
            "propensity_clip": PROPENSITY_CLIP,
            "nuisance_features": list(data.covariates) + [m_columns[j] for j in extra],
            "outcome_model": _model_name(node.get("outcome_model")),
        },
    )
    result.units = units
    return result


def _model_name(spec) -> str:
    from causal_cli.estimators.outcome import model_name

    return model_name(spec, "linear (OLS)")
