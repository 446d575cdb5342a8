"""Validity: each present value must cast to its field's type and meet its constraints."""

from __future__ import annotations

from typing import Any

import polars as pl

from tracer_kit.blueprints import Field
from tracer_kit.blueprints.constraints import constraint_reasons
from tracer_kit.quality.checks.base import (
    Aggregate,
    Check,
    IssueContext,
    RowContext,
    register_check,
)
from tracer_kit.quality.names import Scratch
from tracer_kit.types import Issue, Severity

__all__ = ["Validity"]


@register_check
class Validity(Check):
    """Per field: the share of present values that cast and are in range (high under the threshold).

    Its score part is the share of all rows in (parsed or not) that passed every check.
    """

    name = "validity"
    part = "validity"

    def field_reasons(self, f: Field) -> list[pl.Expr]:
        """The cast failure, then each constraint's (in the order of ``CONSTRAINTS``)."""
        return [Scratch.CAST.col(f.name), *constraint_reasons(f)]

    def _failing(self, f: Field) -> pl.Expr:
        return pl.any_horizontal([e.is_not_null() for e in self.field_reasons(f)])

    def aggregates(self, rows: RowContext) -> dict[str, Aggregate]:
        """Per field: values missing and values failing."""
        out = {}
        for f in rows.blueprint.fields:
            out[f"missing {f.name}"] = ((~Scratch.PRESENT.col(f.name)).sum(), "sum")
            out[f"failing {f.name}"] = (self._failing(f).sum(), "sum")
        return out

    def _kinds(self, fields: list[Field], checked: Any) -> dict[str, str]:
        """Per field, its failing values' reasons and counts (``"not a date x3, ..."``), in one pass."""
        tagged = [
            pl.concat_list(self.field_reasons(f))
            .list.drop_nulls()
            .list.eval(f.name + "\x00" + pl.element())
            for f in fields
        ]
        failing = pl.any_horizontal([self._failing(f) for f in fields])
        counts = (
            checked.filter(failing)
            .select(pl.concat_list(tagged).alias("r"))
            .explode("r")
            .drop_nulls()
            .group_by("r")
            .len()
            .collect()
            .with_columns(pl.col("r").str.split_exact("\x00", 1).struct.rename_fields(["f", "why"]))
            .unnest("r")
            .sort(["f", "len", "why"], descending=[False, True, False])
        )
        return {
            f: ", ".join(f"{why} x{n}" for why, n in part.select("why", "len").iter_rows())
            for (f,), part in counts.group_by("f", maintain_order=True)
        }

    def issues(self, found: dict[str, Any], ctx: IssueContext) -> list[Issue]:
        """One issue per field with failing values, naming the reasons and their counts."""
        out = []
        failing = [
            f
            for f in ctx.blueprint.fields
            if int(found[f"failing {f.name}"]) and ctx.rows - int(found[f"missing {f.name}"])
        ]
        kinds = self._kinds(failing, ctx.checked) if failing else {}
        for f in failing:
            n_bad = int(found[f"failing {f.name}"])
            n_present = ctx.rows - int(found[f"missing {f.name}"])
            validity = 1 - n_bad / n_present
            limit = ctx.thresholds.validity
            out.append(
                Issue(
                    Severity.HIGH if validity < limit else Severity.LOW,
                    f.name,
                    self.name,
                    round(validity, 6),
                    limit,
                    n_bad,
                    ctx.examples(self._failing(f), f.name),
                    f"{f.name}: {n_bad} of {n_present} values invalid ({kinds.get(f.name, '')})",
                )
            )
        return out

    def measure(self, found: dict[str, Any], ctx: IssueContext) -> float:
        """Valid rows / rows in."""
        return ctx.rows_valid / ctx.rows_in if ctx.rows_in else 0.0
