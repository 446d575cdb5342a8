"""Streaming a file into a readable copy: decompressed, as UTF-8, with LF line ends; hashing it."""

from __future__ import annotations

import codecs
import gzip
import hashlib
import io
from pathlib import Path

from tracer_kit.errors import IngestError, option
from tracer_kit.ingest.source import file_error, short_message
from tracer_kit.settings import settings

__all__ = [
    "DEFAULT_MAX_BYTES",
    "MAX_RATIO",
    "RATIO_AFTER_BYTES",
    "cr_to_lf",
    "decompress_to",
    "file_sha256",
    "human_bytes",
    "SizeLimit",
    "transcode_to",
]

#: 10 GB (sizes are decimal everywhere: 1 MB = 10^6 bytes, 1 GB = 10^9 bytes).
DEFAULT_MAX_BYTES = 10 * 10**9
#: A compressed input that expands more than this many times...
MAX_RATIO = 100
#: ...once this much has come out is refused early (a "zip bomb"), before the size limit.
RATIO_AFTER_BYTES = 100 * 10**6


class SizeLimit:
    """Counts decompressed bytes against ``max_bytes`` and the expansion ratio, before they are written."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path, self.max_bytes, self.seen = path, max_bytes, 0

    def add(self, n: int, compressed: int | None = None) -> None:
        """Count ``n`` more bytes out of ``compressed`` bytes read; refuse past a limit."""
        self.seen += n
        if self.seen > self.max_bytes:
            msg = (
                f"is larger than the size limit of {human_bytes(self.max_bytes)} "
                f"(counted after decompression); raise the limit ({option('max_bytes', value='N')}) "
                "to read it"
            )
            raise file_error(self.path, msg)
        if compressed and self.seen > RATIO_AFTER_BYTES and self.seen > MAX_RATIO * compressed:
            msg = (
                f"expands more than {MAX_RATIO} times ({human_bytes(compressed)} gave "
                f"{human_bytes(self.seen)} and counting): refused as a likely decompression bomb; "
                "decompress it yourself if it is genuine"
            )
            raise file_error(self.path, msg)


def human_bytes(n: float) -> str:
    """A size in decimal units: ``950 B``, ``95.4 kB``, ``100.0 MB``, ``10.0 GB`` (1 MB = 10^6 bytes)."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"


def _open_decompressed(raw: io.BufferedIOBase, compression: str) -> io.BufferedIOBase:
    if compression == "gzip":
        return gzip.GzipFile(fileobj=raw, mode="rb")
    import zstandard

    return zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)


def decompress_to(path: Path, compression: str, dest: Path, limit: SizeLimit) -> str:
    """Stream-decompress ``path`` into ``dest``; return the SHA-256 of the compressed file."""
    hasher = hashlib.sha256()
    with path.open("rb") as raw:
        for chunk in iter(lambda: raw.read(settings.read_chunk_bytes), b""):
            hasher.update(chunk)
    try:
        with (
            path.open("rb") as raw,
            _open_decompressed(raw, compression) as src,
            dest.open("wb") as out,
        ):
            for chunk in iter(lambda: src.read(settings.read_chunk_bytes), b""):
                limit.add(len(chunk), compressed=raw.tell())
                out.write(chunk)
    except IngestError:
        raise
    except Exception as exc:
        raise file_error(
            path, f"is not a readable {compression} file ({short_message(exc)})"
        ) from None
    return hasher.hexdigest()


def transcode_to(path: Path, encoding: str, dest: Path) -> None:
    """Stream ``path`` from ``encoding`` into UTF-8 at ``dest``; undecodable bytes are replaced."""
    try:
        with path.open("rb") as src, dest.open("wb") as out:
            decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
            for chunk in iter(lambda: src.read(settings.read_chunk_bytes), b""):
                out.write(decoder.decode(chunk).encode("utf-8"))
            out.write(decoder.decode(b"", final=True).encode("utf-8"))
    except UnicodeError as exc:  # (utf-16 without a byte-order mark, say)
        msg = f"cannot be read as {encoding} ({short_message(exc)}); give the right {option('encoding', value='NAME')}"
        raise file_error(path, msg) from None


def cr_to_lf(path: Path, dest: Path) -> None:
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
