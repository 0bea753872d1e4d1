"""Property-based checks (hypothesis) that every backdoor estimator and every DGP must satisfy.

What holds, precisely (y outcome, t treatment in {0, 1}, estimates compared to ~1e-6 relative):

* row order: estimators without sample splitting give the same estimate for any row order.
  Cross-fitted estimators (those with a ``folds`` parameter: dml, aipw) assign folds at random by
  position within each treatment group, so for them the estimate is invariant to any reordering that
  keeps the order within each group (treated and control rows interleaved differently), and only
  invariant in distribution otherwise.
* shifting y by a constant leaves the estimate unchanged; scaling y by a != 0 scales it by a
  (the default nuisance models are linear; a penalised outcome model would break the scaling).
* swapping the labels (t -> 1 - t) flips the sign: ATE(1 - t) = -ATE(t), and ATT(1 - t) = -ATC(t)
  for every estimator that offers att/atc. Exact for psm (e(x) -> 1 - e(x) keeps every match, so
  ATT and ATC trade places and ATE = share-weighted mean flips), naive, regression, ipw,
  distance matching; for stratification and cross-fitting the strata/folds are rebuilt from the
  new labels, so the flip holds to within sampling noise (checked against a few standard errors).
* the DGPs: the ground-truth ATE equals the mean of the simulated unit effects, which is within
  sampling error of the configured ``true_effect``; without confounding the difference in means
  of the simulated table is within sampling error of that ground truth.

Estimators are taken from ``registry.ESTIMATORS`` at run time (iv/frontdoor skipped: they need
instruments/mediators), DGPs from ``registry.DGPS``.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

from causal_cli import registry
from causal_cli.errors import CausalCliError
from causal_cli.estimators.base import EstimationData

PROPERTY = settings(
    max_examples=8,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
ESTIMATORS = sorted(
    name
    for name in registry.ESTIMATORS
    if registry.load("estimator", name).identification in ("backdoor", "none")
)


def build(name: str, **options):
    """The estimator with its schema's defaults (range checks run), seeded like a run."""
    cls = registry.load("estimator", name)
    node = OmegaConf.merge(OmegaConf.structured(cls.config_class), options)
    OmegaConf.to_object(node)
    return cls.from_config(node, random_state=np.random.SeedSequence(11))


def cross_fitted(name: str) -> bool:
    return "folds" in build(name).get_params()


@st.composite
def observational(draw) -> EstimationData:
    """A small confounded study: covariates drive both treatment and outcome."""
    seed = draw(st.integers(0, 2**32 - 1))
    n = draw(st.integers(120, 240))
    p = draw(st.integers(1, 3))
    effect = draw(st.floats(-5, 5, allow_nan=False))
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    t = (rng.random(n) < 1 / (1 + np.exp(-(X @ rng.normal(0, 0.5, p))))).astype(float)
    assume(25 <= t.sum() <= n - 25)
    y = 3.0 + X @ rng.normal(0, 2, p) + effect * t + rng.normal(0, 1, n)
    return EstimationData(t=t, y=y, X=X, covariates=tuple(f"x{i}" for i in range(p)))


def assert_close(a: float, b: float, scale: float = 1.0, rtol: float = 1e-6) -> None:
    assert abs(a - b) <= rtol * (abs(a) + abs(b) + scale), (a, b)


def interleave(t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A row order that keeps the order within each treatment group but mixes the groups anew."""
    slots = rng.permutation(t.size)
    treated_slots, control_slots = np.sort(slots[: int(t.sum())]), np.sort(slots[int(t.sum()) :])
    order = np.empty(t.size, dtype=np.int64)
    order[treated_slots] = np.flatnonzero(t == 1)
    order[control_slots] = np.flatnonzero(t == 0)
    return order


@pytest.mark.parametrize("name", ESTIMATORS)
@PROPERTY
@given(data=observational(), seed=st.integers(0, 2**16))
def test_row_order_does_not_change_the_estimate(name, data, seed):
    rng = np.random.default_rng(seed)
    order = interleave(data.t, rng) if cross_fitted(name) else rng.permutation(data.n)
    assert not np.array_equal(order, np.arange(data.n)) or data.n < 3
    original = build(name).estimate(data)
    shuffled = build(name).estimate(data.take(order))
    assert_close(original, shuffled, scale=np.std(data.y))


@pytest.mark.parametrize("name", ESTIMATORS)
@PROPERTY
@given(data=observational(), shift=st.floats(-1000, 1000, allow_nan=False))
def test_shifting_the_outcome_leaves_the_estimate(name, data, shift):
    original = build(name).estimate(data)
    shifted = build(name).estimate(data.with_outcome(data.y + shift))
    assert_close(original, shifted, scale=np.std(data.y) + abs(shift))


@pytest.mark.parametrize("name", ESTIMATORS)
@PROPERTY
@given(
    data=observational(),
    factor=st.one_of(st.floats(0.01, 100), st.floats(-100, -0.01)),
)
def test_scaling_the_outcome_scales_the_estimate(name, data, factor):
    original = build(name).estimate(data)
    scaled = build(name).estimate(data.with_outcome(data.y * factor))
    assert_close(scaled, factor * original, scale=abs(factor) * np.std(data.y))


def _swap_tolerance(name: str, data: EstimationData, estimator) -> float | None:
    """None: the sign flip must be exact; else the sampling-noise allowance (3 standard errors)."""
    if cross_fitted(name) or name == "ps_stratification":
        return 3 * build(name).fit(data).std_error_
    return None


@pytest.mark.parametrize("name", ESTIMATORS)
@PROPERTY
@given(data=observational())
def test_swapping_treatment_labels_flips_the_ate(name, data):
    estimator = build(name)
    ate = estimator.estimate(data)
    swapped = build(name).estimate(data.with_treatment(1 - data.t))
    tolerance = _swap_tolerance(name, data, estimator)
    if tolerance is None:
        assert_close(swapped, -ate, scale=np.std(data.y))
    else:
        assert abs(swapped + ate) <= tolerance, (swapped, ate, tolerance)


@pytest.mark.parametrize("name", ESTIMATORS)
@PROPERTY
@given(data=observational())
def test_swapping_treatment_labels_trades_att_and_atc(name, data):
    try:
        att_estimator, atc_estimator = build(name, target_units="att"), build(name, target_units="atc")
    except CausalCliError:
        pytest.skip(f"{name} offers no att/atc")
    atc = atc_estimator.estimate(data)
    att_swapped = att_estimator.estimate(data.with_treatment(1 - data.t))
    tolerance = _swap_tolerance(name, data, atc_estimator)
    if tolerance is None:
        assert_close(att_swapped, -atc, scale=np.std(data.y))
    else:
        assert abs(att_swapped + atc) <= 2 * tolerance, (att_swapped, atc, tolerance)


# --- DGPs ---------------------------------------------------------------------------------------

DGPS = sorted(registry.DGPS)


def simulate(kind: str, **params):
    from causal_cli.data import ground_truth

    cls = registry.load("dgp", kind)
    node = OmegaConf.merge(OmegaConf.structured(cls.config_class), params)
    OmegaConf.to_object(node)
    dgp = cls(node)
    frame, effects = dgp.simulate(np.random.default_rng(np.random.SeedSequence(int(node.seed))))
    t = frame[dgp.treatment_column].to_numpy()
    return dgp, frame, effects, ground_truth(effects, t), dgp.dataset().reference


@pytest.mark.parametrize("kind", DGPS)
@settings(max_examples=6, deadline=None, derandomize=True)
@given(
    seed=st.integers(0, 2**31),
    n=st.integers(2_000, 5_000),
    true_effect=st.floats(-50, 50, allow_nan=False),
    noise_sd=st.floats(0.5, 20),
    confounding=st.sampled_from(["none", "weak", "strong"]),
)
def test_dgp_ground_truth_matches_its_simulation(kind, seed, n, true_effect, noise_sd, confounding):
    params = {
        "seed": seed,
        "n": n,
        "true_effect": true_effect,
        "noise_sd": noise_sd,
        "confounding": confounding,
    }
    dgp, frame, effects, truth, reference = simulate(kind, **params)
    # the reported reference is the drawn units' own effects: by hand, from this draw's treatment column
    treated = frame[dgp.treatment_column].to_numpy() == 1
    by_hand = {"ate": effects.mean(), "att": effects[treated].mean(), "atc": effects[~treated].mean()}
    for key in ("ate", "att", "atc"):
        assert reference[key] == pytest.approx(by_hand[key], rel=1e-12, abs=1e-12), key
    share = treated.mean()  # ... and the three are one population's parts
    assert reference["ate"] == pytest.approx(
        share * reference["att"] + (1 - share) * reference["atc"], rel=1e-9
    )
    # ... which is within sampling error of the configured population effect
    se = effects.std(ddof=1) / np.sqrt(effects.size)
    assert abs(truth["ate"] - true_effect) <= 5 * se + 1e-9 * (1 + abs(true_effect))
    if confounding == "none":
        # randomized treatment: the observed difference in means estimates the same effect
        outcome = getattr(dgp, "outcome_column", "spend")
        t = frame[dgp.treatment_column].to_numpy() == 1
        y = frame[outcome].to_numpy()
        diff = y[t].mean() - y[~t].mean()
        se = np.sqrt(y[t].var(ddof=1) / t.sum() + y[~t].var(ddof=1) / (~t).sum())
        assert abs(diff - truth["ate"]) <= 5 * se, (diff, truth["ate"], se)
