"""Destinations: a run exported to PostgreSQL (processed rows, quarantine, predictions, bronze) in one transaction.

:func:`export` copies the run's rows out of the DuckDB warehouse (its views) into Parquet in
one short read, then, with the warehouse closed, streams them batch by batch into PostgreSQL
with ``COPY ... FROM STDIN`` (CSV text written by polars), never row by row. Tables are created on first use with typed columns (and a column a
later run brings is added); their names are the warehouse's:

- ``tracer_runs``: one row per exported run (its counts, score and where it came from);
  the run's row is what makes an export idempotent: a run already there adds nothing.
- ``<blueprint>_processed``, ``quarantine_<blueprint>`` (``raw`` and ``reasons`` as
  ``jsonb``), ``predictions_<blueprint>``: the run's rows, with ``run_id``.
- ``bronze_<blueprint>``: the raw records (``raw jsonb``) with their source fingerprint,
  read options hash, ``source_row`` and line; each source's records go in once, whole:
  ``tracer_bronze_loads`` lists the (fingerprint, read options) already there, so a later
  run over the same source adds no bronze rows.

Everything happens in one transaction: a failure (the server down, a wrong password, a
missing database, a type the table refuses) leaves nothing written, and the error is one
line without the password.
"""

from __future__ import annotations

import contextlib
import json
import queue
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from tracer_kit.connections import (
    DatabaseUrl,
    connect_database,
    driver_message,
    parse_database_url,
    scrub,
)
from tracer_kit.errors import ExportError
from tracer_kit.warehouse import DEFAULT_WAREHOUSE
from tracer_kit.warehouse.connection import connect, quote_ident, sql_text
from tracer_kit.warehouse.reads import run_row

__all__ = ["EXPORT_BATCH_ROWS", "Exported", "export"]

#: Rows read from the warehouse and copied to PostgreSQL at a time.
EXPORT_BATCH_ROWS = 100_000

_RUN_COLUMNS = {
    "run_id": "text PRIMARY KEY",
    "blueprint": "text NOT NULL",
    "dataset": "text",
    "state": "text",
    "input_path": "text",
    "input_sha256": "text",
    "read_options": "jsonb",
    "rows_in": "bigint",
    "rows_valid": "bigint",
    "rows_quarantined": "bigint",
    "rows_out": "bigint",
    "quality_score": "double precision",
    "score_parts": "jsonb",
    "started_at": "timestamp",
    "finished_at": "timestamp",
}

_PG_TYPES = {
    "BOOLEAN": "boolean",
    "TINYINT": "smallint",
    "SMALLINT": "smallint",
    "INTEGER": "integer",
    "BIGINT": "bigint",
    "HUGEINT": "numeric",
    "UTINYINT": "smallint",
    "USMALLINT": "integer",
    "UINTEGER": "bigint",
    "UBIGINT": "numeric",
    "FLOAT": "real",
    "DOUBLE": "double precision",
    "VARCHAR": "text",
    "DATE": "date",
    "TIME": "time",
    "TIMESTAMP": "timestamp",
    "TIMESTAMP WITH TIME ZONE": "timestamptz",
    "JSON": "jsonb",
    "UUID": "uuid",
}


@dataclass
class Exported:
    """What an export added: rows per PostgreSQL table (all zero when the run was there already)."""

    run_id: str
    destination: str  # the URL without its password
    rows: dict[str, int] = field(default_factory=dict)
    already: bool = False
    seconds: float = 0.0

    @property
    def total(self) -> int:
        """Rows added over all tables."""
        return sum(self.rows.values())

    def summary(self) -> str:
        """One line for a person."""
        if self.already:
            return f"run {self.run_id} is already in {self.destination}: nothing added"
        parts = ", ".join(f"{n:,} {table}" for table, n in self.rows.items())
        return f"run {self.run_id} exported to {self.destination} in {self.seconds:.1f} s: {parts}"


def _pg_type(duck_type: str) -> str:
    """The PostgreSQL type of a DuckDB column (nested and JSON values become ``jsonb``)."""
    if duck_type in _PG_TYPES:
        return _PG_TYPES[duck_type]
    if duck_type.startswith("DECIMAL"):
        return duck_type.replace("DECIMAL", "numeric")
    if duck_type.endswith("]") or duck_type.startswith(("STRUCT", "MAP")):
        return "jsonb"
    return "text"


def _as_text_sql(name: str, duck_type: str) -> str:
    """A select item giving the column as COPY reads it (JSON text for nested values)."""
    col = quote_ident(name)
    if _pg_type(duck_type) == "jsonb" and duck_type != "JSON":
        return f"to_json({col})::VARCHAR AS {col}"
    if duck_type == "JSON":
        return f"{col}::VARCHAR AS {col}"
    return col


@dataclass
class _Table:
    """One table to fill: its PostgreSQL name, columns and types, and its rows staged as Parquet."""

    name: str
    columns: dict[str, str]  # name -> PostgreSQL type
    staged: Path  # the run's rows, as COPY reads them (nested values as JSON text)
    load: tuple[str, str] | None = None  # bronze: (fingerprint, options hash), copied once


def _sources(run: dict[str, Any]) -> list[tuple[str, str, list[Any], tuple[str, str] | None]]:
    """The run's rows in the warehouse: (view, its filter, the filter's values, bronze load)."""
    bp, run_id = run["blueprint"], run["run_id"]
    load = (run["input_sha256"], run["read_options"]["hash"])
    return [
        (f"{bp}_processed", "run_id = ?", [run_id], None),
        (f"quarantine_{bp}", "run_id = ?", [run_id], None),
        (f"predictions_{bp}", "run_id = ?", [run_id], None),
        (f"bronze_{bp}", "file_sha256 = ? AND read_options_hash = ?", list(load), load),
    ]


def _stage_tables(con: Any, run: dict[str, Any], work: Path) -> list[_Table]:
    """The run's rows out of the warehouse into Parquet in ``work``, typed for PostgreSQL.

    One short read of the warehouse: the export then streams from these files, so no
    warehouse connection stays open while PostgreSQL takes the rows.
    """
    tables = []
    for view, where, params, bronze in _sources(run):
        rows = f"FROM {quote_ident(view)} WHERE {where}"
        rel = con.sql(f"SELECT * {rows}", params=params)
        types = {c: str(t) for c, t in zip(rel.columns, rel.types, strict=True)}
        items = ", ".join(_as_text_sql(c, t) for c, t in types.items())
        staged = work / f"{view}.parquet"
        target = sql_text(str(staged))
        con.execute(f"COPY (SELECT {items} {rows}) TO {target} (FORMAT parquet)", params)
        columns = {c: _pg_type(t) for c, t in types.items()}
        tables.append(_Table(view, columns, staged, bronze))
    return tables


def _batches(table: _Table) -> Iterator[bytes]:
    """The table's rows as CSV text, :data:`EXPORT_BATCH_ROWS` at a time (nulls unquoted empty).

    A thread reads and encodes the next batches while PostgreSQL takes the current one (at
    most two wait), so the file read and the server's COPY overlap.
    """
    import pyarrow.parquet as pq

    chunks: queue.Queue[bytes | BaseException | None] = queue.Queue(maxsize=2)
    stop = threading.Event()

    def produce() -> None:
        try:
            for batch in pq.ParquetFile(table.staged).iter_batches(EXPORT_BATCH_ROWS):
                if stop.is_set():
                    return
                if batch.num_rows:
                    chunks.put(pl.from_arrow(batch).write_csv(include_header=False).encode())
            chunks.put(None)
        except BaseException as exc:
            chunks.put(exc)

    worker = threading.Thread(target=produce, name="tracer-export-read", daemon=True)
    worker.start()
    try:
        while (chunk := chunks.get()) is not None:
            if isinstance(chunk, BaseException):
                raise chunk
            yield chunk
    finally:
        stop.set()
        while worker.is_alive():  # a consumer that stopped early: unblock the reader
            with contextlib.suppress(queue.Empty):
                chunks.get(timeout=0.1)
        worker.join()


def _create(cur: Any, table: _Table) -> None:
    cols = ", ".join(f"{quote_ident(c)} {t}" for c, t in table.columns.items())
    cur.execute(f"CREATE TABLE IF NOT EXISTS {quote_ident(table.name)} ({cols})")
    for c, t in table.columns.items():  # a column a later run (or blueprint version) brings
        cur.execute(
            f"ALTER TABLE {quote_ident(table.name)} ADD COLUMN IF NOT EXISTS {quote_ident(c)} {t}"
        )


def _copy(cur: Any, table: _Table) -> int:
    """COPY the table's rows in; returns the rows added."""
    cols = ", ".join(quote_ident(c) for c in table.columns)
    with cur.copy(f"COPY {quote_ident(table.name)} ({cols}) FROM STDIN WITH (FORMAT csv)") as copy:
        for chunk in _batches(table):
            copy.write(chunk)
    return max(cur.rowcount, 0)


def _claim_load(cur: Any, table: _Table, run_id: str) -> bool:
    """Record that a source's bronze records are in; False when an earlier export put them there.

    Bronze holds each (fingerprint, read options) load once, whole, so one row per load in
    ``tracer_bronze_loads`` keeps bronze free of repeats without a key check on every record.
    """
    cur.execute(
        "CREATE TABLE IF NOT EXISTS tracer_bronze_loads (bronze_table text NOT NULL, "
        "file_sha256 text NOT NULL, read_options_hash text NOT NULL, first_run_id text, "
        "exported_at timestamptz DEFAULT now(), "
        "PRIMARY KEY (bronze_table, file_sha256, read_options_hash))"
    )
    cur.execute(
        "INSERT INTO tracer_bronze_loads (bronze_table, file_sha256, read_options_hash, "
        "first_run_id) VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
        [table.name, *(table.load or ()), run_id],
    )
    return cur.rowcount == 1


def _claim_run(cur: Any, run: dict[str, Any]) -> bool:
    """Insert the run's row; False when it is there already (then the export adds nothing)."""
    cols = ", ".join(f"{quote_ident(c)} {t}" for c, t in _RUN_COLUMNS.items())
    cur.execute(
        f"CREATE TABLE IF NOT EXISTS tracer_runs ({cols}, exported_at timestamptz DEFAULT now())"
    )
    values = [
        json.dumps(run[c]) if _RUN_COLUMNS[c] == "jsonb" else run.get(c) for c in _RUN_COLUMNS
    ]
    names = ", ".join(quote_ident(c) for c in _RUN_COLUMNS)
    marks = ", ".join(["%s"] * len(values))
    cur.execute(
        f"INSERT INTO tracer_runs ({names}) VALUES ({marks}) ON CONFLICT (run_id) DO NOTHING",
        values,
    )
    return cur.rowcount == 1


def export(run_id: str, url: str, *, warehouse: str | Path = DEFAULT_WAREHOUSE) -> Exported:
    """Copy a completed run's rows into a PostgreSQL database, in one transaction.

    Parameters
    ----------
    run_id
        A COMPLETED run (``tracer runs`` lists them).
    url
        ``postgresql://user:password@host:5432/db`` (or without the password: ``PGPASSWORD``,
        ``~/.pgpass`` or ``TRACER_DB_URL`` supply it), or ``env:NAME``.
    warehouse
        The DuckDB warehouse the run is in.

    Returns
    -------
    Exported
        Rows added per table; ``already`` when the run had been exported before (nothing added).

    Raises
    ------
    ExportError
        When the server cannot be reached, the login or database is wrong, or a table refuses
        the rows: one line without the password, and nothing is written.
    """
    db = parse_database_url(url)
    if db.kind != "postgresql":
        msg = f"{db.display()}: runs are exported to PostgreSQL (postgresql://...)"
        raise ExportError(msg)
    run = run_row(run_id, warehouse=warehouse)
    if run["state"] != "COMPLETED":
        msg = f"run {run_id} is {run['state']}: only completed runs are exported"
        raise ExportError(msg)
    started = time.perf_counter()
    done = Exported(run_id, db.display())
    with tempfile.TemporaryDirectory(prefix="tracer-export-") as work:

        def stage() -> list[_Table]:  # one short read of the warehouse, then it is closed
            with connect(warehouse, read_only=True) as con:
                return _stage_tables(con, run, Path(work))

        done.already, done.rows = _write(db, run, stage)
    done.seconds = time.perf_counter() - started
    return done


def _write(
    db: DatabaseUrl, run: dict[str, Any], stage: Callable[[], list[_Table]]
) -> tuple[bool, dict[str, int]]:
    """In one transaction: claim the run (True: there already, nothing is read or written),
    stage its rows, create the tables, copy.
    """  # noqa: D205
    import psycopg

    failed = "the export failed, nothing was written"
    with connect_database(db, read_only=False, error=ExportError, doing=failed) as pg:
        try:
            with pg.transaction(), pg.cursor() as cur:
                if not _claim_run(cur, run):
                    return True, {view: 0 for view, *_ in _sources(run)}
                rows = {}
                for table in stage():
                    _create(cur, table)
                    fresh = table.load is None or _claim_load(cur, table, run["run_id"])
                    rows[table.name] = _copy(cur, table) if fresh else 0
        except psycopg.Error as exc:
            msg = f"{db.display()}: {failed} ({driver_message(exc)})"
            raise ExportError(scrub(msg, db)) from None
    return False, rows
