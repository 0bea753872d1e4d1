"""Per-unit effect (CATE) learners, cross-fitted: DR-learner (default), T-learner and X-learner.

Each returns out-of-fold predictions: a unit's predicted effect never comes from a model that saw
its own outcome, so GATES and the Qini curve computed from them are honest. The DR- and X-learner
also return a final model fitted on every unit (the reported CATE, as EconML reports it): for PEHE
that beats the out-of-fold fit, which sees only (folds - 1) / folds of the data.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from causal_cli.estimators.outcome import build_model, ols, rows, unit_free

LEARNERS = ("dr", "t", "x")


def _fit_predict(features: np.ndarray, target: np.ndarray, train, test, spec: Any, random_state):
    """Fit ``target ~ features`` on ``train`` rows and predict ``test`` rows (spec None: OLS on [1, M])."""
    if spec is None or spec == "linear":
        design = np.column_stack([np.ones(features.shape[0]), features])
        return rows(design, test) @ ols(rows(design, train), target[train])
    model = unit_free(build_model(spec, random_state))
    model.fit(rows(features, train), target[train])
    return model.predict(rows(features, test))


def dr_learner(M, pseudo, splits, spec, random_state) -> tuple[np.ndarray, np.ndarray]:
    """Regress the AIPW pseudo-outcomes on the modifiers (Kennedy 2023): (out of fold, fitted on all)."""
    tau = np.empty(M.shape[0])
    for train, test in splits:
        tau[test] = _fit_predict(M, pseudo, train, test, spec, random_state)
    every = np.arange(M.shape[0])
    return tau, _fit_predict(M, pseudo, every, every, spec, random_state)


def t_learner(mu1, mu0) -> np.ndarray:
    """The difference of the two out-of-fold outcome models."""
    return mu1 - mu0


def x_learner(M, y, t, mu1, mu0, e, splits, spec, random_state) -> tuple[np.ndarray, np.ndarray]:
    """Imputed effects (treated: y - mu0; control: mu1 - y) regressed on the modifiers per arm,
    blended by the propensity score (Kuenzel et al. 2019)."""
    imputed = np.where(t == 1, y - mu0, mu1 - y)
    tau1, tau0 = np.empty(M.shape[0]), np.empty(M.shape[0])
    for train, test in splits:
        tau1[test] = _fit_predict(M, imputed, train[t[train] == 1], test, spec, random_state)
        tau0[test] = _fit_predict(M, imputed, train[t[train] == 0], test, spec, random_state)
    every = np.arange(M.shape[0])
    full1 = _fit_predict(M, imputed, every[t == 1], every, spec, random_state)
    full0 = _fit_predict(M, imputed, every[t == 0], every, spec, random_state)
    return e * tau0 + (1 - e) * tau1, e * full0 + (1 - e) * full1
