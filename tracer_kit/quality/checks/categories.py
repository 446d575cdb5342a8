"""Category spellings: values of one category field that differ only by case or surrounding spaces."""

from __future__ import annotations

from typing import Any

import polars as pl

from tracer_kit.blueprints import Blueprint
from tracer_kit.quality.casting import folded
from tracer_kit.quality.checks.base import Check, IssueContext, register_check
from tracer_kit.quality.names import Scratch
from tracer_kit.types import Issue, Severity

__all__ = ["CategoryVariants", "category_variant_issues"]


def _variant_groups(rows: pl.LazyFrame, name: str) -> pl.DataFrame:
    """Per folded value written more than one way: its spellings (sorted) and its rows."""
    key, value = Scratch.KEY.of(), Scratch.VALUE.of()
    spellings = (
        rows.select(pl.col(name).alias(value), folded(pl.col(name)).alias(key))
        .drop_nulls()
        .group_by(key, value)
        .len()
        .collect(engine="streaming")
    )
    return (
        spellings.group_by(key)
        .agg(pl.col(value).sort().alias("spellings"), pl.col("len").sum())
        .filter(pl.col("spellings").list.len() > 1)
        .sort("len", descending=True)
    )


def _variant_issue(name: str, groups: pl.DataFrame, personal: bool) -> Issue:
    spellings = groups.get_column("spellings")
    shown = "; ".join(" / ".join(repr(v) for v in vs) for vs in spellings.head(3).to_list())
    where = "" if personal else f" ({shown})"
    return Issue(
        severity=Severity.LOW,
        column=name,
        check="inconsistent_case",
        observed=float(groups.height),
        threshold=None,
        rows_affected=int(groups.get_column("len").sum()),
        examples=[]
        if personal
        else [{"value": " / ".join(vs)} for vs in spellings.head(5).to_list()],
        message=(
            f"{name}: {groups.height} value(s) written several ways that differ only by "
            f"case or spaces{where}; counted as one in charts"
        ),
    )


def category_variant_issues(rows: pl.LazyFrame, blueprint: Blueprint) -> list[Issue]:
    """A low issue per category field whose values differ only by case or surrounding spaces.

    ``basic``, ``Basic`` and `` basic `` are one category written three ways; charts count
    them as one, and the issue lists the spellings so the source can be fixed (not for a
    personal field, whose values are never shown).
    """
    found = []
    for f in blueprint.fields:
        if f.kind != "category":
            continue
        groups = _variant_groups(rows, f.name)
        if groups.height:
            found.append(_variant_issue(f.name, groups, f.pii))
    return found


@register_check
class CategoryVariants(Check):
    """See :func:`category_variant_issues`."""

    name = "inconsistent_case"

    def issues(self, found: dict[str, Any], ctx: IssueContext) -> list[Issue]:
        """One issue per category field written several ways."""
        return category_variant_issues(ctx.checked, ctx.blueprint)
