"""The warehouse's schema and its migrations; opening a warehouse migrates it and recovers dead runs.

Each migration runs once, in its own transaction, recorded in ``schema_version``; a column
added later reads as null for older runs (``dataset`` is backfilled from the input path).
"""

from __future__ import annotations

import json
import logging
import socket
from pathlib import Path

import duckdb
import polars as pl

from tracer_kit.record import RECORD_SCHEMA_VERSION, GateVerdict, RunRecord
from tracer_kit.warehouse.connection import (
    connect,
    first_time_held,
    json_text,
    located_path,
    utcnow,
    warehouse_root,
)
from tracer_kit.warehouse.runs import dataset_name, pid_alive, remove_outputs
from tracer_kit.warehouse.tables import processed_types, refresh_views
from tracer_kit.workspace import DEFAULT_WAREHOUSE

__all__ = ["MIGRATIONS", "open_warehouse"]

log = logging.getLogger("tracer_kit")

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
    (
        5,
        "CREATE TABLE IF NOT EXISTS processed_schemas (blueprint VARCHAR PRIMARY KEY, columns JSON);",
    ),
    (
        6,
        """
        CREATE TABLE IF NOT EXISTS models (
            run_id VARCHAR PRIMARY KEY, blueprint VARCHAR NOT NULL, model_kind VARCHAR NOT NULL,
            parameters JSON, metrics JSON, training_rows BIGINT, model_sha256 VARCHAR,
            created_at TIMESTAMP
        );
        CREATE TABLE IF NOT EXISTS prediction_files (
            blueprint VARCHAR NOT NULL, run_id VARCHAR PRIMARY KEY, path VARCHAR NOT NULL,
            model_run_id VARCHAR NOT NULL
        );
        """,
    ),
    # an API source's pages (url, requested_at, status, first_row, rows): each record's position
    (7, "ALTER TABLE bronze_files ADD COLUMN IF NOT EXISTS pages JSON;"),
    # the SHA-256 of every file a run placed, for `tracer verify` and `tracer backup`
    (
        8,
        """
        CREATE TABLE IF NOT EXISTS file_hashes (
            path VARCHAR PRIMARY KEY, run_id VARCHAR, sha256 VARCHAR NOT NULL, bytes BIGINT,
            recorded_at TIMESTAMP
        );
        """,
    ),
    # runs.params holds a typed RunRecord (schema_version, the gate's verdict): see
    # _typed_records; views are rebuilt (their bronze status reads the verdict)
    (9, "DELETE FROM warehouse_meta WHERE key = 'root';"),
    # `tracer serve keys`: API keys, only their SHA-256 kept (the key is shown once)
    (
        10,
        """
        CREATE TABLE IF NOT EXISTS api_keys (
            name VARCHAR PRIMARY KEY, sha256 VARCHAR NOT NULL UNIQUE, created_at TIMESTAMP,
            revoked_at TIMESTAMP
        );
        """,
    ),
    # the server's schedules, alert rules given through the API, alerts sent, inbox files seen
    (
        11,
        """
        CREATE TABLE IF NOT EXISTS schedules (
            name VARCHAR PRIMARY KEY, cron VARCHAR NOT NULL, source VARCHAR NOT NULL,
            blueprint VARCHAR NOT NULL, dataset VARCHAR, notebook BOOLEAN NOT NULL,
            config_file VARCHAR, paused BOOLEAN NOT NULL, created_at TIMESTAMP,
            updated_at TIMESTAMP, last_due_at TIMESTAMP, last_fired_at TIMESTAMP,
            last_runs JSON, last_state VARCHAR, note VARCHAR, seen JSON
        );
        CREATE TABLE IF NOT EXISTS alert_rules (
            name VARCHAR PRIMARY KEY, rule JSON NOT NULL, created_at TIMESTAMP
        );
        CREATE TABLE IF NOT EXISTS alerts (
            alert_id VARCHAR PRIMARY KEY, created_at TIMESTAMP, rule VARCHAR NOT NULL,
            event VARCHAR NOT NULL, dataset VARCHAR, run_id VARCHAR, schedule VARCHAR,
            destination VARCHAR NOT NULL, target VARCHAR, status VARCHAR NOT NULL,
            attempts INTEGER NOT NULL, error VARCHAR, summary VARCHAR, sent_at TIMESTAMP
        );
        CREATE TABLE IF NOT EXISTS inbox_files (
            received_at TIMESTAMP, blueprint VARCHAR NOT NULL, name VARCHAR NOT NULL,
            sha256 VARCHAR NOT NULL, bytes BIGINT, run_id VARCHAR, outcome VARCHAR NOT NULL,
            moved_to VARCHAR
        );
        """,
    ),
]

#: How a run stopped at its gate was told apart before its record said so (only read here).
_LEGACY_GATE = "quality gate failed: "


def _typed_records(con: duckdb.DuckDBPyConnection) -> None:
    """Rewrite every run's ``params`` as a :class:`RunRecord` of the current schema version.

    A record from before version 1 gets its gate verdict from what the run recorded then:
    a completed run passed; a failed run whose error says its gate failed lists the reasons.
    """
    rows = con.execute("SELECT run_id, params, state, error FROM runs").fetchall()
    for run_id, params, state, error in rows:
        record = RunRecord.from_stored(params)
        if record.gate is None and state == "COMPLETED":
            record.gate = GateVerdict(passed=True)
        elif record.gate is None and error and _LEGACY_GATE in error:
            record.gate = GateVerdict(
                passed=False, failures=error.split(_LEGACY_GATE)[-1].split("; ")
            )
        record.schema_version = RECORD_SCHEMA_VERSION
        con.execute("UPDATE runs SET params = ? WHERE run_id = ?", [json_text(record), run_id])


def _backfill_datasets(con: duckdb.DuckDBPyConnection) -> None:
    """Runs recorded before ``dataset`` existed get it from their input path."""
    rows = con.execute("SELECT run_id, input_path FROM runs WHERE dataset IS NULL").fetchall()
    for run_id, input_path in rows:
        con.execute(
            "UPDATE runs SET dataset = ? WHERE run_id = ?",
            [dataset_name(input_path or run_id), run_id],
        )


def _backfill_processed_types(con: duckdb.DuckDBPyConnection) -> None:
    """Warehouses from before ``processed_schemas``: each blueprint's columns from its newest Parquet."""
    rows = con.execute(
        "SELECT f.blueprint, f.path FROM processed_files f JOIN runs r USING (run_id) "
        "ORDER BY r.finished_at DESC, r.run_id DESC"
    ).fetchall()
    root = warehouse_root(con)
    done: set[str] = set()
    for bp, stored in rows:
        path = located_path(root, stored)
        if bp in done or not path.is_file():
            continue
        types = processed_types(pl.read_parquet_schema(path))
        con.execute("INSERT INTO processed_schemas VALUES (?, ?)", [bp, json.dumps(types)])
        done.add(bp)


def _migrate(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER, applied_at TIMESTAMP)")
    current = con.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchall()[0][0]
    for version, sql in MIGRATIONS:
        if version > current:
            con.execute("BEGIN")
            con.execute(sql)
            if version == 4:
                _backfill_datasets(con)
            if version == 5:
                _backfill_processed_types(con)
            if version == 9:
                _typed_records(con)
            con.execute("INSERT INTO schema_version VALUES (?, ?)", [version, utcnow()])
            con.execute("COMMIT")


def _recover(con: duckdb.DuckDBPyConnection) -> None:
    host = socket.gethostname()
    rows = con.execute(
        "SELECT run_id, pid FROM runs WHERE state IN ('IN_PROGRESS', 'PENDING') AND host = ?",
        [host],
    ).fetchall()
    dead = [run_id for run_id, pid in rows if not pid_alive(pid)]
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
        remove_outputs(json.loads(outputs) if outputs else {})


def open_warehouse(warehouse: str | Path = DEFAULT_WAREHOUSE) -> None:
    """Create or migrate the warehouse and clean up after runs whose process died.

    When the warehouse's folder has moved since its views were built (a project copied or
    mounted elsewhere), the views are rebuilt to read the Parquet files from there.
    """
    if not first_time_held(warehouse):  # (done once per holding() block)
        return
    with connect(warehouse) as con:
        _migrate(con)
        _recover(con)
        _follow_move(con)


def _follow_move(con: duckdb.DuckDBPyConnection) -> None:
    """Rebuild every blueprint's views when the warehouse is not where they were last built."""
    root = str(warehouse_root(con))
    rows = con.execute("SELECT value FROM warehouse_meta WHERE key = 'root'").fetchall()
    if rows and rows[0][0] == root:
        return
    names = con.execute(
        "SELECT blueprint FROM bronze_files UNION SELECT blueprint FROM processed_files"
    ).fetchall()
    con.execute("BEGIN")
    for (name,) in names:
        refresh_views(con, name)
    con.execute("INSERT OR REPLACE INTO warehouse_meta VALUES ('root', ?)", [root])
    con.execute("COMMIT")
