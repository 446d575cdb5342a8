"""An in-memory copy of the warehouse's run tables, refreshed when the file changes (the server's).

DuckDB lets one process write a file while no other has it open, so a server that opened
the warehouse for every ``GET /runs/{id}`` would take the lock from the runs its workers
are committing (and pay ~16 ms an open). Instead the server reads a replica: the run
tables (``runs``, ``stage_timings``, ``quality_issues``, ``column_profiles``, ``schedules``,
``alerts``) copied into an
in-memory database whenever the file's stamp (size and modification time of the file and
its write-ahead log) has changed, or was changed less than 0.1 s before the last copy (file
times move in clock ticks). A refresh that finds the file locked keeps the copy it
has and tries again on the next request, so readers never wait for writers; the copy is
behind by at most one commit for as long as a writer holds the lock.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb

from tracer_kit.warehouse.connection import copied_tables, reading_from

__all__ = ["REPLICATED_TABLES", "Replica"]

#: The tables the read-only routes answer from.
REPLICATED_TABLES = (
    "runs",
    "stage_timings",
    "quality_issues",
    "column_profiles",
    "schedules",
    "alerts",
    "alert_rules",
    "inbox_files",
)


def _stamp(warehouse: Path) -> tuple:
    parts = []
    for path in (warehouse, warehouse.with_name(warehouse.name + ".wal")):
        try:
            st = path.stat()
            parts.append((st.st_mtime_ns, st.st_size, st.st_ino))
        except FileNotFoundError:
            parts.append(None)
    return tuple(parts)


class Replica:
    """The copy, its stamp, and a block that serves a thread's reads from it."""

    def __init__(self, warehouse: Path) -> None:
        self.warehouse = warehouse
        self._db: duckdb.DuckDBPyConnection | None = None
        self._stamp: tuple | None = None
        self._lock = threading.Lock()

    def _refresh(self) -> None:
        stamp = _stamp(self.warehouse)
        if stamp == self._stamp or not self.warehouse.exists():
            return
        if not self._lock.acquire(blocking=self._db is None):
            return  # another thread is copying; this one answers from the current copy
        try:
            if stamp == self._stamp:
                return
            db = copied_tables(self.warehouse, REPLICATED_TABLES)
            if db is None:
                return  # locked by a writer (or mid-migration): keep the copy we have
            # a file changed within the clock's tick may change again with the same stamp:
            # such a copy is used but checked again on the next request
            recent = any(p and time.time_ns() - p[0] < 100_000_000 for p in stamp)
            self._db, self._stamp = db, None if recent else stamp
        finally:
            self._lock.release()

    @contextlib.contextmanager
    def reads(self) -> Iterator[None]:
        """Read-only warehouse reads in this block come from the (refreshed) copy."""
        self._refresh()
        db = self._db
        if db is None:  # no warehouse yet, or locked since start: read the file
            yield
            return
        cursor = db.cursor()
        try:
            with reading_from(self.warehouse, cursor):
                yield
        finally:
            cursor.close()
