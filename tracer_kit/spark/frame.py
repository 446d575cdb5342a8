"""A Spark DataFrame worked on with tracer's own polars expressions.

:class:`PartitionFrame` is how the quality checks, casts and features run on Spark without
a second copy of any formula. A row-by-row step (``filter``, ``select``, ``with_columns``,
``cast``, ``rename``, ``drop`` with polars expressions) whose every expression has an
exact Spark twin is compiled from the expression itself (:mod:`tracer_kit.spark.columns`)
and runs in the JVM; any other step is recorded and run by ``mapInArrow`` on each Arrow
batch of each partition, so where Spark cannot compute polars' values, polars computes
them. Once a step runs in Python, the steps after it do too, until the rows are written.
Whatever spans rows is done by Spark itself: aggregates (Spark's own when they compile,
else each polars aggregate computed per batch and combined by Spark with its declared
rule), group counts, distinct rows, the first rows by
``source_row``, joins and writes. Nothing but those small results reaches the driver.

A step must be row by row: an expression that looks at other rows (``.over``, ``.shift``,
a bare ``.sum()`` in ``select``) would see one batch only. Aggregates go through
:class:`tracer_kit.quality.names.Aggregates`, windows through a blueprint's
:class:`tracer_kit.blueprints.SparkPlan`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
import pyarrow as pa
from polars.io.plugins import register_io_source

from tracer_kit.aggregates import Aggregates
from tracer_kit.spark.columns import (
    Unsupported,
    quoted,
    spark_aggregates,
    spark_columns,
    spark_predicate,
)
from tracer_kit.spark.schemas import arrow_schema, polars_schema, spark_schema

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

__all__ = [
    "PartitionFrame",
    "arrow_schema",
    "by_group",
    "read_columns",
    "read_parquet",
    "spark_path",
    "spark_schema",
]

Step = Callable[[pl.LazyFrame], pl.LazyFrame]


def spark_path(path: Any) -> str:
    """A path as Spark must get it: URIs as given, local paths absolute (the JVM has its own cwd)."""
    text = str(path)
    return text if "://" in text or text.startswith("table:") else str(Path(text).resolve())


def _through(lf: pl.LazyFrame, steps: Sequence[Step]) -> pl.LazyFrame:
    for step in steps:
        lf = step(lf)
    return lf


def _stepped(batch: pa.RecordBatch, steps: Sequence[Step], inputs: pl.Schema) -> pl.LazyFrame:
    """One Arrow batch through the polars steps.

    A batch of only the columns the steps read (:func:`read_columns`) gets the others back
    as nulls of their types, in ``inputs``' order: the steps see the frame they were built
    on, and polars' own projection pushdown drops those columns again unread.
    """
    frame: pl.DataFrame = pl.from_arrow(batch)  # type: ignore[assignment]
    lf = frame.lazy()
    if frame.width < len(inputs):
        absent = [pl.lit(None, dtype).alias(n) for n, dtype in inputs.items() if n not in frame]
        lf = lf.with_columns(absent).select(list(inputs))
    return _through(lf, steps)


def read_columns(schema: pl.Schema, plan: Step) -> list[str] | None:
    """The columns of ``schema`` that ``plan`` reads, or None when it reads every one.

    Found by polars' projection pushdown, running ``plan`` on no rows. A plan that reads no
    column (a row count) reads the first. Spark cannot see into a ``mapInArrow`` function,
    so without this every pass over the checked rows would read every column from Parquet
    and ship it to Python, to aggregate two of them.
    """
    read: list[list[str] | None] = []

    def source(columns: list[str] | None, *_: Any) -> Iterator[pl.DataFrame]:
        read.append(columns)
        yield pl.DataFrame(schema=schema).select(list(schema) if columns is None else columns)

    try:
        plan(register_io_source(source, schema=schema)).collect()
    except Exception:  # (a step that refuses no rows: read every column; the batches will
        return None  # say what is wrong, if anything is)
    if not read or any(columns is None for columns in read):
        return None
    columns = {c for part in read for c in part or ()}  # (a plan of several branches reads each)
    if len(columns) >= len(schema):
        return None
    return [c for c in schema if c in columns] or [next(iter(schema))]


def _run_steps(
    steps: Sequence[Step], out: pa.Schema, inputs: pl.Schema
) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """The ``mapInArrow`` function: every batch through the polars steps, cast to ``out``."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            lf = _stepped(batch, steps, inputs)
            table = lf.collect().to_arrow(compat_level=pl.CompatLevel.oldest())
            yield from table.cast(out).to_batches()

    return run


#: The schemas of the part files this process wrote, by path: read back with them, Spark
#: runs no job to read the schema from the files' footers.
_WRITTEN: dict[str, Any] = {}


def read_parquet(session: Any, path: Any) -> DataFrame:
    """Parquet part files as a Spark DataFrame (with the schema they were written with, if known)."""
    from pyspark.sql.types import StructField, StructType

    where = spark_path(path)
    written = _WRITTEN.get(where)
    if written is None:
        return session.read.parquet(where)
    schema = StructType([StructField(f.name, f.dataType, True) for f in written.fields])
    return session.read.schema(schema).parquet(where)


def _totals(rows: pl.DataFrame, rules: Sequence[tuple[str, str]]) -> pl.DataFrame:
    """One row: each partial combined over ``rows`` by its rule (sum, min or max)."""
    reduce = {"sum": pl.Expr.sum, "min": pl.Expr.min, "max": pl.Expr.max}
    return rows.select(reduce[rule](pl.col(name)) for name, rule in rules)


def _partition_totals(
    steps: Sequence[Step],
    rules: Sequence[tuple[str, str]],
    out: pa.Schema,
    inputs: pl.Schema,
) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """The ``mapInArrow`` function of an aggregate: each batch's partials (the last of
    ``steps`` selects them), combined per partition.
    """  # noqa: D205

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        parts = [_stepped(batch, steps, inputs).collect() for batch in batches]
        if parts:
            table = _totals(pl.concat(parts), rules).to_arrow(compat_level=pl.CompatLevel.oldest())
            yield from table.cast(out).to_batches()

    return run


class _GroupBy:
    def __init__(self, frame: PartitionFrame, keys: Sequence[str]) -> None:
        self.frame, self.keys = frame, list(keys)

    def len(self) -> pl.LazyFrame:
        """Rows per group (Spark's group-by); a small polars frame with ``len`` (UInt32)."""
        counted = self.frame.spark().groupBy(*self.keys).count()
        return (
            _to_polars(counted)
            .lazy()
            .rename({"count": "len"})
            .with_columns(pl.col("len").cast(pl.UInt32))
        )


def _types(schema: Any) -> list[tuple[str, Any]]:
    """A Spark schema's names and types (not whether a column may hold nulls)."""
    return [(f.name, f.dataType) for f in schema.fields]


def _named(exprs: Sequence[Any]) -> dict[str, Any] | None:
    """Each expression of a ``select`` by the column it makes (None if one makes several)."""
    named: dict[str, Any] = {}
    for e in exprs:
        try:
            named[e if isinstance(e, str) else e.meta.output_name()] = e
        except Exception:  # (a selector or a wildcard: many columns, names known later)
            return None
    return named


_ADAPTIVE = "spark.sql.adaptive.enabled"
_ADAPTIVE_LOCK = threading.Lock()


@contextmanager
def _one_job(session: Any) -> Iterator[None]:
    """Adaptive execution paused while one global aggregate runs: its partial aggregates
    and the final one then run as one job (adaptive execution submits the shuffle's map
    side as a job of its own). The session's setting is put back after.
    """  # noqa: D205
    with _ADAPTIVE_LOCK:
        before = session.conf.get(_ADAPTIVE, None)
        session.conf.set(_ADAPTIVE, "false")
        try:
            yield
        finally:
            if before is None:
                session.conf.unset(_ADAPTIVE)
            else:
                session.conf.set(_ADAPTIVE, before)


def _listed(args: Sequence[Any]) -> list[Any]:
    """Arguments as one list (generators taken out: a step is pickled to the executors)."""
    out: list[Any] = []
    for a in args:
        if isinstance(a, (str, pl.Expr)):
            out.append(a)
        else:
            out.extend(a)
    return out


def _classic(df: DataFrame) -> bool:
    """Whether ``df`` is classic Spark (not Spark Connect, which has no RDDs)."""
    return type(df).__module__.startswith("pyspark.sql.classic") or hasattr(df, "_jdf")


def _to_polars(df: DataFrame) -> pl.DataFrame:
    table = df.toArrow()
    return pl.from_arrow(table)  # type: ignore[return-value]


class PartitionFrame:
    """A Spark DataFrame plus polars steps run batch by batch on its partitions (module docs)."""

    def __init__(
        self, df: DataFrame, steps: Sequence[Step] = (), schema: pl.Schema | None = None
    ) -> None:
        self._df = df
        self._steps = tuple(steps)
        self._schema = schema if schema is not None else polars_schema(df)
        #: The frame and expressions of a ``select`` left to Python, as its only step: a
        #: later pick of some of its columns is that ``select`` of fewer expressions.
        self._selected: tuple[PartitionFrame, dict[str, Any]] | None = None

    @classmethod
    def from_polars(cls, session: Any, df: pl.DataFrame) -> PartitionFrame:
        """A small polars frame made a Spark DataFrame (for results computed on the driver)."""
        table = df.to_arrow(compat_level=pl.CompatLevel.oldest()).cast(arrow_schema(df.schema))
        return cls(session.createDataFrame(table, schema=spark_schema(df.schema)), schema=df.schema)

    def __repr__(self) -> str:
        return f"PartitionFrame({len(self._steps)} polars steps, columns {list(self._schema)})"

    # ------------------------------------------------------------------ row-by-row steps
    def pipe(self, step: Step, schema: pl.Schema | None = None) -> PartitionFrame:
        """Add a row-by-row polars step (``LazyFrame -> LazyFrame``); its output columns are
        ``schema``, or found by running it on no rows.
        """  # noqa: D205
        if schema is None:
            schema = step(pl.LazyFrame(schema=self._schema)).collect_schema()
        return PartitionFrame(self._df, (*self._steps, step), schema)

    def _step(self, step: Step, native: Callable[[DataFrame], DataFrame]) -> PartitionFrame:
        """Add ``step``, run by Spark itself as ``native`` when that gives the same rows.

        It does when no polars step is pending (a native step after one would need the
        pending steps' output from Python first), every expression compiles
        (:mod:`tracer_kit.spark.columns`) and Spark's result has exactly the columns and
        types the polars step's output has on Spark (:func:`spark_schema`: an unsigned
        integer is the next wider signed one); otherwise the step runs in Python.
        """
        from pyspark.errors import AnalysisException

        schema = step(pl.LazyFrame(schema=self._schema)).collect_schema()
        if not self._steps:
            try:
                df = native(self._df)
                if _types(df.schema) == _types(spark_schema(schema)):
                    return PartitionFrame(df, schema=schema)
            except (Unsupported, AnalysisException):
                pass
        return PartitionFrame(self._df, (*self._steps, step), schema)

    def filter(self, *predicates: pl.Expr) -> PartitionFrame:
        """Rows where the polars predicates hold."""
        flat = _listed(predicates)
        return self._step(
            lambda lf: lf.filter(flat), lambda df: df.where(spark_predicate(flat, self._schema))
        )

    def select(self, *exprs: Any) -> PartitionFrame:
        """Row-by-row polars ``select``.

        Picking columns made by a ``select`` that runs in Python (the frame's only step)
        is that ``select`` with only their expressions, which may then compile: the
        identifier's column of the typed rows needs none of the other fields' casts.
        """
        flat = _listed(exprs)
        picked = self._picked(flat)
        if picked is not None:
            return picked
        out = self._step(
            lambda lf: lf.select(flat),
            lambda df: df.select(*spark_columns(flat, self._schema).values()),
        )
        if not self._steps and len(out._steps) == 1:
            named = _named(flat)
            out._selected = (self, named) if named is not None else None
        return out

    def _picked(self, names: Sequence[Any]) -> PartitionFrame | None:
        """The frame's own ``select`` with fewer expressions, when ``names`` are some of its columns."""
        if self._selected is None or not all(isinstance(n, str) for n in names):
            return None
        before, made = self._selected
        if not set(names) <= set(made) or len(set(names)) < len(names):
            return None
        return before.select([made[n] for n in names])

    def with_columns(self, *exprs: Any) -> PartitionFrame:
        """Row-by-row polars ``with_columns``."""
        flat = _listed(exprs)
        return self._step(
            lambda lf: lf.with_columns(flat),
            lambda df: df.withColumns(spark_columns(flat, self._schema, alone=False)),
        )

    def before_steps(
        self, pick: Callable[[DataFrame], DataFrame], otherwise: pl.Expr
    ) -> PartitionFrame:
        """Rows chosen by ``source_row`` alone, picked by Spark (``pick``) from the source rows
        before the polars steps run, so the others never reach Python: the steps go row by
        row and keep each row's ``source_row`` (its identity), so picking before them is
        picking after them. A source without ``source_row`` gets the polars filter
        ``otherwise``.
        """  # noqa: D205
        if "source_row" not in self._df.columns:
            return self.filter(otherwise)
        return PartitionFrame(pick(self._df), self._steps, self._schema)

    def drop_nulls(self, *columns: Any) -> PartitionFrame:
        """Rows without nulls (in ``columns``, or in any column; NaN is a value)."""
        names = _listed(columns) or list(self._schema)
        if not all(isinstance(c, str) and c in self._schema for c in names):
            return self.pipe(lambda lf: lf.drop_nulls(names))  # (polars names what is wrong)
        return self.filter(*(pl.col(c).is_not_null() for c in names))

    def explode(self, *columns: Any) -> PartitionFrame:
        """One row per list element."""
        return self.pipe(lambda lf: lf.explode(*columns))

    def rename(self, mapping: dict[str, str]) -> PartitionFrame:
        """Columns renamed (all at once: ``{"a": "b", "b": "a"}`` swaps them)."""
        if not set(mapping) <= set(self._schema):
            return self.pipe(lambda lf: lf.rename(mapping))  # (polars names what is missing)
        return self.select(pl.col(c).alias(mapping.get(c, c)) for c in self._schema)

    def cast(self, dtypes: dict[str, pl.DataType]) -> PartitionFrame:
        """Columns cast."""
        return self.with_columns(pl.col(c).cast(t) for c, t in dtypes.items())

    def drop(self, *columns: Any) -> PartitionFrame:
        """Columns left out."""
        gone = _listed(columns)
        if not all(isinstance(c, str) and c in self._schema for c in gone):
            return self.pipe(lambda lf: lf.drop(gone))  # (polars names what is missing)
        return self.select(c for c in self._schema if c not in set(gone))

    def lazy(self) -> PartitionFrame:
        """Itself (for code written against ``frame.lazy()``)."""
        return self

    def collect_schema(self) -> pl.Schema:
        """The columns and dtypes after the steps."""
        return self._schema

    # ------------------------------------------------------------------ Spark's own work
    @property
    def session(self) -> Any:
        """The Spark session the frame belongs to."""
        return self._df.sparkSession

    def spark(self) -> DataFrame:
        """The Spark DataFrame the steps give (lazy: nothing runs until an action)."""
        if not self._steps:
            return self._df
        df, inputs = self._read_for(self._steps)
        out = arrow_schema(self._schema)
        return df.mapInArrow(_run_steps(self._steps, out, inputs), spark_schema(self._schema))

    def _read_for(self, steps: Sequence[Step]) -> tuple[DataFrame, pl.Schema]:
        """The Spark rows with only the columns ``steps`` read, and the schema they were built on."""
        inputs = polars_schema(self._df)
        columns = read_columns(inputs, lambda lf: _through(lf, steps))
        if columns is None:
            return self._df, inputs
        return self._df.select(*(quoted(c) for c in columns)), inputs

    def aggregate(self, aggs: Aggregates) -> dict[str, dict[str, Any]]:
        """Every aggregate in one Spark job.

        When each compiles (:func:`tracer_kit.spark.columns.spark_aggregates`) and no
        polars step is pending, Spark's own aggregate computes them (whole-stage code in
        the JVM; adaptive execution is paused for it, which would make it two jobs).
        Otherwise each is computed per batch by polars in Python workers, combined per
        partition on the executors with its declared rule, then over the partitions' rows
        on the driver (no shuffle).
        """
        partials = aggs.partials()
        if not self._steps:
            try:
                inputs, measures = spark_aggregates([p[:2] for p in partials], self._schema)
            except Unsupported:
                pass
            else:
                rows = self._df.select(*inputs) if inputs else self._df
                with _one_job(self.session):
                    return aggs.combined(rows.agg(*measures).collect()[0].asDict())
        return aggs.combined(self._batch_totals(partials))

    def _batch_totals(self, partials: Sequence[tuple[str, pl.Expr, str]]) -> dict[str, Any]:
        """The ``partials`` per batch (polars), combined per partition, then on the driver."""
        exprs = [e.alias(name) for name, e, _ in partials]
        rules = [(name, rule) for name, _, rule in partials]
        steps = (*self._steps, lambda lf: lf.select(exprs))
        out = _through(pl.LazyFrame(schema=self._schema), steps[-1:]).collect_schema()
        df, inputs = self._read_for(steps)
        df = df.mapInArrow(
            _partition_totals(steps, rules, arrow_schema(out), inputs), spark_schema(out)
        )
        found = _to_polars(df)
        if found.height == 0:
            return dict.fromkeys(name for name, _ in rules)
        return _totals(found, rules).row(0, named=True)

    def group_by(self, *keys: str) -> _GroupBy:
        """Group counts by Spark: ``.group_by(k).len()``."""
        return _GroupBy(self, keys)

    def unique(self) -> pl.LazyFrame:
        """The distinct rows (Spark ``distinct``), as a small polars frame."""
        return _to_polars(self.spark().distinct()).lazy()

    def head(self, n: int = 5) -> pl.LazyFrame:
        """The first ``n`` rows by ``source_row`` (Spark's top-k), as a polars frame."""
        df = self.spark()
        if "source_row" in self._schema:
            df = df.orderBy("source_row")
        return _to_polars(df.limit(n)).lazy()

    def count(self) -> int:
        """Number of rows: Spark's own count when no polars step runs (it reads no column of
        Parquet), else counted per partition as the steps run, summed on the driver.
        """  # noqa: D205
        counted = Aggregates()
        counted.add("rows", "n", pl.len(), "sum")
        return int(self.aggregate(counted)["rows"]["n"] or 0)

    def collect(self, **_: Any) -> pl.DataFrame:
        """All rows to the driver: for small frames only (``spark.driver.maxResultSize`` guards)."""
        return _to_polars(self.spark())

    def join(
        self, other: PartitionFrame, *, left_on: str, right_on: str, how: str = "inner", **_: Any
    ) -> PartitionFrame:
        """A Spark join on one column each side (row order is Spark's)."""
        left, right = self.spark(), other.spark()
        joined = left.join(right, left[left_on] == right[right_on], how)
        return PartitionFrame(joined.drop(right[right_on]))

    def repeated_values(self, column: str) -> pl.DataFrame:
        """Values seen more than once and the ``source_row`` of their first occurrence (Spark group-by).

        Columns ``value`` and ``first_row``, like :func:`tracer_kit._scratch.repeated_values`;
        one row per repeated value reaches the driver.
        """
        from pyspark.sql import functions as F

        df = self.select("source_row", column).spark().where(F.col(quoted(column)).isNotNull())
        groups = df.groupBy(F.col(quoted(column)).alias("value")).agg(
            F.count("*").alias("n"), F.min("source_row").alias("first_row")
        )
        repeats = groups.where(F.col("n") > 1).select("value", "first_row")
        return _to_polars(repeats).cast({"first_row": pl.Int64})

    def moments(self, columns: Sequence[str]) -> dict[str, tuple[int, float | None, float | None]]:
        """Per column: count, mean and sample standard deviation of the non-null values (one Spark job)."""
        from pyspark.sql import functions as F

        exprs = [f(F.col(quoted(c))) for c in columns for f in (F.count, F.avg, F.stddev_samp)]
        with _one_job(self.session):
            row = self.select(*columns).spark().agg(*exprs).collect()[0]
        return {c: (int(row[3 * i]), row[3 * i + 1], row[3 * i + 2]) for i, c in enumerate(columns)}

    def order_statistics(
        self, wanted: dict[str, Sequence[int]], tiebreak: str | None = None
    ) -> dict[str, list[tuple[Any, Any]]]:
        """Per column, the (value, tiebreak) pairs at its 1-based ranks of its non-null values, exactly.

        All columns in one range-partitioned sort of (column, value, tiebreak) triples
        (several columns must share a type), frozen with a local checkpoint; each
        partition's rows per column are counted, so a row's rank is the column's rows in
        earlier partitions plus its place in its own, and only the wanted rows come back.
        No single-partition step and no RDD (works on Spark Connect).
        """
        from pyspark.sql import functions as F

        columns = list(wanted)
        tie = [] if tiebreak is None else [tiebreak]
        df = self.select(*columns, *tie).spark()
        if len(columns) == 1:
            triples = df.select(
                F.lit(columns[0]).alias("__field"), F.col(columns[0]).alias("__value"), *tie
            )
        else:
            triples = df.unpivot(tie, columns, "__field", "__value")
        triples = triples.where(F.col("__value").isNotNull())
        order = ["__field", "__value", *tie]
        parts = max(triples.rdd.getNumPartitions() if _classic(triples) else 8, 1)
        ordered = (
            triples.repartitionByRange(parts, *order)
            .sortWithinPartitions(*order)
            .withColumn("__part", F.spark_partition_id())
            .withColumn("__id", F.monotonically_increasing_id())
            .localCheckpoint()
        )
        counts = ordered.groupBy("__part", "__field").agg(F.count("*"), F.min("__id")).collect()
        where: dict[int, tuple[str, int]] = {}  # the __id of each wanted row
        for column in columns:
            ranks, before = set(wanted[column]), 0
            for _part, _, n, first in sorted(r for r in counts if r[1] == column):
                for k in ranks:
                    if before < k <= before + n:
                        where[first + k - before - 1] = (column, k)
                before += n
        rows = ordered.where(F.col("__id").isin(list(where))).collect() if where else []
        at = {where[r["__id"]]: (r["__value"], r[tiebreak] if tiebreak else None) for r in rows}
        return {c: [at[c, k] for k in wanted[c] if (c, k) in at] for c in columns}

    def sink_parquet(self, path: Any, **_: Any) -> None:
        """Written by the executors as Parquet part files in the folder ``path``."""
        df = self.spark()
        df.write.mode("overwrite").parquet(spark_path(path))
        _WRITTEN[spark_path(path)] = df.schema

    def materialize(self, path: Any) -> PartitionFrame:
        """Written as Parquet part files, then read back (later passes start from the files)."""
        self.sink_parquet(path)
        return PartitionFrame(read_parquet(self._df.sparkSession, path))


def _on_table(
    fn: Callable[[pl.LazyFrame], pl.LazyFrame], out: pa.Schema
) -> Callable[[pa.Table], pa.Table]:
    """An ``applyInArrow`` function: one group's rows through ``fn``, cast to ``out``."""

    def run(table: pa.Table) -> pa.Table:
        frame = pl.from_arrow(table)
        result = fn(frame.lazy()).collect()  # type: ignore[union-attr]
        return result.to_arrow(compat_level=pl.CompatLevel.oldest()).cast(out)

    return run


def by_group(
    frame: PartitionFrame, by: tuple[str, ...], fn: Callable[[pl.LazyFrame], pl.LazyFrame]
) -> PartitionFrame:
    """``fn`` over each group's rows after a hash shuffle by ``by`` (``applyInArrow``)."""
    schema = fn(pl.LazyFrame(schema=frame.collect_schema())).collect_schema()
    grouped = (
        frame.spark()
        .groupBy(*by)
        .applyInArrow(_on_table(fn, arrow_schema(schema)), spark_schema(schema))
    )
    return PartitionFrame(grouped, schema=schema)
