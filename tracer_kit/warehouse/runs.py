"""A run's row in ``runs``: started (with its record), ended; its stage timings."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
from pathlib import Path
from typing import Any

import duckdb

from tracer_kit.connections import check_url, is_database_url, is_url
from tracer_kit.ingest import input_extensions
from tracer_kit.ingest.database import database_dataset
from tracer_kit.outputs import output_keys
from tracer_kit.record import RunRecord
from tracer_kit.types import RunState
from tracer_kit.warehouse.connection import connect, json_text, quote_ident, utcnow

__all__ = [
    "MAX_ERROR_CHARS",
    "STATES",
    "dataset_name",
    "end_run",
    "insert_timings",
    "note_record",
    "pid_alive",
    "record_timings",
    "remove_outputs",
    "start_run",
    "stored_error",
]

STATES = tuple(s.value for s in RunState)

_DATED_SUFFIX = re.compile(
    r"[\s_\-.]*(?:\d{4}[-_.]?\d{2}(?:[-_.]?\d{2})?)(?:[T_\-\s]?\d{2}[:\-_.]?\d{2}(?:[:\-_.]?\d{2})?)?$"
)


def dataset_name(path: str | Path, *, table: str | None = None, query: str | None = None) -> str:
    """The dataset a file belongs to: its stem without a trailing date or timestamp.

    ``customers_2024-06-01.csv`` and ``customers_20240701.csv.gz`` are both ``customers``;
    runs of one dataset are what drift and the score history compare. A database source's
    dataset is its ``table`` without schema (for a ``query``, the first table it reads from);
    an http(s) URL's is its path's last part.
    """
    if is_database_url(path):
        return database_dataset(table, query)
    if is_url(path):  # an API or a file URL: its path's last part, never its query
        from urllib.parse import urlsplit

        path = urlsplit(check_url(str(path))).path

    endings = input_extensions()
    name = Path(str(path)).name
    while (suffix := Path(name).suffix.lower()) in endings and suffix:
        name = name[: -len(suffix)]
    return _DATED_SUFFIX.sub("", name) or name


def start_run(warehouse: str | Path, record: dict[str, Any], *, state: str = "IN_PROGRESS") -> None:
    """Insert (or move forward) a run row in one short transaction."""
    fields = {
        "run_id": record["run_id"],
        "blueprint": record["blueprint"],
        "state": state,
        "input_path": record.get("input_path"),
        "dataset": record.get("dataset") or dataset_name(record.get("input_path") or ""),
        "params": json_text(record.get("params")),
        "versions": json_text(record.get("versions")),
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started_at": record.get("started_at") or utcnow(),
        "outputs": json_text(record.get("outputs")),
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


def note_record(warehouse: str | Path, run_id: str, **values: Any) -> None:
    """Set facts of a run's :class:`~tracer_kit.record.RunRecord` (e.g. ``rerun_of``) in one
    short transaction.
    """  # noqa: D205
    with connect(warehouse) as con:
        row = con.execute("SELECT params FROM runs WHERE run_id = ?", [run_id]).fetchall()
        record = RunRecord.from_stored(row[0][0] if row else None)
        record.update(**values)
        con.execute("UPDATE runs SET params = ? WHERE run_id = ?", [json_text(record), run_id])


#: The longest error a run's record keeps (the whole message is in the run's log).
MAX_ERROR_CHARS = 500


def stored_error(text: str | None) -> str | None:
    """An error as ``runs.error`` keeps it: at most :data:`MAX_ERROR_CHARS` characters."""
    if text is None or len(text) <= MAX_ERROR_CHARS:
        return text
    return f"{text[:MAX_ERROR_CHARS]}… ({len(text):,} characters; the whole message is in the run's log)"


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
        sets = {"state": state, "finished_at": utcnow(), "error": stored_error(error)}
        for key, value in (fields or {}).items():
            sets[key] = json_text(value) if isinstance(value, (dict, list)) else value
        assignments = ", ".join(f"{quote_ident(k)} = ?" for k in sets)
        con.execute(f"UPDATE runs SET {assignments} WHERE run_id = ?", [*sets.values(), run_id])
        insert_timings(con, run_id, stage_seconds or {})
        con.execute("COMMIT")
    if row and row[0][0]:
        remove_outputs(json.loads(row[0][0]))


def insert_timings(
    con: duckdb.DuckDBPyConnection, run_id: str, stage_seconds: dict[str, float]
) -> None:
    """Replace a run's stage timings (seconds per stage) inside the open transaction."""
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
        insert_timings(con, run_id, stage_seconds)
        con.execute("COMMIT")


def pid_alive(pid: int | None) -> bool:
    """Whether a process with this id runs on this host."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_outputs(outputs: dict[str, Any]) -> None:
    """Remove a run's files (processed Parquet, model files, staging) when they exist."""
    for key in output_keys():
        p = outputs.get(key)
        if p and Path(p).is_file():
            Path(p).unlink()
    staging = outputs.get("staging")
    if staging and Path(staging).is_dir():
        shutil.rmtree(staging, ignore_errors=True)
