"""Propensity models: a fast penalized-logistic Newton solver, or any scikit-learn classifier.

The built-in model minimises the same objective as scikit-learn's default
``LogisticRegression(C=1.0)`` (L2 on the slopes, free intercept), so its scores agree with
DoWhy's propensity estimators, but it runs on the prebuilt design matrix and can warm-start from
a previous fit, which is what refuter simulations need.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from causal_cli.errors import EstimationError


def fit_logistic(
    design: np.ndarray,
    t: np.ndarray,
    C: float = 1.0,
    init: np.ndarray | None = None,
    max_iter: int = 50,
    tol: float = 1e-10,
) -> np.ndarray:
    """Coefficients of ``P(t=1) = sigmoid(design @ beta)``; column 0 of ``design`` is the intercept."""
    n, p = design.shape
    beta = np.zeros(p) if init is None or init.shape != (p,) else init.astype(float).copy()
    penalty = np.full(p, 0.0 if C is None or C == np.inf else 1.0 / C)
    penalty[0] = 0.0
    for _ in range(max_iter):
        eta = design @ beta
        mu = 1.0 / (1.0 + np.exp(-np.clip(eta, -35, 35)))
        grad = design.T @ (mu - t) + penalty * beta
        w = mu * (1.0 - mu)
        hess = (design * w[:, None]).T @ design
        hess[np.diag_indices(p)] += penalty + 1e-12
        try:
            step = np.linalg.solve(hess, grad)
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(hess, grad, rcond=None)[0]
        beta -= step
        if np.max(np.abs(step)) < tol * (1 + np.max(np.abs(beta))):
            break
    if not np.all(np.isfinite(beta)):
        raise EstimationError("the propensity model did not converge (non-finite coefficients)")
    return beta


def warm_start_for(previous: np.ndarray | None, p: int) -> np.ndarray | None:
    """Reuse a previous fit's coefficients; extra covariates (e.g. a random common cause) start at 0."""
    if previous is None:
        return None
    if previous.shape[0] == p:
        return previous
    if previous.shape[0] < p:
        return np.concatenate([previous, np.zeros(p - previous.shape[0])])
    return None


def propensity_scores(
    data, model: Any = None, C: float = 1.0, warm_start: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Return ``(scores, coefficients)``; coefficients are None for a scikit-learn model."""
    if model is None or model == "logistic":
        if data.X.shape[1] == 0:
            p = np.full(data.n, data.t.mean())
            return p, None
        beta = fit_logistic(data.design, data.t, C=C, init=warm_start_for(warm_start, data.design.shape[1]))
        eta = data.design @ beta
        return 1.0 / (1.0 + np.exp(-np.clip(eta, -35, 35))), beta
    from sklearn.base import clone

    clf = clone(build_sklearn(model))
    clf.fit(data.X, data.t.astype(int))
    return clf.predict_proba(data.X)[:, 1], None


def build_sklearn(spec: Any):
    """A scikit-learn estimator from ``{_target_: dotted.Class, **params}`` (or an instance)."""
    if hasattr(spec, "fit"):
        return spec
    from hydra.utils import instantiate

    try:
        return instantiate(dict(spec))
    except Exception as exc:  # noqa: BLE001 - reported as a one-line config error
        from causal_cli.errors import ConfigError

        target = dict(spec).get("_target_", "?")
        raise ConfigError(f"cannot build model '{target}': {exc}") from exc
