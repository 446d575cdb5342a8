"""API keys for a server that listens beyond loopback: created once, stored only as SHA-256.

``tracer serve keys create NAME`` prints a new key once; the warehouse's ``api_keys`` table
keeps its name, its SHA-256 and when it was created or revoked. A request's bearer is hashed
and looked up; the key itself is never written anywhere.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from tracer_kit.errors import ConfigError
from tracer_kit.warehouse import IDENT, connect, open_warehouse, utcnow

__all__ = ["ApiKey", "create_key", "key_digest", "list_keys", "matching_key", "revoke_key"]

_PREFIX = "tk_"


@dataclass(frozen=True)
class ApiKey:
    """One key's record (never the key itself)."""

    name: str
    created_at: datetime
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        """Not revoked."""
        return self.revoked_at is None


def key_digest(key: str) -> str:
    """The SHA-256 (hex) stored for a key."""
    return hashlib.sha256(key.encode()).hexdigest()


def _check_name(name: str) -> str:
    if not IDENT.fullmatch(name):
        raise ConfigError(f"key name {name!r}: use letters, digits and _ (e.g. ci_loader)")
    return name


def create_key(name: str, warehouse: str | Path) -> str:
    """A new key called ``name``: stored hashed, returned (to be shown once)."""
    _check_name(name)
    open_warehouse(warehouse)
    key = _PREFIX + secrets.token_urlsafe(32)
    with connect(warehouse) as con:
        if con.execute("SELECT 1 FROM api_keys WHERE name = ?", [name]).fetchall():
            msg = (
                f"a key called {name!r} exists; revoke it first (`tracer serve keys revoke {name}`)"
            )
            raise ConfigError(msg)
        con.execute(
            "INSERT INTO api_keys VALUES (?, ?, ?, NULL)", [name, key_digest(key), utcnow()]
        )
    return key


def list_keys(warehouse: str | Path) -> list[ApiKey]:
    """Every key's name and dates, oldest first."""
    open_warehouse(warehouse)
    with connect(warehouse, read_only=True) as con:
        rows = con.execute(
            "SELECT name, created_at, revoked_at FROM api_keys ORDER BY created_at, name"
        ).fetchall()
    return [ApiKey(*row) for row in rows]


def revoke_key(name: str, warehouse: str | Path) -> None:
    """Revoke the key called ``name`` (requests bearing it get 401 from then on)."""
    _check_name(name)
    open_warehouse(warehouse)
    with connect(warehouse) as con:
        found = con.execute(
            "UPDATE api_keys SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL "
            "RETURNING name",
            [utcnow(), name],
        ).fetchall()
    if not found:
        raise ConfigError(f"no active key called {name!r}; `tracer serve keys list` shows them")


def matching_key(bearer: str, warehouse: str | Path) -> str | None:
    """The name of the active key ``bearer`` is, or None."""
    digest = key_digest(bearer)
    with connect(warehouse, read_only=True) as con:
        rows = con.execute("SELECT name, sha256 FROM api_keys WHERE revoked_at IS NULL").fetchall()
    for name, stored in rows:
        if hmac.compare_digest(stored, digest):
            return str(name)
    return None
