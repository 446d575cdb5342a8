"""A blueprint's tables and views: ``quarantine_<bp>``, ``bronze_<bp>``, ``<bp>_processed``, ``<bp>_latest``...

Bronze records and processed rows are not copied into DuckDB: each stays in the immutable
Parquet file written once by its run, registered in ``bronze_files`` / ``processed_files``,
and the views read them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path

import duckdb
import polars as pl

from tracer_kit.blueprints import Blueprint
from tracer_kit.warehouse.connection import (
    duckdb_type,
    is_base_table,
    located_path,
    parquet_schema,
    quote_ident,
    sql_name,
    sql_text,
    warehouse_root,
)
from tracer_kit.workspace import parquet_location

__all__ = [
    "FAILURES_TYPE",
    "QUARANTINE_INSERT",
    "ensure_blueprint_tables",
    "ensure_tables",
    "processed_types",
    "quarantine_select",
    "record_processed_types",
    "refresh_views",
]

log = logging.getLogger("tracer_kit")

_BRONZE_TYPES = {
    "file_sha256": "VARCHAR",
    "read_options_hash": "VARCHAR",
    "source_row": "BIGINT",
    "source_line": "BIGINT",
    "raw": "JSON",
    "source_file": "VARCHAR",
    "first_run_id": "VARCHAR",
    "ingested_at": "TIMESTAMP",
    "source_position": "JSON",
}


def _empty_select(types: dict[str, str]) -> str:
    """A SELECT with these columns and types and no rows (a view over no files yet)."""
    cols = ", ".join(f"NULL::{t} AS {sql_name(n)}" for n, t in types.items())
    return f"SELECT {cols} WHERE false"


def _positions(pages: str | None) -> tuple[str, str]:
    """An API load's join to its pages and the record's position; for a file, none (NULL)."""
    if not pages:
        return "", "NULL::JSON AS source_position"
    rows = ", ".join(
        f"({int(p['first_row'])}, {int(p['first_row']) + int(p['rows']) - 1}, "
        f"{sql_text(json.dumps({k: p[k] for k in ('url', 'requested_at', 'status')}))}::JSON)"
        for p in json.loads(pages)
        if int(p["rows"])
    )
    join = (
        f" LEFT JOIN (VALUES {rows}) AS _page(_first, _last, _position) "
        "ON source_row BETWEEN _page._first AND _page._last"
    )
    return join, "_page._position AS source_position"


def _refresh_bronze_view(con: duckdb.DuckDBPyConnection, bp: str) -> None:
    """``bronze_<bp>``: one SELECT per stored bronze file, the raw JSON built by DuckDB on read.

    ``source_position`` is where an API source's record came from (its page's URL, request
    time and HTTP status); null for files.
    """
    files = con.execute(
        "SELECT file_sha256, read_options_hash, path, rejects_path, columns, source_file, "
        "first_run_id, ingested_at, pages FROM bronze_files WHERE blueprint = ? "
        "ORDER BY ingested_at, path",
        [bp],
    ).fetchall()
    parts = []
    root = warehouse_root(con)
    for sha, options, stored, stored_rejects, columns, source, first, at, pages in files:
        path = parquet_location(located_path(root, stored))
        rejects = str(located_path(root, stored_rejects)) if stored_rejects else None
        if path is None:
            log.warning("bronze file %s is missing; left out of bronze_%s", stored, bp)
            continue
        head = f"{sql_text(sha)} AS file_sha256, {sql_text(options)} AS read_options_hash"
        tail = (
            f"{sql_text(source or '')} AS source_file, {sql_text(first or '')} AS first_run_id, "
            f"TIMESTAMP {sql_text(at.isoformat(sep=' '))} AS ingested_at"
        )
        join, position = _positions(pages)
        pairs = ", ".join(f"{sql_text(c)}, {sql_name(c)}" for c in json.loads(columns))
        parts.append(
            f"SELECT {head}, source_row, source_line, json_object({pairs})::JSON AS raw, {tail}, "
            f"{position} FROM read_parquet({sql_text(path)}){join}"
        )
        if rejects and Path(rejects).is_file():
            parts.append(
                f"SELECT {head}, source_row, source_line, raw::JSON AS raw, {tail}, {position} "
                f"FROM read_parquet({sql_text(rejects)}){join}"
            )
    if is_base_table(con, f"bronze_{bp}_legacy"):
        parts.append(
            f"SELECT *, NULL::JSON AS source_position FROM {quote_ident(f'bronze_{bp}_legacy')}"
        )
    body = "\nUNION ALL\n".join(parts) if parts else _empty_select(_BRONZE_TYPES)
    con.execute(f"CREATE OR REPLACE VIEW {quote_ident(f'bronze_{bp}')} AS {body}")


def processed_types(schema: Blueprint | Mapping[str, pl.DataType]) -> dict[str, str]:
    """DuckDB types of ``<bp>_processed``'s columns (without ``run_id``), from a blueprint or a
    processed Parquet's schema (``extras`` holds JSON text).
    """  # noqa: D205
    if isinstance(schema, Blueprint):
        schema = schema.processed_schema()
    return {n: "JSON" if n == "extras" else duckdb_type(t) for n, t in schema.items()}


def record_processed_types(con: duckdb.DuckDBPyConnection, blueprint: Blueprint) -> None:
    """Keep the processed columns in ``processed_schemas``: the views are rebuilt from it
    (after a move, a deletion) without asking the blueprint registry, which may run user code.
    """  # noqa: D205
    current = processed_types(blueprint)
    stored = _stored_types(con, blueprint.name)  # (a blueprint's other form keeps its columns)
    merged = {**current, **{k: v for k, v in stored.items() if k not in current}}
    con.execute(
        "INSERT OR REPLACE INTO processed_schemas VALUES (?, ?)",
        [blueprint.name, json.dumps(merged)],
    )


def _stored_types(con: duckdb.DuckDBPyConnection, bp: str) -> dict[str, str]:
    rows = con.execute("SELECT columns FROM processed_schemas WHERE blueprint = ?", [bp]).fetchall()
    return json.loads(rows[0][0]) if rows else {"source_row": "BIGINT"}


def _refresh_processed_view(con: duckdb.DuckDBPyConnection, bp: str) -> None:
    """``<bp>_processed``: the Parquet file of every COMPLETED run, ``run_id`` added on read."""
    types = _stored_types(con, bp)
    runs = con.execute(
        "SELECT r.run_id, f.path FROM runs r JOIN processed_files f USING (run_id) "
        "WHERE r.blueprint = ? AND r.state = 'COMPLETED' ORDER BY r.finished_at, r.run_id",
        [bp],
    ).fetchall()
    parts = []
    root = warehouse_root(con)
    for run_id, stored in runs:
        path = parquet_location(located_path(root, stored))
        if path is None:
            log.warning(
                "run %s: processed file %s is missing; left out of %s_processed", run_id, stored, bp
            )
            continue
        present = set(parquet_schema(located_path(root, stored)))
        cols = ", ".join(
            f"CAST({sql_name(n) if n in present else 'NULL'} AS {t}) AS {sql_name(n)}"
            for n, t in types.items()
        )
        parts.append(
            f"SELECT {sql_text(run_id)} AS run_id, {cols} FROM read_parquet({sql_text(path)})"
        )
    if is_base_table(con, f"{bp}_processed_legacy"):
        cols = ", ".join(sql_name(n) for n in types)
        parts.append(f"SELECT run_id, {cols} FROM {quote_ident(f'{bp}_processed_legacy')}")
    body = "\nUNION ALL\n".join(parts) if parts else _empty_select({"run_id": "VARCHAR", **types})
    con.execute(f"CREATE OR REPLACE VIEW {quote_ident(f'{bp}_processed')} AS {body}")


def _refresh_predictions_view(con: duckdb.DuckDBPyConnection, bp: str) -> None:
    """``predictions_<bp>``: every COMPLETED run's predictions, with ``run_id`` and ``model_run_id``.

    Files are combined by column name: a ``tracer predict`` run of price_optimization adds
    per-row columns (``date``, ``price``, ``expected_quantity``) the training run's lack.
    """
    runs = con.execute(
        "SELECT r.run_id, f.model_run_id, f.path FROM runs r JOIN prediction_files f USING (run_id) "
        "WHERE r.blueprint = ? AND r.state = 'COMPLETED' ORDER BY r.finished_at, r.run_id",
        [bp],
    ).fetchall()
    root = warehouse_root(con)
    parts = [
        f"SELECT {sql_text(run_id)} AS run_id, {sql_text(model_run)} AS model_run_id, * "
        f"FROM read_parquet({sql_text(path)})"
        for run_id, model_run, stored in runs
        if (path := parquet_location(located_path(root, stored))) is not None
    ]
    empty = {
        "run_id": "VARCHAR",
        "model_run_id": "VARCHAR",
        "prediction": "DOUBLE",
        "confidence": "DOUBLE",
    }
    body = "\nUNION ALL BY NAME\n".join(parts) if parts else _empty_select(empty)
    con.execute(f"CREATE OR REPLACE VIEW {quote_ident(f'predictions_{bp}')} AS {body}")


def ensure_blueprint_tables(con: duckdb.DuckDBPyConnection, blueprint: Blueprint) -> None:
    """Create ``quarantine_<bp>`` and the views ``bronze_<bp>``, ``<bp>_processed``, ``<bp>_latest``, ``bronze_<bp>_status``, ``predictions_<bp>``.

    Bronze and processed rows stay in their immutable Parquet files (written once by the
    run that produced them); the views read them, so a 1 GB load costs a rename, not a copy.
    Tables of those names from warehouses before schema version 2 are kept as
    ``bronze_<bp>_legacy`` / ``<bp>_processed_legacy`` and read by the same views.
    """
    ensure_tables(con, blueprint.name)
    record_processed_types(con, blueprint)
    refresh_views(con, blueprint.name)


#: A quarantined row's failures: each reason with the column it is about (null: the whole row).
FAILURES_TYPE = 'STRUCT(reason VARCHAR, "column" VARCHAR)[]'

#: The columns a run's quarantine Parquet file is inserted with (``failures`` may be absent
#: from a file kept by an older release).
QUARANTINE_INSERT = "stage, source_row, source_line, raw::JSON, reasons, failures"


def quarantine_select(con: duckdb.DuckDBPyConnection, location: str) -> str:
    """The select list of :data:`QUARANTINE_INSERT` for the Parquet file(s) at ``location``."""
    names = {
        r[0] for r in con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [location]).fetchall()
    }
    return (
        QUARANTINE_INSERT
        if "failures" in names
        else QUARANTINE_INSERT.replace("failures", f"NULL::{FAILURES_TYPE}")
    )


def ensure_tables(con: duckdb.DuckDBPyConnection, bp: str) -> None:
    """``quarantine_<bp>``, and the pre-version-2 bronze/processed tables moved aside as legacy."""
    for name in (f"bronze_{bp}", f"{bp}_processed"):
        if is_base_table(con, name):
            con.execute(
                f"ALTER TABLE {quote_ident(name)} RENAME TO {quote_ident(name + '_legacy')}"
            )
    quarantine = quote_ident(f"quarantine_{bp}")
    con.execute(
        f"""CREATE TABLE IF NOT EXISTS {quarantine} (
            run_id VARCHAR NOT NULL, stage VARCHAR NOT NULL, source_row BIGINT,
            source_line BIGINT, raw JSON, reasons VARCHAR[], failures {FAILURES_TYPE})"""
    )
    # tables made before failures were kept: the column, null for their runs
    con.execute(f"ALTER TABLE {quarantine} ADD COLUMN IF NOT EXISTS failures {FAILURES_TYPE}")


def refresh_views(con: duckdb.DuckDBPyConnection, bp: str) -> None:
    """Rebuild a blueprint's views from the registries (after each commit, move or deletion)."""
    bronze, quarantine = quote_ident(f"bronze_{bp}"), quote_ident(f"quarantine_{bp}")
    processed, latest = quote_ident(f"{bp}_processed"), quote_ident(f"{bp}_latest")
    status = quote_ident(f"bronze_{bp}_status")
    _refresh_bronze_view(con, bp)
    _refresh_processed_view(con, bp)
    _refresh_predictions_view(con, bp)
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
              AND (state = 'COMPLETED' OR json_extract_string(params, '$.gate.passed') = 'false')
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
