"""Excel ``.xlsx`` workbooks: one sheet (named, by index, or the first that fits the blueprint)."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import polars as pl

from tracer_kit.errors import option
from tracer_kit.ingest.registry import (
    Reader,
    ReadOutcome,
    ReadRequest,
    SheetFits,
    as_text,
    outcome,
    register_reader,
    with_rows,
)
from tracer_kit.ingest.source import file_error, short_message

__all__: list[str] = []


def _fitting_sheet(path: Path, reader: Any, sheets: list[str], fits: SheetFits) -> str:
    """The first sheet whose header row has what ``fits`` asks for (a blueprint's fields)."""
    headers = {}
    for name in sheets:
        try:
            headers[name] = [c.name for c in reader.load_sheet(name, n_rows=0).available_columns()]
        except Exception:
            headers[name] = []
        if fits(headers[name]):
            return name
    listed = "; ".join(
        f"{n!r} ({', '.join(map(repr, h[:6])) or 'empty'}{', ...' if len(h) > 6 else ''})"
        for n, h in headers.items()
    )
    msg = f"no sheet has the columns the blueprint needs; its sheets are {listed} (choose one with {option('sheet', value='NAME')})"
    raise file_error(path, msg)


def _sheet_name(
    path: Path,
    reader: Any,
    sheets: list[str],
    sheet: str | int | None,
    fits: SheetFits | None,
    notes: list[str] | None,
) -> str:
    """The sheet to read: named, by 0-based index, or (none given) the first that fits."""
    if sheet is None:
        sheet = _fitting_sheet(path, reader, sheets, fits) if fits and len(sheets) > 1 else 0
        if sheet not in (0, sheets[0]) and notes is not None:
            notes.append(
                f"{path.name}: read sheet {sheet!r}, the first whose columns fit the blueprint"
            )
    if isinstance(sheet, str) and sheet.isdigit():
        sheet = int(sheet)
    if isinstance(sheet, int):
        if not 0 <= sheet < len(sheets):
            msg = f"has {len(sheets)} sheet(s); sheet index {sheet} is out of range (0-based)"
            raise file_error(path, msg)
        return sheets[sheet]
    if sheet not in sheets:
        msg = f"has no sheet named {sheet!r}; its sheets are {', '.join(map(repr, sheets))}"
        raise file_error(path, msg)
    return sheet


def _read_excel(
    path: Path,
    sheet: str | int | None,
    fits: SheetFits | None = None,
    notes: list[str] | None = None,
) -> tuple[pl.DataFrame, str]:
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except zipfile.BadZipFile:
        raise file_error(
            path, "looks like a zip archive but is damaged; re-export the workbook"
        ) from None
    if not any(n.startswith("xl/") for n in names):
        raise file_error(path, "is a zip archive, not an Excel .xlsx workbook")
    import fastexcel

    try:
        reader = fastexcel.read_excel(str(path))
        sheets = list(reader.sheet_names)
    except Exception as exc:
        raise file_error(path, f"is not a readable Excel workbook ({short_message(exc)})") from None
    name = _sheet_name(path, reader, sheets, sheet, fits, notes)
    try:
        df = pl.read_excel(path, sheet_name=name, engine="calamine", infer_schema_length=0)
    except Exception as exc:
        msg = f"sheet {name!r} cannot be read ({short_message(exc)})"
        raise file_error(path, msg) from None
    # date cells come back as "YYYY-MM-DD 00:00:00": keep the date's ISO text form
    midnight = r"^(\d{4}-\d{2}-\d{2}) 00:00:00$"
    df = df.with_columns(pl.col(pl.String).str.replace(midnight, "${1}"))
    return df, name


def _excel_reader(req: ReadRequest) -> ReadOutcome:
    df, name = _read_excel(req.work, req.sheet, req.sheet_fits, req.notes)
    if df.height == 0:
        raise file_error(req.path, f"sheet {name!r} has a header but no data rows")
    return outcome(with_rows(as_text(df), line_offset=1, notes=req.notes), df.height, sheet=name)


register_reader(Reader("excel", False, _excel_reader, (".xlsx", ".xlsm"), magic=(b"PK\x03\x04",)))
