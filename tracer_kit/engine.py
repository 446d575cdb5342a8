"""Where the polars engine and the Spark engine differ: one function per operation.

The stages are written once, against a frame that is a polars ``LazyFrame`` (the polars
engine, out of core on one machine) or a :class:`~tracer_kit.spark.PartitionFrame` (the
Spark engine: the same polars steps run batch by batch on the executors). Row-by-row work
(``filter``, ``select``, ``with_columns``) and :class:`~tracer_kit.aggregates.Aggregates`
read the same on both. What must be done differently (writing rows, taking a bounded
sample, running a function on each group's rows, exact order statistics) is one function
here with a polars branch and a Spark branch, and the equality tests run both.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from tracer_kit._scratch import order_statistics as banded
from tracer_kit._scratch import repeated_values as out_of_core
from tracer_kit._scratch import spread
from tracer_kit.lazy import lazy_module
from tracer_kit.settings import parquet_options

# The Spark engine's modules load pyarrow, numpy and pyspark (0.24 s or more) when first used.
spark_frames = lazy_module("tracer_kit.spark.frame")

__all__ = [
    "count_rows",
    "first_rows_where",
    "fit_rows",
    "map_batches",
    "moments",
    "on_spark",
    "order_statistics",
    "per_group",
    "repeated_values",
    "small_frame",
    "materialize",
    "write_rows",
]

#: A polars step over one batch or one group of rows.
Step = Callable[[pl.LazyFrame], pl.LazyFrame]


def on_spark(frame: Any) -> bool:
    """Whether ``frame`` belongs to the Spark engine (anything but a polars frame)."""
    return not isinstance(frame, (pl.LazyFrame, pl.DataFrame))


def materialize(plan: Any, path: Path, compression: str = "zstd") -> Any:
    """Write ``plan`` as Parquet and read it back: one file (polars) or part files (Spark)."""
    if not on_spark(plan):
        plan.lazy().sink_parquet(path, **parquet_options(compression))
        return pl.scan_parquet(path)
    return plan.materialize(path)


def write_rows(frame: Any, path: Path) -> int:
    """Write ``frame`` to ``path`` (zstd Parquet; part files on Spark); returns the rows written."""
    return count_rows(materialize(frame, path))


def count_rows(frame: Any) -> int:
    """The number of rows (a streaming count; Spark's count)."""
    if on_spark(frame):
        return frame.count()
    return frame.lazy().select(pl.len()).collect(engine="streaming").item()


def fit_rows(frame: Any, limit: int, *, rows: int | None = None) -> pl.DataFrame:
    """At most ``limit`` rows on the driver, in ``source_row`` order: all, or an even spread.

    Above the limit, the rows whose ``source_row`` is a multiple of ``k = ceil(rows /
    limit)``, then the first ``limit`` of them: the same rows on both engines (Spark takes
    them with a top-k, no sort of all rows), so a model fitted on them is the same too.
    ``rows`` is the row count when known. Without ``source_row``, polars takes every k-th
    row and Spark the first ``limit`` rows.
    """
    n = count_rows(frame) if rows is None else rows
    if n > limit and "source_row" in frame.collect_schema().names():
        frame = frame.filter(pl.col("source_row") % -(-n // limit) == 0)
    elif n > limit and not on_spark(frame):
        return spread(frame.lazy(), limit, rows=n).collect(engine="streaming")
    return frame.lazy().head(min(n, limit)).collect(engine="streaming")


def first_rows_where(frame: Any, masks: Sequence[tuple[pl.Expr, int]]) -> pl.DataFrame:
    """For each ``(mask, n)``: the first ``n`` rows by ``source_row`` where it holds, in one pass.

    Columns ``mask`` (the mask's index), ``source_row`` and ``source_line``, sorted by both.
    Spark takes each mask's first rows per batch on the executors, then the first of those.
    """

    def heads(lf: pl.LazyFrame) -> pl.LazyFrame:
        return pl.concat(
            [
                lf.filter(mask)
                .select(pl.lit(k, dtype=pl.Int32).alias("mask"), "source_row", "source_line")
                .top_k(n, by="source_row", reverse=True)  # the n smallest, in any batch order
                for k, (mask, n) in enumerate(masks)
            ]
        )

    if on_spark(frame):
        found = frame.pipe(heads).collect()
    else:
        found = heads(frame.lazy()).collect(engine="streaming")
    limit = pl.col("mask").replace_strict({k: n for k, (_, n) in enumerate(masks)})
    return found.sort("mask", "source_row").filter(pl.int_range(pl.len()).over("mask") < limit)


def map_batches(
    frame: Any,
    fn: Callable[[pl.DataFrame], pl.DataFrame],
    *,
    schema: pl.Schema | None = None,
) -> Any:
    """``fn`` over the rows batch by batch (the executors' Arrow batches on Spark).

    ``fn`` must be row by row (polars' streaming engine also hands it batches). Its output
    columns are ``schema`` when given, else ``fn``'s on the first row (a model may refuse an
    empty frame; on Spark that costs a job); an empty batch gives no rows.
    """
    if schema is None:
        schema = fn(frame.lazy().head(1).collect()).schema

    def batch_fn(batch: pl.DataFrame) -> pl.DataFrame:
        return fn(batch) if batch.height else pl.DataFrame(schema=schema)

    if not on_spark(frame):
        return frame.lazy().map_batches(batch_fn, schema=schema, streamable=True)
    return frame.pipe(lambda lf: batch_fn(lf.collect()).lazy(), schema=schema)


def per_group(frame: Any, by: Sequence[str], fn: Step) -> Any:
    """``fn`` over each group's rows (groups by the ``by`` columns), results concatenated.

    polars: groups in key order, each group's rows in their order in ``frame``. Spark: a
    hash shuffle by the keys, ``fn`` on the executors (``applyInArrow``), rows in no order.
    """
    if on_spark(frame):
        return spark_frames.by_group(frame, tuple(by), fn)
    df = frame.lazy().collect(engine="streaming")
    parts = df.sort(list(by), maintain_order=True).partition_by(list(by), maintain_order=True)
    results = [fn(part.lazy()).collect() for part in parts]
    if not results:
        return fn(df.head(0).lazy())
    return pl.concat(results, how="vertical_relaxed").lazy()


def small_frame(like: Any, df: pl.DataFrame) -> Any:
    """A small polars result as a frame of ``like``'s engine (a Spark DataFrame on Spark)."""
    if not on_spark(like):
        return df.lazy()

    return spark_frames.PartitionFrame.from_polars(like.session, df)


def moments(
    frame: Any,
    columns: Sequence[str],
) -> dict[str, tuple[int, float | None, float | None]]:
    """Per column: count, mean and sample standard deviation of its non-null values (one pass)."""
    if on_spark(frame):
        return frame.moments(columns)
    exprs = [
        e
        for i, c in enumerate(columns)
        for e in (
            pl.col(c).count().alias(f"n{i}"),
            pl.col(c).mean().alias(f"m{i}"),
            pl.col(c).std().alias(f"s{i}"),
        )
    ]
    row = frame.select(exprs).collect(engine="streaming").row(0)
    return {c: (int(row[3 * i]), row[3 * i + 1], row[3 * i + 2]) for i, c in enumerate(columns)}


def order_statistics(
    frame: Any,
    wanted: dict[str, Sequence[int]],
    tiebreak: str | None = None,
    *,
    counts: dict[str, int] | None = None,
) -> dict[str, list[tuple[Any, Any]]]:
    """Per column, the (value, tiebreak) pairs at its 1-based ranks of its non-null values, exactly.

    ``counts`` (non-null values per column) when known. polars: sample-guided bands, no
    full sort, a column at a time (:func:`tracer_kit._scratch.order_statistics`); Spark: all
    columns in one range-partitioned sort with per-partition offsets (several columns must
    then share a type). Ranks outside 1..n are skipped.
    """
    if on_spark(frame):
        return frame.order_statistics(wanted, tiebreak)
    n = counts or {}
    return {c: banded(frame, c, tiebreak, list(r), n=n.get(c)) for c, r in wanted.items()}


def repeated_values(frame: Any, column: str, work: Path) -> pl.DataFrame:
    """Values of ``column`` seen more than once, with the ``source_row`` of the first one.

    polars: staged to Parquet and searched out of core; Spark: its own group-by.
    """
    if on_spark(frame):
        return frame.select("source_row", column).repeated_values(column)
    ids = work / "identifiers.parquet"
    frame.select("source_row", column).sink_parquet(ids, compression="lz4")
    try:
        return out_of_core(ids, column, work)
    finally:
        ids.unlink(missing_ok=True)
