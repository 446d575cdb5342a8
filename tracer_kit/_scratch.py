"""Out-of-core helpers: an in-memory DuckDB with a memory cap that spills to the run's staging folder.

polars streams row-wise work in bounded memory, but a group-by over tens of millions of
distinct identifiers or a full sort holds everything at once; DuckDB's operators spill to
disk past ``memory_limit``, so those two steps run there.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path

import duckdb
import polars as pl

#: DuckDB's cap for a scratch connection; past it, sorts and group-bys spill to disk.
SCRATCH_MEMORY = os.environ.get("TRACER_SCRATCH_MEMORY", "512MB")


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@contextlib.contextmanager
def scratch_duckdb(work_dir: str | Path) -> Iterator[duckdb.DuckDBPyConnection]:
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

    Columns ``value`` and ``first_row``; null values are not counted.
    """
    col = _quote(column)
    with scratch_duckdb(work_dir) as con:
        return con.sql(
            f"""SELECT {col} AS value, min(source_row) AS first_row
            FROM read_parquet({_literal(str(parquet))})
            WHERE {col} IS NOT NULL GROUP BY {col} HAVING count(*) > 1"""
        ).pl()


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


def sort_parquet(
    src: str | Path, dst: str | Path, keys: Sequence[str], work_dir: str | Path
) -> None:
    """Write ``src`` to ``dst`` sorted by ``keys`` (nulls last), spilling to disk when needed."""
    order = ", ".join(f"{_quote(k)} ASC NULLS LAST" for k in keys)
    with scratch_duckdb(work_dir) as con:
        con.execute("SET preserve_insertion_order = true")
        con.execute(
            f"""COPY (SELECT * FROM read_parquet({_literal(str(src))}) ORDER BY {order})
            TO {_literal(str(dst))} (FORMAT parquet, COMPRESSION zstd)"""
        )
