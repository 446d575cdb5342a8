"""price_optimization: per product and date, revenue, price moves, elasticity, demand trend, price indexes.

Within each product, rows are ordered by date, then ``source_row`` (two rows of one
product on one date keep their file order).
"""

from __future__ import annotations

from typing import Any

import polars as pl

from tracer_kit.blueprints._base import (
    Blueprint,
    Feature,
    FeatureContext,
    Field,
    ModelSpec,
    SparkPlan,
)
from tracer_kit.blueprints.stats import linear_quantiles

__all__ = [
    "BLUEPRINT",
    "DEMAND_WINDOW",
    "build_features",
    "demand_features",
    "feature_statistics",
    "price_change",
    "price_elasticity",
    "price_indexes",
    "revenue",
]

DEMAND_WINDOW = 7


def _prev(name: str) -> pl.Expr:
    return pl.col(name).shift(1).over("product_id")


def revenue() -> pl.Expr:
    """``revenue`` = ``price * quantity_sold``."""
    return (pl.col("price") * pl.col("quantity_sold")).alias("revenue")


def price_change() -> list[pl.Expr]:
    """``price_change`` = price - the product's previous price; ``price_change_pct`` = that / previous price."""
    change = pl.col("price") - _prev("price")
    return [change.alias("price_change"), (change / _prev("price")).alias("price_change_pct")]


def price_elasticity() -> pl.Expr:
    """``price_elasticity`` = ``(ln q_t - ln q_(t-1)) / (ln p_t - ln p_(t-1))`` against the product's previous row.

    Null (never infinite) when the price did not change or either quantity is 0.
    """
    q, q0, p, p0 = pl.col("quantity_sold"), _prev("quantity_sold"), pl.col("price"), _prev("price")
    ok = (p != p0) & (q > 0) & (q0 > 0)
    return pl.when(ok).then((q.log() - q0.log()) / (p.log() - p0.log())).alias("price_elasticity")


def demand_features(window: int = DEMAND_WINDOW) -> list[pl.Expr]:
    """``demand_ma_7`` = mean quantity over the product's last 7 rows; ``demand_slope_7`` = least-squares
    slope of quantity against row order over those rows (null with fewer than 2).

    slope = (n Σxy - Σx Σy) / (n Σx² - (Σx)²) with x the row's position within the product.
    """  # noqa: D205
    x = pl.int_range(pl.len()).over("product_id").cast(pl.Float64)
    y = pl.col("quantity_sold")

    def rsum(e: pl.Expr) -> pl.Expr:
        return e.rolling_sum(window_size=window, min_samples=1).over("product_id")

    n = (x + 1).clip(upper_bound=window)
    sx, sy, sxy, sxx = rsum(x), rsum(y), rsum(x * y), rsum(x * x)
    denominator = n * sxx - sx * sx
    slope = pl.when(n >= 2).then((n * sxy - sx * sy) / denominator)
    return [
        y.rolling_mean(window_size=window, min_samples=1)
        .over("product_id")
        .alias(f"demand_ma_{window}"),
        slope.alias(f"demand_slope_{window}"),
    ]


def price_indexes(median: float | None) -> list[pl.Expr]:
    """``price_index_product`` = price / the product's median price; ``price_index_catalogue`` = price / ``median``.

    ``median`` is the median price of all valid rows (:func:`feature_statistics`).
    """
    p = pl.col("price")
    catalogue = pl.lit(median, dtype=pl.Float64)
    return [
        (p / p.median().over("product_id")).alias("price_index_product"),
        (p / catalogue).alias("price_index_catalogue"),
    ]


def feature_statistics(valid: pl.LazyFrame, ctx: FeatureContext) -> dict[str, Any]:
    """``price_median``: the median price of all valid rows (exact, for ``price_index_catalogue``)."""
    (median,) = linear_quantiles(valid, "price", [0.5])
    return {"price_median": median}


def build_features(valid: pl.LazyFrame, ctx: FeatureContext) -> pl.LazyFrame:
    """Order by product, date, source_row, then add every price feature.

    Every feature but the catalogue index looks only at the product's own rows, so the
    Spark engine runs this per product (``SparkPlan("groups", by=("product_id",))``).
    """
    stats = ctx.statistics or feature_statistics(valid, ctx)
    return valid.sort("product_id", "date", "source_row").with_columns(
        revenue(),
        *price_change(),
        price_elasticity(),
        *demand_features(),
        *price_indexes(stats["price_median"]),
    )


BLUEPRINT = Blueprint(
    name="price_optimization",
    description="Price and demand per product over time: revenue, price moves, elasticity, demand trend.",
    fields=(
        Field("product_id", "id", required=True, description="product identifier"),
        Field("price", "float", required=True, gt=0, description="unit price, > 0"),
        Field("quantity_sold", "float", required=True, ge=0, description="units sold, >= 0"),
        Field("date", "date", required=True, description="sales date"),
        Field(
            "cost",
            "float",
            ge=0,
            description="optional unit cost, >= 0: the best price then maximises profit, not revenue",
        ),
    ),
    key=("product_id", "date"),
    features=(
        Feature("revenue", pl.Float64(), "price * quantity_sold"),
        Feature("price_change", pl.Float64(), "price - the product's previous price"),
        Feature("price_change_pct", pl.Float64(), "price_change / the product's previous price"),
        Feature(
            "price_elasticity",
            pl.Float64(),
            "(ln q_t - ln q_(t-1)) / (ln p_t - ln p_(t-1)) vs the product's previous row; null if the price did not change or a quantity is 0",
        ),
        Feature("demand_ma_7", pl.Float64(), "mean quantity_sold over the product's last 7 rows"),
        Feature(
            "demand_slope_7",
            pl.Float64(),
            "least-squares slope of quantity_sold vs row order over the product's last 7 rows (null with < 2)",
        ),
        Feature("price_index_product", pl.Float64(), "price / the product's median price"),
        Feature("price_index_catalogue", pl.Float64(), "price / the median price of all rows"),
    ),
    build_features=build_features,
    feature_statistics=feature_statistics,
    spark=SparkPlan("groups", by=("product_id",)),
    model=ModelSpec("elasticity", id="product_id"),
    report_hints={
        "question": "Which price sells best?",
        "chart": "price_index_product",
        "color": None,
    },
    sample="prices.csv",
)
