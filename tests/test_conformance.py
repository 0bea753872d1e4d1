"""One conformance battery over every registered method (scikit-learn's ``check_estimator`` is the model).

Every estimator, refuter, DGP and data source in :mod:`causal_cli.registry` (installed plugins included:
``registry.names`` discovers them) is checked here without a test of its own:

* parameters: ``get_params`` -> construct -> equal, ``clone``, ``set_params`` returns self, the signature
  is the config dataclass's fields, an unknown parameter is refused, a bad value is a ConfigError;
* ``fit`` returns self, does not touch its input arrays or its parameters, gives a finite effect inside
  its CI; same seed -> the same numbers (bootstrap CI included); ``estimate`` agrees with ``fit``;
* a refuter leaves the data as it was (``refute`` and every ``modify_task``); the same stream gives the
  same modification and the same seed the same result; its result records its options;
* config <-> object: the method's YAML default, composed by Hydra and validated, builds an object whose
  parameters are the dataclass defaults, and ``to_config`` gives the dataclass back;
* the registered name is the class's ``name``, the config's name key, the module and the YAML file.

``check_estimator`` / ``check_refuter`` are plain functions so tests/test_plugins.py runs the same
battery on a plugin's methods.
"""

from __future__ import annotations

import inspect
import json
from dataclasses import fields

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from causal_cli import registry
from causal_cli.errors import ConfigError
from causal_cli.estimators.base import EstimationData
from causal_cli.schema import register_configs
from causal_cli.task import VERSION_BASE, conf_dir
from causal_cli.validate import validate

ARRAYS = ("t", "y", "X", "instruments", "mediators", "w", "cluster", "modifiers")
#: an option value no schema accepts for these keys (the check that bad values are refused)
BAD_VALUES = {"target_units": "everyone", "num_simulations": 0, "ci_level": 1.5, "alpha": 2.0}


def study(n: int = 400, seed: int = 0) -> EstimationData:
    """Confounded by X, an instrument z (t only), a mediator m (all of t's effect): every estimand kind."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    z = rng.normal(size=(n, 1))
    t = (0.6 * X[:, 0] - 0.4 * X[:, 1] + 1.5 * z[:, 0] + rng.logistic(size=n) > 0).astype(float)
    m = (1.5 * t + 0.5 * X[:, 0] + rng.normal(size=n))[:, None]
    y = 1.0 + 2.0 * m[:, 0] + X @ np.array([1.5, -1.0]) + rng.normal(size=n)
    return EstimationData(
        t=t,
        y=y,
        X=X,
        covariates=("x0", "x1"),
        instruments=z,
        instrument_names=("z",),
        mediators=m,
        mediator_names=("m",),
    )


def snapshot(data: EstimationData) -> dict[str, np.ndarray]:
    return {k: getattr(data, k).copy() for k in ARRAYS if getattr(data, k) is not None}


def assert_unchanged(data: EstimationData, before: dict[str, np.ndarray], what: str) -> None:
    for key, values in before.items():
        now = getattr(data, key)
        assert now.dtype == values.dtype and np.array_equal(now, values), f"{what} changed data.{key}"


def same_params(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)


def _same(x, y) -> bool:
    return x is y or (type(x) is type(y) and x == y)


# ------------------------------------------------------------------------------------------- the checks
def check_params(cls) -> None:
    """scikit-learn's get_params / set_params / clone contract, the parameters derived from the dataclass."""
    defaults = cls.param_defaults()
    signature = inspect.signature(cls)
    assert list(signature.parameters) == list(defaults) == list(cls.param_names())
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in signature.parameters.values())
    obj = cls()
    params = obj.get_params()
    assert same_params(params, defaults)
    rebuilt = cls(**params)
    assert same_params(rebuilt.get_params(), params)
    copy = obj.clone()
    assert copy is not obj and type(copy) is cls and same_params(copy.get_params(), params)
    from sklearn.base import clone  # scikit-learn's own clone: get_params(deep=False), then identity checks

    assert type(clone(obj)) is cls
    name, value = next(iter(params.items()))
    assert obj.set_params(**{name: value}) is obj
    with pytest.raises(TypeError, match="no_such_parameter"):
        cls(no_such_parameter=1)
    declared = {f.name for f in fields(cls.config_class)}
    assert set(params) - {"random_state", "ci_level", "ci_method", "num_bootstrap"} <= declared


def check_bad_value_refused(cls, prefix: str) -> None:
    key = next((k for k in BAD_VALUES if k in cls.param_names()), None)
    assert key is not None, f"{cls.__name__} has none of {', '.join(BAD_VALUES)}"
    with pytest.raises(ConfigError, match=rf"^{prefix}.*{key.replace('ci_', 'ci.')}"):
        cls(**{key: BAD_VALUES[key]}).to_config()


def check_estimator(name: str, data: EstimationData | None = None) -> None:
    """The whole battery for one registered estimator (fit on a small study)."""
    cls = registry.load("estimator", name)
    assert cls.name == name and cls.config_class().name == name
    check_params(cls)
    check_bad_value_refused(cls, "estimator.")
    assert type(cls().to_config()) is cls.config_class
    data = data or study()
    before = snapshot(data)
    estimator = cls(random_state=np.random.SeedSequence(5))
    params = estimator.get_params()
    assert estimator.fit(data) is estimator
    assert_unchanged(data, before, f"{name}.fit")
    assert same_params(estimator.get_params(), params), f"{name}.fit changed its parameters"
    assert np.isfinite(estimator.effect_) and estimator.std_error_ >= 0
    assert estimator.ci_low_ <= estimator.effect_ <= estimator.ci_high_
    again = cls(**params).fit(data)
    for attr in ("effect_", "std_error_", "ci_low_", "ci_high_"):
        assert getattr(again, attr) == getattr(estimator, attr), f"{name}: same seed, different {attr}"
    assert estimator.estimate(data) == pytest.approx(estimator.effect_, rel=1e-7, abs=1e-9)
    assert_unchanged(data, before, f"{name}.estimate")
    check_reporting(estimator, data)
    check_bootstrap_seed(cls, data)


def check_reporting(estimator, data: EstimationData) -> None:
    """What the pipeline reads after a fit: the CI method, JSON-ready summary and caveats, the diagnostics
    protocol (``propensity_``, ``balance_weights_``), and the refuters' fast path on modified copies."""
    assert estimator.ci_method_ == ("analytic" if estimator.has_analytic_se else "bootstrap")
    json.dumps(estimator.summary())  # goes to results.json as is
    assert all(isinstance(line, str) and "\n" not in line for line in estimator.caveats())
    if hasattr(estimator, "propensity_"):
        ps = estimator.propensity_
        assert ps.shape == (data.n,) and np.all((ps >= 0) & (ps <= 1))
    if hasattr(estimator, "balance_weights_"):
        weights = estimator.balance_weights_
        assert weights.shape == (data.n,) and np.all(np.isfinite(weights)) and np.all(weights >= 0)
    before = snapshot(data)
    rng = np.random.default_rng(0)
    assert np.isfinite(estimator.estimate(data.with_treatment(rng.permutation(data.t))))
    assert np.isfinite(estimator.estimate(data.with_covariate(rng.standard_normal(data.n), "noise")))
    assert_unchanged(data, before, f"{estimator.name}.estimate on modified copies")


def check_bootstrap_seed(cls, data: EstimationData) -> None:
    """Bootstrap CIs: the same seed gives the same interval, another seed another one."""

    def interval(seed):
        fit = cls(ci_method="bootstrap", num_bootstrap=8, random_state=seed).fit(data)
        return fit.ci_low_, fit.ci_high_

    assert interval(3) == interval(3)
    assert interval(3) != interval(4)


def check_refuter(name: str, data: EstimationData | None = None) -> None:
    """The whole battery for one registered refuter (run with few simulations on a small study)."""
    cls = registry.load("refuter", name)
    assert cls.name == name and cls.rule
    check_params(cls)
    check_bad_value_refused(cls, f"refuters.{name}.")
    assert type(cls().to_config()) is cls.config_class
    data = data or study(seed=1)
    data.instruments = data.mediators = None  # a backdoor study: the refuters' common case
    before = snapshot(data)
    estimator = registry.load("estimator", "regression")().fit(data)

    def run(seed):
        refuter = cls(num_simulations=3)
        result = refuter.refute(estimator, data, estimator.effect_, estimator.std_error_, seed=seed)
        return refuter, result

    refuter, result = run(7)
    assert_unchanged(data, before, f"{name}.refute")
    assert result.name == name and result.rule == cls.rule and result.reason
    assert result.options == refuter.options and "num_simulations" not in result.options
    assert result.num_simulations == 3
    sims = np.asarray(run(7)[1].simulations)
    assert np.array_equal(sims, np.asarray(result.simulations), equal_nan=True), f"{name}: same seed differs"
    assert not np.array_equal(sims, np.asarray(run(8)[1].simulations), equal_nan=True)
    streams = refuter.streams(7)
    for index in range(min(4, refuter.num_tasks())):
        first = refuter.modify_task(data, index, np.random.default_rng(streams[index]))
        second = refuter.modify_task(data, index, np.random.default_rng(streams[index]))
        assert_unchanged(data, before, f"{name}.modify_task")
        assert (first is None) == (second is None)
        if first is not None:
            assert first is not data
            for key in ARRAYS:
                a, b = getattr(first, key), getattr(second, key)
                assert (a is None and b is None) or np.array_equal(a, b), f"{name}: same stream, other {key}"


# ------------------------------------------------------------------------------ config <-> object round trip
@pytest.fixture(scope="module")
def composed():
    """``composed(overrides)`` -> the validated config of ``causal run`` with those overrides."""
    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base=VERSION_BASE):
        yield lambda overrides: validate(compose(config_name="config", overrides=overrides))
    GlobalHydra.instance().clear()


def has_yaml(group_dir: str, name: str) -> bool:
    return (conf_dir() / group_dir / f"{name}.yaml").is_file()


def check_estimator_config(name: str, composed) -> None:
    cls = registry.load("estimator", name)
    node = composed([f"estimator={name}"]).estimator
    built = cls.from_config(node)
    assert same_params(built.get_params(), cls().get_params()), (
        f"conf/estimator/{name}.yaml != {cls.__name__}"
    )
    assert built.to_config() == OmegaConf.to_object(node)


def check_refuter_config(name: str, composed) -> None:
    cls = registry.load("refuter", name)
    node = composed([f"refuters=[{name}]"]).refuters[name]
    built = cls.from_config(node)
    assert same_params(built.get_params(), cls().get_params()), f"conf/refuters/{name}.yaml != {cls.__name__}"
    assert built.to_config() == OmegaConf.to_object(node)


# ------------------------------------------------------------------------------------------- the tests
ESTIMATORS = registry.names("estimator")
REFUTERS = registry.names("refuter")


@pytest.mark.parametrize("name", ESTIMATORS)
def test_estimator_conforms(name):
    check_estimator(name)


@pytest.mark.parametrize("name", REFUTERS)
def test_refuter_conforms(name):
    check_refuter(name)


@pytest.mark.parametrize("name", ESTIMATORS)
def test_estimator_yaml_default_is_the_dataclass_default(name, composed):
    if name in registry.PLUGINS["estimator"]:
        assert not has_yaml("estimator", name)  # a plugin's option is its schema (ConfigStore)
    else:
        assert has_yaml("estimator", name) and registry.ESTIMATORS[name].startswith(
            f"causal_cli.estimators.{name}:"
        )
    check_estimator_config(name, composed)


@pytest.mark.parametrize("name", REFUTERS)
def test_refuter_yaml_default_is_the_dataclass_default(name, composed):
    if name not in registry.PLUGINS["refuter"]:
        assert has_yaml("refuters", name) and registry.REFUTERS[name].startswith(
            f"causal_cli.refuters.{name}:"
        )
    check_refuter_config(name, composed)


@pytest.mark.parametrize("name", registry.names("dgp"))
def test_dgp_conforms(name):
    """Named as registered; the same seed draws the same table, another seed another; the reference is the
    drawn units' own effects."""
    cls = registry.load("dgp", name)
    assert cls.config_class.__dataclass_fields__["kind"].default == name
    assert has_yaml("dgp", name) or name in registry.PLUGINS["dgp"]

    def dgp(seed):
        return cls(OmegaConf.structured(cls.config_class(n=300, seed=seed)))

    first = dgp(4).dataset()
    assert first.frame.equals(dgp(4).dataset().frame) and not first.frame.equals(dgp(5).dataset().frame)
    # the same draw, by hand: the reference must be these units' mean effects, not another draw's
    frame, effects = dgp(4).simulate(np.random.default_rng(np.random.SeedSequence(4)))
    assert frame.equals(first.frame)
    assert first.reference["ate"] == pytest.approx(float(np.mean(effects)), rel=1e-12)


@pytest.mark.parametrize("name", registry.names("data"))
def test_data_source_is_named_as_registered(name):
    cls = registry.load("data", name)
    assert cls.config_class.__dataclass_fields__["source"].default == name
    assert has_yaml("data", name) or name in registry.PLUGINS["data"]
    if name not in registry.PLUGINS["data"]:
        assert registry.DATA_SOURCES[name].startswith("causal_cli.data.")


def test_the_battery_catches_a_fit_that_mutates_its_input():
    """The battery can fail: an estimator that centres its outcome in place is caught."""
    from causal_cli.estimators.naive import NaiveEstimator

    class Mutating(NaiveEstimator):
        def _estimate(self, data):
            data.y -= data.y.mean()
            return super()._estimate(data)

    data = study()
    before = snapshot(data)
    Mutating().fit(data)
    with pytest.raises(AssertionError, match="changed data.y"):
        assert_unchanged(data, before, "Mutating.fit")
