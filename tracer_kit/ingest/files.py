"""Reading one file: :func:`read_file_source`, with the :class:`ReadOptions` and a :class:`ReadContext`.

A file is checked (a regular
file, not empty, not too big), decompressed and decoded into a UTF-8 copy when needed
(stopping at the size limit or a bomb's expansion ratio), its format decided from its
content first, then read by the format's registered
:class:`~tracer_kit.ingest.registry.Reader`.
"""

from __future__ import annotations

import hashlib
import tempfile
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import polars as pl

from tracer_kit.errors import IngestError, option
from tracer_kit.ingest.delimited import conflict_marker
from tracer_kit.ingest.detect import (
    detect_encoding,
    file_head,
    looks_binary,
    normalize_encoding,
    sniff_format,
    sniff_text_format,
)
from tracer_kit.ingest.registry import READERS, ReadRequest, SheetFits, extension_format
from tracer_kit.ingest.source import Ingested, SourceInfo, file_error
from tracer_kit.ingest.streams import (
    DEFAULT_MAX_BYTES,
    SizeLimit,
    cr_to_lf,
    decompress_to,
    file_sha256,
    transcode_to,
)
from tracer_kit.options import ReadOptions

__all__ = [
    "ReadContext",
    "ReadOptions",
    "check_format",
    "read_file_source",
    "read_staged",
    "staging_folder",
]


@dataclass(frozen=True)
class ReadContext:
    """What a caller adds to the options: where copies are staged, which workbook sheet fits."""

    staging_dir: str | Path | None = None
    sheet_fits: SheetFits | None = None


def check_format(options: ReadOptions) -> None:
    """Refuse a format no registered reader reads (one line naming the registered ones)."""
    if options.format is not None and options.format not in READERS:
        msg = f"{option('format', value=options.format)} should be one of {', '.join(READERS)}"
        raise IngestError(msg)


@dataclass
class _Work:
    """A file on its way to a reader: the copy to read, its first bytes, what is known so far."""

    path: Path
    size: int
    staging: Path
    keepalive: Any
    work: Path
    head: bytes
    compression: str | None = None
    sha: str | None = None
    encoding: str | None = None
    warnings: list[str] = field(default_factory=list)

    def copy(self, suffix: str, write: Callable[[Path, Path], None]) -> None:
        """Replace the copy to read by ``write(current, new)``, hashing the original first."""
        src, self.work = self.work, self.staging / (self.path.name + suffix)
        if self.sha is None:
            self.sha = file_sha256(src)
        write(src, self.work)
        self.head = file_head(self.work)


def _special_kind(path: Path) -> str | None:
    """What a path is when it is no regular file: a named pipe, a socket or a device."""
    import stat

    mode = path.stat().st_mode
    kinds = (
        (stat.S_ISFIFO, "a named pipe (FIFO)"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    )
    return next((name for test, name in kinds if test(mode)), None)


def _checked_file(path: Path) -> int:
    """The file's size, or one clear error when it is missing, a folder or empty."""
    if not path.exists():
        raise IngestError(f"{path}: no such file", path=path)
    if path.is_dir():
        raise IngestError(f"{path}: is a folder, not a file", path=path)
    kind = _special_kind(path)
    if kind is not None:
        msg = f"{path}: is {kind}, not a file; tracer reads regular files (save the data to a file first)"
        raise IngestError(msg, path=path)
    size = path.stat().st_size
    if size == 0:
        raise file_error(path, "is empty (0 bytes)")
    return size


def _open_work(path: Path, options: ReadOptions, context: ReadContext) -> tuple[_Work, str | None]:
    """The staging folder, the decompressed copy and the format the first bytes reveal."""
    size = _checked_file(path)
    staging, keepalive = staging_folder(context.staging_dir, "tracer-ingest-")
    head = file_head(path)
    detected, compression = sniff_format(path, head)
    w = _Work(path, size, staging, keepalive, path, head, compression)
    limit = SizeLimit(path, options.max_bytes or DEFAULT_MAX_BYTES)
    if compression is None:
        limit.add(size)
        return w, detected
    w.work = staging / (path.name + ".decompressed")
    w.sha = decompress_to(path, compression, w.work, limit)
    w.head = file_head(w.work)
    if not w.head:
        raise file_error(path, f"is an empty {compression} archive")
    return w, detected


def _decide_format(w: _Work, detected: str | None, options: ReadOptions) -> str:
    """The format to read: forced, else from the content; a contradicting extension is noted."""
    if detected is None:
        if looks_binary(w.path, w.head):
            raise file_error(
                w.path, "looks like binary data, not a table (CSV, JSON, Parquet, Excel, XML)"
            )
        enc = normalize_encoding(options.encoding) if options.encoding else detect_encoding(w.head)
        text = w.head.decode(enc, errors="replace").lstrip("\ufeff")
        detected = sniff_text_format(text, extension_format(w.path))
    fmt = options.format or detected
    ext_fmt = extension_format(w.path)
    if w.compression is None and ext_fmt is not None and ext_fmt != detected:
        w.warnings.append(
            f"{w.path.name}: the extension says {ext_fmt} but the content is {detected}; read as {fmt}"
        )
    return fmt


def _as_utf8_lines(w: _Work, fmt: str, options: ReadOptions) -> None:
    """A text format's copy as UTF-8 with LF line ends (transcoded / converted when needed)."""
    w.encoding = (
        normalize_encoding(options.encoding) if options.encoding else detect_encoding(w.head)
    )
    if w.encoding not in ("utf-8", "utf-8-sig"):
        enc = w.encoding
        w.copy(".utf8", lambda src, dest: transcode_to(src, enc, dest))
    w.head = file_head(w.work)
    if b"\r" in w.head and b"\n" not in w.head:  # old Mac exports end lines with CR alone
        w.copy(".lf", cr_to_lf)
        w.warnings.append(f"{w.path.name}: lines end with CR only (old Mac format); read as lines")
    if fmt != "csv":
        conflict_marker(w.path, w.head, 0)


def read_file_source(
    path: Path, options: ReadOptions, context: ReadContext | None = None
) -> Ingested:
    """Read one file (see :func:`read_table`)."""
    context = context or ReadContext()
    w, detected = _open_work(path, options, context)
    fmt = _decide_format(w, detected, options)
    if READERS[fmt].text:
        _as_utf8_lines(w, fmt, options)
    request = ReadRequest(
        path=path,
        work=w.work,
        staging=w.staging,
        delimiter=options.delimiter,
        sheet=options.sheet,
        on_bad_lines=options.on_bad_lines,
        sheet_fits=context.sheet_fits,
        hasher=hashlib.sha256() if w.sha is None and fmt == "csv" else None,
        notes=w.warnings,
        options=options,
    )
    if w.sha is None and request.hasher is None:
        w.sha = file_sha256(path)
    got = READERS[fmt].read(request)
    if request.hasher is not None:
        w.sha = request.hasher.hexdigest()
    if not got.columns:
        raise file_error(path, "has no columns")
    rows = got.rows if got.rows is not None else got.frame.select(pl.len()).collect().item()
    info = SourceInfo(
        path=str(path),
        size=w.size,
        sha256=w.sha or "",
        format=fmt,
        encoding=w.encoding,
        delimiter=got.delimiter,
        columns=list(got.columns),
        row_count=rows,
        decimal=got.decimal,
        sheet=got.sheet,
        compression=w.compression,
        warnings=tuple(w.warnings),
    )
    return _kept(Ingested(got.frame, info, got.rejects), w.keepalive)


def staging_folder(staging_dir: str | Path | None, prefix: str) -> tuple[Path, Any]:
    """Where a reader stages its copies: ``staging_dir`` (created), else a temporary folder.

    Returns the folder and the temporary folder's handle (None for ``staging_dir``), which
    the result must keep alive (:func:`_kept`).
    """
    if staging_dir is None:
        keep = tempfile.TemporaryDirectory(prefix=prefix)
        return Path(keep.name), keep
    folder = Path(staging_dir)
    folder.mkdir(parents=True, exist_ok=True)
    return folder, None


def _kept(result: Ingested, keep: Any) -> Ingested:
    """``result`` holding ``keep`` (its staging folder) alive, removed when it goes."""
    result._keepalive = keep
    if keep is not None:
        weakref.finalize(result, keep.cleanup)
    return result


def read_staged(
    staged: Path,
    options: ReadOptions,
    keep: Any,
    *,
    lines: bool = True,
    **info: Any,
) -> Ingested:
    """Read a copy a database or API source staged, described by ``info`` in place of the copy.

    ``lines=False``: the copy's line numbers are no lines of the source (``source_line`` null).
    """
    got = read_file_source(staged, options, ReadContext(staging_dir=staged.parent))
    frame = got.frame
    if not lines:
        frame = frame.with_columns(pl.lit(None, dtype=pl.Int64).alias("source_line"))
    warnings = (*got.info.warnings, *info.pop("warnings", ()))
    return _kept(Ingested(frame, replace(got.info, warnings=warnings, **info), got.rejects), keep)
