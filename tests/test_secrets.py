"""Secrets never reach a saved file, and data never reads beyond the named regular file."""

from __future__ import annotations

import os
import sqlite3
import sys
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

from causal_cli import cli, trust
from causal_cli.data.csv import CSVDataConfig, CSVSource
from causal_cli.data.sql import SQLDataConfig, SQLSource
from causal_cli.data.tables import check_unique_columns, existing_file
from causal_cli.errors import ConfigError, DataError

SECRET = "Hunter2-s3cret"


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://analyst:{SECRET}@db/shop",
        "postgresql://analyst:pa/ss@db/shop",
        "postgresql://analyst:pa ss@db/shop",
        "postgresql://analyst:p@ss@db/shop",
        "postgresql://analyst:p%40ss%2F@db/shop",
        "postgresql+psycopg://analyst:@db/shop",
        "postgresql://analyst@db/shop?password=x",
        "mysql://analyst@db/shop?sslmode=require&PWD=x",
        "postgresql://db/shop?api_key=x",
        "postgresql://db/shop?access_token=x",
        "postgresql://db/shop?passw%6Frd=x",
        f"snowflake://analyst@acct/db?secret={SECRET}",
    ],
)
def test_a_url_with_a_password_in_any_spelling_is_refused(url):
    assert trust.url_has_password(url)
    with pytest.raises(ConfigError, match="data.url holds a URL with a password") as err:
        trust.check_value("data.url", url)
    assert SECRET not in err.value.one_line()


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///logs.db",
        "duckdb:///w.duckdb",
        "postgresql+psycopg://analyst@db/shop",
        "postgresql://analyst@db:5432/shop?sslmode=require",
        "sqlite:////abs/path/with@sign/x.db",
        "not a url: a:b@c",
    ],
)
def test_urls_without_a_password_pass(url):
    assert not trust.url_has_password(url)
    trust.check_value("data.url", url)


@settings(max_examples=80, deadline=None)
@given(st.text(min_size=1, max_size=20), st.booleans())
def test_any_password_in_the_user_info_is_found(password, encoded):
    shown = quote(password, safe="") if encoded else password
    assert trust.url_has_password(f"postgresql://analyst:{shown}@db.example/shop")


@pytest.mark.parametrize(
    ("key", "refused"),
    [
        ("data.password", True),
        ("data.db_token", True),
        ("data.api_key", True),
        ("data.password_env", False),
        ("data.url_env", False),
        ("data.description", False),
    ],
)
def test_secret_like_keys_hold_no_value(key, refused):
    if refused:
        with pytest.raises(ConfigError, match="looks like a secret"):
            trust.check_value(key, "abc")
    else:
        trust.check_value(key, "CAUSAL_DB_PASSWORD")


def test_environment_interpolations_are_refused_before_anything_is_written(tmp_path):
    problem = cli._check_trust(["data=sql", "data.url=${oc.env:CAUSAL_TEST_URL}", "data.query='select 1'"])
    assert problem.startswith("config error: data.url uses ${oc.env:...}")
    mine = tmp_path / "mine" / "experiment" / "leak.yaml"
    mine.parent.mkdir(parents=True)
    mine.write_text("# @package _global_\nquestion: ${oc.env:HOME}\n")
    args = cli.user_config_first(["--config-dir", str(tmp_path / "mine"), "experiment=leak"])
    assert "question uses ${oc.env:...}" in cli._check_trust(args)


def test_a_password_in_an_experiment_file_is_refused_and_nothing_is_written(run_causal, tmp_path):
    mine = tmp_path / "mine" / "experiment" / "db.yaml"
    mine.parent.mkdir(parents=True)
    mine.write_text(
        "# @package _global_\ndefaults:\n  - override /data: sql\n"
        f"data:\n  url: 'postgresql://analyst:pa/{SECRET}@db/shop'\n  query: select 1\n"
    )
    proc, out = run_causal("run", "--config-dir", str(tmp_path / "mine"), "experiment=db")
    assert proc.returncode == 2
    assert proc.stderr.startswith("causal: config error: data.url holds a URL with a password")
    assert proc.stderr.count("\n") == 1 and SECRET not in proc.stderr + proc.stdout
    assert not out.exists() and not (tmp_path / "outputs").exists()


def test_a_finished_run_saves_no_environment_value(run_causal, tmp_path):
    """The secret sits in the environment of a complete run (report included): no saved file holds it."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=300)
    t = (rng.random(300) < 1 / (1 + np.exp(-x))).astype(int)
    pd.DataFrame({"x": x, "t": t, "y": 2 * t + x + rng.normal(size=300)}).to_csv(
        tmp_path / "obs.csv", index=False
    )
    proc, run_dir = run_causal(
        "run",
        "data=csv",
        "data.path=obs.csv",
        "graph=custom",
        "graph.treatment=t",
        "graph.outcome=y",
        "graph.confounders=[x]",
        "estimator=naive",
        "refuters=[]",
        "report.console=false",
        env={"CAUSAL_TEST_DB_PASSWORD": SECRET, "DB_PASSWORD": SECRET},
    )
    assert proc.returncode == 0, proc.stderr
    saved = [p for p in Path(run_dir).rglob("*") if p.is_file()]
    names = {p.name for p in saved}
    assert {"config.yaml", "results.json", "report.html", "hydra.yaml", "overrides.yaml"} <= names
    assert [p for p in saved if SECRET.encode() in p.read_bytes()] == []


def test_special_files_are_refused_in_one_line(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    link = tmp_path / "environ.csv"
    link.symlink_to("/proc/self/environ")
    cases = [
        ("/proc/self/environ", "is a system file"),
        (str(link), "is a system file"),
        ("/dev/null", "not a file"),
        (str(fifo), "not a file"),
        (str(tmp_path), "not a file"),
    ]
    for path, expected in cases:
        with pytest.raises(DataError, match=expected) as err:
            existing_file(path, None)
        assert "\n" not in err.value.one_line()
    regular = tmp_path / "ok.csv"
    regular.write_text("a\n1\n")
    assert existing_file(str(regular), None) == regular
    # the command line refuses them before Hydra writes anything
    for path, expected in [(str(link), "is a system file"), (str(fifo), "is not a regular file")]:
        assert expected in cli._check_trust(["data=csv", f"data.path={path}"])
    assert cli._check_trust(["data=csv", f"data.path={regular}"]) is None


def test_a_sqlite_url_naming_a_special_file_is_refused(tmp_path):
    link = tmp_path / "db.sqlite"
    link.symlink_to("/proc/self/environ")
    source = SQLSource(OmegaConf.structured(SQLDataConfig(url=f"sqlite:///{link}", query="select 1")))
    with pytest.raises(DataError, match="is a system file"):
        source.read(None, str(tmp_path))


def test_a_repeated_column_name_is_refused_for_csv_parquet_and_sql(tmp_path):
    (tmp_path / "dup.csv").write_text("t,y,x,x\n1,2,3,4\n0,1,2,3\n")
    csv = CSVSource(OmegaConf.structured(CSVDataConfig(path=str(tmp_path / "dup.csv"))))
    with pytest.raises(DataError, match="column 'x' appears more than once in the header of data.path="):
        csv.read(None, None)
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    from causal_cli.data.parquet import ParquetDataConfig, ParquetSource

    pq.write_table(pa.table([pa.array([1, 2]), pa.array([3, 4])], names=["x", "x"]), tmp_path / "dup.parquet")
    parquet = ParquetSource(OmegaConf.structured(ParquetDataConfig(path=str(tmp_path / "dup.parquet"))))
    with pytest.raises(DataError, match="column 'x' appears more than once"):
        parquet.read(None, None)
    with sqlite3.connect(tmp_path / "d.sqlite") as conn:
        conn.execute("create table t (a int, b int)")
        conn.execute("insert into t values (1, 2)")
    sql = SQLSource(
        OmegaConf.structured(SQLDataConfig(url="sqlite:///d.sqlite", query="select a, b as a from t"))
    )
    with pytest.raises(
        DataError, match="column .a. appears more than once in the header of the result of data.query"
    ):
        sql.read(None, str(tmp_path))
    check_unique_columns(["x", "x.1", "X"], "here")  # distinct names pass


def test_sql_without_sqlalchemy_or_its_driver_gives_an_install_hint(monkeypatch):
    source = SQLSource(
        OmegaConf.structured(SQLDataConfig(url="postgresql://analyst@127.0.0.1:1/db", query="select 1"))
    )
    if "psycopg" not in sys.modules and not _importable("psycopg"):
        with pytest.raises(
            ConfigError, match=r"the postgresql driver is not installed \(psycopg\); install it"
        ):
            source.read(None, None)
    monkeypatch.setitem(sys.modules, "sqlalchemy", None)
    with pytest.raises(ConfigError, match=r"data=sql needs SQLAlchemy: pip install 'causal-cli\[sql\]'"):
        source.read(None, None)


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None
