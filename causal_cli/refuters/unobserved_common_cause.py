"""Sensitivity to an unobserved common cause U: how strong would U have to be to explain the effect away?

Method (a simulated potential confounder on the partial-R² scale of Cinelli & Hazlett 2020, in the
spirit of Imbens 2003 and Carnegie, Harada & Hill 2016). The observed data already contain whatever
unmeasured confounding there is, so the question is what the estimate would be *had U been measured
and adjusted for*. For a strength ``(r2_t, r2_y)`` we build, from the data themselves,

    U = sqrt(r2_t) * T~ + s * sqrt(r2_y (1 - r2_t)) * Y~ + sqrt((1 - r2_t)(1 - r2_y)) * E,

with T~ the residual of the treatment on the adjustment set, Y~ the residual of the outcome on
treatment and adjustment set, and E fresh noise made orthogonal to both (all standardised; s = the
estimate's sign, so U pushes the estimate towards 0). In the sample, U is independent of the measured
confounders, explains exactly ``r2_t`` of the treatment's residual variance (partial R² given the
adjustment set) and ``r2_y`` of the outcome's (given treatment and adjustment set). The estimator is
then re-fitted with U added to the adjustment set. For linear regression this reproduces the
omitted-variable-bias formula exactly; for any other estimator it measures how that estimator reacts
to such a confounder. Only E is random, so a few draws per strength suffice (``num_simulations``
draws per grid point, common random numbers across points so the curve is smooth).

Reported: the grid ``strengths x strengths`` as ``table`` rows (sensitivity.csv: ``r2_treatment``,
``r2_outcome``, the re-estimated ``new_effect``, and the same strength as the confounder's effect in
log-odds of treatment per SD, ``confounder_logodds_per_sd``, and in outcome units per SD,
``confounder_shift_per_sd``); the curve of the estimate against equal strengths on both and the
smallest such strength that brings it to 0 (``robustness_value``; the closed-form linear value
beside it); the strongest measured confounder as an informal benchmark (a U with its partial R²);
and the E-value (VanderWeele & Ding 2017). The outcome is continuous, so the E-value uses the
standardised-mean-difference approximation RR ≈ exp(0.91 d) with d = estimate / SD(Y | T, X), the
residual SD of the outcome regression (the total SD of Y would understate d).
There is no pass/fail verdict: how strong a confounder is plausible is a judgement about the domain.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np

from causal_cli.errors import EstimationError
from causal_cli.refuters.base import BaseRefuter, no_estimate_note
from causal_cli.results import RefutationResult
from causal_cli.schema import RefuterConfig, check

#: the explain-away curve runs over equal strengths on a log scale between these partial R²
CURVE_RANGE = (1e-3, 0.95)
#: rows used to describe a strength as log-odds of treatment per SD of U (a description, not an estimate)
LOGODDS_ROWS = 20_000


@dataclass
class UnobservedCommonCauseConfig(RefuterConfig):
    num_simulations: int = 4
    strengths: list[float] = field(default_factory=lambda: [0.01, 0.05, 0.15, 0.3, 0.45, 0.6])
    curve_points: int = 20

    def __post_init__(self):
        super().__post_init__()
        ok = len(self.strengths) > 0 and all(0 < float(s) < 1 for s in self.strengths)
        check(
            ok,
            "strengths",
            list(self.strengths),
            "a non-empty list of partial R² values strictly between 0 and 1",
        )
        check(self.curve_points >= 2, "curve_points", self.curve_points, "an integer >= 2")


def e_value(estimate: float, sd_outcome: float) -> float:
    """VanderWeele & Ding's E-value for a continuous outcome, via RR ≈ exp(0.91 d) (see causal_cli.sensitivity)."""
    from causal_cli.sensitivity import e_value as closed_form

    return closed_form(estimate, sd_outcome)


def linear_robustness_value(estimate: float, sd_t_resid: float, sd_y_resid: float) -> float:
    """Cinelli & Hazlett's robustness value (q = 1) for a linear regression with these residual scales."""
    f2 = (estimate * sd_t_resid / sd_y_resid) ** 2
    return float((np.sqrt(f2**2 + 4 * f2) - f2) / 2)


def partial_r2(design: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Partial R² of each non-intercept column of ``design`` with ``target``: t² / (t² + df)."""
    n, p = design.shape
    coef, *_ = np.linalg.lstsq(design, target, rcond=None)
    resid = target - design @ coef
    df = max(n - p, 1)
    var = resid @ resid / df * np.diag(np.linalg.pinv(design.T @ design))
    t2 = np.divide(coef**2, var, out=np.zeros(p), where=var > 0)
    return (t2 / (t2 + df))[1:]


class UnobservedCommonCauseRefuter(BaseRefuter):
    config_class = UnobservedCommonCauseConfig
    name = "unobserved_common_cause"
    rule = (
        "no pass/fail: reports the estimate after adjusting for simulated confounders of given strength, the "
        "smallest strength (equal partial R² with treatment and outcome) that explains the estimate away, and "
        "the E-value; judge whether a confounder that strong is plausible"
    )

    # -- the strengths to simulate -------------------------------------------------------------
    def points(self) -> list[tuple[str, float, float]]:
        grid = [float(s) for s in self.strengths]
        out = [("grid", a, b) for a in grid for b in grid]
        out += [("curve", r, r) for r in np.geomspace(*CURVE_RANGE, int(self.curve_points))]
        if getattr(self, "_benchmark", None):
            name, r2_t, r2_y = self._benchmark
            out.append((f"benchmark:{name}", r2_t, r2_y))
        return out

    def num_tasks(self) -> int:
        return len(self.points()) * int(self.num_simulations)

    def streams(self, seed):
        """``num_simulations`` streams, reused at every strength (common random numbers)."""
        root = np.random.SeedSequence([int(seed), zlib.crc32(self.name.encode())])
        draws = root.spawn(int(self.num_simulations))
        return [draws[i % len(draws)] for i in range(self.num_tasks())]

    # -- shared state ------------------------------------------------------------------------
    def refute(self, estimator, data, estimate, std_error, seed=0, executor=None, progress=None):
        self._direction = 1.0 if estimate >= 0 else -1.0
        self._seed = int(seed)
        return super().refute(estimator, data, estimate, std_error, seed, executor, progress)

    def prepare(self, estimator, data):
        design = data.design
        with_t = np.column_stack([design, data.t])
        t_resid = data.t - design @ np.linalg.lstsq(design, data.t, rcond=None)[0]
        y_resid = data.y - with_t @ np.linalg.lstsq(with_t, data.y, rcond=None)[0]
        self._sd_t, self._sd_y = float(t_resid.std()), float(y_resid.std())
        if not (self._sd_t > 0 and self._sd_y > 0):
            raise EstimationError(
                "refuters.unobserved_common_cause: the treatment or the outcome is fully explained by the "
                "adjustment set, so there is no residual variation for a confounder to explain"
            )
        self._t_std, self._y_std = t_resid / self._sd_t, y_resid / self._sd_y
        self._basis = np.linalg.qr(np.column_stack([with_t, data.y]))[0]
        # SD(Y | T, X): the residual SD of the outcome regression, as the E-value's standardised effect needs
        # (VanderWeele & Ding 2017; the EValue package's OLS()); the total SD of Y understates d
        dof = max(data.n - np.linalg.matrix_rank(with_t), 1)
        self._sd_outcome = float(np.sqrt(y_resid @ y_resid / dof))
        self._benchmark = None
        if data.X.shape[1]:
            r2_t = partial_r2(design, data.t)
            r2_y = partial_r2(with_t, data.y)[:-1]
            bias_proxy = r2_y * r2_t / np.maximum(1 - r2_t, 1e-12)
            j = int(np.argmax(bias_proxy))
            name = data.covariates[j] if j < len(data.covariates) else f"x{j}"
            self._benchmark = (name, float(r2_t[j]), float(r2_y[j]))
        self._points = self.points()
        rows = np.random.default_rng([self._seed, 0x1065]).permutation(data.n)[:LOGODDS_ROWS]
        self._logodds_data = (design[rows], data.t[rows], self._t_std[rows], self._y_std[rows])

    def coefficients(self, r2_t: float, r2_y: float) -> tuple[float, float, float]:
        c_t = np.sqrt(r2_t)
        c_y = self._direction * np.sqrt(r2_y * (1 - r2_t))
        c_e = np.sqrt((1 - r2_t) * (1 - r2_y))
        return float(c_t), float(c_y), float(c_e)

    def confounder(self, r2_t: float, r2_y: float, rng: np.random.Generator) -> np.ndarray:
        noise = rng.standard_normal(self._t_std.shape[0])
        noise -= self._basis @ (self._basis.T @ noise)
        noise /= noise.std()
        c_t, c_y, c_e = self.coefficients(r2_t, r2_y)
        return c_t * self._t_std + c_y * self._y_std + c_e * noise

    def modify_task(self, data, index, rng):
        _, r2_t, r2_y = self._points[index // int(self.num_simulations)]
        return data.with_covariate(self.confounder(r2_t, r2_y, rng), "unobserved_common_cause")

    # -- describing a strength in effect units -----------------------------------------------
    def outcome_effect_per_sd(self, r2_t: float, r2_y: float) -> float:
        """Coefficient of U (per SD) in the outcome regression on treatment, adjustment set and U."""
        return float(self._direction * self._sd_y * np.sqrt(r2_y / (1 - r2_t)))

    def treatment_logodds_per_sd(self, r2_t: float, r2_y: float) -> float:
        """Coefficient of U (per SD) in a logistic regression of the treatment on adjustment set and U."""
        from causal_cli.estimators.propensity import fit_logistic

        design, t, t_std, y_std = self._logodds_data
        if not np.all(np.isin(t, (0.0, 1.0))):
            return float("nan")
        c_t, c_y, c_e = self.coefficients(r2_t, r2_y)
        noise = np.random.default_rng([self._seed, 0x10D5]).standard_normal(t.shape[0])
        u = c_t * t_std + c_y * y_std + c_e * noise
        try:
            return float(fit_logistic(np.column_stack([design, u / u.std()]), t, C=None)[-1])
        except EstimationError:
            return float("nan")

    # -- the report ---------------------------------------------------------------------------
    def summarize(self, estimate, std_error, sims):
        draws = int(self.num_simulations)
        per_point = {}
        for (kind, r2_t, r2_y), values in zip(self._points, sims.reshape(len(self._points), draws)):
            per_point[kind, r2_t, r2_y] = values[np.isfinite(values)]

        def mean(values):
            return float(values.mean()) if values.size else float("nan")

        table = [
            {
                "refuter": self.name,
                "r2_treatment": r2_t,
                "r2_outcome": r2_y,
                "new_effect": mean(values),
                "new_effect_sd": float(values.std(ddof=1)) if values.size > 1 else None,
                "bias": mean(values) - estimate,
                "explains_away": bool(np.sign(mean(values)) != np.sign(estimate) or mean(values) == 0),
                "confounder_logodds_per_sd": self.treatment_logodds_per_sd(r2_t, r2_y),
                "confounder_shift_per_sd": self.outcome_effect_per_sd(r2_t, r2_y),
            }
            for (kind, r2_t, r2_y), values in per_point.items()
            if kind == "grid"
        ]
        curve = [
            {"r2": r2_t, "new_effect": mean(v)} for (kind, r2_t, _), v in per_point.items() if kind == "curve"
        ]
        strength = explain_away_strength(estimate, [c["r2"] for c in curve], [c["new_effect"] for c in curve])
        z = NormalDist().inv_cdf(0.975)
        near_null = max(abs(estimate) - z * (std_error or 0.0), 0.0)
        details = {
            "method": "simulated confounder on the partial-R² scale, re-estimated with U in the adjustment set",
            "robustness_value": strength,
            "robustness_value_linear": linear_robustness_value(estimate, self._sd_t, self._sd_y),
            "explain_away_logodds_per_sd": None
            if strength is None
            else self.treatment_logodds_per_sd(strength, strength),
            "explain_away_shift_per_sd": None
            if strength is None
            else self.outcome_effect_per_sd(strength, strength),
            "e_value": e_value(estimate, self._sd_outcome),
            "e_value_ci": e_value(near_null, self._sd_outcome),
            "e_value_method": (
                "continuous outcome: RR ≈ exp(0.91 × d), d = estimate / SD(Y | T, X) (residual SD of the outcome "
                "regression on treatment and adjustment set); CI limit at 95%"
            ),
            "standardized_effect": estimate / self._sd_outcome,
            "curve": curve,
        }
        bench = np.array([])
        if self._benchmark is not None:
            name, r2_t, r2_y = self._benchmark
            bench = per_point[f"benchmark:{name}", r2_t, r2_y]
            details["benchmark"] = {
                "covariate": name,
                "r2_treatment": r2_t,
                "r2_outcome": r2_y,
                "new_effect": mean(bench),
            }
        moved = any(
            abs(row["bias"]) > 1e-9 * (1 + abs(estimate)) for row in table if np.isfinite(row["bias"])
        )
        return RefutationResult(
            name=self.name,
            new_effect=float(bench.mean()) if bench.size else None,
            new_effect_sd=float(bench.std(ddof=1)) if bench.size > 1 else None,
            p_value=None,
            passed=None,
            reason=self.reason(moved, strength, details) + no_estimate_note(sims),
            num_simulations=draws,
            options=dict(self.options),
            simulations=[float(s) for s in sims],
            table=table,
            rule=self.rule,
            details=details,
        )

    def reason(self, moved: bool, strength: float | None, details: dict) -> str:
        evalue = (
            f"E-value {details['e_value']:.2f} (CI limit {details['e_value_ci']:.2f}; RR ≈ exp(0.91·d), "
            f"d = {details['standardized_effect']:.2f})"
        )
        if not moved:
            return (
                "the estimate does not change when a simulated confounder is adjusted for (the estimator does not "
                f"use the adjustment set), so this analysis cannot say how strong a confounder would matter; {evalue}"
            )
        if strength is None:
            text = (
                f"no simulated confounder up to partial R² {CURVE_RANGE[1]:.2f} with both treatment and outcome "
                "brings the estimate to 0"
            )
        else:
            text = (
                f"a confounder explaining {strength:.1%} of the residual variance of both treatment and outcome "
                f"(≈ {details['explain_away_logodds_per_sd']:.2g} log-odds of treatment and "
                f"{details['explain_away_shift_per_sd']:.3g} outcome units per SD) would explain the estimate away"
            )
        bench = details.get("benchmark")
        if bench:
            text += (
                f"; the strongest measured confounder, {bench['covariate']}, explains {bench['r2_treatment']:.1%} / "
                f"{bench['r2_outcome']:.1%}, and one as strong would move the estimate to {bench['new_effect']:.4g}"
            )
        return f"{text}; {evalue}"


def explain_away_strength(estimate: float, strengths: list[float], adjusted: list[float]) -> float | None:
    """Smallest strength at which the adjusted estimate reaches 0, interpolating linearly along the curve."""
    r_prev, a_prev = 0.0, estimate
    for r, a in zip(strengths, adjusted):
        if not np.isfinite(a):
            continue
        if a == 0 or np.sign(a) != np.sign(estimate):
            return float(r_prev + (r - r_prev) * a_prev / (a_prev - a)) if a_prev != a else float(r)
        r_prev, a_prev = r, a
    return None
