"""Data shapes for the coverage grid (benchmarks/coverage_grid.py), each with known potential outcomes.

Every cell draws covariates ``X``, a true propensity ``e(X)``, a treatment ``t ~ Bernoulli(e)``, an
untreated outcome ``y0 = m(X) + noise`` and a unit effect ``tau(X)``; the observed outcome is
``y0 + t * tau``. So the sample ATE is ``mean(tau)``, the sample ATT ``mean(tau[t == 1])``, and the
population values are ``E[tau]`` and ``E[tau e] / E[e]`` (:func:`population_truth`, a large Monte Carlo).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


def expit(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


@dataclass(frozen=True)
class Draw:
    X: np.ndarray
    e: np.ndarray
    t: np.ndarray
    y: np.ndarray
    tau: np.ndarray
    names: tuple[str, ...]
    #: E[y0 | X]: the untreated outcome without its noise (so y - m - t * tau is the noise)
    m: np.ndarray | None = None


@dataclass(frozen=True)
class Cell:
    name: str
    n: int
    quick_n: int
    about: str
    simulate: Callable[[int, np.random.Generator], Draw]
    #: E[tau], known in closed form for every cell (the ATT has none: it is simulated)
    exact_ate: float = 2.0


BASE_PS = np.array([0.6, -0.5, 0.4, 0.3, -0.3])
BASE_OUTCOME = np.array([1.0, 0.8, -0.6, 0.5, 0.4])
CONSTANT_EFFECT = 2.0


def finish(X, index, m, tau, rng, names=None, noise_sd=1.0) -> Draw:
    """Treatment from the true propensity, outcome = m + t * tau + N(0, noise_sd) noise."""
    n = X.shape[0]
    e = expit(index)
    t = (rng.random(n) < e).astype(float)
    tau = np.broadcast_to(np.asarray(tau, dtype=float), (n,)).copy()
    y = m + t * tau + noise_sd * rng.standard_normal(n)
    names = names or tuple(f"x{j + 1}" for j in range(X.shape[1]))
    return Draw(X=X, e=e, t=t, y=y, tau=tau, names=names, m=np.broadcast_to(m, (n,)).copy())


def linear_cell(Z: np.ndarray, rng, ps_scale: float = 1.0, tau=CONSTANT_EFFECT, X=None, names=None) -> Draw:
    """The baseline structural model on standardised confounders ``Z`` (observed as ``X``, default ``Z``)."""
    index = 0.2 + ps_scale * (Z @ BASE_PS)
    m = 1.0 + Z @ BASE_OUTCOME
    return finish(Z if X is None else X, index, m, tau, rng, names)


def baseline(n, rng):
    return linear_cell(rng.standard_normal((n, 5)), rng)


def limited_overlap(n, rng):
    # index SD ~1.95: ~12% of true scores fall outside [0.05, 0.95]
    return linear_cell(rng.standard_normal((n, 5)), rng, ps_scale=2.0)


def heterogeneous(n, rng):
    Z = rng.standard_normal((n, 5))
    tau = 2.0 + 2.0 * Z[:, 0] - 1.0 * Z[:, 1] + 0.5 * Z[:, 2]
    return linear_cell(Z, rng, tau=tau)


def mixed_scales(n, rng):
    """Baseline's model on affine transforms of its confounders: dollars, a proportion, a count, years."""
    Z = rng.standard_normal((n, 5))
    visits = rng.poisson(9.0, n).astype(float)
    Z[:, 2] = (visits - 9.0) / 3.0
    X = np.column_stack(
        [
            60_000 + 20_000 * Z[:, 0],  # income, $ (SD 20,000)
            0.5 + 0.16 * Z[:, 1],  # share, a proportion (SD 0.16)
            visits,  # a count (Poisson, mean 9)
            5.0 + 2.0 * Z[:, 3],  # tenure, years
            40.0 + 12.0 * Z[:, 4],  # age, years
        ]
    )
    return linear_cell(Z, rng, X=X, names=("income_usd", "share", "visits", "tenure_years", "age"))


def misspecified(n, rng):
    """Kang & Schafer (2007): linear in latent Z, observed only through nonlinear transforms X."""
    Z = rng.standard_normal((n, 4))
    index = -Z[:, 0] + 0.5 * Z[:, 1] - 0.25 * Z[:, 2] - 0.1 * Z[:, 3]
    m = 210.0 + 27.4 * Z[:, 0] + 13.7 * (Z[:, 1] + Z[:, 2] + Z[:, 3])
    X = np.column_stack(
        [
            np.exp(Z[:, 0] / 2),
            Z[:, 1] / (1 + np.exp(Z[:, 0])) + 10,
            (Z[:, 0] * Z[:, 2] / 25 + 0.6) ** 3,
            (Z[:, 1] + Z[:, 3] + 20) ** 2,
        ]
    )
    return finish(X, index, m, 10.0, rng)


MANY_PS = np.array([0.5, -0.4, 0.3, 0.3, -0.3, 0.2, 0.2, -0.2])
MANY_OUTCOME = np.array([1.0, 0.8, -0.6, 0.5, 0.4, 0.3, -0.3, 0.2])
MANY_PROGNOSTIC = np.array([1.0, -0.8, 0.6, 0.5])


def many_covariates(n, rng):
    """20 covariates: 8 confounders, 4 outcome-only, 8 irrelevant (no effect on treatment or outcome)."""
    X = rng.standard_normal((n, 20))
    index = 0.2 + X[:, :8] @ MANY_PS
    m = 1.0 + X[:, :8] @ MANY_OUTCOME + X[:, 8:12] @ MANY_PROGNOSTIC
    return finish(X, index, m, CONSTANT_EFFECT, rng)


def nonlinear(n, rng):
    """Smooth nonlinear outcome, effect and propensity of the observed confounders (estimands_mc.py's nonlin).

    Unlike Kang-Schafer the tool sees the confounders themselves: linear models are wrong, flexible ones
    (boosted trees) are consistent. ATE = 2 + 0.5 E[x2^2] = 2.5 exactly; the treated have high x1, so ATT > ATE.
    """
    X = rng.standard_normal((n, 3))
    index = 0.9 * X[:, 0] + 0.6 * np.sin(2 * X[:, 1]) - 0.3 * X[:, 2] ** 2 + 0.2
    tau = 2 + 1.5 * np.tanh(1.5 * X[:, 0]) + 0.5 * X[:, 1] ** 2
    m = 2 * np.sin(1.5 * X[:, 0]) + X[:, 1] ** 2 + np.maximum(X[:, 2], 0)
    return finish(X, index, m, tau, rng)


CELLS: dict[str, Cell] = {
    c.name: c
    for c in (
        Cell(
            "baseline",
            2000,
            400,
            "linear outcome, logistic propensity, constant effect 2, 5 confounders",
            baseline,
        ),
        Cell(
            "misspecified",
            2000,
            400,
            "Kang-Schafer: outcome and propensity linear in Z, observed X = nonlinear transforms; effect 10",
            misspecified,
            exact_ate=10.0,
        ),
        Cell(
            "limited_overlap",
            2000,
            400,
            "baseline with the propensity index doubled: ~12% of scores outside [0.05, 0.95]",
            limited_overlap,
        ),
        Cell(
            "heterogeneous",
            2000,
            400,
            "baseline with tau = 2 + 2 x1 - x2 + 0.5 x3 (ATE != ATT)",
            heterogeneous,
        ),
        Cell("small_n", 500, 200, "baseline at n = 500", baseline),
        Cell(
            "many_covariates",
            2000,
            400,
            "20 covariates: 8 confounders, 4 outcome-only, 8 irrelevant; constant effect 2",
            many_covariates,
        ),
        Cell(
            "mixed_scales",
            2000,
            400,
            "baseline's model; covariates in $ (SD 20,000), a proportion (SD 0.16), a count, years",
            mixed_scales,
        ),
        Cell(
            "nonlinear",
            2000,
            400,
            "smooth nonlinear outcome, effect and propensity of 3 observed confounders (ATE 2.5 < ATT)",
            nonlinear,
            exact_ate=2.5,
        ),
    )
}


def population_truth(cell: Cell, draws: int = 2_000_000, seed: int = 20261129) -> dict[str, float]:
    """Population ATE ``E[tau]`` and ATT ``E[tau e] / E[e]`` by Monte Carlo over ``draws`` units."""
    rng = np.random.default_rng(seed)
    sum_tau = sum_tau_e = sum_e = 0.0
    chunk = 250_000
    for start in range(0, draws, chunk):
        d = cell.simulate(min(chunk, draws - start), rng)
        sum_tau += d.tau.sum()
        sum_tau_e += (d.tau * d.e).sum()
        sum_e += d.e.sum()
    return {"ate": cell.exact_ate, "att": sum_tau_e / sum_e, "ate_simulated": sum_tau / draws}


def share_outside(cell: Cell, low: float = 0.05, draws: int = 200_000, seed: int = 1) -> float:
    """Share of true propensity scores outside ``[low, 1 - low]``."""
    e = cell.simulate(draws, np.random.default_rng(seed)).e
    return float(np.mean((e < low) | (e > 1 - low)))
