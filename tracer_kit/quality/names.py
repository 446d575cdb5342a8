"""Names of what the quality stage computes along the way: scratch columns and aggregates.

Every intermediate column a check or a cast adds to the rows is named by :class:`Scratch`
(``Scratch.PRESENT.of("email")``), and every aggregate that many owners compute in one pass
goes through :class:`Aggregates`, which hands each owner back its own values under its own
names. No module spells an intermediate name itself. User columns never start with ``_``
(ingest renames them), so the names below never meet a user's column.
"""

from __future__ import annotations

from enum import StrEnum

import polars as pl

from tracer_kit.aggregates import Aggregates, Combine

__all__ = ["Aggregates", "Combine", "Scratch"]


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
