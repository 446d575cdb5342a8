"""Database sources: a table or a query of PostgreSQL, SQLite or DuckDB, read as text rows.

The rows stream out of the database in the database's own text form (PostgreSQL's
``COPY ... TO STDOUT``, DuckDB's ``COPY ... TO``, SQLite's cursor in batches) into a CSV
copy in the staging folder, which is then read like any CSV file: memory stays bounded
whatever the table's size, and every value keeps the text the database gives it (dates in
ISO form, numbers as stored). ``source_row`` is the row's 1-based position in the result;
``source_line`` is null.

A table is read in primary-key order (in the order of all its columns when it has no primary
key), so its row numbers are stable; a query without ``ORDER BY`` gets a warning that they
are not. The source fingerprint (``info.sha256``) is the SHA-256 of the location without
credentials, the SQL run and the SHA-256 of the rows' text.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import tempfile
import weakref
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import polars as pl

from tracer_kit.connections import DatabaseUrl, parse_database_url, quote_name, scrub
from tracer_kit.errors import ConfigError, IngestError
from tracer_kit.ingest.source import Ingested

__all__ = ["COPY_CHUNK", "database_dataset", "read_database", "source_sql"]

#: Rows a SQLite cursor hands over at a time.
COPY_CHUNK = 10_000
#: Seconds to wait for a database server before giving up.
CONNECT_TIMEOUT = 10

_ORDER_BY = re.compile(r"\border\s+by\b", re.IGNORECASE)
_FROM = re.compile(
    r"\bfrom\s+((?:\"(?:[^\"]|\"\")*\"|[\w$]+)(?:\.(?:\"(?:[^\"]|\"\")*\"|[\w$]+))*)", re.I
)


def database_dataset(table: str | None, query: str | None) -> str:
    """The dataset a table or query belongs to by default: the table's name without schema.

    For a query, the first table after ``FROM`` (``query`` when none is found).
    """
    name = table
    if name is None and query:
        found = _FROM.search(query)
        name = found.group(1) if found else None
    if not name:
        return "query"
    last = re.findall(r'"(?:[^"]|"")*"|[^.]+', name)[-1]
    return last.strip('"').replace('""', '"') if last.startswith('"') else last.strip()


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _fail(db: DatabaseUrl, message: str) -> IngestError:
    return IngestError(scrub(f"{db.display()}: {message}", db), path=db.display())


def source_sql(
    db: DatabaseUrl, table: str | None, query: str | None, order_by: list[str]
) -> tuple[str, list[str]]:
    """The SQL to run and the warnings about it: a table read in key order, or the user's query.

    ``order_by`` are the columns that order the table (its primary key, else all columns).
    """
    if (table is None) == (query is None):
        msg = f"{db.display()}: give either --table NAME or --query SQL"
        raise ConfigError(msg)
    if table is not None:
        columns = ", ".join('"' + c.replace('"', '""') + '"' for c in order_by)
        return f"SELECT * FROM {quote_name(table)}" + (
            f" ORDER BY {columns}" if columns else ""
        ), []
    sql = (query or "").strip().rstrip(";").strip()
    if not sql:
        raise ConfigError(f"{db.display()}: --query is empty")
    warnings = []
    if not _ORDER_BY.search(sql):
        warnings.append(
            "the query has no ORDER BY: the rows may come in another order next time, and with "
            "them source_row and the source fingerprint (add ORDER BY a unique key)"
        )
    return sql, warnings


# --------------------------------------------------------------------------- PostgreSQL


def _pg_connect(db: DatabaseUrl) -> Any:  # noqa: ANN401 - a psycopg connection
    import psycopg

    try:
        return psycopg.connect(
            db.url, connect_timeout=CONNECT_TIMEOUT, application_name="tracer-kit"
        )
    except psycopg.Error as exc:
        raise _fail(db, f"cannot connect ({_one_line(exc)})") from None


def _pg_order(con: Any, table: str) -> list[str]:  # noqa: ANN401
    key = con.execute(
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a "
        "ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
        "WHERE i.indrelid = %s::regclass AND i.indisprimary "
        "ORDER BY array_position(i.indkey::int2[], a.attnum)",
        (quote_name(table),),
    ).fetchall()
    if key:
        return [name for (name,) in key]
    cur = con.execute(f"SELECT * FROM {quote_name(table)} LIMIT 0")
    return [d.name for d in cur.description or []]


def _pg_stage(
    db: DatabaseUrl, table: str | None, query: str | None, dest: Path
) -> tuple[str, list[str]]:
    import psycopg

    with _pg_connect(db) as con:
        try:
            con.read_only = True
            order = _pg_order(con, table) if table else []
            sql, warnings = source_sql(db, table, query, order)
            copy = f"COPY ({sql}) TO STDOUT WITH (FORMAT csv, HEADER true, ENCODING 'UTF8')"
            with con.cursor() as cur, cur.copy(copy) as stream, dest.open("wb") as out:
                for chunk in stream:
                    out.write(chunk)
        except psycopg.Error as exc:
            raise _fail(
                db, f"the {'table' if table else 'query'} could not be read ({_one_line(exc)})"
            ) from None
    return sql, warnings


# --------------------------------------------------------------------------- SQLite, DuckDB


def _file_of(db: DatabaseUrl) -> Path:
    path = db.path
    if path is None or not path.is_file():
        raise _fail(db, f"no such database file ({path})")
    return path


def _sqlite_text(value: Any) -> Any:  # noqa: ANN401 - what SQLite stores
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.hex()
    return repr(value) if isinstance(value, float) else str(value)


def _sqlite_stage(
    db: DatabaseUrl, table: str | None, query: str | None, dest: Path
) -> tuple[str, list[str]]:
    import sqlite3

    path = _file_of(db)
    con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        order: list[str] = []
        if table:
            info = con.execute("SELECT name, pk FROM pragma_table_info(?)", (table,)).fetchall()
            if not info:
                raise _fail(db, f"no table {table!r}")
            keyed = sorted((pk, name) for name, pk in info if pk)
            order = [name for _, name in keyed] or [name for name, _ in info]
        sql, warnings = source_sql(db, table, query, order)
        cur = con.execute(sql)
        with dest.open("w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow([d[0] for d in cur.description])
            while rows := cur.fetchmany(COPY_CHUNK):
                writer.writerows([_sqlite_text(v) for v in row] for row in rows)
    except sqlite3.Error as exc:
        raise _fail(db, f"could not be read ({_one_line(exc)})") from None
    finally:
        con.close()
    return sql, warnings


def _duckdb_stage(
    db: DatabaseUrl, table: str | None, query: str | None, dest: Path
) -> tuple[str, list[str]]:
    import duckdb

    path = _file_of(db)
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        raise _fail(db, f"cannot be opened ({_one_line(exc)})") from None
    try:
        order: list[str] = []
        if table:
            name = database_dataset(table, None)
            key = con.execute(
                "SELECT constraint_column_names FROM duckdb_constraints() "
                "WHERE constraint_type = 'PRIMARY KEY' AND table_name = ?",
                [name],
            ).fetchall()
            order = (
                list(key[0][0])
                if key
                else con.sql(f"SELECT * FROM {quote_name(table)} LIMIT 0").columns
            )
        sql, warnings = source_sql(db, table, query, order)
        target = str(dest).replace("'", "''")
        con.execute(f"COPY ({sql}) TO '{target}' (FORMAT csv, HEADER true)")
    except duckdb.Error as exc:
        raise _fail(db, f"could not be read ({_one_line(exc)})") from None
    finally:
        con.close()
    return sql, warnings


_STAGERS: dict[
    str, Callable[[DatabaseUrl, str | None, str | None, Path], tuple[str, list[str]]]
] = {
    "postgresql": _pg_stage,
    "sqlite": _sqlite_stage,
    "duckdb": _duckdb_stage,
}


# --------------------------------------------------------------------------- reading


def _fingerprint(db: DatabaseUrl, sql: str, records_sha: str) -> str:
    """SHA-256 of the location without credentials, the SQL and the rows' text."""
    text = json.dumps({"source": db.display(), "sql": sql, "records": records_sha}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _staging(staging_dir: str | Path | None) -> tuple[Path, Any]:
    if staging_dir is None:
        keep = tempfile.TemporaryDirectory(prefix="tracer-db-")
        return Path(keep.name), keep
    path = Path(staging_dir)
    path.mkdir(parents=True, exist_ok=True)
    return path, None


def read_database(
    source: str,
    *,
    table: str | None = None,
    query: str | None = None,
    on_bad_lines: str = "quarantine",
    staging_dir: str | Path | None = None,
) -> Ingested:
    """Read a table or a query of a database as text columns plus ``source_row``.

    See the module docstring for the order, the fingerprint and what is staged.
    """
    from tracer_kit.ingest.read import ReadOptions, read_file_source

    db = parse_database_url(source)
    staging, keep = _staging(staging_dir)
    staged = staging / f"{db.kind}-rows.csv"
    sql, warnings = _STAGERS[db.kind](db, table, query, staged)
    with staged.open("rb") as fh:
        if len(fh.readlines(1 << 16)[:2]) < 2:  # the header line alone
            raise _fail(db, f"the {'table' if table else 'query'} has no rows")
    inner = ReadOptions(
        format="csv",
        encoding="utf-8",
        delimiter=",",
        on_bad_lines=on_bad_lines,
        staging_dir=staging,
    )
    try:
        got = read_file_source(staged, inner)
    except IngestError as exc:  # (a message naming the staged copy would puzzle the user)
        raise _fail(db, exc.message.replace(str(staged), "the rows read")) from None
    info = replace(
        got.info,
        path=db.display(),
        sha256=_fingerprint(db, sql, got.info.sha256),
        format=db.kind,
        encoding=None,
        delimiter=None,
        decimal=None,
        query=sql,
        warnings=(*got.info.warnings, *warnings),
    )
    frame = got.frame.with_columns(pl.lit(None, dtype=pl.Int64).alias("source_line"))
    result = Ingested(frame=frame, info=info, rejects=got.rejects, _keepalive=(got, keep))
    if keep is not None:
        weakref.finalize(result, keep.cleanup)
    return result
