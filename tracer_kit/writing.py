"""Writing a table to a file the user named (``--out``): safely, in the format its name says.

- Never over the warehouse, its write-ahead log, or a folder holding a run's files
  (processed rows, bronze, predictions, reports, staging), and never over an existing file
  unless ``force``: one clear line instead.
- Spreadsheet-safe: a text cell that a spreadsheet would run as a formula (it starts with
  ``=``, ``+``, ``-``, ``@``, a tab or a carriage return) is written with a leading ``'``, as
  OWASP advises for CSV injection, unless ``raw_cells``. Numbers stay numbers: numeric
  columns are untouched, and so is text that is a plain number (``-12.5``).
- Written to a temporary name beside the target and renamed into place, so a failure leaves
  no half-written file.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import polars as pl

from tracer_kit.errors import ConfigError
from tracer_kit.warehouse import protected_paths

__all__ = [
    "FORMULA_STARTS",
    "TABLE_SUFFIXES",
    "check_destination",
    "neutralise_cells",
    "write_table",
    "write_text_file",
]

#: First characters that make a spreadsheet read a cell as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
#: File types a table is written as, by suffix.
TABLE_SUFFIXES = (".csv", ".parquet", ".json", ".xlsx")
_PLAIN_NUMBER = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"


def neutralise_cells(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with every formula-like text cell prefixed by ``'`` (numbers stay numbers)."""
    risky = [
        name
        for name, dtype in frame.schema.items()
        if dtype in (pl.String, pl.Categorical) or isinstance(dtype, pl.Enum)
    ]
    if not risky:
        return frame
    exprs = []
    for name in risky:
        text = pl.col(name).cast(pl.String)
        starts = pl.lit(False)
        for start in FORMULA_STARTS:
            starts = starts | text.str.starts_with(start)
        formula = starts & ~text.str.contains(_PLAIN_NUMBER)
        exprs.append(pl.when(formula).then(pl.lit("'") + text).otherwise(text).alias(name))
    return frame.with_columns(exprs)


def _inside(path: Path, folders: Iterable[Path]) -> Path | None:
    for folder in folders:
        if path == folder or folder in path.parents:
            return folder
    return None


def check_destination(
    path: str | Path, *, force: bool = False, warehouse: str | Path | None = None
) -> Path:
    """``path`` resolved, once it is known to be safe to write (see the module docstring).

    Raises
    ------
    ConfigError
        For an unknown suffix, a path that is the warehouse or inside a run's folders, or an
        existing file without ``force``.
    """
    target = Path(path)
    resolved = target.resolve()
    if warehouse is not None:
        files, folders = protected_paths(warehouse)
        if resolved in files:
            msg = f"--out {path} is the warehouse itself; choose another file"
            raise ConfigError(msg)
        folder = _inside(resolved, folders)
        if folder is not None:
            msg = f"--out {path} is inside {folder}, which holds tracer's run files; choose another folder"
            raise ConfigError(msg)
    if resolved.is_dir():
        raise ConfigError(f"--out {path} is a folder; give a file name")
    if target.suffix.lower() not in TABLE_SUFFIXES:
        msg = f"--out {path}: write a table as {', '.join(TABLE_SUFFIXES)}"
        raise ConfigError(msg)
    if resolved.exists() and not force:
        msg = f"--out {path} exists; add --force to overwrite it"
        raise ConfigError(msg)
    return resolved


def write_table(
    frame: pl.DataFrame,
    path: str | Path,
    *,
    force: bool = False,
    raw_cells: bool = False,
    warehouse: str | Path | None = None,
) -> Path:
    """Write ``frame`` to ``path`` (.csv, .parquet, .json or .xlsx) as the module docstring says."""
    target = check_destination(path, force=force, warehouse=warehouse)
    suffix = target.suffix.lower()
    rows = frame if raw_cells or suffix in (".parquet", ".json") else neutralise_cells(frame)
    with _in_place(target) as partial:
        if suffix == ".csv":
            rows.write_csv(partial)
        elif suffix == ".parquet":
            rows.write_parquet(partial)
        elif suffix == ".json":
            partial.write_text(json.dumps(rows.to_dicts(), default=str, indent=1), "utf-8")
        else:
            _write_xlsx(rows, partial)
    return target


@contextlib.contextmanager
def _in_place(target: Path) -> Iterator[Path]:
    """A temporary name beside ``target``, renamed onto it when the block succeeds."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        yield partial
        partial.replace(target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()


def write_text_file(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` all at once: a failure leaves no half-written file."""
    target = Path(path)
    with _in_place(target) as partial:
        partial.write_text(text, encoding="utf-8")
    return target


def _write_xlsx(frame: pl.DataFrame, path: Path) -> None:
    """One sheet, a header row, cells as values (a text cell is never a formula once neutralised)."""
    import openpyxl

    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("data")
    sheet.append(frame.columns)
    for row in frame.iter_rows():
        sheet.append(list(row))
    book.save(path)
