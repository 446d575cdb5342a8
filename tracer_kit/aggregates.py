"""Aggregates from many owners computed in one pass, and split into batches for Spark.

Every aggregate that several owners compute together (the quality checks, the casts, the
features' statistics, the final check) goes through :class:`Aggregates`, which hands each
owner back its own values under its own names. Each aggregate also says how its values
over parts of the rows add up to the value over all of them (:data:`Combine`), so the
Spark engine computes it per batch on the executors and combines the parts with Spark's
own aggregates: one definition, both engines.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import polars as pl

__all__ = ["Aggregates", "Combine"]

#: How one aggregate's partial values (one per batch of rows) add up to the whole's:
#: ``sum`` (sums, counts, ``pl.len()``), ``min``, ``max`` (also ``any`` of booleans) or
#: ``mean``: then the expression is per row and its mean is taken (kept as a sum and a
#: count of non-null values). None: not split (polars only).
Combine = Literal["sum", "min", "max", "mean"]


class Aggregates:
    """Aggregate expressions from many owners, run as one ``select``, read back per owner.

    >>> agg = Aggregates()
    >>> agg.add("price", "n", pl.len())
    >>> agg.collect(pl.LazyFrame({"price": [1, 2]}))["price"]["n"]
    2
    """

    def __init__(self) -> None:
        self._exprs: dict[tuple[str, str], pl.Expr] = {}
        self._combine: dict[tuple[str, str], Combine | None] = {}

    def add(self, owner: str, name: str, expr: pl.Expr, combine: Combine | None = None) -> None:
        """Compute ``expr`` for ``owner`` under ``name``; ``combine`` says how partial values add up."""
        self._exprs[(owner, name)] = expr
        self._combine[(owner, name)] = combine

    def add_all(self, owner: str, exprs: Mapping[str, pl.Expr | tuple[pl.Expr, Combine]]) -> None:
        """:meth:`add` each of ``exprs`` (an expression, or an expression and its combine)."""
        for name, expr in exprs.items():
            if isinstance(expr, tuple):
                self.add(owner, name, *expr)
            else:
                self.add(owner, name, expr)

    def partials(self) -> list[tuple[str, pl.Expr, Combine]]:
        """Per-batch aggregates and how each adds up across batches (see :meth:`combined`).

        Raises ``ValueError`` naming an aggregate added without a ``combine``.
        """
        out: list[tuple[str, pl.Expr, Combine]] = []
        for i, (key, expr) in enumerate(self._exprs.items()):
            combine = self._combine[key]
            if combine is None:
                msg = f"aggregate {key} has no combine rule, so it cannot be split into batches"
                raise ValueError(msg)
            if combine == "mean":
                out.append((f"a{i}s", expr.cast(pl.Float64).sum(), "sum"))
                out.append((f"a{i}n", expr.count(), "sum"))
            else:
                out.append((f"a{i}", expr, combine))
        return out

    def combined(self, totals: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
        """``{owner: {name: value}}`` from the combined :meth:`partials` (a mean = sum / count)."""
        out: dict[str, dict[str, Any]] = {}
        for i, key in enumerate(self._exprs):
            if self._combine[key] == "mean":
                n = totals[f"a{i}n"] or 0
                value = totals[f"a{i}s"] / n if n else None
            else:
                value = totals[f"a{i}"]
            out.setdefault(key[0], {})[key[1]] = value
        return out

    def __bool__(self) -> bool:
        return bool(self._exprs)

    def plan(self, frame: pl.LazyFrame | pl.DataFrame) -> pl.LazyFrame:
        """The one-row query of every expression (to run together with other queries)."""
        return frame.lazy().select(
            (e.mean() if self._combine[key] == "mean" else e).alias(f"a{i}")
            for i, (key, e) in enumerate(self._exprs.items())
        )

    def read(self, row: pl.DataFrame) -> dict[str, dict[str, Any]]:
        """``{owner: {name: value}}`` from the result of :meth:`plan`."""
        out: dict[str, dict[str, Any]] = {}
        for (owner, name), value in zip(self._exprs, row.row(0), strict=True):
            out.setdefault(owner, {})[name] = value
        return out

    def collect(self, frame: Any) -> dict[str, dict[str, Any]]:
        """Run every expression in one streaming pass; ``{owner: {name: value}}``.

        ``frame`` is a polars frame, or a frame of another engine with an ``aggregate``
        method (Spark: :class:`tracer_kit.spark.PartitionFrame`), which combines partials.
        """
        if not self._exprs:
            return {}
        if not isinstance(frame, (pl.LazyFrame, pl.DataFrame)):
            return frame.aggregate(self)
        return self.read(self.plan(frame).collect(engine="streaming"))
