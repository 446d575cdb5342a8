"""Whole-column statistics a feature may need, exact and out of core (for blueprint authors).

A feature that depends on the whole column (a quartile, a min-max scale) is computed in two
steps: a statistic over the valid rows first (these functions, each a streaming pass or an
exact order statistic found without sorting the column), then a row expression that uses it.

>>> import polars as pl
>>> rows = pl.LazyFrame({"v": [5.0, 1.0, 3.0, None], "source_row": [1, 2, 3, 4]})
>>> column_bounds(rows, ["v"])
{'v': (1.0, 5.0)}
>>> quantile_cuts(rows, "v", 2)
(3, [(1.0, 2)])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl

from tracer_kit._scratch import order_statistics as _order_statistics

__all__ = ["column_bounds", "order_statistics", "quantile_cuts"]


def order_statistics(
    frame: pl.LazyFrame, column: str, ranks: Sequence[int], *, tiebreak: str = "source_row"
) -> list[tuple[Any, Any]]:
    """The (value, tiebreak) pairs at the 1-based ``ranks`` of ``column`` sorted with ties broken by ``tiebreak``.

    Exact without sorting every row; nulls are left out; ranks outside 1..n are skipped.
    """
    return _order_statistics(frame, column, tiebreak, list(ranks))


def quantile_cuts(
    frame: pl.LazyFrame, column: str, parts: int, *, tiebreak: str = "source_row"
) -> tuple[int, list[tuple[Any, Any] | None]]:
    """``n`` (non-null values) and the (value, tiebreak) pairs at ranks ``floor(j n / parts)``, j = 1..parts-1.

    A row is in part ``1 + #{j : (value, tiebreak) after cut j}``; a rank of 0 (fewer values
    than parts) is None, which every row is after.
    """
    n = frame.select(pl.col(column).count()).collect(engine="streaming").item()
    ranks = [(j * n) // parts for j in range(1, parts)]
    wanted = [k for k in ranks if k >= 1]
    at = dict(zip(wanted, _order_statistics(frame, column, tiebreak, wanted, n=n), strict=True))
    return n, [at.get(k) for k in ranks]


def column_bounds(
    frame: pl.LazyFrame, columns: Sequence[str]
) -> dict[str, tuple[Any | None, Any | None]]:
    """Minimum and maximum of each column over the rows (nulls ignored), in one streaming pass."""
    exprs = [pl.col(c).min().alias(f"min {i}") for i, c in enumerate(columns)]
    exprs += [pl.col(c).max().alias(f"max {i}") for i, c in enumerate(columns)]
    row = frame.select(exprs).collect(engine="streaming").row(0, named=True)
    return {c: (row[f"min {i}"], row[f"max {i}"]) for i, c in enumerate(columns)}
