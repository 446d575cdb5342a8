"""The whole row reaches the model: the columns no field declares (``extras``) as inputs.

The processed rows keep a file's extra columns as one JSON text column, ``extras``. For a
model, each extra is read from the labelled rows and kept by rule:

- **number**: at least 95% of its non-empty values read as numbers (``29.85``, ``-3``),
  unless every value is a distinct whole number (a row number or an identifier);
- **category**: text with at most :data:`MAX_LEVELS` distinct values (``Month-to-month``,
  ``Yes``/``No``): one-hot encoded by the model, rare levels pooled;
- **age**: at least 95% read as ISO dates: days before the latest date of the column in the
  training rows (that date is saved, so a scored file gets the same ages);
- left out, with the reason recorded: an identifier or free text (text with more distinct
  values than :data:`MAX_LEVELS`), a column empty in every row, a column of one value.

The leakage guard then applies to extras as to any input. The rule and its outcome are in
the run record's ``model.extras`` (used, and left out with why).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl

__all__ = ["MAX_LEVELS", "MIN_SHARE", "extra_columns", "plan_extras", "with_extras"]

#: A text extra with more distinct values than this is an identifier or free text.
MAX_LEVELS = 30
#: The share of non-empty values that must read as numbers (or dates) for that kind.
MIN_SHARE = 0.95


def extra_columns(rows: pl.DataFrame) -> list[str]:
    """The names of the extra columns, from the first row that has any."""
    if "extras" not in rows.columns:
        return []
    first = rows.get_column("extras").drop_nulls().head(1)
    if first.is_empty():
        return []
    import json

    return list(json.loads(first[0]))


def _decoded(rows: pl.DataFrame | pl.LazyFrame, names: list[str]) -> Any:
    struct = pl.Struct([pl.Field(n, pl.String) for n in names])
    if not names:
        return rows
    return rows.with_columns(pl.col("extras").str.json_decode(struct).struct.unnest())


def _kind(values: pl.Series) -> tuple[str | None, str, Any]:
    """How one extra enters the model: (kind or None, why, a parameter)."""
    text = values.cast(pl.String).str.strip_chars()
    present = text.filter(text.is_not_null() & (text != ""))
    if present.is_empty():
        return None, "empty in every row", None
    if present.n_unique() == 1:
        return None, "one value in every row", None
    numbers = present.cast(pl.Float64, strict=False)
    if numbers.is_not_null().mean() >= MIN_SHARE:
        whole = numbers.drop_nulls()
        if (whole == whole.round(0)).all() and whole.n_unique() == len(whole) == len(present):
            return None, "every value a distinct whole number: an identifier", None
        return "number", "numbers", None
    dates = present.str.to_date("%Y-%m-%d", strict=False)
    if dates.is_not_null().mean() >= MIN_SHARE:
        return "age", "dates, as days before the latest", dates.max().isoformat()
    levels = present.n_unique()
    if levels > MAX_LEVELS:
        return None, f"text with {levels:,} distinct values: an identifier or free text", None
    return "category", f"{levels} categories", None


def plan_extras(rows: pl.DataFrame) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Which extras of ``rows`` become inputs (name -> kind and parameter) and which not (why)."""
    names = extra_columns(rows)
    decoded = _decoded(rows.select("extras"), names)
    used: dict[str, dict[str, Any]] = {}
    skipped: dict[str, str] = {}
    for name in names:
        kind, why, param = _kind(decoded.get_column(name))
        if kind is None:
            skipped[name] = why
        else:
            used[name] = {"kind": kind, "ref": param} if param else {"kind": kind}
    return used, skipped


def _typed(name: str, spec: dict[str, Any]) -> pl.Expr:
    text = pl.col(name).str.strip_chars()
    if spec["kind"] == "number":
        return text.cast(pl.Float64, strict=False).alias(name)
    if spec["kind"] == "age":
        ref = pl.lit(dt.date.fromisoformat(spec["ref"]), dtype=pl.Date)
        days = (ref - text.str.to_date("%Y-%m-%d", strict=False)).dt.total_days()
        return days.cast(pl.Float64).alias(name)
    return pl.when(text != "").then(text).alias(name)


def with_extras(rows: Any, used: dict[str, dict[str, Any]]) -> Any:
    """``rows`` (a frame or a lazy frame with ``extras``) with each used extra as a typed column."""
    if not used:
        return rows
    return _decoded(rows, list(used)).with_columns(_typed(n, s) for n, s in used.items())
