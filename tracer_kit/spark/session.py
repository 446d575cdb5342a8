"""Getting a Spark session: ``local[N]``, a standalone or YARN cluster, or Spark Connect.

The polars steps run in Python on the executors, so the executors need the same Python
packages as the driver (tracer-kit and polars): on one machine, the session uses the
driver's own interpreter; on a cluster, ship a packed environment (``--archives``) or
install tracer-kit on the nodes (README, "Spark").
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from tracer_kit.errors import ConfigError
from tracer_kit.heavy import quiet_pyspark_pandas_warning

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["RUN_SETTINGS", "SPARK_DEFAULTS", "for_runs", "spark_session"]

#: Settings tracer-kit starts a session with (a given session keeps its own).
SPARK_DEFAULTS = {
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.session.timeZone": "UTC",
    "spark.driver.memory": "2g",  # (the JVM's default 1 GB is tight for a 100,000-row sample)
    # The polars steps run per Arrow batch: Spark's 10,000 rows a batch made planning and
    # conversions a tenth of a pass over the checked rows (100 MB on local[2]: 92 s -> 85 s).
    # The byte bound keeps a batch of wide rows small.
    "spark.sql.execution.arrow.maxRecordsPerBatch": "100000",
    "spark.sql.execution.arrow.maxBytesPerBatch": str(64 * 2**20),
}

#: Settings every session gets when a run starts on it (given sessions too): column names
#: are case-sensitive, as in polars (a one-hot matrix may hold ``plan_Basic`` and ``plan_basic``).
RUN_SETTINGS = {"spark.sql.caseSensitive": "true"}


def for_runs(session: SparkSession) -> SparkSession:
    """``session`` with :data:`RUN_SETTINGS` set (runtime settings: no restart)."""
    quiet_pyspark_pandas_warning()
    for key, value in RUN_SETTINGS.items():
        session.conf.set(key, value)
    return session


def spark_session(
    master: str | None = None, *, config: dict[str, str] | None = None
) -> SparkSession:
    """The active Spark session, or a new one on ``master``.

    ``master`` is ``local[2]`` (the default), ``spark://host:7077``, ``yarn``, or
    ``sc://host:15002`` for Spark Connect. ``config`` adds Spark settings.
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        msg = 'the Spark engine needs pyspark: pip install "tracer-kit[spark]"'
        raise ConfigError(msg) from None
    if master and master.startswith("sc://"):
        builder = SparkSession.builder.remote(master)
    else:
        active = SparkSession.getActiveSession()
        if active is not None and master is None:
            return active
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
        builder = SparkSession.builder.master(master or "local[2]").appName("tracer-kit")
    for key, value in {**SPARK_DEFAULTS, **(config or {})}.items():
        builder = builder.config(key, value)
    try:
        session = builder.getOrCreate()
    except Exception as exc:
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        msg = f"could not start Spark on {master or 'local[2]'}: {first}"
        raise ConfigError(msg) from None
    if hasattr(session, "sparkContext") and not (master or "").startswith("sc://"):
        session.sparkContext.setLogLevel("ERROR")  # Spark's WARN lines would fill notebooks
    return session
