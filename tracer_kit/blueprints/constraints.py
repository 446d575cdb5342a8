"""Field constraints, each declared once.

A :class:`Constraint` is one key a field may carry (``ge``, ``allowed``, ``pattern`` ...).
Its declaration yields everything the product says or does about it: the check on typed
values (a polars expression, so the Spark engine runs the same one on its partitions), the
pandera check the valid rows satisfy, the quarantine reason, the words the report and the
listings use, and the JSON Schema of its value in a contract file. Adding a constraint is
one entry in :data:`CONSTRAINTS` (plus the attribute on :class:`~tracer_kit.blueprints.Field`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

__all__ = [
    "CONSTRAINTS",
    "KIND_PATTERNS",
    "NUMERIC_KINDS",
    "TEXT_KINDS",
    "Constraint",
    "constraint_groups",
    "constraint_reasons",
    "constraint_words",
    "folded_text",
]

#: Kinds whose values are text (the ones a pattern, a length or a pseudonymisation applies to).
TEXT_KINDS = frozenset({"id", "string", "category", "email", "url", "phone"})
NUMERIC_KINDS = frozenset({"int", "float"})

#: Reusable format validators (full-match regexes) for the text kinds.
KIND_PATTERNS: dict[str, str] = {
    "email": r"^[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}$",
    "url": r"^https?://[A-Za-z0-9.\-]+(:\d+)?(/[^\s]*)?$",
    "phone": r"^\+?[0-9][0-9 ().\-]{5,}[0-9]$",
}


def folded_text(text: pl.Expr) -> pl.Expr:
    """Text compared without case or surrounding spaces (``' Basic '`` and ``basic`` are one)."""
    return text.str.strip_chars().str.to_lowercase()


def _allowed_fails(col: pl.Expr, allowed: Sequence[str], field: Any) -> pl.Expr:
    if field.ignore_case:
        return ~folded_text(col).is_in([str(v).strip().lower() for v in allowed])
    return ~col.is_in([str(v) for v in allowed])


def _number(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class Constraint:
    """One key a field may carry and everything derived from it.

    ``fails(column, value, field)`` is true on a present typed value that breaks it (nulls
    never fail a constraint: a missing value is completeness's business);
    ``pandera(pa, value, field)`` the check valid rows satisfy; ``words(value)`` the phrase
    the report and listings use (``>= 0``); ``schema`` the JSON Schema of its value.
    """

    key: str
    reason: str
    kinds: frozenset[str]
    fails: Callable[[pl.Expr, Any, Any], pl.Expr]
    pandera: Callable[[Any, Any, Any], Any]
    words: Callable[[Any], str]
    schema: dict[str, Any]
    description: str

    def value(self, field: Any) -> Any:
        """The field's value for this key (``pattern`` falls back to the kind's validator)."""
        own = getattr(field, self.key)
        if self.key == "pattern" and own is None:
            return KIND_PATTERNS.get(field.kind)
        return own


_NUMBER = {"type": "number"}
_COUNT = {"type": "integer", "minimum": 0}

#: Every field constraint, in the order their reasons are recorded.
CONSTRAINTS: tuple[Constraint, ...] = (
    Constraint(
        "ge",
        "out_of_range",
        NUMERIC_KINDS,
        lambda c, v, f: c < v,
        lambda pa, v, f: pa.Check.ge(v),
        lambda v: f">= {_number(v)}",
        _NUMBER,
        "the smallest value allowed",
    ),
    Constraint(
        "gt",
        "out_of_range",
        NUMERIC_KINDS,
        lambda c, v, f: c <= v,
        lambda pa, v, f: pa.Check.gt(v),
        lambda v: f"> {_number(v)}",
        _NUMBER,
        "values must be greater than this",
    ),
    Constraint(
        "le",
        "out_of_range",
        NUMERIC_KINDS,
        lambda c, v, f: c > v,
        lambda pa, v, f: pa.Check.le(v),
        lambda v: f"<= {_number(v)}",
        _NUMBER,
        "the largest value allowed",
    ),
    Constraint(
        "lt",
        "out_of_range",
        NUMERIC_KINDS,
        lambda c, v, f: c >= v,
        lambda pa, v, f: pa.Check.lt(v),
        lambda v: f"< {_number(v)}",
        _NUMBER,
        "values must be less than this",
    ),
    Constraint(
        "pattern",
        "invalid_format",
        TEXT_KINDS,
        lambda c, v, f: ~c.str.contains(v),
        lambda pa, v, f: pa.Check.str_matches(v),
        lambda v: f"matches {v}",
        {"type": "string", "format": "regex"},
        "a regular expression every value must match (anchor it with ^...$)",
    ),
    Constraint(
        "min_length",
        "too_short",
        TEXT_KINDS,
        lambda c, v, f: c.str.len_chars() < v,
        lambda pa, v, f: pa.Check.str_length(min_value=v),
        lambda v: f"at least {v} characters",
        _COUNT,
        "the fewest characters a value may have",
    ),
    Constraint(
        "max_length",
        "too_long",
        TEXT_KINDS,
        lambda c, v, f: c.str.len_chars() > v,
        lambda pa, v, f: pa.Check.str_length(max_value=v),
        lambda v: f"at most {v} characters",
        _COUNT,
        "the most characters a value may have",
    ),
    Constraint(
        "allowed",
        "not_allowed",
        TEXT_KINDS,
        _allowed_fails,
        lambda pa, v, f: pa.Check.isin(list(v)),
        lambda v: "one of " + ", ".join(str(x) for x in v),
        {"type": "array", "items": {"type": "string"}, "minItems": 1},
        "the values allowed (with ignore_case: true, matched without case or surrounding "
        "spaces and stored as written here)",
    ),
)


def constraint_groups(field: Any) -> dict[str, list[tuple[Constraint, Any]]]:
    """``field``'s constraints that apply to its kind, with their values, grouped by reason
    (``ge`` and ``le`` are both ``out_of_range``), in table order.
    """  # noqa: D205
    groups: dict[str, list[tuple[Constraint, Any]]] = {}
    for c in CONSTRAINTS:
        value = c.value(field)
        if value is not None and field.kind in c.kinds:
            groups.setdefault(c.reason, []).append((c, value))
    return groups


def constraint_reasons(field: Any) -> list[pl.Expr]:
    """Per reason, the expression that is that reason on a bad value of ``field`` (null elsewhere).

    Constraints sharing a reason (``ge`` and ``le`` are both ``out_of_range``) give one
    expression, so a row carries each reason once.
    """
    col = pl.col(field.name)
    return [
        pl.when(
            pl.any_horizontal([c.fails(col, v, field) for c, v in group]).fill_null(False)
        ).then(pl.lit(reason))
        for reason, group in constraint_groups(field).items()
    ]


def constraint_words(field: Any, *, own_only: bool = True) -> list[str]:
    """The phrases of ``field``'s constraints (``>= 0``, ``one of Basic, Pro``), in table order.

    ``own_only`` leaves out the kind's own format validator (an email's pattern).
    """
    out = []
    for c in CONSTRAINTS:
        value = getattr(field, c.key) if own_only else c.value(field)
        if value is not None and field.kind in c.kinds:
            out.append(c.words(value))
    return out
