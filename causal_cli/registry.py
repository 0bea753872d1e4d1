"""The one place where methods are registered: ``name -> "module:Class"``.

Adding an estimator, refuter, DGP or data source means one module (with its ``config_class``),
one config file in ``conf/<group>/``, and one line here.

Installed distributions add their own through entry points (:data:`ENTRY_POINT_GROUPS`), e.g. in a
plugin's ``pyproject.toml``::

    [project.entry-points."causal_cli.estimators"]
    my_estimator = "my_package.estimators:MyEstimator"

Installed code is trusted; configs are not: a config can only choose a registered name, never a class
path. Plugins are discovered lazily (:func:`discover`: listing, composing a config, or a name that is not
built in), each checked on loading; a broken one is skipped with a one-line warning, never a crash.
"""

from __future__ import annotations

import importlib
import re
import warnings
from dataclasses import is_dataclass
from typing import Any

ESTIMATORS: dict[str, str] = {
    "naive": "causal_cli.estimators.naive:NaiveEstimator",
    "psm": "causal_cli.estimators.psm:PSMEstimator",
    "regression": "causal_cli.estimators.regression:RegressionEstimator",
    "ps_stratification": "causal_cli.estimators.ps_stratification:PSStratificationEstimator",
    "ipw": "causal_cli.estimators.ipw:IPWEstimator",
    "aipw": "causal_cli.estimators.aipw:AIPWEstimator",
    "dml": "causal_cli.estimators.dml:DMLEstimator",
    "distance_matching": "causal_cli.estimators.distance_matching:DistanceMatchingEstimator",
    "iv": "causal_cli.estimators.iv:IVEstimator",
    "frontdoor": "causal_cli.estimators.frontdoor:FrontdoorEstimator",
}

REFUTERS: dict[str, str] = {
    "placebo": "causal_cli.refuters.placebo:PlaceboRefuter",
    "random_common_cause": "causal_cli.refuters.random_common_cause:RandomCommonCauseRefuter",
    "data_subset": "causal_cli.refuters.data_subset:DataSubsetRefuter",
    "bootstrap": "causal_cli.refuters.bootstrap:BootstrapRefuter",
    "dummy_outcome": "causal_cli.refuters.dummy_outcome:DummyOutcomeRefuter",
    "unobserved_common_cause": "causal_cli.refuters.unobserved_common_cause:UnobservedCommonCauseRefuter",
}

DGPS: dict[str, str] = {
    "product_growth": "causal_cli.data.synthetic:ProductGrowthDGP",
    "iv_promo": "causal_cli.data.dgps:IVPromoDGP",
    "frontdoor_onboarding": "causal_cli.data.dgps:FrontdoorOnboardingDGP",
    "heterogeneous": "causal_cli.data.dgps:HeterogeneousDGP",
    "ab_launch": "causal_cli.data.ab:ABLaunchDGP",
}

DATA_SOURCES: dict[str, str] = {
    "synthetic": "causal_cli.data.synthetic:SyntheticSource",
    "csv": "causal_cli.data.csv:CSVSource",
    "parquet": "causal_cli.data.parquet:ParquetSource",
    "sql": "causal_cli.data.sql:SQLSource",
    "causaldata": "causal_cli.data.causaldata:CausaldataSource",
}

ALL: dict[str, dict[str, str]] = {
    "estimator": ESTIMATORS,
    "refuter": REFUTERS,
    "dgp": DGPS,
    "data": DATA_SOURCES,
}

#: the entry-point group through which installed distributions add to each registry group
ENTRY_POINT_GROUPS: dict[str, str] = {
    "estimator": "causal_cli.estimators",
    "refuter": "causal_cli.refuters",
    "dgp": "causal_cli.dgps",
    "data": "causal_cli.data_sources",
}
#: what each group's classes must have (duck-typed: the config layer imports no method code)
REQUIRED_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "estimator": ("config_class", "name", "identification", "fit", "estimate", "get_params"),
    "refuter": ("config_class", "name", "rule", "modify", "verdict", "refute", "get_params"),
    "dgp": ("config_class", "simulate", "dataset"),
    "data": ("config_class",),
}
#: the key of each group's config node that holds the registered name (None: the name is the node's key)
NAME_KEYS: dict[str, str | None] = {"estimator": "name", "refuter": None, "dgp": "kind", "data": "source"}
#: a plugin's name becomes a config option and a folder name: keep it plain
PLUGIN_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")

#: plugin name -> "distribution version" per group, for ``causal list``
PLUGINS: dict[str, dict[str, str]] = {group: {} for group in ALL}
#: one line per plugin that was skipped, and why
PLUGIN_WARNINGS: list[str] = []
_discovered = False


class PluginWarning(UserWarning):
    """An installed plugin could not be registered (it is skipped)."""


def load(group: str, name: str) -> Any:
    """Import and return the class registered as ``name`` in ``group``."""
    from causal_cli.errors import ConfigError

    entries = ALL[group]
    if name not in entries:
        discover()
    if name not in entries:
        allowed = ", ".join(sorted(entries))
        raise ConfigError(f"unknown {group} '{name}'; allowed: {allowed}")
    module_name, _, class_name = entries[name].partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def config_class(group: str, name: str) -> type:
    return load(group, name).config_class


def names(group: str) -> list[str]:
    """Every registered name of ``group``, installed plugins included, sorted."""
    discover()
    return sorted(ALL[group])


def discover() -> None:
    """Register the installed plugins' methods, once per process."""
    global _discovered
    if _discovered:
        return
    _discovered = True
    from importlib.metadata import entry_points

    try:
        found = entry_points()
    except Exception as exc:  # a broken installation must not stop a run that uses no plugin
        _warn(f"plugins were not loaded: reading the installed entry points failed ({_reason(exc)})")
        return
    for group, entry_group in ENTRY_POINT_GROUPS.items():
        for entry in sorted(found.select(group=entry_group), key=lambda e: e.name):
            _register_plugin(group, entry)


def _register_plugin(group: str, entry) -> None:
    where = f"{ENTRY_POINT_GROUPS[group]} '{entry.name}' = {entry.value}"
    problem = _plugin_problem(group, entry)
    if problem:
        _warn(f"plugin {where} skipped: {problem}")
        return
    ALL[group][entry.name] = entry.value
    dist = getattr(entry, "dist", None)
    PLUGINS[group][entry.name] = f"{dist.name} {dist.version}" if dist is not None else entry.value


def _plugin_problem(group: str, entry) -> str | None:
    """Why ``entry`` cannot be registered in ``group``, or None."""
    if not PLUGIN_NAME.fullmatch(entry.name):
        return "its name must be lower-case letters, digits and _ (at most 64), starting with a letter"
    if entry.name in ALL[group]:
        return f"the name is taken by {ALL[group][entry.name]}"
    if ":" not in entry.value:
        return "the entry point must name a class (module:Class)"
    try:
        cls = entry.load()
    except Exception as exc:
        return f"importing it failed ({_reason(exc)})"
    missing = [a for a in REQUIRED_ATTRIBUTES[group] if not hasattr(cls, a)]
    if missing:
        return f"the class has no {', '.join(missing)}"
    if not is_dataclass(cls.config_class):
        return "its config_class is not a dataclass"
    return _name_problem(group, entry.name, cls)


def _name_problem(group: str, name: str, cls) -> str | None:
    """The class, and its config's name key, must carry the registered name."""
    declared = getattr(cls, "name", name)
    if group in ("estimator", "refuter") and declared != name:
        return f"the class's name is '{declared}', not '{name}'"
    key = NAME_KEYS[group]
    fields = getattr(cls.config_class, "__dataclass_fields__", {})
    if key and key in fields and fields[key].default != name:
        return f"its config's {key} defaults to '{fields[key].default}', not '{name}'"
    return None


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _warn(message: str) -> None:
    """Record ``message`` and warn in one line (no source line: the plugin is not this module's code)."""
    PLUGIN_WARNINGS.append(message)
    warnings.warn_explicit(message, PluginWarning, "causal-cli", 0)
