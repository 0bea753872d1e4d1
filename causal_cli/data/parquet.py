"""A Parquet file: ``data=parquet data.path=my.parquet`` (only the used columns are read)."""

from __future__ import annotations

from dataclasses import dataclass

from causal_cli.data.tables import FileDataConfig, FileSource, check_unique_columns, existing_file
from causal_cli.errors import ConfigError, DataError


@dataclass
class ParquetDataConfig(FileDataConfig):
    source: str = "parquet"


class ParquetSource(FileSource):
    config_class = ParquetDataConfig
    kind = "Parquet file"

    def read(self, columns, base_dir):
        path = existing_file(self.cfg.path, base_dir)
        try:
            import pyarrow.parquet as pq
        except ImportError as exc:
            raise ConfigError("data=parquet needs pyarrow: pip install 'causal-cli[parquet]'") from exc
        try:
            header = [str(c) for c in pq.read_schema(path).names]
            check_unique_columns(header, f"data.path={path}")
            wanted = None if columns is None else [c for c in header if c in set(columns)]
            # self_destruct frees each Arrow column once converted: peak memory ~ one copy, not two
            frame = pq.read_table(path, columns=wanted).to_pandas(self_destruct=True, split_blocks=True)
        except DataError:
            raise
        except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a bad file
            reason = " ".join(str(exc).split())[:200]
            raise DataError(f"data.path={path} could not be read as Parquet: {reason}") from exc
        return frame, header
