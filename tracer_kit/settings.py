"""Tunables in one place: chunk sizes, sample caps and row limits that trade memory for speed.

They never change a result's meaning, only how it is computed (how big a read is, how many
rows a fit or an exact count may take before a seeded sample stands in). Tests and
benchmarks change them through :func:`override`, never by patching module globals.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, fields
from typing import Any

__all__ = [
    "MALLOC_CONF",
    "Settings",
    "override",
    "parquet_options",
    "release_freed_memory",
    "settings",
]

#: polars' allocator (jemalloc) settings that hand freed pages back within half a second.
MALLOC_CONF = "background_thread:true,dirty_decay_ms:500,muzzy_decay_ms:0"


def release_freed_memory() -> bool:
    """Ask polars' allocator to hand freed memory back promptly; call it before polars is imported.

    jemalloc keeps freed pages for a while by default; on a multi-gigabyte run those pages
    add up across stages (the 1 GB benchmark peaks about 0.5 GB higher without this). The
    ``tracer`` command does it for itself and the notebooks it starts. Returns False (and
    changes nothing) when polars is already imported or ``_RJEM_MALLOC_CONF`` is already set.

    Examples
    --------
    >>> import tracer_kit as tk
    >>> tk.release_freed_memory()  # doctest: +SKIP
    True
    """
    if "polars" in sys.modules or "_RJEM_MALLOC_CONF" in os.environ:
        return False
    os.environ["_RJEM_MALLOC_CONF"] = MALLOC_CONF
    return True


@dataclass
class Settings:
    """The tunables and their defaults (measured on a 2-core, 24 GB machine)."""

    #: bytes per read of the vectorised record scan, hashing, decompression and copies
    read_chunk_bytes: int = 16 * 1024 * 1024
    #: bytes read to sniff a file's format, encoding, delimiter and decimal mark
    sniff_bytes: int = 256 * 1024
    #: rows per key range when the processed table is sorted out of core
    sort_chunk_rows: int = 1_250_000
    #: rows the preprocessor is fitted on at most (a seeded spread above)
    fit_rows: int = 1_000_000
    #: labelled rows a churn model is fitted and evaluated on at most (an even spread above):
    #: 20,000 held out put the AUC's standard error near 0.004, and cross-validating two
    #: candidates on more costs minutes without changing a baseline model
    model_fit_rows: int = 100_000
    #: quarantined rows looked up in bronze by row number; more use a streaming join
    prefilter_rows: int = 1_000_000
    #: rows of the sample that guides an exact order statistic's search (quartiles, cuts)
    order_sample_rows: int = 200_000
    #: rows an order statistic's bands may bring to the driver at most (else a full sort)
    band_rows: int = 5_000_000
    #: rows up to which repeated identifiers are grouped in memory (DuckDB, spilling, above)
    repeats_in_memory_rows: int = 1_000_000
    #: valid rows pandera checks at most (an even spread above)
    schema_check_rows: int = 1_000_000
    #: rows up to which profiles count distinct values exactly (HyperLogLog above)
    exact_distinct_rows: int = 1_000_000
    #: zstd level of the Parquet tracer-kit writes: level 1 wrote the 1 GB benchmark's bronze
    #: 23% faster than polars' default (3), and 1.5% smaller
    zstd_level: int = 1


settings = Settings()


def parquet_options(compression: str = "zstd") -> dict[str, Any]:
    """Keyword arguments for polars' ``sink_parquet``/``write_parquet`` (and pyarrow's
    ``ParquetWriter``): ``compression`` and, for zstd, :attr:`Settings.zstd_level`.
    """  # noqa: D205
    level = settings.zstd_level if compression == "zstd" else None
    return {"compression": compression, "compression_level": level}


@contextlib.contextmanager
def override(**values: int) -> Iterator[Settings]:
    """Change tunables for the duration of a ``with`` block (``override(sort_chunk_rows=150)``)."""
    known = {f.name for f in fields(Settings)}
    unknown = sorted(set(values) - known)
    if unknown:
        msg = f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        raise TypeError(msg)
    before = {name: getattr(settings, name) for name in values}
    for name, value in values.items():
        setattr(settings, name, value)
    try:
        yield settings
    finally:
        for name, value in before.items():
            setattr(settings, name, value)
