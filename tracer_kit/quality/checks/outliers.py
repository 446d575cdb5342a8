"""Outliers in numeric fields: beyond 1.5 IQR of the quartiles (medium above a share), and |z| > 3 (low)."""

from __future__ import annotations

from typing import Any

import polars as pl

from tracer_kit.blueprints.stats import linear_quantiles
from tracer_kit.engine import moments
from tracer_kit.quality.checks import Check, IssueContext, register_check
from tracer_kit.quality.names import Aggregates, Scratch
from tracer_kit.types import Issue, Severity

__all__ = ["Outliers", "outlier_bounds"]


def outlier_bounds(
    values: pl.Series | pl.LazyFrame, column: str | None = None
) -> dict[str, float | int | None]:
    """IQR bounds (Q1 - 1.5 IQR, Q3 + 1.5 IQR) and z-score (|z| > 3) counts for one numeric column.

    ``values`` is a Series, or a LazyFrame and the ``column`` to read from it: quartiles are
    exact order statistics found without sorting the column, counts and moments are
    streaming aggregates, so a column bigger than memory is fine.
    """
    if isinstance(values, pl.Series):
        lf, column = values.to_frame(Scratch.VALUE.of()).lazy(), Scratch.VALUE.of()
    else:
        lf, column = values, column or ""
    x = pl.col(column).cast(pl.Float64)
    lf = lf.select(x.alias(column)).drop_nulls(column)
    n, mean, std = moments(lf, column)
    if n == 0:
        return {
            "q1": None,
            "q3": None,
            "lower": None,
            "upper": None,
            "iqr_count": 0,
            "mean": None,
            "std": None,
            "z_count": 0,
            "n": 0,
        }
    q1, q3 = linear_quantiles(lf, column, (0.25, 0.75), n=n)
    iqr = q3 - q1
    lower, upper = q1 - 1.5 * iqr, q3 + 1.5 * iqr
    col = pl.col(column)
    z = ((col - mean).abs() > 3 * std).sum() if std else pl.lit(0)
    agg = Aggregates()
    agg.add("iqr", "count", ((col < lower) | (col > upper)).sum(), "sum")
    agg.add("z", "count", z, "sum")
    found = agg.collect(lf)
    iqr_count, z_count = found["iqr"]["count"], found["z"]["count"]
    return {
        "q1": q1,
        "q3": q3,
        "lower": lower,
        "upper": upper,
        "iqr_count": int(iqr_count),
        "mean": float(mean),
        "std": float(std) if std is not None else None,
        "z_count": int(z_count),
        "n": int(n),
    }


def _iqr_issue(column: str, b: dict[str, Any], ctx: IssueContext) -> Issue:
    share = b["iqr_count"] / b["n"]
    limit = ctx.thresholds.outlier_share
    mask = (pl.col(column) < b["lower"]) | (pl.col(column) > b["upper"])
    return Issue(
        Severity.MEDIUM if share > limit else Severity.LOW,
        column,
        "outliers_iqr",
        round(share, 6),
        limit,
        int(b["iqr_count"]),
        ctx.examples(mask, column),
        f"{b['iqr_count']} value(s) outside [{b['lower']:.4g}, {b['upper']:.4g}] (1.5 x IQR)",
    )


def _z_issue(column: str, b: dict[str, Any], ctx: IssueContext) -> Issue:
    mask = (pl.col(column) - b["mean"]).abs() > 3 * b["std"]
    return Issue(
        Severity.LOW,
        column,
        "outliers_zscore",
        round(b["z_count"] / b["n"], 6),
        3.0,
        int(b["z_count"]),
        ctx.examples(mask, column),
        f"{b['z_count']} value(s) more than 3 standard deviations from the mean {b['mean']:.4g}",
    )


@register_check
class Outliers(Check):
    """Per numeric field, from exact quartiles and streaming moments (its own passes)."""

    name = "outliers"

    def issues(self, found: dict[str, Any], ctx: IssueContext) -> list[Issue]:
        """An IQR and a z-score issue per numeric field that has such values."""
        out = []
        for f in ctx.blueprint.fields:
            if not f.is_numeric:
                continue
            b = outlier_bounds(ctx.checked, f.name)
            if b["iqr_count"]:
                out.append(_iqr_issue(f.name, b, ctx))
            if b["z_count"]:
                out.append(_z_issue(f.name, b, ctx))
        return out
