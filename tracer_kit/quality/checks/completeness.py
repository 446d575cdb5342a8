"""Completeness: the share of rows where a field has a value; a required field's gaps quarantine rows."""

from __future__ import annotations

from typing import Any

import polars as pl

from tracer_kit.blueprints import Field
from tracer_kit.config import Thresholds
from tracer_kit.quality.checks.base import (
    Aggregate,
    Check,
    IssueContext,
    RowContext,
    register_check,
)
from tracer_kit.quality.names import Scratch
from tracer_kit.types import Issue, Severity

__all__ = ["Completeness", "completeness_severity"]


def completeness_severity(
    f: Field, share: float, missing: int, rows: int, t: Thresholds
) -> Severity | None:
    """Critical or high for a required field under its thresholds; medium for a patchy optional one.

    An optional field missing from every row is not an issue (the file simply lacks it).
    """
    if f.required and share < t.completeness_critical:
        return Severity.CRITICAL
    if f.required and share < t.completeness:
        return Severity.HIGH
    if not f.required and missing < rows and share < t.completeness:
        return Severity.MEDIUM
    return None


@register_check
class Completeness(Check):
    """Per field: present values / rows. The score part is the mean over the required fields."""

    name = "completeness"
    part = "completeness"

    def field_reasons(self, f: Field) -> list[pl.Expr]:
        """``missing_required`` on a required field without a value."""
        if not f.required:
            return []
        return [pl.when(~Scratch.PRESENT.col(f.name)).then(pl.lit("missing_required"))]

    def aggregates(self, rows: RowContext) -> dict[str, Aggregate]:
        """Per field: the share present and the count missing."""
        out = {}
        for f in rows.blueprint.fields:
            out[f"share {f.name}"] = (Scratch.PRESENT.col(f.name), "mean")
            out[f"missing {f.name}"] = ((~Scratch.PRESENT.col(f.name)).sum(), "sum")
        return out

    def issues(self, found: dict[str, Any], ctx: IssueContext) -> list[Issue]:
        """One issue per field under its threshold."""
        t = ctx.thresholds
        out = []
        for f in ctx.blueprint.fields:
            share = float(found[f"share {f.name}"] or 0.0)
            missing = int(found[f"missing {f.name}"])
            sev = completeness_severity(f, share, missing, ctx.rows, t)
            if sev is None:
                continue
            out.append(
                Issue(
                    sev,
                    f.name,
                    self.name,
                    round(share, 6),
                    t.completeness_critical if sev == Severity.CRITICAL else t.completeness,
                    missing,
                    ctx.examples(~Scratch.PRESENT.col(f.name), f.name),
                    f"{f.name} is {share:.1%} complete",
                )
            )
        return out

    def measure(self, found: dict[str, Any], ctx: IssueContext) -> float:
        """Mean share present over the required fields (0 without rows or required fields)."""
        required = ctx.blueprint.required
        if not (ctx.rows and required):
            return 0.0
        return sum(float(found[f"share {c}"] or 0.0) for c in required) / len(required)
