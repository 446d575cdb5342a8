"""customer_churn: who is drifting away, from one row per customer.

The nine features are pure polars expressions; each function's docstring is its formula.
Whole-column statistics (quartile cuts, min-max bounds) come from their own passes, so the
feature plan itself is row by row and streams over files bigger than memory.
``ref`` is the run's reference date (default: the latest valid ``last_activity_date`` not
after the run date).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from typing import Any

import polars as pl

from tracer_kit.blueprints._base import (
    Blueprint,
    Feature,
    FeatureContext,
    Field,
    ModelSpec,
    Rule,
    RuleContext,
    SparkPlan,
)
from tracer_kit.blueprints.stats import column_bounds, quantile_cuts

__all__ = [
    "BLUEPRINT",
    "CHURN_INPUTS",
    "WHOLE_FILE_FEATURES",
    "SNAPSHOT",
    "TENURE_DAYS",
    "churn_form",
    "ENGAGEMENT_PARTS",
    "PLAN_LEVELS",
    "account_tenure_days",
    "activity_recency_score",
    "build_features",
    "daily_value_rate",
    "days_since_last_activity",
    "engagement_bounds",
    "engagement_score",
    "feature_statistics",
    "feature_usage_rate",
    "min_max",
    "null_cause",
    "plan_value_score",
    "support_intensity",
    "value_cuts",
    "value_tier",
]

PLAN_LEVELS = {"basic": 1, "standard": 2, "premium": 3, "enterprise": 4}


def _days_to(column: str, ref: dt.date) -> pl.Expr:
    return (pl.lit(ref, dtype=pl.Date) - pl.col(column)).dt.total_days().cast(pl.Int64)


def days_since_last_activity(ref: dt.date) -> pl.Expr:
    """``days_since_last_activity`` = days from ``last_activity_date`` to ``ref`` (integer)."""
    return _days_to("last_activity_date", ref).alias("days_since_last_activity")


def account_tenure_days(ref: dt.date) -> pl.Expr:
    """``account_tenure_days`` = days from ``account_created_date`` to ``ref`` (integer)."""
    return _days_to("account_created_date", ref).alias("account_tenure_days")


def _at_least_one_day() -> pl.Expr:
    # clip keeps a null tenure null (max_horizontal would turn it into 1).
    return pl.col("account_tenure_days").clip(lower_bound=1)


def daily_value_rate() -> pl.Expr:
    """``daily_value_rate`` = ``total_value / max(account_tenure_days, 1)``."""
    return (pl.col("total_value") / _at_least_one_day()).alias("daily_value_rate")


def support_intensity() -> pl.Expr:
    """``support_intensity`` = ``support_tickets / max(account_tenure_days / 30, 1)``."""
    months = (pl.col("account_tenure_days") / 30).clip(lower_bound=1)
    return (pl.col("support_tickets") / months).alias("support_intensity")


def feature_usage_rate() -> pl.Expr:
    """``feature_usage_rate`` = ``feature_usage_count / max(account_tenure_days, 1)``."""
    return (pl.col("feature_usage_count") / _at_least_one_day()).alias("feature_usage_rate")


def activity_recency_score() -> pl.Expr:
    """``activity_recency_score`` = ``exp(-days_since_last_activity / 30)``."""
    return (-pl.col("days_since_last_activity") / 30).exp().alias("activity_recency_score")


def value_cuts(valid: pl.LazyFrame) -> tuple[int, list[tuple[float, int] | None]]:
    """``n`` (non-null ``total_value`` count) and the (value, source_row) of ranks floor(j n / 4), j = 1..3.

    The only whole-column order statistic the churn features need, found exactly without
    sorting the column (:func:`tracer_kit.blueprints.stats.quantile_cuts`). A rank of 0 (fewer
    than four values) is None.
    """
    return quantile_cuts(valid, "total_value", 4)


def value_tier(cuts: list[tuple[float, int] | None]) -> pl.Expr:
    """``value_tier`` = ``ceil(4 * rank / n)``: quartile 1..4 of ``total_value`` over valid rows.

    ``rank`` is ordinal with ties broken by ``source_row``; ``n`` counts non-null values; a
    null value gets a null tier. Computed row by row as ``1 + #{j : rank > floor(j n / 4)}``,
    where ``rank > k`` exactly when (value, source_row) is after the k-th smallest pair
    (``cuts`` from :func:`value_cuts`).
    """
    value, row = pl.col("total_value"), pl.col("source_row")
    tier = pl.lit(1, dtype=pl.Int8)
    for cut in cuts:
        if cut is None:
            after = pl.lit(True)
        else:
            v, r = cut
            after = (value > v) | ((value == v) & (row > r))
        tier = tier + after.cast(pl.Int8)
    return pl.when(value.is_not_null()).then(tier).cast(pl.Int8).alias("value_tier")


def _plan_key() -> pl.Expr:
    """``plan_type`` as the plan levels are matched: without case or surrounding spaces."""
    return pl.col("plan_type").str.strip_chars().str.to_lowercase()


def plan_value_score(levels: Sequence[str] | None = None) -> pl.Expr:
    """``plan_value_score`` = a plan's 1-based rank in ``levels`` (default basic 1, standard 2,
    premium 3, enterprise 4), case- and space-insensitive; an unknown or missing plan is null.
    """  # noqa: D205
    order = (
        {name.strip().lower(): i for i, name in enumerate(levels, start=1)}
        if levels
        else PLAN_LEVELS
    )
    # (a chain of when/then: replace_strict is not streamed, 1 GB churn held 1.7 GB)
    plan = _plan_key()
    expr = pl.lit(None, dtype=pl.Int8)
    for name, level in reversed(order.items()):
        expr = pl.when(plan == name).then(pl.lit(level, dtype=pl.Int8)).otherwise(expr)
    return expr.alias("plan_value_score")


def null_cause(feature: str, valid: pl.LazyFrame, ctx: FeatureContext) -> str | None:
    """Why ``plan_value_score`` is mostly null: plan values outside the plan hierarchy."""
    if feature != "plan_value_score":
        return None
    levels = list(ctx.plan_levels or PLAN_LEVELS)
    known = [v.strip().lower() for v in levels]
    plan = pl.col("plan_type")
    unknown = (
        valid.select(plan)
        .filter(plan.is_not_null() & ~_plan_key().is_in(known))
        .group_by("plan_type")
        .len()
        .sort(["len", "plan_type"], descending=[True, False])
        .head(5)
        .collect(engine="streaming")
    )
    if unknown.height == 0:
        return "plan_type is empty in those rows"
    values = ", ".join(repr(v) for v in unknown.get_column("plan_type"))
    return (
        f"plan_type values such as {values} are not in the plan levels "
        f"({' < '.join(levels)}); declare the order with plan_levels in the config, "
        "lowest first"
    )


def min_max(expr: pl.Expr, lo: float | None = None, hi: float | None = None) -> pl.Expr:
    """``(x - min) / (max - min)`` over the rows; 0.5 when max equals min; null stays null.

    ``lo`` and ``hi`` give min and max when they were computed beforehand (a streaming pass).
    """
    lo_e = expr.min() if lo is None else pl.lit(lo, dtype=pl.Float64)
    hi_e = expr.max() if hi is None else pl.lit(hi, dtype=pl.Float64)
    return (
        pl.when(hi_e == lo_e)
        .then(pl.when(expr.is_not_null()).then(0.5))
        .otherwise((expr - lo_e) / (hi_e - lo_e))
    )


ENGAGEMENT_PARTS = (
    "activity_recency_score",
    "feature_usage_rate",
    "daily_value_rate",
    "support_intensity",
)


def engagement_bounds(frame: pl.LazyFrame) -> dict[str, tuple[float | None, float | None]]:
    """Min and max of each engagement part over the rows, in one streaming pass."""
    return column_bounds(frame, ENGAGEMENT_PARTS)


def engagement_score(bounds: dict[str, tuple[float | None, float | None]]) -> pl.Expr:
    """``engagement_score`` = mean of the min-max-normalised ``activity_recency_score``,
    ``feature_usage_rate``, ``daily_value_rate`` and ``1 - normalised support_intensity``.

    A missing input (null) drops out of the mean; all missing gives null. In [0, 1].
    ``bounds`` holds each part's min and max (:func:`engagement_bounds`).
    """  # noqa: D205
    parts = []
    for c in ENGAGEMENT_PARTS:
        lo, hi = bounds[c]
        scaled = min_max(pl.col(c), lo, hi) if lo is not None else pl.lit(None, dtype=pl.Float64)
        parts.append(1 - scaled if c == "support_intensity" else scaled)
    return pl.mean_horizontal(parts).alias("engagement_score")


def _row_features(
    valid: pl.LazyFrame, ctx: FeatureContext, tenure: pl.Expr | None = None
) -> pl.LazyFrame:
    """The seven row-by-row features (and the two day counts the others build on).

    ``tenure`` computes ``account_tenure_days`` (default: from ``account_created_date``;
    the snapshot form gives it from ``tenure``, and falls back to the run date for ``ref``).
    """
    ref = ctx.reference_date or (ctx.run_date if tenure is not None else None)
    if ref is None:
        msg = "customer_churn needs a reference date"
        raise ValueError(msg)
    days = account_tenure_days(ref) if tenure is None else tenure
    return valid.with_columns(days_since_last_activity(ref), days).with_columns(
        daily_value_rate(),
        support_intensity(),
        feature_usage_rate(),
        activity_recency_score(),
        plan_value_score(ctx.plan_levels),
    )


def _whole_file_statistics(valid: pl.LazyFrame, rows: pl.LazyFrame) -> dict[str, Any]:
    """The value cuts of ``valid`` and the engagement bounds of its row features ``rows``."""
    _, cuts = value_cuts(valid)
    bounds = engagement_bounds(rows)
    return {
        "value_cuts": [None if c is None else [c[0], c[1]] for c in cuts],
        "engagement_bounds": {k: [lo, hi] for k, (lo, hi) in bounds.items()},
    }


def _with_whole_file(rows: pl.LazyFrame, stats: dict[str, Any]) -> pl.LazyFrame:
    """The row features ``rows`` with ``value_tier`` and ``engagement_score`` from ``stats``."""
    cuts = [None if c is None else (c[0], c[1]) for c in stats["value_cuts"]]
    bounds = {k: (lo, hi) for k, (lo, hi) in stats["engagement_bounds"].items()}
    return rows.with_columns(value_tier(cuts), engagement_score(bounds))


def feature_statistics(valid: pl.LazyFrame, ctx: FeatureContext) -> dict[str, Any]:
    """The whole-column values behind ``value_tier`` and ``engagement_score`` (JSON-able).

    ``value_cuts``: the (value, source_row) pairs from :func:`value_cuts`;
    ``engagement_bounds``: each engagement part's [min, max] from :func:`engagement_bounds`.
    """
    return _whole_file_statistics(valid, _row_features(valid, ctx))


def build_features(valid: pl.LazyFrame, ctx: FeatureContext) -> pl.LazyFrame:
    """Add the nine churn features to the valid rows (ordered by ``source_row``).

    The two whole-column features (``value_tier``, ``engagement_score``) take their order
    statistics and bounds from ``ctx.statistics`` (:func:`feature_statistics`, computed on
    this file's rows when not given), so the returned plan is row by row and streams.
    """
    stats = ctx.statistics or feature_statistics(valid, ctx)
    return _with_whole_file(_row_features(valid, ctx), stats)


def _future_date(ctx: RuleContext) -> pl.Expr:
    after_run = pl.col("last_activity_date") > pl.lit(ctx.run_date, dtype=pl.Date)
    if ctx.reference_date is None:
        return after_run
    return after_run | (pl.col("account_created_date") > pl.lit(ctx.reference_date, dtype=pl.Date))


#: Fields only the date form has (the snapshot form has ``tenure`` instead).
_DATE_FORM_ONLY = ("customer_id", "last_activity_date", "account_created_date", "total_value")


def _activity_before_created(ctx: RuleContext) -> pl.Expr:
    return pl.col("last_activity_date") < pl.col("account_created_date")


#: Features computed from whole-file statistics: left out of the churn model, whose
#: preprocessing must learn from the training part only; their row-level parts are inputs.
WHOLE_FILE_FEATURES = ("value_tier", "engagement_score")
#: The churn model's inputs: the row-level features and the raw numbers and plan behind them.
CHURN_INPUTS = (
    "days_since_last_activity",
    "account_tenure_days",
    "daily_value_rate",
    "support_intensity",
    "feature_usage_rate",
    "activity_recency_score",
    "plan_value_score",
    "total_value",
    "support_tickets",
    "feature_usage_count",
    "plan_type",
)

BLUEPRINT = Blueprint(
    name="customer_churn",
    description="Churn risk per customer: recency, tenure, value, support load and engagement.",
    fields=(
        Field("customer_id", "id", required=True, description="unique customer identifier"),
        Field(
            "last_activity_date",
            "date",
            required=True,
            description="last time the customer was active",
        ),
        Field("account_created_date", "date", required=True, description="account opening date"),
        Field("total_value", "float", required=True, ge=0, description="lifetime value, >= 0"),
        Field("support_tickets", "int", ge=0, description="support tickets opened, >= 0"),
        Field("feature_usage_count", "int", ge=0, description="feature uses, >= 0"),
        Field("plan_type", "category", description="basic, standard, premium or enterprise"),
        Field(
            "churned",
            "string",
            pattern=r"(?i)^(yes|no|true|false|1|0|y|n)$",
            description="optional label: yes/no, true/false, 1/0 or y/n (any case); enables the churn model",
        ),
    ),
    key=("customer_id",),
    identifier="customer_id",
    label="churned",
    model=ModelSpec("churn", label="churned", id="customer_id", inputs=CHURN_INPUTS),
    reference_column="last_activity_date",
    rules=(
        Rule(
            "future_date",
            ("last_activity_date", "account_created_date"),
            "last_activity_date after the run date, or account_created_date after the reference date",
            _future_date,
        ),
        Rule(
            "activity_before_created",
            ("last_activity_date", "account_created_date"),
            "last_activity_date before account_created_date",
            _activity_before_created,
        ),
    ),
    features=(
        Feature("days_since_last_activity", pl.Int64(), "days from last_activity_date to ref"),
        Feature("account_tenure_days", pl.Int64(), "days from account_created_date to ref"),
        Feature("daily_value_rate", pl.Float64(), "total_value / max(account_tenure_days, 1)"),
        Feature(
            "support_intensity", pl.Float64(), "support_tickets / max(account_tenure_days / 30, 1)"
        ),
        Feature(
            "feature_usage_rate", pl.Float64(), "feature_usage_count / max(account_tenure_days, 1)"
        ),
        Feature("activity_recency_score", pl.Float64(), "exp(-days_since_last_activity / 30)"),
        Feature(
            "value_tier",
            pl.Int8(),
            "ceil(4 * rank / n) of total_value over valid rows (ordinal rank, ties by source_row)",
        ),
        Feature(
            "plan_value_score",
            pl.Int8(),
            "plan_type basic=1, standard=2, premium=3, enterprise=4 (case-insensitive), else null",
        ),
        Feature(
            "engagement_score",
            pl.Float64(),
            "mean of min-max(activity_recency_score), min-max(feature_usage_rate), "
            "min-max(daily_value_rate), 1 - min-max(support_intensity); nulls drop out; "
            "max == min gives 0.5",
        ),
    ),
    build_features=build_features,
    feature_statistics=feature_statistics,
    spark=SparkPlan("rows"),
    report_hints={
        "question": "Which customers are likely to churn?",
        "chart": "engagement_score",
        "color": "value_tier",
    },
    null_cause=null_cause,
    sample="customers.csv",
    form_for=lambda columns: churn_form(columns),
)


# -- the snapshot form: tenure instead of dates ------------------------------------------------

#: Days in one unit of a snapshot's ``tenure``.
TENURE_DAYS = {"days": 1.0, "weeks": 7.0, "months": 365.25 / 12}


def tenure_days(unit: str) -> pl.Expr:
    """``account_tenure_days`` = ``round(tenure * days per unit)`` (a month is 365.25 / 12 days)."""
    days = (pl.col("tenure") * TENURE_DAYS[unit]).round(0).cast(pl.Int64)
    return days.alias("account_tenure_days")


def _snapshot_rows(valid: pl.LazyFrame, ctx: FeatureContext) -> pl.LazyFrame:
    """The row features of a snapshot: tenure given, recency only where a date is."""
    return _row_features(valid, ctx, tenure_days(ctx.tenure_unit))


def snapshot_statistics(valid: pl.LazyFrame, ctx: FeatureContext) -> dict[str, Any]:
    """:func:`feature_statistics` for the snapshot form."""
    return _whole_file_statistics(valid, _snapshot_rows(valid, ctx))


def build_snapshot_features(valid: pl.LazyFrame, ctx: FeatureContext) -> pl.LazyFrame:
    """The nine churn features of a snapshot export (tenure, no dates needed)."""
    stats = ctx.statistics or snapshot_statistics(valid, ctx)
    return _with_whole_file(_snapshot_rows(valid, ctx), stats)


def _activity_after_run(ctx: RuleContext) -> pl.Expr:
    return pl.col("last_activity_date") > pl.lit(ctx.run_date, dtype=pl.Date)


def _snapshot_features() -> tuple[Feature, ...]:
    formulas = {
        "days_since_last_activity": "days from last_activity_date to ref (null without the date)",
        "account_tenure_days": "round(tenure * days per unit: 1 day, 7 a week, 365.25 / 12 a month)",
        "activity_recency_score": "exp(-days_since_last_activity / 30) (null without the date)",
    }
    return tuple(
        Feature(f.name, f.dtype, formulas.get(f.name, f.formula)) for f in BLUEPRINT.features
    )


SNAPSHOT = dataclasses.replace(
    BLUEPRINT,
    description="Churn risk per customer from a snapshot: tenure instead of dates.",
    fields=(
        Field("customer_id", "id", required=True, description="unique customer identifier"),
        Field(
            "tenure",
            "float",
            required=True,
            ge=0,
            description="time as a customer, in tenure_unit (default months)",
        ),
        Field("total_value", "float", required=True, ge=0, description="lifetime value, >= 0"),
        Field("last_activity_date", "date", description="optional: enables the recency features"),
        *(f for f in BLUEPRINT.fields if f.name not in _DATE_FORM_ONLY),
    ),
    rules=(
        Rule(
            "future_date",
            ("last_activity_date",),
            "last_activity_date after the run date",
            _activity_after_run,
        ),
    ),
    features=_snapshot_features(),
    build_features=build_snapshot_features,
    feature_statistics=snapshot_statistics,
    sample=None,
    form_for=None,
)


def churn_form(columns: frozenset[str]) -> Blueprint:
    """The snapshot form when a source has ``tenure`` and no ``account_created_date``, else the date form.

    ``columns`` are the source's column names as the run will name them (after its renames),
    compared without case, spaces or underscores.
    """
    if "tenure" in columns and "accountcreateddate" not in columns:
        return SNAPSHOT
    return BLUEPRINT
