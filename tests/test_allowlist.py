"""What a model option may name: scikit-learn estimator classes and what the user allowed, with plain
parameters; decided by name before anything is imported (causal_cli.trust)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from causal_cli import trust
from causal_cli.errors import ConfigError

#: callables the attacker's review used; none may be built
HOSTILE = [
    "sympy.sympify",
    "sympy.parsing.sympy_parser.parse_expr",
    "patsy.dmatrix",
    "statsmodels.formula.api.ols",
    "builtins.open",
    "builtins.eval",
    "pathlib.Path.write_text",
    "shutil.copyfile",
    "os._exit",
    "os.system",
    "subprocess.run",
    "hydra.utils.instantiate",
    "sklearn.utils.Bunch",  # under sklearn, but no estimator
    "sklearn.base.clone",  # a function
    "sklearn.datasets.fetch_openml",
    "sklearn",
    "sklearn.ensemble..GradientBoostingClassifier",
    "sklearn.ensemble.GradientBoostingClassifier; import os",
]


@pytest.fixture(autouse=True)
def no_user_allow_list(monkeypatch, tmp_path):
    monkeypatch.delenv(trust.ALLOW_ENV, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))


@pytest.mark.parametrize("target", HOSTILE)
def test_hostile_targets_are_refused_in_one_line_naming_the_key(target):
    with pytest.raises(ConfigError) as err:
        trust.build_model({"_target_": target, "command": "touch x"}, "estimator.propensity_model")
    line = err.value.one_line()
    assert "\n" not in line
    assert line.startswith("config error: estimator.propensity_model")
    assert "scikit-learn estimator classes" in line


def test_name_check_refuses_before_importing(tmp_path):
    """A refused module is never imported: checked in a fresh interpreter."""
    code = (
        "import sys\n"
        "from causal_cli import trust\n"
        "from causal_cli.errors import ConfigError\n"
        "try:\n"
        "    trust.resolve_class('antigravity.Thing', 'k')\n"
        "except ConfigError:\n"
        "    pass\n"
        "try:\n"
        "    trust.check_run_config({'m': {'_target_': 'sklearn.svm.SVC'}}, imports=False)\n"
        "except ConfigError:\n"
        "    raise SystemExit(3)\n"
        "print('antigravity' in sys.modules, 'sklearn' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False"]


def test_sklearn_estimators_are_built_with_their_parameters():
    model = trust.build_model(
        {"_target_": "sklearn.ensemble.GradientBoostingClassifier", "n_estimators": 7, "max_depth": 2}
    )
    assert type(model).__name__ == "GradientBoostingClassifier"
    assert (model.n_estimators, model.max_depth) == (7, 2)
    assert trust.build_model({"_target_": "sklearn.linear_model.LogisticRegression"}).C == 1.0


@pytest.mark.parametrize("reserved", ["_args_", "_partial_", "_convert_", "_recursive_"])
def test_instantiate_keys_are_refused_at_any_depth(reserved):
    spec = {"_target_": "sklearn.linear_model.LogisticRegression", reserved: ["x"]}
    with pytest.raises(ConfigError, match=reserved):
        trust.build_model(spec, "estimator.outcome_model")
    nested = {"_target_": "sklearn.linear_model.LogisticRegression", "C": {"_target_": "os.getcwd"}}
    with pytest.raises(ConfigError, match=r"estimator.outcome_model.C._target_ is not allowed"):
        trust.build_model(nested, "estimator.outcome_model")
    with pytest.raises(ConfigError, match=rf"estimator.x.{reserved} is not allowed"):
        trust.check_run_config({"estimator": {"x": {reserved: 1}}})


def test_a_bad_parameter_is_one_line():
    with pytest.raises(
        ConfigError, match="cannot build model 'sklearn.linear_model._logistic.LogisticRegression'"
    ):
        trust.build_model({"_target_": "sklearn.linear_model.LogisticRegression", "nope": 1})


def test_user_extends_the_list_by_environment_and_file(monkeypatch, tmp_path):
    target = {"_target_": "collections.OrderedDict"}  # a harmless class outside scikit-learn
    with pytest.raises(ConfigError):
        trust.check_model(target, "m")
    monkeypatch.setenv(trust.ALLOW_ENV, "xgboost.XGBClassifier, collections.OrderedDict")
    cls, params = trust.check_model(target, "m")
    assert cls.__name__ == "OrderedDict" and params == {}
    monkeypatch.delenv(trust.ALLOW_ENV)
    allow = tmp_path / "xdg" / "causal-cli" / "allow.txt"
    allow.parent.mkdir(parents=True)
    allow.write_text("# my models\ncollections   # a whole module prefix\n")
    assert trust.check_model(target, "m")[0].__name__ == "OrderedDict"
    assert "collections" in trust.allowed_text()
    # a prefix entry covers its submodules only, not modules that merely start with the same letters
    assert not trust.user_allowed("collectionsx.Evil")


def test_validate_refuses_a_hostile_model_in_estimator_and_compare(compose_cfg):
    from causal_cli.validate import validate

    cfg = compose_cfg(["estimator=ipw", "estimator.propensity_model={_target_: builtins.open, file: x}"])
    with pytest.raises(ConfigError, match="estimator.propensity_model._target_=builtins.open is not allowed"):
        validate(cfg)
    cfg = compose_cfg(["+compare.ipw.propensity_model={_target_: shutil.copyfile, src: a, dst: b}"])
    with pytest.raises(ConfigError, match="compare.ipw.propensity_model._target_=shutil.copyfile"):
        validate(cfg)
    ok = compose_cfg(
        [
            "estimator=ipw",
            "estimator.propensity_model={_target_: sklearn.linear_model.LogisticRegression, C: 2}",
        ]
    )
    assert validate(ok).estimator.propensity_model.C == 2


plain_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text("abc", min_size=1, max_size=3), inner, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=60, deadline=None)
@given(plain_values)
def test_plain_values_pass_unchanged(value):
    assert trust.plain(value, "k") == (list(value) if isinstance(value, tuple) else value)


@settings(max_examples=60, deadline=None)
@given(plain_values, st.sampled_from(trust.RESERVED))
def test_a_reserved_key_anywhere_is_refused(value, reserved):
    with pytest.raises(ConfigError):
        trust.plain({"a": [value, {reserved: "os.system"}]}, "k")
