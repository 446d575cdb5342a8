"""The entry point: :func:`read_table` reads a source into text columns, its description and rejects.

A *source* is a file path, a database URL (a table or a query) or an http(s) URL (a JSON
API, or a file to download): :func:`source_kind` says which kind a source is, and
:data:`SOURCES` maps each kind to the function that reads it (files:
:mod:`~tracer_kit.ingest.files`, databases: :mod:`~tracer_kit.ingest.database`, APIs:
:mod:`~tracer_kit.ingest.api`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from tracer_kit.connections import check_url, is_database_url
from tracer_kit.errors import IngestError, TracerError
from tracer_kit.ingest.database import read_database
from tracer_kit.ingest.files import ReadContext, ReadOptions, check_format, read_file_source
from tracer_kit.ingest.registry import SheetFits
from tracer_kit.ingest.source import Ingested
from tracer_kit.lazy import lazy_module

# HTTP sources only: urllib.request brings ssl and http.client (30 ms of every cold command).
api_source = lazy_module("tracer_kit.ingest.api")

__all__ = ["SOURCES", "ReadOptions", "read_options", "read_source", "read_table", "source_kind"]


def read_database_source(source: str, options: ReadOptions, context: ReadContext) -> Ingested:
    """Read a database table or query (see :mod:`tracer_kit.ingest.database`)."""
    return read_database(
        source,
        table=options.table,
        query=options.query,
        on_bad_lines=options.on_bad_lines,
        staging_dir=context.staging_dir,
    )


def read_api_source(source: str, options: ReadOptions, context: ReadContext) -> Ingested:
    """Read an HTTP JSON API or a file at an http(s) URL (see :mod:`tracer_kit.ingest.api`)."""
    check_url(source)
    api = options.api
    if options.max_bytes is not None:
        api = api.model_copy(update={"max_bytes": options.max_bytes})
    return api_source.read_api(
        source, api, on_bad_lines=options.on_bad_lines, staging_dir=context.staging_dir
    )


#: How each kind of source is read.
SOURCES: dict[str, Callable[[Any, ReadOptions, ReadContext], Ingested]] = {
    "file": read_file_source,
    "database": read_database_source,
    "http": read_api_source,
    "https": read_api_source,
}


def source_kind(source: str | Path) -> str:
    """``"file"`` for a path, ``"database"`` for a database URL (or ``env:NAME``); else a URI's scheme."""
    text = str(source)
    if is_database_url(text) and not Path(text).exists():
        return "database"
    scheme, sep, _ = text.partition("://")
    if sep and scheme.isalpha() and len(scheme) > 1 and not Path(text).exists():
        return scheme.lower()
    return "file"


def read_table(  # noqa: PLR0913 - a source and the read options the CLI offers
    path: str | Path,
    *,
    format: str | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
    sheet: str | int | None = None,
    max_bytes: int | None = None,
    on_bad_lines: Literal["error", "quarantine"] = "error",
    staging_dir: str | Path | None = None,
    sheet_fits: SheetFits | None = None,
    table: str | None = None,
    query: str | None = None,
    api: Any = None,
) -> Ingested:
    """Read a table file (or a database table or query) lazily as text columns, with its metadata and rejects.

    Parameters
    ----------
    path
        CSV/TSV (any of ``, ; tab |``), JSON array, NDJSON, Parquet, Excel ``.xlsx``, XML,
        or gzip/zstd-compressed text. The format is decided from the content first. Or a
        database URL (``postgresql://user@host:5432/db``, ``sqlite:///file.db``,
        ``duckdb:///file.duckdb``, ``env:TRACER_DB_URL``) with ``table`` or ``query``.
    format
        Force a format (``csv``, ``json``, ``ndjson``, ``parquet``, ``excel``, ``xml``).
    encoding
        Force a text encoding; by default detected from a sample.
    delimiter
        Force the field delimiter of delimited text; by default sniffed.
    sheet
        Excel sheet name or 0-based index (default: the first).
    max_bytes
        Refuse files larger than this many bytes after decompression (default 10 GB).
    on_bad_lines
        ``"error"`` stops at the first ragged or undecodable line; ``"quarantine"`` keeps
        the other rows and returns the bad lines in ``rejects``.
    staging_dir
        Where decompressed or transcoded copies go (default: a temporary folder kept alive
        as long as the result).
    sheet_fits
        With no ``sheet``, a workbook of several sheets is read from the first sheet whose
        header row this accepts (runs pass "has the blueprint's required fields"), so a
        cover page in front of the data is skipped; no sheet fitting is an error naming them.
    table
        With a database URL: read this table (``schema.table`` allowed) in primary-key order.
    query
        With a database URL: read the rows of this SQL query (give it an ``ORDER BY``).
    api
        With an ``https://`` URL of a JSON API: how to page through it
        (:class:`tracer_kit.ApiOptions`: records path, pagination, rate limit, token...).

    Returns
    -------
    Ingested
        ``frame`` (text columns plus ``source_row`` and ``source_line``), ``info`` and ``rejects``.

    Raises
    ------
    IngestError
        For a missing, empty, binary, oversized, undecodable or malformed file; the message
        names the file and, where known, the line.

    Examples
    --------
    >>> import tracer_kit as tk
    >>> ing = tk.read_table("data/samples/customers.csv")  # doctest: +SKIP
    >>> ing.info.delimiter, ing.info.encoding  # doctest: +SKIP
    (',', 'utf-8')
    """
    options = read_options(
        format=format,
        encoding=encoding,
        delimiter=delimiter,
        sheet=sheet,
        max_bytes=max_bytes,
        on_bad_lines=on_bad_lines,
        table=table,
        query=query,
        api=api,
    )
    return read_source(path, options, ReadContext(staging_dir, sheet_fits))


def read_options(**values: Any) -> ReadOptions:
    """:class:`ReadOptions` from keywords (None: not given), a bad value refused in one line."""
    given = {k: v for k, v in values.items() if v is not None}
    try:
        options = ReadOptions(**given)
    except TracerError as exc:
        raise IngestError(str(exc)) from None
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"])
        value = error.get("input")
        raise IngestError(f"{where}={value!r}: {error['msg'].lower()}") from None
    return options


def read_source(path: str | Path, options: ReadOptions, context: ReadContext) -> Ingested:
    """Read ``path`` (a file, a database URL or an http(s) URL) with ``options``."""
    check_format(options)
    kind = source_kind(path)
    table, query = options.table, options.query
    if kind != "database" and (table is not None or query is not None):
        msg = f"{path}: --table and --query read a database; give a database URL (postgresql://...)"
        raise IngestError(msg, path=Path(str(path)))
    reader = SOURCES.get(kind)
    if reader is None:
        msg = (
            f"{path}: tracer-kit reads files and databases (postgresql://, sqlite:///, "
            f"duckdb:///); no source reader handles {kind}://"
        )
        raise IngestError(msg, path=Path(str(path)))
    return reader(Path(path) if kind == "file" else path, options, context)
