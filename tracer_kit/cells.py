"""Bounded cells: a long value shown in a report, the workbench or a profile is shortened.

A value longer than :data:`MAX_CELL_CHARS` characters keeps its start, an ellipsis and its
full length (``zzzz… (45,000,000 characters)``), so a page stays small whatever a file holds.
"""

from __future__ import annotations

import re
from typing import Any

import polars as pl

__all__ = [
    "HIDDEN",
    "MAX_CELL_CHARS",
    "MAX_NAMES",
    "MAX_NAME_CHARS",
    "name_list",
    "quoted",
    "shorten",
    "shorten_expr",
]

#: What a personal value is shown as wherever it is not revealed.
HIDDEN = "(hidden: personal)"

#: The longest value shown whole.
MAX_CELL_CHARS = 200
_SHORTENED = re.compile(r"… \([\d,]+ characters\)$")


def shorten(value: Any, limit: int = MAX_CELL_CHARS) -> Any:
    """``value`` itself, or a string longer than ``limit`` cut to its start and its length."""
    if isinstance(value, str) and len(value) > limit:
        if len(value) <= limit + 40 and _SHORTENED.search(value):
            return value  # (shortened already: keep the length it states)
        return f"{value[:limit]}… ({len(value):,} characters)"
    return value


def shorten_expr(expr: pl.Expr, limit: int = MAX_CELL_CHARS) -> pl.Expr:
    """:func:`shorten` as a polars expression over a string column."""
    length = expr.str.len_chars()
    cut = pl.concat_str(
        expr.str.slice(0, limit),
        pl.lit("… ("),
        length.cast(pl.String),
        pl.lit(" characters)"),
    )
    return pl.when(length > limit).then(cut).otherwise(expr)


#: The longest column name a message quotes whole, and how many names it lists.
MAX_NAME_CHARS = 60
MAX_NAMES = 20


def quoted(name: str) -> str:
    """A column name for a message: quoted, and shortened when very long."""
    return repr(shorten(name, MAX_NAME_CHARS))


def name_list(names: list[str] | tuple[str, ...]) -> str:
    """Column names for a one-line message: quoted, each shortened, at most :data:`MAX_NAMES`."""
    shown = [quoted(n) for n in names[:MAX_NAMES]]
    more = len(names) - MAX_NAMES
    return ", ".join(shown) + (f" and {more:,} more" if more > 0 else "")
