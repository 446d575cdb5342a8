"""Sources on Spark: files Spark reads (CSV, TSV, JSON lines, Parquet), a DataFrame or a table.

Every source becomes text columns plus ``source_row`` and ``source_line``, as on polars.

``source_row`` is a guarantee, not a hope: for files it is the record's position in the
file order (files sorted by path, then records in order within each file). Spark splits a
file into byte ranges and reads each range in order, so a record's number is the count of
records in the earlier ranges (one small aggregate, per range) plus its index within its
range. It does not depend on how many executors run or in what order tasks finish. For a
DataFrame or table it is the record's position in partition order, which is as stable as
the DataFrame itself. ``source_line`` is null on Spark (a multi-line record cannot be
placed without reading the file from its start).

The source fingerprint (``input_sha256``) cannot be a SHA-256 of the bytes, which would
mean one pass on the driver: for files it is the SHA-256 of each input file's path, size
and modification time, plus the record count and an order-independent digest of the
records (the sum of each record's 64-bit xxhash over its text), computed by the executors
in the same pass that counts the ranges. For a DataFrame or table it is its name and the
same digest.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

import polars as pl

from tracer_kit.errors import IngestError
from tracer_kit.ingest import READERS, REJECT_SCHEMA, Ingested, SourceInfo
from tracer_kit.ingest.detect import csv_records
from tracer_kit.ingest.source import reserved_renames
from tracer_kit.spark.frame import PartitionFrame, spark_path

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["EXTENSION_DELIMITERS", "SPARK_NATIVE", "read_spark", "spark_formats"]

#: The input formats Spark reads natively, by tracer-kit's name for them, with Spark's name
#: (the others, such as Excel and XML, run on the polars engine).
SPARK_NATIVE = {"csv": "csv", "json": "json", "ndjson": "json", "parquet": "parquet"}
#: The field delimiter a delimited file's extension implies when none is given.
EXTENSION_DELIMITERS = {".tsv": "\t", ".psv": "|"}


def spark_formats() -> dict[str, str]:
    """File formats the Spark engine reads, by extension (the reader registry's extensions)."""
    return {
        ext: SPARK_NATIVE[name]
        for name, reader in READERS.items()
        if name in SPARK_NATIVE
        for ext in reader.extensions
    }


def _default_delimiter(path: str) -> str:
    name = PurePath(path.rstrip("/")).name.lower()
    for ext in (".gz", ".bz2", ".zst"):
        name = name.removesuffix(ext)
    return EXTENSION_DELIMITERS.get(PurePath(name).suffix, ",")


_SPLIT = ("__file", "__start")  # a record's file and the byte offset of its split
_ID = "__record_id"  # Spark's monotonically increasing id, read with the record
#: What Spark reads a quoted empty field ("") as, so it stays "" (an unquoted empty field
#: is null), as polars reads it; turned back into "" by the first polars step.
_EMPTY = "\x01"
#: The column Spark puts a ragged CSV line in (more or fewer fields than the header).
_CORRUPT = "__ragged_line"


@dataclass(frozen=True)
class _Split:
    key: tuple[str, int]
    rows: int
    first_id: int


@dataclass(frozen=True)
class _Census:
    """What one pass over the records tells: the splits, count, digest, files and ragged lines."""

    splits: list[_Split]
    rows: int
    digest: str
    files: list[tuple[Any, ...]]
    ragged: int


def _format_of(path: str, format: str | None) -> str:
    if format:
        fmt = SPARK_NATIVE.get("csv" if format == "tsv" else format)
        if fmt is None:
            msg = f"{path}: the Spark engine reads csv, tsv, json lines and parquet, not {format}"
            raise IngestError(msg, path=path)
        return fmt
    name = PurePath(path.rstrip("/")).name.lower()
    for ext in (".gz", ".bz2", ".zst"):
        name = name.removesuffix(ext)
    suffix = PurePath(name).suffix
    formats = spark_formats()
    if suffix in formats:
        return formats[suffix]
    if not suffix:  # a folder of part files
        return "parquet"
    msg = (
        f"{path}: the Spark engine reads {', '.join(sorted(formats))} files "
        f"(give format= for another name); use the polars engine for {suffix} files"
    )
    raise IngestError(msg, path=path)


def _read_files(
    spark: SparkSession, path: str, fmt: str, delimiter: str | None, encoding: str | None
) -> DataFrame:
    """The records; for CSV every column as text plus :data:`_CORRUPT`, the line of a ragged record."""
    reader = spark.read
    if fmt == "csv":
        sep = delimiter or _default_delimiter(path)
        reader = (
            reader.option("header", True)
            .option("inferSchema", False)
            .option("sep", sep)
            .option("quote", '"')
            .option("escape", '"')
            .option("encoding", encoding or "utf-8")
            .option("mode", "PERMISSIVE")
            .option("emptyValue", _EMPTY)
        )
    try:
        df = reader.format(fmt).load(path)
        if fmt == "csv":  # again, with the header's names as text and a column for ragged lines
            from pyspark.sql.types import StringType, StructField, StructType

            fields = [StructField(c, StringType()) for c in df.columns]
            schema = StructType([*fields, StructField(_CORRUPT, StringType())])
            reader = reader.schema(schema).option("columnNameOfCorruptRecord", _CORRUPT)
            df = reader.format(fmt).load(path)
        return df
    except Exception as exc:
        first = str(exc).strip().splitlines()[0][:300]
        raise IngestError(f"{path}: Spark could not read it: {first}", path=path) from None


def _splits(df: DataFrame, columns: list[str], ragged: bool) -> _Census:
    """Per split: its rows and first record id; the files (path, size, modification time),
    the records' count and digest, and how many lines are ragged: one Spark job.
    """  # noqa: D205
    from pyspark.sql import functions as F

    row_hash = F.xxhash64(*[F.coalesce(F.col(c), F.lit("\x00null")) for c in columns])
    groups = df.groupBy(*_SPLIT).agg(
        F.count("*").alias("rows"),
        F.min(_ID).alias("first_id"),
        F.sum(row_hash.cast("decimal(20,0)")).alias("digest"),
        F.first("__size").alias("size"),
        F.first("__mtime").alias("mtime"),
        (F.count(_CORRUPT) if ragged else F.lit(0)).alias("ragged"),
    )
    found = groups.collect()
    splits = sorted(
        (
            _Split((r["__file"], int(r["__start"])), int(r["rows"]), int(r["first_id"]))
            for r in found
        ),
        key=lambda s: s.key,
    )
    return _Census(
        splits,
        sum(s.rows for s in splits),
        str(sum(int(r["digest"] or 0) for r in found)),
        sorted({(r["__file"], r["size"], r["mtime"]) for r in found}),
        sum(int(r["ragged"]) for r in found),
    )


def _numbered(df: DataFrame, splits: list[_Split]) -> DataFrame:
    """``source_row`` = rows in earlier splits + position within the record's split + 1."""
    from pyspark.sql import functions as F

    spark = df.sparkSession
    offsets, before = [], 0
    for s in splits:
        offsets.append((s.key[0], s.key[1], before - s.first_id + 1))
        before += s.rows
    table = spark.createDataFrame(offsets, "__file string, __start long, __offset long")
    joined = df.join(F.broadcast(table), list(_SPLIT))
    return joined.withColumn("source_row", F.col(_ID) + F.col("__offset"))


def _text(df: DataFrame, columns: list[str]) -> DataFrame:
    from pyspark.sql import functions as F

    return df.select(
        "source_row",
        F.lit(None).cast("long").alias("source_line"),
        *[F.col(f"`{c}`").alias(c) for c in columns],
    )


def _as_text(frame: PartitionFrame, columns: list[str]) -> PartitionFrame:
    """Typed columns (Parquet, JSON) as text, with polars' own casts (as the polars engine)."""
    schema = frame.collect_schema()
    typed = [c for c in columns if schema[c] != pl.String]
    if not typed:
        return frame
    return frame.with_columns(pl.col(c).cast(pl.String) for c in typed)


def read_spark(
    spark: SparkSession,
    source: str | DataFrame,
    *,
    format: str | None = None,
    delimiter: str | None = None,
    encoding: str | None = None,
) -> Ingested:
    """Read ``source`` on Spark as text columns with ``source_row``; its fingerprint in ``info.sha256``.

    ``source`` is a path or URI the cluster reaches (a file, a folder or a glob), a table
    name (``table:db.customers``) or a Spark DataFrame.
    """
    from pyspark.sql import DataFrame
    from pyspark.sql import functions as F

    if isinstance(source, DataFrame):
        return _from_frame(source, name="a Spark DataFrame")
    if source.startswith("table:"):
        name = source.removeprefix("table:")
        try:
            df = spark.table(name)
        except Exception as exc:
            first = str(exc).strip().splitlines()[0][:300]
            raise IngestError(f"{source}: {first}", path=source) from None
        return _from_frame(df, name=source)
    fmt = _format_of(source, format)
    raw = _read_files(spark, spark_path(source), fmt, delimiter, encoding)
    renames = reserved_renames([c for c in raw.columns if c != _CORRUPT])
    raw = raw.withColumnsRenamed(renames) if renames else raw
    columns = [c for c in raw.columns if c != _CORRUPT]
    ragged = _CORRUPT in raw.columns
    meta = raw.select(
        "*",
        F.col("_metadata.file_path").alias("__file"),
        F.col("_metadata.file_block_start").alias("__start"),
        F.col("_metadata.file_size").alias("__size"),
        F.col("_metadata.file_modification_time").cast("string").alias("__mtime"),
        F.monotonically_increasing_id().alias(_ID),
    )
    stats = meta.select(*columns, *([_CORRUPT] if ragged else []), *_SPLIT, _ID)
    census = _splits(meta, columns, ragged) if columns else _Census([], 0, "0", [], 0)
    files, rows = census.files, census.rows
    fingerprint = _fingerprint({"files": files, "records": rows, "digest": census.digest})
    numbered = _numbered(stats, census.splits)
    rejects = pl.DataFrame(schema=REJECT_SCHEMA)
    if ragged:
        if census.ragged:  # (a job for the ragged lines only when there are any)
            rejects = _ragged(numbered, columns)
        numbered = numbered.where(F.col(_CORRUPT).isNull())
    frame = PartitionFrame(_text(numbered, columns))
    if fmt == "csv":
        frame = frame.with_columns(pl.col(c).replace(_EMPTY, "") for c in columns)
    info = _info(source, fmt, delimiter, columns, rows, fingerprint, size=sum(f[1] for f in files))
    return Ingested(_as_text(frame, columns), info, rejects)


def _ragged(numbered: DataFrame, columns: list[str]) -> pl.DataFrame:
    """The ragged lines (to the driver: one row each) as ingest rejects, named as polars names them."""
    from pyspark.sql import functions as F

    # (Spark reads a ragged line only beside the data columns: select them, then drop them)
    bad = numbered.where(F.col(_CORRUPT).isNotNull()).select("source_row", _CORRUPT, *columns)
    rows = [(int(r[0]), r[1]) for r in bad.collect()]
    reasons = [
        f"ragged_row: {len(next(csv_records([line], ','), []))} fields, expected {len(columns)}"
        for _, line in rows
    ]
    return pl.DataFrame(
        {
            "source_row": [r for r, _ in rows],
            "source_line": [None] * len(rows),
            "raw": [line for _, line in rows],
            "reason": reasons,
        },
        schema=REJECT_SCHEMA,
    ).sort("source_row")


def _from_frame(df: DataFrame, *, name: str) -> Ingested:
    from pyspark.sql import functions as F

    renames = reserved_renames(list(df.columns))
    df = df.withColumnsRenamed(renames) if renames else df
    columns = list(df.columns)
    tagged = df.select(
        *columns,
        F.lit(name).alias("__file"),
        F.spark_partition_id().cast("long").alias("__start"),
        F.monotonically_increasing_id().alias(_ID),
    )
    as_text = {c: F.col(c).cast("string") for c in columns}
    no_file = {"__size": F.lit(None).cast("long"), "__mtime": F.lit(None).cast("string")}
    census = _splits(tagged.withColumns({**as_text, **no_file}), columns, ragged=False)
    rows = census.rows
    fingerprint = _fingerprint({"name": name, "records": rows, "digest": census.digest})
    frame = PartitionFrame(_text(_numbered(tagged, census.splits), columns))
    info = _info(name, "spark", None, columns, rows, fingerprint, size=0)
    return Ingested(_as_text(frame, columns), info)


def _fingerprint(identity: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()


def _info(
    path: str,
    fmt: str,
    delimiter: str | None,
    columns: list[str],
    rows: int,
    fingerprint: str,
    *,
    size: int,
) -> SourceInfo:
    return SourceInfo(
        path=path,
        size=size,
        sha256=fingerprint,
        format=fmt,
        encoding="utf-8" if fmt == "csv" else None,
        delimiter=(delimiter or ",") if fmt == "csv" else None,
        columns=columns,
        row_count=rows,
        decimal=".",
    )
