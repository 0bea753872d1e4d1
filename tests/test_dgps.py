"""The iv_promo, frontdoor_onboarding and heterogeneous DGPs: seeded, and their ground truth is right."""

from __future__ import annotations

import numpy as np
import pytest
from omegaconf import OmegaConf

from causal_cli.data.dgps import (
    FrontdoorOnboardingDGP,
    FrontdoorOnboardingDGPConfig,
    HeterogeneousDGP,
    HeterogeneousDGPConfig,
    IVPromoDGP,
    IVPromoDGPConfig,
)
from causal_cli.errors import ConfigError
from causal_cli.validate import validate

DGPS = {
    "iv_promo": (IVPromoDGP, IVPromoDGPConfig),
    "frontdoor_onboarding": (FrontdoorOnboardingDGP, FrontdoorOnboardingDGPConfig),
    "heterogeneous": (HeterogeneousDGP, HeterogeneousDGPConfig),
}


def simulate(kind, **overrides):
    dgp_cls, config_cls = DGPS[kind]
    return dgp_cls(OmegaConf.structured(config_cls(**overrides))).dataset()


def naive(frame):
    t = frame.feature_used == 1
    return frame.spend[t].mean() - frame.spend[~t].mean()


def arm_regression_effects(frame) -> dict[str, float]:
    """ATT and ATC by imputing the missing potential outcome with a per-arm linear regression.

    Both potential outcomes are linear in the covariates in the heterogeneous DGP, so at large n this
    is an independent check of the effects the DGP computes from its potential outcomes.
    """
    covariates = frame[["account_age", "activity"]].to_numpy()
    design = np.column_stack([np.ones(len(frame)), covariates])
    t = frame.feature_used.to_numpy() == 1
    y = frame.spend.to_numpy()
    predict = {
        arm: design @ np.linalg.lstsq(design[rows], y[rows], rcond=None)[0] for arm, rows in ((1, t), (0, ~t))
    }
    return {"att": float(np.mean(y[t] - predict[0][t])), "atc": float(np.mean(predict[1][~t] - y[~t]))}


@pytest.mark.parametrize("kind", sorted(DGPS))
def test_same_seed_same_data_other_seed_other_data(kind):
    a, b, c = simulate(kind, seed=3, n=500), simulate(kind, seed=3, n=500), simulate(kind, seed=4, n=500)
    assert a.frame.equals(b.frame) and a.reference == b.reference
    assert not a.frame.equals(c.frame)
    assert a.reference_kind == "ground_truth"
    assert "motivation" not in a.frame.columns  # the hidden confounder never reaches the data


def test_iv_promo_truth_is_the_constant_effect_and_the_promo_is_randomized():
    ds = simulate("iv_promo", seed=0, n=50_000, true_effect=7.5)
    assert ds.reference == {"ate": 7.5, "att": 7.5, "atc": 7.5}
    frame = ds.frame
    promo = frame.promo_email == 1
    assert abs(promo.mean() - 0.5) < 0.01
    # randomized: the promo is unrelated to the covariates, but it moves feature use
    assert abs(frame.account_age[promo].mean() - frame.account_age[~promo].mean()) < 0.06
    assert frame.feature_used[promo].mean() - frame.feature_used[~promo].mean() > 0.2


def test_iv_promo_hidden_confounder_biases_naive_unless_confounding_is_off():
    assert naive(simulate("iv_promo", seed=1, n=100_000).frame) - 10 > 3
    assert abs(naive(simulate("iv_promo", seed=1, n=100_000, confounding="none").frame) - 10) < 0.15


def test_frontdoor_truth_is_computed_from_potential_mediators():
    small = [simulate("frontdoor_onboarding", seed=s, n=2_000).reference["ate"] for s in range(3)]
    assert len(set(small)) == 3  # a sample quantity, not the configured number
    big = simulate("frontdoor_onboarding", seed=0, n=200_000).reference
    assert abs(big["ate"] - 10) < 0.1  # per completion 10 / 0.5 = $20, times the 0.5 uplift


def test_frontdoor_truth_matches_a_randomized_large_simulation():
    ds = simulate("frontdoor_onboarding", seed=2, n=200_000, confounding="none")
    assert abs(naive(ds.frame) - ds.reference["ate"]) < 0.15
    # with the hidden confounder on, the naive contrast is far off
    assert naive(simulate("frontdoor_onboarding", seed=2, n=50_000).frame) - 10 > 3


def test_heterogeneous_truths_differ_and_match_a_large_n_imputation():
    ds = simulate("heterogeneous", seed=0, n=200_000)
    ref = ds.reference
    assert ref["att"] - ref["ate"] > 1 and ref["ate"] - ref["atc"] > 0.5
    assert abs(ref["ate"] - 10) < 0.05  # the slopes act on standardized covariates: population mean 10
    imputed = arm_regression_effects(ds.frame)
    assert imputed["att"] == pytest.approx(ref["att"], abs=0.1)
    assert imputed["atc"] == pytest.approx(ref["atc"], abs=0.1)


def test_heterogeneous_without_slopes_is_homogeneous():
    ref = simulate("heterogeneous", seed=0, n=1_000, effect_slope={}).reference
    assert ref == {"ate": 10.0, "att": 10.0, "atc": 10.0}


@pytest.mark.parametrize(
    "override, key",
    [
        ("dgp.promo_share=1.5", "dgp.promo_share"),
        ("dgp.hidden_outcome_coef=-1", "dgp.hidden_outcome_coef"),
        ("dgp.onboarding_uplift=0.9", "dgp.onboarding_uplift"),
        ("+dgp.effect_slope.tenure=1", "dgp.effect_slope"),
    ],
)
def test_bad_dgp_options_are_refused_naming_the_key(compose_cfg, override, key):
    kind = {"promo": "iv_promo", "hidden": "iv_promo", "onboarding": "frontdoor_onboarding"}
    dgp = next((v for k, v in kind.items() if k in override), "heterogeneous")
    with pytest.raises(ConfigError) as info:
        validate(compose_cfg([f"dgp={dgp}", override]))
    assert key in str(info.value)
