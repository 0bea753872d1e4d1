"""Who to target: the Qini (uplift) curve, the value of a treat-if-worth-it policy, and a readable policy tree.

All values are estimated from the doubly robust scores: treating a set S of units gains
``sum_{i in S} score_i`` (per unit of the population: divided by n), which is unbiased for the
effect of treating S whatever the learner got wrong.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def qini_curve(tau_hat: np.ndarray, scores: np.ndarray, points: int = 21, folds=None) -> dict[str, Any]:
    """Cumulative gain per unit of the population when the top share (by predicted effect) is treated.

    Units are ordered by their rank within their cross-fitting fold (see ``calibration.within_fold_rank``).

    The area is the mean gap between this curve and random targeting (the straight line to the
    treat-everyone gain) over shares 0..1: positive when the ranking finds the people who gain most.
    """
    n = tau_hat.shape[0]
    from causal_cli.heterogeneity.calibration import within_fold_rank

    order = np.argsort(-within_fold_rank(tau_hat, folds), kind="stable")
    cumulative = np.concatenate([[0.0], np.cumsum(scores[order])]) / n
    shares = np.linspace(0, 1, points)
    gain = cumulative[np.round(shares * n).astype(int)]
    full = np.arange(n + 1) / n
    area = float(np.mean(cumulative - full * cumulative[-1]))
    return {
        "curve": [
            {"share_treated": float(q), "gain": float(g), "random": float(q * cumulative[-1])}
            for q, g in zip(shares, gain)
        ],
        "area": area,
    }


def policy_values(tau_hat: np.ndarray, scores: np.ndarray, cost: float, z: float) -> dict[str, Any]:
    """Net value per unit (effect minus ``cost`` for each treated unit) of three policies, with CIs."""
    net = scores - cost
    treat = (tau_hat > cost).astype(float)

    def value(contrib: np.ndarray) -> dict[str, float]:
        v, se = float(contrib.mean()), float(contrib.std(ddof=1) / np.sqrt(contrib.size))
        return {"value": v, "std_error": se, "ci_low": v - z * se, "ci_high": v + z * se}

    return {
        "cost": float(cost),
        "share_treated": float(treat.mean()),
        "targeted": value(treat * net),
        "treat_all": value(net),
        "treat_none": {"value": 0.0, "std_error": 0.0, "ci_low": 0.0, "ci_high": 0.0},
        "targeted_minus_treat_all": value(treat * net - net),
    }


def policy_tree(
    M: np.ndarray, names: list[str], scores: np.ndarray, cost: float, depth: int, random_state
) -> dict[str, Any]:
    """A shallow tree that decides whom to treat: weighted classification of sign(score - cost)
    with weights |score - cost| (the policy-learning reduction of Athey & Wager 2021)."""
    from sklearn.tree import DecisionTreeClassifier, export_text

    net = scores - cost
    label = (net > 0).astype(int)
    seed = int(np.random.default_rng(random_state).integers(2**31))
    if label.min() == label.max():
        return {
            "rules": f"treat {'everyone' if label[0] else 'no one'}",
            "share_treated": float(label[0]),
            "depth": 0,
        }
    tree = DecisionTreeClassifier(
        max_depth=depth, min_samples_leaf=max(20, M.shape[0] // 50), random_state=seed
    )
    tree.fit(M, label, sample_weight=np.abs(net))
    treat = tree.predict(M)
    rules = export_text(tree, feature_names=list(names), class_names=["no", "treat"], decimals=2)
    return {
        "rules": rules.rstrip(),
        "depth": int(tree.get_depth()),
        "share_treated": float(treat.mean()),
        "value": float(np.mean(treat * net)),
    }
