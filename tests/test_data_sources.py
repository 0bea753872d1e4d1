"""CSV, Parquet, SQL (SQLite, DuckDB, optionally a live PostgreSQL) and causaldata sources, through the real pipeline."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from causal_cli import pipeline
from causal_cli.data import load_dataset
from causal_cli.graph import CausalGraph
from causal_cli.validate import validate
from tests.conftest import read_results

N = 400
GRAPH = [
    "graph=custom",
    "graph.treatment=treated",
    "graph.outcome=spend",
    "graph.confounders=[age,age2,region]",
]
#: the same options for every source: rename, a derived column, a categorical confounder
OPTIONS = ["+data.rename.visits=activity", "+data.derive.age2='age ** 2'", "data.categorical=[region]"]
ROW_FILTER = "age >= 20"
SECRET = "pw-7f3a9c-not-in-any-file"


def observational_frame(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 70, N)
    region = rng.choice(["north", "south", "west"], N)
    visits = rng.poisson(3, N)
    logit = 0.04 * (age - 40) + 0.8 * (region == "south") - 0.3
    treated = (rng.random(N) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    spend = 5 * treated + 0.3 * age + 4 * (region == "west") + rng.normal(0, 3, N)
    return pd.DataFrame({"age": age, "region": region, "visits": visits, "treated": treated, "spend": spend})


def _sqlite(path: Path, frame: pd.DataFrame) -> None:
    from sqlalchemy import create_engine

    engine = create_engine(f"sqlite:///{path}")
    frame.to_sql("obs", engine, index=False)
    engine.dispose()


def _duckdb(path: Path, frame: pd.DataFrame) -> None:
    import duckdb

    con = duckdb.connect(str(path))
    con.register("frame", frame)
    con.execute("create table obs as select * from frame")
    con.close()


@pytest.fixture
def source_files(tmp_path):
    frame = observational_frame()
    frame.to_csv(tmp_path / "obs.csv", index=False)
    frame.to_parquet(tmp_path / "obs.parquet", index=False)
    _sqlite(tmp_path / "obs.sqlite", frame)
    _duckdb(tmp_path / "obs.duckdb", frame)
    return tmp_path


def _run(compose_cfg, overrides, base_dir):
    cfg = validate(compose_cfg([*GRAPH, *OPTIONS, "estimator=psm", "refuters=[]", *overrides]))
    return pipeline.run(cfg, base_dir=str(base_dir))


def test_csv_parquet_sqlite_duckdb_give_identical_estimates(compose_cfg, source_files):
    sql = f"select * from obs where {ROW_FILTER}"
    sources = {
        "csv": ["data=csv", "data.path=obs.csv", f"data.query='{ROW_FILTER}'"],
        "parquet": ["data=parquet", "data.path=obs.parquet", f"data.query='{ROW_FILTER}'"],
        "sqlite": ["data=sql", "data.url=sqlite:///obs.sqlite", f"data.query='{sql}'"],
        "duckdb": ["data=sql", "data.url=duckdb:///obs.duckdb", f"data.query='{sql}'"],
    }
    results = {name: _run(compose_cfg, overrides, source_files) for name, overrides in sources.items()}
    expected_rows = int((observational_frame()["age"] >= 20).sum())
    first = results["csv"]
    assert first.n_rows == expected_rows
    assert first.adjustment_set == ["age", "age2", "region"]
    assert "one-hot encoded 'region' -> region_south, region_west (reference level: 'north')" in first.notes
    for name, result in results.items():
        assert (result.n_rows, result.naive_estimate, result.estimate, result.std_error) == (
            first.n_rows,
            first.naive_estimate,
            first.estimate,
            first.std_error,
        ), name
    assert abs(first.estimate - 5) < 3 * first.std_error


def test_only_the_used_columns_are_read(compose_cfg, source_files):
    for overrides in (["data=csv", "data.path=obs.csv"], ["data=parquet", "data.path=obs.parquet"]):
        cfg = validate(compose_cfg([*GRAPH, *OPTIONS, *overrides]))
        dataset = load_dataset(cfg, CausalGraph.from_config(cfg.graph), base_dir=str(source_files))
        # visits (renamed to activity) is not in the graph, so it is never read
        assert list(dataset.frame.columns) == [
            "age",
            "region",
            "treated",
            "spend",
            "age2",
            "region_south",
            "region_west",
        ]


def test_relative_paths_resolve_against_the_folder_causal_runs_from(run_causal, source_files):
    sub = source_files / "project"
    sub.mkdir()
    shutil.copy(source_files / "obs.duckdb", sub / "obs.duckdb")
    proc, run_dir = run_causal(
        "run",
        "data=sql",
        "data.url=duckdb:///obs.duckdb",
        "data.query='select * from obs'",
        *GRAPH,
        *OPTIONS,
        "estimator=naive",
        "refuters=[]",
        "report.console=false",
        "report.enabled=false",
        cwd=sub,
    )
    assert proc.returncode == 0, proc.stderr
    result = read_results(run_dir)
    assert result["n_rows"] == N and result["status"] == "ok"


def _files_containing(folder: Path, needle: str) -> list[str]:
    return [str(p) for p in folder.rglob("*") if p.is_file() and needle.encode() in p.read_bytes()]


def test_sql_password_from_env_is_masked_in_errors_and_never_saved(run_causal, source_files):
    # SQLite takes no password: the driver's error must not leak the one we inject from the environment
    proc, run_dir = run_causal(
        "run",
        "data=sql",
        "data.url=sqlite:///obs.sqlite",
        "data.password_env=CAUSAL_TEST_DB_PASSWORD",
        "data.query='select * from obs'",
        *GRAPH,
        "estimator=naive",
        "refuters=[]",
        env={"CAUSAL_TEST_DB_PASSWORD": SECRET},
    )
    assert proc.returncode == 1
    assert (
        proc.stderr.startswith("causal: data error: data.url=sqlite:///")
        and "the query failed" in proc.stderr
    )
    assert SECRET not in proc.stdout + proc.stderr
    assert read_results(run_dir)["status"] == "failed"
    assert _files_containing(run_dir, SECRET) == []


def test_unset_password_env_is_a_config_error(run_causal, source_files):
    proc, _ = run_causal(
        "run",
        "data=sql",
        "data.url=duckdb:///obs.duckdb",
        "data.password_env=CAUSAL_TEST_UNSET_VAR",
        "data.query='select * from obs'",
        *GRAPH,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        "causal: config error: data.password_env=CAUSAL_TEST_UNSET_VAR: the environment variable CAUSAL_TEST_UNSET_VAR "
        "is not set"
    )


# --- a live PostgreSQL with password authentication (skipped where the server binaries are missing) ---


def _postgres_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    return str(candidates[-1]) if candidates else None


@pytest.fixture
def postgres():
    """A throw-away PostgreSQL server (SCRAM password auth) on a free local port: yields (port, password)."""
    pytest.importorskip("pg8000")
    initdb, pg_ctl = _postgres_bin("initdb"), _postgres_bin("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    prefix: list[str] = []
    folder = Path(tempfile.mkdtemp(prefix="causal-pg-"))
    if os.geteuid() == 0:  # the server refuses to run as root
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run the server")
        if not shutil.which("runuser"):
            pytest.skip("running as root without runuser")
        os.chown(folder, user.pw_uid, user.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    (folder / "pw").write_text(SECRET)
    if prefix:
        os.chown(folder / "pw", pwd.getpwnam("postgres").pw_uid, -1)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = folder / "data"
    subprocess.run(
        [
            *prefix,
            initdb,
            "-N",
            "-D",
            str(data),
            "-U",
            "analyst",
            f"--pwfile={folder / 'pw'}",
            "-A",
            "scram-sha-256",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    (folder / "pw").unlink()
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1"
    subprocess.run(
        [*prefix, pg_ctl, "-D", str(data), "-o", options, "-l", str(folder / "log"), "-w", "start"],
        check=True,
        capture_output=True,
        timeout=60,
    )
    try:
        yield port
    finally:
        subprocess.run(
            [*prefix, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True, timeout=60
        )
        shutil.rmtree(folder, ignore_errors=True)


def test_live_postgres_password_comes_from_env_and_is_never_written(run_causal, tmp_path, postgres):
    from sqlalchemy import create_engine

    engine = create_engine(f"postgresql+pg8000://analyst:{SECRET}@127.0.0.1:{postgres}/postgres")
    observational_frame().to_sql("obs", engine, index=False)
    engine.dispose()
    url = f"data.url=postgresql+pg8000://analyst@127.0.0.1:{postgres}/postgres"
    common = [
        "data=sql",
        url,
        "data.password_env=CAUSAL_TEST_DB_PASSWORD",
        "data.query='select * from obs'",
        *GRAPH,
        *OPTIONS,
        "estimator=naive",
        "refuters=[]",
        "report.enabled=false",
    ]
    proc, run_dir = run_causal("run", *common, env={"CAUSAL_TEST_DB_PASSWORD": SECRET})
    assert proc.returncode == 0, proc.stderr
    assert read_results(run_dir)["n_rows"] == N
    assert SECRET not in proc.stdout + proc.stderr
    assert _files_containing(run_dir, SECRET) == []
    wrong = "wrong-" + SECRET[::-1]
    proc, run_dir = run_causal("run", *common, env={"CAUSAL_TEST_DB_PASSWORD": wrong}, out=tmp_path / "wrong")
    assert proc.returncode == 1
    assert "password authentication failed" in proc.stderr and wrong not in proc.stderr
    assert _files_containing(run_dir, wrong) == []


# --- the README's "Your own data" walk-through ---


def test_readme_own_csv_with_a_yes_no_treatment_and_a_categorical(run_causal, tmp_path):
    frame = observational_frame().assign(treated=lambda f: np.where(f.treated == 1, "yes", "no"))
    frame.to_csv(tmp_path / "my.csv", index=False)
    proc, run_dir = run_causal(
        "run",
        "data=csv",
        "data.path=my.csv",
        "graph=custom",
        "graph.treatment=treated",
        "graph.outcome=spend",
        "graph.confounders=[age,visits,region]",
        "data.categorical=[region]",
        "estimator=psm",
        "refuters=[]",
        "report.enabled=false",
    )
    assert proc.returncode == 0, proc.stderr
    result = read_results(run_dir)
    assert "treatment 'treated': 'yes' -> 1, 'no' -> 0" in result["notes"]
    assert "note: treatment 'treated': 'yes' -> 1, 'no' -> 0" in proc.stdout
    assert result["n_rows"] == N and result["ci_low"] < 5 < result["ci_high"]


def test_experiment_in_the_users_own_config_dir(run_causal, tmp_path):
    observational_frame().to_csv(tmp_path / "my.csv", index=False)
    conf = tmp_path / "my_conf"
    (conf / "experiment").mkdir(parents=True)
    (conf / "graph").mkdir()
    (conf / "graph" / "shop.yaml").write_text(
        textwrap.dedent("""\
        name: shop
        treatment: treated
        outcome: spend
        confounders: [age, visits, region]
        outcome_units: "$"
    """)
    )
    (conf / "experiment" / "my_study.yaml").write_text(
        textwrap.dedent("""\
        # @package _global_
        defaults:
          - override /graph: shop
          - override /data: csv
          - override /estimator: psm
          - override /refuters: []
        question: "Did the treatment raise spend?"
        dgp: null
        data:
          path: my.csv
          categorical: [region]
        estimator:
          target_units: att
    """)
    )
    proc, run_dir = run_causal(
        "run", "--config-dir", "my_conf", "experiment=my_study", "report.enabled=false"
    )
    assert proc.returncode == 0, proc.stderr
    result = read_results(run_dir)
    assert (result["graph"]["name"], result["target_units"], result["n_rows"]) == ("shop", "att", N)


def _statements(engine_events):
    """Every SQL statement SQLAlchemy sends, with the columns its result carries."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    sent = []

    def record(conn, cursor, statement, parameters, context, executemany):
        sent.append((statement, [d[0] for d in cursor.description or ()]))

    event.listen(Engine, "after_cursor_execute", record)
    engine_events.append(lambda: event.remove(Engine, "after_cursor_execute", record))
    return sent


@pytest.fixture
def sql_statements():
    undo = []
    yield _statements(undo)
    for fn in undo:
        fn()


@pytest.mark.parametrize("url", ["sqlite:///wide.sqlite", "duckdb:///wide.duckdb"])
def test_sql_reads_only_the_graph_columns_of_a_wide_query(compose_cfg, tmp_path, url, sql_statements):
    frame = observational_frame()
    wide = frame.assign(notes=["x" * 200] * N, user_id=np.arange(N))
    (_sqlite if url.startswith("sqlite") else _duckdb)(tmp_path / url.split("///")[1], wide)
    cfg = validate(
        compose_cfg(
            [
                *GRAPH[:3],
                "graph.confounders=[age,region]",
                "data.categorical=[region]",
                "data=sql",
                f"data.url={url}",
                "data.query='select * from obs;'",
            ]
        )
    )
    graph = CausalGraph.from_config(cfg.graph)
    dataset = load_dataset(cfg, graph, base_dir=str(tmp_path))
    # the statement whose rows are fetched names only the graph's columns: notes, user_id and visits stay in
    # the database (the first statement only reads the header: no row is fetched from it)
    fetched = [columns for statement, columns in sql_statements if "causal_source" in statement]
    assert fetched == [["age", "region", "treated", "spend"]]
    assert list(dataset.frame.columns[:4]) == ["age", "region", "treated", "spend"]
    np.testing.assert_array_equal(dataset.frame["spend"].to_numpy(), frame["spend"].to_numpy())


def test_sql_query_that_cannot_be_a_subquery_is_read_whole(tmp_path, sql_statements):
    from causal_cli.data.sql import SQLDataConfig, SQLSource

    # a PRAGMA is no subquery: the projection fails, and the query is read as given, then cut
    _sqlite(tmp_path / "obs.sqlite", observational_frame())
    sql_statements.clear()  # writing the table sent its own
    from omegaconf import OmegaConf

    cfg = OmegaConf.structured(SQLDataConfig(url="sqlite:///obs.sqlite", query="pragma table_info(obs)"))
    source = SQLSource(cfg)
    frame, header = source.read(["name", "pk"], str(tmp_path))
    assert header == ["cid", "name", "type", "notnull", "dflt_value", "pk"]
    assert list(frame.columns) == ["name", "pk"]
    assert list(frame["name"]) == list(observational_frame().columns)
    assert [c for _, c in sql_statements if c] == [header, header]  # the header, then the rows


def bytes_read() -> int:
    """Bytes this process has read from files so far (``rchar`` of /proc/self/io)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar line in /proc/self/io")


@pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="needs Linux /proc/self/io")
def test_parquet_reads_only_the_graph_columns(compose_cfg, tmp_path):
    """What was read from the file: its metadata and the graph's columns, never the wide unused ones."""
    import pyarrow.parquet as pq

    rng = np.random.default_rng(5)
    notes = [rng.bytes(1000).hex() for _ in range(N)]  # incompressible: ~800 kB the study does not use
    frame = observational_frame().assign(notes=notes, user_id=np.arange(N))
    frame.to_parquet(tmp_path / "wide.parquet", index=False)
    meta = pq.ParquetFile(tmp_path / "wide.parquet").metadata
    chunks = [meta.row_group(0).column(j) for j in range(meta.num_columns)]
    unused = sum(
        c.total_compressed_size for c in chunks if c.path_in_schema in ("notes", "user_id", "region")
    )
    used = sum(c.total_compressed_size for c in chunks if c.path_in_schema in ("age", "treated", "spend"))
    assert unused > 100 * used, "the unused columns must dominate the file for the check to mean anything"
    cfg = validate(
        compose_cfg([*GRAPH[:3], "graph.confounders=[age]", "data=parquet", "data.path=wide.parquet"])
    )
    graph = CausalGraph.from_config(cfg.graph)
    load_dataset(cfg, graph, base_dir=str(tmp_path))  # imports and first-use reads out of the way
    before = bytes_read()
    dataset = load_dataset(cfg, graph, base_dir=str(tmp_path))
    read = bytes_read() - before
    # the graph's columns, the footer and pyarrow's speculative 64 kB footer read; never the unused columns
    assert used <= read < used + meta.serialized_size + 80_000 < unused
    assert list(dataset.frame.columns) == ["age", "treated", "spend"]
