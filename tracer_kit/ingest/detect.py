"""Looking at a file's first bytes: its format, compression, encoding, delimiter and decimal mark."""

from __future__ import annotations

import codecs
import csv
import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from tracer_kit.errors import IngestError, option
from tracer_kit.ingest.registry import magic_format
from tracer_kit.ingest.source import file_error
from tracer_kit.settings import settings

__all__ = [
    "DELIMITERS",
    "MAX_FIELD_CHARS",
    "csv_records",
    "detect_encoding",
    "file_head",
    "looks_binary",
    "normalize_encoding",
    "sniff_decimal",
    "sniff_delimiter",
    "sniff_format",
    "sniff_text_format",
]

DELIMITERS = (",", ";", "\t", "|")


def file_head(path: Path, n: int | None = None) -> bytes:
    """The first bytes of a file (the sniffing sample by default)."""
    with path.open("rb") as fh:
        return fh.read(settings.sniff_bytes if n is None else n)


def sniff_format(path: Path, head: bytes) -> tuple[str | None, str | None]:
    """(format, compression) from the first bytes; format None means text to look at further.

    A binary format is known by its reader's magic bytes (:class:`~tracer_kit.ingest.Reader`).
    """
    if (binary := magic_format(head)) is not None:
        return binary, None
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        msg = "is a legacy .xls (or other OLE) file; save it as .xlsx or CSV and try again"
        raise file_error(path, msg)
    if head.startswith(b"\x1f\x8b"):
        return None, "gzip"
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        return None, "zstd"
    return None, None


def sniff_text_format(text: str, extension: str | None = None) -> str:
    """The text format of a file's start: ``json``, ``ndjson``, ``xml`` or ``csv``."""
    stripped = text.lstrip()
    if stripped.startswith("["):
        return "json"
    if stripped.startswith("{"):
        first = stripped.split("\n", 1)[0].strip()
        try:
            json.loads(first)
            return "ndjson"
        except RecursionError:
            return "ndjson"  # (one deep line: the reader quarantines it)
        except ValueError:
            return "json"
    if stripped.startswith("<") and (extension == "xml" or _parses_as_xml(stripped)):
        return "xml"
    return "csv"


def _parses_as_xml(text: str) -> bool:
    """Whether ``text`` (a file's start) is XML: well-formed so far, with a complete element.

    A short file must parse whole; a long one must close at least one element within the
    sample, so a CSV whose header starts with ``<`` stays a CSV.
    """
    import xml.etree.ElementTree as ET

    parser = ET.XMLPullParser(events=("end",))
    try:
        parser.feed(text[: settings.sniff_bytes])
        if len(text) < settings.sniff_bytes:
            parser.close()
            return True
        return any(True for _ in parser.read_events())
    except ET.ParseError:
        return False


def looks_binary(path: Path, head: bytes) -> bool:
    """Binary when over 1% of the sampled bytes are control characters (NUL included).

    A file of nothing but NUL bytes gets its own message; a stray NUL inside a field of a
    text file does not make it binary (that record is quarantined as ``nul_byte``).
    """
    if not head:
        return False
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return False
    sample = np.frombuffer(head[:65536], dtype=np.uint8)
    if not sample.any():
        raise file_error(
            path, "holds only NUL bytes (a wiped or never-written file), no text at all"
        )
    control = (sample < 32) & ~np.isin(sample, (9, 10, 12, 13))
    return bool(control.mean() > 0.01)


_LABELS = {
    "utf_8": "utf-8",
    "utf-8": "utf-8",
    "ascii": "utf-8",
    "cp1252": "cp1252",
    "windows-1252": "cp1252",
    "latin_1": "latin-1",
    "iso-8859-1": "latin-1",
    "latin-1": "latin-1",
    "utf-8-sig": "utf-8-sig",
    "utf_16": "utf-16",
    "utf-16": "utf-16",
}


def normalize_encoding(name: str) -> str:
    """Map a codec name to one of the labels ``docs/contracts.md`` lists (utf-8, cp1252, ...)."""
    try:
        canonical = codecs.lookup(name).name
    except (LookupError, ValueError):  # (ValueError: a name with a NUL in it)
        msg = f"{option('encoding', value=name)} is not a known text encoding (try utf-8, cp1252 or latin-1)"
        raise IngestError(msg) from None
    return _LABELS.get(canonical, canonical)


def detect_encoding(head: bytes) -> str:
    """Guess the encoding from a sample: BOMs first, then strict UTF-8, then charset-normalizer."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        head.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as exc:
        if exc.start >= len(head) - 3 and exc.reason == "unexpected end of data":
            return "utf-8"  # a multi-byte character cut by the sample's end
    from charset_normalizer import from_bytes

    best = from_bytes(head, cp_isolation=["cp1252", "latin_1"]).best()
    if best is None:
        return "cp1252"
    label = _LABELS.get(best.encoding, best.encoding)
    if label == "latin-1" and any(0x80 <= b <= 0x9F for b in head):
        return "cp1252"  # C1 bytes are printable only in cp1252
    return label


#: The longest field the sniffers read (Python's csv module stops at 131,072 characters by
#: default, which a real file can pass: a long comment or an embedded document).
MAX_FIELD_CHARS = 2**31 - 1


def csv_records(lines: Iterable[str], delimiter: str) -> Iterator[list[str]]:
    """``csv.reader`` over ``lines`` without the csv module's default field-size cap."""
    if csv.field_size_limit() < MAX_FIELD_CHARS:
        csv.field_size_limit(MAX_FIELD_CHARS)
    return csv.reader(lines, delimiter=delimiter)


def sniff_delimiter(lines: list[str]) -> str:
    """The delimiter among ``, ; tab |`` that splits the sample lines most consistently."""
    best, best_score = ",", (0.0, 0)
    for delim in DELIMITERS:
        try:
            counts = [len(row) for row in csv_records(lines, delim) if row]
        except csv.Error:
            continue
        if not counts or counts[0] < 2:
            continue
        consistency = sum(c == counts[0] for c in counts) / len(counts)
        score = (consistency, counts[0])
        if score > best_score:
            best, best_score = delim, score
    return best


_DECIMAL_COMMA = re.compile(r"^-?(\d+|\d{1,3}(\.\d{3})+),\d+$")

_DECIMAL_POINT = re.compile(r"^-?(\d+|\d{1,3}(,\d{3})+)\.\d+$")

_THOUSANDS_OR_POINT = re.compile(r"^-?\d{1,3}\.\d{3}$")  # 1.234: either mark, proves nothing


def sniff_decimal(lines: list[str], delimiter: str) -> str:
    """``","`` when the sample's numbers are written with decimal commas (only for ``;``).

    ``1.234,50`` and ``12,5`` are decimal commas; ``1,234.50`` and ``12.5`` decimal points;
    ``1.234`` could be either, so it counts for neither.
    """
    if delimiter != ";":
        return "."
    comma = point = 0
    for row in csv_records(lines[1:], delimiter):
        for value in row:
            value = value.strip()
            comma += bool(_DECIMAL_COMMA.match(value))
            point += bool(_DECIMAL_POINT.match(value)) and not _THOUSANDS_OR_POINT.match(value)
    return "," if comma > 0 and point == 0 else "."
