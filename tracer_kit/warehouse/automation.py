"""The server's own tables: schedules, alert rules, alerts sent, and the inbox's files.

One short connection per call, like every warehouse write. Rows go in and come out as
dicts keyed by column; JSON columns are dicts or lists on the way out.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tracer_kit.warehouse.connection import connect, fetched_dicts, json_text
from tracer_kit.warehouse.migrations import open_warehouse

__all__ = [
    "AUTOMATION_TABLES",
    "delete_row",
    "inbox_run_of",
    "insert_row",
    "table_rows",
    "update_row",
]

#: Each table: its key column, its JSON columns, and whether one row at most has a key
#: (an inbox duplicate is recorded without a run: its key is null).
AUTOMATION_TABLES: dict[str, tuple[str, frozenset[str], bool]] = {
    "schedules": ("name", frozenset({"last_runs", "seen"}), True),
    "alert_rules": ("name", frozenset({"rule"}), True),
    "alerts": ("alert_id", frozenset(), True),
    "inbox_files": ("run_id", frozenset(), False),
}


def _stored(table: str, row: dict[str, Any]) -> dict[str, Any]:
    jsons = AUTOMATION_TABLES[table][1]
    return {k: json_text(v) if k in jsons else v for k, v in row.items()}


def _loaded(table: str, row: dict[str, Any]) -> dict[str, Any]:
    jsons = AUTOMATION_TABLES[table][1]
    return {k: json.loads(v) if k in jsons and v is not None else v for k, v in row.items()}


def insert_row(warehouse: str | Path, table: str, row: dict[str, Any]) -> bool:
    """Add a row; False when a row with its key exists already (nothing written)."""
    open_warehouse(warehouse)
    key, _, unique = AUTOMATION_TABLES[table]
    stored = _stored(table, row)
    columns = ", ".join(f'"{c}"' for c in stored)
    marks = ", ".join("?" for _ in stored)
    with connect(warehouse) as con:
        if (
            table != "inbox_files"
            and con.execute(f'SELECT 1 FROM {table} WHERE "{key}" = ?', [row[key]]).fetchall()
        ):
            return False
        con.execute(f"INSERT INTO {table} ({columns}) VALUES ({marks})", list(stored.values()))
    return True


def update_row(warehouse: str | Path, table: str, key: str, changes: dict[str, Any]) -> bool:
    """Change some columns of the row keyed ``key``; whether there was one."""
    if not changes:
        return bool(table_rows(warehouse, table, key=key))
    open_warehouse(warehouse)
    column = AUTOMATION_TABLES[table][0]
    stored = _stored(table, changes)
    sets = ", ".join(f'"{c}" = ?' for c in stored)
    with connect(warehouse) as con:
        found = con.execute(
            f'UPDATE {table} SET {sets} WHERE "{column}" = ? RETURNING 1',
            [*stored.values(), key],
        ).fetchall()
    return bool(found)


def delete_row(warehouse: str | Path, table: str, key: str) -> bool:
    """Delete the row keyed ``key``; whether there was one."""
    open_warehouse(warehouse)
    column = AUTOMATION_TABLES[table][0]
    with connect(warehouse) as con:
        found = con.execute(
            f'DELETE FROM {table} WHERE "{column}" = ? RETURNING 1', [key]
        ).fetchall()
    return bool(found)


def table_rows(
    warehouse: str | Path,
    table: str,
    *,
    key: str | None = None,
    order: str = "",
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """The table's rows (the one keyed ``key``), in ``order`` (an ORDER BY clause)."""
    if not Path(warehouse).exists():
        return []
    open_warehouse(warehouse)
    column = AUTOMATION_TABLES[table][0]
    where, params = ("TRUE", []) if key is None else (f'"{column}" = ?', [key])
    tail = f" ORDER BY {order}" if order else ""
    tail += f" LIMIT {int(limit)}" if limit is not None else ""
    with connect(warehouse, read_only=True) as con:
        cur = con.execute(f"SELECT * FROM {table} WHERE {where}{tail}", params)
        return [_loaded(table, row) for row in fetched_dicts(cur)]


def inbox_run_of(warehouse: str | Path, blueprint: str, sha256: str) -> str | None:
    """The completed run of a file with this content from the blueprint's inbox (None: none)."""
    if not Path(warehouse).exists():
        return None
    open_warehouse(warehouse)
    with connect(warehouse, read_only=True) as con:
        rows = con.execute(
            "SELECT run_id FROM inbox_files WHERE blueprint = ? AND sha256 = ? AND outcome = 'done' "
            "ORDER BY received_at LIMIT 1",
            [blueprint, sha256],
        ).fetchall()
    return rows[0][0] if rows else None
