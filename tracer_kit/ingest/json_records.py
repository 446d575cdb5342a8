"""JSON: an array of records (or one array inside an object), and NDJSON, one record per line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl

from tracer_kit.ingest.registry import (
    Reader,
    ReadOutcome,
    ReadRequest,
    outcome,
    register_reader,
    text_frame,
    with_rows,
)
from tracer_kit.ingest.source import REJECT_SCHEMA, file_error, safe_frame

__all__ = ["MAX_JSON_DEPTH"]

#: How deep JSON may nest: Python's parser recurses once per level and stops near 1,000
#: (its recursion limit), so that is the stated limit.
MAX_JSON_DEPTH = 1000
_TOO_DEEP = (
    f"nests more than about {MAX_JSON_DEPTH:,} levels deep (arrays or objects inside each other)"
)


def _read_json(path: Path) -> pl.DataFrame:
    try:
        with path.open("rb") as fh:
            data = json.load(fh)
    except UnicodeDecodeError:
        raise file_error(path, "is not UTF-8 encoded JSON") from None
    except RecursionError:
        raise file_error(
            path, f"is JSON that {_TOO_DEEP}; tracer reads records, not trees"
        ) from None
    except json.JSONDecodeError as exc:
        raise file_error(
            path,
            f"is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}",
            line=exc.lineno,
        ) from None
    if isinstance(data, dict):
        lists = [v for v in data.values() if isinstance(v, list)]
        if len(lists) != 1:
            raise file_error(
                path, "is a JSON object; expected an array of records (or one array inside)"
            )
        data = lists[0]
    if not isinstance(data, list) or not data:
        raise file_error(path, "holds no records (expected a non-empty JSON array of objects)")
    for i, item in enumerate(data, start=1):
        if not isinstance(item, dict):
            msg = f"element {i} is a {type(item).__name__}, not an object (record)"
            raise file_error(path, msg)
    try:
        rows = [{k: _json_text(v) for k, v in item.items()} for item in data]
    except RecursionError:
        raise file_error(path, f"holds a value that {_TOO_DEEP}") from None
    return text_frame(rows)


def _json_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(value, sort_keys=True)


def _line_record(text: str) -> dict[str, str | None]:
    """One NDJSON line as a record of texts; ValueError says why it is not one."""
    try:
        item = json.loads(text)
        if not isinstance(item, dict):
            raise ValueError(f"a {type(item).__name__}, not an object")
        return {k: _json_text(v) for k, v in item.items()}
    except RecursionError:
        raise ValueError(_TOO_DEEP) from None


def _read_ndjson(
    path: Path, on_bad_lines: str, notes: list[str]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    records: list[dict[str, str | None]] = []
    rows, lines = [], []
    rejects: dict[str, list[Any]] = {"source_row": [], "source_line": [], "raw": [], "reason": []}
    with path.open("r", encoding="utf-8", errors="strict", newline="") as fh:
        number = 0
        try:
            for number, line in enumerate(fh, start=1):
                text = line.strip()
                if not text:
                    continue
                row_no = len(rows) + len(rejects["source_row"]) + 1
                try:
                    record = _line_record(text)
                except ValueError as exc:
                    reason = f"invalid_json: {exc}"
                    if on_bad_lines == "error":
                        msg = f"line {number} is not a JSON object ({exc})"
                        raise file_error(path, msg, line=number) from None
                    for key, value in zip(
                        rejects, (row_no, number, text[:10_000], reason), strict=True
                    ):
                        rejects[key].append(value)
                    continue
                records.append(record)
                rows.append(row_no)
                lines.append(number)
        except UnicodeDecodeError:
            raise file_error(
                path, f"line {number + 1} is not valid UTF-8", line=number + 1
            ) from None
    if not records:
        raise file_error(path, "holds no JSON records")
    df = safe_frame(text_frame(records), notes)
    columns = df.columns
    df = df.with_columns(
        source_row=pl.Series(rows, dtype=pl.Int64), source_line=pl.Series(lines, dtype=pl.Int64)
    ).select("source_row", "source_line", *columns)
    return df, pl.DataFrame(rejects, schema=REJECT_SCHEMA)


def _json_reader(req: ReadRequest) -> ReadOutcome:
    return outcome(with_rows(_read_json(req.work).lazy(), line_offset=None, notes=req.notes))


def _ndjson_reader(req: ReadRequest) -> ReadOutcome:
    df, rejects = _read_ndjson(req.work, req.on_bad_lines, req.notes)
    return outcome(df.lazy(), df.height + rejects.height, rejects=rejects)


register_reader(Reader("json", True, _json_reader, (".json",)))
register_reader(Reader("ndjson", True, _ndjson_reader, (".ndjson", ".jsonl")))
