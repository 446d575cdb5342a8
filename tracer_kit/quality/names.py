"""Names of what the quality stage computes along the way: scratch columns and aggregates.

Every intermediate column a check or a cast adds to the rows is named by :class:`Scratch`
(``Scratch.PRESENT.of("email")``), and every aggregate that many owners compute in one pass
goes through :class:`Aggregates`, which hands each owner back its own values under its own
names. No module spells an intermediate name itself. User columns never start with ``_``
(ingest renames them), so the names below never meet a user's column.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

import polars as pl

__all__ = ["Aggregates", "Scratch"]


class Scratch(StrEnum):
    """The kinds of scratch columns; ``of(subject)`` gives one column's name."""

    PRESENT = "present"  # the field has a value (not null, not a null token)
    CAST = "cast"  # why the field's text did not cast (null when it did)
    FORMAT = "format"  # which date format read the value
    RULE = "rule"  # the row breaks rule number ``subject``
    DUPLICATE = "duplicate"  # the row repeats an identifier seen on an earlier row
    BAD = "bad"  # the row is quarantined
    ORDER = "order"  # a row's position, for order statistics
    KEY = "key"  # a grouping key (folded text)
    VALUE = "value"  # a single unnamed value column

    def of(self, subject: object = None) -> str:
        """The column name for ``subject`` (a field name or a rule number), or the bare kind."""
        return f"__{self.value}" if subject is None else f"__{self.value}_{subject}"

    def col(self, subject: object = None) -> pl.Expr:
        """``pl.col`` of :meth:`of`."""
        return pl.col(self.of(subject))


class Aggregates:
    """Aggregate expressions from many owners, run as one ``select``, read back per owner.

    >>> agg = Aggregates()
    >>> agg.add("price", "n", pl.len())
    >>> agg.collect(pl.LazyFrame({"price": [1, 2]}))["price"]["n"]
    2
    """

    def __init__(self) -> None:
        self._exprs: dict[tuple[str, str], pl.Expr] = {}

    def add(self, owner: str, name: str, expr: pl.Expr) -> None:
        """Compute ``expr`` for ``owner`` under ``name``."""
        self._exprs[(owner, name)] = expr

    def add_all(self, owner: str, exprs: Mapping[str, pl.Expr]) -> None:
        """:meth:`add` each of ``exprs``."""
        for name, expr in exprs.items():
            self.add(owner, name, expr)

    def __bool__(self) -> bool:
        return bool(self._exprs)

    def plan(self, frame: pl.LazyFrame | pl.DataFrame) -> pl.LazyFrame:
        """The one-row query of every expression (to run together with other queries)."""
        return frame.lazy().select(e.alias(f"a{i}") for i, e in enumerate(self._exprs.values()))

    def read(self, row: pl.DataFrame) -> dict[str, dict[str, Any]]:
        """``{owner: {name: value}}`` from the result of :meth:`plan`."""
        out: dict[str, dict[str, Any]] = {}
        for (owner, name), value in zip(self._exprs, row.row(0), strict=True):
            out.setdefault(owner, {})[name] = value
        return out

    def collect(self, frame: pl.LazyFrame | pl.DataFrame) -> dict[str, dict[str, Any]]:
        """Run every expression in one streaming pass; ``{owner: {name: value}}``."""
        if not self._exprs:
            return {}
        return self.read(self.plan(frame).collect(engine="streaming"))
