"""Example data sets of the ``causaldata`` package (no download): ``data=causaldata data.name=nsw_mixtape``.

``data.append`` stacks more sets of the package under the first (their used columns must match),
which is how the Lalonde study puts the NSW treated men and the CPS controls in one table.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from causal_cli.data.tables import TableDataConfig, TableSource
from causal_cli.errors import ConfigError


@dataclass
class CausaldataDataConfig(TableDataConfig):
    source: str = "causaldata"
    #: a data set of the causaldata package, e.g. nsw_mixtape, cps_mixtape, nhefs_complete
    name: str | None = None
    #: more data sets of the package stacked under ``name`` (rows appended; used columns must match)
    append: list[str] = field(default_factory=list)
    #: row filter over (renamed and derived) columns, e.g. "treat == 1 or data_id == 'CPS1'"
    query: str | None = None


def available_sets() -> list[str]:
    import pkgutil

    try:
        import causaldata
    except ImportError as exc:
        raise ConfigError("data=causaldata needs the causaldata package: pip install causaldata") from exc
    return sorted(m.name for m in pkgutil.iter_modules(causaldata.__path__) if m.ispkg)


class CausaldataSource(TableSource):
    config_class = CausaldataDataConfig
    kind = "causaldata set"

    def names(self) -> list[str]:
        return [str(self.cfg.name), *(str(n) for n in self.cfg.get("append") or [])]

    def where(self, base_dir):
        return f"data.name={'+'.join(self.names())}"

    def read(self, columns, base_dir):
        import importlib

        import pandas as pd

        known = available_sets()
        if not self.cfg.get("name"):
            raise ConfigError(f"data.name is not set; choose a causaldata set: {', '.join(known)}")
        frames, header = [], None
        for key, name in zip(["data.name", *["data.append"] * len(self.cfg.append)], self.names()):
            if name not in known:
                close = difflib.get_close_matches(name, known, n=3)
                hint = f"close matches: {', '.join(close)}" if close else f"available: {', '.join(known)}"
                raise ConfigError(f"{key}='{name}' is not a causaldata set; {hint}")
            frame = importlib.import_module(f"causaldata.{name}").load_pandas().data
            names = [str(c) for c in frame.columns]
            header = names if header is None else [c for c in header if c in names]
            frames.append(
                frame if columns is None else frame[[c for c in frame.columns if c in set(columns)]]
            )
        keep = [c for c in frames[0].columns if c in header]
        frame = pd.concat([f[[c for c in keep if c in f.columns]] for f in frames], ignore_index=True)
        return frame, header
