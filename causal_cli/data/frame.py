"""A pandas DataFrame passed in Python (``causal_cli.api.run(df, graph=...)``): a table source like a CSV file.

The table options of ``data=csv`` apply unchanged (``rename``, ``derive``, ``query``, ``categorical``,
``missing``, ``weights``, ``cluster``), and only the columns the study uses are taken, in the frame's
column order, as the CSV source reads them; the frame itself is never modified.
"""

from __future__ import annotations

from causal_cli.data.tables import TableSource, check_unique_columns
from causal_cli.errors import DataError


class FrameSource(TableSource):
    kind = "DataFrame"
    filter_key = "data.query"

    def __init__(self, cfg, frame):
        super().__init__(cfg)
        self.frame = frame

    def where(self, base_dir):
        return "the DataFrame"

    def describe(self, where: str) -> str:
        return "a pandas DataFrame passed in Python"

    def read(self, columns, base_dir):
        import pandas as pd

        if not isinstance(self.frame, pd.DataFrame):
            raise DataError(f"data: expected a pandas DataFrame, got {type(self.frame).__name__}")
        header = [str(c) for c in self.frame.columns]
        check_unique_columns(header, "the DataFrame")
        frame = self.frame.copy()
        frame.columns = header
        used = header if columns is None else [c for c in header if c in set(columns)]
        return frame[used].reset_index(drop=True), header


def frame_dataset(cfg, graph, frame):
    """The analysed table from ``frame`` with the run's ``data`` options, validated as every source is."""
    from causal_cli.data.checks import validate

    dataset = FrameSource(cfg.data, frame).load(cfg, graph)
    return validate(dataset, graph, cfg.data)
