"""The Spark engine: :class:`~tracer_kit.engine.Engine`'s operations on Spark's executors.

It owns its session: given one, or started on its master when first used (and set up
for runs once, :func:`~tracer_kit.spark.session.for_runs`). Registered for
:class:`~tracer_kit.spark.PartitionFrame`, so every frame operation of
:mod:`tracer_kit.engine` on a Spark frame comes here.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl

from tracer_kit.blueprints import Blueprint, FeatureContext
from tracer_kit.connections import is_database_url
from tracer_kit.engine import (
    Engine,
    Step,
    Transform,
    kth_source_row,
    map_batches,
    register_engine,
    source_row_in,
    write_rows,
)
from tracer_kit.errors import ConfigError
from tracer_kit.ingest import Ingested, ReadContext, ReadOptions
from tracer_kit.spark.features import check_spark_blueprint, spark_features
from tracer_kit.spark.frame import PartitionFrame, by_group, read_parquet
from tracer_kit.spark.session import for_runs, spark_session
from tracer_kit.spark.source import read_spark

__all__ = ["IN_PLAN_ROWS", "SparkEngine"]

#: Row numbers :meth:`SparkEngine.rows_with_source_row` writes into the plan as a set of
#: values; more are joined (a broadcast: one job more).
IN_PLAN_ROWS = 50_000


@register_engine
class SparkEngine(Engine):
    """Spark's executors run the polars steps batch by batch; Spark does what spans rows."""

    name = "spark"
    frame_types = (PartitionFrame,)
    reads_uris = True

    def __init__(self, master: str | None = None, session: Any = None) -> None:
        self.master = master
        self._given = session
        self._session: Any = None

    @classmethod
    def start(cls, *, master: str | None = None, session: Any = None) -> SparkEngine:
        """The engine on ``session``, else the active session or a new one on ``master``."""
        if master is not None and session is not None:
            msg = "give a Spark master or a Spark session, not both"
            raise ConfigError(msg)
        return cls(master=master, session=session)

    @classmethod
    def for_frame(cls, frame: Any) -> SparkEngine:
        """The engine of the frame's session."""
        engine = cls()
        engine._session = frame.session
        return engine

    @property
    def session(self) -> Any:
        """The Spark session, started (or taken) the first time it is asked for."""
        if self._session is None:
            given = self._given if self._given is not None else spark_session(self.master)
            self._session = for_runs(given)
        return self._session

    def __repr__(self) -> str:
        return f"SparkEngine(master={self.master!r})"

    def describe(self) -> dict[str, str | None]:
        """The engine, the session's master and Spark's version."""
        conf = getattr(self.session, "conf", None)
        return {
            "name": self.name,
            "master": conf.get("spark.master", None) if conf is not None else None,
            "version": self.session.version,
        }

    def check_run(self, blueprint: Blueprint, source: Any, *, predicting: bool) -> None:
        """A blueprint without a SparkPlan, a database URL or a predict run: one line each."""
        check_spark_blueprint(blueprint)
        if is_database_url(source):
            msg = (
                "database sources run on the polars engine; on Spark, read the table with "
                "spark.read.jdbc(...) and pass the DataFrame"
            )
            raise ConfigError(msg)

    def notebook_parameters(self) -> dict[str, Any]:
        """The engine's name and master (the kernel starts, or takes, its own session)."""
        return {"engine": self.name, "master": self.master}

    def output_path(self, path: str) -> str:
        """A folder of part files beside where the polars engine writes its file."""
        return str(Path(path).with_suffix(""))

    def read(self, source: Any, options: ReadOptions, context: ReadContext) -> Ingested:
        """:func:`~tracer_kit.spark.read_spark` (a URI, ``table:NAME`` or a DataFrame)."""
        return read_spark(
            self.session,
            source,
            format=options.format,
            delimiter=options.delimiter,
            encoding=options.encoding,
        )

    def scan(self, path: Path) -> PartitionFrame:
        """The part files, read by Spark."""
        return PartitionFrame(read_parquet(self.session, path))

    def read_small(self, path: Path) -> pl.DataFrame:
        """The part files on the driver, in ``source_row`` order (else ordered by every column)."""
        df = pl.read_parquet(Path(path) / "*.parquet")
        return df.sort("source_row" if "source_row" in df.columns else df.columns)

    def driver_rows(self, path: Path, rows: int, limit: int) -> pl.LazyFrame:
        """At most ``limit`` rows (a seeded sample) sent to the driver."""
        df = self.scan(path).spark()
        if rows > limit:
            df = df.sample(fraction=min(1.0, 1.05 * limit / rows), seed=0).limit(limit)
        return pl.from_arrow(df.toArrow()).lazy()  # type: ignore[union-attr]

    def materialize(self, plan: Any, path: Path, compression: str = "zstd") -> PartitionFrame:
        """Part files written by the executors, then read back."""
        return plan.materialize(path)

    def write_ordered(self, frame: Any, path: Path, keys: Sequence[str]) -> None:
        """Part files: readers order by the key."""
        frame.sink_parquet(path)

    def write_batches(
        self, frame: Any, transform: Transform, path: Path, *, schema: pl.Schema | None
    ) -> int:
        """The executors transform their Arrow batches and write part files in ``path``."""
        return write_rows(map_batches(frame, transform, schema=schema), path)

    def write_quarantine(self, rejected: pl.DataFrame, validated: Any, path: Path) -> int:
        """Part files of the quarantined rows, and the ingest rejects as one more file."""
        count = self.count_rows(self.materialize(validated, path))
        if rejected.height:
            rejected.write_parquet(Path(path) / "ingest-rejects.parquet")
        return count + rejected.height

    def count_rows(self, frame: Any) -> int:
        """Spark's count."""
        return frame.count()

    def spread_rows(self, frame: Any, limit: int, rows: int) -> pl.DataFrame:
        """The first ``limit`` rows."""
        return frame.head(limit).collect()

    def every_kth_row(self, frame: Any, k: int) -> PartitionFrame:
        """Taken by Spark from the source rows, before the polars steps run."""
        from pyspark.sql import functions as F

        pick = lambda df: df.where(F.col("source_row") % k == 0)  # noqa: E731
        return frame.before_steps(pick, kth_source_row(k))

    def rows_with_source_row(self, frame: Any, rows: pl.Series) -> PartitionFrame:
        """Taken by Spark from the source rows, before the polars steps run: a set of values
        in the plan for up to :data:`IN_PLAN_ROWS` rows (no job), else a broadcast semi-join.
        """  # noqa: D205
        from pyspark.sql import functions as F

        def pick(df: Any) -> Any:
            if rows.len() <= IN_PLAN_ROWS:
                return df.where(F.col("source_row").isin(rows.to_list()))
            wanted = PartitionFrame.from_polars(df.sparkSession, rows.cast(pl.Int64).to_frame())
            small = wanted.spark().toDF("source_row")
            return df.join(F.broadcast(small), on="source_row", how="left_semi")

        return frame.before_steps(pick, source_row_in(rows))

    def collect_step(self, frame: Any, step: Step) -> pl.DataFrame:
        """The step per batch on the executors, its few rows collected."""
        return frame.pipe(step).collect()

    def map_batches(self, frame: Any, fn: Transform, schema: pl.Schema) -> PartitionFrame:
        """``fn`` over each Arrow batch on the executors."""
        return frame.pipe(lambda lf: fn(lf.collect()).lazy(), schema=schema)

    def per_group(self, frame: Any, by: Sequence[str], fn: Step) -> PartitionFrame:
        """A hash shuffle by the keys, ``fn`` on the executors (``applyInArrow``)."""
        return by_group(frame, tuple(by), fn)

    def small_frame(self, like: Any, df: pl.DataFrame) -> PartitionFrame:
        """A Spark DataFrame of ``like``'s session."""
        return PartitionFrame.from_polars(like.session, df)

    def moments(
        self, frame: Any, columns: Sequence[str]
    ) -> dict[str, tuple[int, float | None, float | None]]:
        """One Spark job of count, avg and stddev_samp per column."""
        return frame.moments(columns)

    def ranks_by_sort(
        self, frame: Any, wanted: dict[str, list[int]], tiebreak: str | None
    ) -> dict[str, dict[int, tuple[Any, Any]]]:
        """All the columns in one range-partitioned sort with per-partition offsets."""
        found = frame.order_statistics(wanted, tiebreak)
        return {c: dict(zip(ranks, found[c], strict=True)) for c, ranks in wanted.items()}

    def repeated_values(
        self, frame: Any, column: str, work: Path, stored: tuple[Path, str] | None
    ) -> pl.DataFrame:
        """Spark's group-by of the typed column."""
        return frame.select("source_row", column).repeated_values(column)

    def features(self, valid: Any, blueprint: Blueprint, ctx: FeatureContext) -> Any:
        """``build_features`` placed by the blueprint's SparkPlan."""
        return spark_features(valid, blueprint, ctx)
