"""Typing text: numbers (decimal marks, thousands separators), dates (conventions), null tokens.

Every value is cast from text by an expression that also says why a present value did not
cast (``invalid_number``, ``invalid_date``, ``ambiguous_date``, ``invalid_format``); a column
already in canonical form (a *clean* column) is typed by one plain cast instead.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from tracer_kit.blueprints import DATE_CONVENTIONS, Blueprint, Field
from tracer_kit.blueprints.constraints import folded_text as folded
from tracer_kit.quality.names import Aggregates, Scratch

__all__ = [
    "BOOL_FALSE",
    "BOOL_TRUE",
    "DATETIME_FORMATS",
    "MONTH_NAME_FORMATS",
    "NULL_TOKENS",
    "Typed",
    "cast_fields",
    "clean_columns",
    "dirty_counts",
    "date_conventions",
    "date_readings",
    "folded",
    "parse_date",
    "plain_iso_columns",
    "plain_iso_date",
    "present",
]

#: The labels a date field's format column holds: ISO, each slash convention, month names.
ISO_DATE = "%Y-%m-%d"
SLASH_DATES = {"dmy": "%d/%m/%Y", "mdy": "%m/%d/%Y"}
MONTH_NAME = "month-name"

MONTH_NAME_FORMATS = ("%b %d %Y", "%b %d, %Y", "%B %d %Y", "%B %d, %Y", "%d %b %Y", "%d %B %Y")
_ISO = r"^\d{4}-\d{2}-\d{2}(?:[T ].*)?$"
_SLASH = r"^(\d{1,2})/(\d{1,2})/(\d{4})$"

#: Values that mean "no value" (compared case-insensitively after stripping spaces): a
#: null in an optional field, ``missing_required`` in a required one.
NULL_TOKENS = ("", "na", "n/a", "null", "none", "nan", "-")


def _spellings(token: str) -> list[str]:
    """Every upper/lower-case spelling of an ASCII token (``na``: na, nA, Na, NA)."""
    letters = [sorted({c.lower(), c.upper()}) for c in token]
    return ["".join(p) for p in itertools.product(*letters)]


#: The null tokens in every case (50 strings): ``is_in`` on them reads each value as it is,
#: where lower-casing first wrote a copy of every value (1 GB churn id column: 0.85 s -> 0.25
#: s). Exact: no non-ASCII character lower-cases to a letter of a token.
NULL_SPELLINGS = tuple(sorted({s for t in NULL_TOKENS for s in _spellings(t)}))


def present(name: str) -> pl.Expr:
    """Whether a text column holds a value: not null, not empty, not a null token."""
    raw = pl.col(name).str.strip_chars()
    return raw.is_not_null() & ~raw.is_in(NULL_SPELLINGS)


def _plain_iso_counts(agg: Aggregates, columns: Sequence[str]) -> None:
    for c in columns:
        agg.add(c, "not_plain", (present(c) & plain_iso_date(c).is_null()).sum(), "sum")


def _convention_evidence(agg: Aggregates, columns: Sequence[str]) -> None:
    for c in columns:
        raw = pl.col(c).str.strip_chars()
        parts = raw.filter(raw.str.contains("/", literal=True)).str.extract_groups(_SLASH)
        first = parts.struct.field("1").cast(pl.Int32, strict=False)
        second = parts.struct.field("2").cast(pl.Int32, strict=False)
        # a value impossible both ways (13/13/2023) is invalid, not evidence for either order
        agg.add(c, "day_first", ((first > 12) & (first <= 31) & (second <= 12)).any(), "max")
        agg.add(c, "month_first", ((second > 12) & (second <= 31) & (first <= 12)).any(), "max")


def _convention(found: dict[str, Any]) -> str | None:
    day_first, month_first = bool(found["day_first"]), bool(found["month_first"])
    if day_first and not month_first:
        return "dmy"
    return "mdy" if month_first and not day_first else None


def plain_iso_columns(frame: pl.LazyFrame, columns: Sequence[str]) -> set[str]:
    """The date columns whose every present value is a plain ``YYYY-MM-DD`` date (the fast path)."""
    if not columns:
        return set()
    agg = Aggregates()
    _plain_iso_counts(agg, columns)
    return {c for c, found in agg.collect(frame).items() if found["not_plain"] == 0}


def date_conventions(frame: pl.LazyFrame, columns: Sequence[str]) -> dict[str, str | None]:
    """Per date column: ``"dmy"``, ``"mdy"`` or None (ambiguous) from its slash-formatted values.

    Day-first when any value's first part is over 12 (and its second a month), month-first
    when any second part is (and its first a month); ambiguous when neither or both. A value
    impossible both ways (``13/13/2023``) is evidence for neither (it is quarantined).
    """
    if not columns:
        return {}
    agg = Aggregates()
    _convention_evidence(agg, columns)
    found = agg.collect(frame)
    return {c: _convention(found[c]) for c in columns}


def date_readings(frame: Any, columns: Sequence[str]) -> tuple[set[str], dict[str, str | None]]:
    """:func:`plain_iso_columns` and :func:`date_conventions` of the other columns, in one pass."""
    if not columns:
        return set(), {}
    agg = Aggregates()
    _plain_iso_counts(agg, columns)
    _convention_evidence(agg, columns)
    found = agg.collect(frame)
    plain = {c for c in columns if found[c]["not_plain"] == 0}
    return plain, {c: _convention(found[c]) for c in columns if c not in plain}


def plain_iso_date(name: str) -> pl.Expr:
    """A text column read as ``YYYY-MM-DD`` dates (anything else null)."""
    return pl.col(name).str.strip_chars().str.strptime(pl.Date, "%Y-%m-%d", strict=False)


def _parse_plain_iso(name: str) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    """(value, reason, format) for a column known to hold only ``YYYY-MM-DD`` dates."""
    value = plain_iso_date(name)
    reason = pl.when(present(name) & value.is_null()).then(pl.lit("invalid_date"))
    fmt = pl.when(value.is_not_null()).then(pl.lit(ISO_DATE))
    return value.alias(name), reason, fmt


def _parse_declared(name: str, fmt: str) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    """(value, reason, format) for a date column whose format the blueprint declares."""
    value = pl.col(name).str.strip_chars().str.strptime(pl.Date, fmt, strict=False)
    reason = pl.when(present(name) & value.is_null()).then(pl.lit("invalid_date"))
    return value.alias(name), reason, pl.when(value.is_not_null()).then(pl.lit(fmt))


def _slash_label(convention: str | None) -> str:
    """The format label of a slash date read under ``convention`` (undecided: day first)."""
    return SLASH_DATES["mdy" if convention == "mdy" else "dmy"]


def parse_date(name: str, convention: str | None) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    """(value, failure reason, format used) for one date column given its slash convention."""
    raw = pl.col(name).str.strip_chars()
    iso = pl.when(raw.str.contains(_ISO)).then(
        raw.str.slice(0, 10).str.strptime(pl.Date, "%Y-%m-%d", strict=False)
    )
    parts = raw.str.extract_groups(_SLASH)
    is_slash = raw.str.contains(_SLASH)
    a = parts.struct.field("1").cast(pl.Int32, strict=False)
    b = parts.struct.field("2").cast(pl.Int32, strict=False)
    dmy = raw.str.strptime(pl.Date, SLASH_DATES["dmy"], strict=False)
    mdy = raw.str.strptime(pl.Date, SLASH_DATES["mdy"], strict=False)
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
        .then(pl.lit(ISO_DATE))
        .when(slash.is_not_null())
        .then(pl.lit(_slash_label(convention)))
        .when(named.is_not_null())
        .then(pl.lit(MONTH_NAME))
    )
    reason = pl.when(present(name) & value.is_null()).then(
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


#: Spellings of true and false a ``bool`` field reads (compared without case or spaces).
BOOL_TRUE = ("true", "t", "yes", "y", "1")
BOOL_FALSE = ("false", "f", "no", "n", "0")

#: Timestamps a ``datetime`` field reads without a declared format, tried in order.
DATETIME_FORMATS = (
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d",
)


def _parse_number(
    f: Field, raw: pl.Expr, has_value: pl.Expr, decimal: str
) -> tuple[pl.Expr, pl.Expr]:
    number = _plain_number(raw, decimal).cast(pl.Float64, strict=False)
    number = pl.when(number.is_finite()).then(number)
    if f.kind == "int":
        whole = (number == number.floor()) & (number.abs() < 2**53)
        value = pl.when(whole).then(number.cast(pl.Int64, strict=False))
    else:
        value = number
    return value, pl.when(has_value & value.is_null()).then(pl.lit("invalid_number"))


def _parse_bool(raw: pl.Expr, has_value: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    word = raw.str.to_lowercase()
    value = pl.when(word.is_in(BOOL_TRUE)).then(True).when(word.is_in(BOOL_FALSE)).then(False)
    return value, pl.when(has_value & value.is_null()).then(pl.lit("invalid_boolean"))


def _parse_datetime(f: Field, raw: pl.Expr, has_value: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    formats = (f.format,) if f.format and "%" in f.format else DATETIME_FORMATS
    value = pl.coalesce([raw.str.strptime(pl.Datetime("us"), fmt, strict=False) for fmt in formats])
    return value, pl.when(has_value & value.is_null()).then(pl.lit("invalid_datetime"))


def _parse_text(f: Field, raw: pl.Expr, has_value: pl.Expr) -> pl.Expr:
    """The text value; with ``allowed`` and ``ignore_case``, spelled as the blueprint declares it."""
    value = pl.when(has_value).then(raw)
    if f.allowed is not None and f.ignore_case:
        spelled = {v.strip().lower(): v for v in reversed(f.allowed)}
        value = pl.when(has_value).then(
            raw.str.to_lowercase().replace_strict(spelled, default=raw, return_dtype=pl.String)
        )
    return value


def _parse_value(f: Field, decimal: str) -> tuple[pl.Expr, pl.Expr]:
    """(typed value, failure reason) for a non-date field; the reason is null when the value is fine.

    A text value's constraints (its pattern, length, allowed values) are checked by the
    validity check from the constraint table, not here.
    """
    raw = pl.col(f.name).str.strip_chars()
    has_value = present(f.name)
    if f.kind in ("float", "int"):
        value, reason = _parse_number(f, raw, has_value, decimal)
    elif f.kind == "bool":
        value, reason = _parse_bool(raw, has_value)
    elif f.kind == "datetime":
        value, reason = _parse_datetime(f, raw, has_value)
    else:
        value, reason = _parse_text(f, raw, has_value), pl.lit(None, dtype=pl.String)
    return value.alias(f.name), reason


def fast_value(f: Field) -> pl.Expr:
    """The typed value of a *clean* column: one cast, no stripping (see :func:`clean_columns`)."""
    col = pl.col(f.name)
    if f.kind == "date":
        return col.str.strptime(pl.Date, "%Y-%m-%d", strict=False)
    if f.kind == "float":
        return col.cast(pl.Float64, strict=False)
    if f.kind == "int":
        return col.cast(pl.Int64, strict=False)
    return col


def _may_be_clean(f: Field, decimal: str) -> bool:
    """Whether one plain cast can ever type ``f`` (no pattern, format, spelling or default to apply)."""
    if f.kind in ("bool", "datetime") or f.format is not None or f.default is not None:
        return False
    if f.allowed is not None and f.ignore_case:
        return False
    return f.full_pattern is None and not (f.is_numeric and decimal == ",")


def dirty_counts(fields: Sequence[Field], decimal: str) -> Aggregates:
    """Per field, how many non-null values are not in canonical form (0: the column is *clean*).

    Canonical: no surrounding whitespace, not empty, and (for numbers and dates) read by a
    single cast: plain integers within 2**53, finite ``.``-decimal floats, ``YYYY-MM-DD``
    dates, and no pattern to match. Typing a clean column is that one cast, with nothing to
    flag, so the checks that strip and re-parse every value are skipped for it. Fields with
    a pattern, and numbers with decimal commas, are never clean.
    """
    agg = Aggregates()
    for f in fields:
        if not _may_be_clean(f, decimal):
            continue
        col = pl.col(f.name)
        value = fast_value(f)
        if f.kind == "float":
            ok = value.is_finite()
        elif f.kind == "int":
            ok = value.abs() < 2**53
        elif f.kind == "date":
            ok = value.is_not_null()
        else:
            ok = ~col.is_in(NULL_SPELLINGS) & ~col.str.contains(r"^\s|\s$")
        agg.add(f.name, "dirty", (col.is_not_null() & ~ok.fill_null(False)).sum(), "sum")
    return agg


def clean_columns(counts: dict[str, dict[str, int]]) -> set[str]:
    """The fields :func:`dirty_counts` found in canonical form."""
    return {name for name, v in counts.items() if v["dirty"] == 0}


# --------------------------------------------------------------------------- assessment


@dataclass(frozen=True)
class Typed:
    """The rows with every field cast from text, and how the dates were read.

    ``frame`` holds ``source_row``, ``source_line``, per field the scratch columns
    ``Scratch.CAST`` (why it did not cast) and ``Scratch.PRESENT``, per date field
    ``Scratch.FORMAT``, the typed fields, then the extra columns as text.

    ``derived`` holds, per clean field, its scratch columns as expressions of its typed
    value (a clean value casts, so it is present exactly when its typed value is not null):
    the checked rows need not be written with them, and read them back computed.
    """

    frame: pl.LazyFrame
    plain_iso: frozenset[str]  # date fields read as plain YYYY-MM-DD
    conventions: dict[str, str | None]  # the other date fields' slash conventions
    derived: dict[str, list[pl.Expr]] = field(default_factory=dict)
    #: Per date field, the labels its format column can hold (as :func:`_field_columns` reads them).
    formats: dict[str, tuple[str, ...]] = field(default_factory=dict)


#: A date field's format column and every label it can hold (the counts read them).
DateFormat = tuple[pl.Expr, tuple[str, ...]]


def _field_columns(
    f: Field, *, clean: bool, plain: bool, convention: str | None, decimal: str
) -> tuple[pl.Expr, list[pl.Expr], DateFormat | None]:
    """(typed value, [cast reason, present flag], date format and its labels, or None)."""
    if clean:  # one cast, nothing to flag
        value = fast_value(f).alias(f.name)
        flags = [
            pl.lit(None, dtype=pl.String).alias(Scratch.CAST.of(f.name)),
            pl.col(f.name).is_not_null().alias(Scratch.PRESENT.of(f.name)),
        ]
        fmt = pl.when(pl.col(f.name).is_not_null()).then(pl.lit(ISO_DATE))
        date = (fmt.alias(Scratch.FORMAT.of(f.name)), (ISO_DATE,))
        return value, flags, date if f.kind == "date" else None
    date = None
    if f.kind == "date":
        if f.format is not None and "%" in f.format:
            value, reason, fmt = _parse_declared(f.name, f.format)
            labels: tuple[str, ...] = (f.format,)
        elif plain:
            value, reason, fmt = _parse_plain_iso(f.name)
            labels = (ISO_DATE,)
        else:
            value, reason, fmt = parse_date(f.name, convention)
            labels = (ISO_DATE, _slash_label(convention), MONTH_NAME)
        date = (fmt.alias(Scratch.FORMAT.of(f.name)), labels)
    else:
        value, reason = _parse_value(f, decimal)
    flags = [
        reason.alias(Scratch.CAST.of(f.name)),
        present(f.name).alias(Scratch.PRESENT.of(f.name)),
    ]
    return value, flags, date


def _with_defaults(text: pl.LazyFrame, blueprint: Blueprint) -> pl.LazyFrame:
    """Each field with a ``default``: its missing values read as that text."""
    filled = [
        pl.when(present(f.name)).then(pl.col(f.name)).otherwise(pl.lit(f.default)).alias(f.name)
        for f in blueprint.fields
        if f.default is not None
    ]
    return text.with_columns(filled) if filled else text


def cast_fields(
    text: pl.LazyFrame,
    blueprint: Blueprint,
    *,
    clean: set[str],
    extras: Sequence[str],
    decimal: str,
) -> Typed:
    """Type every field of ``text`` (all fields present, as text), flagging each failed cast.

    Date conventions are decided first (small aggregates over the date columns); the result
    is a plan, not a file: the checks add their flags to it and everything is written once.
    """
    text = _with_defaults(text, blueprint)
    declared = {f.name: f.format for f in blueprint.fields if f.kind == "date" and f.format}
    date_fields = [f.name for f in blueprint.fields if f.kind == "date" and f.name not in declared]
    plain = clean & set(date_fields)
    found_plain, conventions = date_readings(text, [c for c in date_fields if c not in plain])
    plain |= found_plain | {n for n, fmt in declared.items() if DATE_CONVENTIONS.get(fmt) == "iso"}
    conventions.update(
        {
            n: DATE_CONVENTIONS[fmt]
            for n, fmt in declared.items()
            if fmt in ("day_first", "month_first")
        }
    )
    values, flags, formats = [], [], []
    derived: dict[str, list[pl.Expr]] = {}
    labels: dict[str, tuple[str, ...]] = {}
    for f in blueprint.fields:
        value, field_flags, date = _field_columns(
            f,
            clean=f.name in clean,
            plain=f.name in plain,
            convention=conventions.get(f.name),
            decimal=decimal,
        )
        values.append(value)
        flags.extend(field_flags)
        fmt = [] if date is None else [date[0]]
        formats.extend(fmt)
        if date is not None:
            labels[f.name] = date[1]
        if f.name in clean:
            derived[f.name] = [*field_flags, *fmt]
    frame = text.select("source_row", "source_line", *flags, *formats, *values, *extras)
    return Typed(frame, frozenset(plain), conventions, derived, labels)
