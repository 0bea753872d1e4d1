"""Validate a composed config before any work: every method node against its schema and ranges."""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from causal_cli import registry
from causal_cli.errors import CausalCliError, ConfigError
from causal_cli.schema import REFUTER_SETTINGS, check_sizes


def _typed(node, schema: type, path: str, instantiate: bool = True) -> DictConfig:
    """Merge ``node`` onto ``schema``; instantiate it so ``__post_init__`` range checks run."""
    try:
        merged = OmegaConf.merge(OmegaConf.structured(schema), node)
        if instantiate:
            OmegaConf.to_object(merged)
    except CausalCliError as exc:
        raise ConfigError(f"{path}.{exc}") from exc
    except OmegaConfBaseException as exc:
        raise ConfigError(_omegaconf_message(exc, path)) from exc
    return merged


def _omegaconf_message(exc: OmegaConfBaseException, path: str) -> str:
    key = getattr(exc, "full_key", None) or ""
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    full = f"{path}.{key}" if key else path
    return f"{full}: {first}"


def _name(node, key: str, group: str, path: str) -> str:
    value = node.get(key) if node is not None else None
    if value is None or OmegaConf.is_missing(node, key):
        raise ConfigError(f"{path}.{key} is not set; allowed: {', '.join(registry.names(group))}")
    if value not in registry.names(group):
        raise ConfigError(f"{path}.{key}='{value}' is unknown; allowed: {', '.join(registry.names(group))}")
    return str(value)


def _check_design(cfg) -> None:
    """``graph.design`` is one of two values; the ``ab`` group, when chosen, is typed against its schema."""
    from causal_cli.schema import ABConfig

    design = cfg.graph.get("design", "observational")
    if design not in ("observational", "randomized"):
        raise ConfigError(f"graph.design={design!r} is out of range; allowed: observational, randomized")
    if cfg.get("ab") is not None:
        cfg.ab = _typed(cfg.ab, ABConfig, "ab")


def validate(cfg: DictConfig) -> DictConfig:
    """Return ``cfg`` with every method node typed; raise ConfigError naming the first bad key."""
    from causal_cli import trust
    from causal_cli.schema import DiagnosticsConfig, GraphConfig, check_references

    trust.check_run_config(cfg)  # before resolving: no oc.env value is copied, nothing is imported
    cfg = OmegaConf.create(OmegaConf.to_container(cfg, resolve=False))
    check_sizes(OmegaConf.to_container(cfg, resolve=False))  # before any typed merge (schema.check_sizes)
    try:
        OmegaConf.resolve(cfg)
    except OmegaConfBaseException as exc:
        raise ConfigError(_omegaconf_message(exc, "config")) from exc
    _check_top_level(cfg)
    OmegaConf.set_struct(cfg, False)
    # graph values are checked by CausalGraph.from_config, whose messages say what to set
    cfg.graph = _typed(cfg.graph, GraphConfig, "graph", instantiate=False)
    cfg.diagnostics = _typed(cfg.get("diagnostics") or {}, DiagnosticsConfig, "diagnostics")
    _type_methods(cfg)
    _type_refuters(cfg.get("refuters") or {})
    if not isinstance(cfg.get("seed"), int) or isinstance(cfg.get("seed"), bool) or cfg.seed < 0:
        raise ConfigError(f"seed={cfg.get('seed')!r}; allowed: an integer >= 0")
    check_references(cfg)
    _check_design(cfg)
    OmegaConf.set_struct(cfg, True)
    return cfg


def _check_top_level(cfg) -> None:
    """Only the run schema's keys, and a graph, data and estimator chosen."""
    from dataclasses import fields

    from causal_cli.schema import RunConfig

    known = {f.name for f in fields(RunConfig)}
    unknown = [k for k in cfg if k not in known]
    if unknown:
        raise ConfigError(
            f"{unknown[0]} is not a config key; allowed top-level keys: {', '.join(sorted(known))}"
        )
    for key in ("graph", "data", "estimator"):  # e.g. removed with ~estimator
        if OmegaConf.is_missing(cfg, key) or not isinstance(cfg.get(key), DictConfig):
            raise ConfigError(f"{key} is not set; choose one with {key}=NAME (see causal list {key})")


def _type_methods(cfg) -> None:
    """The estimator, data source, DGP and compared estimators, each typed against its method's schema."""
    name = _name(cfg.estimator, "name", "estimator", "estimator")
    cfg.estimator = _typed(cfg.estimator, registry.config_class("estimator", name), "estimator")
    source = _name(cfg.data, "source", "data", "data")
    cfg.data = _typed(cfg.data, registry.config_class("data", source), "data")
    if cfg.get("dgp") is not None:
        kind = _name(cfg.dgp, "kind", "dgp", "dgp")
        cfg.dgp = _typed(cfg.dgp, registry.config_class("dgp", kind), "dgp")
    for key in list(cfg.get("compare") or {}):
        node = cfg.compare[key] or {}
        if key not in registry.names("estimator"):
            allowed = ", ".join(registry.names("estimator"))
            raise ConfigError(f"compare.{key} is not an estimator; allowed: {allowed}")
        cfg.compare[key] = _typed(
            {**node, "name": key}, registry.config_class("estimator", key), f"compare.{key}"
        )


def _type_refuters(refuters) -> None:
    """Each chosen refuter typed against its schema; the settings (n_jobs) checked."""
    for key in list(refuters):
        if key in REFUTER_SETTINGS:
            continue
        if key not in registry.names("refuter"):
            allowed = ", ".join(registry.names("refuter"))
            raise ConfigError(
                f"refuters.{key} is not a refuter; allowed: {allowed} (settings: n_jobs, backend, address)"
            )
        refuters[key] = _typed(refuters[key], registry.config_class("refuter", key), f"refuters.{key}")
    n_jobs = refuters.get("n_jobs", -1)
    if not isinstance(n_jobs, int) or isinstance(n_jobs, bool):
        raise ConfigError(
            f"refuters.n_jobs={n_jobs!r} is not an integer; allowed: -1 (all cores) or 1, 2, ..."
        )
    _check_backend(refuters)


def _check_backend(refuters) -> None:
    """``refuters.backend`` is one of :data:`~causal_cli.schema.REFUTER_BACKENDS`; ``refuters.address`` a string."""
    from causal_cli.schema import REFUTER_BACKENDS

    backend = refuters.get("backend", "local")
    if backend not in REFUTER_BACKENDS:
        raise ConfigError(f"refuters.backend={backend!r}; allowed: {', '.join(REFUTER_BACKENDS)}")
    address = refuters.get("address")
    if address is not None and not isinstance(address, str):
        raise ConfigError(
            f"refuters.address={address!r} is not a Ray address; allowed: null (RAY_ADDRESS or a local Ray), "
            "auto, host:port or ray://host:10001"
        )
