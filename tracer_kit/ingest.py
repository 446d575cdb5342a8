"""Ingest: turn a user's file into a lazy frame of text columns, its metadata and its rejected lines.

Every format ends up the same way: a polars ``LazyFrame`` whose columns are the file's
columns as text (values exactly as written), plus ``source_row`` (1-based data record) and
``source_line`` (physical line where the record starts; null for binary formats). Typing
is the quality stage's job, so no value is ever silently lost to a failed cast here.

Delimited text gets one vectorised byte pass (NumPy over 16 MB chunks) that hashes the
file, checks UTF-8, and finds each record's first line and field count, which polars'
``scan_csv`` does not report. Compressed and non-UTF-8 files are streamed into a staging
folder as UTF-8 first.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import hashlib
import io
import json
import re
import tempfile
import threading
import weakref
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl

from tracer_kit.errors import IngestError, option
from tracer_kit.settings import settings

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DELIMITERS",
    "READERS",
    "ReadOutcome",
    "ReadRequest",
    "Reader",
    "register_reader",
    "input_extensions",
    "FileInfo",
    "Ingested",
    "REJECT_SCHEMA",
    "RESERVED_COLUMNS",
    "detect_encoding",
    "file_sha256",
    "normalize_encoding",
    "read_table",
    "reserved_renames",
    "sniff_decimal",
    "sniff_delimiter",
]

Format = Literal["csv", "json", "ndjson", "parquet", "excel", "xml"]
SheetFits = Callable[[list[str]], bool]
DEFAULT_MAX_BYTES = 10 * 1024**3
DELIMITERS = (",", ";", "\t", "|")
REJECT_SCHEMA = {
    "source_row": pl.Int64(),
    "source_line": pl.Int64(),
    "raw": pl.String(),
    "reason": pl.String(),
}
_EXTENSIONS: dict[str, str] = {}  # extension -> format, filled by register_reader
COMPRESSIONS = (".gz", ".zst")


@dataclass(frozen=True)
class FileInfo:
    """What we know about an ingested file.

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


@dataclass
class Ingested:
    """A file read lazily: text columns plus ``source_row``/``source_line``, metadata, rejects.

    ``rejects`` has one row per record rejected at ingest: ``source_row``, ``source_line``,
    ``raw`` (the line's text) and ``reason`` (e.g. ``ragged_row``).
    """

    frame: pl.LazyFrame
    info: FileInfo
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
        if name not in RESERVED_COLUMNS and not name.startswith("_"):
            continue
        base = f"{name.lstrip('_') or 'column'}_original"
        new, n = base, 2
        while new in taken:
            new, n = f"{base}_{n}", n + 1
        taken.add(new)
        renames[name] = new
    return renames


def _rename_note(renames: dict[str, str]) -> list[str]:
    return [
        f"column {old!r} is a name tracer-kit uses itself; it is kept as {new!r}"
        for old, new in renames.items()
    ]


def _safe_frame(frame: pl.DataFrame | pl.LazyFrame, notes: list[str]) -> Any:
    """``frame`` with reserved user column names renamed (see :func:`reserved_renames`)."""
    names = frame.collect_schema().names() if isinstance(frame, pl.LazyFrame) else frame.columns
    renames = reserved_renames(list(names))
    notes.extend(_rename_note(renames))
    return frame.rename(renames) if renames else frame


# --------------------------------------------------------------------------- detection


def _fail(path: Path, message: str, **kw: Any) -> IngestError:
    return IngestError(f"{path}: {message}", path=path, **kw)


def _head(path: Path, n: int | None = None) -> bytes:
    with path.open("rb") as fh:
        return fh.read(settings.sniff_bytes if n is None else n)


def _sniff_format(path: Path, head: bytes) -> tuple[str | None, str | None]:
    """(format, compression) from the first bytes; format None means text to look at further."""
    if head.startswith(b"PAR1"):
        return "parquet", None
    if head.startswith(b"PK\x03\x04"):
        return "excel", None
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        msg = "is a legacy .xls (or other OLE) file; save it as .xlsx or CSV and try again"
        raise _fail(path, msg)
    if head.startswith(b"\x1f\x8b"):
        return None, "gzip"
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        return None, "zstd"
    return None, None


def _sniff_text_format(text: str, extension: str | None = None) -> str:
    stripped = text.lstrip()
    if stripped.startswith("["):
        return "json"
    if stripped.startswith("{"):
        first = stripped.split("\n", 1)[0].strip()
        try:
            json.loads(first)
            return "ndjson"
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


def _looks_binary(path: Path, head: bytes) -> bool:
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
        raise _fail(path, "holds only NUL bytes (a wiped or never-written file), no text at all")
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
    except LookupError:
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


def sniff_delimiter(lines: list[str]) -> str:
    """The delimiter among ``, ; tab |`` that splits the sample lines most consistently."""
    best, best_score = ",", (0.0, 0)
    for delim in DELIMITERS:
        try:
            counts = [len(row) for row in csv.reader(lines, delimiter=delim) if row]
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
    for row in csv.reader(lines[1:], delimiter=delimiter):
        for value in row:
            value = value.strip()
            comma += bool(_DECIMAL_COMMA.match(value))
            point += bool(_DECIMAL_POINT.match(value)) and not _THOUSANDS_OR_POINT.match(value)
    return "," if comma > 0 and point == 0 else "."


# --------------------------------------------------------------------------- streaming helpers


class _Limit:
    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path, self.max_bytes, self.seen = path, max_bytes, 0

    def add(self, n: int) -> None:
        self.seen += n
        if self.seen > self.max_bytes:
            msg = (
                f"is larger than the size limit of {_human(self.max_bytes)} "
                f"(counted after decompression); raise the limit ({option('max_bytes', value='N')}) "
                "to read it"
            )
            raise _fail(self.path, msg)


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def _open_decompressed(path: Path, compression: str) -> io.BufferedIOBase:
    if compression == "gzip":
        return gzip.open(path, "rb")
    import zstandard

    return zstandard.ZstdDecompressor().stream_reader(path.open("rb"), read_across_frames=True)


def _decompress(path: Path, compression: str, dest: Path, limit: _Limit) -> str:
    """Stream-decompress ``path`` into ``dest``; return the SHA-256 of the compressed file."""
    hasher = hashlib.sha256()
    with path.open("rb") as raw:
        for chunk in iter(lambda: raw.read(settings.read_chunk_bytes), b""):
            hasher.update(chunk)
    try:
        with _open_decompressed(path, compression) as src, dest.open("wb") as out:
            for chunk in iter(lambda: src.read(settings.read_chunk_bytes), b""):
                limit.add(len(chunk))
                out.write(chunk)
    except IngestError:
        raise
    except Exception as exc:  # noqa: BLE001 - gzip and zstandard raise many types for bad input
        raise _fail(path, f"is not a readable {compression} file ({_short(exc)})") from None
    return hasher.hexdigest()


def _transcode(path: Path, encoding: str, dest: Path) -> None:
    """Stream ``path`` from ``encoding`` into UTF-8 at ``dest``; undecodable bytes are replaced."""
    with path.open("rb") as src, dest.open("wb") as out:
        decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
        for chunk in iter(lambda: src.read(settings.read_chunk_bytes), b""):
            out.write(decoder.decode(chunk).encode("utf-8"))
        out.write(decoder.decode(b"", final=True).encode("utf-8"))


def _cr_to_lf(path: Path, dest: Path) -> None:
    """Stream a CR-only text file into ``dest`` with LF line ends."""
    with path.open("rb") as src, dest.open("wb") as out:
        for chunk in iter(lambda: src.read(settings.read_chunk_bytes), b""):
            out.write(chunk.replace(b"\r", b"\n"))


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file, read in chunks."""
    hasher = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(settings.read_chunk_bytes), b""):
            hasher.update(chunk)
    return hasher.hexdigest()


# --------------------------------------------------------------------------- the record scan


@dataclass
class _Records:
    """Per data record (header excluded): where it starts and whether polars sees it as a row."""

    header_fields: int
    n_records: int  # polars rows (header excluded), blanks included
    start_lines: np.ndarray | None  # None when record i starts on line i + 2 for every i
    blank: np.ndarray  # record indices (0-based, header excluded) of blank lines
    bad: np.ndarray  # record indices with a wrong field count
    bad_fields: np.ndarray
    bad_offsets: np.ndarray  # (start, end) byte offsets of bad records
    bad_utf8: np.ndarray  # record indices holding invalid UTF-8
    nul: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))  # records with NUL
    line_shift: int = 0  # lines before the header that the scanned copy left out (``sep=;``)


class _BadOffsets(threading.local):
    """Where the UTF-8 decoder failed, per thread (the error handler below is process-wide)."""

    def __init__(self) -> None:
        self.items: list[int] = []

    def append(self, value: int) -> None:
        self.items.append(value)

    def clear(self) -> None:
        self.items.clear()

    def __iter__(self):  # noqa: ANN204
        return iter(list(self.items))


_BAD_OFFSETS = _BadOffsets()


def _record_bad_utf8(exc: UnicodeDecodeError) -> tuple[str, int]:
    _BAD_OFFSETS.append(exc.start)
    return "\ufffd", exc.end


codecs.register_error("tracer_record", _record_bad_utf8)


class _RecordScan:
    """Accumulates, chunk by chunk, only what later steps need: the bad and blank records,
    their offsets, and each record's first line once any record spans several lines.
    Memory stays small for well-formed files whatever their size.
    """  # noqa: D205

    def __init__(self) -> None:
        self.header_fields: int | None = None
        self.records = 0  # records completed so far, the header included
        self.trivial = True  # so far, data record i starts on line i + 2
        self.lines: list[np.ndarray] = []
        self.blank: list[np.ndarray] = []
        self.bad: list[np.ndarray] = []
        self.bad_fields: list[np.ndarray] = []
        self.bad_offsets: list[np.ndarray] = []
        self.bad_utf8: list[np.ndarray] = []
        self.nul: list[np.ndarray] = []

    def add(
        self,
        s_lines: np.ndarray,
        s_offs: np.ndarray,
        e_offs: np.ndarray,
        last: np.ndarray,
        fields: np.ndarray,
        utf8_offsets: list[int],
        nul_offsets: np.ndarray | None = None,
    ) -> None:
        """Take the records completed in one chunk (global byte offsets, first lines, field counts)."""
        n = len(fields)
        ids = self.records + np.arange(n)  # 0 = header
        if self.header_fields is None:
            self.header_fields = int(fields[0])
        data = ids >= 1
        lengths = e_offs - s_offs
        blank = ((lengths == 0) | ((lengths == 1) & (last == 13))) & data
        bad = (fields != self.header_fields) & ~blank & data
        self.blank.append(ids[blank] - 1)
        self.bad.append(ids[bad] - 1)
        self.bad_fields.append(fields[bad])
        self.bad_offsets.append(np.stack([s_offs[bad], e_offs[bad]], axis=1))
        if utf8_offsets:
            self.bad_utf8.append(
                self.records + np.searchsorted(e_offs, np.asarray(utf8_offsets), side="left")
            )
        if nul_offsets is not None and len(nul_offsets):
            self.nul.append(self.records + np.searchsorted(e_offs, nul_offsets, side="left"))
        expected = ids[data] + 1
        if self.trivial and not np.array_equal(s_lines[data], expected):
            self.trivial = False
            self.lines.append(
                np.arange(2, int(ids[data][0]) + 1 if data.any() else 2, dtype=np.int64)
            )
        if not self.trivial:
            self.lines.append(s_lines[data].astype(np.int64))
        self.records += n

    def result(self, path: Path) -> _Records:
        if self.records == 0 or self.header_fields is None:
            raise _fail(path, "has no lines")

        def cat(parts: list[np.ndarray], dtype: Any = np.int64) -> np.ndarray:
            return np.concatenate(parts).astype(dtype) if parts else np.empty(0, dtype=dtype)

        bad_utf8 = np.unique(cat(self.bad_utf8))
        if len(bad_utf8) and bad_utf8[0] == 0:
            raise _fail(path, "has invalid UTF-8 in its header line", line=1)
        nul = np.unique(cat(self.nul))
        if len(nul) and nul[0] == 0:
            raise _fail(path, "has a NUL byte in its header line", line=1)
        return _Records(
            header_fields=self.header_fields,
            n_records=self.records - 1,
            start_lines=None if self.trivial else cat(self.lines),
            blank=cat(self.blank),
            bad=cat(self.bad),
            bad_fields=cat(self.bad_fields),
            bad_offsets=np.concatenate(self.bad_offsets)
            if self.bad_offsets
            else np.empty((0, 2), np.int64),
            bad_utf8=bad_utf8 - 1,
            nul=nul - 1,
        )


_CONFLICT = re.compile(rb"(?m)^(<{7}|={7}|>{7})(?: .*)?\r?$")


def _conflict_marker(path: Path, chunk: bytes, lines_before: int) -> None:
    """Refuse a file committed in the middle of a git merge, naming the marker and its line."""
    if b"<<<<<<<" not in chunk and b">>>>>>>" not in chunk:
        return
    found = _CONFLICT.search(chunk)
    if found is None:
        return
    line = lines_before + chunk.count(b"\n", 0, found.start()) + 1
    marker = found.group(0).decode("utf-8", errors="replace").strip()
    msg = (
        f"line {line} is a git conflict marker ({marker!r}): the file was saved in the middle "
        "of a merge; resolve the conflict and try again"
    )
    raise _fail(path, msg, line=line)


def _scan_records(
    path: Path,
    delimiter: str,
    hasher: Any | None,
    *,
    check_utf8: bool,
    original: Path | None = None,
) -> _Records:
    """One vectorised pass: record boundaries outside quotes, field counts, first lines.

    A newline ends a record when the number of quote characters before it is even; a
    delimiter separates fields under the same condition. Escaped quotes (``""``) toggle
    twice, so the parity rule holds for RFC 4180 files.
    """
    delim = ord(delimiter)
    parity = 0
    lines_before = 0
    rec_start_line, rec_start_off, rec_fields = 1, 0, 0
    prev_last = -1
    offset = 0
    scan = _RecordScan()
    decoder = codecs.getincrementaldecoder("utf-8")(errors="tracer_record") if check_utf8 else None
    with path.open("rb") as fh:
        while True:
            chunk = fh.read(settings.read_chunk_bytes)
            if not chunk:
                break
            if hasher is not None:
                hasher.update(chunk)
            utf8_offsets: list[int] = []
            # pure-ASCII chunks (the common case) are valid UTF-8 without decoding
            if decoder is not None and not (chunk.isascii() and not decoder.getstate()[0]):
                _BAD_OFFSETS.clear()
                pending = len(decoder.getstate()[0])
                decoder.decode(chunk)
                utf8_offsets = [offset - pending + o for o in _BAD_OFFSETS]
            _conflict_marker(original or path, chunk, lines_before)
            a = np.frombuffer(chunk, dtype=np.uint8)
            nul = offset + np.flatnonzero(a == 0) if b"\x00" in chunk else None
            q = np.flatnonzero(a == 34)
            nl = np.flatnonzero(a == 10)
            dl = np.flatnonzero(a == delim)
            if len(q):
                end_idx = np.flatnonzero(((parity + np.searchsorted(q, nl)) & 1) == 0)
                dl_out = dl[((parity + np.searchsorted(q, dl)) & 1) == 0]
            else:  # no quote in the chunk: the carried parity decides for all
                end_idx = np.arange(len(nl)) if parity == 0 else np.empty(0, dtype=np.int64)
                dl_out = dl if parity == 0 else dl[:0]
            ends = nl[end_idx]
            if len(ends):
                cum = np.searchsorted(dl_out, ends)
                count = np.diff(cum, prepend=0)
                count[0] += rec_fields
                end_lines = lines_before + end_idx + 1
                s_lines = np.concatenate(([rec_start_line], end_lines[:-1] + 1))
                s_offs = np.concatenate(([rec_start_off], offset + ends[:-1] + 1))
                before_end = np.where(ends > 0, a[np.maximum(ends - 1, 0)], prev_last)
                scan.add(s_lines, s_offs, offset + ends, before_end, count + 1, utf8_offsets, nul)
                rec_start_line = int(end_lines[-1]) + 1
                rec_start_off = int(offset + ends[-1] + 1)
                rec_fields = len(dl_out) - int(cum[-1])
            elif utf8_offsets or nul is not None:
                if utf8_offsets:
                    scan.bad_utf8.append(np.full(len(utf8_offsets), scan.records))
                if nul is not None:
                    scan.nul.append(np.full(1, scan.records))
                rec_fields += len(dl_out)
            else:
                rec_fields += len(dl_out)
            parity = (parity + len(q)) & 1
            lines_before += len(nl)
            prev_last = int(a[-1])
            offset += len(chunk)
    if decoder is not None:
        _BAD_OFFSETS.clear()
        decoder.decode(b"", final=True)
        if list(_BAD_OFFSETS):
            scan.bad_utf8.append(np.array([scan.records]))
    if parity:
        msg = f"a quoted field opened on line {rec_start_line} is never closed"
        raise _fail(path, msg, line=rec_start_line)
    if rec_start_off < offset:  # last record without a trailing newline
        scan.add(
            np.array([rec_start_line]),
            np.array([rec_start_off]),
            np.array([offset]),
            np.array([prev_last]),
            np.array([rec_fields + 1]),
            [],
        )
    return scan.result(path)


def _line_text(path: Path, start: int, end: int, limit: int = 10_000) -> str:
    with path.open("rb") as fh:
        fh.seek(start)
        data = fh.read(min(end - start, limit))
    return data.decode("utf-8", errors="replace").rstrip("\r\n")


# --------------------------------------------------------------------------- readers


_SEP_LINE = re.compile(r"^\ufeff?sep=(.)\s*$")


def _sample_lines(path: Path, original: Path) -> list[str]:
    """Up to 200 whole lines from the start of a UTF-8 text file (BOM removed)."""
    head = _head(path)
    text = head.decode("utf-8", errors="replace").removeprefix("\ufeff")
    if not text.strip():
        raise _fail(original, "contains only whitespace, no header and no rows")
    lines = text.splitlines()[:200]
    if len(head) == settings.sniff_bytes and len(lines) > 1:
        lines = lines[:-1]  # the last sampled line may be cut
    return lines


def _without_first_line(path: Path, dest: Path, hasher: Any | None) -> Path:
    """Copy ``path`` without its first line (hashing every original byte into ``hasher``)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with path.open("rb") as src, dest.open("wb") as out:
        first = src.readline()
        if hasher is not None:
            hasher.update(first)
        for chunk in iter(lambda: src.read(settings.read_chunk_bytes), b""):
            if hasher is not None:
                hasher.update(chunk)
            out.write(chunk)
    return dest


def _read_delimited(
    path: Path,
    original: Path,
    *,
    delimiter: str | None,
    on_bad_lines: str,
    hasher: Any | None,
    staging: Path,
) -> tuple[pl.LazyFrame, pl.DataFrame, dict[str, Any]]:
    sample_lines = _sample_lines(path, original)
    shift = 0
    sep = _SEP_LINE.match(sample_lines[0])
    if sep:  # Excel's "sep=;" first line names the delimiter; the header is the next line
        path = _without_first_line(path, staging / f"{original.name}.nosep", hasher)
        hasher, shift = None, 1
        delimiter = delimiter or sep.group(1)
        sample_lines = _sample_lines(path, original)
    delim = delimiter or sniff_delimiter(sample_lines)
    decimal = sniff_decimal(sample_lines, delim)
    header = next(csv.reader(sample_lines[:50], delimiter=delim), [])
    header = [h.strip() for h in header]
    if header and header[0].startswith("\ufeff"):
        header[0] = header[0][1:]
    for i, name in enumerate(header, start=1):
        if not name:
            msg = f"header line has an empty column name at position {i}"
            raise _fail(original, msg, line=1)
    seen: dict[str, int] = {}
    for i, name in enumerate(header, start=1):
        if name in seen:
            msg = f"header line names column {name!r} twice (positions {seen[name]} and {i})"
            raise _fail(original, msg, line=1, column=name)
        seen[name] = i
    renames = reserved_renames(header)
    header = [renames.get(h, h) for h in header]
    records = _scan_records(path, delim, hasher, check_utf8=True, original=original)
    if records.n_records - len(records.blank) == 0:
        raise _fail(original, "has a header but no data rows", line=1)
    bad_idx = np.union1d(np.union1d(records.bad, records.bad_utf8), records.nul)
    records.line_shift = shift
    rejects = _delimited_rejects(path, original, records, on_bad_lines, delim, header)
    lf = pl.scan_csv(
        path,
        separator=delim,
        has_header=True,
        new_columns=header,
        infer_schema=False,
        truncate_ragged_lines=True,
        encoding="utf8-lossy" if len(records.bad_utf8) else "utf8",
        quote_char='"',
        raise_if_empty=False,
    ).with_row_index("_rec")
    drop = np.union1d(bad_idx, records.blank)
    if records.start_lines is None and len(records.blank) == 0:
        rec = pl.col("_rec").cast(pl.Int64)
        lf = lf.with_columns(source_row=rec + 1, source_line=rec + 2 + shift)
        if len(drop):
            lf = lf.filter(~pl.col("_rec").is_in(pl.Series(drop.astype(np.int64)).implode()))
    else:
        keep = np.setdiff1d(np.arange(records.n_records), drop)
        rows, lines = _source_positions(records, keep)
        mapping = pl.DataFrame(
            {"_rec": pl.Series(keep, dtype=pl.UInt32), "source_row": rows, "source_line": lines}
        )
        lf = lf.join(mapping.lazy(), on="_rec", how="inner", maintain_order="left")
    lf = lf.drop("_rec").select("source_row", "source_line", *header)
    options = {
        "delimiter": delim,
        "decimal": decimal,
        "columns": header,
        "rows": records,
        "notes": _rename_note(renames),
    }
    return lf, rejects, options


def _source_positions(records: _Records, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``source_row`` (blank lines skipped) and ``source_line`` of the given data records."""
    idx = np.asarray(indices, dtype=np.int64)
    rows = idx + 1 - np.searchsorted(records.blank, idx)
    lines = records.start_lines[idx] if records.start_lines is not None else idx + 2
    return rows, lines.astype(np.int64) + records.line_shift


def _nul_column(text: str, delimiter: str, header: list[str] | None) -> str:
    """Which field of a record's text holds the NUL byte (its header name when known)."""
    for i, value in enumerate(
        next(csv.reader([text.replace("\x00", "\ufffd")], delimiter=delimiter), [])
    ):
        if "\ufffd" in value and "\x00" in text:
            return repr(header[i]) if header and i < len(header) else f"field {i + 1}"
    return "a field"


def _delimited_rejects(
    path: Path,
    original: Path,
    records: _Records,
    on_bad_lines: str,
    delimiter: str,
    header: list[str] | None = None,
) -> pl.DataFrame:
    all_bad = np.union1d(np.union1d(records.bad, records.bad_utf8), records.nul)
    if len(all_bad) == 0:
        return pl.DataFrame(schema=REJECT_SCHEMA)
    rows, lines = _source_positions(records, all_bad)
    fields = dict(zip(records.bad.tolist(), records.bad_fields.tolist(), strict=True))
    nul = set(records.nul.tolist())
    offsets = dict(zip(records.bad.tolist(), records.bad_offsets.tolist(), strict=True))
    shift = records.line_shift
    texts = _line_texts(
        path,
        {int(ln) - shift for i, ln in zip(all_bad.tolist(), lines, strict=True) if i not in fields},
    )
    raws, reasons = [], []
    for idx, line in zip(all_bad.tolist(), lines.tolist(), strict=True):
        if idx in fields:
            raws.append(_line_text(path, *offsets[idx]))
            reasons.append(f"ragged_row: {fields[idx]} fields, expected {records.header_fields}")
        elif idx in nul:
            text = texts.get(line - shift, "")
            raws.append(text.replace("\x00", "\u2400"))  # ␀: visible, and valid in JSON text
            reasons.append(f"nul_byte: a NUL byte in {_nul_column(text, delimiter, header)}")
        else:
            raws.append(texts.get(line - shift, ""))
            reasons.append("invalid_encoding: not valid UTF-8")
    if on_bad_lines == "error":
        first = reasons[0]
        if first.startswith("ragged_row"):
            msg = (
                f"line {lines[0]} has {fields[int(all_bad[0])]} fields, expected "
                f"{records.header_fields} (ragged row; use "
                f"{option('on_bad_lines', value='quarantine')} to keep the other rows)"
            )
        elif first.startswith("nul_byte"):
            msg = (
                f"line {lines[0]} holds {first.split(': ', 1)[1]} (use "
                f"{option('on_bad_lines', value='quarantine')} to keep the other rows)"
            )
        else:
            msg = (
                f"line {lines[0]} is not valid UTF-8 (pass {option('encoding', value='cp1252')} "
                "or latin-1 if the file is not UTF-8)"
            )
        raise _fail(original, msg, line=int(lines[0]))
    return pl.DataFrame(
        {"source_row": rows, "source_line": lines, "raw": raws, "reason": reasons},
        schema=REJECT_SCHEMA,
    )


def _line_texts(path: Path, wanted: set[int]) -> dict[int, str]:
    """Text of the given physical lines (slow path, only for undecodable records)."""
    found: dict[int, str] = {}
    if not wanted:
        return found
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if number in wanted:
                found[number] = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                if len(found) == len(wanted):
                    break
    return found


def _as_text(df: pl.DataFrame | pl.LazyFrame) -> pl.LazyFrame:
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


def _with_rows(lf: pl.LazyFrame, *, line_offset: int | None, notes: list[str]) -> pl.LazyFrame:
    lf = _safe_frame(lf, notes)
    lf = lf.with_row_index("source_row", offset=1).with_columns(pl.col("source_row").cast(pl.Int64))
    if line_offset is None:
        line = pl.lit(None, dtype=pl.Int64)
    else:
        line = pl.col("source_row") + line_offset
    return lf.with_columns(line.alias("source_line")).select(
        "source_row", "source_line", pl.exclude("source_row", "source_line")
    )


def _read_parquet(path: Path) -> tuple[pl.LazyFrame, int]:
    try:
        lf = pl.scan_parquet(path)
        schema = lf.collect_schema()
        rows = pl.scan_parquet(path).select(pl.len()).collect().item()
    except Exception as exc:  # noqa: BLE001 - pyarrow/polars raise many types for bad files
        raise _fail(path, f"is not a readable Parquet file ({_short(exc)})") from None
    if not schema:
        raise _fail(path, "is a Parquet file with no columns")
    return _as_text(lf), rows


def _short(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__


def _fitting_sheet(path: Path, reader: Any, sheets: list[str], fits: SheetFits) -> str:
    """The first sheet whose header row has what ``fits`` asks for (a blueprint's fields)."""
    headers = {}
    for name in sheets:
        try:
            headers[name] = [c.name for c in reader.load_sheet(name, n_rows=0).available_columns()]
        except Exception:  # noqa: BLE001 - an empty or chart-only sheet has no header row
            headers[name] = []
        if fits(headers[name]):
            return name
    listed = "; ".join(
        f"{n!r} ({', '.join(map(repr, h[:6])) or 'empty'}{', ...' if len(h) > 6 else ''})"
        for n, h in headers.items()
    )
    msg = f"no sheet has the columns the blueprint needs; its sheets are {listed} (choose one with {option('sheet', value='NAME')})"
    raise _fail(path, msg)


def _read_excel(
    path: Path,
    sheet: str | int | None,
    fits: SheetFits | None = None,
    notes: list[str] | None = None,
) -> tuple[pl.DataFrame, str]:
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except zipfile.BadZipFile:
        raise _fail(
            path, "looks like a zip archive but is damaged; re-export the workbook"
        ) from None
    if not any(n.startswith("xl/") for n in names):
        raise _fail(path, "is a zip archive, not an Excel .xlsx workbook")
    import fastexcel

    try:
        reader = fastexcel.read_excel(str(path))
        sheets = list(reader.sheet_names)
    except Exception as exc:  # noqa: BLE001
        raise _fail(path, f"is not a readable Excel workbook ({_short(exc)})") from None
    if sheet is None:
        sheet = _fitting_sheet(path, reader, sheets, fits) if fits and len(sheets) > 1 else 0
        if sheet not in (0, sheets[0]) and notes is not None:
            notes.append(
                f"{path.name}: read sheet {sheet!r}, the first whose columns fit the blueprint"
            )
    if isinstance(sheet, str) and sheet.isdigit():
        sheet = int(sheet)
    if isinstance(sheet, int):
        if not 0 <= sheet < len(sheets):
            msg = f"has {len(sheets)} sheet(s); sheet index {sheet} is out of range (0-based)"
            raise _fail(path, msg)
        name = sheets[sheet]
    else:
        if sheet not in sheets:
            msg = f"has no sheet named {sheet!r}; its sheets are {', '.join(map(repr, sheets))}"
            raise _fail(path, msg)
        name = sheet
    try:
        df = pl.read_excel(path, sheet_name=name, engine="calamine", infer_schema_length=0)
    except Exception as exc:  # noqa: BLE001
        msg = f"sheet {name!r} cannot be read ({_short(exc)})"
        raise _fail(path, msg) from None
    # date cells come back as "YYYY-MM-DD 00:00:00": keep the date's ISO text form
    midnight = r"^(\d{4}-\d{2}-\d{2}) 00:00:00$"
    df = df.with_columns(pl.col(pl.String).str.replace(midnight, "${1}"))
    return df, name


def _read_json(path: Path) -> pl.DataFrame:
    try:
        with path.open("rb") as fh:
            data = json.load(fh)
    except UnicodeDecodeError:
        raise _fail(path, "is not UTF-8 encoded JSON") from None
    except json.JSONDecodeError as exc:
        raise _fail(
            path,
            f"is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}",
            line=exc.lineno,
        ) from None
    if isinstance(data, dict):
        lists = [v for v in data.values() if isinstance(v, list)]
        if len(lists) != 1:
            raise _fail(
                path, "is a JSON object; expected an array of records (or one array inside)"
            )
        data = lists[0]
    if not isinstance(data, list) or not data:
        raise _fail(path, "holds no records (expected a non-empty JSON array of objects)")
    for i, item in enumerate(data, start=1):
        if not isinstance(item, dict):
            msg = f"element {i} is a {type(item).__name__}, not an object (record)"
            raise _fail(path, msg)
    rows = [{k: _json_text(v) for k, v in item.items()} for item in data]
    return _text_frame(rows)


def _text_frame(records: list[dict[str, str | None]]) -> pl.DataFrame:
    """Records (dicts of text) as a frame of text columns, in order of first appearance."""
    columns = list(dict.fromkeys(k for r in records for k in r))
    return pl.DataFrame(records, schema={c: pl.String for c in columns})


def _json_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(value, sort_keys=True)


def _read_ndjson(
    path: Path, on_bad_lines: str, notes: list[str]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    records: list[dict[str, str | None]] = []
    rows, lines = [], []
    rejects: dict[str, list[Any]] = {"source_row": [], "source_line": [], "raw": [], "reason": []}
    with path.open("r", encoding="utf-8", errors="strict", newline="") as fh:
        number = 0
        try:
            for number, line in enumerate(fh, start=1):  # noqa: B007
                text = line.strip()
                if not text:
                    continue
                row_no = len(rows) + len(rejects["source_row"]) + 1
                try:
                    item = json.loads(text)
                    if not isinstance(item, dict):
                        raise ValueError(f"a {type(item).__name__}, not an object")
                except ValueError as exc:
                    reason = f"invalid_json: {exc}"
                    if on_bad_lines == "error":
                        msg = f"line {number} is not a JSON object ({exc})"
                        raise _fail(path, msg, line=number) from None
                    for key, value in zip(
                        rejects, (row_no, number, text[:10_000], reason), strict=True
                    ):
                        rejects[key].append(value)
                    continue
                records.append({k: _json_text(v) for k, v in item.items()})
                rows.append(row_no)
                lines.append(number)
        except UnicodeDecodeError:
            raise _fail(path, f"line {number + 1} is not valid UTF-8", line=number + 1) from None
    if not records:
        raise _fail(path, "holds no JSON records")
    df = _safe_frame(_text_frame(records), notes)
    columns = df.columns
    df = df.with_columns(
        source_row=pl.Series(rows, dtype=pl.Int64), source_line=pl.Series(lines, dtype=pl.Int64)
    ).select("source_row", "source_line", *columns)
    return df, pl.DataFrame(rejects, schema=REJECT_SCHEMA)


def _read_xml(path: Path) -> pl.DataFrame:
    """Records are the repeated child elements of the root; their fields are child elements or attributes."""
    import xml.etree.ElementTree as ET

    rows: list[dict[str, str | None]] = []
    record_tag = None
    depth = 0
    try:
        for event, elem in ET.iterparse(path, events=("start", "end")):
            if event == "start":
                depth += 1
                if depth == 2 and record_tag is None:
                    record_tag = elem.tag
                continue
            depth -= 1
            if depth == 1 and elem.tag == record_tag:
                row: dict[str, str | None] = dict(elem.attrib)
                for child in elem:
                    text = (child.text or "").strip()
                    row[_local(child.tag)] = text if text else None
                rows.append(row)
                elem.clear()
    except ET.ParseError as exc:
        line = exc.position[0] if exc.position else None
        raise _fail(path, f"is not well-formed XML ({exc})", line=line) from None
    if not rows:
        raise _fail(path, "holds no repeated record elements under its root")
    return _text_frame(rows)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


# --------------------------------------------------------------------------- the reader registry


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
    """One input format: its name, whether it is text (decoded to UTF-8 first), and its reader."""

    name: str
    text: bool
    read: Callable[[ReadRequest], ReadOutcome]
    extensions: tuple[str, ...] = ()


def _data_columns(lf: pl.LazyFrame) -> list[str]:
    return [c for c in lf.collect_schema().names() if c not in ("source_row", "source_line")]


def _outcome(lf: pl.LazyFrame, rows: int | None = None, **kw: Any) -> ReadOutcome:
    return ReadOutcome(frame=lf, columns=_data_columns(lf), rows=rows, **kw)


def _delimited_reader(req: ReadRequest) -> ReadOutcome:
    lf, rejects, opts = _read_delimited(
        req.work,
        req.path,
        delimiter=req.delimiter,
        on_bad_lines=req.on_bad_lines,
        hasher=req.hasher,
        staging=req.staging,
    )
    req.notes.extend(opts["notes"])
    recs: _Records = opts["rows"]
    return ReadOutcome(
        frame=lf,
        columns=opts["columns"],
        rejects=rejects,
        rows=recs.n_records - len(recs.blank),
        delimiter=opts["delimiter"],
        decimal=opts["decimal"],
    )


def _parquet_reader(req: ReadRequest) -> ReadOutcome:
    lf, rows = _read_parquet(req.work)
    return _outcome(_with_rows(lf, line_offset=None, notes=req.notes), rows)


def _excel_reader(req: ReadRequest) -> ReadOutcome:
    df, name = _read_excel(req.work, req.sheet, req.sheet_fits, req.notes)
    if df.height == 0:
        raise _fail(req.path, f"sheet {name!r} has a header but no data rows")
    return _outcome(_with_rows(_as_text(df), line_offset=1, notes=req.notes), df.height, sheet=name)


def _json_reader(req: ReadRequest) -> ReadOutcome:
    return _outcome(_with_rows(_read_json(req.work).lazy(), line_offset=None, notes=req.notes))


def _ndjson_reader(req: ReadRequest) -> ReadOutcome:
    df, rejects = _read_ndjson(req.work, req.on_bad_lines, req.notes)
    return _outcome(df.lazy(), df.height + rejects.height, rejects=rejects)


def _xml_reader(req: ReadRequest) -> ReadOutcome:
    return _outcome(_with_rows(_read_xml(req.work).lazy(), line_offset=None, notes=req.notes))


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


for _reader in (
    Reader("csv", True, _delimited_reader, (".csv", ".tsv", ".txt", ".psv")),
    Reader("json", True, _json_reader, (".json",)),
    Reader("ndjson", True, _ndjson_reader, (".ndjson", ".jsonl")),
    Reader("parquet", False, _parquet_reader, (".parquet", ".pq")),
    Reader("excel", False, _excel_reader, (".xlsx", ".xlsm")),
    Reader("xml", True, _xml_reader, (".xml",)),
):
    register_reader(_reader)


# --------------------------------------------------------------------------- entry point


def read_table(
    path: str | Path,
    *,
    format: str | None = None,  # noqa: A002 - the documented public name
    encoding: str | None = None,
    delimiter: str | None = None,
    sheet: str | int | None = None,
    max_bytes: int | None = None,
    on_bad_lines: Literal["error", "quarantine"] = "error",
    staging_dir: str | Path | None = None,
    sheet_fits: SheetFits | None = None,
) -> Ingested:
    """Read a table file lazily as text columns, with its metadata and rejected lines.

    Parameters
    ----------
    path
        CSV/TSV (any of ``, ; tab |``), JSON array, NDJSON, Parquet, Excel ``.xlsx``, XML,
        or gzip/zstd-compressed text. The format is decided from the content first.
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
    path = Path(path)
    if on_bad_lines not in ("error", "quarantine"):
        msg = f"on_bad_lines={on_bad_lines!r} should be 'error' or 'quarantine'"
        raise IngestError(msg)
    if format is not None and format not in READERS:
        msg = f"{option('format', value=format)} should be one of {', '.join(READERS)}"
        raise IngestError(msg)
    if delimiter is not None and len(delimiter) != 1:
        msg = f"{option('delimiter', value=delimiter)} should be a single character"
        raise IngestError(msg)
    if not path.exists():
        raise IngestError(f"{path}: no such file", path=path)
    if path.is_dir():
        raise IngestError(f"{path}: is a folder, not a file", path=path)
    size = path.stat().st_size
    if size == 0:
        raise _fail(path, "is empty (0 bytes)")
    limit = _Limit(path, max_bytes or DEFAULT_MAX_BYTES)
    keepalive = None
    if staging_dir is None:
        keepalive = tempfile.TemporaryDirectory(prefix="tracer-ingest-")
        staging = Path(keepalive.name)
    else:
        staging = Path(staging_dir)
        staging.mkdir(parents=True, exist_ok=True)

    head = _head(path)
    detected, compression = _sniff_format(path, head)
    warnings: list[str] = []
    work = path
    sha = None
    if compression is not None:
        work = staging / (path.name + ".decompressed")
        sha = _decompress(path, compression, work, limit)
        head = _head(work)
        if not head:
            raise _fail(path, f"is an empty {compression} archive")
    else:
        limit.add(size)
    if detected is None:
        if _looks_binary(path, head):
            raise _fail(
                path, "looks like binary data, not a table (CSV, JSON, Parquet, Excel, XML)"
            )
        enc0 = normalize_encoding(encoding) if encoding else detect_encoding(head)
        detected = _sniff_text_format(
            head.decode(enc0, errors="replace").lstrip("\ufeff"),
            _EXTENSIONS.get(path.suffix.lower()),
        )
    fmt = format or detected
    ext_fmt = _EXTENSIONS.get(path.suffix.lower())
    if compression is None and ext_fmt is not None and ext_fmt != detected:
        warnings.append(
            f"{path.name}: the extension says {ext_fmt} but the content is {detected}; read as {fmt}"
        )

    enc = None
    delim = None
    decimal = None
    sheet_name = None
    rejects = pl.DataFrame(schema=REJECT_SCHEMA)
    row_count: int | None
    if READERS[fmt].text:
        enc = normalize_encoding(encoding) if encoding else detect_encoding(head)
        if enc not in ("utf-8", "utf-8-sig"):
            src = work
            work = staging / (path.name + ".utf8")
            if sha is None:
                sha = file_sha256(src)
            _transcode(src, enc, work)
        head = _head(work)
        if b"\r" in head and b"\n" not in head:  # old Mac exports end lines with CR alone
            src = work
            work = staging / (path.name + ".lf")
            if sha is None:
                sha = file_sha256(src)
            _cr_to_lf(src, work)
            warnings.append(f"{path.name}: lines end with CR only (old Mac format); read as lines")
        if fmt != "csv":
            _conflict_marker(path, head, 0)
    request = ReadRequest(
        path=path,
        work=work,
        staging=staging,
        delimiter=delimiter,
        sheet=sheet,
        on_bad_lines=on_bad_lines,
        sheet_fits=sheet_fits,
        hasher=hashlib.sha256() if sha is None and fmt == "csv" else None,
        notes=warnings,
    )
    if sha is None and request.hasher is None:
        sha = file_sha256(path)
    got = READERS[fmt].read(request)
    if request.hasher is not None:
        sha = request.hasher.hexdigest()
    lf, rejects, columns = got.frame, got.rejects, got.columns
    delim, decimal, sheet_name = got.delimiter, got.decimal, got.sheet
    row_count = got.rows if got.rows is not None else lf.select(pl.len()).collect().item()
    if not columns:
        raise _fail(path, "has no columns")
    info = FileInfo(
        path=str(path),
        size=size,
        sha256=sha,
        format=fmt,
        encoding=enc,
        delimiter=delim,
        columns=list(columns),
        row_count=row_count,
        decimal=decimal,
        sheet=sheet_name,
        compression=compression,
        warnings=tuple(warnings),
    )
    result = Ingested(frame=lf, info=info, rejects=rejects, _keepalive=keepalive)
    if keepalive is not None:
        weakref.finalize(result, keepalive.cleanup)
    return result
