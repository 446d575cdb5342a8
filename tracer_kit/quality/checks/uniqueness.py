"""Uniqueness: an identifier seen again on a later row is a duplicate (the first one is kept)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from tracer_kit.engine import repeated_values
from tracer_kit.quality.checks.base import (
    Aggregate,
    Check,
    IssueContext,
    RowContext,
    register_check,
)
from tracer_kit.quality.names import Scratch
from tracer_kit.types import Issue, Severity

__all__ = ["Uniqueness", "identifier_uniqueness"]


def identifier_uniqueness(non_null: int, repeats: int) -> float:
    """Distinct non-null identifiers / non-null identifiers (1 when none).

    A repeat is a non-null value that is not its first occurrence, so distinct = non-null - repeats.
    """
    return (non_null - repeats) / non_null if non_null else 1.0


def _repeated_identifiers(rows: RowContext, identifier: str) -> pl.DataFrame:
    """Identifier values seen more than once and the ``source_row`` of their first occurrence.

    On polars the search is an out-of-core DuckDB group-by over Parquet, and a clean
    identifier column (its text is its value) is grouped straight from the bronze Parquet;
    on Spark it is Spark's group-by (:func:`tracer_kit.engine.repeated_values`).
    """
    work: Path = rows.work
    stored = None
    if identifier in rows.clean:  # its text is its value: bronze holds the same values
        stored = (work / "bronze.parquet", rows.original.get(identifier, identifier))
    return repeated_values(rows.typed, identifier, work, stored=stored)


@register_check
class Uniqueness(Check):
    """Repeated identifiers quarantine the later rows; high under the uniqueness threshold."""

    name = "uniqueness"
    part = "uniqueness"

    def prepare(self, rows: RowContext) -> list[pl.Expr]:
        """``Scratch.DUPLICATE``: a value seen more than once, on a row other than its first."""
        identifier = rows.blueprint.identifier
        if not identifier:
            return []
        repeats = _repeated_identifiers(rows, identifier)
        repeated = pl.col(identifier).is_in(repeats.get_column("value").implode())
        first = pl.col("source_row").is_in(repeats.get_column("first_row").implode())
        return [(repeated & ~first).fill_null(False).alias(Scratch.DUPLICATE.of())]

    def reasons(self, rows: RowContext) -> list[pl.Expr]:
        """``duplicate_id`` on the repeats."""
        if not rows.blueprint.identifier:
            return []
        return [pl.when(Scratch.DUPLICATE.col()).then(pl.lit("duplicate_id"))]

    def reason_columns(self, rows: RowContext) -> list[str | None]:
        """The identifier."""
        return [rows.blueprint.identifier] if rows.blueprint.identifier else []

    def aggregates(self, rows: RowContext) -> dict[str, Aggregate]:
        """Non-null identifiers and repeats."""
        identifier = rows.blueprint.identifier
        if not identifier:
            return {}
        return {
            "identifiers": (pl.col(identifier).is_not_null().sum(), "sum"),
            "repeats": (Scratch.DUPLICATE.col().sum(), "sum"),
        }

    def measure(self, found: dict[str, Any], ctx: IssueContext) -> float:
        """Distinct / non-null identifiers."""
        return identifier_uniqueness(
            int(found.get("identifiers") or 0), int(found.get("repeats") or 0)
        )

    def issues(self, found: dict[str, Any], ctx: IssueContext) -> list[Issue]:
        """One high issue when uniqueness is under its threshold."""
        identifier = ctx.blueprint.identifier
        uniq = self.measure(found, ctx)
        if not identifier or uniq >= ctx.thresholds.uniqueness:
            return []
        repeats = int(found["repeats"])
        repeated = ctx.checked.filter(Scratch.DUPLICATE.col()).select(identifier).unique()
        dup = pl.col(identifier).is_in(repeated.collect().get_column(identifier).implode())
        return [
            Issue(
                Severity.HIGH,
                identifier,
                self.name,
                round(uniq, 6),
                ctx.thresholds.uniqueness,
                repeats,
                ctx.examples(dup, identifier),
                f"{repeats} repeated {identifier} value(s); the first occurrence is kept",
            )
        ]
