"""A CSV file: ``data=csv data.path=my.csv`` (only the columns the study uses are read)."""

from __future__ import annotations

from dataclasses import dataclass

from causal_cli.data.tables import FileDataConfig, FileSource, check_unique_columns, existing_file
from causal_cli.errors import ConfigError, DataError


@dataclass
class CSVDataConfig(FileDataConfig):
    source: str = "csv"
    sep: str = ","
    encoding: str = "utf-8"


class CSVSource(FileSource):
    config_class = CSVDataConfig
    kind = "CSV file"

    def read(self, columns, base_dir):
        import codecs

        import pandas as pd

        try:
            codecs.lookup(self.cfg.encoding)
        except LookupError as exc:
            raise ConfigError(
                f"data.encoding={self.cfg.encoding!r} is not a known text encoding; e.g. utf-8, latin-1, cp1252"
            ) from exc
        path = existing_file(self.cfg.path, base_dir)
        options = {"sep": self.cfg.sep, "encoding": self.cfg.encoding}
        try:
            header = [str(c) for c in pd.read_csv(path, nrows=0, **options).columns]
            raw = pd.read_csv(path, nrows=1, header=None, dtype=str, keep_default_na=False, **options)
            check_unique_columns(raw.iloc[0].tolist() if len(raw) else header, f"data.path={path}")
            usecols = None if columns is None else [c for c in header if c in set(columns)]
            frame = pd.read_csv(path, usecols=usecols, **options)
        except pd.errors.EmptyDataError as exc:
            raise DataError(f"data.path={path} is empty (no header, no rows)") from exc
        except (pd.errors.ParserError, UnicodeDecodeError, ValueError, OSError) as exc:
            reason = " ".join(str(exc).split())[:200]
            raise DataError(
                f"data.path={path} could not be read as CSV (sep={self.cfg.sep!r}): {reason}"
            ) from exc
        return frame, header
