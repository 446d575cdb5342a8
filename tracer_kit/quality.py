"""Quality: blueprint compatibility, typing from text, row checks, issues, the score and the gate.

The flow inside this stage, all on polars expressions:

1. :func:`match_columns` maps the file's columns onto the blueprint's fields (explicit
   ``column_map`` first, then unambiguous case/space/underscore-insensitive matches) and
   raises :class:`CompatibilityError` naming each missing required field with suggestions.
2. :func:`assess` casts every field from text itself (``strict=False``) and flags each value
   that was present before the cast and null after it, checks formats, ranges, required
   values, duplicate identifiers and the blueprint's cross-field rules, and gives every row
   one status with all its reasons.
3. Column checks (completeness, uniqueness, validity, IQR and z-score outliers) become
   :class:`Issue` rows with a severity; :func:`gate` decides once whether the run may go on.
4. The valid rows are checked against the blueprint's pandera schema (``coerce=False``),
   which must hold by construction.
"""

from __future__ import annotations

import datetime as dt
import difflib
import html
import json
import math
import re
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from tracer_kit._scratch import order_statistics, repeated_values, spread
from tracer_kit.blueprints import Blueprint, Field, RuleContext, get_blueprint
from tracer_kit.config import Config, Thresholds, load_config
from tracer_kit.errors import (
    CompatibilityError,
    ConfigError,
    PipelineBugError,
    QualityGateError,
    TracerError,
    option,
)
from tracer_kit.ingest import REJECT_SCHEMA, Ingested, read_table
from tracer_kit.settings import settings
from tracer_kit.types import Severity, by_severity

__all__ = [
    "ISSUE_COLUMNS",
    "Issue",
    "MONTH_NAME_FORMATS",
    "folded",
    "NULL_TOKENS",
    "PROFILE_SCHEMA",
    "Profile",
    "QUARANTINE_SCHEMA",
    "QualityResult",
    "SCORE_PARTS",
    "SCORE_WEIGHTS",
    "SEVERITIES",
    "assess",
    "assess_ingested",
    "category_variant_issues",
    "check_compatible",
    "check_schema",
    "column_profiles",
    "date_conventions",
    "dated_statistics",
    "fits_blueprint",
    "gate",
    "identifier_uniqueness",
    "infer_types",
    "issues_frame",
    "match_columns",
    "normalise_name",
    "outlier_bounds",
    "plain_iso_columns",
    "profile",
    "raise_for_gate",
    "read_file",
    "suggest_columns",
    "validate",
]

SEVERITIES = tuple(s.value for s in Severity)
MONTH_NAME_FORMATS = ("%b %d %Y", "%b %d, %Y", "%B %d %Y", "%B %d, %Y", "%d %b %Y", "%d %B %Y")
_ISO = r"^\d{4}-\d{2}-\d{2}(?:[T ].*)?$"
_SLASH = r"^(\d{1,2})/(\d{1,2})/(\d{4})$"
QUARANTINE_SCHEMA = {
    "stage": pl.String(),
    "source_row": pl.Int64(),
    "source_line": pl.Int64(),
    "raw": pl.String(),
    "reasons": pl.List(pl.String()),
}


@dataclass
class Issue:
    """One finding: what, where, how bad, how many rows, and up to five example rows."""

    severity: str
    column: str | None
    check: str
    observed: float | None
    threshold: float | None
    rows_affected: int
    examples: list[dict[str, Any]] = field(default_factory=list)
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The issue as JSON-like types."""
        return asdict(self)


@dataclass
class QualityResult:
    """Everything the quality stage found: counts, score and parts, issues, valid rows, quarantine.

    The rows live in Parquet under ``work_dir`` (written once, streamed, never all in memory):
    ``bronze.parquet`` (the file's text, original column names), ``bronze.rejects.parquet``
    (records rejected at ingest, when any), ``checked.parquet`` (typed values and check
    flags) and ``quarantine.parquet``. :meth:`valid_lazy` scans the valid
    rows; ``valid`` and ``quarantine`` read them into memory.
    """

    blueprint: str
    rows_in: int
    rows_valid: int
    rows_quarantined: int
    score: float
    score_parts: dict[str, float]
    issues: list[Issue]
    reference_date: dt.date | None
    run_date: dt.date
    date_formats: dict[str, dict[str, int]]
    column_map: dict[str, str]
    gate_failures: list[str]
    work_dir: Path
    valid_columns: list[str]
    bronze_columns: list[str]
    rejects: pl.DataFrame
    _keepalive: Any = field(default=None, repr=False)

    def __repr__(self) -> str:
        gate = "passed" if self.passed else "FAILED"
        return (
            f"QualityResult({self.blueprint!r}, gate {gate}, score {self.score:.1f}, "
            f"{self.rows_in} in / {self.rows_valid} valid / {self.rows_quarantined} quarantined, "
            f"{len(self.issues)} issues)"
        )

    def _repr_html_(self) -> str:
        from tracer_kit.report import html_table, verdict_html

        gate = {
            "passed": self.passed,
            "headline": "Quality gate passed" if self.passed else "Quality gate FAILED",
            "reasons": list(self.gate_failures),
        }
        parts = ", ".join(f"{k} {100 * v:.1f}%" for k, v in self.score_parts.items())
        return (
            verdict_html(gate)
            + f"<p>Quality score <b>{self.score:.1f}</b> ({html.escape(parts)}); "
            f"{self.rows_in:,} rows in, {self.rows_valid:,} valid, "
            f"{self.rows_quarantined:,} quarantined.</p>"
            + html_table([i.to_dict() for i in self.issues], list(ISSUE_COLUMNS))
        )

    @property
    def passed(self) -> bool:
        """Whether the gate lets the run go on."""
        return not self.gate_failures

    @property
    def bronze_path(self) -> Path:
        """The file's records as text (``source_row``, ``source_line``, original columns)."""
        return self.work_dir / "bronze.parquet"

    @property
    def bronze_rejects_path(self) -> Path | None:
        """Records rejected at ingest as bronze (``raw`` = ``{"_line": text}``), or None."""
        path = self.work_dir / "bronze.rejects.parquet"
        return path if path.exists() else None

    @property
    def quarantine_path(self) -> Path:
        """Quarantined records: ``stage``, ``source_row``, ``source_line``, ``raw`` JSON, ``reasons``."""
        return self.work_dir / "quarantine.parquet"

    def valid_lazy(self) -> pl.LazyFrame:
        """The valid typed rows in ``source_row`` order, as a lazy scan."""
        return (
            pl.scan_parquet(self.work_dir / "checked.parquet")
            .filter(~pl.col("__bad"))
            .select(self.valid_columns)
        )

    @property
    def valid(self) -> pl.DataFrame:
        """The valid typed rows (read into memory)."""
        return self.valid_lazy().collect(engine="streaming")

    @property
    def quarantine(self) -> pl.DataFrame:
        """The quarantined records (read into memory)."""
        return pl.read_parquet(self.quarantine_path)

    def issues_frame(self) -> pl.DataFrame:
        """The issues as a table, most severe first."""
        return issues_frame(self.issues)


#: The parts of the quality score, in the formula's order, with their weights.
SCORE_WEIGHTS = {"completeness": 0.4, "uniqueness": 0.2, "validity": 0.3, "consistency": 0.1}
SCORE_PARTS = tuple(SCORE_WEIGHTS)

#: The columns of an issues table, in display order.
ISSUE_COLUMNS = ("severity", "column", "check", "observed", "threshold", "rows_affected", "message")


def issues_frame(issues: Sequence[Issue]) -> pl.DataFrame:
    """A polars table of issues (severity, column, check, observed, threshold, rows, message)."""
    schema = {
        "severity": pl.String(),
        "column": pl.String(),
        "check": pl.String(),
        "observed": pl.Float64(),
        "threshold": pl.Float64(),
        "rows_affected": pl.Int64(),
        "message": pl.String(),
    }
    rows = [{k: getattr(i, k) for k in schema} for i in by_severity(issues)]
    return pl.DataFrame(rows, schema=schema)


# --------------------------------------------------------------------------- compatibility


def normalise_name(name: str) -> str:
    """Lower-case with spaces, underscores, hyphens and dots removed (``Customer ID`` -> ``customerid``)."""
    return re.sub(r"[\s_\-.]+", "", name.strip().lower())


def suggest_columns(wanted: str, columns: Iterable[str], n: int = 3) -> list[str]:
    """The file's columns that look most like ``wanted``: normalised equality, then fuzzy matches."""
    columns = list(columns)
    target = normalise_name(wanted)
    by_norm: dict[str, list[str]] = {}
    for c in columns:
        by_norm.setdefault(normalise_name(c), []).append(c)
    exact = by_norm.get(target, [])
    fuzzy = difflib.get_close_matches(target, list(by_norm), n=n, cutoff=0.6)
    out = list(exact)
    for key in fuzzy:
        out.extend(c for c in by_norm[key] if c not in out)
    contains = [c for c in columns if target in normalise_name(c) or normalise_name(c) in target]
    out.extend(c for c in contains if c not in out and len(normalise_name(c)) >= 3)
    return out[:n]


def match_columns(
    columns: Sequence[str],
    blueprint: Blueprint,
    column_map: dict[str, str] | None = None,
    *,
    path: str | Path | None = None,
) -> dict[str, str]:
    """The renames that map the file's columns onto the blueprint's fields.

    ``column_map`` (source -> field) is applied first; then each field still absent that
    exactly one column matches case-, space- and underscore-insensitively is mapped too.

    Raises
    ------
    CompatibilityError
        When required fields are still missing; names each and the closest columns.
    ConfigError
        When ``column_map`` names a column the file lacks.
    """
    columns = list(columns)
    mapping = _explicit_renames(columns, column_map or {}, blueprint, path)
    present = {mapping.get(c, c) for c in columns}
    for f in blueprint.fields:
        if f.name in present:
            continue
        candidates = [
            c
            for c in columns
            if c not in mapping
            and c not in {x.name for x in blueprint.fields}
            and normalise_name(c) == normalise_name(f.name)
        ]
        if len(candidates) == 1:
            mapping[candidates[0]] = f.name
            present.add(f.name)
    missing = [name for name in blueprint.required if name not in present]
    if missing:
        unused = [c for c in columns if c not in mapping]
        suggestions = {m: suggest_columns(m, unused) for m in missing}
        parts = []
        for m in missing:
            hint = suggestions[m]
            parts.append(
                f"{m!r} (did you mean {' or '.join(map(repr, hint))}?)" if hint else repr(m)
            )
        where = f"{path}: " if path else ""
        plural = "s" if len(missing) > 1 else ""
        example = next(((s[0], m) for m, s in suggestions.items() if s), None)
        fix = (
            f"; map columns with {option('column_map', src=example[0], dst=example[1])}"
            if example
            else f"; the file's columns are {', '.join(map(repr, columns))}"
        )
        msg = (
            f"{where}blueprint {blueprint.name!r} needs field{plural} missing from the file: "
            + ", ".join(parts)
            + fix
        )
        raise CompatibilityError(msg, missing=missing, suggestions=suggestions, path=path)
    return {src: dst for src, dst in mapping.items() if src != dst}


def _resolve_source(src: str, columns: Sequence[str], path: str | Path | None) -> str:
    """The file's column a map entry names: exactly, else case-insensitively when only one fits."""
    if src in columns:
        return src
    folded = [c for c in columns if c.casefold() == src.strip().casefold()]
    if len(folded) == 1:
        return folded[0]
    where = path or "the file"
    if folded:
        msg = (
            f"{option('column_map', src=src, dst='...')}: {where} has several columns that "
            f"differ from {src!r} only by case ({', '.join(map(repr, folded))}); name one exactly"
        )
    else:
        hint = suggest_columns(src, columns)
        close = f" (did you mean {' or '.join(map(repr, hint))}?)" if hint else ""
        msg = (
            f"{option('column_map', src=src, dst='...')} names column {src!r}, but {where} has "
            f"no such column{close}; its columns are {', '.join(map(repr, columns))}"
        )
    raise ConfigError(msg, path=path, column=src)


def _explicit_renames(
    columns: Sequence[str],
    column_map: dict[str, str],
    blueprint: Blueprint,
    path: str | Path | None,
) -> dict[str, str]:
    """The user's map resolved against the file; two sources landing on one field is an error."""
    mapping: dict[str, str] = {}
    for src, dst in column_map.items():
        mapping[_resolve_source(src, columns, path)] = dst
    targets: dict[str, list[str]] = {}
    for src, dst in mapping.items():
        targets.setdefault(dst, []).append(src)
    for c in columns:  # an unmapped column already named like a target also lands there
        if c not in mapping and c in targets:
            targets[c].append(c)
    clashes = {dst: srcs for dst, srcs in targets.items() if len(srcs) > 1}
    if clashes:
        dst, srcs = next(iter(clashes.items()))
        kind = "field" if dst in {f.name for f in blueprint.fields} else "column"
        msg = (
            f"{path or 'the file'}: columns {' and '.join(map(repr, srcs))} would both become "
            f"{kind} {dst!r}; map only one of them to {dst!r}"
        )
        raise ConfigError(msg, path=path, column=dst)
    return mapping


# --------------------------------------------------------------------------- typing from text


#: Values that mean "no value" (compared case-insensitively after stripping spaces): a
#: null in an optional field, ``missing_required`` in a required one.
NULL_TOKENS = ("", "na", "n/a", "null", "none", "nan", "-")


def _present(name: str) -> pl.Expr:
    raw = pl.col(name).str.strip_chars()
    return raw.is_not_null() & ~raw.str.to_lowercase().is_in(NULL_TOKENS)


def plain_iso_columns(frame: pl.LazyFrame, columns: Sequence[str]) -> set[str]:
    """The date columns whose every present value is a plain ``YYYY-MM-DD`` date (the fast path)."""
    if not columns:
        return set()
    exprs = [
        (
            _present(c)
            & pl.col(c).str.strip_chars().str.strptime(pl.Date, "%Y-%m-%d", strict=False).is_null()
        )
        .sum()
        .alias(c)
        for c in columns
    ]
    row = frame.select(exprs).collect().row(0, named=True)
    return {c for c, bad in row.items() if bad == 0}


def date_conventions(frame: pl.LazyFrame, columns: Sequence[str]) -> dict[str, str | None]:
    """Per date column: ``"dmy"``, ``"mdy"`` or None (ambiguous) from its slash-formatted values.

    Day-first when any value's first part is over 12 (and its second a month), month-first
    when any second part is (and its first a month); ambiguous when neither or both. A value
    impossible both ways (``13/13/2023``) is evidence for neither (it is quarantined).
    """
    if not columns:
        return {}
    exprs = []
    for c in columns:
        parts = pl.col(c).str.strip_chars().str.extract_groups(_SLASH)
        first = parts.struct.field("1").cast(pl.Int32, strict=False)
        second = parts.struct.field("2").cast(pl.Int32, strict=False)
        # a value impossible both ways (13/13/2023) is invalid, not evidence for either order
        day_first = (first > 12) & (first <= 31) & (second <= 12)
        month_first = (second > 12) & (second <= 31) & (first <= 12)
        exprs += [day_first.any().alias(f"{c}\x00d"), month_first.any().alias(f"{c}\x00m")]
    row = frame.select(exprs).collect().row(0)
    out: dict[str, str | None] = {}
    for i, c in enumerate(columns):
        day_first, month_first = bool(row[2 * i]), bool(row[2 * i + 1])
        out[c] = (
            "dmy"
            if day_first and not month_first
            else "mdy"
            if month_first and not day_first
            else None
        )
    return out


def _parse_plain_iso(name: str) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    """(value, reason, format) for a column known to hold only ``YYYY-MM-DD`` dates."""
    value = pl.col(name).str.strip_chars().str.strptime(pl.Date, "%Y-%m-%d", strict=False)
    reason = pl.when(_present(name) & value.is_null()).then(pl.lit("invalid_date"))
    fmt = pl.when(value.is_not_null()).then(pl.lit("%Y-%m-%d"))
    return value.alias(name), reason, fmt


def _parse_date(name: str, convention: str | None) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    """(value, failure reason, format used) for one date column given its slash convention."""
    raw = pl.col(name).str.strip_chars()
    iso = pl.when(raw.str.contains(_ISO)).then(
        raw.str.slice(0, 10).str.strptime(pl.Date, "%Y-%m-%d", strict=False)
    )
    parts = raw.str.extract_groups(_SLASH)
    is_slash = raw.str.contains(_SLASH)
    a = parts.struct.field("1").cast(pl.Int32, strict=False)
    b = parts.struct.field("2").cast(pl.Int32, strict=False)
    dmy = raw.str.strptime(pl.Date, "%d/%m/%Y", strict=False)
    mdy = raw.str.strptime(pl.Date, "%m/%d/%Y", strict=False)
    if convention == "dmy":
        slash = dmy
        ambiguous = pl.lit(False)
    elif convention == "mdy":
        slash = mdy
        ambiguous = pl.lit(False)
    else:
        slash = pl.when(a == b).then(dmy)
        ambiguous = is_slash & (a != b)
    slash = pl.when(is_slash).then(slash)
    named = pl.coalesce([raw.str.strptime(pl.Date, f, strict=False) for f in MONTH_NAME_FORMATS])
    value = pl.coalesce(iso, slash, named)
    fmt = (
        pl.when(iso.is_not_null())
        .then(pl.lit("%Y-%m-%d"))
        .when(slash.is_not_null())
        .then(pl.lit("%m/%d/%Y" if convention == "mdy" else "%d/%m/%Y"))
        .when(named.is_not_null())
        .then(pl.lit("month-name"))
    )
    reason = pl.when(_present(name) & value.is_null()).then(
        pl.when(ambiguous.fill_null(False))
        .then(pl.lit("ambiguous_date"))
        .otherwise(pl.lit("invalid_date"))
    )
    return value.alias(name), reason, fmt


#: Numbers grouped by thousands, per decimal mark: ``1,234.50`` (point) and ``1.234,50`` (comma).
_GROUPED = {".": r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$", ",": r"^[+-]?\d{1,3}(\.\d{3})+(,\d+)?$"}


def _plain_number(raw: pl.Expr, decimal: str) -> pl.Expr:
    """Number text in ``.``-decimal form: thousands separators dropped where the value is
    grouped exactly in threes, a decimal comma turned into a point (the file's decimal mark
    is detected at ingest, so the convention is the file's, never guessed per value).
    """  # noqa: D205
    group = "," if decimal == "." else "."
    text = (
        pl.when(raw.str.contains(_GROUPED[decimal]))
        .then(raw.str.replace_all(group, "", literal=True))
        .otherwise(raw)
    )
    return text.str.replace(",", ".", literal=True) if decimal == "," else text


def _parse_value(f: Field, decimal: str) -> tuple[pl.Expr, pl.Expr]:
    """(typed value, failure reason) for a non-date field; the reason is null when the value is fine."""
    raw = pl.col(f.name).str.strip_chars()
    present = _present(f.name)
    if f.kind in ("float", "int"):
        number = _plain_number(raw, decimal).cast(pl.Float64, strict=False)
        number = pl.when(number.is_finite()).then(number)
        if f.kind == "int":
            whole = (number == number.floor()) & (number.abs() < 2**53)
            value = pl.when(whole).then(number.cast(pl.Int64, strict=False))
        else:
            value = number
        reason = pl.when(present & value.is_null()).then(pl.lit("invalid_number"))
    else:
        value = pl.when(present).then(raw)
        reason = pl.lit(None, dtype=pl.String)
        if f.full_pattern is not None:
            bad = present & ~raw.str.contains(f.full_pattern).fill_null(True)
            reason = pl.when(bad).then(pl.lit("invalid_format"))
    return value.alias(f.name), reason


def _range_reason(f: Field) -> pl.Expr | None:
    col = pl.col(f.name)
    checks = []
    if f.ge is not None:
        checks.append(col < f.ge)
    if f.gt is not None:
        checks.append(col <= f.gt)
    if not checks:
        return None
    return pl.when(pl.any_horizontal(checks).fill_null(False)).then(pl.lit("out_of_range"))


def _fast_value(f: Field) -> pl.Expr:
    """The typed value of a *clean* column: one cast, no stripping (see :func:`_dirty_counts`)."""
    col = pl.col(f.name)
    if f.kind == "date":
        return col.str.strptime(pl.Date, "%Y-%m-%d", strict=False)
    if f.kind == "float":
        return col.cast(pl.Float64, strict=False)
    if f.kind == "int":
        return col.cast(pl.Int64, strict=False)
    return col


def _dirty_counts(fields: Sequence[Field], decimal: str) -> list[pl.Expr]:
    """Per field, how many non-null values are not in canonical form (0 means the column is *clean*).

    Canonical: no surrounding whitespace, not empty, and (for numbers and dates) read by a
    single cast: plain integers within 2**53, finite ``.``-decimal floats, ``YYYY-MM-DD``
    dates, and no pattern to match. Typing a clean column is that one cast, with nothing to
    flag, so the checks that strip and re-parse every value are skipped for it. Fields with
    a pattern, and numbers with decimal commas, are never clean.
    """
    exprs = []
    for f in fields:
        if f.full_pattern is not None or (f.is_numeric and decimal == ","):
            continue
        col = pl.col(f.name)
        value = _fast_value(f)
        if f.kind == "float":
            ok = value.is_finite()
        elif f.kind == "int":
            ok = value.abs() < 2**53
        elif f.kind == "date":
            ok = value.is_not_null()
        else:
            ok = ~col.str.to_lowercase().is_in(NULL_TOKENS) & ~col.str.contains(r"^\s|\s$")
        exprs.append((col.is_not_null() & ~ok.fill_null(False)).sum().alias(f.name))
    return exprs


# --------------------------------------------------------------------------- assessment


def _latest_not_after(lf: pl.LazyFrame, column: str, run_date: dt.date) -> dt.date | None:
    col = pl.col(column)
    return lf.select(col.filter(col <= run_date).max()).collect(engine="streaming").item()


def _bronze_plan(
    frame: pl.LazyFrame, names: Sequence[str], original: dict[str, str]
) -> tuple[pl.LazyFrame, list[str]]:
    """The records' text under the file's own column names, and those names."""
    data = [c for c in names if c not in ("source_row", "source_line")]
    plan = frame.select(
        "source_row", "source_line", *[pl.col(c).alias(original.get(c, c)) for c in data]
    )
    return plan, [original.get(c, c) for c in data]


#: Up to this many quarantined rows are looked up in bronze by row number (skipping row
#: groups without any); more are matched with a streaming join.


def _repeated_identifiers(
    typed: pl.LazyFrame, identifier: str, work: Path, *, in_bronze: str | None
) -> pl.DataFrame:
    """Identifier values seen more than once and the ``source_row`` of their first occurrence.

    A clean identifier column (its text is its value) is grouped straight from the bronze
    Parquet (``in_bronze`` names it there); otherwise its typed values are staged first.
    """
    if in_bronze is not None:
        return repeated_values(work / "bronze.parquet", in_bronze, work)
    ids = work / "identifiers.parquet"
    typed.select("source_row", identifier).sink_parquet(ids, compression="lz4")
    try:
        return repeated_values(ids, identifier, work)
    finally:
        ids.unlink(missing_ok=True)


def assess(
    frame: pl.LazyFrame,
    blueprint: Blueprint,
    *,
    config: Config | None = None,
    rejects: pl.DataFrame | None = None,
    decimal: str = ".",
    run_date: dt.date | None = None,
    column_map: dict[str, str] | None = None,
    path: str | Path | None = None,
    work_dir: str | Path | None = None,
) -> QualityResult:
    """Type, check and score the rows of ``frame`` (text columns + ``source_row``/``source_line``).

    The rows stream through Parquet files in ``work_dir``: the text once (bronze), then the
    typed values with their check flags; counts, issues and the score are aggregates over
    those files, so memory stays bounded whatever the file's size. Repeated identifiers are
    found with an out-of-core DuckDB group-by.

    Parameters
    ----------
    frame
        Text columns already renamed to the blueprint's field names, plus ``source_row`` and
        ``source_line``. Columns the blueprint does not know are kept as text (extras).
    blueprint
        The blueprint whose fields, rules and identifier apply.
    config
        Thresholds and the reference date.
    rejects
        Records rejected at ingest; they count in ``rows_in`` and go to quarantine.
    decimal
        ``","`` when numbers use decimal commas.
    run_date
        The run's UTC date (default: today, UTC); no ``last_activity_date``-like value may be after it.
    column_map
        The renames applied to ``frame`` (source -> field); bronze and quarantine keep the
        file's own names.
    work_dir
        Where the staged Parquet goes (default: a temporary folder that lives as long as
        the result).

    Returns
    -------
    QualityResult
        Counts, score and parts, issues, valid typed rows and the quarantine table.
    """
    config = config or Config()
    run_date = run_date or dt.datetime.now(dt.UTC).date()
    rejects = rejects if rejects is not None else pl.DataFrame(schema=REJECT_SCHEMA)
    keepalive = None
    if work_dir is None:
        keepalive = tempfile.TemporaryDirectory(prefix="tracer-quality-")
        work_dir = keepalive.name
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    mapping = dict(column_map or {})
    original = {dst: src for src, dst in mapping.items()}
    names = frame.collect_schema().names()
    # 1. parse the source once: its text becomes bronze (every later pass reads Parquet), and
    #    the same pass finds the columns already in canonical form
    present = [f for f in blueprint.fields if f.name in names]
    bronze_plan, bronze_columns = _bronze_plan(frame, names, original)
    dirty = _dirty_counts(present, decimal)
    done = pl.collect_all(
        [
            bronze_plan.sink_parquet(work / "bronze.parquet", compression="zstd", lazy=True),
            frame.select(dirty) if dirty else pl.LazyFrame(),
        ],
        engine="streaming",
    )
    clean = {name for name, n in (done[1].row(0, named=True) if dirty else {}).items() if n == 0}
    text = pl.scan_parquet(work / "bronze.parquet").rename(
        {src: dst for src, dst in mapping.items() if src in bronze_columns}
    )
    extras = [
        c
        for c in names
        if c not in {f.name for f in blueprint.fields} and c not in ("source_row", "source_line")
    ]
    text = text.with_columns(
        pl.lit(None, dtype=pl.String).alias(f.name) for f in blueprint.fields if f.name not in names
    )
    # 2. date conventions (small aggregates over the date columns)
    date_fields = [f.name for f in blueprint.fields if f.kind == "date"]
    plain = clean & set(date_fields)
    plain |= plain_iso_columns(text, [c for c in date_fields if c not in plain])
    conventions = date_conventions(text, [c for c in date_fields if c not in plain])

    # 3. typing: every value cast from text, each failed cast flagged
    typed_cols, reason_cols, format_cols = [], [], []
    for f in blueprint.fields:
        if f.name in clean:  # one cast, nothing to flag
            typed_cols.append(_fast_value(f).alias(f.name))
            reason_cols.append(pl.lit(None, dtype=pl.String).alias(f"__cast_{f.name}"))
            reason_cols.append(pl.col(f.name).is_not_null().alias(f"__present_{f.name}"))
            if f.kind == "date":
                fmt = pl.when(pl.col(f.name).is_not_null()).then(pl.lit("%Y-%m-%d"))
                format_cols.append(fmt.alias(f"__fmt_{f.name}"))
            continue
        if f.kind == "date":
            if f.name in plain:
                value, reason, fmt = _parse_plain_iso(f.name)
            else:
                value, reason, fmt = _parse_date(f.name, conventions.get(f.name))
            format_cols.append(fmt.alias(f"__fmt_{f.name}"))
        else:
            value, reason = _parse_value(f, decimal)
        typed_cols.append(value)
        reason_cols.append(reason.alias(f"__cast_{f.name}"))
        reason_cols.append(_present(f.name).alias(f"__present_{f.name}"))
    # (a plan, not a file: the checks below are added to it and everything is written once)
    typed = text.select(
        "source_row", "source_line", *reason_cols, *format_cols, *typed_cols, *extras
    )

    reference = config.reference_date
    if blueprint.reference_column and reference is None:
        reference = _latest_not_after(typed, blueprint.reference_column, run_date)
    ctx = RuleContext(run_date=run_date, reference_date=reference)

    # 4. row checks: ranges, required values, repeated identifiers, cross-field rules
    reasons: list[pl.Expr] = []
    field_failures: dict[str, list[pl.Expr]] = {}
    for f in blueprint.fields:
        missing = pl.when(~pl.col(f"__present_{f.name}")).then(pl.lit("missing_required"))
        rng = _range_reason(f)
        per_field = [pl.col(f"__cast_{f.name}")] + ([rng] if rng is not None else [])
        field_failures[f.name] = per_field
        reasons.extend(per_field)
        if f.required:
            reasons.append(missing)
    rule_cols = []
    if blueprint.identifier:
        repeats = _repeated_identifiers(
            typed,
            blueprint.identifier,
            work,
            in_bronze=(
                original.get(blueprint.identifier, blueprint.identifier)
                if blueprint.identifier in clean
                else None
            ),
        )
        ident = pl.col(blueprint.identifier)
        # a repeat: a value seen more than once, on a row other than its first
        rule_cols.append(
            (
                ident.is_in(repeats.get_column("value").implode())
                & ~pl.col("source_row").is_in(repeats.get_column("first_row").implode())
            )
            .fill_null(False)
            .alias("__dup")
        )
        reasons.append(pl.when(pl.col("__dup")).then(pl.lit("duplicate_id")))
    for i, rule in enumerate(blueprint.rules):
        rule_cols.append(rule.fails(ctx).fill_null(False).alias(f"__rule_{i}"))
        reasons.append(pl.when(pl.col(f"__rule_{i}")).then(pl.lit(rule.reason)))
    typed.with_columns(rule_cols).with_columns(
        pl.any_horizontal([r.is_not_null() for r in reasons]).alias("__bad")
    ).sink_parquet(work / "checked.parquet", compression="lz4")
    checked = pl.scan_parquet(work / "checked.parquet")
    bronze_text = pl.scan_parquet(work / "bronze.parquet")

    # 5. quarantine: the bad rows' reasons (built for bad rows only) and their raw record
    reason_list = (
        pl.concat_list(reasons).list.drop_nulls().list.unique(maintain_order=True).alias("reasons")
    )
    bad = checked.filter(pl.col("__bad")).select(
        pl.col("source_row").alias("__row"), reason_list.alias("__reasons")
    )
    raw_json = pl.struct(bronze_columns).struct.json_encode().alias("raw")
    line_json = pl.struct(pl.col("raw").alias("_line")).struct.json_encode().alias("raw")
    bad_rows = (
        checked.filter(pl.col("__bad")).select("source_row").head(settings.prefilter_rows + 1)
    )
    bad_rows = bad_rows.collect(engine="streaming").get_column("source_row")
    records = bronze_text
    if (
        len(bad_rows) <= settings.prefilter_rows
    ):  # few bad rows: read just their row groups of bronze
        records = bronze_text.filter(pl.col("source_row").is_in(bad_rows.implode()))
    validated = (  # join first: only the bad rows' records are encoded as JSON
        records.join(
            bad, left_on="source_row", right_on="__row", how="inner", maintain_order="left"
        ).select(
            pl.lit("validate").alias("stage"),
            "source_row",
            "source_line",
            raw_json,
            pl.col("__reasons").alias("reasons"),
        )
    )
    rejected = rejects.lazy().select(
        pl.lit("ingest").alias("stage"),
        "source_row",
        "source_line",
        line_json,
        pl.concat_list(pl.col("reason").str.split(": ").list.first()).alias("reasons"),
    )
    quarantine = pl.concat([rejected.cast(QUARANTINE_SCHEMA), validated.cast(QUARANTINE_SCHEMA)])
    if rejects.height:  # validated rows are in source_row order; sort only when merging
        quarantine = quarantine.sort("source_row")
    quarantine.sink_parquet(work / "quarantine.parquet", compression="zstd")
    if rejects.height:  # the records rejected at ingest belong to bronze too
        rejects.select("source_row", "source_line", line_json).write_parquet(
            work / "bronze.rejects.parquet"
        )

    # 6. counts, field statistics, score and issues: aggregates over the checked rows
    summary = _summarise(checked, blueprint, field_failures)
    n_parsed, rows_valid = summary.rows, summary.valid
    rows_quarantined = (
        pl.scan_parquet(work / "quarantine.parquet").select(pl.len()).collect().item()
    )
    rows_in = n_parsed + rejects.height
    if rows_in != rows_valid + rows_quarantined:
        msg = f"row counts do not add up: {rows_in} in, {rows_valid} valid, {rows_quarantined} quarantined"
        raise PipelineBugError(msg)

    thresholds = config.thresholds
    parts = _score_parts(summary, blueprint, rows_in)
    score = round(100 * sum(w * parts[k] for k, w in SCORE_WEIGHTS.items()), 2)
    examples = _Examples(checked, bronze_text, original)
    issues = _issues(
        checked, blueprint, field_failures, summary, rejects, thresholds, rows_in, examples
    )
    issues += category_variant_issues(checked, blueprint)
    date_formats: dict[str, dict[str, int]] = {}
    for c in date_fields:
        counts = (
            checked.group_by(f"__fmt_{c}").len().drop_nulls().collect(engine="streaming").rows()
        )
        date_formats[c] = {fmt: int(n) for fmt, n in sorted(counts, key=lambda r: -r[1])}
        date_formats[c]["convention"] = "iso" if c in plain else conventions.get(c) or "undecided"  # type: ignore[assignment]
    valid_columns = ["source_row", "source_line", *[f.name for f in blueprint.fields], *extras]
    result = QualityResult(
        blueprint=blueprint.name,
        rows_in=rows_in,
        rows_valid=rows_valid,
        rows_quarantined=rows_quarantined,
        score=score,
        score_parts=parts,
        issues=issues,
        reference_date=reference,
        run_date=run_date,
        date_formats=date_formats,
        column_map=mapping,
        gate_failures=gate(issues, score, thresholds),
        work_dir=work,
        valid_columns=valid_columns,
        bronze_columns=bronze_columns,
        rejects=rejects,
        _keepalive=keepalive,
    )
    if rows_valid:
        check_schema(result.valid_lazy(), blueprint, rows=rows_valid)
    return result


#: At most this many valid rows (an even spread) are checked against the pandera schema.


def check_schema(
    valid: pl.DataFrame | pl.LazyFrame, blueprint: Blueprint, *, rows: int | None = None
) -> None:
    """Assert the valid rows satisfy the blueprint's pandera schema; a breach is a bug.

    Above :attr:`Settings.schema_check_rows` rows an even spread of that many rows is checked (every
    row already passed the same checks as polars flags, so this guards the flags themselves).

    Raises
    ------
    PipelineBugError
        Listing the failing checks, when casting or quarantine let a bad row through.
    """
    from pandera.errors import SchemaErrors

    lf = spread(
        valid.lazy().select([f.name for f in blueprint.fields]),
        settings.schema_check_rows,
        rows=rows,
    )
    schema = blueprint.pandera_schema()
    try:
        schema.validate(lf.collect(engine="streaming"), lazy=True)
    except SchemaErrors as exc:
        cases = exc.failure_cases.select("column", "check").unique().rows()
        msg = f"valid rows break the {blueprint.name} schema (a bug): {cases[:10]}"
        raise PipelineBugError(msg) from None


def identifier_uniqueness(non_null: int, repeats: int) -> float:
    """Distinct non-null identifiers / non-null identifiers (1 when none).

    A repeat is a non-null value that is not its first occurrence, so distinct = non-null - repeats.
    """
    return (non_null - repeats) / non_null if non_null else 1.0


@dataclass
class _Summary:
    """Every count the score and the issues need, from one pass over the checked rows."""

    rows: int
    valid: int
    fields: dict[str, tuple[float, int, int]]  # share present, values missing, values failing
    identifiers: int  # non-null identifier values
    repeats: int  # identifier values after their first occurrence
    rule_fails: list[int]
    consistency: float  # share of rows breaking no rule


def _summarise(
    checked: pl.LazyFrame, blueprint: Blueprint, field_failures: dict[str, list[pl.Expr]]
) -> _Summary:
    rules = [pl.col(f"__rule_{i}") for i in range(len(blueprint.rules))]
    exprs = [pl.len().alias("rows"), (~pl.col("__bad")).sum().alias("valid")]
    for f in blueprint.fields:
        present = pl.col(f"__present_{f.name}")
        failing = pl.any_horizontal([e.is_not_null() for e in field_failures[f.name]])
        exprs += [
            present.mean().alias(f"{f.name}\x00c"),
            (~present).sum().alias(f"{f.name}\x00m"),
            failing.sum().alias(f"{f.name}\x00b"),
        ]
    if blueprint.identifier:
        exprs += [
            pl.col(blueprint.identifier).is_not_null().sum().alias("\x00ids"),
            pl.col("__dup").sum().alias("\x00dups"),
        ]
    exprs += [r.sum().alias(f"\x00rule{i}") for i, r in enumerate(rules)]
    if rules:
        exprs.append((~pl.any_horizontal(rules)).mean().alias("\x00consistent"))
    row = checked.select(exprs).collect(engine="streaming").row(0, named=True)
    return _Summary(
        rows=int(row["rows"]),
        valid=int(row["valid"] or 0),
        fields={
            f.name: (
                float(row[f"{f.name}\x00c"] or 0.0),
                int(row[f"{f.name}\x00m"]),
                int(row[f"{f.name}\x00b"]),
            )
            for f in blueprint.fields
        },
        identifiers=int(row.get("\x00ids") or 0),
        repeats=int(row.get("\x00dups") or 0),
        rule_fails=[int(row[f"\x00rule{i}"]) for i in range(len(rules))],
        consistency=float(row["\x00consistent"]) if rules and row["rows"] else 1.0,
    )


def _score_parts(summary: _Summary, blueprint: Blueprint, rows_in: int) -> dict[str, float]:
    required = blueprint.required
    n = summary.rows
    completeness = (
        float(np.mean([summary.fields[c][0] for c in required])) if n and required else 0.0
    )
    uniqueness = identifier_uniqueness(summary.identifiers, summary.repeats)
    validity = summary.valid / rows_in if rows_in else 0.0
    return {
        "completeness": round(completeness, 6),
        "uniqueness": round(uniqueness, 6),
        "validity": round(validity, 6),
        "consistency": round(summary.consistency, 6),
    }


class _Examples:
    """Up to five example rows for an issue: position and the value as written in the file."""

    def __init__(
        self, checked: pl.LazyFrame, bronze: pl.LazyFrame, original: dict[str, str]
    ) -> None:
        self.checked = checked
        self.bronze = bronze
        self.original = original

    def __call__(self, mask: pl.Expr, column: str | None, n: int = 5) -> list[dict[str, Any]]:
        picked = self.checked.filter(mask).select("source_row", "source_line").head(n).collect()
        out = [{"source_row": r, "source_line": ln} for r, ln in picked.iter_rows()]
        if column is None or not out:
            return out
        name = self.original.get(column, column)
        if name in self.bronze.collect_schema().names():
            rows = picked.get_column("source_row")
            raw = dict(
                self.bronze.filter(pl.col("source_row").is_in(rows.implode()))
                .select("source_row", name)
                .collect()
                .iter_rows()
            )
        else:  # an optional field the file does not have
            raw = {}
        for item in out:
            item["value"] = raw.get(item["source_row"])
        return out


def _issues(
    checked: pl.LazyFrame,
    blueprint: Blueprint,
    field_failures: dict[str, list[pl.Expr]],
    summary: _Summary,
    rejects: pl.DataFrame,
    t: Thresholds,
    rows_in: int,
    examples: _Examples,
) -> list[Issue]:
    n_parsed, rows_valid = summary.rows, summary.valid
    issues: list[Issue] = []
    if rows_valid == 0:
        issues.append(
            Issue(
                "critical",
                None,
                "no_valid_rows",
                0.0,
                None,
                rows_in,
                message="no row passed validation",
            )
        )
    if rejects.height:
        share = rejects.height / rows_in
        sev = "high" if share > 1 - t.validity else "low"
        reject_examples = [
            {"source_row": r, "source_line": ln, "value": raw[:200]}
            for r, ln, raw in rejects.head(5).select("source_row", "source_line", "raw").iter_rows()
        ]
        issues.append(
            Issue(
                sev,
                None,
                "unreadable_rows",
                round(share, 6),
                1 - t.validity,
                rejects.height,
                reject_examples,
                f"{rejects.height} record(s) rejected at ingest (ragged or undecodable)",
            )
        )
    if n_parsed == 0:
        return issues
    for f in blueprint.fields:
        present = pl.col(f"__present_{f.name}")
        completeness, n_missing, n_bad = summary.fields[f.name]
        if f.required and completeness < t.completeness_critical:
            sev = "critical"
        elif f.required and completeness < t.completeness:
            sev = "high"
        elif not f.required and n_missing < n_parsed and completeness < t.completeness:
            sev = "medium"
        else:
            sev = None
        if sev:
            issues.append(
                Issue(
                    sev,
                    f.name,
                    "completeness",
                    round(completeness, 6),
                    t.completeness_critical if sev == "critical" else t.completeness,
                    n_missing,
                    examples(~present, f.name),
                    f"{f.name} is {completeness:.1%} complete",
                )
            )
        failures = field_failures[f.name]
        fail_any = pl.any_horizontal([e.is_not_null() for e in failures])
        n_present = n_parsed - n_missing
        if n_present and n_bad:
            validity = 1 - n_bad / n_present
            counts = (
                checked.filter(fail_any)
                .select(pl.concat_list(failures).list.drop_nulls().alias("r"))
                .explode("r")
                .drop_nulls()
                .group_by("r")
                .len()
                .sort(["len", "r"], descending=[True, False])
                .collect()
            )
            kinds = ", ".join(f"{r} x{c}" for r, c in counts.iter_rows())
            sev = "high" if validity < t.validity else "low"
            issues.append(
                Issue(
                    sev,
                    f.name,
                    "validity",
                    round(validity, 6),
                    t.validity,
                    n_bad,
                    examples(fail_any, f.name),
                    f"{f.name}: {n_bad} of {n_present} values invalid ({kinds})",
                )
            )
        if f.is_numeric:
            issues.extend(_outlier_issues(checked, f.name, t, examples))
    uniq = identifier_uniqueness(summary.identifiers, summary.repeats)
    if blueprint.identifier and uniq < t.uniqueness:
        repeated = checked.filter(pl.col("__dup")).select(blueprint.identifier).unique()
        dup = pl.col(blueprint.identifier).is_in(
            repeated.collect().get_column(blueprint.identifier).implode()
        )
        issues.append(
            Issue(
                "high",
                blueprint.identifier,
                "uniqueness",
                round(uniq, 6),
                t.uniqueness,
                summary.repeats,
                examples(dup, blueprint.identifier),
                f"{summary.repeats} repeated {blueprint.identifier} value(s); the first occurrence is kept",
            )
        )
    for i, (rule, n_fail) in enumerate(zip(blueprint.rules, summary.rule_fails, strict=True)):
        if n_fail:
            issues.append(
                Issue(
                    "low",
                    ",".join(rule.columns),
                    rule.reason,
                    round(1 - n_fail / n_parsed, 6),
                    None,
                    n_fail,
                    examples(pl.col(f"__rule_{i}"), rule.columns[0]),
                    f"{n_fail} row(s): {rule.description}",
                )
            )
    return by_severity(issues)


def _linear_quantiles(lf: pl.LazyFrame, column: str, n: int, probs: Sequence[float]) -> list[float]:
    """Exact ``linear`` quantiles (numpy's default) from the order statistics they interpolate."""
    positions = [(n - 1) * p for p in probs]
    ranks = sorted(
        {math.floor(h) + 1 for h in positions} | {min(math.floor(h) + 2, n) for h in positions}
    )
    found = dict(zip(ranks, order_statistics(lf, column, "__order", ranks, n=n), strict=True))
    out = []
    for h in positions:
        lo = float(found[math.floor(h) + 1][0])
        hi = float(found[min(math.floor(h) + 2, n)][0])
        out.append(lo + (h - math.floor(h)) * (hi - lo))
    return out


def outlier_bounds(
    values: pl.Series | pl.LazyFrame, column: str | None = None
) -> dict[str, float | int | None]:
    """IQR bounds (Q1 - 1.5 IQR, Q3 + 1.5 IQR) and z-score (|z| > 3) counts for one numeric column.

    ``values`` is a Series, or a LazyFrame and the ``column`` to read from it: quartiles are
    exact order statistics found without sorting the column, counts and moments are
    streaming aggregates, so a column bigger than memory is fine.
    """
    if isinstance(values, pl.Series):
        lf, column = values.to_frame("__v").lazy(), "__v"
    else:
        lf, column = values, column or ""
    x = pl.col(column).cast(pl.Float64)
    lf = lf.select(x.alias(column)).drop_nulls(column).with_row_index("__order")
    n, mean, std = (
        lf.select(pl.len(), pl.col(column).mean().alias("m"), pl.col(column).std().alias("s"))
        .collect(engine="streaming")
        .row(0)
    )
    if n == 0:
        return {
            "q1": None,
            "q3": None,
            "lower": None,
            "upper": None,
            "iqr_count": 0,
            "mean": None,
            "std": None,
            "z_count": 0,
            "n": 0,
        }
    q1, q3 = _linear_quantiles(lf, column, n, (0.25, 0.75))
    iqr = q3 - q1
    lower, upper = q1 - 1.5 * iqr, q3 + 1.5 * iqr
    col = pl.col(column)
    z = ((col - mean).abs() > 3 * std).sum() if std else pl.lit(0)
    iqr_count, z_count = (
        lf.select(((col < lower) | (col > upper)).sum().alias("i"), z.alias("z"))
        .collect(engine="streaming")
        .row(0)
    )
    return {
        "q1": q1,
        "q3": q3,
        "lower": lower,
        "upper": upper,
        "iqr_count": int(iqr_count),
        "mean": float(mean),
        "std": float(std) if std is not None else None,
        "z_count": int(z_count),
        "n": int(n),
    }


def _outlier_issues(
    checked: pl.LazyFrame, column: str, t: Thresholds, examples: _Examples
) -> list[Issue]:
    b = outlier_bounds(checked, column)
    out = []
    if b["iqr_count"]:
        share = b["iqr_count"] / b["n"]
        sev = "medium" if share > t.outlier_share else "low"
        mask = (pl.col(column) < b["lower"]) | (pl.col(column) > b["upper"])
        out.append(
            Issue(
                sev,
                column,
                "outliers_iqr",
                round(share, 6),
                t.outlier_share,
                int(b["iqr_count"]),
                examples(mask, column),
                f"{b['iqr_count']} value(s) outside [{b['lower']:.4g}, {b['upper']:.4g}] (1.5 x IQR)",
            )
        )
    if b["z_count"]:
        mask = (pl.col(column) - b["mean"]).abs() > 3 * b["std"]
        out.append(
            Issue(
                "low",
                column,
                "outliers_zscore",
                round(b["z_count"] / b["n"], 6),
                3.0,
                int(b["z_count"]),
                examples(mask, column),
                f"{b['z_count']} value(s) more than 3 standard deviations from the mean {b['mean']:.4g}",
            )
        )
    return out


def folded(text: pl.Expr) -> pl.Expr:
    """Text compared without case or surrounding spaces (``' Basic '`` and ``basic`` are one)."""
    return text.str.strip_chars().str.to_lowercase()


def category_variant_issues(rows: pl.LazyFrame, blueprint: Blueprint) -> list[Issue]:
    """A low issue per category field whose values differ only by case or surrounding spaces.

    ``basic``, ``Basic`` and `` basic `` are one category written three ways; charts count
    them as one, and the issue lists the spellings so the source can be fixed.
    """
    fields = [f.name for f in blueprint.fields if f.kind == "category"]
    if not fields:
        return []
    found = []
    for name in fields:
        spellings = (
            rows.select(pl.col(name).alias("v"), folded(pl.col(name)).alias("k"))
            .drop_nulls()
            .group_by("k", "v")
            .len()
            .collect(engine="streaming")
        )
        groups = (
            spellings.group_by("k")
            .agg(pl.col("v").sort(), pl.col("len").sum())
            .filter(pl.col("v").list.len() > 1)
        )
        if groups.height == 0:
            continue
        groups = groups.sort("len", descending=True)
        shown = "; ".join(
            " / ".join(repr(v) for v in vs) for vs in groups.get_column("v").head(3).to_list()
        )
        rows_affected = int(groups.get_column("len").sum())
        found.append(
            Issue(
                severity="low",
                column=name,
                check="inconsistent_case",
                observed=float(groups.height),
                threshold=None,
                rows_affected=rows_affected,
                examples=[
                    {"value": " / ".join(vs)} for vs in groups.get_column("v").head(5).to_list()
                ],
                message=(
                    f"{name}: {groups.height} value(s) written several ways that differ only by "
                    f"case or spaces ({shown}); counted as one in charts"
                ),
            )
        )
    return found


def _named(issue: Issue) -> str:
    return f"{issue.check} on {issue.column}" if issue.column else issue.check


def gate(issues: Sequence[Issue], score: float, thresholds: Thresholds) -> list[str]:
    """Why the run must stop (empty when it may go on): any critical, too many high, a low score.

    Each reason names the issues (check and column) behind it, most decisive first.
    """
    failures = []
    critical = [i for i in issues if i.severity == "critical"]
    high = [i for i in issues if i.severity == "high"]
    if critical:
        failures.append(
            f"{len(critical)} critical issue(s): "
            + "; ".join(f"{_named(i)}: {i.message}" for i in critical)
        )
    if len(high) > thresholds.max_high:
        failures.append(
            f"{len(high)} high issues (at most {thresholds.max_high} allowed: "
            + ", ".join(_named(i) for i in high)
            + ")"
        )
    if score < thresholds.min_score:
        worst = [i for i in issues if Severity(i.severity).rank <= Severity.HIGH.rank][:5]
        behind = f" ({', '.join(_named(i) for i in worst)})" if worst else ""
        failures.append(f"quality score {score:.1f} is under {thresholds.min_score:g}{behind}")
    return failures


def raise_for_gate(result: QualityResult, path: str | Path | None = None) -> None:
    """Raise :class:`QualityGateError` listing the failures and issues when the gate is shut."""
    if result.passed:
        return
    where = f"{path}: " if path else ""
    msg = f"{where}quality gate failed: " + "; ".join(result.gate_failures)
    raise QualityGateError(msg, issues=result.issues, path=path)


# --------------------------------------------------------------------------- public helpers


def validate(
    path_or_frame: str | Path | pl.DataFrame | pl.LazyFrame,
    blueprint: str | Blueprint,
    *,
    config: Config | dict[str, Any] | str | Path | None = None,
) -> QualityResult:
    """Check a file or frame against a blueprint without writing anything.

    Parameters
    ----------
    path_or_frame
        A file path (read with :func:`read_table`, bad lines quarantined) or a polars frame.
    blueprint
        A blueprint name or object.
    config
        A :class:`Config`, a dict of its fields, or a JSON/YAML file.

    Returns
    -------
    QualityResult
        Score, parts, issues, counts, valid rows and quarantine; ``passed`` tells the gate.

    Raises
    ------
    CompatibilityError
        When required fields are missing (with suggestions).
    IngestError
        When the file cannot be read.
    """
    cfg = load_config(config)
    bp = get_blueprint(blueprint)
    if isinstance(path_or_frame, (str, Path)):
        return assess_ingested(read_file(path_or_frame, cfg, blueprint=bp), bp, config=cfg)
    frame = path_or_frame.lazy()
    names = frame.collect_schema().names()
    columns = [c for c in names if c not in ("source_row", "source_line")]
    if "source_row" not in names:
        frame = frame.with_row_index("source_row", offset=1).with_columns(
            pl.col("source_row").cast(pl.Int64),
            pl.lit(None, dtype=pl.Int64).alias("source_line"),
        )
    frame = frame.with_columns(pl.col(c).cast(pl.String) for c in columns)
    mapping = match_columns(columns, bp, cfg.column_map)
    return assess(frame.rename(mapping), bp, config=cfg, column_map=mapping)


def assess_ingested(
    ing: Ingested,
    blueprint: Blueprint,
    *,
    config: Config,
    run_date: dt.date | None = None,
    work_dir: str | Path | None = None,
) -> QualityResult:
    """Map an ingested file's columns onto the blueprint, then :func:`assess` it (staging in ``work_dir``)."""
    path = Path(ing.info.path)
    mapping = match_columns(ing.info.columns, blueprint, config.column_map, path=path)
    return assess(
        ing.frame.rename(mapping),
        blueprint,
        config=config,
        rejects=ing.rejects,
        decimal=ing.info.decimal or ".",
        run_date=run_date,
        column_map=mapping,
        path=path,
        work_dir=work_dir,
    )


def check_compatible(path: str | Path, blueprint: Blueprint, config: Config) -> dict[str, str]:
    """Read ``path`` as a run would and map its columns onto ``blueprint``; return the renames.

    Runs that start a notebook kernel call this first, so that an unreadable file or a bad
    mapping is reported in a second, before any kernel starts.
    """
    ing = read_file(path, config, blueprint=blueprint)
    return match_columns(ing.info.columns, blueprint, config.column_map, path=path)


def fits_blueprint(blueprint: Blueprint, config: Config) -> Callable[[list[str]], bool]:
    """Whether a header row maps onto the blueprint's required fields (used to pick a sheet)."""

    def fits(columns: list[str]) -> bool:
        try:
            match_columns(columns, blueprint, config.column_map)
        except TracerError:
            return False
        return True

    return fits


def read_file(
    path: str | Path,
    config: Config,
    staging_dir: str | Path | None = None,
    *,
    blueprint: Blueprint | None = None,
) -> Ingested:
    """:func:`read_table` with the input options of a :class:`Config` (and the blueprint's sheet choice)."""
    return read_table(
        path,
        format=config.format,
        encoding=config.encoding,
        delimiter=config.delimiter,
        sheet=config.sheet,
        max_bytes=config.max_bytes,
        on_bad_lines=config.on_bad_lines,
        staging_dir=staging_dir,
        sheet_fits=fits_blueprint(blueprint, config) if blueprint is not None else None,
    )


# --------------------------------------------------------------------------- profiles


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


def column_profiles(
    df: pl.DataFrame | pl.LazyFrame, columns: Sequence[str] | None = None, *, bins: int = 20
) -> pl.DataFrame:
    """Per column: dtype, nulls, distinct, min, max, mean, median and a histogram (JSON lists).

    Numeric and date columns get ``bins`` equal-width bins over their 0.5th-99.5th
    percentiles, the tails counted in the end bins (so one extreme value does not squash
    every other bar into one bin); text columns their ten most frequent values
    (``hist_edges`` holds the values). Counts, means, minima and maxima are exact; above
    1,000,000 rows ``distinct`` is HyperLogLog's estimate and the median and histogram range
    come from an even spread of 1,000,000 rows (the histogram still counts every row). A
    lazy frame (a Parquet scan) is read in streaming passes, never whole.
    """
    lf = df.lazy()
    schema = lf.collect_schema()
    names = list(columns or schema.names())
    height = lf.select(pl.len()).collect().item()
    exact = height <= settings.exact_distinct_rows
    # order statistics (median, histogram range) from a spread of rows on big frames:
    # sorting every column of tens of millions of rows costs more than the rest together
    ordered = spread(lf, settings.exact_distinct_rows, rows=height)
    exprs: list[pl.Expr] = []
    order_exprs: list[pl.Expr] = []
    for name in names:
        dtype = schema[name]
        col = pl.col(name)
        if dtype.is_float():
            col = pl.when(col.is_finite()).then(col)
        distinct = col.drop_nulls().n_unique() if exact else col.drop_nulls().approx_n_unique()
        exprs += [
            pl.col(name).null_count().alias(f"{name}\x00nulls"),
            distinct.alias(f"{name}\x00distinct"),
            col.min().cast(pl.String).alias(f"{name}\x00min"),
            col.max().cast(pl.String).alias(f"{name}\x00max"),
        ]
        if dtype.is_numeric() or dtype.is_temporal():
            v = col.cast(pl.Int64).cast(pl.Float64) if dtype.is_temporal() else col.cast(pl.Float64)
            exprs += [
                v.mean().alias(f"{name}\x00mean"),
                v.min().alias(f"{name}\x00vmin"),
                v.max().alias(f"{name}\x00vmax"),
            ]
            order_exprs += [
                v.median().alias(f"{name}\x00median"),
                v.quantile(0.005, "linear").alias(f"{name}\x00lo"),
                v.quantile(0.995, "linear").alias(f"{name}\x00hi"),
            ]
    stats = lf.select(exprs).collect(engine="streaming").row(0, named=True) if exprs else {}
    if order_exprs:
        stats.update(ordered.select(order_exprs).collect(engine="streaming").row(0, named=True))
    rows = []
    bin_queries: dict[str, pl.LazyFrame] = {}
    for name in names:
        dtype = schema[name]
        get = lambda key, n=name: stats.get(f"{n}\x00{key}")  # noqa: E731
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
            lo, hi = get("lo"), get("hi")
            if hi <= lo:
                lo, hi = get("vmin"), get("vmax")
            v = (
                pl.col(name).cast(pl.Int64).cast(pl.Float64)
                if dtype.is_temporal()
                else pl.col(name).cast(pl.Float64)
            )
            if dtype.is_float():
                v = pl.when(v.is_finite()).then(v)
            width = (hi - lo) or 1.0
            index = ((v.clip(lo, hi) - lo) / width * bins).floor().clip(0, bins - 1)
            bin_queries[name] = (
                lf.select(index.cast(pl.Int32).alias("i")).drop_nulls().group_by("i").len()
            )
            row["hist_edges"] = json.dumps(
                [float(e) for e in np.linspace(lo, lo + width, bins + 1)]
            )
        elif get("distinct") and get("distinct") <= 0.5 * (height - get("nulls")):
            # (identifier-like columns, mostly distinct values, have no top values worth counting)
            # spellings that differ only by case or spaces count as one value, shown in the
            # most frequent spelling
            text = pl.col(name).cast(pl.String)
            top = (
                lf.select(text.alias(name), folded(text).alias("__k"))
                .drop_nulls()
                .group_by("__k", name)
                .len()
                .group_by("__k")
                .agg(pl.col(name).sort_by("len", descending=True).first(), pl.col("len").sum())
                .sort(["len", name], descending=[True, False])
                .head(10)
                .collect(engine="streaming")
            )
            row["hist_edges"] = json.dumps(top.get_column(name).to_list())
            row["hist_counts"] = json.dumps(top.get_column("len").to_list())
        rows.append(row)
    if bin_queries:  # one small group-by per column, run together
        counted = pl.collect_all(list(bin_queries.values()), engine="streaming")
        by_column = dict(zip(bin_queries, counted, strict=True))
        for row in rows:
            if row["column"] in by_column:
                by_bin = dict(by_column[row["column"]].iter_rows())
                row["hist_counts"] = json.dumps([int(by_bin.get(i, 0)) for i in range(bins)])
    return pl.DataFrame(rows, schema=PROFILE_SCHEMA)


def _short_number(text: str | None) -> str | None:
    """Floats printed with six significant digits; other values as they are."""
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return text
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
        from tracer_kit.report import html_table

        shown = self.columns.select(
            "column", "dtype", "nulls", "distinct", "min", "max", "mean", "median"
        )
        return (
            f"<p><b>{html.escape(self.info.path)}</b>: {self.info.row_count:,} rows, "
            f"{len(self.columns)} columns ({self.rejects:,} rejected at ingest)</p>"
            + html_table(shown.to_dicts(), shown.columns)
        )


def infer_types(
    frame: pl.DataFrame | pl.LazyFrame, columns: Sequence[str], *, decimal: str = "."
) -> pl.LazyFrame:
    """Cast text columns to the narrowest type every non-empty value fits: int, float, date, else text.

    With ``decimal=","`` numbers written with decimal commas count as floats. Decided by two
    aggregate passes (numbers, then dates for what is left), so ``frame`` may be a scan of a
    file bigger than memory; returns the lazy plan of the typed columns.
    """
    lf = frame.lazy()
    texts = {}
    exprs = []
    for c in columns:
        text = pl.col(c).str.strip_chars()
        if decimal == ",":
            text = text.str.replace(",", ".", literal=True)
        texts[c] = text
        present = text.is_not_null() & (text != "")
        exprs += [
            present.sum().alias(f"{c}\x00n"),
            (present & text.cast(pl.Int64, strict=False).is_null()).sum().alias(f"{c}\x00int"),
            (present & text.cast(pl.Float64, strict=False).is_null()).sum().alias(f"{c}\x00float"),
        ]
    counts = lf.select(exprs).collect(engine="streaming").row(0, named=True) if exprs else {}
    chosen: dict[str, pl.Expr] = {}
    maybe_dates = []
    for c in columns:
        if not counts[f"{c}\x00n"]:
            continue  # nothing to go by: stays text
        if counts[f"{c}\x00int"] == 0:
            chosen[c] = texts[c].cast(pl.Int64, strict=False)
        elif counts[f"{c}\x00float"] == 0:
            chosen[c] = texts[c].cast(pl.Float64, strict=False)
        else:
            maybe_dates.append(c)
    conventions = date_conventions(lf, maybe_dates)
    parsed = {c: _parse_date(c, conventions[c])[0] for c in maybe_dates}
    if parsed:
        bad = (
            lf.select((_present(c) & value.is_null()).sum().alias(c) for c, value in parsed.items())
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
        typed = infer_types(
            pl.scan_parquet(text), ing.info.columns, decimal=ing.info.decimal or "."
        )
        columns = column_profiles(typed)
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
