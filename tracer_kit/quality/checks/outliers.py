"""Outliers in numeric fields: beyond 1.5 IQR of the quartiles (medium above a share), and |z| > 3 (low)."""

from __future__ import annotations

from typing import Any

import polars as pl

from tracer_kit.blueprints.stats import linear_quantiles_of
from tracer_kit.engine import moments
from tracer_kit.quality.checks.base import Check, IssueContext, register_check
from tracer_kit.quality.names import Aggregates, Scratch
from tracer_kit.types import Issue, Severity

__all__ = ["Outliers", "outlier_bounds", "outlier_bounds_of"]


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
    return outlier_bounds_of(lf, [column])[column]


_NO_VALUES: dict[str, float | int | None] = {
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


def outlier_bounds_of(frame: Any, columns: list[str]) -> dict[str, dict[str, float | int | None]]:
    """:func:`outlier_bounds` of several numeric columns of a frame, their passes shared.

    One pass for the moments, one search for every column's quartiles (one sort on
    Spark), one pass for the counts beyond the bounds.
    """
    lf = frame.select(pl.col(c).cast(pl.Float64) for c in columns)
    stats = moments(lf, columns)
    present = {c: n for c, (n, _, _) in stats.items() if n}
    quartiles = linear_quantiles_of(lf, present, (0.25, 0.75))
    # a column with values always has both quartiles; one without keeps the empty bounds
    bounded = {
        c: (q1, q3) for c, (q1, q3) in quartiles.items() if q1 is not None and q3 is not None
    }
    agg = Aggregates()
    out: dict[str, dict[str, float | int | None]] = {c: dict(_NO_VALUES) for c in columns}
    for c, (q1, q3) in bounded.items():
        n, mean, std = stats[c]
        lower, upper = q1 - 1.5 * (q3 - q1), q3 + 1.5 * (q3 - q1)
        col = pl.col(c)
        agg.add(c, "iqr", ((col < lower) | (col > upper)).sum(), "sum")
        agg.add(c, "z", ((col - mean).abs() > 3 * std).sum() if std else pl.lit(0), "sum")
        out[c].update(q1=q1, q3=q3, lower=lower, upper=upper, n=int(n), mean=float(mean))
        out[c]["std"] = float(std) if std is not None else None
    found = agg.collect(lf) if bounded else {}
    for c in bounded:
        out[c].update(iqr_count=int(found[c]["iqr"]), z_count=int(found[c]["z"]))
    return out


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
        numeric = [f.name for f in ctx.blueprint.fields if f.is_numeric]
        bounds = outlier_bounds_of(ctx.checked, numeric) if numeric else {}
        for name, b in bounds.items():
            if b["iqr_count"]:
                out.append(_iqr_issue(name, b, ctx))
            if b["z_count"]:
                out.append(_z_issue(name, b, ctx))
        return out
