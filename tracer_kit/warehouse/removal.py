"""Removing runs: their rows in every table and their files, in one transaction (``tracer runs delete``, ``tracer prune``)."""

from __future__ import annotations

import datetime as dt
import json
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from tracer_kit.errors import TracerError
from tracer_kit.outputs import output_keys
from tracer_kit.types import ACTIVE_STATES
from tracer_kit.warehouse.commit import remove_placed, run_quarantine_path, run_record_path
from tracer_kit.warehouse.connection import (
    connect,
    is_base_table,
    located_path,
    quote_ident,
    stored_path,
    utcnow,
    warehouse_root,
)
from tracer_kit.warehouse.run_locks import removing_runs
from tracer_kit.warehouse.runs import pid_alive
from tracer_kit.warehouse.tables import refresh_views
from tracer_kit.workspace import DEFAULT_WAREHOUSE

__all__ = ["PruneGroup", "Removal", "delete_runs", "prune_plan", "runs_to_prune"]


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
    if outputs.get("parquet"):  # its record and quarantine copy (tracer rebuild reads them)
        processed = Path(outputs["parquet"])
        files += [run_record_path(processed), run_quarantine_path(processed)]
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
    if dry_run or not ids:
        return _removal(ids, warehouse, delete=False)
    with removing_runs(ids, warehouse=warehouse):  # (readers of these runs finish first)
        return _removal(ids, warehouse, delete=True)


def _removal(ids: list[str], warehouse: str | Path, *, delete: bool) -> Removal:
    with connect(warehouse) as con:
        rows = _deletable(con, ids, warehouse)
        bronze = _orphaned_bronze(con, ids) if ids else []
        files = _files_of(con, rows, bronze)
        removal = Removal(tuple(ids), tuple(map(str, files)), sum(map(_size, files)), len(bronze))
        if not delete:
            return removal
        con.execute("BEGIN")
        _delete_rows(con, ids, sorted({r[1] for r in rows.values()}), bronze)
        inside = [p for f in files for p in ([f, *f.rglob("*")] if f.is_dir() else [f])]
        stored = [stored_path(con, f) for f in inside]
        con.execute(
            "DELETE FROM file_hashes WHERE path IN (SELECT unnest($1::VARCHAR[]))", [stored]
        )
        con.execute("COMMIT")
    for path in files:
        remove_placed(path)
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
        if state in ACTIVE_STATES and host == socket.gethostname() and pid_alive(pid):
            raise TracerError(f"run {run_id} is still {state} (process {pid}); let it finish")
    return rows


def _files_of(
    con: duckdb.DuckDBPyConnection, rows: dict[str, tuple], bronze: list[tuple]
) -> list[Path]:
    """The runs' own files and the bronze files only they use."""
    files: list[Path] = []
    for *_, outputs in rows.values():
        files += _run_files(json.loads(outputs) if outputs else {})
    root = warehouse_root(con)
    for *_, path, rejects in bronze:
        files += [p for s in (path, rejects) if s and (p := located_path(root, s)).exists()]
    return files


def _delete_rows(
    con: duckdb.DuckDBPyConnection, ids: list[str], blueprints: list[str], bronze: list[tuple]
) -> None:
    """Every row of the runs, their orphaned bronze loads, then the views rebuilt."""
    marks = ", ".join("?" for _ in ids)
    for table in _RUN_TABLES:
        con.execute(f"DELETE FROM {table} WHERE run_id IN ({marks})", ids)
    for bp in blueprints:
        if is_base_table(con, f"quarantine_{bp}"):
            table = quote_ident(f"quarantine_{bp}")
            con.execute(f"DELETE FROM {table} WHERE run_id IN ({marks})", ids)
    for bp, sha, options, *_ in bronze:
        con.execute(
            "DELETE FROM bronze_files WHERE blueprint = ? AND file_sha256 = ? AND read_options_hash = ?",
            [bp, sha, options],
        )
    con.execute(f"DELETE FROM runs WHERE run_id IN ({marks})", ids)
    for bp in blueprints:
        refresh_views(con, bp)


@dataclass(frozen=True)
class PruneGroup:
    """What pruning does to one blueprint and dataset: the runs that stay and those that go."""

    blueprint: str
    dataset: str | None
    keep: tuple[str, ...]
    remove: tuple[str, ...]
    #: Why a COMPLETED run beyond ``keep_last`` stays: the dataset's last good run.
    kept_last_good: str | None = None


def prune_plan(
    *,
    keep_last: int | None = None,
    dataset: str | None = None,
    older_than_days: float | None = None,
    failed_older_than_days: float | None = None,
    include_last_good: bool = False,
    warehouse: str | Path = DEFAULT_WAREHOUSE,
) -> list[PruneGroup]:
    """Which runs pruning keeps and removes, per blueprint and dataset.

    - COMPLETED runs beyond the newest ``keep_last`` go (only those older than
      ``older_than_days`` when given); the newest COMPLETED run of a dataset always stays
      unless ``include_last_good``.
    - FAILED and CANCELLED runs go only with ``failed_older_than_days`` (those older).
    - Runs still going (PENDING, IN_PROGRESS) always stay.
    """
    if keep_last is None and failed_older_than_days is None:
        raise TracerError("give --keep-last N (completed runs) or --failed-older-than DAYS")
    if keep_last is not None and keep_last < 0:
        raise TracerError(f"--keep-last {keep_last} should be 0 or more")
    with connect(warehouse, read_only=True) as con:
        rows = con.execute(
            "SELECT blueprint, dataset, run_id, state, started_at FROM runs "
            + ("WHERE dataset = ? " if dataset is not None else "")
            + "ORDER BY blueprint, dataset NULLS FIRST, started_at DESC, run_id DESC",
            [dataset] if dataset is not None else [],
        ).fetchall()
    now = utcnow()
    groups: dict[tuple[str, str | None], list[tuple[str, str, dt.datetime]]] = {}
    for bp, ds, run_id, state, started in rows:
        groups.setdefault((bp, ds), []).append((run_id, state, started))
    plans = []
    for (bp, ds), runs in groups.items():
        keep, remove, last_good = _plan_group(
            runs, keep_last, older_than_days, failed_older_than_days, include_last_good, now
        )
        plans.append(PruneGroup(bp, ds, tuple(keep), tuple(remove), last_good))
    return plans


def _plan_group(
    runs: list[tuple[str, str, dt.datetime]],
    keep_last: int | None,
    older_than_days: float | None,
    failed_older_than_days: float | None,
    include_last_good: bool,
    now: dt.datetime,
) -> tuple[list[str], list[str], str | None]:
    """One dataset's runs (newest first) split into kept and removed."""

    def old(started: dt.datetime | None, days: float | None) -> bool:
        return days is None or (started is not None and started < now - dt.timedelta(days=days))

    keep, remove, completed, last_good = [], [], 0, None
    for run_id, state, started in runs:
        if state == "COMPLETED":
            completed += 1
            goes = keep_last is not None and completed > keep_last and old(started, older_than_days)
            if goes and completed == 1 and not include_last_good:
                goes, last_good = False, run_id
        elif state in ("FAILED", "CANCELLED"):
            goes = failed_older_than_days is not None and old(started, failed_older_than_days)
        else:
            goes = False
        (remove if goes else keep).append(run_id)
    return keep, remove, last_good


def runs_to_prune(**options: Any) -> list[str]:
    """The run ids :func:`prune_plan` removes (same keywords), oldest first within each dataset."""
    return [run_id for group in prune_plan(**options) for run_id in reversed(group.remove)]
