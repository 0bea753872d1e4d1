"""The ``ab`` config group's schema: metrics, pre-period covariates, planned split, alpha, correction.

The dataclasses live in the config layer (:mod:`causal_cli.schema`), which validates them; this module
re-exports them for the A/B code.
"""

from __future__ import annotations

from causal_cli.schema import ABConfig, MetricConfig

__all__ = ["ABConfig", "MetricConfig"]
