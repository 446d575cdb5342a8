"""Store: the DuckDB warehouse, its migrations, the run lifecycle and the one-transaction commit.

Rules (``docs/contracts.md``, Locking): no connection outlives one short operation; lock conflicts are
retried with bounded backoff and then raise :class:`WarehouseBusyError`; a run's outputs
are staged on disk and recorded, with its final state, in a single transaction (the commit
point); on open, runs whose process died are marked FAILED and their files removed.

Bronze records and processed rows are not copied into DuckDB: each stays in the immutable
Parquet file written once by its run (``data/bronze/<bp>/``, ``data/processed/<bp>/``),
registered in ``bronze_files`` / ``processed_files``, and the views ``bronze_<bp>`` and
``<bp>_processed`` read them (bronze's ``raw`` JSON is built by DuckDB on read). Loading a
1 GB file's raw rows as JSON took 13-16 s and 3 GB; the rename costs nothing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from tracer_kit._testing import pause_for_tests
from tracer_kit.blueprints import Blueprint
from tracer_kit.errors import ConfigError, TracerError, WarehouseBusyError
from tracer_kit.outputs import output_keys
from tracer_kit.types import ACTIVE_STATES, RunState

log = logging.getLogger("tracer_kit")

from tracer_kit.workspace import DEFAULT_WAREHOUSE  # noqa: E402 - re-exported for callers

__all__ = [
    "BronzeFiles",
    "IDENT",
    "LOCK_TIMEOUT",
    "MIGRATIONS",
    "QUARANTINE_VIEW_SCHEMA",
    "RUN_ID",
    "Removal",
    "STATES",
    "check_run_id",
    "commit_run",
    "connect",
    "dataset_name",
    "delete_runs",
    "end_run",
    "ensure_blueprint_tables",
    "new_run_id",
    "note_params",
    "open_warehouse",
    "quarantine_rows",
    "query",
    "quote_ident",
    "record_timings",
    "run_row",
    "recent_runs",
    "report_inputs",
    "ReportInputs",
    "runs_to_prune",
    "sql_name",
    "sql_text",
    "start_run",
    "utcnow",
]

LOCK_TIMEOUT = 30.0
IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
STATES = tuple(s.value for s in RunState)

MIGRATIONS: list[tuple[int, str]] = [
    (
        1,
        """
        CREATE TABLE IF NOT EXISTS runs (
            run_id VARCHAR PRIMARY KEY,
            blueprint VARCHAR NOT NULL,
            state VARCHAR NOT NULL,
            input_path VARCHAR,
            input_sha256 VARCHAR,
            read_options JSON,
            params JSON,
            versions JSON,
            pid INTEGER,
            host VARCHAR,
            started_at TIMESTAMP,
            finished_at TIMESTAMP,
            rows_in BIGINT,
            rows_valid BIGINT,
            rows_quarantined BIGINT,
            rows_out BIGINT,
            quality_score DOUBLE,
            score_parts JSON,
            error VARCHAR,
            outputs JSON
        );
        CREATE TABLE IF NOT EXISTS stage_timings (
            run_id VARCHAR NOT NULL, stage VARCHAR NOT NULL, seconds DOUBLE NOT NULL
        );
        CREATE TABLE IF NOT EXISTS quality_issues (
            run_id VARCHAR NOT NULL, severity VARCHAR NOT NULL, "column" VARCHAR, "check" VARCHAR,
            observed DOUBLE, threshold DOUBLE, rows_affected BIGINT, examples JSON, message VARCHAR
        );
        CREATE TABLE IF NOT EXISTS column_profiles (
            run_id VARCHAR NOT NULL, "column" VARCHAR NOT NULL, dtype VARCHAR, nulls BIGINT,
            "distinct" BIGINT, "min" VARCHAR, "max" VARCHAR, mean DOUBLE, median DOUBLE,
            hist_edges JSON, hist_counts JSON
        );
        """,
    ),
    (
        2,
        """
        CREATE TABLE IF NOT EXISTS bronze_files (
            blueprint VARCHAR NOT NULL, file_sha256 VARCHAR NOT NULL,
            read_options_hash VARCHAR NOT NULL, path VARCHAR NOT NULL, rejects_path VARCHAR,
            columns JSON, source_file VARCHAR, first_run_id VARCHAR, ingested_at TIMESTAMP,
            PRIMARY KEY (blueprint, file_sha256, read_options_hash)
        );
        CREATE TABLE IF NOT EXISTS processed_files (
            blueprint VARCHAR NOT NULL, run_id VARCHAR PRIMARY KEY, path VARCHAR NOT NULL
        );
        """,
    ),
    (
        3,
        """
        CREATE TABLE IF NOT EXISTS warehouse_meta (key VARCHAR PRIMARY KEY, value VARCHAR);
        """,
    ),
    (4, "ALTER TABLE runs ADD COLUMN IF NOT EXISTS dataset VARCHAR;"),
]


_DATED_SUFFIX = re.compile(
    r"[\s_\-.]*(?:\d{4}[-_.]?\d{2}(?:[-_.]?\d{2})?)(?:[T_\-\s]?\d{2}[:\-_.]?\d{2}(?:[:\-_.]?\d{2})?)?$"
)
_SUFFIXES = (".gz", ".zst", ".csv", ".tsv", ".txt", ".psv", ".json", ".ndjson", ".jsonl",
             ".parquet", ".pq", ".xlsx", ".xlsm", ".xml")  # fmt: skip


def dataset_name(path: str | Path) -> str:
    """The dataset a file belongs to: its stem without a trailing date or timestamp.

    ``customers_2024-06-01.csv`` and ``customers_20240701.csv.gz`` are both ``customers``;
    runs of one dataset are what drift and the score history compare.
    """
    name = Path(str(path)).name
    while (suffix := Path(name).suffix.lower()) in _SUFFIXES and suffix:
        name = name[: -len(suffix)]
    return _DATED_SUFFIX.sub("", name) or name


def _backfill_datasets(con: duckdb.DuckDBPyConnection) -> None:
    """Runs recorded before ``dataset`` existed get it from their input path."""
    rows = con.execute("SELECT run_id, input_path FROM runs WHERE dataset IS NULL").fetchall()
    for run_id, input_path in rows:
        con.execute(
            "UPDATE runs SET dataset = ? WHERE run_id = ?",
            [dataset_name(input_path or run_id), run_id],
        )


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


# --------------------------------------------------------------------------- connections


def _is_lock_error(exc: BaseException) -> bool:
    return isinstance(exc, duckdb.IOException) and "Could not set lock" in str(exc)


def _holder(exc: BaseException) -> str:
    m = re.search(r"Conflicting lock is held in (.+?) \(PID (\d+)\)", str(exc))
    return f"process {m.group(2)} ({m.group(1)})" if m else "another process"


# One connection at a time per process: DuckDB refuses a read-only and a read-write
# connection to one file in one process, and concurrent DDL from threads conflicts.
_PROCESS_LOCK = threading.RLock()


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
    if timeout is None:
        timeout = float(os.environ.get("TRACER_LOCK_TIMEOUT", LOCK_TIMEOUT))
    if read_only and not path.exists():
        msg = f"no warehouse at {path}; run `tracer run FILE --blueprint NAME` first"
        raise TracerError(msg, path=path)
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    with _PROCESS_LOCK, _open(path, read_only=read_only, timeout=timeout) as con:
        yield con


@contextlib.contextmanager
def _open(path: Path, *, read_only: bool, timeout: float) -> Iterator[duckdb.DuckDBPyConnection]:
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        try:
            con = duckdb.connect(str(path), read_only=read_only)
            break
        except duckdb.IOException as exc:
            if not _is_lock_error(exc):
                msg = f"cannot open warehouse {path}: {str(exc).splitlines()[0]}"
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


def _migrate(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER, applied_at TIMESTAMP)")
    current = con.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchall()[0][0]
    for version, sql in MIGRATIONS:
        if version > current:
            con.execute("BEGIN")
            con.execute(sql)
            if version == 4:
                _backfill_datasets(con)
            con.execute("INSERT INTO schema_version VALUES (?, ?)", [version, utcnow()])
            con.execute("COMMIT")


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_outputs(outputs: dict[str, Any]) -> None:
    for key in output_keys():
        p = outputs.get(key)
        if p and Path(p).is_file():
            Path(p).unlink()
    staging = outputs.get("staging")
    if staging and Path(staging).is_dir():
        shutil.rmtree(staging, ignore_errors=True)


def _recover(con: duckdb.DuckDBPyConnection) -> None:
    host = socket.gethostname()
    rows = con.execute(
        "SELECT run_id, pid FROM runs WHERE state IN ('IN_PROGRESS', 'PENDING') AND host = ?",
        [host],
    ).fetchall()
    dead = [run_id for run_id, pid in rows if not _pid_alive(pid)]
    for run_id in dead:
        con.execute(
            "UPDATE runs SET state = 'FAILED', finished_at = ?, "
            "error = coalesce(error, 'the process running it stopped (killed or crashed)') "
            "WHERE run_id = ?",
            [utcnow(), run_id],
        )
    for (outputs,) in con.execute(
        "SELECT outputs FROM runs WHERE state IN ('FAILED', 'CANCELLED')"
    ).fetchall():
        _remove_outputs(json.loads(outputs) if outputs else {})


def open_warehouse(warehouse: str | Path = DEFAULT_WAREHOUSE) -> None:
    """Create or migrate the warehouse and clean up after runs whose process died.

    When the warehouse's folder has moved since its views were built (a project copied or
    mounted elsewhere), the views are rebuilt to read the Parquet files from there.
    """
    with connect(warehouse) as con:
        _migrate(con)
        _recover(con)
        _follow_move(con)


def _root(con: duckdb.DuckDBPyConnection) -> Path:
    """The folder of the warehouse file: registered Parquet paths are relative to it."""
    path = con.execute(
        "SELECT path FROM duckdb_databases() WHERE database_name = current_database()"
    ).fetchall()[0][0]
    return Path(path).resolve().parent


def _stored_path(con: duckdb.DuckDBPyConnection, path: Path) -> str:
    """``path`` relative to the warehouse's folder when inside it (so the project can move)."""
    path = Path(path).resolve()
    try:
        return str(path.relative_to(_root(con)))
    except ValueError:
        return str(path)


def _located(root: Path, stored: str) -> Path:
    return Path(stored) if Path(stored).is_absolute() else root / stored


def _follow_move(con: duckdb.DuckDBPyConnection) -> None:
    """Rebuild every blueprint's views when the warehouse is not where they were last built."""
    from tracer_kit.blueprints import get_blueprint

    root = str(_root(con))
    rows = con.execute("SELECT value FROM warehouse_meta WHERE key = 'root'").fetchall()
    if rows and rows[0][0] == root:
        return
    names = con.execute(
        "SELECT blueprint FROM bronze_files UNION SELECT blueprint FROM processed_files"
    ).fetchall()
    con.execute("BEGIN")
    for (name,) in names:
        try:
            ensure_blueprint_tables(con, get_blueprint(name))
        except TracerError:  # a custom blueprint not registered here: its bronze still moves
            _refresh_bronze_view(con, name)
    con.execute("INSERT OR REPLACE INTO warehouse_meta VALUES ('root', ?)", [root])
    con.execute("COMMIT")


# --------------------------------------------------------------------------- blueprint tables


def _duck_type(dtype: pl.DataType) -> str:
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


def _is_base_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    rows = con.execute(
        "SELECT 1 FROM information_schema.tables WHERE table_name = ? AND table_type = 'BASE TABLE'",
        [name],
    ).fetchall()
    return bool(rows)


_BRONZE_TYPES = {
    "file_sha256": "VARCHAR",
    "read_options_hash": "VARCHAR",
    "source_row": "BIGINT",
    "source_line": "BIGINT",
    "raw": "JSON",
    "source_file": "VARCHAR",
    "first_run_id": "VARCHAR",
    "ingested_at": "TIMESTAMP",
}


def _empty_select(types: dict[str, str]) -> str:
    """A SELECT with these columns and types and no rows (a view over no files yet)."""
    cols = ", ".join(f"NULL::{t} AS {sql_name(n)}" for n, t in types.items())
    return f"SELECT {cols} WHERE false"


def _refresh_bronze_view(con: duckdb.DuckDBPyConnection, bp: str) -> None:
    """``bronze_<bp>``: one SELECT per stored bronze file, the raw JSON built by DuckDB on read."""
    files = con.execute(
        "SELECT file_sha256, read_options_hash, path, rejects_path, columns, source_file, "
        "first_run_id, ingested_at FROM bronze_files WHERE blueprint = ? ORDER BY ingested_at, path",
        [bp],
    ).fetchall()
    parts = []
    root = _root(con)
    for sha, options, stored, stored_rejects, columns, source, first, at in files:
        path = str(_located(root, stored))
        rejects = str(_located(root, stored_rejects)) if stored_rejects else None
        if not Path(path).is_file():
            log.warning("bronze file %s is missing; left out of bronze_%s", path, bp)
            continue
        head = f"{sql_text(sha)} AS file_sha256, {sql_text(options)} AS read_options_hash"
        tail = (
            f"{sql_text(source or '')} AS source_file, {sql_text(first or '')} AS first_run_id, "
            f"TIMESTAMP {sql_text(at.isoformat(sep=' '))} AS ingested_at"
        )
        pairs = ", ".join(f"{sql_text(c)}, {sql_name(c)}" for c in json.loads(columns))
        parts.append(
            f"SELECT {head}, source_row, source_line, json_object({pairs})::JSON AS raw, {tail} "
            f"FROM read_parquet({sql_text(path)})"
        )
        if rejects and Path(rejects).is_file():
            parts.append(
                f"SELECT {head}, source_row, source_line, raw::JSON AS raw, {tail} "
                f"FROM read_parquet({sql_text(rejects)})"
            )
    if _is_base_table(con, f"bronze_{bp}_legacy"):
        parts.append(f"SELECT * FROM {quote_ident(f'bronze_{bp}_legacy')}")
    body = "\nUNION ALL\n".join(parts) if parts else _empty_select(_BRONZE_TYPES)
    con.execute(f"CREATE OR REPLACE VIEW {quote_ident(f'bronze_{bp}')} AS {body}")


def _refresh_processed_view(con: duckdb.DuckDBPyConnection, blueprint: Blueprint) -> None:
    """``<bp>_processed``: the Parquet file of every COMPLETED run, ``run_id`` added on read."""
    bp = blueprint.name
    schema = blueprint.processed_schema()
    types = {
        name: "JSON" if name == "extras" else _duck_type(dtype) for name, dtype in schema.items()
    }
    runs = con.execute(
        "SELECT r.run_id, f.path FROM runs r JOIN processed_files f USING (run_id) "
        "WHERE r.blueprint = ? AND r.state = 'COMPLETED' ORDER BY r.finished_at, r.run_id",
        [bp],
    ).fetchall()
    parts = []
    root = _root(con)
    for run_id, stored in runs:
        path = str(_located(root, stored))
        if not Path(path).is_file():
            log.warning(
                "run %s: processed file %s is missing; left out of %s_processed", run_id, path, bp
            )
            continue
        present = set(pl.read_parquet_schema(path))
        cols = ", ".join(
            f"CAST({sql_name(n) if n in present else 'NULL'} AS {t}) AS {sql_name(n)}"
            for n, t in types.items()
        )
        parts.append(
            f"SELECT {sql_text(run_id)} AS run_id, {cols} FROM read_parquet({sql_text(path)})"
        )
    if _is_base_table(con, f"{bp}_processed_legacy"):
        cols = ", ".join(sql_name(n) for n in types)
        parts.append(f"SELECT run_id, {cols} FROM {quote_ident(f'{bp}_processed_legacy')}")
    body = "\nUNION ALL\n".join(parts) if parts else _empty_select({"run_id": "VARCHAR", **types})
    con.execute(f"CREATE OR REPLACE VIEW {quote_ident(f'{bp}_processed')} AS {body}")


def ensure_blueprint_tables(con: duckdb.DuckDBPyConnection, blueprint: Blueprint) -> None:
    """Create ``quarantine_<bp>`` and the views ``bronze_<bp>``, ``<bp>_processed``, ``<bp>_latest``, ``bronze_<bp>_status``.

    Bronze and processed rows stay in their immutable Parquet files (written once by the
    run that produced them); the views read them, so a 1 GB load costs a rename, not a copy.
    Tables of those names from warehouses before schema version 2 are kept as
    ``bronze_<bp>_legacy`` / ``<bp>_processed_legacy`` and read by the same views.
    """
    _ensure_tables(con, blueprint.name)
    _refresh_views(con, blueprint)


def _ensure_tables(con: duckdb.DuckDBPyConnection, bp: str) -> None:
    """``quarantine_<bp>``, and the pre-version-2 bronze/processed tables moved aside as legacy."""
    for name in (f"bronze_{bp}", f"{bp}_processed"):
        if _is_base_table(con, name):
            con.execute(
                f"ALTER TABLE {quote_ident(name)} RENAME TO {quote_ident(name + '_legacy')}"
            )
    con.execute(
        f"""CREATE TABLE IF NOT EXISTS {quote_ident(f"quarantine_{bp}")} (
            run_id VARCHAR NOT NULL, stage VARCHAR NOT NULL, source_row BIGINT,
            source_line BIGINT, raw JSON, reasons VARCHAR[])"""
    )


def _refresh_views(con: duckdb.DuckDBPyConnection, blueprint: Blueprint) -> None:
    """Rebuild a blueprint's four views from the registries (after each commit)."""
    bp = blueprint.name
    bronze, quarantine = quote_ident(f"bronze_{bp}"), quote_ident(f"quarantine_{bp}")
    processed, latest = quote_ident(f"{bp}_processed"), quote_ident(f"{bp}_latest")
    status = quote_ident(f"bronze_{bp}_status")
    _refresh_bronze_view(con, bp)
    _refresh_processed_view(con, blueprint)
    con.execute(
        f"""CREATE OR REPLACE VIEW {latest} AS SELECT * FROM {processed} WHERE run_id = (
            SELECT run_id FROM runs WHERE blueprint = '{bp}' AND state = 'COMPLETED'
            ORDER BY finished_at DESC, run_id DESC LIMIT 1)"""
    )
    by_dataset = quote_ident(f"{bp}_latest_by_dataset")
    con.execute(
        f"""CREATE OR REPLACE VIEW {by_dataset} AS
        WITH newest AS (
            SELECT run_id, dataset, row_number() OVER (
                PARTITION BY dataset ORDER BY finished_at DESC, run_id DESC) AS rn
            FROM runs WHERE blueprint = '{bp}' AND state = 'COMPLETED'
        )
        SELECT n.dataset, p.* FROM {processed} p JOIN newest n ON n.run_id = p.run_id AND n.rn = 1"""
    )
    con.execute(
        f"""CREATE OR REPLACE VIEW {status} AS
        WITH latest AS (
            SELECT run_id, input_sha256, json_extract_string(read_options, '$.hash') AS options_hash,
                   row_number() OVER (PARTITION BY input_sha256, json_extract_string(read_options, '$.hash')
                                      ORDER BY finished_at DESC, run_id DESC) AS rn
            FROM runs
            WHERE blueprint = '{bp}'
              AND (state = 'COMPLETED' OR (state = 'FAILED' AND error LIKE '%quality gate failed%'))
        )
        SELECT b.*, l.run_id AS status_run_id,
               CASE WHEN l.run_id IS NULL THEN NULL
                    WHEN q.source_row IS NULL THEN 'valid' ELSE 'invalid' END AS validation_status,
               array_to_string(q.reasons, ', ') AS error_message
        FROM {bronze} b
        LEFT JOIN latest l
          ON l.input_sha256 = b.file_sha256 AND l.options_hash = b.read_options_hash AND l.rn = 1
        LEFT JOIN {quarantine} q ON q.run_id = l.run_id AND q.source_row = b.source_row"""
    )


# --------------------------------------------------------------------------- run lifecycle


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, default=str, sort_keys=True)


def start_run(warehouse: str | Path, record: dict[str, Any], *, state: str = "IN_PROGRESS") -> None:
    """Insert (or move forward) a run row in one short transaction."""
    fields = {
        "run_id": record["run_id"],
        "blueprint": record["blueprint"],
        "state": state,
        "input_path": record.get("input_path"),
        "dataset": record.get("dataset") or dataset_name(record.get("input_path") or ""),
        "params": _json(record.get("params")),
        "versions": _json(record.get("versions")),
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started_at": record.get("started_at") or utcnow(),
        "outputs": _json(record.get("outputs")),
    }
    cols = ", ".join(quote_ident(k) for k in fields)
    marks = ", ".join("?" for _ in fields)
    updates = ", ".join(
        f"{quote_ident(k)} = excluded.{quote_ident(k)}" for k in fields if k != "run_id"
    )
    with connect(warehouse) as con:
        con.execute(
            f"INSERT INTO runs ({cols}) VALUES ({marks}) ON CONFLICT (run_id) DO UPDATE SET {updates}",
            list(fields.values()),
        )


def note_params(warehouse: str | Path, run_id: str, **values: Any) -> None:
    """Add keys to a run's ``params`` (e.g. ``rerun_of``) in one short transaction."""
    with connect(warehouse) as con:
        row = con.execute("SELECT params FROM runs WHERE run_id = ?", [run_id]).fetchall()
        params = json.loads(row[0][0]) if row and row[0][0] else {}
        params.update(values)
        con.execute("UPDATE runs SET params = ? WHERE run_id = ?", [_json(params), run_id])


def end_run(
    warehouse: str | Path,
    run_id: str,
    state: str,
    *,
    error: str | None = None,
    stage_seconds: dict[str, float] | None = None,
    fields: dict[str, Any] | None = None,
) -> None:
    """Mark a run FAILED or CANCELLED (no data loaded) and remove its staged files."""
    with connect(warehouse) as con:
        con.execute("BEGIN")
        row = con.execute("SELECT outputs FROM runs WHERE run_id = ?", [run_id]).fetchall()
        sets = {"state": state, "finished_at": utcnow(), "error": error}
        for key, value in (fields or {}).items():
            sets[key] = _json(value) if isinstance(value, (dict, list)) else value
        assignments = ", ".join(f"{quote_ident(k)} = ?" for k in sets)
        con.execute(f"UPDATE runs SET {assignments} WHERE run_id = ?", [*sets.values(), run_id])
        _insert_timings(con, run_id, stage_seconds or {})
        con.execute("COMMIT")
    if row and row[0][0]:
        _remove_outputs(json.loads(row[0][0]))


def _insert_timings(
    con: duckdb.DuckDBPyConnection, run_id: str, stage_seconds: dict[str, float]
) -> None:
    con.execute("DELETE FROM stage_timings WHERE run_id = ?", [run_id])
    if stage_seconds:
        con.executemany(
            "INSERT INTO stage_timings VALUES (?, ?, ?)",
            [(run_id, stage, float(sec)) for stage, sec in stage_seconds.items()],
        )


def record_timings(warehouse: str | Path, run_id: str, stage_seconds: dict[str, float]) -> None:
    """Replace a run's stage timings (the store and report stages end after the commit)."""
    with connect(warehouse) as con:
        con.execute("BEGIN")
        _insert_timings(con, run_id, stage_seconds)
        con.execute("COMMIT")


@dataclass(frozen=True)
class BronzeFiles:
    """A run's staged bronze files and the file's own column names.

    ``text``: ``source_row``, ``source_line`` and the columns as text; ``rejects``: records
    rejected at ingest (``source_row``, ``source_line``, ``raw`` JSON), or None.
    """

    text: Path
    rejects: Path | None
    columns: list[str]


def _place_bronze(
    con: duckdb.DuckDBPyConnection,
    bp: str,
    run: dict[str, Any],
    bronze: BronzeFiles,
    bronze_dir: Path,
    placed: list[Path],
) -> None:
    """Move a file's bronze into ``bronze_dir`` and register it, unless that file and options are there."""
    sha, options = run["input_sha256"], run["read_options_hash"]
    known = con.execute(
        "SELECT 1 FROM bronze_files WHERE blueprint = ? AND file_sha256 = ? AND read_options_hash = ?",
        [bp, sha, options],
    ).fetchall()
    legacy = f"bronze_{bp}_legacy"
    if not known and _is_base_table(con, legacy):  # loaded before schema version 2
        known = con.execute(
            f"SELECT 1 FROM {quote_ident(legacy)} WHERE file_sha256 = ? AND read_options_hash = ? "
            "LIMIT 1",
            [sha, options],
        ).fetchall()
    if known:
        return
    dest = (bronze_dir / bp).resolve()
    dest.mkdir(parents=True, exist_ok=True)
    stem = f"{sha[:16]}-{options[:12]}"
    text = dest / f"{stem}.parquet"
    os.replace(bronze.text, text)
    placed.append(text)
    rejects = None
    if bronze.rejects is not None:
        rejects = dest / f"{stem}.rejects.parquet"
        os.replace(bronze.rejects, rejects)
        placed.append(rejects)
    con.execute(
        "INSERT INTO bronze_files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            bp,
            sha,
            options,
            _stored_path(con, text),
            _stored_path(con, rejects) if rejects else None,
            json.dumps(bronze.columns),
            run["input_path"],
            run["run_id"],
            utcnow(),
        ],
    )


def commit_run(
    warehouse: str | Path,
    blueprint: Blueprint,
    run: dict[str, Any],
    *,
    bronze: BronzeFiles,
    bronze_dir: Path,
    quarantine: Path,
    issues: Sequence[dict[str, Any]],
    profiles: pl.DataFrame | None,
    staged_parquet: Path | None,
    final_parquet: Path | None,
    stage_seconds: dict[str, float],
    extra_files: Sequence[tuple[Path, Path]] = (),
) -> None:
    """The commit point: rename the Parquet into place and record everything in one transaction.

    ``run`` holds the runs-table fields to set (state, counts, score, outputs, ...). When
    ``staged_parquet`` is None (a quality-gate failure) no processed rows are added.
    ``extra_files`` (staged, final) pairs, such as the model matrix, move with the Parquet.
    Bronze moves to ``bronze_dir/<bp>/`` the first time a (file, read options) pair is seen.
    Bronze and processed rows are not copied into DuckDB: their views read the Parquet.
    """
    run_id = run["run_id"]
    bp = blueprint.name
    placed: list[Path] = []
    with connect(warehouse) as con:
        try:
            con.execute("BEGIN")
            _ensure_tables(con, bp)
            if staged_parquet is not None and final_parquet is not None:
                final_parquet.parent.mkdir(parents=True, exist_ok=True)
                os.replace(staged_parquet, final_parquet)
                placed.append(final_parquet)
                con.execute(
                    "INSERT OR REPLACE INTO processed_files VALUES (?, ?, ?)",
                    [bp, run_id, _stored_path(con, final_parquet)],
                )
                for staged, final in extra_files:
                    final.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(staged, final)
                    placed.append(final)
                pause_for_tests("commit")  # files in place, transaction still open
            _place_bronze(con, bp, run, bronze, Path(bronze_dir), placed)
            con.execute(
                f"""INSERT INTO {quote_ident(f"quarantine_{bp}")}
                SELECT ?, stage, source_row, source_line, raw::JSON, reasons FROM read_parquet(?)""",
                [run_id, str(quarantine)],
            )
            if issues:
                con.executemany(
                    "INSERT INTO quality_issues VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (
                            run_id,
                            i["severity"],
                            i["column"],
                            i["check"],
                            i["observed"],
                            i["threshold"],
                            i["rows_affected"],
                            _json(i["examples"]),
                            i["message"],
                        )
                        for i in issues
                    ],
                )
            if profiles is not None and profiles.height:
                con.register("__profiles", profiles.to_arrow())
                con.execute(
                    'INSERT INTO column_profiles SELECT ?, "column", dtype, nulls, "distinct", "min", "max", '
                    "mean, median, hist_edges::JSON, hist_counts::JSON FROM __profiles",
                    [run_id],
                )
                con.unregister("__profiles")
            _insert_timings(con, run_id, stage_seconds)
            sets = dict(run)
            sets.pop("run_id")
            sets.pop("read_options_hash", None)
            sets["finished_at"] = utcnow()
            for key in ("params", "score_parts", "outputs", "read_options", "versions"):
                if key in sets:
                    sets[key] = _json(sets[key])
            assignments = ", ".join(f"{quote_ident(k)} = ?" for k in sets)
            con.execute(f"UPDATE runs SET {assignments} WHERE run_id = ?", [*sets.values(), run_id])
            _refresh_views(con, blueprint)
            con.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(Exception):
                con.execute("ROLLBACK")
            for final in placed:
                final.unlink(missing_ok=True)
            raise


# --------------------------------------------------------------------------- reading back


def query(sql: str, *, warehouse: str | Path = DEFAULT_WAREHOUSE) -> pl.DataFrame:
    """Run SQL against the warehouse (read-only) and return a polars DataFrame.

    Examples
    --------
    >>> import tracer_kit as tk
    >>> tk.query("SELECT state, count(*) AS n FROM runs GROUP BY state")  # doctest: +SKIP
    """
    with connect(warehouse, read_only=True) as con:
        try:
            return con.sql(sql).pl()
        except duckdb.Error as exc:
            msg = f"query failed: {str(exc).splitlines()[0]}"
            raise TracerError(msg) from None
        except AttributeError:
            msg = "query returned no rows to read (use a SELECT)"
            raise TracerError(msg) from None


def quarantine_rows(
    run_id: str, blueprint: str, *, warehouse: str | Path = DEFAULT_WAREHOUSE, limit: int = 100
) -> tuple[int, pl.DataFrame]:
    """How many rows a run quarantined, and the first ``limit`` by ``source_row`` with their reasons."""
    with connect(warehouse, read_only=True) as con:
        if not _is_base_table(con, f"quarantine_{blueprint}"):
            return 0, pl.DataFrame(schema=QUARANTINE_VIEW_SCHEMA)
        count = con.execute(
            f"SELECT count(*) FROM {quote_ident(f'quarantine_{blueprint}')} WHERE run_id = $1",
            [run_id],
        ).fetchall()[0][0]
        return int(count), _quarantine_sample(con, run_id, blueprint, limit)


def _quarantine_sample(
    con: duckdb.DuckDBPyConnection, run_id: str, blueprint: str, limit: int
) -> pl.DataFrame:
    """The first ``limit`` quarantined rows of a run: position, reasons, stage and raw record.

    Values of the run's personal columns are replaced by ``HIDDEN`` in the raw records.
    """
    sample = con.sql(
        "SELECT source_row, source_line, array_to_string(reasons, ', ') AS reasons, "
        f"stage, raw::VARCHAR AS raw FROM {quote_ident(f'quarantine_{blueprint}')} "
        f"WHERE run_id = $1 ORDER BY source_row NULLS LAST LIMIT {int(limit)}",
        params=[run_id],
    ).pl()
    found = con.execute(
        "SELECT json_extract(params, '$.personal_columns')::VARCHAR FROM runs WHERE run_id = ?",
        [run_id],
    ).fetchall()
    hidden = json.loads(found[0][0]) if found and found[0][0] else []
    if not hidden or sample.height == 0:
        return sample
    return sample.with_columns(
        pl.col("raw").map_elements(lambda raw: _hide(raw, hidden), pl.String)
    )


#: What a personal value is shown as.
HIDDEN = "(hidden: personal)"


def _hide(raw: str, names: Sequence[str]) -> str:
    record = json.loads(raw)
    if isinstance(record, dict):
        # a line rejected at ingest ("_line") holds every value, personal ones too
        hide = {*names, "_line"}
        record = {k: HIDDEN if k in hide and v is not None else v for k, v in record.items()}
    return json.dumps(record, ensure_ascii=False)


QUARANTINE_VIEW_SCHEMA = {
    "source_row": pl.Int64(),
    "source_line": pl.Int64(),
    "reasons": pl.String(),
    "stage": pl.String(),
    "raw": pl.String(),
}


def run_row(run_id: str, *, warehouse: str | Path = DEFAULT_WAREHOUSE) -> dict[str, Any]:
    """One row of ``runs`` as a dict with its JSON columns decoded, plus its stage timings and issues."""
    with connect(warehouse, read_only=True) as con:
        rows = con.sql("SELECT * FROM runs WHERE run_id = $1", params=[run_id]).pl()
        if rows.height == 0:
            msg = f"no run {run_id!r} in {warehouse}; `tracer runs` lists the runs"
            raise TracerError(msg)
        timings = con.sql(
            "SELECT stage, seconds FROM stage_timings WHERE run_id = $1", params=[run_id]
        ).pl()
        issues = con.sql(
            "SELECT * EXCLUDE (run_id) FROM quality_issues WHERE run_id = $1", params=[run_id]
        ).pl()
    row = rows.row(0, named=True)
    for key in ("params", "score_parts", "outputs", "read_options", "versions"):
        row[key] = json.loads(row[key]) if row[key] else {}
    row["stage_seconds"] = dict(timings.iter_rows())
    row["issues"] = [
        {**r, "examples": json.loads(r["examples"]) if r["examples"] else []}
        for r in issues.iter_rows(named=True)
    ]
    return row


# --------------------------------------------------------------------------- removing runs


@dataclass(frozen=True)
class Removal:
    """What deleting runs removes: the runs, the files (with their size) and the bronze loads."""

    run_ids: tuple[str, ...]
    files: tuple[str, ...]
    bytes: int
    bronze_loads: int

    def summary(self) -> str:
        """One line for people."""
        return (
            f"{len(self.run_ids)} run(s), {len(self.files)} file(s) ({self.bytes / 1e6:.1f} MB), "
            f"{self.bronze_loads} bronze load(s) no other run uses"
        )


_RUN_TABLES = ("stage_timings", "quality_issues", "column_profiles", "processed_files")


def _run_files(outputs: dict[str, Any]) -> list[Path]:
    """A run's own files: processed rows, model matrix, preprocessor, and its report folder."""
    files = [Path(outputs[k]) for k in output_keys() if outputs.get(k)]
    if outputs.get("report"):
        files.append(Path(outputs["report"]).parent)
    return [p for p in files if p.exists()]


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def _orphaned_bronze(con: duckdb.DuckDBPyConnection, run_ids: list[str]) -> list[tuple]:
    """Bronze loads that only the given runs use (no remaining run read that file so)."""
    marks = ", ".join("?" for _ in run_ids)
    return con.execute(
        f"""SELECT b.blueprint, b.file_sha256, b.read_options_hash, b.path, b.rejects_path
        FROM bronze_files b WHERE EXISTS (
            SELECT 1 FROM runs r WHERE r.run_id IN ({marks}) AND r.blueprint = b.blueprint
              AND r.input_sha256 = b.file_sha256
              AND json_extract_string(r.read_options, '$.hash') = b.read_options_hash)
        AND NOT EXISTS (
            SELECT 1 FROM runs r WHERE r.run_id NOT IN ({marks}) AND r.blueprint = b.blueprint
              AND r.input_sha256 = b.file_sha256
              AND json_extract_string(r.read_options, '$.hash') = b.read_options_hash)""",
        [*run_ids, *run_ids],
    ).fetchall()


def delete_runs(
    run_ids: Sequence[str], *, warehouse: str | Path = DEFAULT_WAREHOUSE, dry_run: bool = False
) -> Removal:
    """Delete runs: their rows in every table and their files, in one transaction.

    Views are rebuilt in the same transaction; a bronze load is removed only when no
    remaining run read that file with those options. Files go after the commit, so a crash
    can leave an unused file behind but never a row pointing at a missing one. A run still
    in progress in a live process cannot be deleted.

    Raises
    ------
    TracerError
        For an unknown run id or a run that is still going.
    """
    from tracer_kit.blueprints import get_blueprint

    ids = list(dict.fromkeys(run_ids))
    with connect(warehouse) as con:
        rows = {
            r[0]: r
            for r in con.execute(
                f"SELECT run_id, blueprint, state, pid, host, outputs FROM runs "
                f"WHERE run_id IN ({', '.join('?' for _ in ids)})",
                ids,
            ).fetchall()
        } if ids else {}  # fmt: skip
        unknown = [i for i in ids if i not in rows]
        if unknown:
            msg = f"no run {unknown[0]!r} in {warehouse}; `tracer runs` lists the runs"
            raise TracerError(msg)
        for run_id, _, state, pid, host, _ in rows.values():
            if state in ACTIVE_STATES and host == socket.gethostname() and _pid_alive(pid):
                raise TracerError(f"run {run_id} is still {state} (process {pid}); let it finish")
        files: list[Path] = []
        for *_, outputs in rows.values():
            files += _run_files(json.loads(outputs) if outputs else {})
        bronze = _orphaned_bronze(con, ids) if ids else []
        root = _root(con)
        for *_, path, rejects in bronze:
            files += [p for s in (path, rejects) if s and (p := _located(root, s)).exists()]
        removal = Removal(tuple(ids), tuple(map(str, files)), sum(map(_size, files)), len(bronze))
        if dry_run or not ids:
            return removal
        marks = ", ".join("?" for _ in ids)
        con.execute("BEGIN")
        for table in _RUN_TABLES:
            con.execute(f"DELETE FROM {table} WHERE run_id IN ({marks})", ids)
        blueprints = sorted({r[1] for r in rows.values()})
        for bp in blueprints:
            if _is_base_table(con, f"quarantine_{bp}"):
                con.execute(
                    f"DELETE FROM {quote_ident(f'quarantine_{bp}')} WHERE run_id IN ({marks})", ids
                )
        for bp, sha, options, *_ in bronze:
            con.execute(
                "DELETE FROM bronze_files WHERE blueprint = ? AND file_sha256 = ? AND read_options_hash = ?",
                [bp, sha, options],
            )
        con.execute(f"DELETE FROM runs WHERE run_id IN ({marks})", ids)
        for bp in blueprints:
            with contextlib.suppress(TracerError):  # a custom blueprint no longer installed
                _refresh_views(con, get_blueprint(bp))
        con.execute("COMMIT")
    for path in files:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    return removal


def runs_to_prune(
    *,
    keep_last: int,
    dataset: str | None = None,
    older_than_days: float | None = None,
    warehouse: str | Path = DEFAULT_WAREHOUSE,
) -> list[str]:
    """Runs beyond the newest ``keep_last`` of each (blueprint, dataset), optionally only older ones."""
    if keep_last < 0:
        raise TracerError(f"--keep-last {keep_last} should be 0 or more")
    where, params = ["state NOT IN ('PENDING', 'IN_PROGRESS')"], []
    if dataset is not None:
        where.append("dataset = ?")
        params.append(dataset)
    if older_than_days is not None:
        where.append("started_at < ?")
        params.append(utcnow() - dt.timedelta(days=older_than_days))
    with connect(warehouse, read_only=True) as con:
        rows = con.execute(
            f"""SELECT run_id FROM (
                SELECT run_id, started_at, row_number() OVER (
                    PARTITION BY blueprint, dataset ORDER BY started_at DESC, run_id DESC) AS n
                FROM runs WHERE state NOT IN ('PENDING', 'IN_PROGRESS')
                {"AND dataset = ?" if dataset is not None else ""}
            ) ranked WHERE n > ? AND run_id IN (SELECT run_id FROM runs WHERE {" AND ".join(where)})
            ORDER BY started_at, run_id""",
            [*([dataset] if dataset is not None else []), keep_last, *params],
        ).fetchall()
    return [r[0] for r in rows]


# --------------------------------------------------------------------------- reads for the report


@dataclass
class ReportInputs:
    """What a run's report shows beyond its ``runs`` row, read in one short connection."""

    profiles: list[dict[str, Any]]
    quarantine_by_reason: list[dict[str, Any]]
    quarantine_sample: list[dict[str, Any]]
    history: pl.DataFrame  # scores of the runs of the same blueprint and dataset
    previous: tuple[str, int] | None  # the previous completed run of that dataset, its rows_out
    previous_profiles: list[dict[str, Any]] | None


def _profiles(con: duckdb.DuckDBPyConnection, run_id: str) -> list[dict[str, Any]]:
    df = con.sql(
        "SELECT * EXCLUDE (run_id) FROM column_profiles WHERE run_id = $1", params=[run_id]
    ).pl()
    rows = []
    for r in df.iter_rows(named=True):
        r["hist_edges"] = json.loads(r["hist_edges"]) if r["hist_edges"] else []
        r["hist_counts"] = json.loads(r["hist_counts"]) if r["hist_counts"] else []
        rows.append(r)
    return rows


def _quarantine_summary(
    con: duckdb.DuckDBPyConnection, run_id: str, blueprint: str, limit: int = 20
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    if not _is_base_table(con, f"quarantine_{blueprint}"):
        return [], []
    table = quote_ident(f"quarantine_{blueprint}")
    by_reason = con.sql(
        f"SELECT reason, count(*) AS rows FROM (SELECT unnest(reasons) AS reason FROM {table} "
        "WHERE run_id = $1) GROUP BY reason ORDER BY rows DESC, reason",
        params=[run_id],
    ).pl()
    sample = _quarantine_sample(con, run_id, blueprint, limit)
    return by_reason.to_dicts(), sample.to_dicts()


def report_inputs(
    run: dict[str, Any], *, warehouse: str | Path = DEFAULT_WAREHOUSE
) -> ReportInputs:
    """Profiles, quarantine, score history and the previous run of the same dataset, for a report."""
    same = "blueprint = $1 AND dataset IS NOT DISTINCT FROM $2"
    with connect(warehouse, read_only=True) as con:
        profiles = _profiles(con, run["run_id"])
        by_reason, sample = _quarantine_summary(con, run["run_id"], run["blueprint"])
        history = con.sql(
            f"SELECT run_id, started_at, state, quality_score FROM runs WHERE {same} "
            "AND quality_score IS NOT NULL ORDER BY started_at, run_id",
            params=[run["blueprint"], run.get("dataset")],
        ).pl()
        rows = con.sql(
            f"SELECT run_id, rows_out FROM runs WHERE {same} AND state = 'COMPLETED' "
            "AND run_id <> $3 AND started_at <= $4 ORDER BY started_at DESC, run_id DESC LIMIT 1",
            params=[run["blueprint"], run.get("dataset"), run["run_id"], run["started_at"]],
        ).fetchall()
        previous = (rows[0][0], rows[0][1] or 0) if rows else None
        before = _profiles(con, previous[0]) if previous is not None else None
    return ReportInputs(profiles, by_reason, sample, history, previous, before)


def recent_runs(limit: int = 20, *, warehouse: str | Path = DEFAULT_WAREHOUSE) -> pl.DataFrame:
    """The newest runs, one row each: what ran, on which file and dataset, with what result."""
    if Path(warehouse).exists():
        open_warehouse(warehouse)
    with connect(warehouse, read_only=True) as con:
        return con.sql(
            "SELECT run_id, blueprint, dataset, state, input_path, started_at, rows_in, rows_valid, "
            "rows_quarantined, rows_out, quality_score, error FROM runs "
            f"ORDER BY started_at DESC, run_id DESC LIMIT {int(limit)}"
        ).pl()
