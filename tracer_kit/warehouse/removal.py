"""Removing runs: their rows in every table and their files, in one transaction (``tracer runs delete``, ``tracer prune``)."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from tracer_kit.errors import TracerError
from tracer_kit.outputs import output_keys
from tracer_kit.types import ACTIVE_STATES
from tracer_kit.warehouse.connection import (
    _is_base_table,
    _located,
    _root,
    connect,
    quote_ident,
    utcnow,
)
from tracer_kit.warehouse.runs import _pid_alive
from tracer_kit.warehouse.tables import _refresh_views
from tracer_kit.workspace import DEFAULT_WAREHOUSE

__all__ = ["Removal", "delete_runs", "runs_to_prune"]


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


_RUN_TABLES = (
    "stage_timings",
    "quality_issues",
    "column_profiles",
    "processed_files",
    "prediction_files",
    "models",
)


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
    ids = list(dict.fromkeys(run_ids))
    with connect(warehouse) as con:
        rows = _deletable(con, ids, warehouse)
        bronze = _orphaned_bronze(con, ids) if ids else []
        files = _files_of(con, rows, bronze)
        removal = Removal(tuple(ids), tuple(map(str, files)), sum(map(_size, files)), len(bronze))
        if dry_run or not ids:
            return removal
        con.execute("BEGIN")
        _delete_rows(con, ids, sorted({r[1] for r in rows.values()}), bronze)
        con.execute("COMMIT")
    for path in files:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    return removal


def _deletable(
    con: duckdb.DuckDBPyConnection, ids: list[str], warehouse: str | Path
) -> dict[str, tuple]:
    """The runs' rows (run_id, blueprint, state, pid, host, outputs); unknown or live runs refused."""
    if not ids:
        return {}
    found = con.execute(
        "SELECT run_id, blueprint, state, pid, host, outputs FROM runs "
        f"WHERE run_id IN ({', '.join('?' for _ in ids)})",
        ids,
    ).fetchall()
    rows = {r[0]: r for r in found}
    unknown = [i for i in ids if i not in rows]
    if unknown:
        msg = f"no run {unknown[0]!r} in {warehouse}; `tracer runs` lists the runs"
        raise TracerError(msg)
    for run_id, _, state, pid, host, _ in rows.values():
        if state in ACTIVE_STATES and host == socket.gethostname() and _pid_alive(pid):
            raise TracerError(f"run {run_id} is still {state} (process {pid}); let it finish")
    return rows


def _files_of(
    con: duckdb.DuckDBPyConnection, rows: dict[str, tuple], bronze: list[tuple]
) -> list[Path]:
    """The runs' own files and the bronze files only they use."""
    files: list[Path] = []
    for *_, outputs in rows.values():
        files += _run_files(json.loads(outputs) if outputs else {})
    root = _root(con)
    for *_, path, rejects in bronze:
        files += [p for s in (path, rejects) if s and (p := _located(root, s)).exists()]
    return files


def _delete_rows(
    con: duckdb.DuckDBPyConnection, ids: list[str], blueprints: list[str], bronze: list[tuple]
) -> None:
    """Every row of the runs, their orphaned bronze loads, then the views rebuilt."""
    marks = ", ".join("?" for _ in ids)
    for table in _RUN_TABLES:
        con.execute(f"DELETE FROM {table} WHERE run_id IN ({marks})", ids)
    for bp in blueprints:
        if _is_base_table(con, f"quarantine_{bp}"):
            table = quote_ident(f"quarantine_{bp}")
            con.execute(f"DELETE FROM {table} WHERE run_id IN ({marks})", ids)
    for bp, sha, options, *_ in bronze:
        con.execute(
            "DELETE FROM bronze_files WHERE blueprint = ? AND file_sha256 = ? AND read_options_hash = ?",
            [bp, sha, options],
        )
    con.execute(f"DELETE FROM runs WHERE run_id IN ({marks})", ids)
    for bp in blueprints:
        _refresh_views(con, bp)


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
