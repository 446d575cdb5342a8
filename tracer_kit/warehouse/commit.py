"""The commit point: a run's files moved into place and its records written in one transaction."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from tracer_kit._testing import pause_for_tests
from tracer_kit.blueprints import Blueprint
from tracer_kit.ingest import file_sha256
from tracer_kit.warehouse.connection import (
    connect,
    is_base_table,
    json_text,
    quote_ident,
    stored_path,
    utcnow,
)
from tracer_kit.warehouse.runs import insert_timings, stored_error
from tracer_kit.warehouse.tables import (
    ensure_tables,
    quarantine_select,
    record_processed_types,
    refresh_views,
)
from tracer_kit.workspace import parquet_location

__all__ = [
    "RECORD_TABLES",
    "BronzeFiles",
    "ModelRecord",
    "RunCommit",
    "commit_run",
    "remove_placed",
    "run_quarantine_path",
    "run_record_path",
]


def remove_placed(path: Path) -> None:
    """A placed file gone, or a folder of part files (the Spark engine writes folders)."""
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _move_into_place(staged: str | Path, final: Path) -> None:
    """``os.replace``, also of a folder over a folder: a bronze of the same file and read
    options left by a warehouse that was deleted (the same rows, in a file no warehouse lists).
    """  # noqa: D205
    if final.is_dir():
        remove_placed(final)
    os.replace(staged, final)


@dataclass(frozen=True)
class BronzeFiles:
    """A run's staged bronze files and the file's own column names.

    ``text``: ``source_row``, ``source_line`` and the columns as text; ``rejects``: records
    rejected at ingest (``source_row``, ``source_line``, ``raw`` JSON), or None.
    """

    text: Path
    rejects: Path | None
    columns: list[str]
    pages: list[dict[str, Any]] | None = None  # an API source's pages (each record's position)


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
    if not known and is_base_table(con, legacy):  # loaded before schema version 2
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
    _move_into_place(bronze.text, text)
    placed.append(text)
    rejects = None
    if bronze.rejects is not None:
        rejects = dest / f"{stem}.rejects.parquet"
        _move_into_place(bronze.rejects, rejects)
        placed.append(rejects)
    con.execute(
        "INSERT INTO bronze_files (blueprint, file_sha256, read_options_hash, path, rejects_path, "
        "columns, source_file, first_run_id, ingested_at, pages) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            bp,
            sha,
            options,
            stored_path(con, text),
            stored_path(con, rejects) if rejects else None,
            json.dumps(bronze.columns),
            run["input_path"],
            run["run_id"],
            utcnow(),
            json.dumps(bronze.pages) if bronze.pages else None,
        ],
    )


@dataclass(frozen=True)
class ModelRecord:
    """A run's model for the ``models`` table, and its predictions file.

    ``model_run_id`` is the run whose model made the predictions: the run itself when it
    fitted one (``kind`` set), the training run for ``tracer predict``.
    """

    model_run_id: str
    predictions: tuple[Path, Path] | None = None
    kind: str | None = None
    parameters: dict[str, Any] | None = None
    metrics: dict[str, Any] | None = None
    training_rows: int = 0
    model_sha256: str | None = None


@dataclass
class RunCommit:
    """Everything one run records at its commit point.

    ``run`` holds the runs-table fields to set (state, counts, score, outputs, ...).
    ``processed`` is the (staged, final) processed Parquet, None for a quality-gate failure
    (no processed rows are added); ``files`` are other (staged, final) pairs, such as the
    model matrix, that move with it.
    """

    blueprint: Blueprint
    run: dict[str, Any]
    bronze: BronzeFiles
    bronze_dir: Path
    quarantine: Path
    issues: Sequence[dict[str, Any]]
    stage_seconds: dict[str, float]
    profiles: pl.DataFrame | None = None
    processed: tuple[Path, Path] | None = None
    files: Sequence[tuple[Path, Path]] = ()
    model: ModelRecord | None = None


def _place_files(con: duckdb.DuckDBPyConnection, c: RunCommit, placed: list[Path]) -> None:
    """Rename the processed Parquet and its companions into place (``placed`` lists them)."""
    if c.processed is None:
        return
    for staged, final in [c.processed, *c.files]:
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged, final)
        placed.append(final)
    con.execute(
        "INSERT OR REPLACE INTO processed_files VALUES (?, ?, ?)",
        [c.blueprint.name, c.run["run_id"], stored_path(con, c.processed[1])],
    )
    _record_model(con, c)
    pause_for_tests("commit")  # files in place, transaction still open


def _record_model(con: duckdb.DuckDBPyConnection, c: RunCommit) -> None:
    """The ``models`` row of a fitted model and the run's ``prediction_files`` row."""
    m, run_id = c.model, c.run["run_id"]
    if m is None:
        return
    if m.kind is not None:
        con.execute(
            "INSERT OR REPLACE INTO models VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                run_id,
                c.blueprint.name,
                m.kind,
                json_text(m.parameters or {}),
                json_text(m.metrics or {}),
                m.training_rows,
                m.model_sha256,
                utcnow(),
            ],
        )
    if m.predictions is not None:
        con.execute(
            "INSERT OR REPLACE INTO prediction_files VALUES (?, ?, ?, ?)",
            [c.blueprint.name, run_id, stored_path(con, m.predictions[1]), m.model_run_id],
        )


def _insert_findings(con: duckdb.DuckDBPyConnection, c: RunCommit) -> None:
    """The run's quarantine, issues and column profiles."""
    run_id, bp = c.run["run_id"], c.blueprint.name
    quarantine = parquet_location(c.quarantine)
    if quarantine is not None:  # (Spark writes no part file when nothing is quarantined)
        con.execute(
            f"""INSERT INTO {quote_ident(f"quarantine_{bp}")}
            SELECT ?, {quarantine_select(con, quarantine)} FROM read_parquet(?)""",
            [run_id, quarantine],
        )
    keys = ("severity", "column", "check", "observed", "threshold", "rows_affected")
    rows = [
        (run_id, *(i[k] for k in keys), json_text(i["examples"]), i["message"]) for i in c.issues
    ]
    if rows:
        con.executemany("INSERT INTO quality_issues VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    if c.profiles is not None and c.profiles.height:
        con.register("__profiles", c.profiles.to_arrow())
        con.execute(
            'INSERT INTO column_profiles SELECT ?, "column", dtype, nulls, "distinct", "min", "max", '
            "mean, median, hist_edges::JSON, hist_counts::JSON FROM __profiles",
            [run_id],
        )
        con.unregister("__profiles")


def _update_run(con: duckdb.DuckDBPyConnection, run: dict[str, Any]) -> None:
    sets = {k: v for k, v in run.items() if k not in ("run_id", "read_options_hash")}
    sets["finished_at"] = utcnow()
    if "error" in sets:
        sets["error"] = stored_error(sets["error"])
    for key in ("params", "score_parts", "outputs", "read_options", "versions"):
        if key in sets:
            sets[key] = json_text(sets[key])
    assignments = ", ".join(f"{quote_ident(k)} = ?" for k in sets)
    con.execute(f"UPDATE runs SET {assignments} WHERE run_id = ?", [*sets.values(), run["run_id"]])


def run_record_path(processed: Path) -> Path:
    """Where a completed run's record (``tracer rebuild`` reads it) lies beside its processed rows."""
    return processed.with_name(f"{processed.name.removesuffix('.parquet')}.record.json")


def run_quarantine_path(processed: Path) -> Path:
    """Where a completed run's quarantined rows are kept beside its processed rows."""
    return processed.with_name(f"{processed.name.removesuffix('.parquet')}.quarantine.parquet")


def _hashed_files(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]


def _record_hashes(con: duckdb.DuckDBPyConnection, run_id: str, placed: list[Path]) -> None:
    """The SHA-256 of every file the run placed (a Spark folder: each of its files), two
    files at a time (hashing releases the GIL; a 1 GB run places about 0.5 GB).
    """  # noqa: D205
    files = [f for path in placed for f in _hashed_files(path)]
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="tracer-hash") as pool:
        digests = list(pool.map(file_sha256, files))
    rows = [
        (stored_path(con, f), run_id, sha, f.stat().st_size, utcnow())
        for f, sha in zip(files, digests, strict=True)
    ]
    if rows:
        con.executemany("INSERT OR REPLACE INTO file_hashes VALUES (?, ?, ?, ?, ?)", rows)


#: The tables a run's record carries (``tracer rebuild`` loads them back), keyed by run id.
RECORD_TABLES = (
    "runs",
    "stage_timings",
    "quality_issues",
    "column_profiles",
    "processed_files",
    "models",
    "prediction_files",
)


def _write_record(con: duckdb.DuckDBPyConnection, c: RunCommit, placed: list[Path]) -> None:
    """A completed run's quarantine and record beside its processed rows, so the warehouse
    can be rebuilt from the files on disk (``tracer rebuild``).
    """  # noqa: D205
    if c.processed is None:
        return
    run_id, final = c.run["run_id"], c.processed[1]
    quarantine = parquet_location(c.quarantine)
    if quarantine is not None:
        kept = run_quarantine_path(final)
        pl.scan_parquet(quarantine).sink_parquet(kept)
        placed.append(kept)
    tables = {
        t: con.sql(f"SELECT * FROM {t} WHERE run_id = $1", params=[run_id]).pl().to_dicts()
        for t in RECORD_TABLES
    }
    tables["bronze_files"] = (
        con.sql(
            "SELECT * FROM bronze_files WHERE blueprint = $1 AND file_sha256 = $2 "
            "AND read_options_hash = $3",
            params=[c.blueprint.name, c.run["input_sha256"], c.run["read_options_hash"]],
        )
        .pl()
        .to_dicts()
    )
    _record_hashes(con, run_id, placed)
    tables["file_hashes"] = (
        con.sql("SELECT * FROM file_hashes WHERE run_id = $1", params=[run_id]).pl().to_dicts()
    )
    record = {"format": 1, "run_id": run_id, "blueprint": c.blueprint.name, "tables": tables}
    path = run_record_path(final)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(record, default=str, indent=1), encoding="utf-8")
    os.replace(partial, path)
    placed.append(path)


def commit_run(warehouse: str | Path, commit: RunCommit) -> None:
    """The commit point: rename the Parquet into place and record everything in one transaction.

    Bronze moves to ``bronze_dir/<bp>/`` the first time a (file, read options) pair is seen.
    Bronze and processed rows are not copied into DuckDB: their views read the Parquet. On
    any failure the transaction rolls back and the files already moved are removed.
    """
    bp = commit.blueprint.name
    placed: list[Path] = []
    with connect(warehouse) as con:
        try:
            con.execute("BEGIN")
            ensure_tables(con, bp)
            _place_files(con, commit, placed)
            _place_bronze(con, bp, commit.run, commit.bronze, Path(commit.bronze_dir), placed)
            _insert_findings(con, commit)
            insert_timings(con, commit.run["run_id"], commit.stage_seconds)
            _update_run(con, commit.run)
            record_processed_types(con, commit.blueprint)
            refresh_views(con, bp)
            if commit.processed is None:
                _record_hashes(con, commit.run["run_id"], placed)  # (bronze of a failed run)
            else:
                _write_record(con, commit, placed)
            con.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(Exception):
                con.execute("ROLLBACK")
            for final in placed:
                remove_placed(final)
            raise
