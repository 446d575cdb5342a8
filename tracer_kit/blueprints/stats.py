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

import math
from collections.abc import Sequence
from typing import Any

import polars as pl

from tracer_kit.aggregates import Aggregates
from tracer_kit.engine import order_statistics as _order_statistics

__all__ = [
    "column_bounds",
    "linear_quantiles",
    "linear_quantiles_of",
    "order_statistics",
    "quantile_cuts",
]


def _non_null(frame: Any, column: str) -> int:
    """The number of non-null values of ``column`` (one aggregate pass, either engine)."""
    agg = Aggregates()
    agg.add("n", "n", pl.col(column).count(), "sum")
    return int(agg.collect(frame)["n"]["n"])


def order_statistics(
    frame: pl.LazyFrame, column: str, ranks: Sequence[int], *, tiebreak: str = "source_row"
) -> list[tuple[Any, Any]]:
    """The (value, tiebreak) pairs at the 1-based ``ranks`` of ``column`` sorted with ties broken by ``tiebreak``.

    Exact without sorting every row; nulls are left out; ranks outside 1..n are skipped.
    """
    return _order_statistics(frame, {column: list(ranks)}, tiebreak)[column]


def quantile_cuts(
    frame: pl.LazyFrame, column: str, parts: int, *, tiebreak: str = "source_row"
) -> tuple[int, list[tuple[Any, Any] | None]]:
    """``n`` (non-null values) and the (value, tiebreak) pairs at ranks ``floor(j n / parts)``, j = 1..parts-1.

    A row is in part ``1 + #{j : (value, tiebreak) after cut j}``; a rank of 0 (fewer values
    than parts) is None, which every row is after.
    """
    n = _non_null(frame, column)
    ranks = [(j * n) // parts for j in range(1, parts)]
    wanted = [k for k in ranks if k >= 1]
    found = _order_statistics(frame, {column: wanted}, tiebreak, counts={column: n})[column]
    at = dict(zip(wanted, found, strict=True))
    return n, [at.get(k) for k in ranks]


def column_bounds(
    frame: pl.LazyFrame, columns: Sequence[str]
) -> dict[str, tuple[Any | None, Any | None]]:
    """Minimum and maximum of each column over the rows (nulls ignored), in one streaming pass."""
    agg = Aggregates()
    for c in columns:
        agg.add(c, "min", pl.col(c).min(), "min")
        agg.add(c, "max", pl.col(c).max(), "max")
    found = agg.collect(frame)
    return {c: (found[c]["min"], found[c]["max"]) for c in columns}


def linear_quantiles(
    frame: Any, column: str, probs: Sequence[float], *, n: int | None = None
) -> list[float | None]:
    """Exact ``linear`` quantiles (numpy's default, polars' ``median``) of a column's non-null values.

    Interpolates the two order statistics around position ``(n - 1) p``; ``n`` is the
    non-null count when known. None for each when the column has no values.
    """
    n = _non_null(frame, column) if n is None else n
    return linear_quantiles_of(frame, {column: n}, probs)[column]


def _quantile_ranks(n: int, probs: Sequence[float]) -> list[int]:
    positions = [(n - 1) * p for p in probs]
    return sorted(
        {math.floor(h) + 1 for h in positions} | {min(math.floor(h) + 2, n) for h in positions}
    )


def _interpolate(found: dict[int, Any], n: int, probs: Sequence[float]) -> list[float | None]:
    out: list[float | None] = []
    for h in ((n - 1) * p for p in probs):
        lo = float(found[math.floor(h) + 1])
        hi = float(found[min(math.floor(h) + 2, n)])
        out.append(lo + (h - math.floor(h)) * (hi - lo))
    return out


def linear_quantiles_of(
    frame: Any, counts: dict[str, int], probs: Sequence[float]
) -> dict[str, list[float | None]]:
    """:func:`linear_quantiles` of several columns (``counts``: each one's non-null values), in
    one search (on Spark one sort; the columns must then share a type).
    """  # noqa: D205
    wanted = {c: _quantile_ranks(n, probs) for c, n in counts.items() if n}
    found = _order_statistics(frame, wanted, None, counts=counts) if wanted else {}
    out: dict[str, list[float | None]] = {}
    for c, n in counts.items():
        if not n:
            out[c] = [None for _ in probs]
            continue
        at = {k: v for k, (v, _) in zip(wanted[c], found[c], strict=True)}
        out[c] = _interpolate(at, n, probs)
    return out
