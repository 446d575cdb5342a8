"""Profiling: what a file holds, column by column, before any blueprint is applied."""

from __future__ import annotations

import datetime as dt
import html
import json
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from tracer_kit._scratch import spread
from tracer_kit.cells import shorten
from tracer_kit.config import Config, load_config
from tracer_kit.display import html_table
from tracer_kit.quality.assess import read_file
from tracer_kit.quality.casting import (
    date_conventions,
    folded,
    parse_date,
    plain_iso_columns,
    plain_iso_date,
    present,
)
from tracer_kit.quality.names import Aggregates, Scratch
from tracer_kit.settings import settings

__all__ = [
    "PROFILE_SCHEMA",
    "Profile",
    "column_profiles",
    "dated_statistics",
    "infer_types",
    "profile",
]


PROFILE_SCHEMA = {
    "column": pl.String(),
    "dtype": pl.String(),
    "nulls": pl.Int64(),
    "distinct": pl.Int64(),
    "min": pl.String(),
    "max": pl.String(),
    "mean": pl.Float64(),
    "median": pl.Float64(),
    "hist_edges": pl.String(),
    "hist_counts": pl.String(),
}


def _as_number(name: str, dtype: pl.DataType) -> pl.Expr:
    """A numeric or temporal column as floats (dates as days, times as their integer form)."""
    col = pl.col(name)
    if dtype.is_float():
        col = pl.when(col.is_finite()).then(col)
    return col.cast(pl.Int64).cast(pl.Float64) if dtype.is_temporal() else col.cast(pl.Float64)


def _column_stats(
    lf: pl.LazyFrame, ordered: pl.LazyFrame, schema: pl.Schema, names: Sequence[str], height: int
) -> dict[str, dict[str, Any]]:
    """Per column: nulls, distinct, min, max, and for numbers mean, and from the rows of
    ``ordered`` median and range (two passes).
    """  # noqa: D205
    exact = height <= settings.exact_distinct_rows
    agg, order_agg = Aggregates(), Aggregates()
    for name in names:
        dtype = schema[name]
        col = pl.col(name)
        if dtype.is_float():
            col = pl.when(col.is_finite()).then(col)
        distinct = col.drop_nulls().n_unique() if exact else col.drop_nulls().approx_n_unique()
        agg.add(name, "nulls", pl.col(name).null_count())
        agg.add(name, "distinct", distinct)
        agg.add(name, "min", col.min().cast(pl.String))
        agg.add(name, "max", col.max().cast(pl.String))
        if dtype.is_numeric() or dtype.is_temporal():
            v = _as_number(name, dtype)
            agg.add_all(name, {"mean": v.mean(), "vmin": v.min(), "vmax": v.max()})
            order_agg.add_all(
                name,
                {
                    "median": v.median(),
                    "lo": v.quantile(0.005, "linear"),
                    "hi": v.quantile(0.995, "linear"),
                },
            )
    stats = agg.collect(lf)
    for name, values in order_agg.collect(ordered).items():
        stats[name].update(values)
    return stats


def _bins(
    lf: pl.LazyFrame, name: str, dtype: pl.DataType, stats: dict[str, Any], bins: int
) -> tuple[pl.LazyFrame, str]:
    """The bin-count query of one numeric column and its bin edges (JSON)."""
    lo, hi = stats["lo"], stats["hi"]
    if hi <= lo:
        lo, hi = stats["vmin"], stats["vmax"]
    width = (hi - lo) or 1.0
    v = _as_number(name, dtype)
    index = ((v.clip(lo, hi) - lo) / width * bins).floor().clip(0, bins - 1)
    query = lf.select(index.cast(pl.Int32).alias("i")).drop_nulls().group_by("i").len()
    return query, json.dumps([float(e) for e in np.linspace(lo, lo + width, bins + 1)])


def _top_values(lf: pl.LazyFrame, name: str) -> tuple[str, str]:
    """The ten most frequent values and their counts (JSON lists).

    Spellings that differ only by case or spaces count as one value, shown in the most
    frequent spelling (of equally frequent ones, the first in byte order, whatever the
    rows' order).
    """
    text, key = pl.col(name).cast(pl.String), Scratch.KEY.of()
    top = (
        lf.select(text.alias(name))
        .drop_nulls()
        .group_by(name)
        .len()  # each distinct spelling once, then folded (not every row: 1 GB, 1.1 s -> 0.4 s)
        .with_columns(folded(pl.col(name)).alias(key))
        .group_by(key)
        .agg(  # the most frequent spelling; a tie goes to the first in byte order
            pl.col(name).sort_by("len", name, descending=[True, False]).first(),
            pl.col("len").sum(),
        )
        .sort(["len", name], descending=[True, False])
        .head(10)
        .collect(engine="streaming")
    )
    return json.dumps(top.get_column(name).to_list()), json.dumps(top.get_column("len").to_list())


def column_profiles(
    df: pl.DataFrame | pl.LazyFrame,
    columns: Sequence[str] | None = None,
    *,
    bins: int = 20,
    sample: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Per column: dtype, nulls, distinct, min, max, mean, median and a histogram (JSON lists).

    Numeric and date columns get ``bins`` equal-width bins over their 0.5th-99.5th
    percentiles, the tails counted in the end bins (so one extreme value does not squash
    every other bar into one bin); text columns their ten most frequent values
    (``hist_edges`` holds the values). Null counts, means, minima, maxima and top values
    are exact. Above 1,000,000 rows ``distinct`` is HyperLogLog's estimate, and the median
    and the histogram come from an even spread of about 1,000,000 rows, its bin counts
    scaled to the row count (sorting or binning every column of tens of millions of rows
    cost more than the rest of the profile together). A lazy frame (a Parquet scan) is read
    in streaming passes, never whole. ``sample``: an even spread of these rows already in
    memory (a run passes the rows its preprocessor was fitted on), read instead of taking
    one when it holds every numeric and date column.
    """
    lf = df.lazy()
    schema = lf.collect_schema()
    names = list(columns or schema.names())
    height = lf.select(pl.len()).collect().item()
    ordered, scale = lf, 1.0
    if height > settings.exact_distinct_rows:
        numbers = [n for n in names if schema[n].is_numeric() or schema[n].is_temporal()]
        if sample is not None and set(numbers) <= set(sample.columns) and sample.height:
            ordered = sample.lazy().select(numbers)
        else:
            spread_rows = spread(lf.select(numbers), settings.exact_distinct_rows, rows=height)
            ordered = spread_rows.collect(engine="streaming").lazy()
        scale = height / max(ordered.select(pl.len()).collect().item(), 1)
    stats = _column_stats(lf, ordered, schema, names, height)
    rows = []
    bin_queries: dict[str, pl.LazyFrame] = {}
    for name in names:
        dtype = schema[name]
        get = stats.get(name, {}).get
        row: dict[str, Any] = {
            "column": name,
            "dtype": str(dtype),
            "nulls": get("nulls"),
            "distinct": get("distinct"),
            "min": _short_number(get("min")),
            "max": _short_number(get("max")),
            "mean": get("mean"),
            "median": get("median"),
            "hist_edges": "[]",
            "hist_counts": "[]",
        }
        if (dtype.is_numeric() or dtype.is_temporal()) and get("lo") is not None:
            bin_queries[name], row["hist_edges"] = _bins(ordered, name, dtype, stats[name], bins)
        elif get("distinct") and get("distinct") <= 0.5 * (height - get("nulls")):
            # (identifier-like columns, mostly distinct values, have no top values worth counting)
            row["hist_edges"], row["hist_counts"] = _top_values(lf, name)
        rows.append(row)
    if bin_queries:  # one small group-by per column, run together
        counted = pl.collect_all(list(bin_queries.values()), engine="streaming")
        by_column = dict(zip(bin_queries, counted, strict=True))
        for row in rows:
            if row["column"] in by_column:
                by_bin = dict(by_column[row["column"]].iter_rows())
                counts = [round(by_bin.get(i, 0) * scale) for i in range(bins)]
                row["hist_counts"] = json.dumps(counts)
    return pl.DataFrame(rows, schema=PROFILE_SCHEMA)


def _short_number(text: str | None) -> str | None:
    """Floats printed with six significant digits; other values as they are."""
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return shorten(text)  # (a 45 MB text is not stored or shown whole)
    return f"{value:.6g}" if ("." in text or "e" in text) else text


@dataclass
class Profile:
    """A file's metadata and a per-column summary of its values (types inferred from text)."""

    info: Any
    columns: pl.DataFrame
    rejects: int

    def __repr__(self) -> str:
        return (
            f"Profile({self.info.path!r}, {self.info.row_count} rows, {len(self.columns)} columns)"
        )

    def _repr_html_(self) -> str:
        shown = self.columns.select(
            "column", "dtype", "nulls", "distinct", "min", "max", "mean", "median"
        )
        return (
            f"<p><b>{html.escape(self.info.path)}</b>: {self.info.row_count:,} rows, "
            f"{len(self.columns)} columns ({self.rejects:,} rejected at ingest)</p>"
            + html_table(shown.to_dicts(), shown.columns)
        )


#: Leading rows that screen columns before the full passes: a value there that is no number
#: (or no date in either day order) rules its column out, as it would in the full pass.
SCREEN_ROWS = 10_000


#: The counts of a column screened out as no number: it has text that is neither int nor float.
_NOT_A_NUMBER = {"n": 1, "int": 1, "float": 1}


def _clean_text(name: str, decimal: str) -> pl.Expr:
    text = pl.col(name).str.strip_chars()
    return text.str.replace(",", ".", literal=True) if decimal == "," else text


def _fails(text: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """Rows with text that does not read as ``dtype``."""
    return text.is_not_null() & (text != "") & text.cast(dtype, strict=False).is_null()


def _not_a_date(name: str) -> pl.Expr:
    """Rows with a value that is a date in neither day order."""
    return pl.all_horizontal(
        present(name) & parse_date(name, order)[0].is_null() for order in ("dmy", "mdy")
    )


def _screened(lf: pl.LazyFrame, texts: dict[str, pl.Expr]) -> tuple[set[str], set[str]]:
    """The columns the first :data:`SCREEN_ROWS` rows show are no numbers, and no dates.

    A frame of at most that many rows is not screened: its full passes are as quick.
    """
    if lf.select(pl.len()).collect().item() <= SCREEN_ROWS:
        return set(), set()
    head = lf.select(list(texts)).head(SCREEN_ROWS).collect()
    found = head.select(
        *(_fails(text, pl.Float64).any().alias(f"number:{c}") for c, text in texts.items()),
        *(_not_a_date(c).any().alias(f"date:{c}") for c in texts),
    ).row(0, named=True)
    return {c for c in texts if found[f"number:{c}"]}, {c for c in texts if found[f"date:{c}"]}


def infer_types(
    frame: pl.DataFrame | pl.LazyFrame, columns: Sequence[str], *, decimal: str = "."
) -> pl.LazyFrame:
    """Cast text columns to the narrowest type every non-empty value fits: int, float, date, else text.

    With ``decimal=","`` numbers written with decimal commas count as floats. On a longer
    frame the first :data:`SCREEN_ROWS` rows rule out the columns that cannot be numbers or
    dates; aggregate passes decide the rest (numbers, then dates), so ``frame`` may be a scan
    of a file bigger than memory; returns the lazy plan of the typed columns.
    """
    lf = frame.lazy()
    texts = {c: _clean_text(c, decimal) for c in columns}
    not_numbers, not_dates = _screened(lf, texts)
    agg = Aggregates()
    for c in columns:
        if c not in not_numbers:
            text = texts[c]
            agg.add(c, "n", (text.is_not_null() & (text != "")).sum())
            agg.add(c, "int", _fails(text, pl.Int64).sum())
            agg.add(c, "float", _fails(text, pl.Float64).sum())
    counts = agg.collect(lf) if len(not_numbers) < len(columns) else {}
    chosen: dict[str, pl.Expr] = {}
    maybe_dates = []
    for c in columns:
        found = counts.get(c, _NOT_A_NUMBER)
        if not found["n"]:
            continue  # nothing to go by: stays text
        if found["int"] == 0:
            chosen[c] = texts[c].cast(pl.Int64, strict=False)
        elif found["float"] == 0:
            chosen[c] = texts[c].cast(pl.Float64, strict=False)
        elif c not in not_dates:
            maybe_dates.append(c)
    plain = plain_iso_columns(lf, maybe_dates)  # the common case: one cheap pass decides
    chosen.update({c: plain_iso_date(c) for c in maybe_dates if c in plain})
    maybe_dates = [c for c in maybe_dates if c not in plain]
    conventions = date_conventions(lf, maybe_dates)
    parsed = {c: parse_date(c, conventions[c])[0] for c in maybe_dates}
    if parsed:
        bad = (
            lf.select((present(c) & value.is_null()).sum().alias(c) for c, value in parsed.items())
            .collect(engine="streaming")
            .row(0, named=True)
        )
        chosen.update({c: parsed[c] for c in maybe_dates if bad[c] == 0})
    return lf.select(chosen.get(c, pl.col(c)).alias(c) for c in columns)


def profile(
    path: str | Path, *, config: Config | dict[str, Any] | str | Path | None = None
) -> Profile:
    """Read a file and summarise each column: inferred type, nulls, distinct, min, max, mean, median.

    Examples
    --------
    >>> import tracer_kit as tk
    >>> tk.profile("data/samples/customers.csv").columns.select("column", "dtype")  # doctest: +SKIP
    """
    cfg = load_config(config)
    ing = read_file(path, cfg)
    with tempfile.TemporaryDirectory(prefix="tracer-profile-") as tmp:
        text = Path(tmp) / "text.parquet"  # parse once; the passes below read Parquet
        ing.frame.select(ing.info.columns).sink_parquet(text, compression="lz4")
        typed = Path(tmp) / "typed.parquet"  # typed once: the profile's passes read values
        infer_types(
            pl.scan_parquet(text), ing.info.columns, decimal=ing.info.decimal or "."
        ).sink_parquet(typed, compression="lz4")
        columns = column_profiles(pl.scan_parquet(typed))
    return Profile(info=ing.info, columns=dated_statistics(columns), rejects=ing.rejects.height)


def dated_statistics(columns: pl.DataFrame) -> pl.DataFrame:
    """Profile rows for people: a Date column's mean and median as dates, not epoch days.

    They go to ``mean_date`` and ``median_date`` (null for other columns), and ``mean`` and
    ``median`` stay numbers for numeric columns only; ``min`` and ``max`` are already ISO
    text. The warehouse keeps the numeric form, which drift needs.
    """
    is_date = pl.col("dtype") == "Date"
    epoch = pl.lit(dt.date(1970, 1, 1))

    def as_date(name: str) -> pl.Expr:
        days = pl.col(name).round(0).cast(pl.Int64)
        day = (epoch + pl.duration(days=days)).cast(pl.Date)
        return pl.when(is_date).then(day).alias(f"{name}_date")

    return columns.with_columns(as_date("mean"), as_date("median")).with_columns(
        pl.when(~is_date).then(pl.col(c)).alias(c) for c in ("mean", "median")
    )


def hide_personal(columns: pl.DataFrame, personal: Sequence[str]) -> pl.DataFrame:
    """Profile rows with the values of personal columns removed (min, max, most frequent values).

    Counts (nulls, distinct) stay; a personal column's values never reach the warehouse's
    profiles, hence never the report, the notebook or the workbench.
    """
    if not personal:
        return columns
    hidden = pl.col("column").is_in(list(personal))
    values = ("min", "max", "hist_edges", "hist_counts")
    return columns.with_columns(
        pl.when(hidden)
        .then(pl.lit("[]" if c.startswith("hist") else None))
        .otherwise(pl.col(c))
        .alias(c)
        for c in values
    )
