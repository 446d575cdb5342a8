"""Personal data at rest: the raw values of ``pii`` fields in bronze and quarantine.

A run's ``pii`` fields never show their values in reports, notebooks or the workbench. At
rest, the raw records keep them only in a form that needs a key:

- **Encrypted** (AES-256-GCM, the ``cryptography`` package) when an encryption key is set:
  ``TRACER_ENCRYPTION_KEY`` (or the variable the config's ``encryption_key: env:NAME``
  names) holding 32 bytes as 64 hex digits or base64. Each value gets its own random
  12-byte nonce and is stored as ``enc:v1:<base64 of nonce + ciphertext + tag>``, with the
  column name as associated data. :func:`reveal` (``tracer quarantine --include-pii``) gives
  the raw values back with the same key; the key itself is never stored or printed, only a
  fingerprint (an HMAC of a fixed text) that tells a wrong key from the right one.
- **Pseudonymised** when no encryption key is set: ``tok:`` and 32 hex digits of an
  HMAC-SHA256 under the pseudonymisation key (``TRACER_PSEUDONYMISE_KEY``), or under a
  random key thrown away after the run when there is none. Equal values stay equal (within
  the run at least); nothing can bring the raw value back.

A record rejected at ingest is kept as its whole line; when a run has personal fields that
line is protected whole the same way. The run's staging copies (removed at its commit) are
the only place the raw values are written in clear.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

from tracer_kit.connections import dotenv_value
from tracer_kit.errors import ConfigError, TracerError
from tracer_kit.settings import parquet_options
from tracer_kit.warehouse import query, run_row
from tracer_kit.workspace import DEFAULT_WAREHOUSE

__all__ = [
    "ENCRYPTED_PREFIX",
    "ENCRYPTION_KEY_ENV",
    "LINE_KEY",
    "TOKEN_PREFIX",
    "decrypt_value",
    "encrypt_value",
    "encryption_key",
    "key_fingerprint",
    "open_raw",
    "protect_run_files",
    "reveal",
    "revealing_key",
]

ENCRYPTION_KEY_ENV = "TRACER_ENCRYPTION_KEY"
PSEUDONYMISE_KEY_ENV = "TRACER_PSEUDONYMISE_KEY"
ENCRYPTED_PREFIX = "enc:v1:"
TOKEN_PREFIX = "tok:"
_NONCE = 12
#: The key of a rejected line's text in a raw record.
LINE_KEY = "_line"


def _parse_key(text: str, where: str) -> bytes:
    text = text.strip()
    for decode in (bytes.fromhex, base64.b64decode):
        try:
            key = decode(text)
        except (ValueError, binascii.Error):
            continue
        if len(key) == 32:
            return key
    msg = (
        f"{where} should hold a 32-byte key as 64 hex digits or base64 (make one with: "
        "python -c 'import secrets; print(secrets.token_hex(32))')"
    )
    raise ConfigError(msg)


def encryption_key(reference: str | None = None) -> bytes | None:
    """The AES-256 key: from the variable ``reference`` names (``env:NAME``), else from
    ``TRACER_ENCRYPTION_KEY``; None when neither is set.
    """  # noqa: D205
    name = ENCRYPTION_KEY_ENV
    if reference is not None:
        if not reference.startswith("env:"):
            msg = f"encryption_key={reference!r}: give the variable that holds it, as env:NAME"
            raise ConfigError(msg)
        name = reference[4:]

    value = dotenv_value(name)
    if not value:
        if reference is not None:
            raise ConfigError(f"encryption_key {reference}: the variable {name} is not set")
        return None
    return _parse_key(value, name)


def key_fingerprint(key: bytes, purpose: str) -> str:
    """16 hex digits that identify ``key`` without revealing it (an HMAC of a fixed text)."""
    return hmac.new(
        key, f"tracer-kit key fingerprint: {purpose}".encode(), hashlib.sha256
    ).hexdigest()[:16]


def encrypt_value(value: str, key: bytes, column: str) -> str:
    """``value`` encrypted with AES-256-GCM under a fresh nonce (``column`` as associated data)."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = os.urandom(_NONCE)
    sealed = AESGCM(key).encrypt(nonce, value.encode("utf-8"), column.encode("utf-8"))
    return ENCRYPTED_PREFIX + base64.b64encode(nonce + sealed).decode("ascii")


def decrypt_value(text: str, key: bytes, column: str) -> str:
    """The value :func:`encrypt_value` sealed; a :class:`TracerError` for a wrong key."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    if not text.startswith(ENCRYPTED_PREFIX):
        return text
    raw = base64.b64decode(text[len(ENCRYPTED_PREFIX) :])
    try:
        return AESGCM(key).decrypt(raw[:_NONCE], raw[_NONCE:], column.encode("utf-8")).decode()
    except InvalidTag:
        msg = f"column {column!r}: the encryption key does not open this value (a different key?)"
        raise TracerError(msg) from None


def _token(value: str, key: bytes) -> str:
    return TOKEN_PREFIX + hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()[:32]


Protect = Callable[[str, str], str]  # (value, column) -> stored text


def _protector(key: bytes | None, token_key: bytes) -> Protect:
    if key is not None:
        return lambda value, column: encrypt_value(value, key, column)
    return lambda value, _column: _token(value, token_key)


def _protect_raw(raw: str | None, columns: set[str], protect: Protect) -> str | None:
    """A raw record's JSON with its personal values (and a rejected line) protected."""
    if raw is None:
        return None
    record = json.loads(raw)
    if not isinstance(record, dict):
        return raw
    for name, value in record.items():
        if value is not None and (name in columns or name == LINE_KEY):
            record[name] = protect(str(value), name)
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


def _parts(path: Path) -> list[Path]:
    """A Parquet file, or the part files of a folder (the Spark engine's output)."""
    return sorted(path.glob("*.parquet")) if path.is_dir() else [path]


def _rewrite(path: Path, change: Callable[[pl.DataFrame], pl.DataFrame]) -> None:
    for part in _parts(path):
        frame = change(pl.read_parquet(part))
        partial = part.with_name(part.name + ".partial")
        frame.write_parquet(partial, **parquet_options())
        partial.replace(part)


def _column_map(protect: Protect, column: str) -> pl.Expr:
    return pl.col(column).map_elements(
        lambda v: protect(v, column), return_dtype=pl.String, skip_nulls=True
    )


def protect_run_files(
    files: dict[str, Path | None], columns: list[str], key: bytes | None, token_key: bytes
) -> str:
    """Protect the personal ``columns`` (source names) in a run's staged bronze and quarantine.

    ``files`` maps ``bronze``, ``rejects`` and ``quarantine`` to their staged Parquet (or
    None). Returns how the values are kept: ``"encrypted"`` or ``"pseudonymised"``.
    """
    protect, wanted = _protector(key, token_key), set(columns)
    bronze = files.get("bronze")
    if bronze is not None and bronze.exists():
        _rewrite(
            bronze,
            lambda f: f.with_columns(_column_map(protect, c) for c in columns if c in f.columns),
        )
    for name in ("rejects", "quarantine"):
        path = files.get(name)
        if path is not None and path.exists():
            _rewrite(
                path,
                lambda f: f.with_columns(
                    pl.col("raw").map_elements(
                        lambda raw: _protect_raw(raw, wanted, protect), return_dtype=pl.String
                    )
                ),
            )
    return "encrypted" if key is not None else "pseudonymised"


def reveal(
    run_id: str,
    *,
    what: str = "quarantine",
    warehouse: str | Path | None = None,
    key: bytes | None = None,
) -> pl.DataFrame:
    """A run's quarantined (or bronze) records with their personal values decrypted.

    Needs the encryption key the run used (``TRACER_ENCRYPTION_KEY``, or ``key``). A run
    whose personal values were pseudonymised has nothing to reveal: its raw values are gone.

    Raises
    ------
    TracerError
        Without a key, with a key other than the run's, or for a pseudonymised run.
    """
    warehouse = warehouse or DEFAULT_WAREHOUSE
    if what not in ("quarantine", "bronze"):
        raise ConfigError(f"what={what!r} should be 'quarantine' or 'bronze'")
    row = run_row(run_id, warehouse=warehouse)
    columns = list(row["record"].personal_columns)
    key = revealing_key(run_id, row["record"], key)
    table = f'"{what}_{row["blueprint"]}"'
    if what == "quarantine":
        where, params = "run_id = ?", [run_id]
    else:  # the bronze load the run read (shared by every run over that file and options)
        where = "file_sha256 = ? AND read_options_hash = ?"
        params = [row["input_sha256"], (row["read_options"] or {}).get("hash")]
    rows = query(
        f"SELECT * FROM {table} WHERE {where} ORDER BY source_row",
        warehouse=warehouse,
        params=params,
    )
    return rows.with_columns(
        pl.col("raw")
        .cast(pl.String)
        .map_elements(lambda raw: open_raw(raw, set(columns), key), return_dtype=pl.String)
    )


def revealing_key(run_id: str, record: Any, key: bytes | None = None) -> bytes:
    """The key that decrypts run ``run_id``'s personal values (``key``, else the one set).

    Raises
    ------
    TracerError
        Without a key, with a key other than the run's, or for a run with nothing encrypted.
    """
    at_rest = record.personal_at_rest
    if at_rest is None or at_rest.mode != "encrypted":
        why = (
            "it has no personal fields"
            if not record.personal_columns
            else "its values were pseudonymised"
        )
        raise TracerError(f"run {run_id} has nothing to reveal: {why} (no encryption key was set)")
    key = key or encryption_key(at_rest.key_reference)
    if key is None:
        raise TracerError(f"set {ENCRYPTION_KEY_ENV} to the key run {run_id} was encrypted with")
    if key_fingerprint(key, "encryption") != at_rest.key_fingerprint:
        msg = (
            f"the encryption key set is not the one run {run_id} was encrypted with "
            f"(fingerprint {key_fingerprint(key, 'encryption')}, the run's {at_rest.key_fingerprint})"
        )
        raise TracerError(msg)
    return key


def open_raw(raw: str | None, columns: set[str], key: bytes) -> str | None:
    """A raw record (JSON) with its personal values decrypted."""
    if raw is None:
        return None
    record: dict[str, Any] = json.loads(raw)
    for name, value in record.items():
        if isinstance(value, str) and (name in columns or name == LINE_KEY):
            record[name] = decrypt_value(value, key, name)
    return json.dumps(record, ensure_ascii=False)
