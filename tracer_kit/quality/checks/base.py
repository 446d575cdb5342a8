"""What a check is: the :class:`Check` hooks, their contexts and the registry (see the package)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import polars as pl

from tracer_kit.blueprints import Blueprint, Field, RuleContext
from tracer_kit.cells import shorten
from tracer_kit.config import Thresholds, register_threshold
from tracer_kit.engine import first_rows_where
from tracer_kit.quality.names import Combine
from tracer_kit.types import Issue

__all__ = [
    "CHECKS",
    "Aggregate",
    "Check",
    "Examples",
    "IssueContext",
    "RowContext",
    "failures_of",
    "reasons_of",
    "register_check",
    "run_checks",
]


#: An aggregate a check computes: its expression and how partial values combine.
Aggregate = tuple[pl.Expr, Combine]


@dataclass(frozen=True)
class RowContext:
    """What a check may know while the rows are typed and flagged."""

    blueprint: Blueprint
    typed: pl.LazyFrame  # typed fields, cast flags, extras (a plan)
    work: Path  # where pre-passes may write files
    clean: frozenset[str]  # fields whose text was already canonical
    original: dict[str, str]  # field -> the file's own column name
    rules: RuleContext
    #: Per field with ``references``: the values it may take (text), from the referenced run.
    references: Mapping[str, pl.Series] = field(default_factory=dict)


class Examples:
    """Up to five example rows for an issue: position and the value as written in the file.

    Values of personal fields (``pii``) are never shown: their examples carry positions only.
    A call returns the issue's list at once and :meth:`fill` fills every list asked for,
    in two passes whatever the number of issues (the first rows of every mask together,
    then their text from bronze): on Spark each pass is a job over all rows.
    """

    def __init__(
        self,
        checked: pl.LazyFrame,
        bronze: pl.LazyFrame,
        original: dict[str, str],
        personal: frozenset[str] = frozenset(),
    ) -> None:
        self.checked = checked
        self.bronze = bronze
        self.original = original
        self.personal = personal
        self._asked: list[tuple[pl.Expr, str | None, int, list[dict[str, Any]]]] = []

    def __call__(self, mask: pl.Expr, column: str | None, n: int = 5) -> list[dict[str, Any]]:
        """The first ``n`` rows where ``mask`` holds, with ``column``'s text (after :meth:`fill`)."""
        out: list[dict[str, Any]] = []
        self._asked.append((mask, column, n, out))
        return out

    def _text_column(self, column: str | None) -> str | None:
        """The bronze column holding ``column``'s text (None: no value is shown for it)."""
        if column is None or column in self.personal:
            return None
        return self.original.get(column, column)

    def fill(self) -> None:
        """Fill every list handed out so far: positions, then the text as written."""
        asked, self._asked = self._asked, []
        if not asked:
            return
        picked = first_rows_where(self.checked, [(m, n) for m, _, n, _ in asked])
        texts = [self._text_column(column) for _, column, _, _ in asked]
        in_file = set(self.bronze.collect_schema().names())  # (an optional field may be absent)
        names = sorted({name for name in texts if name in in_file})
        raw: dict[int, dict[str, Any]] = {}
        if names and picked.height:
            rows = picked.get_column("source_row").unique()
            found = self.bronze.filter(pl.col("source_row").is_in(rows.implode()))
            raw = {
                r["source_row"]: r for r in found.select("source_row", *names).collect().to_dicts()
            }
        for k, ((_, _, _, out), name) in enumerate(zip(asked, texts, strict=True)):
            for row, line in (
                picked.filter(pl.col("mask") == k).select("source_row", "source_line").iter_rows()
            ):
                item = {"source_row": row, "source_line": line}
                if name is not None:
                    item["value"] = shorten(raw.get(row, {}).get(name))  # (bounded when stored)
                out.append(item)


@dataclass
class IssueContext:
    """What a check may know when it turns its aggregates into issues."""

    blueprint: Blueprint
    thresholds: Thresholds
    checked: pl.LazyFrame  # every parsed row, typed and flagged
    rows: int  # parsed rows
    rows_in: int  # parsed + rejected at ingest
    rows_valid: int
    rejects: pl.DataFrame
    examples: Examples
    run_date: dt.date = field(default_factory=lambda: dt.datetime.now(dt.UTC).date())
    reference_date: dt.date | None = None


class Check:
    """A row or column check; see the module docstring for the hooks."""

    name: ClassVar[str] = ""
    #: The score part this check measures (a key of ``SCORE_WEIGHTS``), if any.
    part: ClassVar[str | None] = None
    #: Whether the check has anything to say when no row was parsed.
    needs_rows: ClassVar[bool] = True
    #: ``(name, default)`` of the threshold the check reads (``ctx.thresholds.value(name)``),
    #: settable like the built-in ones in configs and contracts; None when it reads none.
    threshold: ClassVar[tuple[str, float] | None] = None

    def field_reasons(self, f: Field) -> list[pl.Expr]:
        """Per-row reasons for one field (null on good rows)."""
        return []

    def prepare(self, rows: RowContext) -> list[pl.Expr]:
        """Scratch columns written with the rows."""
        return []

    def reasons(self, rows: RowContext) -> list[pl.Expr]:
        """Per-row reasons over the prepared columns."""
        return []

    def reason_columns(self, rows: RowContext) -> list[str | None]:
        """The column each of :meth:`reasons` is about (``None``: the row as a whole)."""
        return [None] * len(self.reasons(rows))

    def aggregates(self, rows: RowContext) -> dict[str, Aggregate]:
        """Aggregates over the checked rows, by name: each an expression and how its
        per-batch values combine (``"sum"``, ``"min"``, ``"max"``, ``"mean"``), so the
        Spark engine can run them partition by partition (for ``"mean"`` the expression
        is per row and its mean is taken).
        """  # noqa: D205
        return {}

    def issues(self, found: dict[str, Any], ctx: IssueContext) -> list[Issue]:
        """Issues from this check's aggregates."""
        return []

    def measure(self, found: dict[str, Any], ctx: IssueContext) -> float:
        """The score part the check measures, 0 to 1."""
        raise NotImplementedError(self.name)


#: The registered checks, in order.
CHECKS: list[type[Check]] = []


def register_check(check: type[Check]) -> type[Check]:
    """Add a check class to the registry (usable as a decorator); a name is registered once."""
    if not check.name:
        msg = f"{check.__qualname__} has no name"
        raise ValueError(msg)
    if check.threshold is not None:
        register_threshold(*check.threshold)
    CHECKS[:] = [c for c in CHECKS if c.name != check.name]
    CHECKS.append(check)
    return check


def run_checks() -> list[Check]:
    """One fresh instance of every registered check (a run's checks may keep state)."""
    return [c() for c in CHECKS]


def reasons_of(checks: list[Check], rows: RowContext) -> list[pl.Expr]:
    """Every per-row reason, field by field first, then the row-level ones, in registry order."""
    out = [e for f in rows.blueprint.fields for c in checks for e in c.field_reasons(f)]
    return out + [e for c in checks for e in c.reasons(rows)]


def failures_of(checks: list[Check], rows: RowContext) -> pl.Expr:
    """Per row, the list of ``{reason, column}`` it failed (the reasons of :func:`reasons_of`
    with the column each is about), in the same order, each pair once.
    """  # noqa: D205
    pairs = [(e, f.name) for f in rows.blueprint.fields for c in checks for e in c.field_reasons(f)]
    for c in checks:
        pairs.extend(zip(c.reasons(rows), c.reason_columns(rows), strict=True))
    structs = [
        pl.when(e.is_not_null()).then(
            pl.struct(e.alias("reason"), pl.lit(column, dtype=pl.String).alias("column"))
        )
        for e, column in pairs
    ]
    return pl.concat_list(structs).list.drop_nulls().list.unique(maintain_order=True)
