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
