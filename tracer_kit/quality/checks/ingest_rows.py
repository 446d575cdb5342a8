"""Whole-table checks on the rows themselves: none valid, or some unreadable at ingest."""

from __future__ import annotations

from typing import Any

from tracer_kit.quality.checks.base import Check, IssueContext, register_check
from tracer_kit.types import Issue, Severity

__all__ = ["NoValidRows", "UnreadableRows"]


@register_check
class NoValidRows(Check):
    """Critical when no row passed validation."""

    name = "no_valid_rows"
    needs_rows = False

    def issues(self, found: dict[str, Any], ctx: IssueContext) -> list[Issue]:
        """One critical issue when nothing is valid."""
        if ctx.rows_valid:
            return []
        return [
            Issue(
                Severity.CRITICAL,
                None,
                self.name,
                0.0,
                None,
                ctx.rows_in,
                message="no row passed validation",
            )
        ]


@register_check
class UnreadableRows(Check):
    """Records rejected at ingest (ragged, undecodable): high above ``1 - validity``, else low."""

    name = "unreadable_rows"
    needs_rows = False

    def issues(self, found: dict[str, Any], ctx: IssueContext) -> list[Issue]:
        """One issue counting the rejected records, with the first five lines."""
        rejects = ctx.rejects
        if not rejects.height:
            return []
        limit = 1 - ctx.thresholds.validity
        share = rejects.height / ctx.rows_in
        examples = [
            {"source_row": r, "source_line": ln, "value": raw[:200]}
            for r, ln, raw in rejects.head(5).select("source_row", "source_line", "raw").iter_rows()
        ]
        if ctx.blueprint.personal:  # a whole line holds the personal values too
            examples = [{k: v for k, v in e.items() if k != "value"} for e in examples]
        return [
            Issue(
                Severity.HIGH if share > limit else Severity.LOW,
                None,
                self.name,
                round(share, 6),
                limit,
                rejects.height,
                examples,
                f"{rejects.height} record(s) rejected at ingest (ragged or undecodable)",
            )
        ]
