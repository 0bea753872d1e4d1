"""The memory-lean data path of 10M-row studies, checked on small real data: the Parquet reader gives what
pyarrow's ``to_pandas`` gives, the data hash is the same block by block, and the estimation data share the
frame's float columns instead of copying them."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest

from causal_cli import pipeline, provenance
from causal_cli.graph import CausalGraph
from causal_cli.identify import identify
from causal_cli.validate import validate

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

N = 2_500


def mixed_frame(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "f64": rng.normal(size=N),
            "f32": rng.normal(size=N).astype("float32"),
            "i64": rng.integers(0, 9, N),
            "i8": rng.integers(0, 9, N).astype("int8"),
            "u16": rng.integers(0, 9, N).astype("uint16"),
            "flag": rng.random(N) < 0.5,
            "text": rng.choice(["yes", "no"], N),
            "cat": pd.Categorical(rng.choice(["a", "b"], N)),
            "nullable": pd.array(rng.integers(0, 3, N), dtype="Int64"),
            "when": pd.date_range("2020-01-01", periods=N, freq="h"),
            "float_nan": np.where(rng.random(N) < 0.1, np.nan, 1.0),
        }
    )


def arrow_table(seed: int = 0):
    """Columns pandas did not write: nulls only in the last row group, booleans with nulls, dictionary text."""
    rng = np.random.default_rng(seed)
    late_null = [None if i == N - 1 else i for i in range(N)]
    return pa.table(
        {
            "f64": rng.normal(size=N),
            "int_late_null": pa.array(late_null, pa.int64()),
            "bool_null": pa.array([None if i % 5 == 0 else bool(i % 2) for i in range(N)]),
            "dict_text": pa.array(rng.choice(["x", "y"], N)).dictionary_encode(),
            "i32": pa.array(rng.integers(0, 5, N).astype("int32")),
            "half": pa.array(rng.normal(size=N).astype("float16")),
        }
    )


@pytest.mark.parametrize("writer", ["pandas", "arrow"])
def test_parquet_columns_are_what_to_pandas_gives(tmp_path, writer):
    from causal_cli.data.parquet import read_columns

    path = tmp_path / "mixed.parquet"
    if writer == "pandas":
        mixed_frame().to_parquet(path, row_group_size=700)
    else:
        pq.write_table(arrow_table(), path, row_group_size=600)
    names = [c for c in pq.read_schema(path).names if not c.startswith("__")]
    expected = pq.read_table(path, columns=names).to_pandas().reset_index(drop=True)
    got = read_columns(pq.ParquetFile(path), names)
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    assert pq.ParquetFile(path).num_row_groups > 1, (
        "several row groups: the columns are filled group by group"
    )


def test_data_hash_is_the_same_block_by_block(monkeypatch):
    """Each row's hash depends on that row only: hashing in blocks gives the one-pass digest."""

    def one_pass(frame, columns):
        digest = hashlib.sha256()
        digest.update(json.dumps([[str(c), str(frame[c].dtype)] for c in columns]).encode())
        digest.update(pd.util.hash_pandas_object(frame[columns], index=False).to_numpy().tobytes())
        return f"sha256:{digest.hexdigest()}"

    frame = mixed_frame().iloc[:500]
    columns = list(frame.columns)
    for block in (37, 499, 500, 10_000):
        monkeypatch.setattr(provenance, "HASH_BLOCK_ROWS", block)
        assert provenance.frame_hash(frame, columns) == one_pass(frame, columns)
        assert provenance.frame_hash(frame, ["text", "cat"]) == one_pass(frame, ["text", "cat"])
    assert provenance.frame_hash(frame.iloc[:0], columns) == one_pass(frame.iloc[:0], columns)


def test_estimation_data_shares_the_frames_float_columns(compose_cfg):
    """The adjustment set is copied once into the estimation data; the frame's float64 columns become views
    of it (same values), other columns keep their own arrays and types."""
    cfg = validate(compose_cfg(["dgp.n=3000", "refuters=[]"]))
    graph = CausalGraph.from_config(cfg.graph)
    frame = pipeline._dataset(cfg, graph, None, None).frame
    frame["account_age"] = frame["account_age"].round().astype("int64")  # one integer covariate
    before = {c: frame[c].to_numpy().copy() for c in frame.columns}
    dtypes = frame.dtypes.to_dict()
    identification = identify(graph, "backdoor", cfg.identification.backdoor_method)
    data = pipeline.build_estimation_data(frame, graph, identification)
    assert frame.dtypes.to_dict() == dtypes
    for name in frame.columns:
        assert np.array_equal(frame[name].to_numpy(), before[name])
    j = 1 + list(data.covariates).index("activity")
    assert np.shares_memory(frame["activity"].to_numpy(), data.columns[j])
    assert not np.shares_memory(frame["account_age"].to_numpy(), data.columns)
    assert np.array_equal(data.X[:, list(data.covariates).index("account_age")], before["account_age"])
