"""Third-party methods through entry points: a real installed distribution (a dist-info folder on sys.path).

The plugin adds an estimator (least squares with an HC0 standard error) and a refuter (a permuted
outcome), plus three broken entries: a module that does not exist, a class registered under another
name, and a name a built-in already has. The good ones pass the conformance battery, run through a real
composed config, and show in ``causal list``; the broken ones are skipped with one warning line each.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.config_store import ConfigStore
from hydra.core.global_hydra import GlobalHydra

from causal_cli import registry
from causal_cli.errors import ConfigError
from causal_cli.schema import register_configs
from causal_cli.task import VERSION_BASE, conf_dir
from causal_cli.validate import validate
from tests.conftest import REPO, causal_executable
from tests.test_conformance import (
    check_estimator,
    check_estimator_config,
    check_refuter,
    check_refuter_config,
)

PLUGIN = '''
"""A causal-cli plugin, installed as the distribution toy-causal-plugin."""
from dataclasses import dataclass

import numpy as np

from causal_cli.estimators.base import BaseEstimator
from causal_cli.refuters.base import BaseRefuter, SignificanceConfig, centred_on_zero
from causal_cli.schema import EstimatorConfig, check


@dataclass
class ToyOLSConfig(EstimatorConfig):
    name: str = "toy_ols"
    ridge: float = 0.0

    def __post_init__(self):
        super().__post_init__()
        check(self.ridge >= 0, "ridge", self.ridge, "a number >= 0")


class ToyOLS(BaseEstimator):
    """The coefficient of t in y ~ 1 + X + t (optionally ridge-penalised), with an HC0 standard error."""

    config_class = ToyOLSConfig
    name = "toy_ols"
    has_analytic_se = True

    def _estimate(self, data):
        Z = np.column_stack([data.design, data.t])
        penalty = float(self.ridge) * np.eye(Z.shape[1])
        penalty[0, 0] = 0.0
        self._bread = np.linalg.inv(Z.T @ Z + penalty)
        beta = self._bread @ (Z.T @ data.y)
        self._Z, self._resid = Z, data.y - Z @ beta
        return float(beta[-1])

    def _std_error(self, data):
        meat = (self._Z * self._resid[:, None] ** 2).T @ self._Z
        return float(np.sqrt((self._bread @ meat @ self._bread)[-1, -1]))


@dataclass
class ToyPermuteOutcomeConfig(SignificanceConfig):
    num_simulations: int = 20


class ToyPermuteOutcome(BaseRefuter):
    config_class = ToyPermuteOutcomeConfig
    name = "toy_permute_outcome"
    rule = "pass when the effects on a permuted outcome are centred on 0"

    def modify(self, data, rng):
        return data.with_outcome(rng.permutation(data.y))

    def verdict(self, estimate, std_error, sims):
        centred, p, why = centred_on_zero(sims, estimate, float(self.alpha))
        return centred, p, f"permuted-outcome effects average {sims.mean():.3g} ({why or 'not centred on 0'})"
'''
ENTRY_POINTS = """
[causal_cli.estimators]
toy_ols = toy_causal_plugin:ToyOLS
broken_import = toy_causal_plugin.missing:Nope
wrong_name = toy_causal_plugin:ToyOLS
psm = toy_causal_plugin:ToyOLS

[causal_cli.refuters]
toy_permute_outcome = toy_causal_plugin:ToyPermuteOutcome
"""
GOOD = {"estimator": "toy_ols", "refuter": "toy_permute_outcome"}
BROKEN = ("broken_import", "wrong_name", "psm")


def install(root) -> None:
    """The files ``pip install`` leaves: the package and its dist-info with entry_points.txt."""
    (root / "toy_causal_plugin").mkdir()
    (root / "toy_causal_plugin" / "__init__.py").write_text(textwrap.dedent(PLUGIN))
    info = root / "toy_causal_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-causal-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(ENTRY_POINTS)


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """The plugin installed on sys.path, and the registry as if this process had just started."""
    install(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    saved = {group: dict(entries) for group, entries in registry.ALL.items()}
    monkeypatch.setattr(registry, "_discovered", False)
    monkeypatch.setattr(registry, "PLUGINS", {group: {} for group in registry.ALL})
    monkeypatch.setattr(registry, "PLUGIN_WARNINGS", [])
    yield tmp_path
    for group, entries in registry.ALL.items():
        entries.clear()
        entries.update(saved[group])
    repo = ConfigStore.instance().repo
    for folder in (repo.get("estimator", {}), repo.get("refuters", {})):
        for name in GOOD.values():
            folder.pop(f"{name}.yaml", None)
    for group, name in GOOD.items():
        repo.get("schema", {}).get(group, {}).pop(f"{name}.yaml", None)
    sys.modules.pop("toy_causal_plugin", None)
    GlobalHydra.instance().clear()


def composed(overrides):
    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base=VERSION_BASE):
        return validate(compose(config_name="config", overrides=overrides))


def test_good_plugins_register_and_broken_ones_warn_in_one_line(plugin):
    with pytest.warns(registry.PluginWarning) as caught:
        estimators = registry.names("estimator")
    assert "toy_ols" in estimators and "toy_permute_outcome" in registry.names("refuter")
    assert not {"broken_import", "wrong_name"} & set(estimators)
    assert registry.ESTIMATORS["psm"] == "causal_cli.estimators.psm:PSMEstimator"  # a built-in keeps its name
    assert registry.PLUGINS["estimator"] == {"toy_ols": "toy-causal-plugin 0.1"}
    assert len(registry.PLUGIN_WARNINGS) == len(caught) == len(BROKEN)
    for name, line in zip(sorted(BROKEN), registry.PLUGIN_WARNINGS):
        assert f"'{name}'" in line and "skipped" in line and "\n" not in line
    assert "ModuleNotFoundError" in registry.PLUGIN_WARNINGS[0]
    assert "name is 'toy_ols', not 'wrong_name'" in registry.PLUGIN_WARNINGS[2]


def test_plugin_methods_pass_the_conformance_battery(plugin):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", registry.PluginWarning)
        check_estimator("toy_ols")
        check_refuter("toy_permute_outcome")
        check_estimator_config("toy_ols", composed)
        check_refuter_config("toy_permute_outcome", composed)


def test_a_plugin_estimator_and_refuter_run_through_a_composed_config(plugin):
    """``estimator=toy_ols 'refuters=[toy_permute_outcome]'``: the least-squares coefficient equals the
    built-in additive regression's, the refutation is recorded with its options."""
    from causal_cli.pipeline import run

    common = ["dgp.n=600", "refuters.n_jobs=1", "report.enabled=false"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", registry.PluginWarning)
        cfg = composed(
            [
                *common,
                "estimator=toy_ols",
                "refuters=[toy_permute_outcome]",
                "refuters.toy_permute_outcome.alpha=0.1",
            ]
        )
        ours = run(cfg)
        builtin = run(composed([*common, "estimator=regression_additive", "refuters=[]"]))
    assert ours.estimator == "toy_ols"
    assert ours.estimate == pytest.approx(builtin.estimate, rel=1e-9)
    (refutation,) = ours.refutations
    assert refutation.name == "toy_permute_outcome" and refutation.options == {"alpha": 0.1}
    assert refutation.num_simulations == 20 and np.isfinite(refutation.new_effect)


def test_a_config_can_only_choose_a_registered_name(plugin):
    message = "estimator.name='toy_causal_plugin:ToyOLS' is unknown; allowed: .*toy_ols"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", registry.PluginWarning)
        with pytest.raises(ConfigError, match=message):
            composed(["estimator=naive", "estimator.name=toy_causal_plugin:ToyOLS"])


def test_causal_list_shows_plugins_and_a_warning_line_per_broken_one(plugin):
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(plugin), str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [*causal_executable(), "list", "estimator", "refuters"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "toy_ols" in done.stdout and "plugin: toy-causal-plugin 0.1" in done.stdout
    assert "toy_permute_outcome" in done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == len(BROKEN) and all(line.startswith("causal: warning: plugin") for line in lines)
