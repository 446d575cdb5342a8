"""The features on Spark: a blueprint's own polars ``build_features``, placed by its :class:`SparkPlan`.

``rows`` runs it on each Arrow batch; ``groups`` on each group's rows after a hash shuffle
by the group columns (``applyInArrow``); ``reduce`` reduces each batch, then each group of
partial rows, and runs it on the driver over the small result (one row per date). The
whole-column statistics a plan needs (quartile cuts, bounds, a median) come first, from
the blueprint's ``feature_statistics`` over the valid rows, which uses Spark's own
aggregates and range sorts through :class:`PartitionFrame`.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from tracer_kit.blueprints import Blueprint, FeatureContext
from tracer_kit.errors import ConfigError
from tracer_kit.spark.frame import PartitionFrame, by_group

__all__ = ["check_spark_blueprint", "spark_features"]


def check_spark_blueprint(blueprint: Blueprint) -> None:
    """Raise a one-line :class:`ConfigError` when ``blueprint`` declares no :class:`SparkPlan`."""
    if blueprint.spark is None:
        msg = (
            f"blueprint {blueprint.name!r} runs on the polars engine only: its build_features "
            "is polars code over the whole frame, and it declares no spark=SparkPlan(...) "
            "saying which rows it needs together (rows, groups or reduce); add one, or run "
            "with engine='polars'"
        )
        raise ConfigError(msg)


def spark_features(valid: PartitionFrame, blueprint: Blueprint, ctx: FeatureContext) -> Any:
    """``blueprint.build_features`` over the valid rows on Spark (a PartitionFrame of processed rows)."""
    check_spark_blueprint(blueprint)
    plan = blueprint.spark
    assert plan is not None

    def build(lf: pl.LazyFrame) -> pl.LazyFrame:
        return blueprint.build_features(lf, ctx)

    if plan.mode == "rows":
        return valid.pipe(build)
    if plan.mode == "groups":
        return by_group(valid, plan.by, build)
    assert plan.reduce is not None
    partial = by_group(valid.pipe(plan.reduce), plan.by, plan.reduce)
    small = partial.collect()  # one row per group (e.g. per date): the exempt small series
    rows = build(small.lazy()).collect()
    return PartitionFrame.from_polars(valid.session, rows)
