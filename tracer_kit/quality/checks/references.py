"""References: a field's values must exist in another dataset (``references: customers.customer_id``).

The values come from the referenced dataset's latest completed run (the pipeline reads them
from the warehouse and hands them over in :class:`RowContext`); each row whose value is not
among them is quarantined with ``not_in_reference``. Without them (``tk.validate`` has no
warehouse) the check is skipped, and says so in a low issue.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from tracer_kit.quality.checks.base import (
    Aggregate,
    Check,
    IssueContext,
    RowContext,
    register_check,
)
from tracer_kit.types import Issue, Severity

__all__ = ["References"]


def _fails(name: str, values: pl.Series) -> pl.Expr:
    text = pl.col(name).cast(pl.String)
    return text.is_not_null() & ~text.is_in(values.implode())


@register_check
class References(Check):
    """Per field with ``references``: rows whose value the referenced dataset lacks (high under
    the validity threshold).
    """  # noqa: D205

    name = "references"
    needs_rows = True

    def reasons(self, rows: RowContext) -> list[pl.Expr]:
        """``not_in_reference`` where a value is missing from the referenced run."""
        return [
            pl.when(_fails(name, values)).then(pl.lit("not_in_reference"))
            for name, values in rows.references.items()
        ]

    def reason_columns(self, rows: RowContext) -> list[str | None]:
        """The referencing fields."""
        return list(rows.references)

    def aggregates(self, rows: RowContext) -> dict[str, Aggregate]:
        """Rows failing per referencing field, and which fields went unchecked."""
        self.values = dict(rows.references)  # (for the issues' examples)
        out: dict[str, Aggregate] = {
            f"missing {name}": (_fails(name, values).sum(), "sum")
            for name, values in rows.references.items()
        }
        for f in rows.blueprint.fields:
            if f.references is not None and f.name not in rows.references:
                out[f"unchecked {f.name}"] = (pl.lit(1).max(), "max")
        return out

    def issues(self, found: dict[str, Any], ctx: IssueContext) -> list[Issue]:
        """An issue per field with values the referenced dataset lacks, or left unchecked."""
        out = []
        for f in ctx.blueprint.fields:
            if f.references is None:
                continue
            if f"unchecked {f.name}" in found:
                out.append(
                    Issue(Severity.LOW, f.name, self.name, None, None, 0, [],
                          f"{f.name}: not checked against {f.references} (no warehouse to read it from)")
                )  # fmt: skip
                continue
            bad = int(found.get(f"missing {f.name}") or 0)
            if not bad:
                continue
            share = 1 - bad / ctx.rows if ctx.rows else 0.0
            limit = ctx.thresholds.validity
            out.append(
                Issue(
                    Severity.HIGH if share < limit else Severity.LOW,
                    f.name,
                    self.name,
                    round(share, 6),
                    limit,
                    bad,
                    ctx.examples(_fails(f.name, self.values[f.name]), f.name),
                    f"{f.name}: {bad} row(s) with a value {f.references} does not have",
                )
            )
        return out
