"""The engines: one interface for what the polars engine and the Spark engine do differently.

The stages are written once, against a frame that is a polars ``LazyFrame`` (the polars
engine, out of core on one machine) or a :class:`~tracer_kit.spark.PartitionFrame` (the
Spark engine: the same polars steps run batch by batch on the executors). Row-by-row work
(``filter``, ``select``, ``with_columns``) and :class:`~tracer_kit.aggregates.Aggregates`
read the same on both. What must be done differently (reading the source, writing rows,
taking a bounded sample, running a function on each group's rows, exact order statistics)
is a method of :class:`Engine`, the one interface both engines implement: an engine that
lacks one cannot be made (``TypeError``), so a missing operation never surprises a run.

Engines are registered twice, as pandera registers its backends and papermill its engines:

- by **name** (:data:`ENGINES`): :func:`resolve_engine` turns ``"polars"`` or ``"spark"``
  (and a Spark master or session) into an engine once, at the edge (the CLI, the notebooks,
  the widgets, :func:`~tracer_kit.run_pipeline`); the Spark engine owns its session and
  starts it when first used;
- by **frame type** (:func:`register_engine`): the functions below (:func:`materialize`,
  :func:`fit_rows`, :func:`order_statistics` ...) hand a frame to the engine registered
  for its type, so a stage given a frame never asks which engine runs.
"""

from __future__ import annotations

import importlib
import importlib.util
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import polars as pl

from tracer_kit._scratch import is_sorted_by, sink_sorted, spread
from tracer_kit._scratch import order_statistics as banded
from tracer_kit._scratch import repeated_values as out_of_core
from tracer_kit.errors import ConfigError
from tracer_kit.ingest import Ingested, ReadContext, ReadOptions, read_source
from tracer_kit.settings import parquet_options

if TYPE_CHECKING:  # (the blueprints' statistics use this module's order statistics)
    from tracer_kit.blueprints import Blueprint, FeatureContext

__all__ = [
    "ENGINES",
    "Engine",
    "PolarsEngine",
    "count_rows",
    "engine_of",
    "engine_names",
    "first_rows_where",
    "fit_rows",
    "kth_source_row",
    "map_batches",
    "materialize",
    "moments",
    "order_statistics",
    "per_group",
    "register_engine",
    "repeated_values",
    "resolve_engine",
    "rows_with_source_row",
    "small_frame",
    "source_row_in",
    "write_in_batches",
    "write_rows",
]

#: A polars step over one batch or one group of rows.
Step = Callable[[pl.LazyFrame], pl.LazyFrame]
#: A function over one batch of rows (a model's scoring, a preprocessing step).
Transform = Callable[[pl.DataFrame], pl.DataFrame]

#: The engines by name: where each is defined and the package it needs (None: always there).
ENGINES: dict[str, tuple[str, str | None]] = {
    "polars": ("tracer_kit.engine:PolarsEngine", None),
    "spark": ("tracer_kit.spark.engine:SparkEngine", "pyspark"),
}

#: Rows per batch when a transform runs in Python on the polars engine (a model's scoring:
#: scikit-learn's pandas input copies a batch a few times over).
BATCH_ROWS = 200_000


class Engine(ABC):
    """What an engine must do; every method is one operation the stages may call.

    A subclass declares its ``name`` (a key of :data:`ENGINES`) and the ``frame_types`` it
    owns, and implements every abstract method (else it cannot be instantiated).
    """

    name: ClassVar[str]
    frame_types: ClassVar[tuple[type, ...]]
    #: Whether the engine reads any URI its cluster reaches (the source is then read, and
    #: checked, only where the engine runs), rather than local files and URLs.
    reads_uris: ClassVar[bool] = False
    #: Where the engine runs, when it has a say (a Spark master).
    master: str | None = None

    @classmethod
    @abstractmethod
    def start(cls, *, master: str | None = None, session: Any = None) -> Engine:
        """The engine a run uses (its session, if it has one, started when first needed)."""

    @classmethod
    @abstractmethod
    def for_frame(cls, frame: Any) -> Engine:
        """The engine that owns ``frame`` (on Spark, the frame's session)."""

    def describe(self) -> dict[str, str | None] | None:
        """What the run record says about the engine (None: the polars default)."""
        return None

    def check_run(self, blueprint: Blueprint, source: Any, *, predicting: bool) -> None:  # noqa: B027
        """Raise a one-line :class:`ConfigError` when this engine cannot run it (default: it can)."""

    def notebook_parameters(self) -> dict[str, Any]:
        """What a run's notebook is given to resolve the same engine in its kernel."""
        return {}

    def output_path(self, path: str) -> str:
        """Where a run's processed rows go (one file; on Spark a folder of part files)."""
        return path

    # ------------------------------------------------------------------ reading
    @abstractmethod
    def read(self, source: Any, options: ReadOptions, context: ReadContext) -> Ingested:
        """The source's records as text columns with ``source_row``."""

    @abstractmethod
    def scan(self, path: Path) -> Any:
        """A Parquet output (a file, or Spark's folder of part files) as a frame."""

    @abstractmethod
    def read_small(self, path: Path) -> pl.DataFrame:
        """A small Parquet output on the driver, in ``source_row`` order."""

    @abstractmethod
    def driver_rows(self, path: Path, rows: int, limit: int) -> pl.LazyFrame:
        """The rows of a Parquet output a driver-side summary reads (all, or a bounded sample)."""

    # ------------------------------------------------------------------ writing
    @abstractmethod
    def materialize(self, plan: Any, path: Path, compression: str = "zstd") -> Any:
        """Write ``plan`` as Parquet and read it back: one file (polars) or part files (Spark)."""

    @abstractmethod
    def write_ordered(self, frame: Any, path: Path, keys: Sequence[str]) -> None:
        """Write rows that readers take in ``keys`` then ``source_row`` order."""

    @abstractmethod
    def write_batches(
        self, frame: Any, transform: Transform, path: Path, *, schema: pl.Schema | None
    ) -> int:
        """``transform`` over the rows batch by batch, written to ``path``; returns rows."""

    @abstractmethod
    def write_quarantine(self, rejected: pl.DataFrame, validated: Any, path: Path) -> int:
        """The rows rejected at ingest and those validation quarantined, written; their count."""

    # ------------------------------------------------------------------ whole-frame work
    @abstractmethod
    def count_rows(self, frame: Any) -> int:
        """The number of rows."""

    @abstractmethod
    def spread_rows(self, frame: Any, limit: int, rows: int) -> pl.DataFrame:
        """``limit`` rows of a frame without ``source_row``, on the driver."""

    @abstractmethod
    def every_kth_row(self, frame: Any, k: int) -> Any:
        """The rows whose ``source_row`` is a multiple of ``k`` (a lazy frame of the engine)."""

    @abstractmethod
    def rows_with_source_row(self, frame: Any, rows: pl.Series) -> Any:
        """The rows whose ``source_row`` is one of ``rows`` (a lazy frame of the engine)."""

    @abstractmethod
    def collect_step(self, frame: Any, step: Step) -> pl.DataFrame:
        """A step that reduces the rows to a few (per batch on Spark), collected on the driver."""

    @abstractmethod
    def map_batches(self, frame: Any, fn: Transform, schema: pl.Schema) -> Any:
        """``fn`` over each batch (empty batches already handled by the caller)."""

    @abstractmethod
    def per_group(self, frame: Any, by: Sequence[str], fn: Step) -> Any:
        """``fn`` over each group's rows, results concatenated."""

    @abstractmethod
    def small_frame(self, like: Any, df: pl.DataFrame) -> Any:
        """A small polars result as a frame of this engine."""

    @abstractmethod
    def moments(
        self, frame: Any, columns: Sequence[str]
    ) -> dict[str, tuple[int, float | None, float | None]]:
        """Per column: count, mean and sample standard deviation of its non-null values."""

    @abstractmethod
    def ranks_by_sort(
        self, frame: Any, wanted: dict[str, list[int]], tiebreak: str | None
    ) -> dict[str, dict[int, tuple[Any, Any]]]:
        """Per column, ``{rank: (value, tiebreak)}`` by a full sort (what bands could not find)."""

    @abstractmethod
    def repeated_values(
        self, frame: Any, column: str, work: Path, stored: tuple[Path, str] | None
    ) -> pl.DataFrame:
        """Values of ``column`` seen more than once, with the ``source_row`` of the first."""

    @abstractmethod
    def features(self, valid: Any, blueprint: Blueprint, ctx: FeatureContext) -> Any:
        """The blueprint's features over the valid rows."""


class PolarsEngine(Engine):
    """One machine, out of core: lazy scans, streaming collects, DuckDB for what spills."""

    name = "polars"
    frame_types = (pl.LazyFrame, pl.DataFrame)

    @classmethod
    def start(cls, *, master: str | None = None, session: Any = None) -> PolarsEngine:
        """The polars engine; a Spark master or session is a mistake worth one line."""
        if master is not None or session is not None:
            msg = "a Spark master or session needs engine 'spark' (--engine spark)"
            raise ConfigError(msg)
        return POLARS

    @classmethod
    def for_frame(cls, frame: Any) -> PolarsEngine:
        """The one polars engine."""
        return POLARS

    def __repr__(self) -> str:
        return "PolarsEngine()"

    def read(self, source: Any, options: ReadOptions, context: ReadContext) -> Ingested:
        """:func:`tracer_kit.read_source`: a file, a database table or query, an HTTP API."""
        return read_source(source, options, context)

    def scan(self, path: Path) -> pl.LazyFrame:
        """A lazy scan of the file."""
        return pl.scan_parquet(path)

    def read_small(self, path: Path) -> pl.DataFrame:
        """The file, read."""
        return pl.read_parquet(path)

    def driver_rows(self, path: Path, rows: int, limit: int) -> pl.LazyFrame:
        """All the rows: a lazy scan streams them."""
        return pl.scan_parquet(path)

    def materialize(self, plan: Any, path: Path, compression: str = "zstd") -> pl.LazyFrame:
        """Sunk to one file, then scanned."""
        plan.lazy().sink_parquet(path, **parquet_options(compression))
        return pl.scan_parquet(path)

    def write_ordered(self, frame: Any, path: Path, keys: Sequence[str]) -> None:
        """Sunk in plan order; sorted afterwards only when neither ``source_row`` nor key order holds."""
        frame.lazy().sink_parquet(path, **parquet_options())
        written = pl.scan_parquet(path)
        ordered = [*keys, "source_row"]
        if not (is_sorted_by(written, ["source_row"]) or is_sorted_by(written, ordered)):
            unsorted = path.with_name(path.name + ".unsorted")
            path.replace(unsorted)
            sink_sorted(pl.scan_parquet(unsorted), path, ordered)
            unsorted.unlink()

    def write_batches(
        self, frame: Any, transform: Transform, path: Path, *, schema: pl.Schema | None
    ) -> int:
        """:func:`write_in_batches` of :data:`BATCH_ROWS` rows, read slice by slice."""
        return write_in_batches(transform, frame.lazy(), path, batch_rows=BATCH_ROWS)

    def write_quarantine(self, rejected: pl.DataFrame, validated: Any, path: Path) -> int:
        """One file in ``source_row`` order (the rejects merged in when there are any)."""
        both = pl.concat([rejected.lazy(), validated.lazy()])
        if rejected.height:  # validated rows are in source_row order; sort only when merging
            both = both.sort("source_row")
        return self.count_rows(self.materialize(both, path))

    def count_rows(self, frame: Any) -> int:
        """A streaming count."""
        return frame.lazy().select(pl.len()).collect(engine="streaming").item()

    def spread_rows(self, frame: Any, limit: int, rows: int) -> pl.DataFrame:
        """Every k-th row (:func:`tracer_kit._scratch.spread`)."""
        return spread(frame.lazy(), limit, rows=rows).collect(engine="streaming")

    def every_kth_row(self, frame: Any, k: int) -> pl.LazyFrame:
        """A filter on ``source_row``."""
        return frame.lazy().filter(kth_source_row(k))

    def rows_with_source_row(self, frame: Any, rows: pl.Series) -> pl.LazyFrame:
        """A filter on ``source_row`` (Parquet's row-group statistics skip the others)."""
        return frame.lazy().filter(source_row_in(rows))

    def collect_step(self, frame: Any, step: Step) -> pl.DataFrame:
        """The step over the whole frame, streaming."""
        return step(frame.lazy()).collect(engine="streaming")

    def map_batches(self, frame: Any, fn: Transform, schema: pl.Schema) -> pl.LazyFrame:
        """Polars' streaming ``map_batches``."""
        return frame.lazy().map_batches(fn, schema=schema, streamable=True)

    def per_group(self, frame: Any, by: Sequence[str], fn: Step) -> pl.LazyFrame:
        """Groups in key order, each group's rows in their order in ``frame``."""
        df = frame.lazy().collect(engine="streaming")
        parts = df.sort(list(by), maintain_order=True).partition_by(list(by), maintain_order=True)
        results = [fn(part.lazy()).collect() for part in parts]
        if not results:
            return fn(df.head(0).lazy())
        return pl.concat(results, how="vertical_relaxed").lazy()

    def small_frame(self, like: Any, df: pl.DataFrame) -> pl.LazyFrame:
        """The frame, lazy."""
        return df.lazy()

    def moments(
        self, frame: Any, columns: Sequence[str]
    ) -> dict[str, tuple[int, float | None, float | None]]:
        """One streaming pass of count, mean and std per column."""
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

    def ranks_by_sort(
        self, frame: Any, wanted: dict[str, list[int]], tiebreak: str | None
    ) -> dict[str, dict[int, tuple[Any, Any]]]:
        """Each column sorted in memory, a column at a time."""
        tie = [tiebreak] if tiebreak else []
        out = {}
        for c, ranks in wanted.items():
            rows = frame.lazy().select(c, *tie).drop_nulls(c).sort([c, *tie]).collect()
            out[c] = {k: _pair(rows.row(k - 1)) for k in ranks}
        return out

    def repeated_values(
        self, frame: Any, column: str, work: Path, stored: tuple[Path, str] | None
    ) -> pl.DataFrame:
        """An out-of-core DuckDB group-by over Parquet: ``stored`` (a file and its column
        holding the same values) when given, else the column staged first.
        """  # noqa: D205
        if stored is not None:
            return out_of_core(stored[0], stored[1], work)
        ids = work / "identifiers.parquet"
        frame.select("source_row", column).sink_parquet(ids, compression="lz4")
        try:
            return out_of_core(ids, column, work)
        finally:
            ids.unlink(missing_ok=True)

    def features(self, valid: Any, blueprint: Blueprint, ctx: FeatureContext) -> pl.LazyFrame:
        """The blueprint's ``build_features``."""
        return blueprint.build_features(valid, ctx)


#: The polars engine (it holds nothing, so one serves every run).
POLARS = PolarsEngine()

_BY_TYPE: dict[type, type[Engine]] = {}


def register_engine(engine: type[Engine]) -> type[Engine]:
    """Register ``engine`` for its ``frame_types`` (a class decorator); returns it."""
    for frame_type in engine.frame_types:
        _BY_TYPE[frame_type] = engine
    return engine


register_engine(PolarsEngine)


def _engine_class(name: str) -> type[Engine]:
    where, needs = ENGINES[name]
    if needs is not None and importlib.util.find_spec(needs) is None:
        msg = f'the {name} engine needs {needs}: pip install "tracer-kit[{name}]"'
        raise ConfigError(msg)
    module, _, attr = where.partition(":")
    return getattr(importlib.import_module(module), attr)


def engine_names() -> list[str]:
    """The engines this installation can run (each one's package importable)."""
    return [
        name
        for name, (_, needs) in ENGINES.items()
        if needs is None or importlib.util.find_spec(needs) is not None
    ]


def resolve_engine(
    engine: str | Engine = "polars", *, master: str | None = None, session: Any = None
) -> Engine:
    """The engine named ``engine`` (an :class:`Engine` is returned as is), resolved once.

    ``master`` (``local[2]``, ``spark://host:7077``, ``yarn``, ``sc://host:15002``) or
    ``session`` (a running ``SparkSession``) choose where the Spark engine runs; it starts
    its session when first used. A name that is no engine is one :class:`ConfigError` line.

    >>> import tracer_kit as tk
    >>> tk.resolve_engine("polars").name
    'polars'
    """
    if isinstance(engine, Engine):
        if master is not None or session is not None:
            msg = "give a Spark master or session to resolve_engine, not beside an engine"
            raise ConfigError(msg)
        return engine
    if engine not in ENGINES:
        msg = f"engine {engine!r}: use {' or '.join(ENGINES)}"
        raise ConfigError(msg)
    return _engine_class(engine).start(master=master, session=session)


def _registered(frame: Any) -> type[Engine] | None:
    return next((_BY_TYPE[k] for k in type(frame).__mro__ if k in _BY_TYPE), None)


def engine_of(frame: Any) -> Engine:
    """The engine registered for ``frame``'s type (engines load on first sight of their frames)."""
    engine = _registered(frame)
    if engine is None:
        for name in engine_names():  # a frame of an engine not loaded yet registers it
            _engine_class(name)
        engine = _registered(frame)
    if engine is None:
        msg = f"no engine runs frames of type {type(frame).__name__}"
        raise TypeError(msg)
    return engine.for_frame(frame)


# --------------------------------------------------------------------------- frame operations


def materialize(plan: Any, path: Path, compression: str = "zstd") -> Any:
    """Write ``plan`` as Parquet and read it back: one file (polars) or part files (Spark)."""
    return engine_of(plan).materialize(plan, path, compression)


def write_rows(frame: Any, path: Path) -> int:
    """Write ``frame`` to ``path`` (zstd Parquet; part files on Spark); returns the rows written."""
    return count_rows(materialize(frame, path))


def count_rows(frame: Any) -> int:
    """The number of rows (a streaming count; Spark's count)."""
    return engine_of(frame).count_rows(frame)


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
        frame = engine_of(frame).every_kth_row(frame, -(-n // limit))
    elif n > limit:
        return engine_of(frame).spread_rows(frame, limit, n)
    return frame.lazy().head(min(n, limit)).collect(engine="streaming")


def kth_source_row(k: int) -> pl.Expr:
    """Rows whose ``source_row`` is a multiple of ``k`` (every engine's even spread)."""
    return pl.col("source_row") % k == 0


def source_row_in(rows: pl.Series) -> pl.Expr:
    """Rows whose ``source_row`` is one of ``rows``."""
    return pl.col("source_row").is_in(rows.implode())


def rows_with_source_row(frame: Any, rows: pl.Series) -> Any:
    """The rows whose ``source_row`` is one of ``rows``: a few rows found by an earlier pass
    (the quarantined rows' records in bronze), taken without reading the others.
    """  # noqa: D205
    return engine_of(frame).rows_with_source_row(frame, rows)


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

    found = engine_of(frame).collect_step(frame, heads)
    limit = pl.col("mask").replace_strict({k: n for k, (_, n) in enumerate(masks)})
    return found.sort("mask", "source_row").filter(pl.int_range(pl.len()).over("mask") < limit)


def map_batches(frame: Any, fn: Transform, *, schema: pl.Schema | None = None) -> Any:
    """``fn`` over the rows batch by batch (the executors' Arrow batches on Spark).

    ``fn`` must be row by row (polars' streaming engine also hands it batches). Its output
    columns are ``schema`` when given, else ``fn``'s on the first row (a model may refuse an
    empty frame; on Spark that costs a job); an empty batch gives no rows.
    """
    if schema is None:
        schema = fn(frame.lazy().head(1).collect()).schema
    out = schema

    def batch_fn(batch: pl.DataFrame) -> pl.DataFrame:
        return fn(batch) if batch.height else pl.DataFrame(schema=out)

    return engine_of(frame).map_batches(frame, batch_fn, schema)


def per_group(frame: Any, by: Sequence[str], fn: Step) -> Any:
    """``fn`` over each group's rows (groups by the ``by`` columns), results concatenated.

    polars: groups in key order, each group's rows in their order in ``frame``. Spark: a
    hash shuffle by the keys, ``fn`` on the executors (``applyInArrow``), rows in no order.
    """
    return engine_of(frame).per_group(frame, by, fn)


def small_frame(like: Any, df: pl.DataFrame) -> Any:
    """A small polars result as a frame of ``like``'s engine (a Spark DataFrame on Spark)."""
    return engine_of(like).small_frame(like, df)


def moments(
    frame: Any, columns: Sequence[str]
) -> dict[str, tuple[int, float | None, float | None]]:
    """Per column: count, mean and sample standard deviation of its non-null values (one pass)."""
    return engine_of(frame).moments(frame, columns)


def _pair(row: tuple[Any, ...]) -> tuple[Any, Any]:
    """(value, tiebreak) from a row of the value and, when there is one, the tiebreak."""
    return row[0], row[1] if len(row) > 1 else None


def order_statistics(
    frame: Any,
    wanted: dict[str, Sequence[int]],
    tiebreak: str | None = None,
    *,
    counts: dict[str, int] | None = None,
) -> dict[str, list[tuple[Any, Any]]]:
    """Per column, the (value, tiebreak) pairs at its 1-based ranks of its non-null values, exactly.

    ``counts`` (non-null values per column) when known. On both engines: sample-guided
    bands, no full sort, every column in the same two passes
    (:func:`tracer_kit._scratch.order_statistics`); a band that misses its rank three times,
    or holds more than ``settings.band_rows`` rows alone, is found by the engine's
    :meth:`Engine.ranks_by_sort` (Spark: all those columns in one range-partitioned sort
    with per-partition offsets; several columns must then share a type). Ranks outside
    1..n are skipped.
    """
    engine = engine_of(frame)
    return banded(
        frame,
        wanted,
        tiebreak,
        counts or {},
        sample_rows=lambda part, limit, rows: fit_rows(part, limit, rows=rows),
        exact=lambda missing: engine.ranks_by_sort(frame, missing, tiebreak),
    )


def repeated_values(
    frame: Any, column: str, work: Path, *, stored: tuple[Path, str] | None = None
) -> pl.DataFrame:
    """Values of ``column`` seen more than once, with the ``source_row`` of the first one.

    polars: searched out of core, in ``stored`` (a Parquet file and its column holding the
    same values, such as bronze for a clean column) when given; Spark: its own group-by.
    """
    return engine_of(frame).repeated_values(frame, column, work, stored)


# --------------------------------------------------------------------------- batches


def _slices(lf: pl.LazyFrame, rows: int) -> Iterator[pl.DataFrame]:
    total = lf.select(pl.len()).collect().item()
    for offset in range(0, total, rows):
        yield lf.slice(offset, rows).collect()


def write_in_batches(
    transform: Transform, lf: pl.LazyFrame, path: str | Path, *, batch_rows: int = BATCH_ROWS
) -> int:
    """``transform`` over ``lf`` in batches of ``batch_rows`` rows, written in order to
    ``path`` (zstd Parquet); returns rows written. Memory holds one batch, whatever the
    table's size.

    Each batch is read on its own (``lf.slice``; cheap when ``lf`` is a scan of a file) and
    transformed in this thread: for a transform that is slow and multi-threaded itself,
    such as a scikit-learn model's ``predict_proba``, where polars' streaming engine would
    read ahead of it and two Python threads would only contend.
    """  # noqa: D205
    import pyarrow.parquet as pq

    writer = None
    rows = 0
    try:
        for batch in _slices(lf, batch_rows):
            table = transform(batch).to_arrow()
            if writer is None:
                writer = pq.ParquetWriter(str(path), table.schema, **parquet_options())
            writer.write_table(table)
            rows += table.num_rows
        if writer is None:  # no rows at all: an empty file with the right columns
            transform(lf.head(0).collect()).write_parquet(path, **parquet_options())
    finally:
        if writer is not None:
            writer.close()
    return rows
