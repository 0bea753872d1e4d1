"""A Parquet file: ``data=parquet data.path=my.parquet`` (only the used columns are read).

A plain numeric or boolean column without missing values goes from its Arrow chunks, one row group at a
time, into one NumPy array (no pandas conversion, no whole-column Arrow copy), so loading peaks near the
size of the columns themselves. Any other column (text, categories, dates, missing values, pandas
extension types) takes pyarrow's own ``to_pandas`` conversion, exactly as a whole-table read would.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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
            parquet = pq.ParquetFile(path)
            header = [str(c) for c in parquet.schema_arrow.names]
            check_unique_columns(header, f"data.path={path}")
            wanted = header if columns is None else [c for c in header if c in set(columns)]
            frame = read_columns(parquet, wanted)
        except DataError:
            raise
        except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a bad file
            reason = " ".join(str(exc).split())[:200]
            raise DataError(f"data.path={path} could not be read as Parquet: {reason}") from exc
        return frame, header


def read_columns(parquet, names: list[str]):
    """The columns ``names`` of an open ``pyarrow.parquet.ParquetFile`` as the DataFrame ``to_pandas`` gives.

    Plain numbers and booleans are decoded row group by row group straight into one preallocated NumPy
    array per column (measured at 10M rows: ~1.2x the columns' size at the peak, against ~2.9x through
    ``read_table().to_pandas()``); a column that is not plain, or has missing values, is read whole and
    converted by pyarrow, exactly as a whole-table read converts it."""
    import pandas as pd
    import pyarrow as pa

    n = parquet.metadata.num_rows
    numpy_types = _pandas_numpy_types(parquet.schema_arrow)
    fast = {}
    for name in names:
        dtype = plain_dtype(parquet.schema_arrow.field(name).type)
        if dtype is not None and numpy_types.get(name) in (None, dtype.name):
            fast[name] = np.empty(n, dtype=dtype)
    start = 0
    for group in range(parquet.num_row_groups if fast else 0):
        table = parquet.read_row_group(group, columns=list(fast))
        for name in [c for c in fast if table.column(c).null_count]:
            del fast[name]  # missing values: pyarrow's conversion decides the type (float NaN, object ...)
        for name, out in fast.items():
            at = start
            for chunk in table.column(name).chunks:
                out[at : at + len(chunk)] = chunk.to_numpy(zero_copy_only=False)
                at += len(chunk)
        start += table.num_rows
        del table
    pa.default_memory_pool().release_unused()  # Arrow's allocator keeps freed pages otherwise
    columns = {name: fast[name] if name in fast else _converted(parquet, name) for name in names}
    return pd.DataFrame(columns, index=pd.RangeIndex(n), copy=False)


def plain_dtype(arrow_type) -> np.dtype | None:
    """The NumPy dtype of an integer, floating-point or boolean Arrow type; None for any other."""
    import pyarrow as pa

    if pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type) or pa.types.is_boolean(arrow_type):
        return np.dtype(arrow_type.to_pandas_dtype())
    return None


def _converted(parquet, name: str):
    """One column through pyarrow's pandas conversion (text, categories, dates, missing values ...)."""
    table = parquet.read(columns=[name])
    return table.to_pandas(self_destruct=True, split_blocks=True).iloc[:, 0].array


def _pandas_numpy_types(schema) -> dict[str, str]:
    """Column -> the dtype pandas wrote it from (``Int64``, ``float64`` ...), when pandas wrote the file."""
    metadata = schema.pandas_metadata or {}
    return {
        str(c.get("field_name") or c.get("name")): str(c.get("numpy_type"))
        for c in metadata.get("columns", [])
        if c.get("numpy_type")
    }
