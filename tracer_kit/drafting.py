"""A contract drafted from the data: ``tracer infer SOURCE`` / :func:`infer`.

The source is read by the same readers as a run (files, databases, APIs) and profiled:
every count (missing values, distinct values, minimum and maximum, how many values read as
each kind by the run's own casting) comes from the whole source, in streaming passes over a
Parquet copy of its text; the shapes an
identifier's values take are learnt from an even sample of at most :data:`SAMPLE_ROWS`
values, then checked against every value. The draft is YAML with each decision's evidence
in a comment (``# 0 missing in 9,994 rows``), ready to be read, edited and run; the same
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

from tracer_kit.blueprints import NAME_PATTERN, Blueprint, Field
from tracer_kit.blueprints.constraints import KIND_PATTERNS
from tracer_kit.config import Config, load_config
from tracer_kit.errors import ConfigError, IngestError
from tracer_kit.quality.assess import read_file
from tracer_kit.quality.casting import cast_fields, present
from tracer_kit.quality.matching import normalise_name
from tracer_kit.quality.names import Scratch

__all__ = ["MAX_COLUMNS", "SAMPLE_ROWS", "DraftField", "draft_fields", "infer"]

#: Most values read to learn an identifier's shape (the whole source still checks it).
SAMPLE_ROWS = 10_000
#: Widest source a draft is written for: a contract of more fields is not reviewable.
MAX_COLUMNS = 1_000
#: The typed kinds a column is tried as, in order; the first that all but :data:`TOLERANCE`
#: of its present values read as (by the run's own casting) is declared.
TYPED_KINDS = ("int", "float", "bool", "date", "datetime")
TOLERANCE = 0.01
#: A text column with at most this many distinct values (each seen at least twice on
#: average) becomes a category with its allowed values.
MAX_CATEGORIES = 20

#: Column names (normalised) that hold personal data besides emails and phones.
_PERSONAL_NAMES = re.compile(
    r"(customername|firstname|lastname|fullname|surname|givenname|contactname|^name$|"
    r"address|street|postcode|zipcode|birth|dob|ssn|passport|iban|ipaddress)"
)
_TIME = r"\d[T ]\d{1,2}:\d{2}"
_ID_NAMES = re.compile(r"(id|key|code|number|no|ref|reference|uuid|guid)$")


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


def _by_column(frame: pl.LazyFrame, exprs: list[pl.Expr]) -> dict[str, dict[str, Any]]:
    """One streaming pass of ``column<NUL>what`` aggregates, as ``{column: {what: value}}``."""
    out: dict[str, dict[str, Any]] = {}
    if not exprs:
        return out
    row = frame.select(exprs).collect(engine="streaming").row(0, named=True)
    for key, value in row.items():
        column, what = key.split("\x00")
        out.setdefault(column, {})[what] = value
    return out


def _text_counts(text: pl.LazyFrame, columns: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Per column: present values matching each text format, distinct values (as written, folded)."""
    exprs = []
    for c in columns:
        value = pl.when(present(c)).then(pl.col(c).str.strip_chars())
        exprs.extend(
            [
                value.str.contains(KIND_PATTERNS["email"]).sum().alias(f"{c}\x00email"),
                value.str.contains(KIND_PATTERNS["url"]).sum().alias(f"{c}\x00url"),
                value.str.contains(KIND_PATTERNS["phone"]).sum().alias(f"{c}\x00phone"),
                value.drop_nulls().n_unique().alias(f"{c}\x00distinct"),
                value.str.to_lowercase().drop_nulls().n_unique().alias(f"{c}\x00folded"),
                value.str.contains(_TIME).sum().alias(f"{c}\x00timed"),
            ]
        )
    return _by_column(text, exprs)


@dataclass
class _Typed:
    """How each column reads as each typed kind, by the run's own casting."""

    present: dict[str, int]
    failing: dict[str, dict[str, int]]  # column -> kind -> present values that do not cast
    low: dict[str, dict[str, Any]]  # column -> kind -> smallest typed value
    high: dict[str, dict[str, Any]]
    formats: dict[str, str]  # date column -> day_first / month_first / iso


def _typed_counts(text: pl.LazyFrame, columns: Sequence[str], decimal: str) -> _Typed:
    """Cast every column as every typed kind with the run's casting, and count what fails.

    The draft then declares what a run would read: the same null tokens, decimal marks,
    thousands separators and date conventions.
    """
    names = {(c, k): f"c{i}_{k}" for i, c in enumerate(columns) for k in TYPED_KINDS}
    bp = Blueprint(
        name="drafted",
        description="",
        fields=tuple(Field(n, k) for (_, k), n in names.items()),
        key=(),
        features=(),
        build_features=lambda rows, ctx: rows,
    )
    framed = text.select(
        pl.int_range(pl.len(), dtype=pl.Int64).alias("source_row"),
        pl.int_range(pl.len(), dtype=pl.Int64).alias("source_line"),
        *(pl.col(c).alias(n) for (c, _), n in names.items()),
    )
    typed = cast_fields(framed, bp, clean=set(), extras=[], decimal=decimal)
    exprs = []
    for (c, k), n in names.items():
        exprs.append(Scratch.CAST.col(n).is_not_null().sum().alias(f"{c}\x00fail {k}"))
        if k != "bool":
            exprs.append(pl.col(n).min().alias(f"{c}\x00low {k}"))
            exprs.append(pl.col(n).max().alias(f"{c}\x00high {k}"))
        if k == TYPED_KINDS[0]:
            exprs.append(Scratch.PRESENT.col(n).sum().alias(f"{c}\x00present"))
    found = _by_column(typed.frame, exprs)
    formats = {}
    for c in columns:
        n = names[(c, "date")]
        convention = "iso" if n in typed.plain_iso else typed.conventions.get(n)
        named = {"dmy": "day_first", "mdy": "month_first", "iso": "iso"}.get(convention or "")
        if named:
            formats[c] = named
    return _Typed(
        present={c: int(found[c]["present"] or 0) for c in columns},
        failing={c: {k: int(found[c][f"fail {k}"] or 0) for k in TYPED_KINDS} for c in columns},
        low={c: {k: found[c].get(f"low {k}") for k in TYPED_KINDS} for c in columns},
        high={c: {k: found[c].get(f"high {k}") for k in TYPED_KINDS} for c in columns},
        formats=formats,
    )


def _typed_kind(d: DraftField, typed: _Typed, text: dict[str, Any]) -> bool:
    """Declare the first typed kind nearly every present value reads as; whether one did."""
    c, present_values = d.column, typed.present[d.column]
    if not present_values:
        return False
    for kind in TYPED_KINDS:
        failing = typed.failing[c][kind]
        if kind == "bool" and int(text["folded"] or 0) > 2:
            continue  # (yes/no/maybe is no boolean, even when maybe is rare)
        if kind == "date" and int(text["timed"] or 0):
            continue  # values with a time of day: a datetime, not a date
        if failing / present_values > TOLERANCE:
            continue
        d.spec["kind"] = kind
        if failing:
            d.evidence.append(f"{_n(failing)} values are no {kind} (they will be quarantined)")
        if kind in ("int", "float"):
            low, high = float(typed.low[c][kind]), float(typed.high[c][kind])
            d.evidence.append(_range(d.spec, kind, low, high))
        if kind == "date" and c in typed.formats:
            d.spec["format"] = typed.formats[c]
            d.evidence.append(f"dates written {typed.formats[c].replace('_', ' ')}")
        return True
    return False


def _text_kind(d: DraftField, text: dict[str, Any], present_values: int, unique: bool) -> None:
    """A text column's kind: a format every value has, a category, an identifier or text."""
    for kind, label in (("email", "emails"), ("url", "URLs"), ("phone", "phone numbers")):
        every = present_values and int(text[kind] or 0) == present_values
        if every and not (kind == "phone" and unique):
            d.spec["kind"] = kind
            d.evidence.append(f"all {_n(present_values)} values are {label}")
            return
    distinct, folded = int(text["distinct"] or 0), int(text["folded"] or 0)
    if unique and _ID_NAMES.search(normalise_name(d.column)):
        d.spec["kind"] = "id"
        d.evidence.append(f"{_n(distinct)} distinct values")
    elif 0 < folded <= MAX_CATEGORIES and folded * 2 <= present_values:
        d.spec["kind"] = "category"
        d.evidence.append(f"{folded} value{'s' if folded > 1 else ''}")
        if folded < distinct:
            d.spec["ignore_case"] = True
            d.evidence.append(f"written {distinct} ways")
    else:
        d.spec["kind"] = "string"


def _draft_one(d: DraftField, rows: int, typed: _Typed, text: dict[str, Any]) -> None:
    present_values = typed.present[d.column]
    missing = rows - present_values
    unique = present_values > 1 and int(text["distinct"] or 0) == present_values
    d.evidence.append(f"{_n(missing)} missing in {_n(rows)} rows")
    if not _typed_kind(d, typed, text):
        _text_kind(d, text, present_values, unique)
    elif d.spec["kind"] == "int" and unique and _ID_NAMES.search(normalise_name(d.column)):
        d.spec = {"kind": "id"}  # a unique number named like an identifier: an identifier
        d.evidence[1:] = [f"{_n(present_values)} distinct values"]
    if missing == 0:
        d.spec = {"kind": d.spec.pop("kind"), "required": True, **d.spec}
    if d.spec["kind"] in ("email", "phone") or _PERSONAL_NAMES.search(normalise_name(d.column)):
        d.spec["pii"] = True
        d.evidence.append("personal data")


@dataclass
class _Source:
    rows: int
    text: pl.LazyFrame
    columns: list[str]
    decimal: str


def draft_fields(source: _Source, key: str | None = None) -> list[DraftField]:
    """Every column's drafted field, in the source's order."""
    typed = _typed_counts(source.text, source.columns, source.decimal)
    text = _text_counts(source.text, source.columns)
    taken: set[str] = set()
    drafted = []
    for c in source.columns:
        d = DraftField(_field_name(c, taken), c)
        _draft_one(d, source.rows, typed, text[c])
        drafted.append(d)
    _allowed_values(source.text, drafted)
    _patterns(source, drafted)
    _choose_identifier(drafted, key)
    return drafted


def _allowed_values(text: pl.LazyFrame, drafted: list[DraftField]) -> None:
    """A category's allowed values, sorted: its values as written (with ``ignore_case``, the
    most frequent spelling of each).
    """  # noqa: D205
    categories = [d for d in drafted if d.spec["kind"] == "category"]
    if not categories:
        return
    value = pl.col("v")
    found = pl.collect_all(
        [
            text.select(
                pl.when(present(d.column)).then(pl.col(d.column).str.strip_chars()).alias("v")
            )
            .drop_nulls()
            .group_by("v")
            .len()
            .with_columns(value.str.to_lowercase().alias("folded"))
            .sort(["folded", "len", "v"], descending=[False, True, False])
            .unique("folded", keep="first", maintain_order=True)
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
        column = sample.get_column(d.column).cast(pl.String).str.strip_chars()
        pattern = _identifier_pattern(column)
        if pattern is not None:
            found[d.column] = pattern
    if not found:
        return
    bad = (
        source.text.select(
            (present(c) & ~pl.col(c).str.strip_chars().str.contains(p)).sum().alias(c)
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
        if normalise_name(d.column) != normalise_name(d.name):
            d.spec["column"] = d.column
        comment = "; ".join(d.evidence)
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
        drafted = draft_fields(_Source(rows, text, columns, ing.info.decimal or "."), key)
    return _render(name, where, drafted, rows)
