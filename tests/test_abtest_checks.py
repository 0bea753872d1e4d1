"""Multiple-testing corrections, SRM and balance against statsmodels / scipy and closed forms."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from causal_cli.abtest import checks, multiple

p_lists = st.lists(st.floats(0.0, 1.0), min_size=1, max_size=20)


@settings(max_examples=60, deadline=None)
@given(p=p_lists)
def test_bh_and_holm_match_statsmodels(p):
    from statsmodels.stats.multitest import multipletests

    for ours, method in ((multiple.benjamini_hochberg, "fdr_bh"), (multiple.holm, "holm")):
        expected = multipletests(p, method=method)[1]
        adjusted = ours(p)
        np.testing.assert_allclose(adjusted, expected, atol=1e-12)
        assert np.all(adjusted >= np.asarray(p) - 1e-15) and np.all(adjusted <= 1)


def test_correction_none_returns_the_raw_p_values():
    assert list(multiple.adjust([0.01, 0.2], "none")) == [0.01, 0.2]


def test_srm_matches_scipy_chisquare():
    from scipy.stats import chisquare

    check = checks.sample_ratio_mismatch(4_900, 5_100, 0.5, 0.001)
    expected = chisquare([4_900, 5_100], [5_000, 5_000])
    assert check.chi2 == pytest.approx(expected.statistic)
    assert check.p_value == pytest.approx(expected.pvalue)
    assert not check.mismatch


def test_srm_flags_a_505_495_split_at_one_million():
    check = checks.sample_ratio_mismatch(495_000, 505_000, 0.5, 0.001)
    assert check.chi2 == pytest.approx(100.0)
    assert check.mismatch and check.p_value < 1e-20


def test_srm_uses_an_unequal_planned_split():
    check = checks.sample_ratio_mismatch(8_000, 2_000, 0.2, 0.001)
    assert check.chi2 == pytest.approx(0.0) and not check.mismatch


def test_smd_closed_form_and_balance_flag():
    x = np.array([1.0, 2.0, 3.0, 2.0, 3.0, 4.0])
    t = np.array([0, 0, 0, 1, 1, 1])
    assert checks.standardized_mean_difference(x, t) == pytest.approx(1.0)
    rows = checks.balance(pd.DataFrame({"x": x}), t, ["x"], 0.1)
    assert rows[0]["imbalanced"] and rows[0]["mean_treatment"] == pytest.approx(3.0)
