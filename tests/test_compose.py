"""Every option of every config group composes, validates and builds; bad configs fail naming the key."""

from __future__ import annotations

import pytest

from causal_cli import registry
from causal_cli.errors import ConfigError
from causal_cli.task import conf_dir
from causal_cli.validate import validate


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (conf_dir() / group).glob("*.yaml"))


def test_default_config_composes(compose_cfg):
    cfg = validate(compose_cfg([]))
    assert cfg.estimator.name == "psm"
    assert cfg.graph.treatment == "feature_used"
    assert set(cfg.refuters) >= {"placebo", "random_common_cause", "n_jobs"}
    assert cfg.dgp.seed == cfg.seed


@pytest.mark.parametrize("name", options("estimator"))
def test_every_estimator_option_composes_and_builds(compose_cfg, name):
    cfg = validate(compose_cfg([f"estimator={name}"]))
    # a preset (estimator/<method>_<variant>.yaml) is its method with other options
    assert cfg.estimator.name == name or name.startswith(f"{cfg.estimator.name}_")
    estimator = registry.load("estimator", cfg.estimator.name).from_config(cfg.estimator)
    assert estimator.name == cfg.estimator.name


@pytest.mark.parametrize("name", options("refuters"))
def test_every_refuter_option_composes_and_builds(compose_cfg, name):
    cfg = validate(compose_cfg([f"refuters=[{name}]"]))
    assert name in cfg.refuters
    assert registry.load("refuter", name).from_config(cfg.refuters[name]).name == name


@pytest.mark.parametrize("name", options("dgp"))
def test_every_dgp_option_composes(compose_cfg, name):
    cfg = validate(compose_cfg([f"dgp={name}"]))
    assert cfg.dgp.kind in registry.DGPS


@pytest.mark.parametrize("name", options("graph"))
def test_every_graph_option_composes(compose_cfg, name):
    from causal_cli.errors import GraphError
    from causal_cli.graph import CausalGraph

    cfg = validate(compose_cfg([f"graph={name}"]))
    if name in ("custom", "file"):  # templates: the roles, or the file, are for the user to fill in
        with pytest.raises(
            GraphError, match=f"graph.{'treatment' if name == 'custom' else 'file'} is not set"
        ):
            CausalGraph.from_config(cfg.graph)
    else:
        graph = CausalGraph.from_config(cfg.graph)
        assert graph.treatment in graph.nodes and graph.outcome in graph.nodes


@pytest.mark.parametrize("name", options("data"))
def test_every_data_option_composes(compose_cfg, name):
    cfg = compose_cfg([f"data={name}"])
    assert cfg.data.source in registry.DATA_SOURCES


@pytest.mark.parametrize("name", options("experiment"))
def test_every_experiment_composes(compose_cfg, name):
    cfg = compose_cfg([f"experiment={name}"])
    assert cfg.estimator.name in registry.ESTIMATORS


def test_every_registered_method_has_a_config_file():
    for group, folder in (("estimator", "estimator"), ("refuter", "refuters"), ("data", "data")):
        assert set(registry.ALL[group]) <= set(options(folder)), group


@pytest.mark.parametrize(
    "override, key",
    [
        ("dgp.n=abc", "dgp.n"),
        ("estimator.k=two", "estimator.k"),
        ("dgp.confounding=extreme", "dgp.confounding"),
        ("estimator.target_units=all", "estimator.target_units"),
    ],
)
def test_wrong_type_fails_at_compose_time_naming_the_key(compose_cfg, override, key):
    with pytest.raises(Exception) as info:
        compose_cfg([override])
    assert key in str(info.value)


@pytest.mark.parametrize(
    "override, key",
    [
        ("dgp.n=-5", "dgp.n"),
        ("estimator.caliper=-1", "estimator.caliper"),
        ("estimator.ci.level=1.5", "estimator.ci.level"),
        ("refuters.placebo.num_simulations=0", "refuters.placebo.num_simulations"),
        ("+estimator.nonsense=1", "estimator.nonsense"),
    ],
)
def test_out_of_range_or_unknown_values_are_refused_naming_the_key(compose_cfg, override, key):
    with pytest.raises(ConfigError) as info:
        validate(compose_cfg([override]))
    assert key in str(info.value)
