"""Bounds (issue #17): every size-like option has a documented maximum, checked at validation before any
allocation; derive/query expressions cannot build huge strings; options that would silently give a
wrong number are refused against the data. In-process and fast."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

from causal_cli import registry
from causal_cli.bounds import check_neighbours, check_subset_fraction
from causal_cli.data.expr import MAX_STRING_CHARS, evaluate
from causal_cli.errors import ConfigError
from causal_cli.schema import BOUNDS, MAX_LIST_VALUES, check_sizes
from causal_cli.validate import validate


def method_options():
    """(group, name, option, maximum, unit) for every registered method config with a bounded option."""
    out = []
    for group, names in registry.ALL.items():
        for name in names:
            cls = registry.config_class(group, name)
            fields = getattr(cls, "__dataclass_fields__", {})
            for option, (maximum, unit) in BOUNDS.items():
                if option in fields:
                    out.append((group, name, option, maximum, unit))
    return out


OPTIONS = method_options()


def test_every_size_like_option_of_every_method_is_bounded():
    bounded = {(g, n, o) for g, n, o, _, _ in OPTIONS}
    for option in ("k", "num_strata", "curve_points", "strengths", "folds", "num_simulations"):
        assert any(o == option for _, _, o in bounded), option
    assert ("refuter", "unobserved_common_cause", "strengths") in bounded


@pytest.mark.parametrize("group, name, option, maximum, unit", OPTIONS, ids=lambda v: str(v))
def test_a_value_over_the_maximum_is_refused_naming_the_key_and_the_maximum(
    group, name, option, maximum, unit
):
    cls = registry.config_class(group, name)
    node = OmegaConf.structured(cls)
    value = [0.5] * (maximum + 1) if unit else maximum + 1
    with pytest.raises(ConfigError) as caught:
        OmegaConf.to_object(OmegaConf.merge(node, {option: value}))
    message = caught.value.one_line()
    assert f"{option}=" in message and f"{maximum:,}" in message and "\n" not in message
    assert len(message) < 400  # a 3,000-value list is not echoed back


def test_the_default_config_validates_and_a_huge_option_fails_before_any_allocation(compose_cfg):
    validate(compose_cfg(["dgp.n=300"]))
    for override, key in (
        ("diagnostics.num_bins=1000000000", "diagnostics.num_bins"),
        ("estimator.k=2000", "estimator.k"),
        ("dgp.n=1000000000", "dgp.n"),
    ):
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            validate(compose_cfg([override]))


def test_lists_and_strings_in_any_config_are_bounded():
    check_sizes({"a": {"b": [1] * MAX_LIST_VALUES, "c": "x" * 100}})
    with pytest.raises(ConfigError, match=r"a\.b has 1,001 values; allowed: at most 1,000"):
        check_sizes({"a": {"b": [1] * (MAX_LIST_VALUES + 1)}})
    with pytest.raises(ConfigError, match="question is a string of"):
        check_sizes({"question": "x" * 200_001})


def test_noise_sd_minus_zero_and_non_finite_dgp_values_are_config_errors(compose_cfg):
    for override in ("dgp.noise_sd=-0.0", "dgp.noise_sd=inf", "dgp.true_effect=nan", "dgp.true_effect=-inf"):
        with pytest.raises(ConfigError, match=r"dgp\.(noise_sd|true_effect)="):
            validate(compose_cfg([override]))


FRAME = pd.DataFrame({"age": np.arange(1, 41) % 7 + 1, "name": ["a", "bb", "ccc", "d"] * 10})


@pytest.mark.parametrize(
    "expression, fragment",
    [
        ("'a' * 3000000000", "building a string of 3,000,000,000 characters"),
        ("3000000000 * 'a'", "building a string"),
        ("name * 100000", "building a string of 300,000 characters"),
        ("'x' * 10 ** 12", "building a string"),
        ("1 / 0", "division by zero"),
        ("1 % 0", "division by zero"),
        ("'a' - 1", "cannot be evaluated (TypeError"),
        ("abs(name)", "cannot be evaluated"),
        ("(" * 4000 + "age" + ")" * 4000, "too many nested parentheses"),
        ("-" * 9000 + "age", "data.derive.x="),
        ("x" * 20_000, "at most 10,000 characters"),
    ],
)
def test_hostile_expressions_are_one_line_config_errors(expression, fragment):
    with pytest.raises(ConfigError) as caught:
        evaluate(expression, FRAME, "data.derive.x")
    assert fragment in caught.value.one_line() and "data.derive.x=" in caught.value.one_line()
    assert len(caught.value.one_line()) < 600


@settings(max_examples=60, deadline=None)
@given(text=st.text(min_size=0, max_size=40), times=st.integers(min_value=-10, max_value=10**15))
def test_a_string_built_by_an_expression_never_exceeds_the_bound(text, times):
    """Invariant: ``'<text>' * n`` either fails in one line or is at most MAX_STRING_CHARS long."""
    try:
        value = evaluate(f"{text!r} * {times}", FRAME, "data.derive.x")
    except ConfigError as exc:
        assert "\n" not in exc.one_line()
        assert (
            len(text) * times > MAX_STRING_CHARS
            or "not allowed" in exc.one_line()
            or "valid" in exc.one_line()
        )
        return
    assert len(value) <= MAX_STRING_CHARS and value == text * times


def test_k_as_large_as_the_group_matched_from_is_refused():
    t = np.array([1] * 40 + [0] * 260)
    check_neighbours(OmegaConf.create({"k": 39, "target_units": "ate"}), t)
    with pytest.raises(ConfigError, match=r"estimator\.k=40 needs more than 40 treated rows.*at most 39"):
        check_neighbours(OmegaConf.create({"k": 40, "target_units": "ate"}), t)
    # the ATT matches treated units to controls only: 260 controls allow k up to 259
    check_neighbours(OmegaConf.create({"k": 200, "target_units": "att"}), t)
    with pytest.raises(ConfigError, match="control rows"):
        check_neighbours(OmegaConf.create({"k": 260, "target_units": "att"}), t)
    check_neighbours(OmegaConf.create({"name": "ipw"}), t)  # no k: nothing to check


def test_a_data_subset_that_keeps_too_few_rows_of_a_group_is_refused():
    t = np.array([1] * 100 + [0] * 900)
    check_subset_fraction({"data_subset": {"subset_fraction": 0.2}}, t)  # 20 treated kept: enough
    with pytest.raises(
        ConfigError, match=r"subset_fraction=0\.19 keeps about 19 treated.*at least 0\.2 here"
    ):
        check_subset_fraction({"data_subset": {"subset_fraction": 0.19}}, t)
    with pytest.raises(ConfigError, match="subset_fraction=1e-09"):
        check_subset_fraction({"data_subset": {"subset_fraction": 1e-9}}, t)
    check_subset_fraction({"placebo": {}}, t)  # no data_subset refuter: nothing to check
