"""Checks on the dataset as a whole (a blueprint's ``dataset``): row count and freshness.

They raise issues and never quarantine a row: a file with too few rows or stale dates is
still read, and the gate decides what a high issue means.
"""

from __future__ import annotations

import datetime as dt
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

__all__ = ["DatasetChecks"]


@register_check
class DatasetChecks(Check):
    """``row_count``: rows read within ``min_rows``..``max_rows``; ``freshness``: the latest date
    of a field at most ``max_age_days`` before the reference date (high issues both).
    """  # noqa: D205

    name = "dataset"
    needs_rows = False

    def aggregates(self, rows: RowContext) -> dict[str, Aggregate]:
        """The latest value of the freshness field, and the date it is measured against."""
        rules = rows.blueprint.dataset
        if rules is None or rules.freshness is None:
            return {}
        return {"latest": (pl.col(rules.freshness).max(), "max")}

    def issues(self, found: dict[str, Any], ctx: IssueContext) -> list[Issue]:
        """A high issue per breached dataset rule."""
        rules = ctx.blueprint.dataset
        if rules is None:
            return []
        out = []
        low, high = rules.min_rows, rules.max_rows
        if (low is not None and ctx.rows_in < low) or (high is not None and ctx.rows_in > high):
            bounds = f"{low if low is not None else 0}..{high if high is not None else 'any'}"
            out.append(
                Issue(
                    Severity.HIGH,
                    None,
                    "row_count",
                    float(ctx.rows_in),
                    float(low if low is not None and ctx.rows_in < low else high or 0),
                    0,
                    [],
                    f"{ctx.rows_in} rows read; the blueprint expects {bounds}",
                )
            )
        if rules.freshness is not None:
            out.extend(self._freshness(found.get("latest"), ctx))
        return out

    def _freshness(self, latest: Any, ctx: IssueContext) -> list[Issue]:
        rules = ctx.blueprint.dataset
        assert rules is not None and rules.max_age_days is not None
        against = ctx.reference_date or ctx.run_date
        if isinstance(latest, dt.datetime):
            latest = latest.date()
        age = (against - latest).days if isinstance(latest, dt.date) else None
        if age is not None and age <= rules.max_age_days:
            return []
        said = f"the latest {rules.freshness} is {latest} ({age} days before {against})"
        if age is None:
            said = f"{rules.freshness} has no valid date"
        return [
            Issue(
                Severity.HIGH,
                rules.freshness,
                "freshness",
                float(age) if age is not None else None,
                float(rules.max_age_days),
                0,
                [],
                f"{said}; the blueprint allows {rules.max_age_days}",
            )
        ]
