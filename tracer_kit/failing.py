"""The failing rows of a run, per check and column: what ``tracer quarantine`` exports.

Each quarantined row keeps its raw record (the file's own columns, as text) and its
failures (each reason with the column it is about). :func:`failing_rows` returns them as a
table, one row per quarantined row, filtered by check and column, with the run's personal
columns hidden unless asked for (then decrypted with the run's encryption key).
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import polars as pl

from tracer_kit.cells import HIDDEN
from tracer_kit.errors import ConfigError, TracerError
from tracer_kit.personal import LINE_KEY, open_raw, revealing_key
from tracer_kit.record import RunRecord
from tracer_kit.warehouse import FAILURES_TYPE, connect, is_base_table, open_warehouse, quote_ident
from tracer_kit.workspace import DEFAULT_WAREHOUSE

__all__ = ["FAILING_COLUMNS", "failing_rows", "run_checks_failed"]

#: The columns :func:`failing_rows` puts before the raw record's.
FAILING_COLUMNS = ("source_row", "source_line", "stage", "failed")

# every failure of a row, old rows (kept before failures were) from their reasons
_FAILURES = f"coalesce(failures, list_transform(reasons, lambda r: {{'reason': r, 'column': NULL}})::{FAILURES_TYPE})"


def _run(con, run_id: str) -> tuple[str, RunRecord]:
    found = con.execute("SELECT blueprint, params FROM runs WHERE run_id = ?", [run_id]).fetchall()
    if not found:
        raise TracerError(f"no run {run_id!r}; `tracer runs` lists the runs")
    return found[0][0], RunRecord.from_stored(found[0][1])


def _failed_counts(con: Any, run_id: str, table: str) -> pl.DataFrame:
    if not is_base_table(con, table):
        return pl.DataFrame(schema={"check": pl.String, "column": pl.String, "rows": pl.Int64})
    return con.sql(
        f"""SELECT f.reason AS "check", f."column" AS "column", count(*)::BIGINT AS rows
        FROM (SELECT unnest({_FAILURES}) AS f FROM {quote_ident(table)} WHERE run_id = $1)
        GROUP BY ALL ORDER BY rows DESC, "check", "column" NULLS FIRST""",
        params=[run_id],
    ).pl()


def run_checks_failed(run_id: str, *, warehouse: str | Path = DEFAULT_WAREHOUSE) -> pl.DataFrame:
    """Per check and column, how many of the run's rows failed it (``check``, ``column``, ``rows``)."""
    open_warehouse(warehouse)
    with connect(warehouse, read_only=True) as con:
        blueprint, _ = _run(con, run_id)
        return _failed_counts(con, run_id, f"quarantine_{blueprint}")


def _check_filter(found: pl.DataFrame, check: str | None, column: str | None, run_id: str) -> None:
    """A check or column the run never failed is a typo until shown otherwise: say so."""
    for what, value in (("check", check), ("column", column)):
        if value is None:
            continue
        values = found.get_column(what).drop_nulls()
        known = sorted({*values, *(part for v in values for part in v.split(","))})
        if value not in known:
            close = difflib.get_close_matches(value, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            listed = ", ".join(known) or "none"
            raise ConfigError(
                f"run {run_id} has no failing rows for --{what} {value!r} "
                f"(its failed {what}s: {listed}){hint}"
            )


def failing_rows(
    run_id: str,
    *,
    check: str | None = None,
    column: str | None = None,
    include_pii: bool = False,
    limit: int | None = None,
    warehouse: str | Path = DEFAULT_WAREHOUSE,
) -> pl.DataFrame:
    """The run's quarantined rows that failed ``check`` (on ``column``), with their raw values.

    One row per quarantined row, in file order: ``source_row``, ``source_line``, ``stage``,
    ``failed`` (every failure of the row, ``reason on column``) and the record's columns as
    the file wrote them. Values of the run's personal columns read ``HIDDEN`` unless
    ``include_pii``: then they are decrypted with the key the run was encrypted with
    (``TRACER_ENCRYPTION_KEY``). ``limit`` keeps the first rows only.

    Raises
    ------
    ConfigError
        When the run never failed that check or column (the message lists the ones it did).
    TracerError
        With ``include_pii``, when the run's personal values cannot be revealed (no key, the
        wrong key, or values pseudonymised for good).
    """
    open_warehouse(warehouse)
    with connect(warehouse, read_only=True) as con:  # (one short read for everything)
        blueprint, record = _run(con, run_id)
        table = f"quarantine_{blueprint}"
        _check_filter(_failed_counts(con, run_id, table), check, column, run_id)
        if not is_base_table(con, table):
            return pl.DataFrame(schema=dict.fromkeys(FAILING_COLUMNS, pl.String))
        where, params = ["run_id = $1"], [run_id]
        match = []
        if check is not None:
            params.append(check)
            match.append(f"f.reason = ${len(params)}")
        if column is not None:
            params.append(column)
            n = len(params)
            match.append(
                f'(f."column" = ${n} OR list_contains(string_split(f."column", \',\'), ${n}))'
            )
        if match:
            where.append(f"len(list_filter({_FAILURES}, lambda f: {' AND '.join(match)})) > 0")
        rows = con.sql(
            f"""SELECT source_row, source_line, stage,
                array_to_string(list_transform({_FAILURES},
                    lambda f: f.reason || coalesce(' on ' || f."column", '')), '; ') AS failed,
                raw::VARCHAR AS raw
            FROM {quote_ident(table)} WHERE {" AND ".join(where)}
            ORDER BY source_row NULLS LAST {f"LIMIT {int(limit)}" if limit else ""}""",
            params=params,
        ).pl()
        keys = con.execute(  # (the keys of the rows chosen, not of every quarantined row)
            f"SELECT DISTINCT unnest(json_keys(raw)) FROM {quote_ident(table)} "
            f"WHERE {' AND '.join(where)}",
            params,
        ).fetchall()
    personal = list(record.personal_columns)
    if include_pii and personal and rows.height:
        key = revealing_key(run_id, record)
        rows = rows.with_columns(
            pl.col("raw").map_elements(lambda r: open_raw(r, set(personal), key), pl.String)
        )
        personal = []
    return _expand(rows, {k for (k,) in keys}, personal)


def _expand(rows: pl.DataFrame, every_key: set[str], hidden: list[str]) -> pl.DataFrame:
    """The raw JSON records as columns (text, in the file's order), personal ones hidden."""
    head = rows.select(FAILING_COLUMNS)
    if rows.height == 0:
        return head
    first = rows.get_column("raw").head(1).str.json_decode().struct.fields
    keys = [*first, *sorted(every_key - set(first))]
    record = rows.get_column("raw").str.json_decode(pl.Struct({k: pl.String() for k in keys}))
    values = record.struct.unnest()
    hide = [c for c in values.columns if c in {*hidden, LINE_KEY}] if hidden else []
    if hide:
        values = values.with_columns(
            pl.when(pl.col(c).is_not_null()).then(pl.lit(HIDDEN)).alias(c) for c in hide
        )
    clash = [c for c in values.columns if c in FAILING_COLUMNS]
    values = values.rename({c: f"{c} (file)" for c in clash})
    return pl.concat([head, values], how="horizontal")
