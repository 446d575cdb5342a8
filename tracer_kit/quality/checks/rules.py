"""The blueprint's cross-field rules: each failing row is quarantined with the rule's reason."""

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
from tracer_kit.quality.names import Scratch
from tracer_kit.types import Issue, Severity

__all__ = ["Rules"]


@register_check
class Rules(Check):
    """One flag per rule; an issue per rule that fails. The score part: rows breaking none."""

    name = "rules"
    part = "consistency"

    def prepare(self, rows: RowContext) -> list[pl.Expr]:
        """``Scratch.RULE`` of each rule's number."""
        return [
            rule.fails(rows.rules).fill_null(False).alias(Scratch.RULE.of(i))
            for i, rule in enumerate(rows.blueprint.rules)
        ]

    def reasons(self, rows: RowContext) -> list[pl.Expr]:
        """Each rule's reason where it fails."""
        return [
            pl.when(Scratch.RULE.col(i)).then(pl.lit(rule.reason))
            for i, rule in enumerate(rows.blueprint.rules)
        ]

    def reason_columns(self, rows: RowContext) -> list[str | None]:
        """Each rule's columns, comma-separated."""
        return [",".join(rule.columns) for rule in rows.blueprint.rules]

    def aggregates(self, rows: RowContext) -> dict[str, Aggregate]:
        """Failing rows per rule, and the share of rows failing none."""
        flags = [Scratch.RULE.col(i) for i in range(len(rows.blueprint.rules))]
        out: dict[str, Aggregate] = {
            f"fails {i}": (flag.sum(), "sum") for i, flag in enumerate(flags)
        }
        if flags:
            out["consistent"] = (~pl.any_horizontal(flags), "mean")
        return out

    def measure(self, found: dict[str, Any], ctx: IssueContext) -> float:
        """Share of rows breaking no rule (1 without rules or rows)."""
        value = found.get("consistent")
        return float(value) if ctx.blueprint.rules and ctx.rows and value is not None else 1.0

    def issues(self, found: dict[str, Any], ctx: IssueContext) -> list[Issue]:
        """An issue per failing rule, of the rule's severity."""
        out = []
        for i, rule in enumerate(ctx.blueprint.rules):
            n_fail = int(found[f"fails {i}"])
            if not n_fail:
                continue
            out.append(
                Issue(
                    Severity(rule.severity),
                    ",".join(rule.columns),
                    rule.reason,
                    round(1 - n_fail / ctx.rows, 6),
                    None,
                    n_fail,
                    ctx.examples(Scratch.RULE.col(i), rule.columns[0]),
                    f"{n_fail} row(s): {rule.description}",
                )
            )
        return out
