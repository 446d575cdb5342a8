"""Out-of-core helpers for the two steps that are not row by row: repeated identifiers and sorting.

polars streams row-wise work in bounded memory, but a group-by over tens of millions of
distinct identifiers holds every one at once; DuckDB's operators spill to disk past
``memory_limit``, so that step runs there. Sorting a table bigger than memory is done by
key ranges (:func:`sink_sorted`).
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from tracer_kit.aggregates import Aggregates
from tracer_kit.lazy import lazy_module
from tracer_kit.settings import parquet_options, settings

if TYPE_CHECKING:
    from duckdb import DuckDBPyConnection

#: DuckDB (imported when a scratch connection is first opened: validation rarely needs one).
duckdb = lazy_module("duckdb")

#: DuckDB's cap for a scratch connection; past it, sorts and group-bys spill to disk.
SCRATCH_MEMORY = os.environ.get("TRACER_SCRATCH_MEMORY", "512MB")


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@contextlib.contextmanager
def scratch_duckdb(work_dir: str | Path) -> Iterator[DuckDBPyConnection]:
    """An in-memory DuckDB capped at :data:`SCRATCH_MEMORY`, spilling under ``work_dir``."""
    spill = Path(work_dir) / "spill"
    spill.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(":memory:")
    try:
        con.execute(f"SET memory_limit = {_literal(SCRATCH_MEMORY)}")
        con.execute(f"SET temp_directory = {_literal(str(spill))}")
        con.execute("SET preserve_insertion_order = false")
        yield con
    finally:
        con.close()
        shutil.rmtree(spill, ignore_errors=True)


def repeated_values(parquet: str | Path, column: str, work_dir: str | Path) -> pl.DataFrame:
    """Values of ``column`` seen more than once, with the ``source_row`` of their first occurrence.

    Columns ``value`` and ``first_row``; null values are not counted. The values' 64-bit
    hashes are grouped first (1 GB churn: 2.5 s -> 1.6 s); only the rows whose hash repeats
    are grouped by value, so a hash collision is never taken for a repeat. DuckDB's group-by
    spills to ``work_dir`` past :data:`SCRATCH_MEMORY`; if its per-thread buffers still do
    not fit (about 100 million distinct values), it retries on one thread. A file of at most
    ``settings.repeats_in_memory_rows`` rows is grouped by polars in memory (no DuckDB to start).
    """
    if (
        pl.scan_parquet(parquet).select(pl.len()).collect().item()
        <= settings.repeats_in_memory_rows
    ):
        return _repeated_in_memory(parquet, column)
    col, source = _quote(column), f"read_parquet({_literal(str(parquet))})"
    sql = f"""WITH candidates AS (
            SELECT hash({col}) AS h FROM {source} WHERE {col} IS NOT NULL
            GROUP BY h HAVING count(*) > 1)
        SELECT {col} AS value, min(source_row) AS first_row FROM {source}
        WHERE {col} IS NOT NULL AND hash({col}) IN (SELECT h FROM candidates)
        GROUP BY {col} HAVING count(*) > 1"""
    with scratch_duckdb(work_dir) as con:
        try:
            return con.sql(sql).pl()
        except duckdb.OutOfMemoryException:
            con.execute("SET threads = 1")
            return con.sql(sql).pl()


def _repeated_in_memory(parquet: str | Path, column: str) -> pl.DataFrame:
    """:func:`repeated_values` by a polars group-by: the same rows, in first-row order."""
    return (
        pl.scan_parquet(parquet)
        .select("source_row", column)
        .filter(pl.col(column).is_not_null())
        .group_by(column)
        .agg(pl.len().alias("n"), pl.col("source_row").min().alias("first_row"))
        .filter(pl.col("n") > 1)
        .select(pl.col(column).alias("value"), "first_row")
        .sort("first_row")
        .collect()
    )


def spread(lf: pl.LazyFrame, limit: int, *, rows: int | None = None) -> pl.LazyFrame:
    """At most about ``limit`` rows of ``lf``: all of them, or every k-th (an even, repeatable spread).

    ``rows`` is the row count when known (else it is counted).
    """
    if rows is None:
        rows = lf.select(pl.len()).collect(engine="streaming").item()
    return lf.gather_every(math.ceil(rows / limit)) if rows > limit else lf


def _compare(cur: pl.Expr, prev: pl.Expr) -> pl.Expr:
    """-1, 0 or 1: this row's value against the previous row's, nulls sorting last."""
    return (
        pl.when(cur.is_null() & prev.is_null())
        .then(0)
        .when(prev.is_null())
        .then(-1)
        .when(cur.is_null())
        .then(1)
        .when(cur > prev)
        .then(1)
        .when(cur < prev)
        .then(-1)
        .otherwise(0)
    )


def is_sorted_by(lf: pl.LazyFrame, keys: Sequence[str]) -> bool:
    """Whether the rows are already in ``keys`` order (nulls last), checked in one pass."""
    order = pl.lit(0)
    for c in reversed(list(keys)):
        cmp = _compare(pl.col(c), pl.col(c).shift(1))
        order = pl.when(cmp != 0).then(cmp).otherwise(order)
    return bool(lf.select((order >= 0).slice(1).all()).collect(engine="streaming").item())


#: Rows sorted in memory at once when writing a sorted table (one key range per chunk).


def _key_ranges(lf: pl.LazyFrame, key: str, rows: int, chunks: int) -> list[pl.Expr]:
    """Filters that split the rows into ``chunks`` consecutive ranges of ``key`` (nulls in the last)."""
    sample = (
        spread(lf.select(key), chunks * 500, rows=rows).drop_nulls().collect(engine="streaming")
    )
    values = sample.get_column(key).sort()
    splits: list[Any] = []
    for i in range(1, chunks):
        if len(values):
            cut = values[min(len(values) - 1, i * len(values) // chunks)]
            if not splits or cut > splits[-1]:
                splits.append(cut)
    col = pl.col(key)
    ranges = []
    lower = None
    for cut in splits:
        ranges.append(col < cut if lower is None else (col >= lower) & (col < cut))
        lower = cut
    ranges.append(pl.lit(True) if lower is None else (col >= lower) | col.is_null())
    return ranges


def sink_sorted(
    lf: pl.LazyFrame, dest: str | Path, keys: Sequence[str], *, rows: int | None = None
) -> None:
    """Write ``lf`` to ``dest`` (zstd Parquet) sorted by ``keys``, nulls last, in bounded memory.

    Already-sorted rows stream straight to the file. Otherwise the rows are cut into ranges
    of the first key (split points from a sample) of about :attr:`Settings.sort_chunk_rows` rows;
    each range is computed with its filter pushed down to the scan, sorted in memory and
    appended, so no more than one range is held at a time.
    """
    import pyarrow.parquet as pq

    keys = list(keys)
    if rows is None:
        rows = lf.select(pl.len()).collect(engine="streaming").item()
    if is_sorted_by(lf, keys):
        lf.sink_parquet(dest, **parquet_options())
        return
    chunks = math.ceil(rows / settings.sort_chunk_rows)
    if chunks <= 1:
        lf.sort(keys, nulls_last=True).collect(engine="streaming").write_parquet(
            dest, **parquet_options()
        )
        return
    writer = None
    pending: Future[None] | None = None
    # a range is compressed and written on a second thread while the next one is computed
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="tracer-sort") as pool:
        try:
            for in_range in _key_ranges(lf, keys[0], rows, chunks):
                part = lf.filter(in_range).sort(keys, nulls_last=True).collect(engine="streaming")
                table = part.to_arrow()
                del part
                if writer is None:
                    writer = pq.ParquetWriter(str(dest), table.schema, **parquet_options())
                if pending is not None:
                    pending.result()
                pending = pool.submit(writer.write_table, table)
            if pending is not None:
                pending.result()
        finally:
            if writer is not None:
                writer.close()


def _band(sorted_sample: pl.Series, q: float, width: float) -> tuple[Any, Any]:
    """Values of the sample around quantile ``q``, ``width`` either side."""
    m = len(sorted_sample)
    return sorted_sample[max(0, int((q - width) * m))], sorted_sample[
        min(m - 1, int((q + width) * m))
    ]


#: The half-widths (as shares of the rows) of the bands tried around each rank in turn. The
#: first is about four standard errors of a quantile read off the 200,000-row sample, so a
#: miss (another pass over all rows) is rare; it brings about 1% of the rows per rank.
BAND_WIDTHS = (0.005, 0.02, 0.1)

#: How a band search finds exactly what its bands missed: ``{column: ranks}`` -> per column
#: ``{rank: (value, tiebreak)}`` (the engine's own full sort).
ExactSearch = Callable[[dict[str, list[int]]], dict[str, dict[int, tuple[Any, Any]]]]
#: At most ``limit`` rows of a frame with ``rows`` rows, on the driver, in an even spread
#: (the engine's :func:`tracer_kit.engine.fit_rows`: every k-th ``source_row`` where there is one).
SampleRows = Callable[[Any, int, int], pl.DataFrame]


def _band_sample(
    frame: Any, columns: list[str], rows: int, sample_rows: SampleRows
) -> dict[str, pl.Series]:
    """Per column, its sorted non-null values in an even spread of the rows (one pass)."""
    tie = ["source_row"] if "source_row" in frame.collect_schema().names() else []
    sample = sample_rows(frame.select(*columns, *tie), settings.order_sample_rows, rows)
    return {c: sample.get_column(c).drop_nulls().sort() for c in columns}


def _batches(sizes: dict[Any, int], limit: int) -> list[list[Any]]:
    """The keys in order, in batches whose sizes add up to at most ``limit`` (none too big)."""
    batches: list[list[Any]] = [[]]
    total = 0
    for key, size in sizes.items():
        if batches[-1] and total + size > limit:
            batches.append([])
            total = 0
        batches[-1].append(key)
        total += size
    return [b for b in batches if b]


def _band_rows(
    frame: Any,
    tiebreak: str | None,
    bands: dict[tuple[str, int], tuple[Any, Any]],
    below: dict[tuple[str, int], int],
) -> dict[tuple[str, int], tuple[Any, Any]]:
    """One pass: the rows inside ``bands`` on the driver, each rank's row picked from its band."""
    within = {
        key: (pl.col(key[0]) >= lo) & (pl.col(key[0]) <= hi) for key, (lo, hi) in bands.items()
    }
    tie = [tiebreak] if tiebreak else []
    columns = sorted({c for c, _ in bands})
    rows = frame.filter(pl.any_horizontal(list(within.values()))).select(*columns, *tie).collect()
    found = {}
    for key, mask in within.items():
        c, k = key
        value, *rest = rows.filter(mask).select(c, *tie).sort([c, *tie]).row(k - below[key] - 1)
        found[key] = (value, rest[0] if rest else None)
    return found


def _ranks_in_bands(
    frame: Any, tiebreak: str | None, bands: dict[tuple[str, int], tuple[Any, Any]]
) -> tuple[dict[tuple[str, int], tuple[Any, Any]], set[tuple[str, int]]]:
    """The rows at each (column, rank) whose band holds it: one counting pass over all the
    bands, then passes that bring the rows inside the bands that hold their rank, at most
    ``settings.band_rows`` rows a pass; and the ranks whose band alone holds more (a table
    of billions of rows): those are left to the engine's full sort.
    """  # noqa: D205
    agg = Aggregates()
    for i, ((c, _k), (lo, hi)) in enumerate(bands.items()):
        col = pl.col(c)
        agg.add("below", str(i), (col < lo).sum(), "sum")
        agg.add("inside", str(i), ((col >= lo) & (col <= hi)).sum(), "sum")
    counted = agg.collect(frame)
    below = {key: int(counted["below"][str(i)] or 0) for i, key in enumerate(bands)}
    inside = {key: int(counted["inside"][str(i)] or 0) for i, key in enumerate(bands)}
    hits = {key: inside[key] for key in bands if below[key] < key[1] <= below[key] + inside[key]}
    too_big = {key for key, size in hits.items() if size > settings.band_rows}
    found: dict[tuple[str, int], tuple[Any, Any]] = {}
    fitting = {key: size for key, size in hits.items() if key not in too_big}
    for batch in _batches(fitting, settings.band_rows):
        found.update(_band_rows(frame, tiebreak, {key: bands[key] for key in batch}, below))
    return found, too_big


def order_statistics(
    frame: Any,
    wanted: Mapping[str, Sequence[int]],
    tiebreak: str | None,
    counts: Mapping[str, int],
    *,
    sample_rows: SampleRows,
    exact: ExactSearch,
) -> dict[str, list[tuple[Any, Any]]]:
    """Per column, the (value, tiebreak) pairs at 1-based ranks of its non-null values, exactly.

    Values sort by value then ``tiebreak`` (None: only the value is returned). No full
    sort: a sample (:func:`_band_sample`) suggests a narrow band of values around each
    rank; one pass counts the rows below and inside every band of every column, and
    one more brings only the rows inside the bands that hold their rank, sorted on the
    driver (one more pass per ``settings.band_rows`` rows). A band that misses its rank is
    widened; after three misses, or when its band alone holds more than
    ``settings.band_rows`` rows, ``exact`` (the engine's full sort) finds it. ``counts``: each column's non-null values where known (the others are counted, one
    pass). Ranks outside 1..n are skipped.
    """
    n = dict(counts)
    unknown = [c for c in wanted if c not in n]
    if unknown:
        agg = Aggregates()
        agg.add_all("n", {c: (pl.col(c).count(), "sum") for c in unknown})
        n.update({c: int(v or 0) for c, v in agg.collect(frame)["n"].items()})
    todo = {c: [k for k in ranks if 1 <= k <= n[c]] for c, ranks in wanted.items()}
    found: dict[tuple[str, int], tuple[Any, Any]] = {}
    columns = [c for c, ranks in todo.items() if ranks]
    if columns:
        sample = _band_sample(frame, columns, max(n[c] for c in columns), sample_rows)
        sort_only: set[tuple[str, int]] = set()  # (their bands are too full to widen)
        for width in BAND_WIDTHS:
            bands = {
                (c, k): _band(sample[c], (k - 0.5) / n[c], width)
                for c in columns
                for k in todo[c]
                if (c, k) not in found and (c, k) not in sort_only and len(sample[c])
            }
            if not bands:
                break
            inside, too_big = _ranks_in_bands(frame, tiebreak, bands)
            found.update(inside)
            sort_only |= too_big
        missing = {c: [k for k in todo[c] if (c, k) not in found] for c in columns}
        if any(missing.values()):  # an unlucky sample: the engine's full sort
            exacts = exact({c: ks for c, ks in missing.items() if ks})
            found.update({(c, k): row for c, rows in exacts.items() for k, row in rows.items()})
    return {c: [found[c, k] for k in ranks if (c, k) in found] for c, ranks in todo.items()}
