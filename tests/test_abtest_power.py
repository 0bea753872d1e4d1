"""``causal power`` and its Python functions against statsmodels' power module."""

from __future__ import annotations

import math

import pytest

from causal_cli.abtest import power
from causal_cli.errors import ConfigError


@pytest.mark.parametrize(
    "sd, mde, alpha, target, ratio",
    [(30, 1, 0.05, 0.8, 0.5), (12, 0.5, 0.01, 0.9, 0.5), (30, 2, 0.05, 0.8, 0.2), (1, 0.05, 0.1, 0.95, 0.7)],
)
def test_sample_size_agrees_with_statsmodels(sd, mde, alpha, target, ratio):
    from statsmodels.stats.power import NormalIndPower, TTestIndPower

    answer = power.sample_size(mde=mde, sd=sd, alpha=alpha, power=target, ratio=ratio)
    # statsmodels: nobs1 is the control arm, ratio = n_treatment / n_control
    k = ratio / (1 - ratio)
    for solver in (NormalIndPower(), TTestIndPower()):
        n_control = solver.solve_power(effect_size=mde / sd, alpha=alpha, power=target, ratio=k)
        assert answer.n_control == pytest.approx(n_control, rel=0.01)
        assert answer.n_treatment == pytest.approx(k * n_control, rel=0.01)


def test_mde_inverts_the_sample_size_and_cuped_shrinks_both():
    n = power.sample_size(mde=1.0, sd=30).n_total
    assert power.minimum_detectable_effect(n_total=n, sd=30).mde == pytest.approx(1.0, rel=1e-3)
    with_cuped = power.sample_size(mde=1.0, sd=30, cuped_rho=0.6)
    assert with_cuped.n_total == pytest.approx(n * (1 - 0.36), rel=1e-3)
    mde = power.minimum_detectable_effect(n_total=n, sd=30, cuped_rho=0.6).mde
    assert mde == pytest.approx(math.sqrt(1 - 0.36), rel=1e-3)


@pytest.mark.parametrize(
    "kwargs, key",
    [({"mde": 0}, "mde"), ({"mde": 1, "alpha": 1.2}, "alpha"), ({"mde": 1, "cuped_rho": 1.0}, "cuped_rho")],
)
def test_bad_input_is_a_one_line_config_error(kwargs, key):
    with pytest.raises(ConfigError, match=f"^{key}="):
        power.sample_size(sd=30, **kwargs)


def test_power_command_answers_a_sample_size_question(run_causal):
    proc, _ = run_causal("power", "--baseline-mean", "50", "--sd", "30", "--mde", "1", "--cuped-rho", "0.65")
    assert proc.returncode == 0, proc.stderr
    expected = power.sample_size(mde=1, sd=30)
    with_cuped = power.sample_size(mde=1, sd=30, cuped_rho=0.65)
    assert f"without CUPED: n = {expected.n_total:,} units" in proc.stdout
    assert f"with CUPED (rho 0.65, sd 22.8): n = {with_cuped.n_total:,} units" in proc.stdout


def test_power_command_errors_in_one_line(capsys):
    from causal_cli.cli import main

    assert main(["power", "--sd", "30"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "exactly one of --mde" in err
    assert main(["power", "--sd", "30", "--n", "20000"]) == 0
    assert "MDE = " in capsys.readouterr().out
