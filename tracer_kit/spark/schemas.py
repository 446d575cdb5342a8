"""Schemas across the engines: a polars schema as Arrow and Spark types, and back."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import polars as pl
import pyarrow as pa

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

__all__ = ["arrow_schema", "polars_schema", "spark_schema", "spark_type"]


def arrow_schema(schema: pl.Schema) -> pa.Schema:
    """The Arrow schema polars hands Spark for ``schema`` (plain strings and lists)."""
    empty = pl.DataFrame(schema=schema).to_arrow(compat_level=pl.CompatLevel.oldest())
    fields = []
    for f in empty.schema:
        fields.append(pa.field(f.name, _plain(f.type)))
    return pa.schema(fields)


def _plain(t: pa.DataType) -> pa.DataType:
    """Types Spark reads: plain strings and lists, signed integers, no null type.

    Spark has no unsigned integers: each becomes the next wider signed type (a one-hot
    ``UInt8`` column is ``Int16`` on Spark), ``UInt64`` becomes ``Int64``.
    """
    if pa.types.is_large_string(t) or pa.types.is_string_view(t) or pa.types.is_null(t):
        return pa.string()
    if pa.types.is_unsigned_integer(t):
        return {8: pa.int16(), 16: pa.int32()}.get(t.bit_width, pa.int64())
    if pa.types.is_large_list(t) or pa.types.is_list(t):
        return pa.list_(_plain(t.value_type))
    return t


def spark_schema(schema: pl.Schema) -> Any:
    """The Spark ``StructType`` of a polars schema."""
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(arrow_schema(schema))


def polars_schema(df: DataFrame) -> pl.Schema:
    """The polars schema of a Spark DataFrame's rows (as its Arrow batches read)."""
    from pyspark.sql.pandas.types import to_arrow_schema

    empty = pa.Table.from_batches([], schema=to_arrow_schema(df.schema))
    return pl.from_arrow(empty).schema  # type: ignore[union-attr]


def spark_type(dtype: pl.DataType) -> Any:
    """The Spark type of one polars dtype."""
    return spark_schema(pl.Schema({"v": dtype}))["v"].dataType
