"""Propensity models: a fast penalized-logistic Newton solver, or any scikit-learn classifier.

The built-in model standardises the covariates inside the fit (centred, divided by their population SD;
a constant covariate is only centred and gets no coefficient) and puts an L2 penalty ``1 / (2 C)`` on
the standardised slopes (free intercept): the objective of scikit-learn's
``make_pipeline(StandardScaler(), LogisticRegression(C=C))``. So the scores do not depend on the units of
any confounder (recording a covariate in cents rather than dollars changes nothing), and ``C`` has one
meaning on every data set: the penalty is a normal prior with variance ``C`` on each standardised slope
(log-odds per SD), so ``C = 1`` matters at a few dozen rows or under separation and is negligible at
thousands; ``propensity_C: .inf`` in YAML (``estimator.propensity_C=inf`` on the command line) fits without penalty.
An unpenalised fit that diverges (the covariates separate treated from control units) is an error
naming the fix, never silent scores of 0 and 1. A scikit-learn classifier gets a ``StandardScaler`` in
front for the same reason. It is built for refuter simulations, which refit it hundreds of
times: it warm-starts from the original fit, keeps the design column-major, and stops re-forming
the Hessian once the steps are tiny (3-4 passes over the data per refit at a million rows).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from causal_cli.errors import EstimationError
from causal_cli.estimators import kernels
from causal_cli.numerics import one_blas_thread


def sigmoid(eta: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``1 / (1 + exp(-clip(eta, -35, 35)))`` in place (into ``out``), bit-identical to the plain expression."""
    out = np.clip(eta, -35, 35, out=out)
    np.negative(out, out=out)
    np.exp(out, out=out)
    out += 1.0
    return np.reciprocal(out, out=out)


def columns_of(design: np.ndarray) -> np.ndarray:
    """``design`` as a C-contiguous ``(p, n)`` array: a tall, skinny product is ~10x faster this way than
    through BLAS on the row-major ``(n, p)`` layout (1.3 ms vs 18 ms at a million rows)."""
    return np.ascontiguousarray(design.T)


def fit_logistic(
    design: np.ndarray,
    t: np.ndarray,
    C: float = 1.0,
    init: np.ndarray | None = None,
    max_iter: int = 50,
    tol: float = 1e-10,
) -> np.ndarray:
    """Coefficients of ``P(t=1) = sigmoid(design @ beta)``; column 0 of ``design`` is the intercept."""
    return fit_logistic_columns(columns_of(design), t, C, init, max_iter, tol)


#: once Newton steps are this small (relative), the Hessian barely changes: keep the last one
FROZEN_HESSIAN_STEP = 1e-4
#: a step that raises the loss is halved at most this many times in a row
MAX_HALVINGS = 30
#: rows used to choose the starting point of a warm-started fit
START_SUBSAMPLE = 2_000
#: above this many rows a fit without a warm start starts from a fit on START_SUBSAMPLE_ROWS of them (at
#: most this many rows give the same numbers as before, bit for bit)
SUBSAMPLE_START_ROWS = 1_000_000
START_SUBSAMPLE_ROWS = 200_000
#: a fit that has not converged with a linear predictor this far from 0 (scores within 1e-13 of 0 or 1)
#: is diverging: the covariates (nearly) separate treated from control units
SEPARATION_ETA = 30.0


class Standardizer:
    """The map between coefficients on the covariates as given (``beta``) and on standardised ones (``gamma``).

    ``gamma`` belongs to ``(x - mean) / sd`` (population SD, as scikit-learn's ``StandardScaler``), so
    ``gamma_j = beta_j * sd_j`` and ``gamma_0 = beta_0 + sum_j beta_j * mean_j``. The penalty and the
    convergence test live on ``gamma``: the fit does not depend on any covariate's units. A constant
    covariate is centred only; its standardised column is all zeros, so its coefficient stays 0 (the
    intercept absorbs it).
    """

    def __init__(self, columns: np.ndarray):
        n = columns.shape[1]
        if columns.flags.c_contiguous:
            mean = columns.sum(axis=1) / n
            square = np.einsum("ij,ij->i", columns, columns) / n
        else:  # e.g. a row subset: one BLAS product is 2x faster than the reductions here (row 0 is all ones)
            gram = columns @ columns.T / n
            mean, square = gram[0].copy(), np.diag(gram).copy()
        var = square - mean**2
        # sum of squares minus squared mean cancels when the mean dwarfs the spread: recompute those rows
        for j in np.flatnonzero(var[1:] <= 1e-6 * square[1:]) + 1:  # row 0 is the intercept
            var[j] = np.mean((columns[j] - mean[j]) ** 2)
        sd = np.sqrt(np.maximum(var, 0.0))
        mean[0], sd[0] = 0.0, 1.0
        self.constant = sd <= 1e-12 * np.abs(mean)
        self.constant[0] = False
        self.mean = mean
        self.scale = np.where(self.constant, 1.0, sd)
        # beta = jacobian @ gamma
        jacobian = np.diag(1.0 / self.scale)
        jacobian[0, 1:] = -mean[1:] / self.scale[1:]
        self.jacobian = jacobian

    def to_gamma(self, beta: np.ndarray) -> np.ndarray:
        gamma = beta * self.scale
        gamma[0] = beta[0] + beta[1:] @ self.mean[1:]
        gamma[self.constant] = 0.0
        return gamma

    def to_beta(self, gamma: np.ndarray) -> np.ndarray:
        return self.jacobian @ gamma

    def penalty(self, C) -> np.ndarray:
        """The L2 penalty per standardised coefficient: ``1/C`` on the slopes, none on the intercept."""
        penalty = np.full(self.scale.shape[0], 0.0 if C is None or C == np.inf else 1.0 / C)
        penalty[0] = 0.0
        return penalty


_STANDARDIZER: tuple[Any, Standardizer] | None = None


def standardizer(columns: np.ndarray) -> Standardizer:
    """:class:`Standardizer` of ``columns``, kept for the last array seen: refuter simulations refit the
    same covariates hundreds of times (a permuted treatment, a new outcome) and pay for it once."""
    global _STANDARDIZER
    import weakref

    if _STANDARDIZER is not None and _STANDARDIZER[0]() is columns:
        return _STANDARDIZER[1]
    found = Standardizer(columns)
    _STANDARDIZER = (weakref.ref(columns), found)
    return found


def fit_logistic_columns(
    columns: np.ndarray,
    t: np.ndarray,
    C: float = 1.0,
    init: np.ndarray | None = None,
    max_iter: int = 50,
    tol: float = 1e-10,
) -> np.ndarray:
    """:func:`fit_logistic` on the transposed design ``columns`` (``(p, n)``, row 0 all ones).

    Newton's method on the standardised covariates (see :class:`Standardizer`; the data are never
    copied: the Hessian and gradient are formed on ``columns`` and mapped), with step halving (a step
    that raises the penalized loss is halved), started from ``init`` or from the intercept-only fit,
    whichever has the lower loss (a permuted treatment, as in a placebo simulation, is far from the
    original fit but close to the intercept-only one). Near the optimum the Hessian is kept from the
    previous step: the same fixed point (zero gradient), at a third of the cost per step.
    """
    with one_blas_thread():
        return _newton(columns, np.asarray(t, dtype=float), C, init, max_iter, tol)


def _newton(columns: np.ndarray, t: np.ndarray, C, init, max_iter: int, tol: float) -> np.ndarray:
    p, n = columns.shape
    std = standardizer(columns)
    jac = std.jacobian
    penalty = std.penalty(C)
    free = ~std.constant
    gamma = _start(columns, t, std, penalty, init)
    sums = _KernelPass(columns, t) if kernels.available(n) else _NumpyPass(columns, t)
    ridge = np.diag(penalty + 1e-12)
    hess, frozen, step, best_loss, halvings, converged = None, False, None, np.inf, 0, False
    for _ in range(max_iter):
        loglik = sums.at(jac @ gamma, with_loss=not frozen)
        if not frozen:
            loss = float(-loglik + 0.5 * penalty @ gamma**2)
            if loss > best_loss + 1e-12 * abs(best_loss) and halvings < MAX_HALVINGS:
                step *= 0.5
                gamma = gamma + step  # halfway back
                halvings += 1
                continue
            best_loss, halvings = min(loss, best_loss), 0
        grad = jac.T @ sums.gradient() + penalty * gamma
        grad[~free] = 0.0
        if not frozen:
            hess = jac.T @ sums.hessian() @ jac
            hess[~free, :] = 0.0
            hess[:, ~free] = 0.0
            hess += ridge
        try:
            step = np.linalg.solve(hess, grad)
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(hess, grad, rcond=None)[0]
        gamma = gamma - step
        size = np.max(np.abs(step)) / (1 + np.max(np.abs(gamma)))
        if size < tol:
            converged = True
            break
        frozen = size < FROZEN_HESSIAN_STEP
    beta = std.to_beta(gamma)
    diverging = (
        not converged and np.all(np.isfinite(beta)) and np.max(np.abs(beta @ columns)) > SEPARATION_ETA
    )
    if diverging or not np.all(np.isfinite(beta)):
        raise EstimationError(
            "the propensity model diverges: the covariates (nearly) separate treated from control units, so "
            "some scores are 0 or 1; keep estimator.propensity_C finite (a penalty; default 1) or drop the "
            "covariate that separates them"
        )
    return beta


class _NumpyPass:
    """The sums of one Newton step with numpy, each formed when asked for (the reference)."""

    def __init__(self, columns: np.ndarray, t: np.ndarray):
        self.columns, self.t, self.not_t = columns, t, 1.0 - t
        self.eta = np.empty(columns.shape[1])
        self.mu = np.empty(columns.shape[1])

    def at(self, beta: np.ndarray, with_loss: bool) -> float | None:
        """Move to ``beta``; the log-likelihood there when ``with_loss``."""
        np.dot(beta, self.columns, out=self.eta)
        sigmoid(self.eta, out=self.mu)
        if with_loss:
            return float(self.t @ np.log(self.mu) + self.not_t @ np.log1p(-self.mu))
        return None

    def gradient(self) -> np.ndarray:
        return self.columns @ (self.mu - self.t)

    def hessian(self) -> np.ndarray:
        return _hessian(self.columns, self.mu * (1.0 - self.mu))


class _KernelPass:
    """:class:`_NumpyPass` from one compiled pass over the rows (:func:`kernels.newton_sums`)."""

    def __init__(self, columns: np.ndarray, t: np.ndarray):
        self.columns, self.t = columns, np.ascontiguousarray(t, dtype=np.float64)
        self.sums = None

    def at(self, beta: np.ndarray, with_loss: bool) -> float | None:
        self.sums = kernels.newton_sums(beta, self.columns, self.t, with_loss, with_loss)
        return self.sums[0] if with_loss else None

    def gradient(self) -> np.ndarray:
        return self.sums[1]

    def hessian(self) -> np.ndarray:
        return self.sums[2]


def _hessian(columns: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``columns @ diag(w) @ columns.T``; row 0 of ``columns`` is all ones, so its entries are plain sums."""
    p = columns.shape[0]
    hess = np.empty((p, p))
    hess[0, 0] = w.sum()
    if p > 1:
        weighted = columns[1:] * w
        hess[1:, :] = weighted @ columns.T
        hess[0, 1:] = hess[1:, 0]
    return hess


def _start(
    columns: np.ndarray, t: np.ndarray, std: Standardizer, penalty: np.ndarray, init: np.ndarray | None
) -> np.ndarray:
    """The better of ``init`` and the intercept-only fit (as standardised coefficients), by penalized loss
    on an evenly spaced subsample.

    Only the starting point depends on the subsample, never the optimum Newton converges to.
    """
    p, n = columns.shape
    share = float(np.clip(t.mean(), 1e-12, 1 - 1e-12))
    intercept_only = np.zeros(p)
    intercept_only[0] = np.log(share / (1 - share))
    if init is None and n > SUBSAMPLE_START_ROWS:
        init = _subsample_fit(columns, t, C=None if not penalty[1:].any() else 1.0 / penalty[1:].max())
    if init is None or init.shape != (p,):
        return intercept_only
    init = std.to_gamma(np.asarray(init, dtype=float))
    if not np.all(np.isfinite(init)):
        return intercept_only
    stride = max(1, n // START_SUBSAMPLE)
    cols, tt = columns[:, ::stride], t[::stride]
    diff = std.to_beta(init) - intercept_only
    eta = intercept_only[0] + diff @ cols
    # penalized loss(init) - loss(intercept_only); softplus(x) = max(x, 0) + log1p(exp(-|x|))
    softplus = np.maximum(eta, 0.0) + np.log1p(np.exp(-np.abs(eta)))
    softplus_io = np.logaddexp(0.0, intercept_only[0])
    gain = (softplus.sum() - tt @ eta) - (tt.size * softplus_io - tt.sum() * intercept_only[0])
    gain = gain * n / tt.size + 0.5 * penalty @ init**2
    return init if gain <= 0 else intercept_only


def _subsample_fit(columns: np.ndarray, t: np.ndarray, C) -> np.ndarray | None:
    """The model fitted on an evenly spaced subsample of :data:`START_SUBSAMPLE_ROWS` rows: a cold start
    close to the optimum, so the fit on all rows needs two or three passes instead of five or six.
    Only the starting point; Newton's method then converges on all rows to the same optimum."""
    stride = -(-columns.shape[1] // START_SUBSAMPLE_ROWS)
    sample, sample_t = np.ascontiguousarray(columns[:, ::stride]), t[::stride]
    if sample_t.min() == sample_t.max():
        return None
    try:
        return _newton(sample, sample_t, C, None, 50, 1e-6)
    except EstimationError:
        return None


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
        columns = data.columns
        beta = fit_logistic_columns(columns, data.t, C=C, init=warm_start_for(warm_start, columns.shape[0]))
        with one_blas_thread():
            return sigmoid(beta @ columns), beta
    clf = scaled_classifier(build_sklearn(model))
    clf.fit(data.X, data.t.astype(int))
    return clf.predict_proba(data.X)[:, 1], None


def scaled_classifier(model):
    """A fresh copy of ``model`` behind a ``StandardScaler``: a penalised linear model then does not depend
    on the covariates' units either (trees and other rank-based models are unaffected)."""
    from sklearn.base import clone
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), clone(model))


def build_sklearn(spec: Any):
    """A scikit-learn estimator from ``{_target_: dotted.Class, **params}`` (or an instance)."""
    from causal_cli import trust

    return trust.build_model(spec)
