"""Ingest: turn a source into a lazy frame of text columns, its description and its rejected records.

Every format ends up the same way: a polars ``LazyFrame`` whose columns are the source's
columns as text (values exactly as written), plus ``source_row`` (1-based data record) and
``source_line`` (physical line where the record starts; null for binary formats). Typing
is the quality stage's job, so no value is ever silently lost to a failed cast here.

- :mod:`~tracer_kit.ingest.read`: :func:`read_table`, the dispatcher on a source.
- :mod:`~tracer_kit.ingest.files`: :class:`ReadOptions` and reading one file.
- :mod:`~tracer_kit.ingest.registry`: the :class:`Reader` registry of input formats.
- one module per format: ``delimited``, ``json_records`` (JSON and NDJSON), ``parquet``,
  ``excel``, ``xml_records``.
- :mod:`~tracer_kit.ingest.detect` (format, encoding, delimiter, decimal mark) and
  :mod:`~tracer_kit.ingest.streams` (decompress, transcode, hash).
- :mod:`~tracer_kit.ingest.source`: :class:`SourceInfo` and :class:`Ingested`.
"""

from tracer_kit.ingest import delimited, excel, json_records, parquet, xml_records
from tracer_kit.ingest.detect import (
    DELIMITERS,
    detect_encoding,
    normalize_encoding,
    sniff_decimal,
    sniff_delimiter,
)
from tracer_kit.ingest.files import ReadContext
from tracer_kit.ingest.read import (
    SOURCES,
    ReadOptions,
    read_options,
    read_source,
    read_table,
    source_kind,
)
from tracer_kit.ingest.registry import (
    COMPRESSIONS,
    READERS,
    Reader,
    ReadOutcome,
    ReadRequest,
    input_extensions,
    register_reader,
)
from tracer_kit.ingest.source import (
    REJECT_SCHEMA,
    RESERVED_COLUMNS,
    FileInfo,
    Ingested,
    SourceInfo,
    reserved_renames,
)
from tracer_kit.ingest.streams import DEFAULT_MAX_BYTES, file_sha256

# The built-in formats register on import; this is the order they are listed in.
_BUILT_IN = ("csv", "json", "ndjson", "parquet", "excel", "xml")
READERS.update({name: READERS.pop(name) for name in _BUILT_IN})
del delimited, excel, json_records, parquet, xml_records

__all__ = [
    "COMPRESSIONS",
    "DEFAULT_MAX_BYTES",
    "DELIMITERS",
    "FileInfo",
    "Ingested",
    "READERS",
    "REJECT_SCHEMA",
    "RESERVED_COLUMNS",
    "ReadContext",
    "ReadOptions",
    "ReadOutcome",
    "ReadRequest",
    "Reader",
    "SOURCES",
    "SourceInfo",
    "detect_encoding",
    "file_sha256",
    "input_extensions",
    "normalize_encoding",
    "read_options",
    "read_source",
    "read_table",
    "register_reader",
    "reserved_renames",
    "sniff_decimal",
    "sniff_delimiter",
    "source_kind",
]
