"""Reading the warehouse back: SQL queries, a run's record, its quarantine, what a report shows."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from tracer_kit.cells import HIDDEN
from tracer_kit.errors import ConfigError, TracerError
from tracer_kit.record import RunRecord
from tracer_kit.warehouse.connection import (
    connect,
    is_base_table,
    located_path,
    quote_ident,
    sql_text,
    warehouse_root,
)
from tracer_kit.warehouse.migrations import open_warehouse
from tracer_kit.workspace import DEFAULT_WAREHOUSE, parquet_location

__all__ = [
    "HIDDEN",
    "QUARANTINE_VIEW_SCHEMA",
    "READ_STATEMENTS",
    "ReportInputs",
    "locked_down",
    "protected_paths",
    "quarantine_rows",
    "query",
    "recent_runs",
    "reference_values",
    "report_inputs",
    "run_profiles",
    "run_row",
]


#: The statements a query may be: it reads, nothing else.
READ_STATEMENTS = ("SELECT", "EXPLAIN")


def _read_statement(sql: str) -> None:
    """Refuse anything but one reading statement (no COPY, EXPORT, INSTALL, ATTACH, SET...)."""
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise TracerError(f"query failed: {str(exc).splitlines()[0]}") from None
    if len(statements) != 1:
        msg = f"query: give one SQL statement (got {len(statements)})"
        raise TracerError(msg)
    kind = statements[0].type.name
    if kind not in READ_STATEMENTS:
        msg = (
            f"query: {kind} statements are not allowed: queries over the warehouse are read-only "
            "(use SELECT)"
        )
        raise TracerError(msg)


def _registered_files(con: duckdb.DuckDBPyConnection) -> list[Path]:
    """Every file (or Spark part-file folder) the warehouse's views read.

    A registry a not-yet-migrated warehouse lacks reads as empty.
    """
    root = warehouse_root(con)
    columns = {
        "processed_files": ("path",),
        "prediction_files": ("path",),
        "bronze_files": ("path", "rejects_path"),
    }
    parts = [
        f"SELECT {column} FROM {table} WHERE {column} IS NOT NULL"
        for table, names in columns.items()
        if is_base_table(con, table)
        for column in names
    ]
    stored = con.execute(" UNION ALL ".join(parts)).fetchall() if parts else []
    return [located_path(root, s) for (s,) in stored]


def locked_down(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """``con`` with file access limited to the warehouse's own registered files and its
    configuration locked: no file outside them can be read, no extension installed or loaded.
    """  # noqa: D205
    files, folders = [], []
    for path in _registered_files(con):
        (folders if path.is_dir() else files).append(str(path.resolve()))
    if files:
        con.execute(f"SET allowed_paths = [{', '.join(map(sql_text, files))}]")
    if folders:
        con.execute(f"SET allowed_directories = [{', '.join(sql_text(f + '/') for f in folders)}]")
    con.execute("SET autoinstall_known_extensions = false")
    con.execute("SET autoload_known_extensions = false")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


def query(
    sql: str, *, warehouse: str | Path = DEFAULT_WAREHOUSE, params: list[Any] | None = None
) -> pl.DataFrame:
    """Run one SELECT against the warehouse, read-only, and return a polars DataFrame.

    The statement must read (``SELECT``, ``WITH``, ``EXPLAIN``...): ``COPY``, ``EXPORT``,
    ``INSTALL``, ``ATTACH`` and ``SET`` are refused, no file outside the warehouse's own can
    be read, and the connection's configuration is locked.

    Examples
    --------
    >>> import tracer_kit as tk
    >>> tk.query("SELECT state, count(*) AS n FROM runs GROUP BY state")  # doctest: +SKIP
    """
    _read_statement(sql)
    with connect(warehouse, read_only=True) as con:
        try:
            return locked_down(con).sql(sql, params=params).pl()
        except duckdb.Error as exc:
            msg = f"query failed: {str(exc).splitlines()[0]}"
            raise TracerError(msg) from None
        except AttributeError:
            msg = "query returned no rows to read (use a SELECT)"
            raise TracerError(msg) from None


def protected_paths(warehouse: str | Path = DEFAULT_WAREHOUSE) -> tuple[list[Path], list[Path]]:
    """What no user-named output may overwrite: the warehouse's files, and the folders holding
    its runs' files (processed rows, bronze, predictions, reports, staging).
    """  # noqa: D205
    base = Path(warehouse).resolve()
    files = [base, base.with_name(base.name + ".wal")]
    folders = [base.parent / "staging", base.parent / "processed", base.parent / "bronze"]
    if not base.exists():
        return files, folders
    with connect(warehouse, read_only=True) as con:
        registered = _registered_files(con)
        outputs = con.execute("SELECT outputs FROM runs WHERE outputs IS NOT NULL").fetchall()
    folders += [p.parent for p in registered] + [p for p in registered if p.is_dir()]
    for (text,) in outputs:
        for value in json.loads(text).values():
            if isinstance(value, str) and value.endswith((".html", ".parquet", ".skops")):
                folders.append(Path(value).resolve().parent)
    return files, sorted({p.resolve() for p in folders})


def quarantine_rows(
    run_id: str, blueprint: str, *, warehouse: str | Path = DEFAULT_WAREHOUSE, limit: int = 100
) -> tuple[int, pl.DataFrame]:
    """How many rows a run quarantined, and the first ``limit`` by ``source_row`` with their reasons."""
    with connect(warehouse, read_only=True) as con:
        if not is_base_table(con, f"quarantine_{blueprint}"):
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
    found = con.execute("SELECT params FROM runs WHERE run_id = ?", [run_id]).fetchall()
    hidden = RunRecord.from_stored(found[0][0]).personal_columns if found else []
    if not hidden or sample.height == 0:
        return sample
    return sample.with_columns(
        pl.col("raw").map_elements(lambda raw: _hide(raw, hidden), pl.String)
    )


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
    """One row of ``runs`` as a dict with its JSON columns decoded, plus its stage timings and issues.

    The run's record (the ``params`` column) is a typed :class:`~tracer_kit.record.RunRecord`
    under ``"record"``.
    """
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
    for key in ("score_parts", "outputs", "read_options", "versions"):
        row[key] = json.loads(row[key]) if row[key] else {}
    row["record"] = RunRecord.from_stored(row.pop("params"))
    row["stage_seconds"] = dict(timings.iter_rows())
    row["issues"] = [
        {**r, "examples": json.loads(r["examples"]) if r["examples"] else []}
        for r in issues.iter_rows(named=True)
    ]
    return row


@dataclass
class ReportInputs:
    """What a run's report shows beyond its ``runs`` row, read in one short connection."""

    profiles: list[dict[str, Any]]
    quarantine_by_reason: list[dict[str, Any]]
    quarantine_sample: list[dict[str, Any]]
    history: pl.DataFrame  # scores of the runs of the same blueprint and dataset
    previous: tuple[str, int] | None  # the previous completed run of that dataset, its rows_out
    previous_profiles: list[dict[str, Any]] | None


def run_profiles(run_id: str, *, warehouse: str | Path = DEFAULT_WAREHOUSE) -> list[dict[str, Any]]:
    """A run's stored column profiles (type, nulls, distinct, mean, histogram per column)."""
    with connect(warehouse, read_only=True) as con:
        return _profiles(con, run_id)


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
    if not is_base_table(con, f"quarantine_{blueprint}"):
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


def reference_values(reference: str, *, warehouse: str | Path = DEFAULT_WAREHOUSE) -> pl.Series:
    """The distinct values (as text) of ``dataset.field`` in that dataset's latest completed run.

    Raises
    ------
    ConfigError
        When the dataset has no completed run, or its processed rows have no such field.
    """
    dataset, _, field = reference.rpartition(".")
    if Path(warehouse).exists():
        open_warehouse(warehouse)
    found: list[Any] = []
    root = None
    if Path(warehouse).exists():
        with connect(warehouse, read_only=True) as con:
            found = con.execute(
                "SELECT r.run_id, f.path FROM runs r JOIN processed_files f USING (run_id) "
                "WHERE r.dataset = ? AND r.state = 'COMPLETED' "
                "ORDER BY r.finished_at DESC, r.run_id DESC LIMIT 1",
                [dataset],
            ).fetchall()
            root = warehouse_root(con)
    if not found:
        raise ConfigError(
            f"references {reference}: no completed run of dataset {dataset!r} in {warehouse}; "
            "run that dataset's file first (`tracer runs` lists the datasets)"
        )
    run_id, stored = found[0]
    path = parquet_location(located_path(root, stored))
    columns = pl.scan_parquet(path).collect_schema().names() if path else []
    if field not in columns:
        shown = ", ".join(c for c in columns if c not in ("source_row", "extras"))
        raise ConfigError(
            f"references {reference}: run {run_id} of dataset {dataset!r} has no field "
            f"{field!r} (its fields: {shown})"
        )
    values = pl.scan_parquet(path).select(pl.col(field).cast(pl.String)).drop_nulls().unique()
    return values.collect().to_series().sort()
