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
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from tracer_kit.connections import (
    DatabaseUrl,
    connect_database,
    driver_errors,
    driver_message,
    is_one_select,
    parse_database_url,
    quote_name,
    scrub,
)
from tracer_kit.errors import ConfigError, IngestError
from tracer_kit.ingest.files import ReadOptions, read_staged, staging_folder
from tracer_kit.ingest.source import Ingested

__all__ = ["COPY_CHUNK", "database_dataset", "read_database", "source_sql"]

#: Rows a SQLite cursor hands over at a time.
COPY_CHUNK = 10_000

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


def _database_error(db: DatabaseUrl, message: str) -> IngestError:
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


# --------------------------------------------------------------------------- per database


def _pg_order(con: Any, table: str) -> list[str]:
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


def _pg_copy(con: Any, sql: str, dest: Path) -> None:
    copy = f"COPY ({sql}) TO STDOUT WITH (FORMAT csv, HEADER true, ENCODING 'UTF8')"
    with con.cursor() as cur, cur.copy(copy) as stream, dest.open("wb") as out:
        for chunk in stream:
            out.write(chunk)


def _sqlite_order(con: Any, table: str) -> list[str]:
    info = con.execute("SELECT name, pk FROM pragma_table_info(?)", (table,)).fetchall()
    if not info:
        msg = f"no table {table!r}"
        raise LookupError(msg)
    keyed = sorted((pk, name) for name, pk in info if pk)
    return [name for _, name in keyed] or [name for name, _ in info]


def _sqlite_text(value: Any) -> Any:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.hex()
    return repr(value) if isinstance(value, float) else str(value)


#: SQLite authorizer actions a source query may take: read tables, call functions, recurse.
_SQLITE_READS = frozenset({20, 21, 31, 33})  # SQLITE_READ, _SELECT, _FUNCTION, _RECURSIVE


def _sqlite_reads_only(action: int, *_: Any) -> int:
    """Deny every SQLite action that is not a read (writes, ATTACH, VACUUM INTO, PRAGMA...)."""
    import sqlite3

    return sqlite3.SQLITE_OK if action in _SQLITE_READS else sqlite3.SQLITE_DENY


def _sqlite_copy(con: Any, sql: str, dest: Path) -> None:
    con.set_authorizer(_sqlite_reads_only)
    try:
        cur = con.execute(sql)
    finally:
        con.set_authorizer(None)
    if cur.description is None:
        raise LookupError("the statement returns no rows (give a SELECT)")
    with dest.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow([d[0] for d in cur.description])
        while rows := cur.fetchmany(COPY_CHUNK):
            writer.writerows([_sqlite_text(v) for v in row] for row in rows)


def _duckdb_order(con: Any, table: str) -> list[str]:
    key = con.execute(
        "SELECT constraint_column_names FROM duckdb_constraints() "
        "WHERE constraint_type = 'PRIMARY KEY' AND table_name = ?",
        [database_dataset(table, None)],
    ).fetchall()
    if key:
        return list(key[0][0])
    return con.sql(f"SELECT * FROM {quote_name(table)} LIMIT 0").columns


def _duckdb_copy(con: Any, sql: str, dest: Path) -> None:
    if not is_one_select(sql):
        raise LookupError("only one SELECT may run on a source (the file is opened read-only)")
    target = str(dest).replace("'", "''")
    con.execute(f"COPY ({sql}) TO '{target}' (FORMAT csv, HEADER true)")


Order = Callable[[Any, str], list[str]]
Copy = Callable[[Any, str, Path], None]

#: Per database kind: the columns that order a table, and how rows are copied to CSV.
_KINDS: dict[str, tuple[Order, Copy]] = {
    "postgresql": (_pg_order, _pg_copy),
    "sqlite": (_sqlite_order, _sqlite_copy),
    "duckdb": (_duckdb_order, _duckdb_copy),
}


def _stage(
    db: DatabaseUrl, table: str | None, query: str | None, dest: Path
) -> tuple[str, list[str]]:
    """Copy the table's or query's rows into the CSV ``dest``; the SQL run and its warnings."""
    order_of, copy = _KINDS[db.kind]
    with connect_database(db, error=IngestError) as con:
        try:
            order = order_of(con, table) if table else []
            sql, warnings = source_sql(db, table, query, order)
            copy(con, sql, dest)
        except driver_errors(db.kind) as exc:
            what = "table" if table else "query"
            cause = driver_message(exc)
            if "not authorized" in cause or "authorization denied" in cause:
                cause = "only a read statement may run on a source: a SELECT, no write, ATTACH or VACUUM"
            raise _database_error(db, f"the {what} could not be read ({cause})") from None
    return sql, warnings


# --------------------------------------------------------------------------- reading


def _fingerprint(db: DatabaseUrl, sql: str, records_sha: str) -> str:
    """SHA-256 of the location without credentials, the SQL and the rows' text."""
    text = json.dumps({"source": db.display(), "sql": sql, "records": records_sha}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


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
    db = parse_database_url(source)
    staging, keep = staging_folder(staging_dir, "tracer-db-")
    staged = staging / f"{db.kind}-rows.csv"
    sql, warnings = _stage(db, table, query, staged)
    with staged.open("rb") as fh:
        if len(fh.readlines(1 << 16)[:2]) < 2:  # the header line alone
            raise _database_error(db, f"the {'table' if table else 'query'} has no rows")
    as_csv = ReadOptions(format="csv", encoding="utf-8", delimiter=",", on_bad_lines=on_bad_lines)
    try:
        got = read_staged(staged, as_csv, keep, lines=False, path=db.display())
    except IngestError as exc:  # (a message naming the staged copy would puzzle the user)
        raise _database_error(db, exc.message.replace(str(staged), "the rows read")) from None
    got.info = replace(  # the fingerprint needs the copy's hash, known once it is read
        got.info,
        sha256=_fingerprint(db, sql, got.info.sha256),
        format=db.kind,
        encoding=None,
        delimiter=None,
        decimal=None,
        query=sql,
        warnings=(*got.info.warnings, *warnings),
    )
    return got
