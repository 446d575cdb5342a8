"""Parquet: scanned lazily, every column turned into text."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from tracer_kit.ingest.registry import (
    Reader,
    ReadOutcome,
    ReadRequest,
    as_text,
    outcome,
    register_reader,
    with_rows,
)
from tracer_kit.ingest.source import file_error, short_message

__all__: list[str] = []


def _read_parquet(path: Path) -> tuple[pl.LazyFrame, int]:
    try:
        lf = pl.scan_parquet(path)
        schema = lf.collect_schema()
        rows = pl.scan_parquet(path).select(pl.len()).collect().item()
    except Exception as exc:
        raise file_error(path, f"is not a readable Parquet file ({short_message(exc)})") from None
    if not schema:
        raise file_error(path, "is a Parquet file with no columns")
    return as_text(lf), rows


def _parquet_reader(req: ReadRequest) -> ReadOutcome:
    lf, rows = _read_parquet(req.work)
    return outcome(with_rows(lf, line_offset=None, notes=req.notes), rows)


register_reader(Reader("parquet", False, _parquet_reader, (".parquet", ".pq"), magic=(b"PAR1",)))
