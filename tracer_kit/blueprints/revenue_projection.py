"""revenue_projection: one row per calendar date with moving averages, growth, calendar parts, volatility.

Rows are first aggregated per date (revenue and customer_count summed); dates missing
between the first and the last are inserted with revenue 0 and ``is_filled = true``.
Windows count calendar days, so after filling they are row windows.
"""

from __future__ import annotations

import polars as pl

from tracer_kit.blueprints._base import (
    Blueprint,
    Feature,
    FeatureContext,
    Field,
    ModelSpec,
    SparkPlan,
)

__all__ = [
    "BLUEPRINT",
    "WINDOWS_GROWTH",
    "WINDOWS_MA",
    "WINDOWS_VOL",
    "aggregate_daily",
    "daily_totals",
    "build_features",
    "calendar_parts",
    "revenue_growth",
    "revenue_ma",
    "revenue_per_customer",
    "revenue_volatility",
]

WINDOWS_MA = (7, 30, 90)
WINDOWS_GROWTH = (1, 7, 30)
WINDOWS_VOL = (7, 30)


def daily_totals(rows: pl.LazyFrame) -> pl.LazyFrame:
    """One row per date: revenue summed, customer_count summed (null when no row had one),
    ``source_row`` the smallest. Applied to its own output it changes nothing, so the Spark
    engine reduces batches first and their partial rows again (``SparkPlan("reduce")``).
    """  # noqa: D205
    return rows.group_by("date").agg(
        pl.col("revenue").sum(),
        pl.when(pl.col("customer_count").count() > 0)
        .then(pl.col("customer_count").sum())
        .alias("customer_count"),
        pl.col("source_row").min(),
    )


def aggregate_daily(valid: pl.LazyFrame) -> pl.LazyFrame:
    """One row per date: revenue summed, customer_count summed (null when no row had one),
    ``source_row`` the group's smallest; missing dates filled with revenue 0 and ``is_filled``.
    """  # noqa: D205
    daily = daily_totals(valid)
    bounds = daily.select(pl.col("date").min().alias("lo"), pl.col("date").max().alias("hi"))
    calendar = bounds.select(pl.date_ranges("lo", "hi", "1d").alias("date")).explode("date")
    return (
        calendar.join(daily, on="date", how="left")
        .with_columns(
            pl.col("source_row").is_null().alias("is_filled"),
            pl.col("revenue").fill_null(0.0),
        )
        .sort("date")
    )


def revenue_ma(n: int) -> pl.Expr:
    """``revenue_ma_N`` = mean revenue over the last N calendar days including the day (fewer at the start)."""
    return pl.col("revenue").rolling_mean(window_size=n, min_samples=1).alias(f"revenue_ma_{n}")


def revenue_growth(n: int) -> pl.Expr:
    """``revenue_growth_Nd`` = ``revenue_t / revenue_(t-N) - 1``; null when the earlier value is 0 or absent."""
    earlier = pl.col("revenue").shift(n)
    return pl.when(earlier != 0).then(pl.col("revenue") / earlier - 1).alias(f"revenue_growth_{n}d")


def revenue_volatility(n: int) -> pl.Expr:
    """``revenue_volatility_N`` = sample standard deviation of revenue over the last N days (null with < 2)."""
    return (
        pl.col("revenue").rolling_std(window_size=n, min_samples=2).alias(f"revenue_volatility_{n}")
    )


def calendar_parts() -> list[pl.Expr]:
    """``day_of_week`` (1 = Monday), ISO ``week``, ``month``, ``quarter``, ``is_weekend``."""
    d = pl.col("date")
    return [
        d.dt.weekday().cast(pl.Int8).alias("day_of_week"),
        d.dt.week().cast(pl.Int8).alias("week"),
        d.dt.month().cast(pl.Int8).alias("month"),
        d.dt.quarter().cast(pl.Int8).alias("quarter"),
        (d.dt.weekday() >= 6).alias("is_weekend"),
    ]


def revenue_per_customer() -> pl.Expr:
    """``revenue_per_customer`` = ``revenue / customer_count``; null when the count is 0 or absent."""
    count = pl.col("customer_count")
    return pl.when(count > 0).then(pl.col("revenue") / count).alias("revenue_per_customer")


def build_features(valid: pl.LazyFrame, ctx: FeatureContext) -> pl.LazyFrame:
    """Aggregate per date, fill gaps, then add every revenue feature."""
    return aggregate_daily(valid).with_columns(
        *(revenue_ma(n) for n in WINDOWS_MA),
        *(revenue_growth(n) for n in WINDOWS_GROWTH),
        *calendar_parts(),
        *(revenue_volatility(n) for n in WINDOWS_VOL),
        revenue_per_customer(),
    )


BLUEPRINT = Blueprint(
    name="revenue_projection",
    description="Daily revenue series: gaps filled, moving averages, growth, calendar parts, volatility.",
    fields=(
        Field("date", "date", required=True, description="transaction or booking date"),
        Field("revenue", "float", required=True, description="revenue of the row"),
        Field("customer_count", "int", ge=0, description="customers behind the revenue, >= 0"),
    ),
    key=("date",),
    aggregates=True,
    spark=SparkPlan("reduce", by=("date",), reduce=daily_totals),
    features=(
        Feature(
            "is_filled",
            pl.Boolean(),
            "true for a date missing from the file, inserted with revenue 0",
        ),
        *(
            Feature(
                f"revenue_ma_{n}",
                pl.Float64(),
                f"mean revenue over the last {n} calendar days (incl. the day)",
            )
            for n in WINDOWS_MA
        ),
        *(
            Feature(
                f"revenue_growth_{n}d",
                pl.Float64(),
                f"revenue_t / revenue_(t-{n}) - 1; null if that is 0 or absent",
            )
            for n in WINDOWS_GROWTH
        ),
        Feature("day_of_week", pl.Int8(), "ISO weekday, 1 = Monday .. 7 = Sunday"),
        Feature("week", pl.Int8(), "ISO week number"),
        Feature("month", pl.Int8(), "month 1-12"),
        Feature("quarter", pl.Int8(), "quarter 1-4"),
        Feature("is_weekend", pl.Boolean(), "day_of_week >= 6"),
        *(
            Feature(
                f"revenue_volatility_{n}",
                pl.Float64(),
                f"sample std of revenue over the last {n} days (null with < 2)",
            )
            for n in WINDOWS_VOL
        ),
        Feature(
            "revenue_per_customer",
            pl.Float64(),
            "revenue / customer_count; null when the count is 0 or absent",
        ),
    ),
    build_features=build_features,
    report_hints={"question": "What revenue comes next?", "chart": "revenue_ma_7", "color": None},
    model=ModelSpec("forecast", date="date", value="revenue"),
    sample="revenue.csv",
)
