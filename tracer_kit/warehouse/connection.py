"""Opening the warehouse: one short connection at a time, lock conflicts retried, then a clear error.

No connection outlives one short operation (or one :func:`holding` block, a run's report: its
many short reads share one connection); a lock held by another process is retried with
bounded backoff (``TRACER_LOCK_TIMEOUT`` seconds, default 30) and then raises
:class:`WarehouseBusyError` naming the holder. Also the small SQL helpers every module uses.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from tracer_kit.errors import ConfigError, TracerError, WarehouseBusyError
from tracer_kit.workspace import DEFAULT_WAREHOUSE

__all__ = [
    "IDENT",
    "LOCK_TIMEOUT",
    "RUN_ID",
    "check_run_id",
    "connect",
    "copied_tables",
    "damaged_message",
    "first_time_held",
    "holding",
    "reading_from",
    "duckdb_type",
    "is_base_table",
    "json_text",
    "located_path",
    "new_run_id",
    "quote_ident",
    "sql_name",
    "sql_text",
    "stored_path",
    "utcnow",
    "warehouse_root",
]

LOCK_TIMEOUT = 30.0

IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")

RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")

_PL_TO_DUCK = {
    pl.Int8: "TINYINT",
    pl.Int16: "SMALLINT",
    pl.Int32: "INTEGER",
    pl.Int64: "BIGINT",
    pl.UInt32: "UINTEGER",
    pl.Float32: "FLOAT",
    pl.Float64: "DOUBLE",
    pl.String: "VARCHAR",
    pl.Date: "DATE",
    pl.Boolean: "BOOLEAN",
    pl.Datetime: "TIMESTAMP",
}


def quote_ident(name: str) -> str:
    """Quote a SQL identifier after checking it against a strict pattern."""
    if not IDENT.match(name):
        msg = f"{name!r} is not a valid table or column name (letters, digits, underscores)"
        raise ConfigError(msg)
    return '"' + name.replace('"', '""') + '"'


def check_run_id(run_id: str) -> str:
    """Return ``run_id`` if it is safe as a file and folder name, else raise ConfigError."""
    if not RUN_ID.match(run_id):
        msg = f"run_id={run_id!r} should be 1-64 letters, digits, '.', '_' or '-'"
        raise ConfigError(msg)
    return run_id


def new_run_id(now: dt.datetime | None = None) -> str:
    """A sortable, readable run id: ``YYYYMMDDTHHMMSS-xxxxxx`` (UTC, 6 random hex digits)."""
    now = now or dt.datetime.now(dt.UTC)
    return f"{now:%Y%m%dT%H%M%S}-{os.urandom(3).hex()}"


def utcnow() -> dt.datetime:
    """The current UTC time without tzinfo (DuckDB TIMESTAMP)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _is_lock_error(exc: BaseException) -> bool:
    return isinstance(exc, duckdb.IOException) and "Could not set lock" in str(exc)


def _holder(exc: BaseException) -> str:
    m = re.search(r"Conflicting lock is held in (.+?) \(PID (\d+)\)", str(exc))
    return f"process {m.group(2)} ({m.group(1)})" if m else "another process"


# One connection at a time per process: DuckDB refuses a read-only and a read-write
# connection to one file in one process, and concurrent DDL from threads conflicts.
_PROCESS_LOCK = threading.RLock()


@dataclass
class _Held:
    con: duckdb.DuckDBPyConnection
    reads_only: bool  # a replica (reading_from): read-write requests open the file itself
    opened: bool = False  # open_warehouse has run in this block


# Connections kept open for a block, per thread: {resolved path: _Held}.
_HELD = threading.local()


def _held(path: Path) -> _Held | None:
    return getattr(_HELD, "cons", {}).get(path.resolve())


def first_time_held(warehouse: str | Path) -> bool:
    """False inside :func:`reading_from`, or when :func:`holding` already asked in the block.

    :func:`~tracer_kit.warehouse.open_warehouse` migrates and recovers once per block (and
    never through a replica).
    """
    held = _held(Path(warehouse))
    if held is None:
        return True
    first = not (held.reads_only or held.opened)
    held.opened = True
    return first


@contextlib.contextmanager
def _keeping(path: Path, held: _Held) -> Iterator[None]:
    cons = _HELD.__dict__.setdefault("cons", {})
    cons[path.resolve()] = held
    try:
        yield
    finally:
        cons.pop(path.resolve(), None)


@contextlib.contextmanager
def holding(warehouse: str | Path = DEFAULT_WAREHOUSE) -> Iterator[None]:
    """Keep one read-write connection to the warehouse open in this thread for the block.

    Every :func:`connect` to the same file inside it reuses that connection instead of
    opening the file again (about 16 ms each), so a report's dozens of short reads cost
    one open. The lock is held for the block: keep it to work that only reads and writes
    the warehouse (never a whole run). Nested blocks reuse the outer connection.
    """
    path = Path(warehouse)
    if _held(path) is not None:
        yield
        return
    with connect(path) as con, _keeping(path, _Held(con, reads_only=False)):
        yield


@contextlib.contextmanager
def holding_reads(warehouse: str | Path = DEFAULT_WAREHOUSE) -> Iterator[None]:
    """Serve this thread's read-only :func:`connect` calls to ``warehouse`` from one
    read-only connection for the block (a page's dozens of reads cost one open).

    Inside :func:`holding` or :func:`reading_from` (or without a warehouse) it changes
    nothing. Writers in other processes wait for the block: keep it to reading.
    """  # noqa: D205
    path = Path(warehouse)
    if _held(path) is not None or not path.exists():
        yield
        return
    with connect(path, read_only=True) as con, _keeping(path, _Held(con, reads_only=True)):
        yield


def copied_tables(
    warehouse: str | Path, tables: tuple[str, ...]
) -> duckdb.DuckDBPyConnection | None:
    """A new in-memory database holding copies of ``tables`` (those the warehouse has).

    None when the file cannot be attached now (a writer holds its lock): the caller keeps
    what it has. Attached read-only under the process's opening lock, detached after.
    """
    db = duckdb.connect(":memory:")
    path = str(warehouse).replace("'", "''")
    with _PROCESS_LOCK:  # (no connect() of this process has the file open meanwhile)
        try:
            db.execute(f"ATTACH '{path}' AS wh (READ_ONLY)")
        except duckdb.Error:
            db.close()
            return None
        try:
            names = {r[0] for r in db.execute("SHOW TABLES FROM wh").fetchall()}
            for name in tables:
                if name in names:
                    db.execute(
                        f"CREATE TABLE {quote_ident(name)} AS SELECT * FROM wh.{quote_ident(name)}"
                    )
        finally:
            db.execute("DETACH wh")
    return db


@contextlib.contextmanager
def reading_from(warehouse: str | Path, replica: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Serve this thread's read-only :func:`connect` calls to ``warehouse`` from ``replica``.

    ``replica`` is a connection holding copies of the warehouse's tables under their own
    names (the server's in-memory copy of its small tables, so answering a request never
    takes the file's lock from a run that is writing). Read-write requests still open the
    file. Give each thread its own cursor.
    """
    with _keeping(Path(warehouse), _Held(replica, reads_only=True)):
        yield


@contextlib.contextmanager
def connect(
    warehouse: str | Path = DEFAULT_WAREHOUSE,
    *,
    read_only: bool = False,
    timeout: float | None = None,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the warehouse for one short operation, retrying while another process holds the lock.

    Raises
    ------
    WarehouseBusyError
        When the lock is still held after ``timeout`` seconds (default 30, or
        ``TRACER_LOCK_TIMEOUT``); the message names the holder.
    TracerError
        When opening read-only and there is no warehouse yet.
    """
    path = Path(warehouse)
    held = _held(path) if path.exists() else None
    if held is not None and held.reads_only and read_only:  # reading_from(): the replica
        yield held.con
        return
    if held is not None and not held.reads_only:  # inside holding(): left open after
        with _PROCESS_LOCK:
            yield held.con
        return
    if timeout is None:
        timeout = float(os.environ.get("TRACER_LOCK_TIMEOUT", LOCK_TIMEOUT))
    if read_only and not path.exists():
        msg = f"no warehouse at {path}; run `tracer run FILE --blueprint NAME` first"
        raise TracerError(msg, path=path)
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    with _PROCESS_LOCK, _open(path, read_only=read_only, timeout=timeout) as con:
        try:
            yield con
        except duckdb.Error as exc:
            if _is_damage(exc):  # (a damaged block is found when it is read)
                raise TracerError(damaged_message(path, _first_line(exc)), path=path) from None
            raise


_DAMAGE = ("Corrupt database file", "not a valid DuckDB database", "checksum")


def _is_damage(exc: BaseException) -> bool:
    return any(word in str(exc) for word in _DAMAGE)


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def damaged_message(path: Path, detail: str) -> str:
    """The one line for a warehouse that does not open or read: what happened and what to do."""
    return (
        f"warehouse {path} is damaged ({detail}); `tracer verify` checks it, "
        "`tracer restore BACKUP` puts back a backup (`tracer backup` takes them), "
        "`tracer rebuild` makes a new one from the run files on disk"
    )


#: A DuckDB file's headers (one main header and two database headers of 4 KiB): a file
#: shorter than that, not yet valid, is being created by another process.
_HEADERS_BYTES = 3 * 4096
#: How long a new file may take to get its headers before it counts as damaged.
_CREATION_SECONDS = 5.0


def _being_created(path: Path, exc: BaseException) -> bool:
    """Whether ``exc`` says ``path`` is not a DuckDB file because it is still being written."""
    try:
        short = path.stat().st_size < _HEADERS_BYTES
    except OSError:
        short = True  # (gone again: its creator gave up; the next try will tell)
    return short and "not a valid DuckDB database" in str(exc)


@contextlib.contextmanager
def _open(path: Path, *, read_only: bool, timeout: float) -> Iterator[duckdb.DuckDBPyConnection]:
    deadline = time.monotonic() + timeout
    created_by = time.monotonic() + min(timeout, _CREATION_SECONDS)
    delay = 0.05
    while True:
        try:
            con = duckdb.connect(str(path), read_only=read_only)
            break
        except duckdb.Error as exc:
            if _is_damage(exc) and _being_created(path, exc) and time.monotonic() < created_by:
                time.sleep(0.05)  # (another process is writing the new file's headers)
                continue
            if _is_damage(exc):
                raise TracerError(damaged_message(path, _first_line(exc)), path=path) from None
            if not _is_lock_error(exc):
                msg = f"cannot open warehouse {path}: {_first_line(exc)}"
                raise TracerError(msg, path=path) from None
            if time.monotonic() >= deadline:
                msg = (
                    f"warehouse {path} is busy: {_holder(exc)} holds its lock and did not release "
                    f"it within {timeout:g} s; try again when that run has finished"
                )
                raise WarehouseBusyError(msg, path=path) from None
            time.sleep(min(delay, max(deadline - time.monotonic(), 0.01)))
            delay = min(delay * 2, 1.0)
    try:
        yield con
    finally:
        con.close()


def warehouse_root(con: duckdb.DuckDBPyConnection) -> Path:
    """The folder of the warehouse file: registered Parquet paths are relative to it."""
    path = con.execute(
        "SELECT path FROM duckdb_databases() WHERE database_name = current_database()"
    ).fetchall()[0][0]
    return Path(path).resolve().parent


def stored_path(con: duckdb.DuckDBPyConnection, path: Path) -> str:
    """``path`` relative to the warehouse's folder when inside it (so the project can move)."""
    path = Path(path).resolve()
    try:
        return str(path.relative_to(warehouse_root(con)))
    except ValueError:
        return str(path)


def located_path(root: Path, stored: str) -> Path:
    """A stored path made absolute: relative ones are under the warehouse's folder ``root``."""
    return Path(stored) if Path(stored).is_absolute() else root / stored


def parquet_schema(path: str | Path) -> dict[str, pl.DataType]:
    """The columns of a Parquet file, or of a folder's first part file."""
    p = Path(path)
    first = p if p.is_file() else min(p.glob("*.parquet"))
    return dict(pl.read_parquet_schema(first))


def duckdb_type(dtype: pl.DataType) -> str:
    """The DuckDB type a polars dtype is stored as (text for anything else)."""
    for pl_type, duck in _PL_TO_DUCK.items():
        if dtype == pl_type:
            return duck
    return "VARCHAR"


def sql_name(name: str) -> str:
    """Quote any column name (a file's own header may hold spaces or quotes)."""
    return '"' + name.replace('"', '""') + '"'


def sql_text(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def is_base_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    """Whether ``name`` is a table (not a view) of the warehouse."""
    rows = con.execute(  # (duckdb_tables(): base tables only, ~10x faster than information_schema)
        "SELECT 1 FROM duckdb_tables() WHERE table_name = ? AND database_name = current_database()",
        [name],
    ).fetchall()
    return bool(rows)


def fetched_dicts(cursor: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """The rows of an executed query, each a dict keyed by column name."""
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def json_text(value: Any) -> str | None:
    """A value (or a run record, as its JSON values) as sorted JSON text for a JSON column.

    None stays None.
    """
    if hasattr(value, "as_params"):  # a RunRecord: the facts set, with its schema version
        value = value.as_params()
    return None if value is None else json.dumps(value, default=str, sort_keys=True)
