"""The input formats: a :class:`Reader` per format, registered by name (:data:`READERS`).

A reader takes a :class:`ReadRequest` (the user's file, the copy to read, the options) and
returns a :class:`ReadOutcome` (text columns plus ``source_row`` / ``source_line``, what it
rejected and learned). :func:`register_reader` adds a format; each built-in format lives in
its own module of this package and registers itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from tracer_kit.ingest.source import REJECT_SCHEMA, safe_frame
from tracer_kit.options import ReadOptions

__all__ = [
    "COMPRESSIONS",
    "READERS",
    "ReadOutcome",
    "ReadRequest",
    "Reader",
    "SheetFits",
    "as_text",
    "extension_format",
    "input_extensions",
    "magic_format",
    "outcome",
    "register_reader",
    "text_frame",
    "with_rows",
]

SheetFits = Callable[[list[str]], bool]

_EXTENSIONS: dict[str, str] = {}  # extension -> format, filled by register_reader

COMPRESSIONS = (".gz", ".zst")


@dataclass
class ReadRequest:
    """What a reader is given: the user's file, the copy to read, and the read options."""

    path: Path  # the user's file (for messages)
    work: Path  # what to read: the file, or its decompressed / UTF-8 / LF copy
    staging: Path  # where a reader may write copies
    delimiter: str | None = None
    sheet: str | int | None = None
    on_bad_lines: str = "error"
    sheet_fits: SheetFits | None = None
    hasher: Any | None = None  # fed every byte of the file when the reader hashes as it reads
    notes: list[str] = field(default_factory=list)  # warnings for the user
    #: Every read option as given (a reader that takes an option of its own reads it here).
    options: ReadOptions = field(default_factory=ReadOptions)


@dataclass
class ReadOutcome:
    """What a reader returns: text columns plus ``source_row``/``source_line``, and what it learned."""

    frame: pl.LazyFrame
    columns: list[str]
    rejects: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=REJECT_SCHEMA))
    rows: int | None = None  # data records, rejects included (None: count the frame)
    delimiter: str | None = None
    decimal: str | None = None
    sheet: str | None = None


@dataclass(frozen=True)
class Reader:
    """One input format: its name, whether it is text (decoded to UTF-8 first), its reader, the
    extensions that name it, and the first bytes that identify a binary file of it.

    Detection looks at content first: a file starting with one of a reader's ``magic``
    prefixes is that reader's format whatever its name; text is sniffed; an extension only
    decides what content does not.
    """  # noqa: D205

    name: str
    text: bool
    read: Callable[[ReadRequest], ReadOutcome]
    extensions: tuple[str, ...] = ()
    magic: tuple[bytes, ...] = ()


def input_extensions() -> tuple[str, ...]:
    """File name endings tracer-kit reads: every format's, and the compressed ones."""
    return (*_EXTENSIONS, *COMPRESSIONS)


#: The input formats, by name; :func:`register_reader` adds one.
READERS: dict[str, Reader] = {}


def register_reader(reader: Reader) -> Reader:
    """Add (or replace) an input format; its extensions map to it when content does not decide."""
    READERS[reader.name] = reader
    for ext in reader.extensions:
        _EXTENSIONS[ext] = reader.name
    return reader


def magic_format(head: bytes) -> str | None:
    """The format whose magic bytes ``head`` starts with, if any."""
    return next((r.name for r in READERS.values() if r.magic and head.startswith(r.magic)), None)


def extension_format(path: Path) -> str | None:
    """The format a file's extension names, if any."""
    return _EXTENSIONS.get(path.suffix.lower())


def _data_columns(lf: pl.LazyFrame) -> list[str]:
    return [c for c in lf.collect_schema().names() if c not in ("source_row", "source_line")]


def outcome(lf: pl.LazyFrame, rows: int | None = None, **kw: Any) -> ReadOutcome:
    """A reader's outcome for a frame that already has ``source_row`` and ``source_line``."""
    return ReadOutcome(frame=lf, columns=_data_columns(lf), rows=rows, **kw)


def as_text(df: pl.DataFrame | pl.LazyFrame) -> pl.LazyFrame:
    """Every column as text: dates ISO, numbers in their shortest round-trip form, nested as JSON."""
    lf = df.lazy()
    exprs = []
    for name, dtype in lf.collect_schema().items():
        col = pl.col(name)
        if dtype == pl.String:
            exprs.append(col)
        elif isinstance(dtype, (pl.Struct, pl.List, pl.Array)):
            # encode {"v": value} and keep the value's JSON: `{"v":` is 5 characters, `}` one
            exprs.append(
                pl.struct(col.alias("v")).struct.json_encode().str.slice(5).str.head(-1).alias(name)
            )
        elif dtype == pl.Datetime:
            exprs.append(
                pl.when(col.dt.time() == pl.time(0))
                .then(col.dt.strftime("%Y-%m-%d"))
                .otherwise(col.dt.strftime("%Y-%m-%dT%H:%M:%S"))
                .alias(name)
            )
        else:
            exprs.append(col.cast(pl.String))
    return lf.select(exprs)


def with_rows(lf: pl.LazyFrame, *, line_offset: int | None, notes: list[str]) -> pl.LazyFrame:
    """``source_row`` (1-based) and ``source_line`` (row + ``line_offset``, or null) added first."""
    lf = safe_frame(lf, notes)
    lf = lf.with_row_index("source_row", offset=1).with_columns(pl.col("source_row").cast(pl.Int64))
    if line_offset is None:
        line = pl.lit(None, dtype=pl.Int64)
    else:
        line = pl.col("source_row") + line_offset
    return lf.with_columns(line.alias("source_line")).select(
        "source_row", "source_line", pl.exclude("source_row", "source_line")
    )


def text_frame(records: list[dict[str, str | None]]) -> pl.DataFrame:
    """Records (dicts of text) as a frame of text columns, in order of first appearance."""
    columns = list(dict.fromkeys(k for r in records for k in r))
    return pl.DataFrame(records, schema={c: pl.String for c in columns})
