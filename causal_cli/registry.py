"""The one place where methods are registered: ``name -> "module:Class"``.

Adding an estimator, refuter, DGP or data source means one module (with its ``config_class``),
one config file in ``conf/<group>/``, and one line here.
"""

from __future__ import annotations

import importlib
from typing import Any

ESTIMATORS: dict[str, str] = {
    "naive": "causal_cli.estimators.naive:NaiveEstimator",
    "psm": "causal_cli.estimators.psm:PSMEstimator",
}

REFUTERS: dict[str, str] = {
    "placebo": "causal_cli.refuters.placebo:PlaceboRefuter",
    "random_common_cause": "causal_cli.refuters.random_common_cause:RandomCommonCauseRefuter",
}

DGPS: dict[str, str] = {
    "product_growth": "causal_cli.data.synthetic:ProductGrowthDGP",
}

DATA_SOURCES: dict[str, str] = {
    "synthetic": "causal_cli.data.synthetic:SyntheticSource",
}

ALL: dict[str, dict[str, str]] = {
    "estimator": ESTIMATORS,
    "refuter": REFUTERS,
    "dgp": DGPS,
    "data": DATA_SOURCES,
}


def load(group: str, name: str) -> Any:
    """Import and return the class registered as ``name`` in ``group``."""
    from causal_cli.errors import ConfigError

    entries = ALL[group]
    if name not in entries:
        allowed = ", ".join(sorted(entries))
        raise ConfigError(f"unknown {group} '{name}'; allowed: {allowed}")
    module_name, _, class_name = entries[name].partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def config_class(group: str, name: str) -> type:
    return load(group, name).config_class
