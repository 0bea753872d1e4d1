"""Checks of options against the data they meet: an option that would silently give a wrong number.

Range checks that need no data live in the config dataclasses (:func:`causal_cli.schema.check_bounds`);
these run once the estimation data are built, before any fit, and fail in one line naming the key.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from causal_cli.errors import ConfigError
from causal_cli.schema import MIN_GROUP_ROWS


def group_sizes(t: np.ndarray) -> tuple[int, int]:
    treated = int(np.count_nonzero(np.asarray(t) > 0.5))
    return treated, int(np.asarray(t).shape[0]) - treated


def check_neighbours(estimator_cfg: Any, t: np.ndarray, path: str = "estimator") -> None:
    """``k`` matches per unit need ``k`` units in the group matched from.

    With ``k`` at least the size of that group every unit matches all of it and the matching estimate
    becomes the naive difference in means (``estimator.k=2000`` on 300 rows): refused, not reported.
    """
    k = estimator_cfg.get("k") if hasattr(estimator_cfg, "get") else getattr(estimator_cfg, "k", None)
    if k is None or isinstance(k, bool):
        return
    treated, control = group_sizes(t)
    target = str(
        getattr(estimator_cfg.get("target_units"), "value", estimator_cfg.get("target_units")) or "ate"
    )
    pools = {"att": {"control": control}, "atc": {"treated": treated}}.get(
        target, {"control": control, "treated": treated}
    )
    group, size = min(pools.items(), key=lambda item: item[1])
    if int(k) >= size:
        raise ConfigError(
            f"{path}.k={k} needs more than {size:,} {group} rows to match from (this data has {size:,}): every "
            f"unit would match the whole group and the estimate would be the naive one; allowed here: at most "
            f"{max(size - 1, 1):,}"
        )


def check_subset_fraction(refuters: dict, t: np.ndarray) -> None:
    """``data_subset`` re-estimates on ``subset_fraction`` of the rows: it must keep enough of both groups."""
    node = (refuters or {}).get("data_subset")
    if not node:
        return
    fraction = float(node.get("subset_fraction", 0.8))
    treated, control = group_sizes(t)
    smaller = min(treated, control)
    if fraction * smaller < MIN_GROUP_ROWS:
        needed = MIN_GROUP_ROWS / smaller if smaller else float("inf")
        allowed = (
            f"a fraction of at least {needed:.3g} here"
            if needed < 1
            else "none: too few rows for this refuter"
        )
        raise ConfigError(
            f"refuters.data_subset.subset_fraction={fraction:g} keeps about {fraction * treated:.0f} treated and "
            f"{fraction * control:.0f} control rows, fewer than {MIN_GROUP_ROWS} of each, so its verdict would "
            f"mean nothing; allowed: {allowed}"
        )


def check_against_data(cfg: Any, t: np.ndarray) -> None:
    """Every data-dependent check, for the main estimator and the refuters."""
    check_neighbours(cfg.estimator, t)
    check_subset_fraction(cfg.get("refuters") or {}, t)
