"""Keeping the warehouse safe: backup, verify, restore, and rebuild from the run files on disk.

- :func:`backup` copies the warehouse while holding its write lock (so no run commits
  half-way through the copy), with every file it references (processed rows, bronze,
  predictions, models, run records) and a ``manifest.json`` of their SHA-256s, into
  ``<to>/<UTC time>/``; ``keep`` removes the oldest backups beyond that many.
- :func:`verify` opens the warehouse, reads every table (a damaged block fails its
  checksum), checks that every referenced file exists and matches its recorded SHA-256, and
  lists files in the run folders that nothing references (orphans).
- :func:`restore` verifies a backup, moves the current warehouse aside (never deleted), and
  puts the backup's warehouse and files in place.
- :func:`rebuild` makes a new warehouse from the run records written beside each completed
  run's processed rows (``<run_id>.record.json``), when there is no backup: every completed
  run whose files are intact comes back with its rows, issues, profiles and quarantine.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from tracer_kit.blueprints import get_blueprint
from tracer_kit.errors import TracerError
from tracer_kit.ingest import file_sha256
from tracer_kit.warehouse.commit import RECORD_TABLES, run_quarantine_path, run_record_path
from tracer_kit.warehouse.connection import (
    connect,
    damaged_message,
    located_path,
    quote_ident,
    warehouse_root,
)
from tracer_kit.warehouse.migrations import open_warehouse
from tracer_kit.warehouse.tables import (
    ensure_tables,
    quarantine_select,
    record_processed_types,
    refresh_views,
)
from tracer_kit.workspace import DEFAULT_WAREHOUSE

__all__ = [
    "BACKUPS_FOLDER",
    "Backup",
    "Rebuilt",
    "Verification",
    "backup",
    "rebuild",
    "restore",
    "verify",
]

#: Where backups go by default, beside the warehouse file.
BACKUPS_FOLDER = "backups"
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class Backup:
    """A backup taken: its folder, how many files and bytes, and the backups removed by ``keep``."""

    path: Path
    files: int
    bytes: int
    removed: tuple[Path, ...] = ()

    def summary(self) -> str:
        """One line for people."""
        gone = f"; removed {len(self.removed)} older backup(s)" if self.removed else ""
        return f"backup {self.path}: the warehouse and {self.files} file(s), {self.bytes / 1e6:.1f} MB{gone}"


@dataclass
class Verification:
    """What :func:`verify` found: files checked, problems (missing or changed), orphans."""

    warehouse: Path
    checked: int = 0
    problems: list[str] = field(default_factory=list)
    orphans: list[Path] = field(default_factory=list)
    unhashed: int = 0  # referenced files without a recorded hash (existence checked only)

    @property
    def ok(self) -> bool:
        """Whether the warehouse opens and every referenced file is intact."""
        return not self.problems


@dataclass
class Rebuilt:
    """What :func:`rebuild` brought back, and what it could not (with why)."""

    warehouse: Path
    runs: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    moved_aside: Path | None = None


def _referenced(con: duckdb.DuckDBPyConnection) -> dict[str, str | None]:
    """Every stored path the warehouse references, with its recorded SHA-256 (None: none kept)."""
    rows = con.execute(
        "SELECT path FROM processed_files UNION SELECT path FROM prediction_files "
        "UNION SELECT path FROM bronze_files "
        "UNION SELECT rejects_path FROM bronze_files WHERE rejects_path IS NOT NULL"
    ).fetchall()
    paths: dict[str, str | None] = {p: None for (p,) in rows}
    for (processed,) in con.execute("SELECT path FROM processed_files").fetchall():
        record = run_record_path(Path(processed))  # (the run's record: rebuild reads it)
        paths[str(record)] = None
    for stored, sha in con.execute("SELECT path, sha256 FROM file_hashes").fetchall():
        paths[stored] = sha
    return paths


def _files_under(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]


def _copy_tree_file(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src, dest)


def backup(
    *,
    to: str | Path | None = None,
    keep: int | None = None,
    warehouse: str | Path = DEFAULT_WAREHOUSE,
) -> Backup:
    """Copy the warehouse and every file it references into ``to/<UTC time>/`` (see the module docstring)."""
    source = Path(warehouse)
    if not source.is_file():
        raise TracerError(f"no warehouse at {source}; nothing to back up")
    if keep is not None and keep < 1:
        raise TracerError(f"--keep {keep} should be 1 or more")
    folder = Path(to) if to is not None else source.parent / BACKUPS_FOLDER
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    dest = folder / stamp
    dest.mkdir(parents=True, exist_ok=False)
    entries: list[dict[str, Any]] = []
    with connect(warehouse) as con:  # (the write lock: no run commits while we copy)
        con.execute("CHECKPOINT")
        root, referenced = warehouse_root(con), _referenced(con)
        shutil.copy2(source, dest / "warehouse.duckdb")
        for stored in sorted(referenced):
            path = located_path(root, stored)
            for f in _files_under(path) if path.exists() else []:
                rel = f.resolve().relative_to(root) if f.resolve().is_relative_to(root) else None
                inside = Path("files") / (
                    rel if rel is not None else Path("_absolute", *f.resolve().parts[1:])
                )
                _copy_tree_file(f, dest / inside)
                entries.append(
                    {"path": str(rel) if rel is not None else str(f.resolve()), "backup": str(inside),
                     "sha256": file_sha256(dest / inside), "bytes": f.stat().st_size}
                )  # fmt: skip
    manifest = {
        "created_at": stamp,
        "warehouse": "warehouse.duckdb",
        "warehouse_sha256": file_sha256(dest / "warehouse.duckdb"),
        "files": entries,
    }
    (dest / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    removed = _retain(folder, keep) if keep is not None else ()
    size = sum(e["bytes"] for e in entries) + (dest / "warehouse.duckdb").stat().st_size
    return Backup(dest, len(entries), size, removed)


def _retain(folder: Path, keep: int) -> tuple[Path, ...]:
    """Remove the oldest backups in ``folder`` beyond the newest ``keep``."""
    backups = sorted(p for p in folder.iterdir() if (p / MANIFEST).is_file())
    old = backups[: max(len(backups) - keep, 0)]
    for path in old:
        shutil.rmtree(path)
    return tuple(old)


def _read_every_table(con: duckdb.DuckDBPyConnection) -> None:
    tables = con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE'"
    ).fetchall()
    for (name,) in tables:
        con.execute(f"SELECT * FROM {quote_ident(name)}").fetchall()


def _opened(path: Path, found: Verification) -> tuple[Path, dict[str, str | None]] | None:
    """The warehouse's folder and referenced files, once every table reads; None when damaged."""
    try:
        with connect(path, read_only=True) as con:
            _read_every_table(con)
            return warehouse_root(con), _referenced(con)
    except duckdb.Error as exc:
        found.problems.append(damaged_message(path, str(exc).splitlines()[0]))
    except TracerError as exc:
        if "is damaged" not in str(exc):
            raise
        found.problems.append(str(exc))
    return None


def verify(warehouse: str | Path = DEFAULT_WAREHOUSE) -> Verification:
    """Open the warehouse, read every table, check every referenced file (see the module docstring)."""
    path = Path(warehouse)
    found = Verification(path)
    if not path.is_file():
        raise TracerError(f"no warehouse at {path}")
    opened = _opened(path, found)
    if opened is None:
        return found
    root, referenced = opened
    known: set[Path] = set()
    for stored, sha in sorted(referenced.items()):
        file = located_path(root, stored)
        known.add(file.resolve())
        if not file.exists():
            found.problems.append(f"missing: {stored}")
            continue
        found.checked += 1
        if sha is None:
            found.unhashed += int(file.is_file())
        elif file.is_file() and file_sha256(file) != sha:
            found.problems.append(f"changed since its run wrote it: {stored}")
    found.orphans = _orphans(root, known)
    return found


def _orphans(root: Path, known: set[Path]) -> list[Path]:
    """Files in the run folders that nothing the warehouse references is or holds."""
    orphans = []
    for folder in (root / "processed", root / "bronze"):
        for file in _files_under(folder) if folder.is_dir() else []:
            resolved = file.resolve()
            if resolved not in known and not any(p in known for p in resolved.parents):
                orphans.append(file)
    return orphans


def _check_backup(folder: Path) -> dict[str, Any]:
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        raise TracerError(f"{folder} is not a tracer backup (no {MANIFEST})")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    if file_sha256(folder / manifest["warehouse"]) != manifest["warehouse_sha256"]:
        raise TracerError(f"backup {folder}: its warehouse copy does not match the manifest")
    for entry in manifest["files"]:
        copy = folder / entry["backup"]
        if not copy.is_file() or file_sha256(copy) != entry["sha256"]:
            raise TracerError(f"backup {folder}: {entry['backup']} is missing or changed")
    return manifest


def _aside(path: Path, stamp: str) -> Path | None:
    """Move a file out of the way (``NAME.aside-<time>``), never deleting it."""
    if not path.exists():
        return None
    moved = path.with_name(f"{path.name}.aside-{stamp}")
    path.replace(moved)
    return moved


def restore(backup_path: str | Path, *, warehouse: str | Path = DEFAULT_WAREHOUSE) -> Path | None:
    """Verify a backup, move the current warehouse aside, and put the backup in place.

    Files the backup holds are copied back where they were, unless an identical file is
    there already; a different file in the way is moved aside, not overwritten. Returns
    where the old warehouse went (None when there was none).
    """
    folder = Path(backup_path)
    manifest = _check_backup(folder)
    target = Path(warehouse)
    root = target.resolve().parent
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    root.mkdir(parents=True, exist_ok=True)
    moved = _aside(target, stamp)
    _aside(target.with_name(target.name + ".wal"), stamp)
    shutil.copy2(folder / manifest["warehouse"], target)
    for entry in manifest["files"]:
        dest = Path(entry["path"]) if Path(entry["path"]).is_absolute() else root / entry["path"]
        if dest.is_file() and file_sha256(dest) == entry["sha256"]:
            continue
        _aside(dest, stamp)
        _copy_tree_file(folder / entry["backup"], dest)
    open_warehouse(target)  # (migrates an older backup; rebuilds views if the folder moved)
    return moved


def _rows_into(con: duckdb.DuckDBPyConnection, table: str, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    columns = [c for (c,) in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position",
        [table],
    ).fetchall()]  # fmt: skip
    names = [c for c in columns if c in rows[0]]
    quoted = ", ".join(quote_ident(c) if c.isidentifier() else f'"{c}"' for c in names)
    marks = ", ".join("?" for _ in names)
    values = [
        [json.dumps(r[c]) if isinstance(r[c], (dict, list)) else r[c] for c in names] for r in rows
    ]
    keyed = con.execute(
        "SELECT 1 FROM duckdb_constraints() WHERE table_name = ? AND constraint_type = 'PRIMARY KEY'",
        [table],
    ).fetchall()
    verb = "INSERT OR IGNORE" if keyed else "INSERT"  # (a bronze load shared by two runs: once)
    con.executemany(f"{verb} INTO {table} ({quoted}) VALUES ({marks})", values)


def _intact(root: Path, record: dict[str, Any]) -> str | None:
    """Why a run's files are not intact (None when they are)."""
    for row in record["tables"].get("file_hashes", []):
        file = located_path(root, row["path"])
        if not file.is_file():
            return f"its file {row['path']} is missing"
        if file_sha256(file) != row["sha256"]:
            return f"its file {row['path']} changed since the run wrote it"
    return None


def rebuild(
    *, warehouse: str | Path = DEFAULT_WAREHOUSE, processed_dir: str | Path | None = None
) -> Rebuilt:
    """A new warehouse from the run records on disk (see the module docstring).

    The old warehouse file, when there is one, is moved aside first (never deleted).
    """
    target = Path(warehouse)
    folder = Path(processed_dir) if processed_dir else target.resolve().parent / "processed"
    records = sorted(folder.rglob("*.record.json")) if folder.is_dir() else []
    if not records:
        raise TracerError(f"no run records under {folder}; nothing to rebuild from")
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    found = Rebuilt(target, moved_aside=_aside(target, stamp))
    _aside(target.with_name(target.name + ".wal"), stamp)
    open_warehouse(target)
    blueprints: set[str] = set()
    with connect(target) as con:
        root = warehouse_root(con)
        for path in records:
            record = json.loads(path.read_text(encoding="utf-8"))
            run_id = record["run_id"]
            why = _intact(root, record)
            try:
                bp = get_blueprint(record["blueprint"])
            except TracerError:
                why = why or f"its blueprint {record['blueprint']!r} is not installed here"
            if why is not None:
                found.skipped.append(f"{run_id}: {why}")
                continue
            con.execute("BEGIN")
            ensure_tables(con, bp.name)
            for table in (*RECORD_TABLES, "bronze_files", "file_hashes"):
                _rows_into(con, table, record["tables"].get(table, []))
            _load_quarantine(
                con, bp.name, run_id, run_quarantine_path(path.with_name(f"{run_id}.parquet"))
            )
            record_processed_types(con, bp)
            con.execute("COMMIT")
            blueprints.add(bp.name)
            found.runs.append(run_id)
        for name in sorted(blueprints):
            refresh_views(con, name)
    return found


def _load_quarantine(con: duckdb.DuckDBPyConnection, bp: str, run_id: str, kept: Path) -> None:
    if kept.is_file():
        con.execute(
            f"INSERT INTO {quote_ident(f'quarantine_{bp}')} "
            f"SELECT ?, {quarantine_select(con, str(kept))} FROM read_parquet(?)",
            [run_id, str(kept)],
        )
