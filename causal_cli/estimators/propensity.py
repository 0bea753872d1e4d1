"""Propensity models: a fast penalized-logistic Newton solver, or any scikit-learn classifier.

The built-in model minimises the same objective as scikit-learn's default
``LogisticRegression(C=1.0)`` (L2 on the slopes, free intercept), so its scores agree with
DoWhy's propensity estimators. It is built for refuter simulations, which refit it hundreds of
times: it warm-starts from the original fit, keeps the design column-major, and stops re-forming
the Hessian once the steps are tiny (3-4 passes over the data per refit at a million rows).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any

import numpy as np

from causal_cli.errors import EstimationError


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


_BLAS = None


@contextmanager
def one_blas_thread():
    """BLAS limited to one thread: its threads only add overhead on these tall, skinny products, and on a
    busy machine they slowed psm's refits 3.5x (10 placebo refits at 100k rows: 0.93 s vs 0.27 s).

    Re-entrant: inside an outer limit (a run of simulations) it costs nothing; each real limit costs
    ~12 us, twice per refit."""
    global _BLAS, _LIMITED
    if _BLAS is None:
        try:
            from threadpoolctl import ThreadpoolController

            _BLAS = ThreadpoolController()
        except ImportError:  # pragma: no cover - installed with scikit-learn
            _BLAS = False
    if not _BLAS or _LIMITED:
        yield
        return
    with _BLAS.limit(limits=1, user_api="blas"):
        _LIMITED = True
        try:
            yield
        finally:
            _LIMITED = False


_LIMITED = False


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


def fit_logistic_columns(
    columns: np.ndarray,
    t: np.ndarray,
    C: float = 1.0,
    init: np.ndarray | None = None,
    max_iter: int = 50,
    tol: float = 1e-10,
) -> np.ndarray:
    """:func:`fit_logistic` on the transposed design ``columns`` (``(p, n)``, row 0 all ones).

    Newton's method with step halving (a step that raises the penalized loss is halved), started
    from ``init`` or from the intercept-only fit, whichever has the lower loss (a permuted
    treatment, as in a placebo simulation, is far from the original fit but close to the
    intercept-only one). Near the optimum the Hessian is kept from the previous step: the same fixed
    point (zero gradient), at a third of the cost per step.
    """
    with one_blas_thread():
        return _newton(columns, np.asarray(t, dtype=float), C, init, max_iter, tol)


def _newton(columns: np.ndarray, t: np.ndarray, C, init, max_iter: int, tol: float) -> np.ndarray:
    p, n = columns.shape
    penalty = np.full(p, 0.0 if C is None or C == np.inf else 1.0 / C)
    penalty[0] = 0.0
    beta = _start(columns, t, penalty, init)
    eta = np.empty(n)
    mu = np.empty(n)
    not_t = 1.0 - t
    ridge = np.diag(penalty + 1e-12)
    hess, frozen, step, best_loss, halvings = None, False, None, np.inf, 0
    for _ in range(max_iter):
        np.dot(beta, columns, out=eta)
        sigmoid(eta, out=mu)
        if not frozen:
            loss = _loss(mu, t, not_t, beta, penalty)
            if loss > best_loss + 1e-12 * abs(best_loss) and halvings < MAX_HALVINGS:
                step *= 0.5
                beta = beta + step  # halfway back
                halvings += 1
                continue
            best_loss, halvings = min(loss, best_loss), 0
        grad = columns @ (mu - t) + penalty * beta
        if not frozen:
            hess = _hessian(columns, mu * (1.0 - mu))
            hess += ridge
        try:
            step = np.linalg.solve(hess, grad)
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(hess, grad, rcond=None)[0]
        beta = beta - step
        size = np.max(np.abs(step)) / (1 + np.max(np.abs(beta)))
        if size < tol:
            break
        frozen = size < FROZEN_HESSIAN_STEP
    if not np.all(np.isfinite(beta)):
        raise EstimationError("the propensity model did not converge (non-finite coefficients)")
    return beta


def _loss(mu: np.ndarray, t: np.ndarray, not_t: np.ndarray, beta: np.ndarray, penalty: np.ndarray) -> float:
    """Penalized negative log-likelihood (``mu`` is clipped away from 0 and 1 by ``sigmoid``; ``not_t = 1 - t``)."""
    loglik = t @ np.log(mu) + not_t @ np.log1p(-mu)
    return float(-loglik + 0.5 * penalty @ beta**2)


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


def _start(columns: np.ndarray, t: np.ndarray, penalty: np.ndarray, init: np.ndarray | None) -> np.ndarray:
    """The better of ``init`` and the intercept-only fit, by penalized loss on an evenly spaced subsample.

    Only the starting point depends on the subsample, never the optimum Newton converges to.
    """
    p, n = columns.shape
    share = float(np.clip(t.mean(), 1e-12, 1 - 1e-12))
    intercept_only = np.zeros(p)
    intercept_only[0] = np.log(share / (1 - share))
    if init is None or init.shape != (p,):
        return intercept_only
    init = np.asarray(init, dtype=float)
    stride = max(1, n // START_SUBSAMPLE)
    cols, tt = columns[:, ::stride], t[::stride]
    diff = init - intercept_only
    eta = intercept_only[0] + diff @ cols
    # penalized loss(init) - loss(intercept_only); softplus(x) = max(x, 0) + log1p(exp(-|x|))
    softplus = np.maximum(eta, 0.0) + np.log1p(np.exp(-np.abs(eta)))
    softplus_io = np.logaddexp(0.0, intercept_only[0])
    gain = (softplus.sum() - tt @ eta) - (tt.size * softplus_io - tt.sum() * intercept_only[0])
    gain = gain * n / tt.size + 0.5 * penalty @ init**2
    return init.copy() if gain <= 0 else intercept_only


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
    from sklearn.base import clone

    clf = clone(build_sklearn(model))
    clf.fit(data.X, data.t.astype(int))
    return clf.predict_proba(data.X)[:, 1], None


def build_sklearn(spec: Any):
    """A scikit-learn estimator from ``{_target_: dotted.Class, **params}`` (or an instance)."""
    from causal_cli import trust

    return trust.build_model(spec)
