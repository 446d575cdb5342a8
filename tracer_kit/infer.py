"""A contract drafted from the data: ``tracer infer SOURCE`` / :func:`infer`.

The source is read by the same readers as a run (files, databases, APIs) and profiled:
every count (nulls, distinct values, minimum and maximum, how many values match a format)
comes from the whole source, in streaming passes over a typed Parquet copy; the shapes an
identifier's values take are learnt from an even sample of at most :data:`SAMPLE_ROWS`
values, then checked against every value. The draft is YAML with each decision's evidence
in a comment (``# 0 nulls in 9,994 rows``), ready to be read, edited and run; the same
source always gives the same draft.
"""

from __future__ import annotations

import json
import math
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from tracer_kit.blueprints import NAME_PATTERN
from tracer_kit.blueprints.constraints import KIND_PATTERNS
from tracer_kit.config import Config, load_config
from tracer_kit.errors import ConfigError, IngestError
from tracer_kit.profiling import infer_types
from tracer_kit.quality.assess import read_file
from tracer_kit.quality.casting import BOOL_FALSE, BOOL_TRUE, date_conventions, plain_iso_columns
from tracer_kit.quality.matching import normalise_name

__all__ = ["MAX_COLUMNS", "SAMPLE_ROWS", "DraftField", "draft_fields", "infer"]

#: Most values read to learn an identifier's shape (the whole source still checks it).
SAMPLE_ROWS = 10_000
#: Widest source a draft is written for: a contract of more fields is not reviewable.
MAX_COLUMNS = 1_000
#: A text column with at most this many distinct values (each seen at least twice on
#: average) becomes a category with its allowed values.
MAX_CATEGORIES = 20

#: Column names (normalised) that hold personal data besides emails and phones.
_PERSONAL_NAMES = re.compile(
    r"(customername|firstname|lastname|fullname|surname|givenname|contactname|^name$|"
    r"address|street|postcode|zipcode|birth|dob|ssn|passport|iban|ipaddress)"
)
_ID_NAMES = re.compile(r"(id|key|code|number|no|ref|reference|uuid|guid)$")
_DATETIME = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$"


@dataclass
class DraftField:
    """One drafted field: its declaration (contract keys) and the evidence for each choice."""

    name: str
    column: str
    spec: dict[str, Any] = field(default_factory=dict)
    evidence: list[str] = field(default_factory=list)


def _field_name(column: str, taken: set[str]) -> str:
    base = re.sub(r"[^a-z0-9]+", "_", column.strip().lower()).strip("_") or "column"
    if not base[0].isalpha():
        base = f"c_{base}"
    base = base[:40]
    name, n = base, 2
    while name in taken:
        name, n = f"{base}_{n}", n + 1
    taken.add(name)
    return name


def _n(value: int) -> str:
    return f"{value:,}"


def _round_bound(value: float, *, upper: bool) -> float:
    """A round bound at or beyond ``value``: 0, 1, or a power of ten."""
    if value == 0:
        return 0
    magnitude = 10 ** math.ceil(math.log10(abs(value)))
    if upper:
        return magnitude if value > 0 else 0
    return -magnitude if value < 0 else 0


def _range(spec: dict[str, Any], kind: str, low: float, high: float) -> str:
    """``ge``/``le`` widened from the observed minimum and maximum; the evidence."""
    if kind == "int" and low >= 1:
        spec["ge"] = 1
    else:
        spec["ge"] = _round_bound(low, upper=False)
    if kind == "float" and 0 <= low and high <= 1:
        spec["le"] = 1
    else:
        spec["le"] = _round_bound(high, upper=True)
    if kind == "int":
        spec["ge"], spec["le"] = int(spec["ge"]), int(spec["le"])
    shown = [f"{v:g}" if isinstance(v, float) else str(v) for v in (low, high)]
    return f"min {shown[0]}, max {shown[1]}"


_REGEX_SPECIAL = set(".^$*+?{}[]\\|()")


def _shape(value: str) -> str:
    """A value's shape as a regex: runs of upper letters, lower letters and digits by length."""
    out = []
    for run in re.finditer(r"[A-Z]+|[a-z]+|[0-9]+|.", value):
        text = run.group(0)
        if text.isdigit():
            out.append(rf"\d{{{len(text)}}}")
        elif text.isupper():
            out.append(f"[A-Z]{{{len(text)}}}")
        elif text.islower():
            out.append(f"[a-z]{{{len(text)}}}")
        else:
            out.append("\\" + text if text in _REGEX_SPECIAL else text)
    return "^" + "".join(out) + "$"


def _identifier_pattern(sample: pl.Series) -> str | None:
    """One shape every sampled value has, when it has structure (letters with digits, or a separator)."""
    shapes = {_shape(v) for v in sample.drop_nulls().unique().sort().to_list()[:SAMPLE_ROWS]}
    if len(shapes) != 1:
        return None
    (shape,) = shapes
    has_digit = r"\d" in shape
    has_letter_or_mark = "[A-Z]" in shape or "[a-z]" in shape or re.search(r"[-_/.]", shape)
    return shape if has_digit and has_letter_or_mark else None


def _text_counts(text: pl.LazyFrame, columns: Sequence[str]) -> dict[str, dict[str, int]]:
    """Per text column: values matching each format (email, url, phone, bool, datetime)."""
    exprs = []
    for c in columns:
        value = pl.col(c).str.strip_chars()
        word = value.str.to_lowercase()
        exprs.extend(
            [
                value.str.contains(KIND_PATTERNS["email"]).sum().alias(f"{c}\x00email"),
                value.str.contains(KIND_PATTERNS["url"]).sum().alias(f"{c}\x00url"),
                value.str.contains(KIND_PATTERNS["phone"]).sum().alias(f"{c}\x00phone"),
                word.is_in([*BOOL_TRUE, *BOOL_FALSE]).sum().alias(f"{c}\x00bool"),
                value.str.contains(_DATETIME).sum().alias(f"{c}\x00datetime"),
            ]
        )
    if not exprs:
        return {}
    row = text.select(exprs).collect(engine="streaming").row(0, named=True)
    out: dict[str, dict[str, int]] = {}
    for key, value in row.items():
        column, what = key.split("\x00")
        out.setdefault(column, {})[what] = int(value or 0)
    return out


def _stats(typed: pl.LazyFrame, schema: pl.Schema) -> dict[str, dict[str, Any]]:
    exprs = []
    for c, dtype in schema.items():
        col = pl.col(c)
        exprs += [col.null_count().alias(f"{c}\x00nulls"), col.n_unique().alias(f"{c}\x00distinct")]
        if dtype.is_numeric() or dtype.is_temporal():
            exprs += [col.min().alias(f"{c}\x00min"), col.max().alias(f"{c}\x00max")]
        if dtype == pl.String:
            exprs.append(col.str.len_chars().max().alias(f"{c}\x00longest"))
    row = typed.select(exprs).collect(engine="streaming").row(0, named=True)
    out: dict[str, dict[str, Any]] = {}
    for key, value in row.items():
        column, what = key.split("\x00")
        out.setdefault(column, {})[what] = value
    return out


def _text_kind(
    d: DraftField, values: dict[str, int], present: int, distinct: int, unique: bool
) -> None:
    """Decide a text column's kind from how many present values match each format."""
    for kind, label in (("email", "emails"), ("url", "URLs"), ("phone", "phone numbers")):
        if present and values[kind] == present and not (kind == "phone" and unique):
            d.spec["kind"] = kind
            d.evidence.append(f"all {_n(present)} values are {label}")
            return
    if present and values["bool"] == present and distinct <= 2:
        d.spec["kind"] = "bool"
        d.evidence.append(f"all {_n(present)} values read as true/false")
        return
    if present and values["datetime"] == present:
        d.spec["kind"] = "datetime"
        d.evidence.append("all values are timestamps")
        return
    d.spec["kind"] = "string"


def _draft_one(
    d: DraftField,
    dtype: pl.DataType,
    stats: dict[str, Any],
    rows: int,
    text_counts: dict[str, int] | None,
) -> None:
    nulls, distinct = int(stats["nulls"]), int(stats["distinct"])
    present = rows - nulls
    distinct_present = distinct - (1 if nulls else 0)
    unique = present > 1 and distinct_present == present
    if dtype.is_integer():
        d.spec["kind"] = "int"
    elif dtype.is_float():
        d.spec["kind"] = "float"
    elif dtype == pl.Date:
        d.spec["kind"] = "date"
    else:
        _text_kind(d, text_counts or {}, present, distinct_present, unique)
    if nulls == 0 and rows:
        d.spec["required"] = True
    d.evidence.insert(0, f"{_n(nulls)} nulls in {_n(rows)} rows")
    kind = d.spec["kind"]
    looks_like_id = bool(_ID_NAMES.search(normalise_name(d.column)))
    if unique and kind in ("int", "string") and looks_like_id:
        d.spec["kind"] = "id"
        d.evidence.append(f"{_n(present)} distinct values")
    elif kind in ("int", "float") and stats.get("min") is not None:
        d.evidence.append(_range(d.spec, kind, float(stats["min"]), float(stats["max"])))
    elif (
        kind == "string"
        and 0 < distinct_present <= MAX_CATEGORIES
        and distinct_present * 2 <= present
    ):
        d.spec["kind"] = "category"
        d.evidence.append(f"{distinct_present} value{'s' if distinct_present > 1 else ''}")
    if kind in ("email", "phone") or _PERSONAL_NAMES.search(normalise_name(d.column)):
        d.spec["pii"] = True
        d.evidence.append("personal data")


@dataclass
class _Source:
    rows: int
    typed: pl.LazyFrame
    text: pl.LazyFrame
    columns: list[str]


def draft_fields(source: _Source, key: str | None = None) -> list[DraftField]:
    """Every column's drafted field, in the source's order."""
    schema = source.typed.collect_schema()
    stats = _stats(source.typed, schema)
    texts = [c for c in source.columns if schema[c] == pl.String]
    text_counts = _text_counts(source.text, texts)
    dates = [c for c in source.columns if schema[c] == pl.Date]
    plain = plain_iso_columns(source.text, dates)
    conventions = date_conventions(source.text, [c for c in dates if c not in plain])
    taken: set[str] = set()
    drafted = []
    for c in source.columns:
        d = DraftField(_field_name(c, taken), c)
        _draft_one(d, schema[c], stats[c], source.rows, text_counts.get(c))
        if c in dates:
            convention = "iso" if c in plain else conventions.get(c)
            named = {"dmy": "day_first", "mdy": "month_first", "iso": "iso"}.get(convention or "")
            if named:
                d.spec["format"] = named
                d.evidence.append(f"dates written {named.replace('_', ' ')}")
        drafted.append(d)
    _allowed_values(source.text, drafted)
    _patterns(source, drafted)
    _choose_identifier(drafted, key)
    return drafted


def _allowed_values(text: pl.LazyFrame, drafted: list[DraftField]) -> None:
    """A category's allowed values: its distinct values (stripped), sorted."""
    categories = [d for d in drafted if d.spec["kind"] == "category"]
    if not categories:
        return
    found = pl.collect_all(
        [
            text.select(pl.col(d.column).str.strip_chars().alias("v"))
            .drop_nulls()
            .filter(pl.col("v") != "")
            .unique()
            .sort("v")
            for d in categories
        ],
        engine="streaming",
    )
    for d, values in zip(categories, found, strict=True):
        d.spec["allowed"] = values.get_column("v").to_list()


def _patterns(source: _Source, drafted: list[DraftField]) -> None:
    """A shape for identifiers and codes, learnt from a sample and checked on every value."""
    candidates = [d for d in drafted if d.spec["kind"] in ("id", "string")]
    if not candidates:
        return
    sample = source.text.select(d.column for d in candidates).head(SAMPLE_ROWS).collect()
    found = {}
    for d in candidates:
        pattern = _identifier_pattern(sample.get_column(d.column).cast(pl.String).str.strip_chars())
        if pattern is not None:
            found[d.column] = pattern
    if not found:
        return
    bad = (
        source.text.select(
            (pl.col(c).is_not_null() & ~pl.col(c).str.strip_chars().str.contains(p)).sum().alias(c)
            for c, p in found.items()
        )
        .collect(engine="streaming")
        .row(0, named=True)
    )
    for d in candidates:
        if d.column in found and bad[d.column] == 0:
            d.spec["pattern"] = found[d.column]
            d.evidence.append("every value has this shape")


def _choose_identifier(drafted: list[DraftField], key: str | None) -> None:
    if key is not None:
        chosen = [d for d in drafted if key in (d.column, d.name)]
        if not chosen:
            names = ", ".join(d.column for d in drafted)
            raise ConfigError(f"--key {key!r} is not a column of the source ({names})")
        ident = chosen[0]
        if ident.spec["kind"] != "id":
            raise ConfigError(
                f"--key {key!r}: its values are not unique and present in every row, so it "
                "cannot identify a row"
            )
    else:
        ids = [d for d in drafted if d.spec["kind"] == "id"]
        ident = ids[0] if ids else None
    for d in drafted:
        if d is not ident and d.spec["kind"] == "id":
            d.spec["kind"] = "string"  # distinct values, but not the identifier
    if ident is not None:
        ident.spec["unique"] = True


def _flow(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=10**6).strip()


def _render(name: str, where: str, drafted: list[DraftField], rows: int) -> str:
    ident = next((d.name for d in drafted if d.spec.get("unique")), None)
    lines = [
        f"# Drafted by `tracer infer` from {where} ({_n(rows)} rows). Review it, then run:",
        f"#   tracer run {where} -b {name}",
        f"name: {name}",
        f"description: {json.dumps(f'Drafted from {Path(where).name}; review before relying on it.')}",
    ]
    if ident:
        lines += [f"identifier: {ident}", f"key: [{ident}]"]
    lines.append("fields:")
    width = max(len(d.name) for d in drafted) + 1
    for d in drafted:
        renamed = (
            [] if normalise_name(d.column) == normalise_name(d.name) else [f"column {d.column!r}"]
        )
        comment = "; ".join([*d.evidence, *renamed])
        lines.append(f"  {(d.name + ':').ljust(width)} {_flow(d.spec)}  # {comment}")
    return "\n".join(lines) + "\n"


def infer(
    source: str | Path,
    *,
    name: str | None = None,
    key: str | None = None,
    config: Config | dict[str, Any] | str | Path | None = None,
) -> str:
    """Draft a contract (YAML text) from a source: kinds, required, unique key, ranges, allowed values.

    ``key`` names the identifier column (else the first unique, always-present column whose
    name looks like an identifier); ``name`` the blueprint (else the file's stem). Running
    the draft on the same source passes the quality gate; running it on a later export
    flags what changed.

    Raises
    ------
    IngestError
        When the source cannot be read or has no rows.
    ConfigError
        When ``key`` is not a column, or the source has more than :data:`MAX_COLUMNS` columns.
    """
    cfg = load_config(config)
    where = str(source)
    name = name or _field_name(Path(where).stem if "://" not in where else "source", set())
    if not NAME_PATTERN.match(name):
        raise ConfigError(
            f"--name {name!r}: a blueprint name is lower-case letters, digits and underscores"
        )
    ing = read_file(source, cfg)
    columns = list(ing.info.columns)
    if len(columns) > MAX_COLUMNS:
        raise ConfigError(
            f"{where}: {len(columns):,} columns; infer drafts contracts of at most "
            f"{MAX_COLUMNS:,} (select the columns you need first)"
        )
    with tempfile.TemporaryDirectory(prefix="tracer-infer-") as tmp:
        text_file = Path(tmp) / "text.parquet"
        ing.frame.select(columns).sink_parquet(text_file, compression="lz4")
        text = pl.scan_parquet(text_file)
        rows = text.select(pl.len()).collect().item()
        if rows == 0:
            raise IngestError(f"{where}: no rows to draft a contract from", path=where)
        typed_file = Path(tmp) / "typed.parquet"
        infer_types(text, columns, decimal=ing.info.decimal or ".").sink_parquet(
            typed_file, compression="lz4"
        )
        drafted = draft_fields(_Source(rows, pl.scan_parquet(typed_file), text, columns), key)
    return _render(name, where, drafted, rows)
