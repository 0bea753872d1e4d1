"""A SQL query through SQLAlchemy: ``data=sql data.url=sqlite:///logs.db data.query="select ..."``.

The password never lives in the config (which is saved into the run folder): ``data.url`` must
not contain one, and ``data.password_env`` names the environment variable that holds it (or
``data.url_env`` names one holding the whole URL). Error messages have the secret masked.
File databases (SQLite, DuckDB) resolve relative paths against the folder ``causal`` ran from
and must already exist (connecting would otherwise create an empty one).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from causal_cli.data.tables import (
    TableDataConfig,
    TableSource,
    check_unique_columns,
    regular_file,
    resolve_path,
)
from causal_cli.errors import ConfigError, DataError
from causal_cli.schema import check

FILE_DIALECTS = ("sqlite", "duckdb")


@dataclass
class SQLDataConfig(TableDataConfig):
    source: str = "sql"
    #: SQLAlchemy URL without a password: postgresql+psycopg://analyst@db/shop, sqlite:///logs.db, duckdb:///w.duckdb
    url: str | None = None
    #: or the name of an environment variable holding the whole URL (used when url is null)
    url_env: str | None = None
    #: the name of an environment variable holding the password (never the password itself)
    password_env: str | None = None
    #: the SELECT statement; its result columns are the table (filter rows in its WHERE clause)
    query: str | None = None
    chunksize: int = 100_000

    def __post_init__(self):
        super().__post_init__()
        check(self.chunksize >= 1, "chunksize", self.chunksize, "an integer >= 1")


class SQLSource(TableSource):
    config_class = SQLDataConfig
    kind = "SQL query on"

    def row_filter(self):
        return None  # data.query is the SQL itself

    def where(self, base_dir):
        if self.cfg.get("url"):
            return f"data.url={self._url(base_dir)[0].render_as_string(hide_password=True)}"
        return f"the database in ${self.cfg.get('url_env')}"

    def _url(self, base_dir):
        """(URL with the password filled in, the secret to mask in messages)."""
        _require_sqlalchemy()
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        cfg = self.cfg
        if cfg.get("url"):
            key, text = "data.url", str(cfg.url)
        elif cfg.get("url_env"):
            key, text = f"data.url_env={cfg.url_env}", _env(cfg.url_env, "data.url_env")
        else:
            raise ConfigError(
                "data.url is not set; give a SQLAlchemy URL, e.g. data.url=sqlite:///logs.db "
                "(or data.url_env=NAME of an environment variable holding it)"
            )
        try:
            url = make_url(text)
        except ArgumentError as exc:
            shown = text if key == "data.url" else "its value"
            raise ConfigError(
                f"{key}: {shown!r} is not a SQLAlchemy URL; expected dialect+driver://user@host/db"
            ) from exc
        secret = url.password if key != "data.url" else None
        if key == "data.url" and url.password is not None:
            raise ConfigError(
                "data.url contains a password; remove it and name the environment variable that holds "
                "it with data.password_env=NAME (the config is saved into the run folder)"
            )
        if cfg.get("password_env"):
            secret = _env(cfg.password_env, "data.password_env")
            url = url.set(password=secret)
        if url.get_backend_name() in FILE_DIALECTS and url.database not in (None, "", ":memory:"):
            url = url.set(database=str(resolve_path(url.database, base_dir)))
        return url, (str(secret) if secret else None)

    def read(self, columns, base_dir):
        import pandas as pd

        _require_sqlalchemy()
        from sqlalchemy import create_engine, text

        url, secret = self._url(base_dir)
        dialect = url.get_backend_name()
        where = self.where(base_dir)
        is_file_db = dialect in FILE_DIALECTS and url.database not in (None, "", ":memory:")
        if is_file_db and not Path(url.database).is_file():
            raise DataError(f"{where}: database file {url.database} does not exist")
        if is_file_db:
            regular_file(Path(url.database), "data.url")
        if not str(self.cfg.get("query") or "").strip():
            raise ConfigError(
                "data.query is empty; give the SELECT statement, e.g. data.query='select * from logs'"
            )
        connect_args = {"read_only": True} if dialect == "duckdb" else {}
        chunks = []
        quiet = _quiet_driver_logs()
        try:
            engine = create_engine(url, connect_args=connect_args)
            try:
                with engine.connect() as conn:
                    conn = conn.execution_options(stream_results=True)
                    result = conn.execute(text(str(self.cfg.query)))
                    header = [str(k) for k in result.keys()]  # noqa: SIM118 - a Result, not a dict
                    check_unique_columns(header, f"the result of data.query on {where}")
                    keep = header if columns is None else [c for c in header if c in set(columns)]
                    result, names = _projected(conn, result, header, keep, str(self.cfg.query))
                    while rows := result.fetchmany(int(self.cfg.chunksize)):
                        chunk = pd.DataFrame.from_records(rows, columns=names)
                        chunks.append(chunk[keep])
            finally:
                engine.dispose()
        except DataError:
            raise
        except ModuleNotFoundError as exc:
            raise ConfigError(
                f"data.url: the {dialect} driver is not installed ({exc.name}); install it, "
                f"e.g. pip install {DRIVERS.get(str(exc.name), exc.name)}"
            ) from None
        except Exception as exc:  # noqa: BLE001 - drivers raise their own types; all become one line
            reason = _first_line(getattr(exc, "orig", None) or exc)
            raise DataError(_mask(f"{where}: the query failed: {reason}", secret)) from None
        finally:
            quiet()
        frame = pd.concat(chunks, ignore_index=True) if chunks else pd.DataFrame(columns=keep)
        return frame, header


def _projected(conn, result, header: list[str], keep: list[str], query: str):
    """``(result, its columns)``: when only some of the query's columns are used, the query again as a
    subquery that selects just those (the database reads and sends nothing else: a 10M-row table with
    extra columns is not fetched whole); else the query's own result.

    The first result only told the header (a streamed result: no row is fetched), and is closed. A query
    that cannot be a subquery (a trailing statement, a dialect's own syntax) is read whole and cut.
    """
    from sqlalchemy import text

    if len(keep) == len(header):
        return result, header
    statement = query.strip().rstrip(";").rstrip()
    quote = conn.dialect.identifier_preparer.quote
    projection = f"select {', '.join(quote(c) for c in keep)} from ({statement}) as causal_source"
    result.close()
    try:
        return conn.execute(text(projection)), keep
    except Exception:  # noqa: BLE001 - any failure: fall back to the query as given
        conn.rollback()  # a failed statement aborts the transaction on some databases (PostgreSQL)
        return conn.execute(text(query)), header


#: pip package of a missing database driver module
DRIVERS = {"psycopg": "'psycopg[binary]'", "psycopg2": "psycopg2-binary", "duckdb_engine": "duckdb-engine"}


#: loggers of SQLAlchemy and the drivers: a pool that logs a failed reset with its traceback would
#: print it to stderr (no handler is configured), next to the one-line error the run reports
DRIVER_LOGGERS = ("sqlalchemy", "psycopg", "psycopg2", "pg8000", "duckdb_engine")


def _quiet_driver_logs():
    """Give the driver loggers a NullHandler while the query runs; return the function that undoes it."""
    import logging

    handler = logging.NullHandler()
    loggers = [logging.getLogger(name) for name in DRIVER_LOGGERS]
    for logger in loggers:
        logger.addHandler(handler)

    def undo() -> None:
        for logger in loggers:
            logger.removeHandler(handler)

    return undo


def _require_sqlalchemy() -> None:
    try:
        import sqlalchemy  # noqa: F401
    except ImportError as exc:
        raise ConfigError("data=sql needs SQLAlchemy: pip install 'causal-cli[sql]'") from exc


def _env(name: str, key: str) -> str:
    value = os.environ.get(str(name))
    if value is None:
        raise ConfigError(f"{key}={name}: the environment variable {name} is not set")
    return value


def _first_line(exc) -> str:
    text = str(exc).split("\n(Background on this error")[0]
    return " ".join(text.split())[:300] or type(exc).__name__


def _mask(message: str, secret: str | None) -> str:
    if not secret:
        return message
    from urllib.parse import quote, quote_plus

    for form in {secret, quote(secret, safe=""), quote_plus(secret)}:
        message = message.replace(form, "***")
    return message
