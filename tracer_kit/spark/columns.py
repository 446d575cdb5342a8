r"""Polars expressions as Spark Columns, for the ones Spark computes to the very same values.

A step of :class:`tracer_kit.spark.frame.PartitionFrame` (a ``filter``, ``select``,
``with_columns``, ``cast``, ``rename``, ``drop``) whose every expression compiles here
runs in the JVM as Spark's own plan; any other runs as polars code in Python workers. So
each check, cast and feature is still written once, as a polars expression, and the
formula Spark runs is derived from it, never written beside it.

The expression is read from polars' own serialized form (``Expr.meta.serialize``). Only
nodes whose Spark twin gives the same value on every input are compiled, including nulls,
NaN and Spark's ANSI mode; anything else (a regular expression beyond a small common
core, a date read in another format, a transcendental function, a change of case,
integer arithmetic that might overflow) raises :class:`Unsupported`, and the step stays
in Python. ``tests/test_spark.py`` runs each compiled node on both engines over rows with
nulls, NaN, signed zeros and Unicode. The rules that make them equal:

- comparisons: same kind of value on both sides (text, numbers, booleans or dates); Spark
  and polars both order NaN above every number and call NaN equal to NaN;
- ``&``, ``|``, ``~``, ``any_horizontal``, ``all_horizontal``: booleans only (polars'
  ``&`` on integers is bitwise), Kleene logic on both;
- ``+``, ``-``, ``*``, negation: floating-point results only (IEEE on both; integer
  overflow wraps in polars and fails in Spark's ANSI mode);
- ``/``: by zero as IEEE says (NaN or a signed infinity), where Spark gives null or fails;
- ``(a - b).dt.total_days()`` of two dates: Spark's ``datediff``;
- ``str.contains`` of a regular expression: only in the core both regex engines read
  alike (:func:`java_regex`), translated to Java's flags and anchors;
- ``str.strptime(pl.Date, "%Y-%m-%d", strict=False)``: chrono's grammar for it as a
  regular expression (white space before each number, signed years), the date's
  existence checked before Spark's ``make_date`` (which would fail in ANSI mode);
- ``is_in``: a list without nulls (SQL's ``IN`` is null for a value missing from a list
  that holds a null, polars says false) and no floats;
- ``is_nan``: null for null (Spark's ``isnan`` says false);
- ``clip``: NaN stays NaN, null stays null (Spark's ``greatest`` skips nulls);
- ``str.strip_chars()``: Unicode's ``White_Space`` characters (Rust's
  ``char::is_whitespace``), trimmed by Spark's ``btrim``;
- not ``str.to_lowercase``: Java 17 and polars know different Unicode versions, and a
  final sigma after a newer mark lowers differently (29 of the Basic Multilingual Plane's
  characters, found by the test);
- text to numbers (polars' non-strict cast): only texts in polars' grammar reach Spark's
  ``try_cast`` (a sign and digits; decimal notation with an exponent, correctly rounded
  by both), ``inf``, ``infinity`` and ``nan`` spelled as polars reads them; others are null;
- other casts: only those that cannot fail or round differently (integers widened or to
  floats, floats to floats, booleans to numbers, integers, text and booleans to text);
- ``abs`` of an integer: the smallest integer stays itself (polars wraps; Spark's ANSI
  mode fails).
"""

from __future__ import annotations

import functools
import io
import json
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import polars as pl

from tracer_kit.spark.schemas import spark_type

if TYPE_CHECKING:
    from pyspark.sql import Column

__all__ = [
    "Unsupported",
    "java_regex",
    "quoted",
    "spark_aggregates",
    "spark_columns",
    "spark_predicate",
]

Node = Any  # one node of polars' serialized expression (a dict, a string or a list)


class Unsupported(Exception):  # (a signal inside this package, never shown to anyone)
    """The expression has a node without an exact Spark twin (the step runs in Python)."""


_COMPARE = {
    "Eq": "__eq__",
    "NotEq": "__ne__",
    "Lt": "__lt__",
    "LtEq": "__le__",
    "Gt": "__gt__",
    "GtEq": "__ge__",
    "EqValidity": "eqNullSafe",
}
_ARITHMETIC = {"Plus": "__add__", "Minus": "__sub__", "Multiply": "__mul__"}
_INTEGERS = {pl.Int8, pl.Int16, pl.Int32, pl.Int64}
_FLOATS = {pl.Float32, pl.Float64}
_WIDTH = {pl.Int8: 8, pl.Int16: 16, pl.Int32: 32, pl.Int64: 64}


def _kind(dtype: pl.DataType) -> str:
    """The kind of value a comparison may pair: text, number, boolean, date (else unsupported)."""
    if dtype == pl.String:
        return "text"
    if dtype.base_type() in _INTEGERS | _FLOATS:
        return "number"
    if dtype == pl.Boolean:
        return "boolean"
    if dtype == pl.Date:
        return "date"
    raise Unsupported(f"values of type {dtype}")


def _exact_cast(source: pl.DataType, target: pl.DataType) -> bool:
    """Whether Spark's cast from ``source`` to ``target`` gives polars' value on every input."""
    if source == target:
        return True
    if source.base_type() in _INTEGERS:
        if target.base_type() in _INTEGERS:
            return _WIDTH[target.base_type()] >= _WIDTH[source.base_type()]
        return target in _FLOATS or target == pl.String
    if source in _FLOATS:
        return target in _FLOATS  # (to Float32: round to nearest, even, on both)
    if source == pl.Boolean:  # (1 and 0; an unsigned type is a wider signed one on Spark)
        return target == pl.String or target.is_integer() or target in _FLOATS
    return False


def _function_name(spec: Node) -> tuple[str, Node]:
    """``"Abs"`` or ``{"Boolean": "IsNull"}`` or ``{"StringExpr": {"Contains": {...}}}`` as
    ``("Abs", None)``, ``("Boolean.IsNull", None)``, ``("StringExpr.Contains", {...})``.
    """  # noqa: D205
    if isinstance(spec, str):
        return spec, None
    (group, inner), *rest = spec.items()
    if rest:
        raise Unsupported(f"function {spec}")
    if isinstance(inner, str):
        return f"{group}.{inner}", None
    if isinstance(inner, dict) and len(inner) == 1:
        (name, options), *_ = inner.items()
        return f"{group}.{name}", options
    return group, inner


@dataclass
class _Compiler:
    """One schema's compiler: nodes to Spark Columns, with polars telling each node's type."""

    schema: pl.Schema
    _types: dict[str, pl.DataType] = field(default_factory=dict)

    def expr(self, node: Node) -> pl.Expr:
        return pl.Expr.deserialize(io.StringIO(json.dumps(node)), format="json")

    def dtype(self, node: Node) -> pl.DataType:
        key = json.dumps(node, sort_keys=True)
        if key not in self._types:
            frame = pl.LazyFrame(schema=self.schema)
            self._types[key] = frame.select(self.expr(node).alias("v")).collect_schema()["v"]
        return self._types[key]

    def literal(self, node: Node) -> Any:
        """A literal's value, as polars evaluates it."""
        return pl.select(self.expr(node).alias("v")).item()

    def column(self, node: Node) -> Column:
        from pyspark.sql import functions as F

        if not isinstance(node, dict) or len(node) != 1:
            raise Unsupported(f"node {str(node)[:80]}")
        (kind, body), *_ = node.items()
        if kind == "Column":
            return F.col(quoted(body))
        if kind == "Alias":
            return self.column(body[0]).alias(body[1])
        if kind == "Literal":
            return self._literal(node, body)
        handler = _NODES.get(kind)
        if handler is None:
            raise Unsupported(f"node {kind}")
        return handler(self, body)

    def _literal(self, node: Node, body: Node) -> Column:
        from pyspark.sql import functions as F

        if "Dyn" in body:  # (an untyped number: Spark widens it as polars does)
            return F.lit(self.literal(node))
        dtype = self.dtype(node)
        if dtype == pl.Null:
            return F.lit(None)
        _kind(dtype)  # (text, numbers, booleans and dates only)
        return F.lit(self.literal(node)).cast(spark_type(dtype))


def quoted(name: str) -> str:
    """A column name as Spark reads it literally (a dot is not a struct field)."""
    return "`" + name.replace("`", "``") + "`"


def _binary(c: _Compiler, body: Node) -> Column:
    left, op, right = body["left"], body["op"], body["right"]
    if op in _COMPARE:
        if _kind(c.dtype(left)) != _kind(c.dtype(right)):
            raise Unsupported(f"{op} of {c.dtype(left)} and {c.dtype(right)}")
        return getattr(c.column(left), _COMPARE[op])(c.column(right))
    if op in ("And", "Or"):
        if c.dtype(left) != pl.Boolean or c.dtype(right) != pl.Boolean:
            raise Unsupported(f"{op} of non-booleans")
        both = c.column(left), c.column(right)
        return both[0] & both[1] if op == "And" else both[0] | both[1]
    if op in _ARITHMETIC and c.dtype({"BinaryExpr": body}) in _FLOATS:
        return getattr(c.column(left), _ARITHMETIC[op])(c.column(right))
    if op == "TrueDivide" and c.dtype({"BinaryExpr": body}) == pl.Float64:
        return _divide(c.column(left), c.column(right))
    raise Unsupported(f"operator {op}")


def _divide(numerator: Column, denominator: Column) -> Column:
    """IEEE division, as polars divides: by zero it is NaN (0/0, NaN/0) or an infinity
    signed by both operands (the zero's sign too), where Spark's ``/`` gives null, or fails
    in ANSI mode.
    """  # noqa: D205
    from pyspark.sql import functions as F

    n, d = numerator.cast("double"), denominator.cast("double")
    negative_zero = d.cast("string").startswith("-")  # (-0.0 == 0.0: only its text tells)
    by_zero = (
        F.when(F.isnan(n) | (n == 0), F.lit(float("nan")))
        .when((n > 0) != negative_zero, F.lit(float("inf")))
        .otherwise(F.lit(float("-inf")))
    )
    nothing = F.lit(None).cast("double")
    return F.when(n.isNull() | d.isNull(), nothing).when(d == 0, by_zero).otherwise(n / d)


def _ternary(c: _Compiler, body: Node) -> Column:
    from pyspark.sql import functions as F

    if c.dtype(body["predicate"]) != pl.Boolean:
        raise Unsupported("a condition that is not boolean")
    truthy, falsy = c.column(body["truthy"]), c.column(body["falsy"])
    return F.when(c.column(body["predicate"]), truthy).otherwise(falsy)


def _cast(c: _Compiler, body: Node) -> Column:
    target, source = c.dtype({"Cast": body}), c.dtype(body["expr"])
    if source == pl.String and body.get("options") == "NonStrict":
        if target.base_type() in _INTEGERS:
            return _parsed_integer(c.column(body["expr"]), target)
        if target in _FLOATS:
            return _parsed_float(c.column(body["expr"]), target)
    if not _exact_cast(source, target):
        raise Unsupported(f"cast from {source} to {target}")
    return c.column(body["expr"]).cast(spark_type(target))


#: The texts polars reads as an integer (a sign, then ASCII digits) and as a float (also a
#: decimal point with digits on either side, an exponent); anything else is null.
_INTEGER_TEXT = r"^[+-]?[0-9]+$"
_FLOAT_TEXT = r"^[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]+)?$"
_FLOAT_WORDS = {
    float("inf"): ["inf", "+inf", "infinity", "+infinity"],
    float("-inf"): ["-inf", "-infinity"],
    float("nan"): ["nan", "+nan", "-nan"],
}


def _parsed_integer(text: Column, target: pl.DataType) -> Column:
    """Text to an integer as polars' non-strict cast reads it: a sign and ASCII digits
    (no space, no point), null when it does not fit; Spark's ``try_cast`` on those texts.
    """  # noqa: D205
    from pyspark.sql import functions as F

    return F.when(text.rlike(_INTEGER_TEXT), text.try_cast(spark_type(target)))


def _parsed_float(text: Column, target: pl.DataType) -> Column:
    """Text to a float as polars' non-strict cast reads it: decimal notation (correctly
    rounded by both), or ``inf``, ``infinity``, ``nan`` in any case with a sign; null else.
    """  # noqa: D205
    from pyspark.sql import functions as F

    kind = spark_type(target)
    out = F.when(text.rlike(_FLOAT_TEXT), text.try_cast(kind))
    word = F.lower(text)  # (only ASCII letters lower to these words' letters)
    for value, spellings in _FLOAT_WORDS.items():
        out = out.when(word.isin(spellings), F.lit(value).cast(kind))
    return out


def _function(c: _Compiler, body: Node) -> Column:
    name, options = _function_name(body["function"])
    handler = _FUNCTIONS.get(name)
    if handler is None:
        raise Unsupported(f"function {name}")
    return handler(c, body["input"], options)


_NODES: dict[str, Callable[[_Compiler, Node], Column]] = {
    "BinaryExpr": _binary,
    "Ternary": _ternary,
    "Cast": _cast,
    "Function": _function,
}


# ---------------------------------------------------------------------------- functions
def _booleans(c: _Compiler, inputs: Sequence[Node]) -> list[Column]:
    if any(c.dtype(i) != pl.Boolean for i in inputs):
        raise Unsupported("logic on non-booleans")
    return [c.column(i) for i in inputs]


def _not(c: _Compiler, inputs: Sequence[Node], _: Node) -> Column:
    return ~_booleans(c, inputs)[0]


def _horizontal(op: str) -> Callable[[_Compiler, Sequence[Node], Node], Column]:
    def run(c: _Compiler, inputs: Sequence[Node], _: Node) -> Column:
        return functools.reduce(operator.or_ if op == "or" else operator.and_, _booleans(c, inputs))

    return run


def _is_null(c: _Compiler, inputs: Sequence[Node], _: Node) -> Column:
    return c.column(inputs[0]).isNull()


def _is_not_null(c: _Compiler, inputs: Sequence[Node], _: Node) -> Column:
    return c.column(inputs[0]).isNotNull()


def _is_nan(negate: bool) -> Callable[[_Compiler, Sequence[Node], Node], Column]:
    def run(c: _Compiler, inputs: Sequence[Node], _: Node) -> Column:
        from pyspark.sql import functions as F

        if c.dtype(inputs[0]) not in _FLOATS:
            raise Unsupported("is_nan of non-floats")
        value = c.column(inputs[0])
        nan = ~F.isnan(value) if negate else F.isnan(value)
        return F.when(value.isNotNull(), nan)

    return run


def _finite(finite: bool) -> Callable[[_Compiler, Sequence[Node], Node], Column]:
    """``is_finite`` (NaN is not) or ``is_infinite``; null for null."""

    def run(c: _Compiler, inputs: Sequence[Node], _: Node) -> Column:
        from pyspark.sql import functions as F

        if c.dtype(inputs[0]) not in _FLOATS:
            raise Unsupported("is_finite of non-floats")
        value = c.column(inputs[0])
        infinite = F.abs(value) == F.lit(float("inf"))
        test = ~F.isnan(value) & ~infinite if finite else infinite
        return F.when(value.isNotNull(), test)

    return run


def _is_in(c: _Compiler, inputs: Sequence[Node], options: Node) -> Column:
    if (options or {}).get("nulls_equal", False):
        raise Unsupported("is_in with nulls_equal")
    kind = _kind(c.dtype(inputs[0]))
    values = c.literal(inputs[1])
    values = list(values) if isinstance(values, pl.Series) else [values]
    if kind == "number" and c.dtype(inputs[0]) in _FLOATS or None in values:
        raise Unsupported("is_in on floats or with a null")
    return c.column(inputs[0]).isin(values)


def _fill_null(c: _Compiler, inputs: Sequence[Node], _: Node) -> Column:
    from pyspark.sql import functions as F

    return F.coalesce(*(c.column(i) for i in inputs))


def _replace(c: _Compiler, inputs: Sequence[Node], _: Node) -> Column:
    """``replace(old, new)`` of one text value: old becomes new, any other value stays."""
    from pyspark.sql import functions as F

    if any(c.dtype(i) != pl.String for i in inputs) or len(inputs) != 3:
        raise Unsupported("replace of non-text values")
    old, new = (c.literal(i) for i in inputs[1:])
    if not isinstance(old, str) or not isinstance(new, str):
        raise Unsupported("replace of several values")
    value = c.column(inputs[0])
    return F.when(value == F.lit(old), F.lit(new)).otherwise(value)


#: Unicode's White_Space characters: what Rust's ``char::is_whitespace`` (polars'
#: ``strip_chars()``) and Java's ``(?U)\\s`` take for white space.
_WHITE_SPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680"
    + "".join(map(chr, range(0x2000, 0x200B)))
    + ("\u2028\u2029\u202f\u205f\u3000")
)


def _strip(c: _Compiler, inputs: Sequence[Node], _: Node) -> Column:
    """``str.strip_chars()``: Spark's ``btrim`` of the white space characters (a regular
    expression would scan every position of every text, several times slower).
    """  # noqa: D205
    from pyspark.sql import functions as F

    if c.literal(inputs[1]) is not None:
        raise Unsupported("strip_chars of given characters")
    return F.btrim(c.column(inputs[0]), F.lit(_WHITE_SPACE))


def _text_test(method: str) -> Callable[[_Compiler, Sequence[Node], Node], Column]:
    def run(c: _Compiler, inputs: Sequence[Node], options: Node) -> Column:
        from pyspark.sql import functions as F

        pattern = c.literal(inputs[1])
        if not isinstance(pattern, str):
            raise Unsupported("a pattern that is not one text")
        if options is not None and not options.get("literal", False):
            return c.column(inputs[0]).rlike(java_regex(pattern))
        return getattr(c.column(inputs[0]), method)(F.lit(pattern))

    return run


#: What a regular expression may hold to mean the same to Rust's regex crate (polars) and
#: Java's ``Pattern`` (Spark): escapes of classes and of punctuation, plain characters.
_ESCAPES = set("dDsSwW.+-*?()[]{}|^$\\/")
_CLASS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 +-._,:/")


def java_regex(pattern: str) -> str:
    """``pattern`` (Rust's syntax, as polars reads it) as Java's, matching the same texts.

    Raises :class:`Unsupported` when it holds anything outside a small common core.
    The core: plain characters, ``.``, ``^``, ``$``, ``|``, groups (``(...)``, ``(?:...)``),
    quantifiers (``* + ? {n} {n,} {n,m}``, lazy or not), escaped punctuation, ``\\d \\s
    \\w`` and their negations, and classes of ASCII letters, digits and ``+-._,:/ `` with
    those escapes, after a leading ``(?i)`` or not. Java needs ``(?U)`` for Unicode ``\\d \\s \\w`` (Rust's default), ``(?d)``
    so ``.`` stops only at ``\\n`` (as Rust's), and ``\\z`` for Rust's ``$`` (the end of
    the text; Java's ``$`` also matches before a last line break).
    """  # noqa: D301
    flags = "(?Udiu)" if pattern.startswith("(?i)") else "(?Ud)"  # (Unicode case folding)
    out, i = [flags], 4 if pattern.startswith("(?i)") else 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            if pattern[i + 1 : i + 2] not in _ESCAPES:
                raise Unsupported(f"the escape {pattern[i : i + 2]!r}")
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if ch == "[":
            end = _class_end(pattern, i)
            out.append(pattern[i : end + 1])
            i = end + 1
            continue
        if ch == "(" and pattern[i + 1 : i + 2] == "?" and pattern[i + 1 : i + 3] != "?:":
            raise Unsupported("a group with flags or a look-around")
        out.append("\\z" if ch == "$" else ch)
        i += 1
    return "".join(out)


def _class_end(pattern: str, start: int) -> int:
    """Where the class opened at ``start`` closes (its content within the common core)."""
    i = start + 1 + (pattern[start + 1 : start + 2] == "^")
    while i < len(pattern) and pattern[i] != "]":
        if pattern[i] == "\\" and pattern[i + 1 : i + 2] in set("dsw.-\\"):
            i += 2
        elif pattern[i] in _CLASS:
            i += 1
        else:
            raise Unsupported(f"the class character {pattern[i]!r}")
    if i >= len(pattern) or i == start + 1:
        raise Unsupported("an unclosed or empty class")
    return i


def _abs(c: _Compiler, inputs: Sequence[Node], _: Node) -> Column:
    """``abs``; of the smallest integer it is itself, as polars wraps (Spark would fail)."""
    from pyspark.sql import functions as F

    dtype, value = c.dtype(inputs[0]), c.column(inputs[0])
    if dtype in _FLOATS:
        return F.abs(value)
    if dtype.base_type() not in _INTEGERS:
        raise Unsupported(f"abs of {dtype}")
    smallest = F.lit(-(2 ** (_WIDTH[dtype.base_type()] - 1))).cast(spark_type(dtype))
    return F.when(value == smallest, value).otherwise(F.abs(value))


def _negate(c: _Compiler, inputs: Sequence[Node], _: Node) -> Column:
    if c.dtype(inputs[0]) not in _FLOATS:
        raise Unsupported("negation of non-floats")
    return -c.column(inputs[0])


def _clip(c: _Compiler, inputs: Sequence[Node], options: Node) -> Column:
    from pyspark.sql import functions as F

    dtype = c.dtype(inputs[0])
    if dtype not in _FLOATS and dtype.base_type() not in _INTEGERS:
        raise Unsupported("clip of non-numbers")
    value, bounds = c.column(inputs[0]), iter(inputs[1:])
    limits = []
    if options.get("has_min"):
        low = c.column(next(bounds))
        limits.append((value < low, low))
    if options.get("has_max"):
        high = c.column(next(bounds))
        limits.append((value > high, high))
    out = F.when(F.isnan(value), value) if dtype in _FLOATS else None
    for condition, bound in limits:
        out = F.when(condition, bound) if out is None else out.when(condition, bound)
    return value if out is None else out.otherwise(value)


#: The texts chrono (polars) reads as ``%Y-%m-%d``: white space (Unicode) before each
#: number, a year of one to four digits or a signed one of any length, a month and a day of
#: one or two digits, nothing after; then the date must exist between chrono's first and
#: last year (checked against polars over 300,000 random texts and every boundary).
_ISO_DATE_TEXT = r"(?U)^\s*(?:([0-9]{1,4})|([+-][0-9]+))-\s*([0-9]{1,2})-\s*([0-9]{1,2})\z"
_DATE_YEARS = (-262143, 262142)


def _strptime(c: _Compiler, inputs: Sequence[Node], options: Node) -> Column:
    """``str.strptime(pl.Date, "%Y-%m-%d", strict=False)`` as polars reads it (null else)."""
    from pyspark.sql import functions as F

    target, spec = options if isinstance(options, list) and len(options) == 2 else (None, {})
    wanted = {"format": "%Y-%m-%d", "strict": False, "exact": True}
    if target != {"Literal": "Date"} or any(spec.get(k) != v for k, v in wanted.items()):
        raise Unsupported("a date format other than %Y-%m-%d, or a strict or inexact one")
    text = c.column(inputs[0])
    # (the usual ``2024-01-05`` is read by position: Java's regular expressions cost
    # several times polars' parse, so only other texts go through them)
    plain = F.translate(text, "123456789", "000000000") == F.lit("0000-00-00")
    part = [F.regexp_extract(text, _ISO_DATE_TEXT, i) for i in (1, 2, 3, 4)]
    slow = [F.when(part[0] != "", part[0]).otherwise(part[1]), part[2], part[3]]
    fast = [F.substring(text, 1, 4), F.substring(text, 6, 2), F.substring(text, 9, 2)]
    year, month, day = (
        F.when(plain, f).otherwise(w).try_cast("int") for f, w in zip(fast, slow, strict=True)
    )
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    days_in_month = (
        F.when(month == 2, F.when(leap, 29).otherwise(28))
        .when(month.isin(4, 6, 9, 11), 30)
        .otherwise(31)
    )
    exists = year.between(*_DATE_YEARS) & month.between(1, 12) & (day >= 1) & (day <= days_in_month)
    return F.when((plain | text.rlike(_ISO_DATE_TEXT)) & exists, F.make_date(year, month, day))


def _total_days(c: _Compiler, inputs: Sequence[Node], options: Node) -> Column:
    """Whole days between two dates (``(a - b).dt.total_days()``)."""
    from pyspark.sql import functions as F

    body = inputs[0].get("BinaryExpr") if isinstance(inputs[0], dict) else None
    if (options or {}).get("fractional") or not body or body["op"] != "Minus":
        raise Unsupported("total_days of anything but a difference of dates")
    if c.dtype(body["left"]) != pl.Date or c.dtype(body["right"]) != pl.Date:
        raise Unsupported("total_days of anything but a difference of dates")
    return F.datediff(c.column(body["left"]), c.column(body["right"])).cast("long")


_FUNCTIONS: dict[str, Callable[[_Compiler, Sequence[Node], Node], Column]] = {
    "Boolean.Not": _not,
    "Boolean.AnyHorizontal": _horizontal("or"),
    "Boolean.AllHorizontal": _horizontal("and"),
    "Boolean.IsNull": _is_null,
    "Boolean.IsNotNull": _is_not_null,
    "Boolean.IsNan": _is_nan(negate=False),
    "Boolean.IsNotNan": _is_nan(negate=True),
    "Boolean.IsIn": _is_in,
    "Boolean.IsInfinite": _finite(finite=False),
    "Boolean.IsFinite": _finite(finite=True),
    "FillNull": _fill_null,
    "Coalesce": _fill_null,
    "Replace": _replace,
    "StringExpr.StripChars": _strip,
    "StringExpr.Contains": _text_test("contains"),
    "StringExpr.StartsWith": _text_test("startswith"),
    "StringExpr.EndsWith": _text_test("endswith"),
    "Abs": _abs,
    "Negate": _negate,
    "Clip": _clip,
    "TemporalExpr.TotalDays": _total_days,
    "StringExpr.Strptime": _strptime,
}


def _serialized(expr: pl.Expr) -> Node:
    """Polars' serialized form of ``expr`` (:class:`Unsupported` when it has none, as an
    expression holding a Python function).
    """  # noqa: D205
    try:
        return json.loads(expr.meta.serialize(format="json"))
    except Exception as exc:
        raise Unsupported(str(exc)[:80]) from None


def spark_columns(
    exprs: Sequence[pl.Expr | str], schema: pl.Schema, *, alone: bool = True
) -> dict[str, Column]:
    """Each expression over rows of ``schema`` as a Spark Column, by the name polars gives it.

    Raises :class:`Unsupported` when one has no exact Spark twin. ``alone``: the
    expressions are a ``select`` of their own, so at least one must read a column (polars
    gives one row for a ``select`` of literals, Spark one per row).
    """
    compiler = _Compiler(schema)
    out: dict[str, Column] = {}
    for e in exprs:
        expr = pl.col(e) if isinstance(e, str) else e
        node = _serialized(expr)
        try:
            name = expr.meta.output_name()
        except Exception as exc:  # (an expression of several columns: names known later)
            raise Unsupported(str(exc)[:80]) from None
        if name in out:
            raise Unsupported(f"{name} twice")
        out[name] = compiler.column(node).alias(name)
    if alone and not any(
        pl.col(e).meta.root_names() if isinstance(e, str) else e.meta.root_names() for e in exprs
    ):
        raise Unsupported("a select of literals only")
    return out


def spark_predicate(predicates: Sequence[pl.Expr], schema: pl.Schema) -> Column:
    """The polars ``filter`` predicates as one Spark condition (all must hold)."""
    compiler = _Compiler(schema)
    columns = []
    for p in predicates:
        if not isinstance(p, pl.Expr):
            raise Unsupported("a filter that is not an expression")
        node = _serialized(p)
        if compiler.dtype(node) != pl.Boolean:
            raise Unsupported("a filter that is not boolean")
        columns.append(compiler.column(node))
    return functools.reduce(operator.and_, columns)


# ---------------------------------------------------------------------------- aggregates
def _aggregate(c: _Compiler, node: Node, value: Column) -> Column:
    """One polars aggregate of the row-level ``value`` (``node``'s input) as a Spark aggregate
    giving polars' answer: a sum of nothing is 0, ``any`` of nothing false, ``max`` skips NaN.
    """  # noqa: D205
    from pyspark.sql import functions as F

    kind, body = _aggregate_parts(node)
    dtype = c.dtype(_aggregate_input(node))
    if kind == "Len" or (kind == "Count" and body.get("include_nulls")):
        return F.count(F.lit(1))
    if kind == "Count":
        return F.count(value)
    if kind == "NullCount":
        return F.count_if(value.isNull())
    if kind == "Sum" and dtype == pl.Boolean:
        return F.count_if(value)
    if kind == "Sum" and _kind(dtype) == "number":
        return F.coalesce(F.sum(value), F.lit(0.0 if dtype in _FLOATS else 0))
    if kind in ("Min", "Max") and not body.get("propagate_nans"):
        if kind == "Max" and dtype in _FLOATS:  # (Spark orders NaN last; polars skips it)
            return F.coalesce(F.max(F.when(~F.isnan(value), value)), F.max(value))
        return F.min(value) if kind == "Min" else F.max(value)
    if kind in ("Any", "All") and body.get("ignore_nulls") and dtype == pl.Boolean:
        return (
            F.coalesce(F.bool_or(value), F.lit(False))
            if kind == "Any"
            else (F.coalesce(F.bool_and(value), F.lit(True)))
        )
    raise Unsupported(f"aggregate {kind} of {dtype}")


def _aggregate_parts(node: Node) -> tuple[str, Node]:
    """An aggregate node's kind (``Sum``, ``Len`` ...) and options."""
    if node == "Len":
        return "Len", {}
    if isinstance(node, dict) and "Agg" in node:
        (kind, body), *_ = node["Agg"].items()
        return kind, body if isinstance(body, dict) and "input" in body else {}
    if isinstance(node, dict) and "Function" in node:
        name, options = _function_name(node["Function"]["function"])
        if name == "NullCount":
            return name, {}
        if name in ("Boolean.Any", "Boolean.All"):
            return name.removeprefix("Boolean."), options or {}
    raise Unsupported(f"aggregate {str(node)[:60]}")


def _aggregate_input(node: Node) -> Node:
    """The row-level expression an aggregate node reads (a literal for ``pl.len()``)."""
    if node == "Len":
        return {"Literal": {"Dyn": {"Int": 1}}}
    if "Agg" in node:
        (_, body), *_ = node["Agg"].items()
        return body["input"] if isinstance(body, dict) and "input" in body else body
    return node["Function"]["input"][0]


def spark_aggregates(
    named: Sequence[tuple[str, pl.Expr]], schema: pl.Schema
) -> tuple[list[Column], list[Column]]:
    """Polars aggregates (``sum``, ``len``, ``count``, ``null_count``, ``min``, ``max``,
    ``any``, ``all`` of row-level expressions) as Spark's: the row-level inputs, as columns
    ``__a0``, ``__a1`` ..., and the aggregates over them, named as given.

    Raises :class:`Unsupported` when one has no exact Spark twin.
    """  # noqa: D205
    from pyspark.sql import functions as F

    compiler = _Compiler(schema)
    inputs, measures = [], []
    for i, (name, expr) in enumerate(named):
        node = _serialized(expr)
        while isinstance(node, dict) and "Alias" in node:
            node = node["Alias"][0]
        kind, _ = _aggregate_parts(node)
        if kind != "Len":
            inputs.append(compiler.column(_aggregate_input(node)).alias(f"__a{i}"))
        measures.append(_aggregate(compiler, node, F.col(f"__a{i}")).alias(name))
    return inputs, measures
