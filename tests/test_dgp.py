"""The product-growth DGP: deterministic, ground truth computed, confounding controls naive bias."""

from __future__ import annotations

import numpy as np
import pytest
from omegaconf import OmegaConf

from causal_cli.data.synthetic import ProductGrowthDGP, ProductGrowthDGPConfig


def simulate(**overrides):
    cfg = OmegaConf.structured(ProductGrowthDGPConfig(**overrides))
    return ProductGrowthDGP(cfg).dataset()


def naive(frame):
    t = frame.feature_used == 1
    return frame.spend[t].mean() - frame.spend[~t].mean()


def test_same_seed_same_data_other_seed_other_data():
    a, b, c = simulate(seed=3, n=500), simulate(seed=3, n=500), simulate(seed=4, n=500)
    assert a.frame.equals(b.frame)
    assert not a.frame.equals(c.frame)


def test_ground_truth_is_computed_from_potential_outcomes():
    ds = simulate(seed=0, n=2000, true_effect=7.5)
    assert ds.reference == {"ate": 7.5, "att": 7.5, "atc": 7.5}
    assert ds.reference_kind == "ground_truth"


@pytest.mark.parametrize("seed", [0, 1])
def test_strong_confounding_reproduces_the_product_story(seed):
    # the default study: naive about $14.5 while the truth is $10
    assert 14.0 <= naive(simulate(seed=seed, n=10_000).frame) <= 15.0


def test_no_confounding_makes_naive_unbiased():
    values = [naive(simulate(seed=s, n=20_000, confounding="none").frame) for s in range(3)]
    assert abs(np.mean(values) - 10.0) < 0.2


def test_large_n_regression_on_true_structure_recovers_truth():
    frame = simulate(seed=5, n=200_000).frame
    design = np.column_stack([np.ones(len(frame)), frame.feature_used, frame.account_age, frame.activity])
    coef = np.linalg.lstsq(design, frame.spend.to_numpy(), rcond=None)[0]
    assert abs(coef[1] - 10.0) < 0.1


def test_confounding_levels_order_the_bias():
    bias = {
        c: naive(simulate(seed=1, n=50_000, confounding=c).frame) - 10 for c in ("none", "weak", "strong")
    }
    assert abs(bias["none"]) < bias["weak"] < bias["strong"]
