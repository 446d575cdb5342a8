"""What every source reads into: a description of the source and its rows as text.

:class:`SourceInfo` describes where rows came from (a file today; a database query or an
API can fill the same fields) and :class:`Ingested` holds the rows: a lazy frame of text
columns plus ``source_row`` and ``source_line``, and the records rejected on the way.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from tracer_kit.errors import IngestError

__all__ = [
    "REJECT_SCHEMA",
    "RESERVED_COLUMNS",
    "escaped_name",
    "file_error",
    "FileInfo",
    "Ingested",
    "rename_notes",
    "reserved_renames",
    "safe_frame",
    "short_message",
    "SourceInfo",
]

REJECT_SCHEMA = {
    "source_row": pl.Int64(),
    "source_line": pl.Int64(),
    "raw": pl.String(),
    "reason": pl.String(),
}


@dataclass(frozen=True)
class SourceInfo:
    """What we know about a source: where it is, how it was read, its columns and rows.

    ``path`` names the source in messages (a file path, or a database or API location
    without credentials); ``format`` says how it was read (``csv``... or ``postgresql``,
    ``sqlite``, ``duckdb``), and ``query`` is the SQL a database source ran.

    ``read_options()`` are the resolved options that, with ``sha256``, identify a bronze load.
    """

    path: str
    size: int
    sha256: str
    format: str
    encoding: str | None
    delimiter: str | None
    columns: list[str]
    row_count: int | None
    decimal: str | None = None
    sheet: str | None = None
    compression: str | None = None
    warnings: tuple[str, ...] = ()
    query: str | None = None  # the SQL a database source ran (None for files)
    #: An API source's pages: url, requested_at, status, first_row (its first source_row), rows.
    pages: tuple[dict[str, Any], ...] = ()

    def read_options(self) -> dict[str, Any]:
        """The resolved read options ``{format, encoding, delimiter, decimal, sheet}``."""
        return {
            "format": self.format,
            "encoding": self.encoding,
            "delimiter": self.delimiter,
            "decimal": self.decimal,
            "sheet": self.sheet,
        }

    def read_options_hash(self) -> str:
        """SHA-256 of the sorted JSON of :meth:`read_options`."""
        text = json.dumps(self.read_options(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()


#: The name this description had when every source was a file.
FileInfo = SourceInfo


@dataclass
class Ingested:
    """A file read lazily: text columns plus ``source_row``/``source_line``, metadata, rejects.

    ``rejects`` has one row per record rejected at ingest: ``source_row``, ``source_line``,
    ``raw`` (the line's text) and ``reason`` (e.g. ``ragged_row``).
    """

    frame: pl.LazyFrame
    info: SourceInfo
    rejects: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=REJECT_SCHEMA))
    _keepalive: Any = field(default=None, repr=False)

    @property
    def data_columns(self) -> list[str]:
        """The file's own columns (without ``source_row``/``source_line``)."""
        return list(self.info.columns)


# --------------------------------------------------------------------------- reserved names

# Columns tracer-kit adds beside the file's own (bronze, quarantine, processed tables): a
# user column with one of these names is kept under another name, never a crash.
RESERVED_COLUMNS = frozenset(
    {
        "source_row",
        "source_line",
        "extras",
        "run_id",
        "raw",
        "reasons",
        "stage",
        "file_sha256",
        "read_options_hash",
        "source_file",
        "first_run_id",
        "ingested_at",
        "validation_status",
        "error_message",
    }
)


def reserved_renames(columns: list[str]) -> dict[str, str]:
    """Renames that keep a user's column whose name tracer-kit uses itself (``source_row`` -> ``source_row_original``).

    Names starting with ``_`` are internal to tracer-kit's plans too, so they are renamed the
    same way (``__dup`` -> ``dup_original``).
    """
    taken = set(columns)
    renames: dict[str, str] = {}
    for name in columns:
        if _CONTROL.search(name):
            new = escaped_name(name)
            while new in taken:
                new += "_"
            taken.add(new)
            renames[name] = new
            continue
        if name not in RESERVED_COLUMNS and not name.startswith("_"):
            continue
        base = f"{name.lstrip('_') or 'column'}_original"
        new, n = base, 2
        while new in taken:
            new, n = f"{base}_{n}", n + 1
        taken.add(new)
        renames[name] = new
    return renames


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def escaped_name(name: str) -> str:
    r"""A column name with each control character written out (``plan\ntype``): visible, one line."""
    names = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
    return _CONTROL.sub(lambda m: names.get(m.group(), f"\\x{ord(m.group()):02x}"), name)


def rename_notes(renames: dict[str, str]) -> list[str]:
    """One warning per renamed column, saying why it was renamed and what it is called now."""
    return [
        f"column {old!r} holds a control character (a line break, tab or the like); it is kept "
        f"as {new!r}"
        if _CONTROL.search(old)
        else f"column {old!r} is a name tracer-kit uses itself; it is kept as {new!r}"
        for old, new in renames.items()
    ]


def safe_frame(frame: pl.DataFrame | pl.LazyFrame, notes: list[str]) -> Any:
    """``frame`` with reserved user column names renamed (see :func:`reserved_renames`)."""
    names = frame.collect_schema().names() if isinstance(frame, pl.LazyFrame) else frame.columns
    renames = reserved_renames(list(names))
    notes.extend(rename_notes(renames))
    return frame.rename(renames) if renames else frame


def file_error(path: Path, message: str, **kw: Any) -> IngestError:
    """The one-line error about a file: ``<path>: <message>`` (``kw``: line, column...)."""
    return IngestError(f"{path}: {message}", path=path, **kw)


def short_message(exc: BaseException) -> str:
    """An exception's first line (at most 200 characters), or its type's name."""
    return str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
