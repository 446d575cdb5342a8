"""The Spark engine: the same blueprints, checks and formulas, run by Spark's executors.

``run_pipeline(source, blueprint, engine="spark", spark=session)`` reads the source with
Spark (:func:`read_spark`), runs the quality stage and the features as tracer's own polars
expressions (:class:`PartitionFrame`): as Spark's own plan where each has an exact Spark
twin (``tracer_kit.spark.columns``), else as polars code on each partition's batches;
Spark does what spans rows (aggregates, group-bys, sorts by range, joins, writes), and
the run is recorded in the DuckDB warehouse on the driver. Importing this package needs pyspark (``tracer-kit[spark]``).
"""

from __future__ import annotations

from tracer_kit.spark.frame import PartitionFrame
from tracer_kit.spark.session import SPARK_DEFAULTS, spark_session
from tracer_kit.spark.source import read_spark, spark_formats

__all__ = [
    "PartitionFrame",
    "SPARK_DEFAULTS",
    "read_spark",
    "spark_formats",
    "spark_session",
]
